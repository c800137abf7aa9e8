"""Checkpoints, stop and start as Windows Server Hyper-V does them (docs/facts.md "Checkpoints"), driven through the
PowerShell runtime (parameter binding, the cmdlet catalog, the handlers) as a pipeline from labctl would be."""

from __future__ import annotations

from typing import Any

import pytest
from container_lab import NANO_2022, Lab
from guest_world import make_vm
from model_helpers import FakeSink

import hvsim.guest.handlers.commands
import hvsim.hyperv.handlers.host
import hvsim.hyperv.handlers.vm
import hvsim.networking.handlers
import hvsim.storage.handlers.disks
import hvsim.storage.handlers.files
import hvsim.storage.handlers.vhd  # noqa: F401  (registers the handlers)
from hvsim.core.clock import Clock
from hvsim.core.counters import Counters
from hvsim.core.faults import FaultPlan, FaultRule
from hvsim.powershell.cmdlet import Session
from hvsim.powershell.runtime import RawCommand, Runtime
from hvsim.powershell.values import PRESENT
from hvsim.world import World

GB = 1024**3
ALREADY = "The virtual machine is already in the specified state."




def run(world: World, *pipeline: tuple[str, dict[str, Any]]) -> FakeSink:
    out = FakeSink()
    Runtime(world).run([[RawCommand(n, list(p.items())) for n, p in pipeline]], [], out, Session("Administrator"))
    return out


def ps(name: str, **params: Any) -> tuple[str, dict[str, Any]]:
    return name, params


def state(world: World, name: str) -> str:
    return str(run(world, ps("Get-VM", Name=name)).outputs[0].get("State").name)


@pytest.fixture
def lab() -> Lab:
    return Lab()


def modeled(world: World, vm: str) -> float:
    return float(world.clock.report()["modeled_seconds"][vm])


# --- 1. nested virtualization -------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [14393, 17763, 20348, 26100])
def test_a_running_nested_vm_saves_checkpoints_and_restores_on_every_server_build(build: int) -> None:
    lab = Lab(World(None, Clock(), FaultPlan(), Counters(), host_config={"os_build": build}))
    vm = lab.vm("n1")  # exposes virtualization extensions
    assert vm.expose_virtualization_extensions and vm.version in ("8.0", "9.0", "10.0", "12.0")
    run(lab.world, ps("Set-VM", Name="n1", CheckpointType="Standard"))
    made = run(lab.world, ps("Checkpoint-VM", Name="n1", SnapshotName="mem", Passthru=PRESENT))
    assert not made.errors and made.outputs[0].get("Name") == "mem"
    saved = run(lab.world, ps("Stop-VM", Name="n1", Save=PRESENT))
    assert not saved.errors and state(lab.world, "n1") == "Saved"
    restored = run(lab.world, ps("Restore-VMSnapshot", VMName="n1", Name="mem", Confirm=False))
    assert not restored.errors and state(lab.world, "n1") == "Saved"  # memory state: resumes on start
    run(lab.world, ps("Start-VM", Name="n1"))
    assert state(lab.world, "n1") == "Running" and vm.guest.is_ready(lab.world, vm)


# --- 2. production checkpoints --------------------------------------------------------------------------------


def test_production_checkpoint_of_a_running_guest_restores_to_off_and_keeps_no_memory(lab: Lab) -> None:
    vm = lab.vm("p1")
    free = int(run(lab.world, ps("Get-Volume", DriveLetter="C")).outputs[0].get("SizeRemaining"))
    out = run(lab.world, ps("Checkpoint-VM", Name="p1", SnapshotName="base", Passthru=PRESENT))
    assert not out.warnings and out.outputs[0].get("SnapshotType").name in ("Production", "Standard")
    assert vm.snapshots[0].snapshot_type == "Production" and vm.snapshots[0].memory_file is None
    # No memory image: only the .avhdx child (metadata) was written.
    assert free - int(run(lab.world, ps("Get-Volume", DriveLetter="C")).outputs[0].get("SizeRemaining")) < 16 * 1024**2
    run(lab.world, ps("Get-VMSnapshot", VMName="p1", Name="base"), ps("Restore-VMSnapshot", Confirm=False))
    assert state(lab.world, "p1") == "Off"


def test_without_the_vss_service_production_falls_back_and_production_only_fails(lab: Lab) -> None:
    vm = lab.vm("p2")
    run(lab.world, ps("Disable-VMIntegrationService", VMName="p2", Name="VSS"))
    assert vm.integration_services["VSS"] is False
    out = run(lab.world, ps("Checkpoint-VM", Name="p2", SnapshotName="fb"))
    assert out.warnings == ["Production checkpoints cannot be created for 'p2'. A standard checkpoint was "
                            "created instead."]
    assert vm.snapshots[-1].snapshot_type == "Standard" and vm.snapshots[-1].memory_file
    run(lab.world, ps("Set-VM", Name="p2", CheckpointType="ProductionOnly"))
    out = run(lab.world, ps("Checkpoint-VM", Name="p2", SnapshotName="only"))
    err = out.errors[0]
    assert err.message.startswith("Checkpoint operation failed.\nProduction checkpoints cannot be created.")
    assert err.fqid == "OperationFailed,Microsoft.HyperV.PowerShell.Commands.CheckpointVM"
    assert err.category == "NotSpecified" and err.target is None
    assert [s.name for s in vm.snapshots] == ["fb"]


def test_production_only_fails_while_the_guest_os_is_not_up(lab: Lab) -> None:
    vm = make_vm(lab.world, "p3", start=False)
    vm.checkpoint_type = "ProductionOnly"
    vm.state = "Paused"  # the guest OS cannot answer a VSS request
    out = run(lab.world, ps("Checkpoint-VM", Name="p3"))
    assert out.errors[0].message.startswith("Checkpoint operation failed.")
    vm.state = "Off"
    assert not run(lab.world, ps("Checkpoint-VM", Name="p3")).errors  # an Off VM needs no VSS


def test_restore_puts_back_the_guest_containers_and_files_and_boots_it_again(lab: Lab) -> None:
    vm = lab.vm("ch1")
    lab.container_host("ch1", hyperv=False)
    assert lab.docker("ch1", "pull", NANO_2022).get("ExitCode") == 0
    assert lab.docker("ch1", "run", "-d", "--name", "kept", NANO_2022, "ping", "-t", "localhost").get(
        "ExitCode") == 0
    boots = vm.guest.boot_count
    run(lab.world, ps("Checkpoint-VM", Name="ch1", SnapshotName="base"))
    assert lab.docker("ch1", "run", "-d", "--name", "later", NANO_2022, "ping", "-t", "localhost").get(
        "ExitCode") == 0
    lab.world.storage.write_file(vm.hard_drives[0], "\\later.txt", b"after the checkpoint")
    assert run(lab.world, ps("Restore-VMSnapshot", VMName="ch1", Name="base", Confirm=False)).errors == []
    assert state(lab.world, "ch1") == "Off"
    assert lab.world.storage.read_file(vm.hard_drives[0], "\\later.txt") is None
    before = lab.world.clock.report()["modeled_seconds"]["ch1"]
    run(lab.world, ps("Start-VM", Name="ch1"))
    lab.wait_ready(vm)
    spent = lab.world.clock.report()["modeled_seconds"]["ch1"] - before
    d = lab.world.clock.durations
    assert spent == pytest.approx(d["start_vm"] + d["boot_after_restore"])  # a plain boot, no setup passes
    assert vm.guest.boot_count == boots + 1 and vm.guest.computer_name
    names = [line.split()[-1] for line in lab.docker("ch1", "ps", "-a").get("Output")[1:]]
    assert names == ["kept"]  # "later" was made after the checkpoint; "kept" exited with the frozen guest
    assert len(lab.docker("ch1", "ps").get("Output")) == 1  # nothing runs after the boot (header only)


# --- 3. disk space and identity ---------------------------------------------------------------------------------


def test_a_standard_checkpoint_of_a_running_vm_writes_its_memory_and_needs_the_room(lab: Lab) -> None:
    vm = lab.vm("s1")
    run(lab.world, ps("Set-VM", Name="s1", CheckpointType="Standard"))
    def volume_free() -> int:
        return int(run(lab.world, ps("Get-Volume", DriveLetter="C")).outputs[0].get("SizeRemaining"))

    free = volume_free()
    assert not run(lab.world, ps("Checkpoint-VM", Name="s1", SnapshotName="one")).errors
    vmrs = vm.snapshots[0].memory_file
    assert vmrs and vmrs.startswith(vm.path + "\\Snapshots\\") and vmrs.endswith(".vmrs")
    assert free - volume_free() >= 2 * GB  # the assigned memory, as Get-Volume reports it
    listed = run(lab.world, ps("Get-ChildItem", Path=vm.path + "\\Snapshots")).outputs
    assert [o.get("Name") for o in listed] == [vmrs.rsplit("\\", 1)[1]]
    lab.world.storage.c_size = lab.world.storage.c_used + GB  # 1 GB left: less than the memory image
    out = run(lab.world, ps("Checkpoint-VM", Name="s1", SnapshotName="two"))
    assert "There is not enough space on the disk. (0x80070070)" in out.errors[0].message
    assert out.errors[0].message.startswith("Checkpoint operation failed.")
    assert [s.name for s in vm.snapshots] == ["one"]
    run(lab.world, ps("Remove-VMSnapshot", VMName="s1", Name="one"))
    assert volume_free() >= 2 * GB  # the memory image went with the checkpoint


def test_restore_keeps_the_static_mac_and_brings_back_the_adapter_and_guest_ip(lab: Lab) -> None:
    vm = lab.vm("m1")
    mac = vm.network_adapters[0].mac_address
    ips = vm.guest.ip_addresses(lab.world, vm, mac)
    run(lab.world, ps("Checkpoint-VM", Name="m1", SnapshotName="net"))
    run(lab.world, ps("Stop-VM", Name="m1", TurnOff=PRESENT))
    run(lab.world, ps("Set-VMNetworkAdapter", VMName="m1", StaticMacAddress="00155D3801FE"))
    run(lab.world, ps("Restore-VMSnapshot", VMName="m1", Name="net", Confirm=False))
    adapter = run(lab.world, ps("Get-VMNetworkAdapter", VMName="m1")).outputs[0]
    assert adapter.get("MacAddress") == mac and adapter.get("DynamicMacAddressEnabled") is False
    run(lab.world, ps("Start-VM", Name="m1"))
    lab.wait_ready(vm)
    assert vm.guest.ip_addresses(lab.world, vm, mac) == ips  # the static IP from the answer file, same MAC


# --- 4. errors -------------------------------------------------------------------------------------------------


def test_checkpoint_lookup_errors(lab: Lab) -> None:
    lab.vm("e1")
    run(lab.world, ps("Checkpoint-VM", Name="e1", SnapshotName="real"))
    for out in (run(lab.world, ps("Get-VMSnapshot", VMName="e1", Name="missing")),
                run(lab.world, ps("Remove-VMSnapshot", VMName="e1", Name="missing"))):
        err = out.errors[0]
        assert err.message == "Unable to find a snapshot matching the given criteria."
        assert err.category == "ObjectNotFound" and err.target is None
        assert err.fqid.startswith("ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.")
    assert run(lab.world, ps("Get-VMSnapshot", VMName="e1", Name="mis*")).errors == []  # a pattern: no error


def test_restore_refused_while_the_vm_is_stopping_and_checkpoints_disabled(lab: Lab) -> None:
    vm = lab.vm("e2")
    run(lab.world, ps("Checkpoint-VM", Name="e2", SnapshotName="c"))
    vm.state = "Stopping"  # as Get-VM shows it during a graceful shutdown
    err = run(lab.world, ps("Restore-VMSnapshot", VMName="e2", Name="c", Confirm=False)).errors[0]
    assert err.fqid == "InvalidState,Microsoft.HyperV.PowerShell.Commands.RestoreVMSnapshot"
    assert err.category == "InvalidOperation"
    vm.state = "Running"
    run(lab.world, ps("Set-VM", Name="e2", CheckpointType="Disabled"))
    err = run(lab.world, ps("Checkpoint-VM", Name="e2")).errors[0]
    assert "Checkpoints are disabled for 'e2'." in err.message
    assert err.fqid == "InvalidOperation,Microsoft.HyperV.PowerShell.Commands.CheckpointVM"


def test_automatic_checkpoints_are_taken_at_start_only_when_enabled(lab: Lab) -> None:
    vm = make_vm(lab.world, "a1", start=False)
    run(lab.world, ps("Start-VM", Name="a1"))
    assert vm.snapshots == []  # Windows Server's default: off (labctl sets it false anyway)
    run(lab.world, ps("Stop-VM", Name="a1", TurnOff=PRESENT))
    run(lab.world, ps("Set-VM", Name="a1", AutomaticCheckpointsEnabled=True))
    run(lab.world, ps("Start-VM", Name="a1"))
    names = [o.get("Name") for o in run(lab.world, ps("Get-VMSnapshot", VMName="a1")).outputs]
    assert len(names) == 1 and names[0].startswith("Automatic Checkpoint - a1 - (")
    assert state(lab.world, "a1") == "Running"


# --- 5. stop ---------------------------------------------------------------------------------------------------


def test_graceful_stop_of_several_vms_runs_them_down_together(lab: Lab) -> None:
    for i, name in enumerate(("g1", "g2", "g3")):
        vm = make_vm(lab.world, name, mac=f"00155D38011{i}", start=True)
        lab.wait_ready(vm)
    before = {n: modeled(lab.world, n) for n in ("g1", "g2", "g3")}
    out = run(lab.world, ps("Stop-VM", Name=["g1", "g2", "g3"], Passthru=PRESENT))
    assert not out.errors and [o.get("State").name for o in out.outputs] == ["Off", "Off", "Off"]
    stop = lab.world.clock.durations["stop_vm"]
    assert all(modeled(lab.world, n) - before[n] == stop for n in before)  # each VM: one shutdown's time


def test_a_guest_that_ignores_shutdown_keeps_stop_vm_failing_until_turned_off(lab: Lab) -> None:
    lab.vm("h1")
    lab.world.faults.add(FaultRule("guest_ignores_shutdown", match={"vm": "h1"}, times=0))
    before = modeled(lab.world, "h1")
    for force in (False, True):
        params: dict[str, Any] = {"Name": "h1", **({"Force": PRESENT} if force else {})}
        err = run(lab.world, ("Stop-VM", params)).errors[0]
        assert err.message == "Failed to stop."
        assert err.fqid == "OperationFailed,Microsoft.HyperV.PowerShell.Commands.StopVM"
        assert err.category == "NotSpecified" and err.target is None
        assert state(lab.world, "h1") == "Running"
    assert modeled(lab.world, "h1") - before == 2 * lab.world.clock.durations["stop_vm_unanswered"]
    assert not run(lab.world, ps("Stop-VM", Name="h1", TurnOff=PRESENT)).errors
    assert state(lab.world, "h1") == "Off"
    assert run(lab.world, ps("Stop-VM", Name="h1")).warnings == [ALREADY]
