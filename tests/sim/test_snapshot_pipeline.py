"""Piped Hyper-V objects bind as Windows PowerShell binds them: the parameter sets before pipeline input
(CmdletParameterBinderController.GetMissingMandatoryParameters with input expected) stay open while the piped
object may still decide, so `Get-VMSnapshot | Remove-VMSnapshot` binds -VMSnapshot (SnapshotObject) as the
Remove-VMSnapshot help's example 2 does it; and the other Hyper-V cmdlets that take piped objects still bind."""

from __future__ import annotations

from typing import Any

import pytest
from guest_world import make_vm, new_world
from model_helpers import FakeSink
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import TaggedValue

import hvsim.hyperv.handlers.host
import hvsim.hyperv.handlers.vm
import hvsim.networking.handlers
import hvsim.storage.handlers.disks
import hvsim.storage.handlers.vhd  # noqa: F401  (registers the handlers the runtime dispatches to)
from hvsim.powershell.binding import bind
from hvsim.powershell.catalog import load_catalog
from hvsim.powershell.cmdlet import Session
from hvsim.powershell.errors import PSError
from hvsim.powershell.runtime import RawCommand, Runtime
from hvsim.powershell.values import PRESENT, PSObj
from hvsim.server import Simulator
from hvsim.world import World

CATALOG = load_catalog()
HV = "Microsoft.HyperV.PowerShell."
NOT_BOUND = ("The input object cannot be bound to any parameters for the command either because the command does "
             "not take pipeline input or the input and its properties do not match any of the parameters that take "
             "pipeline input.")




def run(world: World, *pipeline: tuple[str, dict[str, Any]]) -> FakeSink:
    """One pipeline through the runtime (catalog binding, then the handlers), as labctl sends it."""
    out = FakeSink()
    try:
        Runtime(world).run([[RawCommand(n, list(p.items())) for n, p in pipeline]], [], out, Session("Administrator"))
    except PSError as err:
        out.errors.append(err)
    return out


def ps(name: str, **params: Any) -> tuple[str, dict[str, Any]]:
    return name, params


def names(world: World, vm: str) -> list[str]:
    return [str(s.get("Name")) for s in run(world, ps("Get-VMSnapshot", VMName=vm)).outputs]


@pytest.fixture
def world() -> World:
    """A VM 'a' (off) with the checkpoints base, x and y, in that order."""
    w = new_world()
    make_vm(w, "a", start=False)
    for snap in ("base", "x", "y"):
        out = run(w, ps("Checkpoint-VM", Name="a", SnapshotName=snap))
        assert out.errors == [], [e.message for e in out.errors]
    return w


def test_piped_snapshot_is_removed(world: World) -> None:
    out = run(world, ps("Get-VMSnapshot", VMName="a", Name="x"), ps("Remove-VMSnapshot"))
    assert out.errors == [], [e.message for e in out.errors]
    assert out.outputs == []
    assert names(world, "a") == ["base", "y"]


def test_every_piped_snapshot_is_removed_with_the_checkpoint_alias(world: World) -> None:
    out = run(world, ps("Get-VMCheckpoint", VMName="a"), ps("Remove-VMCheckpoint", IncludeAllChildSnapshots=PRESENT))
    assert out.errors == [], [e.message for e in out.errors]
    assert names(world, "a") == []


def test_piped_snapshot_with_passthru(world: World) -> None:
    # A switch of every set leaves the sets open too.
    out = run(world, ps("Get-VMSnapshot", VMName="a", Name="y"), ps("Remove-VMSnapshot", Passthru=PRESENT))
    assert out.errors == [], [e.message for e in out.errors]
    assert names(world, "a") == ["base", "x"]


def test_piped_vm_still_binds_the_vm_object_set(world: World) -> None:
    out = run(world, ps("Get-VM", Name="a"), ps("Remove-VMSnapshot", Name="base"))
    assert out.errors == [], [e.message for e in out.errors]
    assert names(world, "a") == ["x", "y"]


def test_named_form_unchanged(world: World) -> None:
    out = run(world, ps("Remove-VMSnapshot", VMName="a", Name="y"))
    assert out.errors == []
    assert names(world, "a") == ["base", "x"]


def test_remove_without_input_or_vm_name_is_missing_vm_name(world: World) -> None:
    out = run(world, ps("Remove-VMSnapshot", Name="x"))
    assert [e.fqid for e in out.errors] == ["MissingMandatoryParameter,Microsoft.HyperV.PowerShell.Commands."
                                            "RemoveVMSnapshot"]
    assert out.errors[0].message == ("Cannot process command because of one or more missing mandatory parameters: "
                                     "VMName.")
    assert names(world, "a") == ["base", "x", "y"]


def test_piped_snapshot_is_restored(world: World) -> None:
    out = run(world, ps("Get-VMSnapshot", VMName="a", Name="x"), ps("Restore-VMSnapshot", Confirm=False,
                                                                     Passthru=PRESENT))
    assert out.errors == [], [e.message for e in out.errors]
    assert [str(o.get("Name")) for o in out.outputs] == ["x"]
    restored = run(world, ps("Get-VM", Name="a")).outputs[0]
    assert str(restored.get("ParentSnapshotName")) == "x"


def test_piped_vm_into_restore_without_a_name_binds_nothing(world: World) -> None:
    # Restore-VMSnapshot's VM set needs -Name, which no input can give: before input the engine drops it (two sets
    # take input ByValue, the VM set still misses a parameter only the command line gives), so a piped VM finds no
    # parameter; with -Name it binds the VM set.
    out = run(world, ps("Get-VM", Name="a"), ps("Restore-VMSnapshot", Confirm=False))
    assert [e.error_id for e in out.errors] == ["InputObjectNotBound"]
    assert out.errors[0].message == NOT_BOUND
    out = run(world, ps("Get-VM", Name="a"), ps("Restore-VMSnapshot", Name="base", Confirm=False))
    assert out.errors == [], [e.message for e in out.errors]
    assert str(run(world, ps("Get-VM", Name="a")).outputs[0].get("ParentSnapshotName")) == "base"


def _obj(kind: str) -> PSObj:
    return PSObj([HV + kind, HV + "VirtualMachineBase", "System.Object"], {"Name": "a", "VMName": "a"})


@pytest.mark.parametrize(("cmdlet", "params", "piped", "expected_set", "bound"), [
    ("Remove-VMSnapshot", {}, "VMSnapshot", "SnapshotObject", "VMSnapshot"),
    ("Remove-VMSnapshot", {"IncludeAllChildSnapshots": PRESENT}, "VMSnapshot", "SnapshotObject", "VMSnapshot"),
    ("Remove-VMSnapshot", {"Name": "x"}, "VirtualMachine", "VMObject", "VM"),
    ("Restore-VMSnapshot", {}, "VMSnapshot", "SnapshotObject", "VMSnapshot"),
    ("Restore-VMSnapshot", {"Name": "x"}, "VirtualMachine", "VM", "VM"),
    ("Get-VMSnapshot", {}, "VirtualMachine", "VMObject", "VM"),
    ("Checkpoint-VM", {"SnapshotName": "x"}, "VirtualMachine", "VMObject", "VM"),
    ("Stop-VM", {"Force": PRESENT}, "VirtualMachine", "VMObject", "VM"),
    ("Start-VM", {}, "VirtualMachine", "VMObject", "VM"),
    ("Remove-VM", {"Force": PRESENT}, "VirtualMachine", "VMObject", "VM"),
    ("Set-VMProcessor", {"Count": 2}, "VirtualMachine", "VMObject", "VM"),
    ("Get-VMNetworkAdapter", {}, "VirtualMachine", "VMObject", "VM"),
    ("Get-VMHardDiskDrive", {}, "VirtualMachine", "VMObject", "VM"),
    ("Enable-VMIntegrationService", {"Name": "Guest Service Interface"}, "VirtualMachine", "VMObject", "VM"),
    ("Connect-VMNetworkAdapter", {"SwitchName": "s"}, "VMNetworkAdapter", "Object_SwitchName", "VMNetworkAdapter"),
    ("Remove-VMHardDiskDrive", {}, "HardDiskDrive", "VMHardDiskDrive", "VMHardDiskDrive"),
])
def test_piped_hyperv_objects_bind(cmdlet: str, params: dict[str, Any], piped: str, expected_set: str,
                                   bound: str) -> None:
    spec = CATALOG.get(cmdlet)
    assert spec is not None
    obj = _obj(piped)
    call = bind(spec, list(params.items()), expects_input=True).with_input(obj)
    assert call.parameter_set == expected_set
    value = call.params[bound]
    assert value == [obj] or value is obj


def test_piped_switch_binds_set_vmswitch() -> None:
    # Get-VMSwitch s | Set-VMSwitch -Notes n: every set but the name ones takes the switch; no AmbiguousParameterSet.
    spec = CATALOG.get("Set-VMSwitch")
    assert spec is not None
    sw = _obj("VMSwitch")
    call = bind(spec, [("Notes", "n")], expects_input=True).with_input(sw)
    assert call.params["VMSwitch"] == [sw] and call.params["Notes"] == "n"


def test_string_piped_into_remove_vmsnapshot_misses_the_vm() -> None:
    # A string binds -Name (ByValue in SnapshotName and VMObject); the VM is still missing: the engine's error
    # for that input object.
    spec = CATALOG.get("Remove-VMSnapshot")
    assert spec is not None
    with pytest.raises(PSError) as info:
        bind(spec, [], expects_input=True).with_input("x")
    assert info.value.error_id == "InputObjectMissingMandatory"
    assert info.value.message.endswith("required to bind all mandatory parameters: VM")


def _wire(pool: RunspacePool, *pipeline: tuple[str, dict[str, Any]]) -> PowerShell:
    shell = PowerShell(pool)
    for name, params in pipeline:
        shell.add_cmdlet(name)
        for k, v in params.items():
            shell.add_parameter(k, TaggedValue("I64", v) if isinstance(v, int) and v > 2**31 - 1 else v)
    shell.invoke()
    return shell


def test_piped_snapshot_over_the_wire(sim: Simulator, pool: RunspacePool) -> None:
    made = _wire(pool, ps("New-VM", Name="w", MemoryStartupBytes=1024**3))
    assert not made.had_errors, [str(e) for e in made.streams.error]
    for snap in ("one", "two"):
        assert not _wire(pool, ps("Checkpoint-VM", Name="w", SnapshotName=snap)).had_errors
    removed = _wire(pool, ps("Get-VMSnapshot", VMName="w", Name="one"), ps("Remove-VMSnapshot"))
    assert not removed.had_errors, [str(e) for e in removed.streams.error]
    left = _wire(pool, ps("Get-VMSnapshot", VMName="w"))
    assert [o.adapted_properties.get("Name", o.extended_properties.get("Name")) for o in left.output] == ["two"]
