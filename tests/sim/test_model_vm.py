"""VM model: creation, lifecycle, nested settings, memory refusal, disks, checkpoints."""

from __future__ import annotations

import pytest
from model_helpers import GB, MB, make_world

from hvsim.hyperv.models.vm import VM
from hvsim.powershell.errors import PSError
from hvsim.world import World

BASE = "C:\\LabBases\\WS2022-Core.vhdx"


def _vm_with_disk(w: World, name: str, memory: int = 2 * GB) -> VM:
    w.storage.mkdirs("C:\\Lab")
    disk = w.storage.new_vhd(f"C:\\Lab\\{name}.vhdx", "Differencing", parent_path=BASE)
    return w.hv.new_vm(name, memory_startup=memory, generation=2, vhd_path=disk.path)


def test_new_vm_defaults() -> None:
    w = make_world()
    vm = w.hv.new_vm("web")
    assert vm.state == "Off" and vm.generation == 1 and vm.version == "12.0"
    assert vm.memory_startup == 512 * MB and not vm.dynamic_memory
    assert vm.network_adapters[0].name == "Network Adapter"
    assert vm.network_adapters[0].mac_address == "000000000000"
    assert vm.integration_services["Guest Service Interface"] is False
    assert all(v for k, v in vm.integration_services.items() if k != "Guest Service Interface")
    assert vm.path == "C:\\ProgramData\\Microsoft\\Windows\\Hyper-V"
    assert w.storage.stat(w.storage.resolve(vm.config_path)) is not None


def test_duplicate_names_are_allowed() -> None:
    w = make_world()
    a = w.hv.new_vm("dup")
    b = w.hv.new_vm("DUP")
    assert a.id != b.id
    assert len(w.find_vms("dup")) == 2
    assert w.find_vm("dup") is None  # not a single match
    assert [v.name for v in w.find_vms("d*")] == ["dup", "DUP"]
    assert w.find_vms("nope") == []


def test_new_vm_parameter_sets_and_refusals() -> None:
    w = make_world()
    vm = w.hv.new_vm("n", generation=2, new_vhd_path="n.vhdx", new_vhd_size=40 * GB)
    assert vm.hard_drives == ["C:\\ProgramData\\Microsoft\\Windows\\Virtual Hard Disks\\n.vhdx"]
    assert w.storage.get_vhd(vm.hard_drives[0]).vhd_type == "Dynamic"  # type: ignore[union-attr]
    with pytest.raises(PSError) as e:
        w.hv.new_vm("x", vhd_path="C:\\missing.vhdx")
    # Hyper-V fails attaching the missing disk, with no target (PS-AutoLab-Env#159).
    assert e.value.message == "Adding the device 'Microsoft:Hyper-V:Virtual Hard Disk' to 'x' failed."
    assert (e.value.error_id, e.value.category, e.value.target) == ("Unspecified", "NotSpecified", None)
    with pytest.raises(PSError) as e:
        w.hv.new_vm("x", generation=2, boot_device="IDE")
    assert e.value.category == "InvalidArgument"
    with pytest.raises(PSError) as e:
        w.hv.new_vm("x", switch_name="nope")
    assert e.value.message == 'Hyper-V was unable to find a virtual switch with name "nope".'
    with pytest.raises(PSError):
        w.hv.new_vm("x", version="5.0")  # WS2025 supports 8.0 and later
    old = w.hv.new_vm("old", version="9.0")
    assert old.version == "9.0"
    vm2 = w.hv.new_vm("p", path="C:\\VMs")
    assert vm2.path == "C:\\VMs\\p"


def test_lifecycle_and_mac_assignment() -> None:
    w = make_world()
    vm = _vm_with_disk(w, "a")
    assert w.hv.start(vm) is True
    assert vm.state == "Running" and vm.memory_assigned == 2 * GB
    mac = vm.network_adapters[0].mac_address
    assert mac.startswith("00155D") and mac != "000000000000" and len(mac) == 12
    assert w.hv.start(vm) is False  # already running: the handler warns
    assert w.hv.stop(vm, save=True) is True and vm.state == "Saved" and vm.memory_assigned == 0
    assert w.hv.start(vm) is True and vm.state == "Running"
    assert vm.network_adapters[0].mac_address == mac  # keeps its MAC
    assert w.hv.suspend(vm) and vm.state == "Paused"
    assert w.hv.resume(vm) and vm.state == "Running"
    assert w.hv.stop(vm, turn_off=True) and vm.state == "Off"
    assert w.hv.stop(vm) is False


def test_graceful_stop_needs_a_responding_guest() -> None:
    w = make_world()
    vm = w.hv.new_vm("empty", generation=2)  # no disk: no OS, no shutdown service answers
    w.hv.start(vm)
    with pytest.raises(PSError):
        w.hv.stop(vm)
    assert w.hv.stop(vm, force=True) and vm.state == "Off"


def test_start_refused_when_host_memory_is_exhausted() -> None:
    w = make_world(memory_capacity=16 * GB, host_reserved_memory=2 * GB)
    a = _vm_with_disk(w, "a", memory=8 * GB)
    b = _vm_with_disk(w, "b", memory=8 * GB)
    w.hv.start(a)
    with pytest.raises(PSError) as e:
        w.hv.start(b)
    err = e.value
    assert err.error_id == "OutOfMemory" and err.category == "FromStdErr"
    assert err.exception_type == "Microsoft.HyperV.PowerShell.VirtualizationException"
    assert err.message.startswith("'b' failed to start.\nNot enough memory in the system to start the virtual "
                                  "machine b.")
    assert "with ram size 8192 megabytes" in err.message
    assert b.state == "Off"
    w.hv.stop(a, turn_off=True)
    w.hv.start(b)
    assert b.state == "Running"


def test_start_refused_for_missing_or_mounted_disk() -> None:
    w = make_world()
    vm = _vm_with_disk(w, "a")
    w.storage.mount(vm.hard_drives[0])
    with pytest.raises(PSError) as e:
        w.hv.start(vm)
    assert "being used by another process" in e.value.message
    w.storage.dismount(vm.hard_drives[0])
    w.storage.remove(w.storage.resolve(vm.hard_drives[0]))  # allowed: the VM is off
    with pytest.raises(PSError) as e:
        w.hv.start(vm)
    assert "The system cannot find the file specified." in e.value.message
    assert vm.state == "Off"


def test_running_vm_locks_its_disk_and_the_parent() -> None:
    w = make_world()
    vm = _vm_with_disk(w, "a")
    w.hv.start(vm)
    for path in (vm.hard_drives[0], BASE):
        with pytest.raises(PSError) as e:
            w.storage.remove(w.storage.resolve(path))
        assert e.value.error_id == "RemoveFileSystemItemIOError"
    with pytest.raises(PSError):
        w.storage.mount(vm.hard_drives[0])
    other = w.hv.new_vm("b", vhd_path=vm.hard_drives[0])
    with pytest.raises(PSError):
        w.hv.start(other)


def test_expose_virtualization_extensions_only_while_off() -> None:
    w = make_world()
    vm = _vm_with_disk(w, "n")
    w.hv.start(vm)
    with pytest.raises(PSError) as e:
        w.hv.set_processor(vm, expose=True)
    assert e.value.message.startswith("Failed to modify device 'Processor'.")
    assert e.value.category == "InvalidOperation"
    with pytest.raises(PSError):
        w.hv.set_processor(vm, count=4)
    w.hv.stop(vm, turn_off=True)
    w.hv.set_processor(vm, count=4, expose=True)
    assert vm.expose_virtualization_extensions and vm.processor_count == 4
    with pytest.raises(PSError):
        w.hv.set_processor(vm, count=64)  # more than the host's 16 logical processors


def test_nested_rules_amd_vs_intel() -> None:
    intel = make_world()
    vm = intel.hv.new_vm("v", version="8.0")
    intel.hv.set_processor(vm, expose=True)  # Intel: version 8.0 suffices
    amd = make_world(cpu_vendor="AuthenticAMD")
    old = amd.hv.new_vm("v", version="9.0")
    with pytest.raises(PSError) as e:
        amd.hv.set_processor(old, expose=True)
    assert e.value.error_id == "NotSupported"
    new = amd.hv.new_vm("w", version="10.0")
    amd.hv.set_processor(new, expose=True)
    amd19 = make_world(cpu_vendor="AuthenticAMD", os_build=17763)
    vm19 = amd19.hv.new_vm("v")
    with pytest.raises(PSError):
        amd19.hv.set_processor(vm19, expose=True)  # AMD needs a WS2022+ host


def test_memory_changes() -> None:
    w = make_world()
    vm = _vm_with_disk(w, "m")
    w.hv.set_memory(vm, dynamic=True, startup=1 * GB)
    assert vm.dynamic_memory and vm.memory_startup == GB
    w.hv.start(vm)
    with pytest.raises(PSError):
        w.hv.set_memory(vm, dynamic=False)
    with pytest.raises(PSError):
        w.hv.set_memory(vm, startup=2 * GB)  # dynamic memory: startup fixed while running
    with pytest.raises(PSError):
        w.hv.set_memory(vm, startup=3 * MB)  # not a multiple of 2 MB


def test_remove_vm_keeps_disks() -> None:
    w = make_world()
    vm = _vm_with_disk(w, "r")
    disk = vm.hard_drives[0]
    w.hv.start(vm)
    w.hv.remove_vm(vm)
    assert vm.id not in w.vms
    assert w.storage.get_vhd(disk) is not None
    w.storage.remove(w.storage.resolve(disk))  # no longer open


def test_checkpoints_create_restore_remove() -> None:
    w = make_world()
    vm = _vm_with_disk(w, "c")
    disk0 = vm.hard_drives[0]
    w.storage.write_file(disk0, "\\before.txt", b"1")
    snap = w.hv.checkpoint(vm, "clean")
    assert vm.hard_drives[0].lower().endswith(".avhdx")
    assert w.storage.get_vhd(vm.hard_drives[0]).parent_path == disk0  # type: ignore[union-attr]
    w.storage.write_file(vm.hard_drives[0], "\\after.txt", b"2")
    vm.notes = "changed"
    vm.memory_startup = 4 * GB
    w.hv.restore(vm, snap)
    assert vm.memory_startup == 2 * GB and vm.notes == ""
    assert w.storage.read_file(vm.hard_drives[0], "\\before.txt") == b"1"
    assert w.storage.read_file(vm.hard_drives[0], "\\after.txt") is None
    assert vm.state == "Off"
    assert [s.name for s in w.hv.find_snapshots(vm)] == ["clean"]
    assert w.hv.find_snapshots(vm, "nope") == []
    w.storage.write_file(vm.hard_drives[0], "\\kept.txt", b"3")
    w.hv.remove_snapshot(vm, snap)
    assert vm.snapshots == []
    assert vm.hard_drives[0] == disk0  # merged back
    assert w.storage.read_file(disk0, "\\kept.txt") == b"3"


def test_remove_vm_merges_checkpoints_into_the_disk() -> None:
    w = make_world()
    vm = _vm_with_disk(w, "m")
    disk0 = vm.hard_drives[0]
    w.hv.checkpoint(vm, "1")
    w.storage.write_file(vm.hard_drives[0], "\\x.txt", b"1")
    w.hv.checkpoint(vm, "2")
    w.storage.write_file(vm.hard_drives[0], "\\x.txt", b"2")
    w.hv.remove_vm(vm)
    assert not [k for k in w.storage.vhds if k.endswith(".avhdx")]
    assert w.storage.read_file(disk0, "\\x.txt") == b"2"


def test_checkpoint_default_name_and_disabled() -> None:
    w = make_world()
    vm = _vm_with_disk(w, "d")
    snap = w.hv.checkpoint(vm)
    assert snap.name.startswith("d - (")
    vm.checkpoint_type = "Disabled"
    with pytest.raises(PSError):
        w.hv.checkpoint(vm)
