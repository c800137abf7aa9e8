"""Runs PSRP pipelines against cmdlet handlers: lookup, binding, faults, dispatch, streams.

- ``RawCommand(name, params, is_script)``: ``params`` is a list of (name or None for positional,
  neutral value) in the order the client sent them; values are hvsim.powershell.values types or plain
  Python (str, int, bool, float, None, list, dict, PSObj for deserialized objects).
- ``Runtime(world, catalog=None, registry=None)``; ``runtime.run(statements, input, sink, session)``
  runs each statement (a list of piped commands) in order; raises PSError when a terminating
  error ends the pipeline (the glue then fails the PSRP pipeline with that ErrorRecord).

Semantics kept from PowerShell:
- A statement's commands are piped; a terminating error in any statement ends the whole
  invocation (later statements do not run).
- Process-record semantics: with upstream objects, a cmdlet is bound and called once per object
  (ByValue, then ByPropertyName); with no upstream objects its process block never runs.
  Registrations with ``collects_input`` are called once with every object in ``ctx.all_input``.
- Per-object binding failures and ``ctx.write_error`` are non-terminating unless -ErrorAction Stop;
  SilentlyContinue/Ignore drop them. A PSError raised by a handler is terminating.
- Verbose records reach the client only with -Verbose ($VerbosePreference is SilentlyContinue).
- -WhatIf on a ShouldProcess cmdlet skips the handler. PowerShell writes "What if: ..." to the host
  UI, not to a stream; a pypsrp client brings no host, so nothing is written (as on a real host).

Simplification: commands of a statement run one after the other (each one's output is collected,
then handed to the next), not interleaved record by record; the observable streams are the same
except for the relative order of side effects when a later command fails midway.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hvsim.powershell.binding import ALL_SETS, Binding, bind, display
from hvsim.powershell.catalog import Catalog, CmdletSpec, load_catalog
from hvsim.powershell.cmdlet import REGISTRY, BoundCall, CmdletContext, Registration, Session, StreamSink
from hvsim.powershell.errors import CATEGORIES, PSError, command_not_found
from hvsim.powershell.values import PSObj
from hvsim.world import World

log = logging.getLogger(__name__)

SCRIPT_KEY = "<script>"
SCRIPT_SPEC = CmdletSpec(name=SCRIPT_KEY, type="", module="", default_set=None, parameters={})


@dataclass
class RawCommand:
    """One command as the client sent it."""

    name: str
    params: list[tuple[str | None, Any]] = field(default_factory=list)
    is_script: bool = False


def script_not_modelled(text: str) -> PSError:
    """The simulator runs cmdlets only (unless a "<script>" handler is registered)."""
    return PSError(
        "The simulated host runs cmdlets only; script text is not modelled by the simulator.",
        "ScriptNotModelled",
        "NotImplemented",
        target=text[:200],
        exception_type="System.NotImplementedException",
        bare=True,
        terminating=True,
    )


def cmdlet_not_modelled(name: str) -> PSError:
    """A catalog cmdlet that no handler implements yet."""
    return PSError(
        f"The cmdlet '{name}' exists on a Hyper-V host but is not modelled by the simulator.",
        "CmdletNotModelled",
        "NotImplemented",
        target=name,
        exception_type="System.NotImplementedException",
        terminating=True,
    )


def warning_stop(text: str) -> PSError:
    """-WarningAction Stop: the warning is written, then the command stops."""
    return PSError(
        'The running command stopped because the preference variable "WarningPreference" or common '
        f"parameter is set to Stop: {text}",
        "ActionPreferenceStop",
        "OperationStopped",
        exception_type="System.Management.Automation.ActionPreferenceStopException",
        terminating=True,
    )


def internal_error(exc: BaseException) -> PSError:
    """A handler bug, reported without details (they are logged instead)."""
    return PSError(
        f"An internal error occurred in the simulated host: {type(exc).__name__}",
        "SimulatorInternalError",
        "NotSpecified",
        exception_type="System.InvalidOperationException",
        terminating=True,
    )


class _CommandSink:
    """Completes error ids with the running cmdlet's .NET type before they reach the client."""

    def __init__(self, sink: StreamSink, command_type: str, name: str = "") -> None:
        self._sink = sink
        self._type = command_type
        self._name = name
        # $VerbosePreference is SilentlyContinue on the endpoint: verbose records need -Verbose.
        self.verbose_on = False
        self.warning_stop = False

    def output(self, value: Any) -> None:
        self._sink.output(value)

    def error(self, err: PSError) -> None:
        _stamp(err, self._type, self._name)
        self._sink.error(err)

    def warning(self, text: str) -> None:
        self._sink.warning(text)
        if self.warning_stop:
            raise warning_stop(text)

    def verbose(self, text: str) -> None:
        if self.verbose_on:
            self._sink.verbose(text)


def _stamp(err: PSError, command_type: str, name: str = "") -> PSError:
    if not err.bare and not err.command_type and command_type:
        err.command_type = command_type
    if err.activity is None and name:
        err.activity = name
    return err


def _as_list(result: Iterable[Any] | None) -> list[Any]:
    if result is None:
        return []
    if isinstance(result, str | bytes | PSObj | dict):
        return [result]
    return list(result)


class Runtime:
    """Binds and dispatches commands; one instance serves every shell of a simulator."""

    def __init__(self, world: World, catalog: Catalog | None = None,
                 registry: dict[str, Registration] | None = None) -> None:
        self.world = world
        self.catalog = catalog or load_catalog()
        self.registry = registry if registry is not None else REGISTRY

    # -- public ---------------------------------------------------------------------------------

    def run(self, statements: list[list[RawCommand]], input: list[Any], sink: StreamSink,
            session: Session) -> None:
        """Run the statements in order; raise PSError on the first terminating error."""
        try:
            for index, statement in enumerate(statements):
                # Pipeline input from the client feeds the first statement only.
                upstream: list[Any] | None = list(input) if index == 0 and input else None
                for cmd in statement:
                    upstream = self._run_command(cmd, upstream, sink, session)
                for value in upstream or []:
                    sink.output(value)
        finally:
            if self.world.dirty:
                try:
                    with self.world.lock:
                        self.world.save()
                except Exception:
                    log.exception("saving simulator state failed")

    # -- one command ----------------------------------------------------------------------------

    def _run_command(self, cmd: RawCommand, upstream: list[Any] | None, sink: StreamSink,
                     session: Session) -> list[Any]:
        if cmd.is_script:
            return self._run_script(cmd, upstream, sink, session)
        spec = self.catalog.get(cmd.name)
        if spec is None:
            raise command_not_found(cmd.name)
        self.world.counters.add(f"cmdlet:{spec.name}")
        csink = _CommandSink(sink, spec.type, spec.name)
        try:
            return self._dispatch(spec, cmd, upstream, csink, session)
        except PSError as err:
            err.terminating = True
            raise _stamp(err, spec.type, spec.name) from None
        except Exception as exc:
            log.exception("handler for %s failed", spec.name)
            raise _stamp(internal_error(exc), spec.type, spec.name) from None

    def _registration(self, spec: CmdletSpec) -> Registration | None:
        for key in (spec.name, *spec.aliases):
            reg = self.registry.get(key.lower())
            if reg is not None:
                return reg
        return None

    def _dispatch(self, spec: CmdletSpec, cmd: RawCommand, upstream: list[Any] | None,
                  sink: _CommandSink, session: Session) -> list[Any]:
        binding = bind(spec, cmd.params, invoked_as=cmd.name, expects_input=upstream is not None)
        sink.verbose_on = binding.params.get("Verbose") is True
        sink.warning_stop = str(binding.params.get("WarningAction", "")) == "Stop"
        reg = self._registration(spec)
        if reg is None:
            raise cmdlet_not_modelled(spec.name)
        outputs: list[Any] = []
        if upstream is None:
            call = binding.finish()
            outputs.extend(self._invoke(reg, call, sink, session, None, []))
            return outputs
        if reg.collects_input:
            accepted: list[Any] = []
            for obj in upstream:
                if self._bind_object(binding, obj, sink, session) is not None:
                    accepted.append(obj)
            call = _partial_call(binding)
            outputs.extend(self._invoke(reg, call, sink, session, None, accepted))
            return outputs
        for obj in upstream:
            bound = self._bind_object(binding, obj, sink, session)
            if bound is not None:
                outputs.extend(self._invoke(reg, bound, sink, session, obj, [obj]))
        return outputs

    def _bind_object(self, binding: Binding, obj: Any, sink: _CommandSink,
                     session: Session) -> BoundCall | None:
        """Per-object binding; its failures are non-terminating errors of the command."""
        try:
            return binding.with_input(obj)
        except PSError as err:
            ctx = self._context(binding_error_action(binding), "Continue", sink, session)
            err.terminating = False
            ctx.write_error(err)  # raises under -ErrorAction Stop
            return None

    def _context(self, error_action: str, warning_action: str, sink: _CommandSink,
                 session: Session) -> CmdletContext:
        return CmdletContext(self.world, session, sink, call_error_action=error_action,
                             call_warning_action=warning_action)

    def _invoke(self, reg: Registration, call: BoundCall, sink: _CommandSink, session: Session,
                input_object: Any, all_input: list[Any]) -> list[Any]:
        ctx = self._context(call.error_action, call.warning_action, sink, session)
        ctx.input_object = input_object
        ctx.all_input = all_input
        event = {"cmdlet": call.spec.name, "vm": _vm_name(call), "step": _step_name(call)}
        key = ":".join(event.values())
        # A call about several VMs (Invoke-Command -VMName a,b,c) matches a rule about any of them.
        event["vms"] = ",".join(_vm_names(call))
        faults = self.world.faults
        held = faults.check("hold", key=key, **event)
        if held is not None and held.when == "before":
            faults.hold(held)  # outside the world lock: other requests go on meanwhile
        if self._fault(event, key, call, ctx):
            return []
        if call.params.get("WhatIf") is True and "WhatIf" in call.spec.parameters:
            # "What if: ..." goes to the host UI, which a host-less remoting client never sees.
            return []
        try:
            with self.world.lock:
                return _as_list(reg.handler(ctx, call))
        finally:
            if held is not None and held.when == "after":
                self.world.persist_now()  # what the held call did is on the host, whatever happens next
                faults.hold(held)

    def _fault(self, event: dict[str, str], key: str, call: BoundCall, ctx: CmdletContext) -> bool:
        """An injected cmdlet_fail fault: an error instead of the handler."""
        vm = event["vm"]
        rule = self.world.faults.check("cmdlet_fail", key=key, **event)
        if rule is None:
            return False
        p = rule.params
        category = str(p.get("category", "NotSpecified"))
        if category not in CATEGORIES:
            category = "NotSpecified"
        hyperv = call.spec.module == "Hyper-V"
        err = PSError(
            str(p.get("message", "The operation failed." if not vm else f"'{vm}' failed.")),
            str(p.get("error_id", "OperationFailed")),
            category,
            target=vm or None,
            exception_type=str(p.get("exception_type", "Microsoft.HyperV.PowerShell.VirtualizationException"
                                     if hyperv else "System.Management.Automation.RuntimeException")),
        )
        if p.get("terminating", False):
            err.terminating = True
            raise err
        ctx.write_error(err)
        return True

    # -- scripts --------------------------------------------------------------------------------

    def _run_script(self, cmd: RawCommand, upstream: list[Any] | None, sink: StreamSink,
                    session: Session) -> list[Any]:
        reg = self.registry.get(SCRIPT_KEY)
        if reg is None:
            raise script_not_modelled(cmd.name)
        call = BoundCall(SCRIPT_SPEC, ALL_SETS, {"Script": cmd.name, "Arguments": list(cmd.params)},
                         invoked_as=SCRIPT_KEY)
        csink = _CommandSink(sink, "")
        ctx = self._context("Continue", "Continue", csink, session)
        ctx.all_input = list(upstream or [])
        try:
            with self.world.lock:
                return _as_list(reg.handler(ctx, call))
        except PSError as err:
            err.terminating = True
            raise
        except Exception as exc:
            log.exception("script handler failed")
            raise internal_error(exc) from None


def binding_error_action(binding: Binding) -> str:
    value = binding.params.get("ErrorAction")
    return str(value) if value is not None else "Continue"


def _partial_call(binding: Binding) -> BoundCall:
    """The command-line binding of a collects_input cmdlet (its input is in ctx.all_input)."""
    sets = binding.sets
    chosen = binding.spec.default_set if binding.spec.default_set in sets else sets[0]
    return BoundCall(binding.spec, chosen, dict(binding.params), binding.invoked_as)


_STEP_HEADER = re.compile(r"^#\s*labctl-(?:host-)?step:\s*(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)")


def _step_name(call: BoundCall) -> str:
    """The labctl step a ScriptBlock declares on its first line (``# labctl-step: <name> <version>``), or ""."""
    block = call.params.get("ScriptBlock")
    text = getattr(block, "text", None)
    if not isinstance(text, str):
        return ""
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    m = _STEP_HEADER.match(first)
    return m.group("name") if m else ""


def _vm_names(call: BoundCall) -> list[str]:
    """Every VM a call names (its VMName, Name or VM parameter)."""
    for key in ("VMName", "Name", "VM"):
        if key not in call.params:
            continue
        value = call.params[key]
        values = value if isinstance(value, list) else [value]
        return [display(v.get("Name", v.get("VMName", ""))) if isinstance(v, PSObj) else display(v) for v in values]
    return []


def _vm_name(call: BoundCall) -> str:
    for key in ("VMName", "Name", "VM"):
        if key not in call.params:
            continue
        value = call.params[key]
        if isinstance(value, list):
            value = value[0] if value else ""
        if isinstance(value, PSObj):
            value = value.get("Name", value.get("VMName", ""))
        return display(value)
    return ""
