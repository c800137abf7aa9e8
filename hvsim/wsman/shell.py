"""One WinRS shell = one PSRP runspace pool (psrpcore ServerRunspacePool) and its pipelines.

psrpcore has no I/O and is not thread-safe: every call into a shell's pool happens under the
shell's condition. Outgoing PSRP fragments are routed per pipeline (``None`` = the pool) so each
Receive gets its own pipeline's data. Pipelines run on a worker pool so Command returns at once
and a ctrl_c Signal can stop them.

The runspace pool and pipeline machinery is transport-neutral: PowerShell's out-of-process server
(hvsim.oop) uses the same Shell with ``on_output`` (fragments pushed as they are made, no Receive)
and ``open_pipeline`` / ``stop_pipeline`` / ``close_pipeline`` in place of the WinRS operations.
"""

from __future__ import annotations

import base64
import binascii
import collections
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol

import psrpcore
from psrpcore.types import (
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    PSInvocationState,
)

from hvsim.powershell.cmdlet import Session
from hvsim.powershell.errors import PSError
from hvsim.powershell.runtime import RawCommand
from hvsim.wsman import convert
from hvsim.wsman.soap import WSManFault, invalid_selectors, operation_timed_out

log = logging.getLogger(__name__)

MAX_PIPELINES = 256  # unfinished pipelines per shell
KEEP_FINISHED = 64  # finished pipelines whose output nobody collected, kept for a late Receive
TERMINAL = (PSInvocationState.Completed, PSInvocationState.Failed, PSInvocationState.Stopped)
_EXC_BASES = ["System.SystemException", "System.Exception", "System.Object"]


class PipelineHost(Protocol):
    """What a shell needs from the simulator to run a pipeline (Runtime.run + persistence)."""

    def run_pipeline(self, statements: list[list[RawCommand]], input: list[Any], sink: Any,
                     session: Session) -> None: ...


class PipelineStoppedError(Exception):
    """Raised into the runtime from a sink write once the client stopped the pipeline."""


def psrp_fault(exc: Exception) -> WSManFault:
    """A PSRP payload psrpcore could not process."""
    return WSManFault(0x80338083, "The WS-Management service cannot process the request. The data source failed "
                      f"to return results for the request. ({type(exc).__name__})", "w:InternalError")


def error_record(err: PSError) -> ErrorRecord:
    """A PSError as the ErrorRecord PowerShell would serialize."""
    exc = NETException(Message=err.message, HResult=err.hresult)
    names = [err.exception_type]
    if err.exception_type != "System.Management.Automation.RuntimeException" and \
            err.exception_type.startswith("System.Management.Automation."):
        names.append("System.Management.Automation.RuntimeException")
    names.extend(n for n in _EXC_BASES if n not in names)
    exc.PSObject.type_names = names
    try:
        category = ErrorCategory[err.category]
    except KeyError:
        category = ErrorCategory.NotSpecified
    target = err.target
    return ErrorRecord(
        Exception=exc,
        CategoryInfo=ErrorCategoryInfo(
            Category=category,
            Activity=err.activity or "",
            Reason=err.exception_type.rsplit(".", 1)[-1],
            TargetName="" if target is None else str(target),
            TargetType=err.target_type or ("" if target is None else _target_type(target)),
        ),
        TargetObject=convert.to_ps(target),
        FullyQualifiedErrorId=err.fqid,
    )


def _target_type(target: Any) -> str:
    if isinstance(target, str):
        return "String"
    if isinstance(target, bool):
        return "Boolean"
    if isinstance(target, int):
        return "Int32"
    names = getattr(target, "type_names", None)
    if names:
        return str(names[0]).rsplit(".", 1)[-1]
    return type(target).__name__


def split_statements(commands: list[Any]) -> list[list[RawCommand]]:
    """psrpcore Commands -> statements of RawCommands (split on end_of_statement)."""
    statements: list[list[RawCommand]] = []
    current: list[RawCommand] = []
    for cmd in commands:
        params = [(name, convert.argument(name, value)) for name, value in cmd.parameters]
        current.append(RawCommand(str(cmd.command_text), params, bool(cmd.is_script)))
        if cmd.end_of_statement:
            statements.append(current)
            current = []
    if current:
        statements.append(current)
    return statements


@dataclass
class PipelineRun:
    """Server-side state of one pipeline."""

    id: uuid.UUID
    pipe: psrpcore.ServerPipeline
    metadata: Any = None
    raw_input: list[Any] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    submitted: bool = False

    @property
    def finished(self) -> bool:
        return self.pipe.state in TERMINAL


class _PipelineSink:
    """StreamSink writing a pipeline's streams into its PSRP pipeline."""

    def __init__(self, shell: Shell, run: PipelineRun) -> None:
        self._shell = shell
        self._run = run

    def _write(self, fn: Callable[[psrpcore.ServerPipeline], None]) -> None:
        with self._shell.cond:
            if self._run.stop.is_set():
                raise PipelineStoppedError()
            if self._run.pipe.state != PSInvocationState.Running:
                return
            fn(self._run.pipe)
            self._shell.drain()

    def output(self, value: Any) -> None:
        obj = convert.to_ps(value)
        self._write(lambda p: p.write_output(obj))

    def error(self, err: PSError) -> None:
        rec = error_record(err)
        self._write(lambda p: p.write_error(rec.Exception, rec.CategoryInfo, rec.TargetObject,
                                            rec.FullyQualifiedErrorId))

    def warning(self, text: str) -> None:
        self._write(lambda p: p.write_warning(str(text)))

    def verbose(self, text: str) -> None:
        self._write(lambda p: p.write_verbose(str(text)))


class Shell:
    """A runspace pool reached through WinRS shell operations."""

    def __init__(self, shell_id: str, resource_uri: str, session: Session, host: PipelineHost,
                 executor: Executor, max_envelope: int, on_pipeline: Callable[[], None] | None = None,
                 on_output: Callable[[uuid.UUID | None, bytes], None] | None = None) -> None:
        self.id = shell_id
        self.resource_uri = resource_uri
        self.session = session
        self.owner = session.username
        self.created = time.time()
        self.last_activity = time.monotonic()
        self.idle_timeout = 7200.0  # seconds without a request before WinRM closes the shell (see the service)
        self.receiving = 0  # Receives waiting right now: a long poll is activity
        self.cond = threading.Condition(threading.RLock())
        self.pool = psrpcore.ServerRunspacePool()
        self.closed = False
        self._host = host
        self._executor = executor
        self._on_pipeline = on_pipeline
        self._on_output = on_output  # push transport: fragments go there (cond held) instead of a Receive queue
        self._outq: dict[uuid.UUID | None, collections.deque[bytes]] = collections.defaultdict(collections.deque)
        self.runs: dict[uuid.UUID, PipelineRun] = {}
        # Fragments must fit base64'd in the client's MaxEnvelopeSize with room for the envelope.
        self.max_fragment = max(1024, min(32768, (max_envelope - 4096) * 3 // 4))

    # ------------------------------------------------------------------ psrpcore plumbing (cond held)
    def drain(self) -> None:
        while True:
            payload = self.pool.data_to_send(self.max_fragment)
            if payload is None:
                break
            if payload.pipeline_id is not None and payload.pipeline_id not in self.runs:
                continue  # a terminated pipeline: nobody will receive it
            if self._on_output is not None:
                self._on_output(payload.pipeline_id, payload.data)
                continue
            self._outq[payload.pipeline_id].append(payload.data)
        self.cond.notify_all()

    def feed(self, data: bytes, pipeline_id: uuid.UUID | None) -> None:
        try:
            self.pool.receive_data(psrpcore.PSRPPayload(data, psrpcore.StreamType.default, pipeline_id))
            while True:
                event = self.pool.next_event()
                if event is None:
                    break
                self._on_event(event)
        except WSManFault:
            raise
        except Exception as exc:
            log.warning("shell %s: PSRP payload rejected: %s", self.id, type(exc).__name__)
            raise psrp_fault(exc) from None
        finally:
            self.drain()

    def _on_event(self, event: Any) -> None:
        if isinstance(event, psrpcore.CreatePipelineEvent):
            run = self.runs.get(event.pipeline_id)
            if run is None:
                raise psrp_fault(KeyError("pipeline"))
            run.metadata = event.pipeline
            run.pipe.start()
            if event.pipeline.no_input:
                self._submit(run)
        elif isinstance(event, psrpcore.PipelineInputEvent):
            run = self.runs.get(event.pipeline_id) if event.pipeline_id else None
            if run is not None and len(run.raw_input) < 100_000:
                run.raw_input.append(event.data)
        elif isinstance(event, psrpcore.EndOfPipelineInputEvent):
            run = self.runs.get(event.pipeline_id) if event.pipeline_id else None
            if run is not None and run.metadata is not None:
                self._submit(run)
        elif isinstance(event, psrpcore.GetAvailableRunspacesEvent):
            self.pool.runspace_availability_response(event.ci, self.pool.max_runspaces)
        elif isinstance(event, psrpcore.SetMaxRunspacesEvent | psrpcore.SetMinRunspacesEvent
                        | psrpcore.ResetRunspaceStateEvent):
            self.pool.runspace_availability_response(event.ci, True)
        # SessionCapability, InitRunspacePool and PublicKey are answered by psrpcore itself.

    def _submit(self, run: PipelineRun) -> None:
        if run.submitted:
            return
        run.submitted = True
        if self._on_pipeline is not None:
            self._on_pipeline()
        self._executor.submit(self._run_pipeline, run)

    # ------------------------------------------------------------------ pipeline execution (worker)
    def _run_pipeline(self, run: PipelineRun) -> None:
        failure: PSError | None = None
        try:
            statements = split_statements(list(run.metadata.commands))
            pipeline_input = [convert.to_neutral(v) for v in run.raw_input]
            self._host.run_pipeline(statements, pipeline_input, _PipelineSink(self, run), self.session)
        except PipelineStoppedError:
            pass
        except PSError as err:
            failure = err
        except Exception as exc:  # a simulator bug: fail the pipeline like an unhandled .NET exception
            log.error("pipeline %s failed inside the simulator: %s", run.id, type(exc).__name__,
                      exc_info=log.isEnabledFor(logging.DEBUG))
            failure = PSError(f"The simulated host failed to run the command: {type(exc).__name__}.",
                              "SimulatorInternalError", "NotSpecified", bare=True, terminating=True)
        with self.cond:
            pipe = run.pipe
            if run.id not in self.runs:  # terminated while running: nothing to report
                return
            if pipe.state == PSInvocationState.Running:
                if run.stop.is_set():
                    pipe.stop()
                elif failure is not None:
                    # psrpcore 0.3.1 has no public fail(): emit the Failed state with the ErrorRecord.
                    pipe._change_state(PSInvocationState.Failed, error=error_record(failure))
                else:
                    pipe.complete()
            self.drain()

    # ------------------------------------------------------------------ WinRS operations
    def command(self, command_id: uuid.UUID, arguments: str | None) -> None:
        with self.cond:
            run = self.open_pipeline(command_id)
            try:
                self.feed(_b64(arguments or ""), command_id)
            except WSManFault:
                self._forget(run)
                raise

    def open_pipeline(self, command_id: uuid.UUID) -> PipelineRun:
        """A new pipeline slot whose CreatePipeline message has yet to arrive (WSManFault on quota or reuse)."""
        with self.cond:
            self.last_activity = time.monotonic()
            finished = [r for r in self.runs.values() if r.finished]
            for stale in finished[:-KEEP_FINISHED]:  # stopped or abandoned, never collected
                self._forget(stale)
            if len(self.runs) - min(len(finished), KEEP_FINISHED) >= MAX_PIPELINES:
                raise WSManFault(0x8033803F, "The WS-Management service is busy servicing other requests. "
                                 "Retry later.", "w:QuotaLimit")
            if command_id in self.runs or command_id in self.pool.pipeline_table:
                raise WSManFault(0x80338033, "The WS-Management service cannot create the resource because it "
                                 "already exists.", "w:AlreadyExists", sender=True)
            pipe = psrpcore.ServerPipeline(self.pool, command_id)
            run = self.runs[command_id] = PipelineRun(command_id, pipe)
            return run

    def send(self, streams: list[tuple[uuid.UUID | None, str]]) -> None:
        with self.cond:
            self.last_activity = time.monotonic()
            for pipeline_id, text in streams:
                if pipeline_id is not None and pipeline_id not in self.runs:
                    raise command_not_found()
                self.feed(_b64(text), pipeline_id)

    def signal(self, pipeline_id: uuid.UUID | None, code: str) -> None:
        with self.cond:
            self.last_activity = time.monotonic()
            if pipeline_id is None:
                return
            run = self.runs.get(pipeline_id)
            if run is None:
                return
            if code.endswith("signal/ctrl_c") or code.endswith("signal/crtl_c"):
                self.stop_pipeline(pipeline_id)
            elif code.endswith("signal/Terminate"):
                self._forget(run)

    def stop_pipeline(self, pipeline_id: uuid.UUID) -> None:
        """Stop a pipeline (its state becomes Stopped); unknown or finished pipelines are ignored."""
        with self.cond:
            self.last_activity = time.monotonic()
            run = self.runs.get(pipeline_id)
            if run is None:
                return
            run.stop.set()
            if run.pipe.state in (PSInvocationState.Running, PSInvocationState.Stopping):
                run.pipe.stop()
                self.drain()

    def close_pipeline(self, pipeline_id: uuid.UUID) -> None:
        """Drop a pipeline (stopping it first if it still runs); its later output goes nowhere."""
        with self.cond:
            self.last_activity = time.monotonic()
            run = self.runs.get(pipeline_id)
            if run is not None:
                self._forget(run)

    def _forget(self, run: PipelineRun) -> None:
        run.stop.set()
        self._outq.pop(run.id, None)
        self.runs.pop(run.id, None)
        self.pool.pipeline_table.pop(run.id, None)
        self.cond.notify_all()

    def receive(self, pipeline_id: uuid.UUID | None, timeout: float,
                max_envelope: int) -> tuple[list[bytes], bool | None]:
        """Long-poll for output: (fragments, done) where done is None for a pool-level Receive."""
        budget = max(self.max_fragment, (max_envelope - 4096) * 3 // 4)
        deadline = time.monotonic() + max(timeout - 0.25, 0.05)
        with self.cond:
            self.last_activity = time.monotonic()
            self.receiving += 1
            try:
                return self._receive(pipeline_id, deadline, budget)
            finally:
                self.receiving -= 1
                self.last_activity = time.monotonic()

    def idle_for(self, now: float) -> float:
        """Seconds since the client last did anything on this shell (0 while a Receive waits)."""
        return 0.0 if self.receiving else max(now - self.last_activity, 0.0)

    def _receive(self, pipeline_id: uuid.UUID | None, deadline: float,
                 budget: int) -> tuple[list[bytes], bool | None]:
        with self.cond:
            while True:
                queue = self._outq.get(pipeline_id)
                if queue:
                    break
                if self.closed:
                    raise shell_not_found(self.id)
                if pipeline_id is not None:
                    run = self.runs.get(pipeline_id)
                    if run is None or run.finished:
                        break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise operation_timed_out()
                self.cond.wait(remaining)
            chunks: list[bytes] = []
            size = 0
            queue = self._outq.get(pipeline_id)
            while queue and (not chunks or size + len(queue[0]) <= budget):
                size += len(queue[0])
                chunks.append(queue.popleft())
            if pipeline_id is None:
                return chunks, None
            run = self.runs.get(pipeline_id)
            done = not queue and (run is None or run.finished)
            if done and run is not None:
                # pypsrp sends no Terminate after invoke(): drop the finished pipeline here.
                self._forget(run)
            return chunks, done

    def close(self) -> None:
        with self.cond:
            self.closed = True
            for run in list(self.runs.values()):
                self._forget(run)
            self.cond.notify_all()

    def command_ids(self) -> list[uuid.UUID]:
        with self.cond:
            return list(self.runs)


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WSManFault(0x80338056, "The WS-Management service cannot process the request because the XML "
                         "content has invalid values.", "w:InvalidXmlValues", sender=True) from exc


def shell_not_found(shell_id: str) -> WSManFault:
    """The fault for a ShellId the service does not know (closed, expired, or never made): 0x8033805B
    (2150858843) with Windows' text, as in the transcripts of WinRb/WinRM#253 and #273."""
    return WSManFault(0x8033805B, f"The request for the Windows Remote Shell with ShellId {shell_id} failed because "
                      "the shell was not found on the server. Possible causes are: the specified ShellId is "
                      "incorrect or the shell no longer exists on the server. Provide the correct ShellId or create "
                      "a new shell and retry the operation.", "w:InvalidSelectors", sender=True)


def command_not_found() -> WSManFault:
    """The fault for a CommandId the shell does not know."""
    return invalid_selectors()
