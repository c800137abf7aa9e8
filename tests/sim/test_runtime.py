"""The pipeline runtime with a fake sink and a test registry: statements, piping, errors, faults, saving."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from model_helpers import FakeSink

from hvsim.core.clock import Clock
from hvsim.core.counters import Counters
from hvsim.core.faults import FaultPlan, FaultRule
from hvsim.powershell.cmdlet import BoundCall, CmdletContext, Registration, Session
from hvsim.powershell.errors import PSError
from hvsim.powershell.runtime import RawCommand, Runtime
from hvsim.powershell.values import PRESENT, PSObj
from hvsim.world import World

VM_TYPES = ["Microsoft.HyperV.PowerShell.VirtualMachine", "Microsoft.HyperV.PowerShell.VirtualMachineBase",
            "System.Object"]


class SavingWorld(World):
    """Counts saves (the skeleton's save is a no-op)."""

    saves = 0

    def save(self) -> None:
        self.saves += 1
        super().save()


def vm(name: str) -> PSObj:
    return PSObj(list(VM_TYPES), {"Name": name, "VMName": name}, to_string=f"VirtualMachine (Name = '{name}')")


class Recorder:
    """A test registry whose handlers record their calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, BoundCall, Any, list[Any]]] = []
        self.registry: dict[str, Registration] = {
            "get-vm": Registration(self.get_vm),
            "stop-vm": Registration(self.stop_vm),
            "start-vm": Registration(self.start_vm),
            "get-vmnetworkadapter": Registration(self.get_adapter),
            "select-object": Registration(self.select, collects_input=True),
            "remove-vm": Registration(self.remove_vm),
        }

    def _record(self, name: str, ctx: CmdletContext, call: BoundCall) -> None:
        self.calls.append((name, call, ctx.input_object, list(ctx.all_input)))

    def get_vm(self, ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
        self._record("Get-VM", ctx, call)
        names = call.get("Name") or ["a", "b"]
        out = []
        for n in names:
            if n == "missing":
                ctx.write_error(PSError(f'Hyper-V was unable to find a virtual machine with name "{n}".',
                                        "InvalidParameter", "InvalidArgument", target=n))
                continue
            out.append(vm(n))
        return out

    def stop_vm(self, ctx: CmdletContext, call: BoundCall) -> Iterable[Any] | None:
        self._record("Stop-VM", ctx, call)
        if call.get("Passthru"):
            return list(call.get("VM") or [vm(n) for n in call.get("Name") or []])
        return None

    def start_vm(self, ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
        self._record("Start-VM", ctx, call)
        raise KeyError("secret-token-value")  # a handler bug

    def get_adapter(self, ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
        self._record("Get-VMNetworkAdapter", ctx, call)
        ctx.write_warning("a warning")
        ctx.write_verbose("a verbose line")
        return [PSObj(["Microsoft.HyperV.PowerShell.VMNetworkAdapter"], {"VMName": n})
                for n in call.get("VMName") or [v.get("Name") for v in call.get("VM") or []]]

    def select(self, ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
        self._record("Select-Object", ctx, call)
        return list(ctx.all_input)[: call.get("First", 1000)]

    def remove_vm(self, ctx: CmdletContext, call: BoundCall) -> Iterable[Any] | None:
        self._record("Remove-VM", ctx, call)
        ctx.world.dirty = True
        return None


@pytest.fixture
def world() -> SavingWorld:
    return SavingWorld(None, Clock(), FaultPlan(), Counters())


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def runtime(world: SavingWorld, rec: Recorder) -> Runtime:
    return Runtime(world, registry=rec.registry)


def run(runtime: Runtime, *statements: list[RawCommand], input: list[Any] | None = None) -> FakeSink:
    sink = FakeSink()
    runtime.run(list(statements), input or [], sink, Session("admin"))
    return sink


def cmd(name: str, *params: tuple[str | None, Any]) -> RawCommand:
    return RawCommand(name, list(params))


def test_single_command_outputs_to_sink(runtime: Runtime) -> None:
    sink = run(runtime, [cmd("Get-VM", ("Name", "web01"))])
    assert [o.get("Name") for o in sink.outputs] == ["web01"]


def test_statements_run_in_order(runtime: Runtime, rec: Recorder) -> None:
    sink = run(runtime, [cmd("Get-VM", ("Name", "a"))], [cmd("Get-VM", ("Name", "b"))])
    assert [o.get("Name") for o in sink.outputs] == ["a", "b"]
    assert [c[0] for c in rec.calls] == ["Get-VM", "Get-VM"]


def test_terminating_error_stops_later_statements(runtime: Runtime, rec: Recorder) -> None:
    with pytest.raises(PSError) as info:
        run(runtime, [cmd("Get-VM", ("Bogus", 1))], [cmd("Get-VM")])
    assert info.value.fqid == "NamedParameterNotFound,Microsoft.HyperV.PowerShell.Commands.GetVM"
    assert rec.calls == []


def test_unknown_command(runtime: Runtime) -> None:
    with pytest.raises(PSError) as info:
        run(runtime, [cmd("Get-Nothing")])
    assert info.value.fqid == "CommandNotFoundException"
    assert info.value.message.startswith("The term 'Get-Nothing' is not recognized")


def test_catalog_cmdlet_without_handler_is_not_modelled(runtime: Runtime) -> None:
    with pytest.raises(PSError) as info:
        run(runtime, [cmd("Get-VMHost")])
    assert info.value.fqid == "CmdletNotModelled,Microsoft.HyperV.PowerShell.Commands.GetVMHost"
    assert info.value.category == "NotImplemented"


def test_command_alias_reaches_handler(runtime: Runtime, rec: Recorder) -> None:
    rec.registry["restore-vmsnapshot"] = Registration(lambda ctx, call: [call.invoked_as, call.parameter_set])
    sink = run(runtime, [cmd("Restore-VMCheckpoint", ("Name", "base"), ("VMName", "web01"))])
    assert sink.outputs == ["Restore-VMCheckpoint", "SnapshotName"]


def test_pipe_by_value_calls_once_per_object(runtime: Runtime, rec: Recorder) -> None:
    stop = cmd("Stop-VM", ("Force", PRESENT), ("Passthru", PRESENT))
    sink = run(runtime, [cmd("Get-VM", ("Name", ["a", "b"])), stop])
    stops = [c for c in rec.calls if c[0] == "Stop-VM"]
    assert len(stops) == 2
    assert [c[1].parameter_set for c in stops] == ["VMObject", "VMObject"]
    assert [c[2].get("Name") for c in stops] == ["a", "b"]
    assert stops[0][1].params["Force"] is True
    assert [o.get("Name") for o in sink.outputs] == ["a", "b"]


def test_pipe_strings_bind_name_by_value(runtime: Runtime, rec: Recorder) -> None:
    run(runtime, [cmd("Get-VM")], input=["x", "y"])
    gets = [c for c in rec.calls if c[0] == "Get-VM"]
    assert [c[1].params["Name"] for c in gets] == [["x"], ["y"]]


def test_pipe_by_property_name(runtime: Runtime, rec: Recorder) -> None:
    # Get-NetNat's -Name takes pipeline input ByPropertyName only.
    rec.registry["get-netnat"] = Registration(lambda ctx, call: [call.params.get("Name")])
    row = PSObj(["Selected.System.Object"], {"Name": "labnat", "Other": 1})
    sink = run(runtime, [cmd("Get-NetNat")], input=[row])
    assert sink.outputs == [["labnat"]]


def test_empty_upstream_never_calls_process(runtime: Runtime, rec: Recorder) -> None:
    sink = run(runtime, [cmd("Get-VM", ("Name", "missing"), ("ErrorAction", "SilentlyContinue")), cmd("Stop-VM")])
    assert [c[0] for c in rec.calls] == ["Get-VM"]
    assert sink.errors == []


def test_collects_input_gets_all_objects_once(runtime: Runtime, rec: Recorder) -> None:
    sink = run(runtime, [cmd("Get-VM", ("Name", ["a", "b", "c"])), cmd("Select-Object", ("First", 2))])
    selects = [c for c in rec.calls if c[0] == "Select-Object"]
    assert len(selects) == 1
    assert [v.get("Name") for v in selects[0][3]] == ["a", "b", "c"]
    assert [o.get("Name") for o in sink.outputs] == ["a", "b"]


def test_non_terminating_error_is_stamped_and_continues(runtime: Runtime) -> None:
    sink = run(runtime, [cmd("Get-VM", ("Name", ["missing", "b"]))])
    assert [o.get("Name") for o in sink.outputs] == ["b"]
    assert len(sink.errors) == 1
    assert sink.errors[0].fqid == "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM"


def test_error_action_stop_makes_error_terminating(runtime: Runtime) -> None:
    with pytest.raises(PSError) as info:
        run(runtime, [cmd("Get-VM", ("Name", ["missing", "b"]), ("ErrorAction", "Stop"))])
    assert info.value.fqid == "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM"
    assert info.value.terminating


def test_error_action_silently_continue_drops_error(runtime: Runtime) -> None:
    sink = run(runtime, [cmd("Get-VM", ("Name", ["missing", "b"]), ("ea", "SilentlyContinue"))])
    assert sink.errors == []
    assert len(sink.outputs) == 1


def test_warning_action_silently_continue(runtime: Runtime) -> None:
    sink = run(runtime, [cmd("Get-VMNetworkAdapter", ("VMName", "a"))])
    assert sink.warnings == ["a warning"]
    sink = run(runtime, [cmd("Get-VMNetworkAdapter", ("VMName", "a"), ("WarningAction", "SilentlyContinue"))])
    assert sink.warnings == []


def test_per_object_binding_failure_is_non_terminating(runtime: Runtime, rec: Recorder) -> None:
    rec.registry["new-netnat"] = Registration(lambda ctx, call: ["made"])
    sink = run(runtime, [cmd("New-NetNat", ("Name", "n"))], input=[1, 2])
    assert sink.outputs == []
    assert [e.fqid for e in sink.errors] == ["InputObjectNotBound,New-NetNat"] * 2


def test_per_object_binding_failure_with_stop_is_terminating(runtime: Runtime, rec: Recorder) -> None:
    rec.registry["new-netnat"] = Registration(lambda ctx, call: ["made"])
    with pytest.raises(PSError) as info:
        run(runtime, [cmd("New-NetNat", ("Name", "n"), ("ErrorAction", "Stop"))], input=[1])
    assert info.value.fqid == "InputObjectNotBound,New-NetNat"


def test_handler_psrror_is_terminating_with_cmdlet_type(runtime: Runtime, rec: Recorder) -> None:
    def fail(ctx: CmdletContext, call: BoundCall) -> None:
        raise PSError("The operation cannot be performed while the virtual machine is in its current state.",
                      "InvalidState", "InvalidOperation")
    rec.registry["save-vm"] = Registration(fail)
    with pytest.raises(PSError) as info:
        run(runtime, [cmd("Save-VM", ("Name", "a"))])
    assert info.value.fqid == "InvalidState,Microsoft.HyperV.PowerShell.Commands.SaveVM"
    assert info.value.terminating


def test_handler_bug_is_an_internal_error_without_details(runtime: Runtime,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(PSError) as info:
        run(runtime, [cmd("Start-VM", ("Name", "a"))])
    err = info.value
    assert err.message == "An internal error occurred in the simulated host: KeyError"
    assert "secret-token-value" not in err.message
    assert err.fqid == "SimulatorInternalError,Microsoft.HyperV.PowerShell.Commands.StartVM"
    assert "handler for Start-VM failed" in caplog.text


def test_cmdlet_fail_fault_non_terminating_by_default(world: World, runtime: Runtime, rec: Recorder) -> None:
    world.faults.add(FaultRule("cmdlet_fail", match={"cmdlet": "Stop-VM", "vm": "b"},
                               params={"message": "'b' failed to change state.", "error_id": "OperationFailed",
                                       "category": "InvalidOperation"}))
    sink = run(runtime, [cmd("Stop-VM", ("Name", "a"))], [cmd("Stop-VM", ("Name", "b"))])
    assert [c[1].params["Name"] for c in rec.calls] == [["a"]]
    assert len(sink.errors) == 1
    err = sink.errors[0]
    assert err.fqid == "OperationFailed,Microsoft.HyperV.PowerShell.Commands.StopVM"
    assert err.message == "'b' failed to change state."
    assert err.category == "InvalidOperation"


def test_cmdlet_fail_fault_terminating_and_defaults(world: World, runtime: Runtime) -> None:
    world.faults.add(FaultRule("cmdlet_fail", match={"cmdlet": "Get-VM"}, params={"terminating": True}))
    with pytest.raises(PSError) as info:
        run(runtime, [cmd("Get-VM", ("Name", "web01"))])
    assert info.value.fqid == "OperationFailed,Microsoft.HyperV.PowerShell.Commands.GetVM"
    assert info.value.message == "'web01' failed."
    assert info.value.exception_type == "Microsoft.HyperV.PowerShell.VirtualizationException"


def test_counters_count_cmdlets(world: World, runtime: Runtime) -> None:
    run(runtime, [cmd("Get-VM", ("Name", ["a", "b"])), cmd("Stop-VM")])
    assert world.counters.get("cmdlet:Get-VM") == 1
    assert world.counters.get("cmdlet:Stop-VM") == 1
    assert world.counters.get("pipelines") == 0  # the wire counts pipelines


def test_save_when_dirty_even_after_error(world: SavingWorld, runtime: Runtime) -> None:
    run(runtime, [cmd("Get-VM")])
    assert world.saves == 0
    with pytest.raises(PSError):
        run(runtime, [cmd("Remove-VM", ("Name", "a"))], [cmd("Get-VM", ("Bogus", 1))])
    assert world.saves == 1
    assert world.dirty is False


def test_whatif_skips_handler(runtime: Runtime, rec: Recorder) -> None:
    sink = run(runtime, [cmd("Stop-VM", ("Name", "a"), ("WhatIf", PRESENT))])
    assert rec.calls == []
    assert sink.outputs == [] and sink.errors == []


def test_script_is_refused(runtime: Runtime) -> None:
    with pytest.raises(PSError) as info:
        run(runtime, [RawCommand("Get-VM | Stop-VM", [], is_script=True)])
    err = info.value
    assert err.fqid == "ScriptNotModelled"
    assert err.category == "NotImplemented"
    assert err.message == "The simulated host runs cmdlets only; script text is not modelled by the simulator."


def test_script_hook(runtime: Runtime, rec: Recorder) -> None:
    seen: list[Any] = []

    def script(ctx: CmdletContext, call: BoundCall) -> list[Any]:
        seen.append((call.params["Script"], call.params["Arguments"], list(ctx.all_input)))
        return ["ran"]
    rec.registry["<script>"] = Registration(script)
    sink = run(runtime, [RawCommand("param($x) $x", [("x", 1)], is_script=True)], input=[5])
    assert sink.outputs == ["ran"]
    assert seen == [("param($x) $x", [("x", 1)], [5])]


def test_handler_runs_under_world_lock(world: World, runtime: Runtime, rec: Recorder) -> None:
    held: list[bool] = []

    def check(ctx: CmdletContext, call: BoundCall) -> None:
        # RLock: owned by this thread while the handler runs.
        held.append(ctx.world.lock._is_owned())  # type: ignore[attr-defined]
    rec.registry["get-vmhost"] = Registration(check)
    run(runtime, [cmd("Get-VMHost")])
    assert held == [True]


def test_verbose_needs_verbose_switch(runtime: Runtime) -> None:
    assert run(runtime, [cmd("Get-VMNetworkAdapter", ("VMName", "a"))]).verbose_lines == []
    sink = run(runtime, [cmd("Get-VMNetworkAdapter", ("VMName", "a"), ("Verbose", PRESENT))])
    assert sink.verbose_lines == ["a verbose line"]


def test_warning_action_stop_stops_after_the_warning(runtime: Runtime) -> None:
    sink = FakeSink()
    with pytest.raises(PSError) as info:
        runtime.run([[cmd("Get-VMNetworkAdapter", ("VMName", "a"), ("WarningAction", "Stop"))]], [], sink,
                    Session("admin"))
    assert sink.warnings == ["a warning"]
    assert info.value.fqid == "ActionPreferenceStop,Microsoft.HyperV.PowerShell.Commands.GetVMNetworkAdapter"
    assert info.value.message.endswith("is set to Stop: a warning")
