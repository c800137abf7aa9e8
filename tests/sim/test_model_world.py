"""World persistence (atomic state.json, reopen, same host) and reset."""

from __future__ import annotations

import json
from pathlib import Path

from model_helpers import GB, make_world

from hvsim.core.clock import Clock
from hvsim.core.counters import Counters
from hvsim.core.faults import FaultPlan
from hvsim.world import World

BASE = "C:\\LabBases\\WS2022-Core.vhdx"


def _populate(w: World) -> dict[str, str]:
    w.network.new_switch("LabNat", "Internal")
    w.network.new_ip_address("172.16.0.1", 24, alias="vEthernet (LabNat)")
    w.network.new_nat("LabNat", "172.16.0.0/24")
    w.storage.mkdirs("C:\\Lab")
    disk = w.storage.new_vhd("C:\\Lab\\a.vhdx", "Differencing", parent_path=BASE)
    m = w.storage.mount(disk.path)
    w.storage.write(w.storage.resolve(f"{m.letter}:\\Windows\\Panther\\unattend.xml"), b"<u>\xff</u>")
    w.storage.dismount(disk.path)
    vm = w.hv.new_vm("a", memory_startup=2 * GB, generation=2, vhd_path=disk.path, switch_name="LabNat")
    w.hv.set_processor(vm, count=2, expose=True)
    w.hv.start(vm)
    w.hv.checkpoint(vm, "cp1")
    return {"vm": vm.id, "disk": disk.path}


def test_round_trip(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    ids = _populate(w)
    w.save()
    state_file = tmp_path / "state.json"
    assert state_file.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".state-")]  # temp file replaced
    json.loads(state_file.read_text())
    w2 = World.open(tmp_path, Clock(), FaultPlan(), Counters())
    assert [s.name for s in w2.network.switches.values()] == ["LabNat"]
    assert w2.network.adapter_by_alias("vEthernet (LabNat)") is not None
    assert [n.internal_prefix for n in w2.network.nats] == ["172.16.0.0/24"]
    vm = w2.vms[ids["vm"]]
    assert vm.state == "Running" and vm.expose_virtualization_extensions and vm.processor_count == 2
    assert vm.network_adapters[0].switch_name == "LabNat"
    assert vm.network_adapters[0].mac_address != "000000000000"
    assert [s.name for s in vm.snapshots] == ["cp1"]
    assert w2.storage.read_file(vm.hard_drives[0], "\\Windows\\Panther\\unattend.xml") == b"<u>\xff</u>"
    assert w2.storage.os_info(ids["disk"])["build"] == 20348  # type: ignore[index]
    assert w2.storage.c_free == w.storage.c_free
    assert w2.find_vm("a") is vm
    # Locks survive: the running VM still holds its disk chain.
    assert w2.storage.is_open(w2.storage.get_vhd(BASE).path.lower())  # type: ignore[union-attr]
    # The reopened host keeps allocating fresh MACs.
    assert w2.allocate_mac() != vm.network_adapters[0].mac_address


def test_open_without_state_is_fresh(tmp_path: Path) -> None:
    w = World.open(tmp_path, Clock(), FaultPlan(), Counters())
    assert not w.vms and len(w.storage.vhds) == 3


def test_save_without_state_dir_is_noop() -> None:
    w = make_world()
    w.dirty = True
    w.save()
    assert w.dirty is False


def test_reset_returns_a_fresh_host(tmp_path: Path) -> None:
    w = make_world(tmp_path, cpu_vendor="AuthenticAMD")
    _populate(w)
    w.reset()
    assert w.dirty
    assert not w.vms and not w.network.switches and not w.network.nats and not w.storage.mounts
    assert len(w.storage.vhds) == 3 and w.storage.c_free == 200 * 1000**3
    assert w.host.cpu_vendor == "AuthenticAMD"  # overrides stay
    w.save()
    w2 = World.open(tmp_path, Clock(), FaultPlan(), Counters())
    assert not w2.vms and w2.host.cpu_vendor == "AuthenticAMD"


def test_transitional_states_complete_on_reopen(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    a = w.hv.new_vm("a", memory_startup=GB)
    b = w.hv.new_vm("b", memory_startup=GB)
    w.hv.start(b)
    w.hv.begin_start(a)
    assert w.hv.begin_stop(b, turn_off=False, force=True) == "turnoff"  # no OS: forced off
    w.save()
    w2 = World.open(tmp_path, Clock(), FaultPlan(), Counters())
    assert w2.vms[a.id].state == "Running"
