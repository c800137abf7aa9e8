"""Select-Object and Get-Command handlers, run through the runtime."""

from __future__ import annotations

from typing import Any

import pytest
from model_helpers import FakeSink

import hvsim.powershell.handlers  # noqa: F401  (registers the handlers)
from hvsim.core.clock import Clock
from hvsim.core.counters import Counters
from hvsim.core.faults import FaultPlan
from hvsim.powershell.cmdlet import REGISTRY, BoundCall, CmdletContext, Registration, Session
from hvsim.powershell.errors import PSError
from hvsim.powershell.runtime import RawCommand, Runtime
from hvsim.powershell.values import PSEnum, PSObj
from hvsim.world import World

VM = "Microsoft.HyperV.PowerShell.VirtualMachine"


def _vms(ctx: CmdletContext, call: BoundCall) -> list[Any]:
    return [PSObj([VM, "System.Object"], {"Name": n, "State": PSEnum("Microsoft.HyperV.PowerShell.VMState", "Off", 3),
                                          "Tags": ["x", n]}) for n in ("a", "b", "c")]


@pytest.fixture
def runtime() -> Runtime:
    registry = {"select-object": REGISTRY["select-object"], "get-command": REGISTRY["get-command"],
                "get-vm": Registration(_vms)}
    return Runtime(World(None, Clock(), FaultPlan(), Counters()), registry=registry)


def run(runtime: Runtime, *cmds: RawCommand) -> FakeSink:
    sink = FakeSink()
    runtime.run([list(cmds)], [], sink, Session("admin"))
    return sink


def test_select_properties_makes_selected_objects(runtime: Runtime) -> None:
    sink = run(runtime, RawCommand("Get-VM"), RawCommand("Select-Object", [("Property", ["Name", "Missing"])]))
    assert len(sink.outputs) == 3
    first = sink.outputs[0]
    assert first.type_names == [f"Selected.{VM}", "System.Management.Automation.PSCustomObject", "System.Object"]
    assert first.props == {"Name": "a", "Missing": None}


def test_select_positional_wildcard_property(runtime: Runtime) -> None:
    sink = run(runtime, RawCommand("Get-VM"), RawCommand("Select-Object", [(None, "N*")]))
    assert [o.props for o in sink.outputs] == [{"Name": "a"}, {"Name": "b"}, {"Name": "c"}]


def test_select_first_last_skip(runtime: Runtime) -> None:
    sink = run(runtime, RawCommand("Get-VM"), RawCommand("Select-Object", [("First", 1)]))
    assert [o.get("Name") for o in sink.outputs] == ["a"]
    sink = run(runtime, RawCommand("Get-VM"), RawCommand("Select-Object", [("Last", 2)]))
    assert [o.get("Name") for o in sink.outputs] == ["b", "c"]
    sink = run(runtime, RawCommand("Get-VM"), RawCommand("Select-Object", [("Skip", 1), ("First", 1)]))
    assert [o.get("Name") for o in sink.outputs] == ["b"]


def test_select_expand_property(runtime: Runtime) -> None:
    sink = run(runtime, RawCommand("Get-VM"), RawCommand("Select-Object", [("ExpandProperty", "Name")]))
    assert sink.outputs == ["a", "b", "c"]
    sink = run(runtime, RawCommand("Get-VM"), RawCommand("Select-Object", [("ExpandProperty", "Tags"), ("First", 1)]))
    assert sink.outputs == ["x", "a"]


def test_select_expand_missing_property_errors(runtime: Runtime) -> None:
    sink = run(runtime, RawCommand("Get-VM"), RawCommand("Select-Object", [("ExpandProperty", "Nope"), ("First", 1)]))
    assert sink.outputs == []
    assert [e.fqid for e in sink.errors] == ["ExpandPropertyNotFound,Microsoft.PowerShell.Commands.SelectObjectCommand"]
    assert sink.errors[0].message == 'Property "Nope" cannot be found.'


def test_get_command_lists_catalog(runtime: Runtime) -> None:
    sink = run(runtime, RawCommand("Get-Command", [("Module", "Hyper-V")]))
    names = [o.get("Name") for o in sink.outputs]
    assert "Get-VM" in names and "New-VHD" in names
    assert "Restore-VMCheckpoint" in names  # an alias
    vm = next(o for o in sink.outputs if o.get("Name") == "Get-VM")
    assert vm.type_names[0] == "System.Management.Automation.CmdletInfo"
    assert str(vm.get("CommandType")) == "Cmdlet"
    assert vm.get("ModuleName") == "Hyper-V"
    assert vm.get("Version") == "2.0.0.0"
    alias = next(o for o in sink.outputs if o.get("Name") == "Restore-VMCheckpoint")
    assert str(alias.get("CommandType")) == "Alias" and alias.get("Definition") == "Restore-VMSnapshot"


def test_get_command_cdxml_is_a_function(runtime: Runtime) -> None:
    sink = run(runtime, RawCommand("Get-Command", [(None, "New-NetNat")]))
    assert len(sink.outputs) == 1
    assert str(sink.outputs[0].get("CommandType")) == "Function"
    assert sink.outputs[0].type_names[0] == "System.Management.Automation.FunctionInfo"


def test_get_command_unknown_name_writes_error(runtime: Runtime) -> None:
    sink = run(runtime, RawCommand("Get-Command", [("Name", ["Get-VM", "Get-Nope"])]))
    assert [o.get("Name") for o in sink.outputs] == ["Get-VM"]
    assert [e.fqid for e in sink.errors] == ["CommandNotFoundException,Microsoft.PowerShell.Commands.GetCommandCommand"]


def test_get_command_error_action_stop(runtime: Runtime) -> None:
    with pytest.raises(PSError):
        run(runtime, RawCommand("Get-Command", [("Name", "Get-Nope"), ("ErrorAction", "Stop")]))
