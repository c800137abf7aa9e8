"""PSRP over PowerShell's out-of-process framing, with psrpcore's client: the SSH and local transports.

PowerShell's OutOfProcTransportManager speaks one XML packet per line over a byte stream (the stdin/stdout of
``powershell.exe -s`` or ``pwsh -sshs``, an SSH channel to the ``powershell`` subsystem):

    client -> server  <Data Stream='Default' PSGuid='G'>BASE64</Data>   <Command PSGuid='G' />
                      <Signal PSGuid='G' />   <Close PSGuid='G' />
    server -> client  <Data Stream='Default' PSGuid='G'>BASE64</Data>   <DataAck PSGuid='G' />
                      <CommandAck PSGuid='G' />   <SignalAck PSGuid='G' />   <CloseAck PSGuid='G' />

G is 00000000-0000-0000-0000-000000000000 for the runspace pool and the pipeline id for a pipeline; BASE64
carries PSRP fragments. The client waits for the ack of each packet it sends (PowerShell's
OutOfProcessClientSessionTransportManager; pypsrp's newer ``psrp`` package, psrp/_connection/out_of_proc.py,
does the same). One session is one carrier stream with one runspace pool; like PsrpTransport the transport
keeps a small pool of sessions, one per worker, each opened on first use.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import logging
import queue
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import psrpcore
from psrpcore.types import (
    PSCredential,
    PSDateTime,
    PSDuration,
    PSInt64,
    PSInvocationState,
    PSObject,
    PSScriptBlock,
    PSSecureString,
    RunspacePoolState,
)

from labctl.secret import Secret, Sensitive
from labctl.transport.base import (
    Cancel,
    Credential,
    Invocation,
    Pipeline,
    RemoteError,
    RemoteObject,
    Result,
    RetryPolicy,
    ScriptBlock,
    Switch,
)
from labctl.transport.common import (
    ConnectionPool,
    Failure,
    check_result,
    count_pipeline,
    invoke_with_retries,
    is_big_int,
    needs_keys,
    new_stats,
    raise_final,
    short,
)

log = logging.getLogger(__name__)

EMPTY_GUID = uuid.UUID(int=0)
# PowerShell's remoting fragment size (BaseTransportManager.DefaultFragmentSize, 32 KiB); unconfirmed for the
# out-of-process server, which accepts larger ones. Keeps one packet line small.
FRAGMENT_SIZE = 32 * 1024
# How long an ack (DataAck, CommandAck, CloseAck) may take: the server sends it as soon as it read the packet.
ACK_TIMEOUT = 60.0
MAX_SESSIONS = 25
_DONE = (PSInvocationState.Completed, PSInvocationState.Failed, PSInvocationState.Stopped)


class Reader(Protocol):
    def readline(self) -> bytes: ...


class Writer(Protocol):
    def write(self, data: bytes, /) -> Any: ...

    def flush(self) -> None: ...


class Carrier(Protocol):
    """One byte stream to a PowerShell out-of-process server (an SSH channel, a local process).

    ``open`` raises common.Failure (classified by the carrier: auth, unreachable, fatal, transient);
    ``exit_reason`` says why the stream ended, when the carrier knows (the server's stderr, its exit code).
    """

    def open(self) -> tuple[Reader, Writer]: ...

    def exit_reason(self) -> str | None: ...

    def close(self) -> None: ...


CarrierFactory = Callable[[], Carrier]


# --- packets ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Packet:
    """One out-of-process packet: its element, target (None for the pool), stream and PSRP bytes."""

    tag: str
    guid: uuid.UUID | None
    stream: str = "Default"
    data: bytes = b""


def encode_data(data: bytes, guid: uuid.UUID | None, stream: str = "Default") -> bytes:
    """A <Data> packet line."""
    target = str(guid or EMPTY_GUID)
    return f"<Data Stream='{stream}' PSGuid='{target}'>".encode() + base64.b64encode(data) + b"</Data>\n"


def encode_guid(tag: str, guid: uuid.UUID | None) -> bytes:
    """A <Command />, <Signal />, <Close /> (or ack) packet line."""
    return f"<{tag} PSGuid='{guid or EMPTY_GUID}' />\n".encode()


class ProtocolError(Exception):
    """The peer sent something that is not an out-of-process packet."""


_PACKET = re.compile(rb"<(?P<tag>[A-Za-z]+)(?P<attrs>(?:\s+[A-Za-z]+\s*=\s*(?:'[^']*'|\"[^\"]*\"))*)\s*"
                     rb"(?:/>|>(?P<body>[A-Za-z0-9+/=]*)</(?P=tag)>)")
_ATTR = re.compile(rb"([A-Za-z]+)\s*=\s*(?:'([^']*)'|\"([^\"]*)\")")


def decode(line: bytes) -> Packet:
    """Parse one packet line (the trailing newline optional). The packets are this fixed form, so a pattern
    reads them (no XML parser: no entities, no DTD from a peer)."""
    text = line.strip()
    match = _PACKET.fullmatch(text)
    try:
        if match is None:
            raise ValueError("no packet")
        attrs = {m.group(1).decode(): (m.group(2) if m.group(2) is not None else m.group(3)).decode()
                 for m in _ATTR.finditer(match.group("attrs"))}
        guid = uuid.UUID(attrs["PSGuid"])
        data = base64.b64decode(match.group("body") or b"", validate=True)
    except (KeyError, ValueError, binascii.Error) as exc:
        raise ProtocolError(f"not a PowerShell out-of-process packet: {short(text.decode('utf-8', 'replace'))}"
                            ) from exc
    tag = match.group("tag").decode()
    return Packet(tag, None if guid == EMPTY_GUID else guid, attrs.get("Stream", "Default"), data)


# --- values -----------------------------------------------------------------------------------------------


def to_wire(value: Any) -> Any:
    """labctl values -> what psrpcore serializes (SecureString, PSCredential, SBK, I64)."""
    if isinstance(value, Secret):
        return PSSecureString(value.reveal())
    if isinstance(value, Credential):
        return PSCredential(UserName=value.username, Password=PSSecureString(value.password.reveal()))
    if isinstance(value, ScriptBlock):
        return PSScriptBlock(value.text)
    if isinstance(value, Sensitive):
        return str.__str__(value)
    if is_big_int(value):
        return PSInt64(value)
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    return value


def _type_names(obj: PSObject) -> list[str]:
    # psrpcore prefixes the names of types it cannot rehydrate with "Deserialized."; labctl's values carry the
    # names as the host wrote them (as pypsrp gives them), and RemoteObject.is_a accepts both.
    return [n.removeprefix("Deserialized.") for n in obj.PSObject.type_names]


def from_wire(value: Any) -> Any:
    """psrpcore values -> plain values: enums become their names, objects RemoteObject (as psrp.py gives them)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, PSObject):
        names = _type_names(value)
        if "System.Enum" in names:
            return value.PSObject.to_string if value.PSObject.to_string is not None else str(int(value))
        if isinstance(value, str):
            return str.__str__(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, bytes):
            return bytes(value)
        if isinstance(value, PSDateTime):
            return datetime.datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                                     value.microsecond, tzinfo=value.tzinfo)
        if isinstance(value, PSDuration):
            return datetime.timedelta(days=value.days, seconds=value.seconds, microseconds=value.microseconds)
        if isinstance(value, uuid.UUID):
            return uuid.UUID(int=value.int)
        if isinstance(value, list):
            return [from_wire(v) for v in value]
        if isinstance(value, dict):
            return {str(k): from_wire(v) for k, v in value.items()}
        if isinstance(value, PSSecureString):
            return "<SecureString>"  # never decrypted into a result
        props: dict[str, Any] = {}
        meta = value.PSObject
        for prop in [*meta.adapted_properties, *meta.extended_properties]:
            props[prop.name] = from_wire(prop.get_value(value))
        return RemoteObject(names, props, meta.to_string)
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    if isinstance(value, dict):
        return {str(k): from_wire(v) for k, v in value.items()}
    return value


def _prop(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    try:
        return getattr(obj, name)
    except AttributeError:
        return None


def error_of(record: Any) -> RemoteError:
    """A psrpcore ErrorRecord -> RemoteError, with the fields psrp.py gives (category is CategoryInfo.Reason)."""
    details = _prop(record, "ErrorDetails")
    exc = _prop(record, "Exception")
    info = _prop(record, "CategoryInfo")
    message = _prop(details, "Message") or _prop(exc, "Message") or ""
    if not message and record is not None:
        message = str(record)
    target = _prop(info, "TargetName")
    return RemoteError(message=str(message), fqid=str(_prop(record, "FullyQualifiedErrorId") or ""),
                       category=str(_prop(info, "Reason") or ""), target=str(target) if target else None)


# --- one session ------------------------------------------------------------------------------------------


class _Eof(Exception):
    """The server closed the stream."""


class _Session:
    """One carrier stream with an open runspace pool; used by one thread at a time."""

    def __init__(self, carrier: Carrier) -> None:
        self.carrier = carrier
        self.reader, self.writer = carrier.open()
        self._inbox: queue.Queue[bytes | BaseException | None] = queue.Queue()
        self._acks: list[tuple[str, uuid.UUID | None]] = []
        self._thread = threading.Thread(target=self._read_loop, name="labctl-oop-reader", daemon=True)
        self._thread.start()
        self.pool = psrpcore.ClientRunspacePool()
        self.keys_exchanged = False
        self.opened = False
        self.pool.open()
        self._flush()
        while self.pool.state != RunspacePoolState.Opened:
            event = self._next_event(None)
            if isinstance(event, psrpcore.RunspacePoolStateEvent) and event.state == RunspacePoolState.Broken:
                raise Failure("fatal", f"the host refused the runspace pool: {error_of(event.reason).message}")
        self.opened = True

    # packets
    def _read_loop(self) -> None:
        try:
            while True:
                line = self.reader.readline()
                if not line:
                    break
                self._inbox.put(line)
        except BaseException as exc:  # a broken stream ends the session like EOF, with its reason
            self._inbox.put(exc)
        self._inbox.put(None)

    def _packet(self, timeout: float | None) -> Packet:
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"the server sent nothing for {timeout:.0f} s") from None
        if item is None:
            self._inbox.put(None)  # later reads see the end too
            raise _Eof()
        if isinstance(item, BaseException):
            raise item
        return decode(item)

    def _handle(self, packet: Packet) -> None:
        if packet.tag == "Data":
            stream = psrpcore.StreamType.prompt_response if packet.stream == "PromptResponse" \
                else psrpcore.StreamType.default
            self.pool.receive_data(psrpcore.PSRPPayload(packet.data, stream, packet.guid))
        elif packet.tag in ("DataAck", "CommandAck", "SignalAck", "CloseAck"):
            key = (packet.tag, packet.guid)
            if key in self._acks:
                self._acks.remove(key)
        else:
            raise ProtocolError(f"unexpected out-of-process packet <{packet.tag}>")

    def _send(self, line: bytes, ack: str, guid: uuid.UUID | None) -> None:
        key = (ack, guid)
        self._acks.append(key)
        self.writer.write(line)
        self.writer.flush()
        while key in self._acks:
            self._handle(self._packet(ACK_TIMEOUT))

    def _flush(self) -> None:
        while (payload := self.pool.data_to_send(FRAGMENT_SIZE)) is not None:
            stream = "PromptResponse" if payload.stream_type == psrpcore.StreamType.prompt_response else "Default"
            self._send(encode_data(payload.data, payload.pipeline_id, stream), "DataAck", payload.pipeline_id)

    def _next_event(self, timeout: float | None) -> psrpcore.PSRPEvent:
        while True:
            event = self.pool.next_event()
            if event is not None:
                if isinstance(event, psrpcore.PublicKeyRequestEvent):
                    self.pool.exchange_key()  # the server asks for the session key itself
                    self._flush()
                return event
            self._handle(self._packet(timeout))

    # pipelines
    def exchange_keys(self) -> None:
        """The session key for SecureStrings, once per session, only when a call carries one (as pypsrp)."""
        self.pool.exchange_key()
        self._flush()
        while not isinstance(self._next_event(ACK_TIMEOUT), psrpcore.EncryptedSessionKeyEvent):
            pass
        self.keys_exchanged = True

    def run(self, pipeline: Pipeline, input: Sequence[Any] | None) -> tuple[list[Any], list[Any], list[str], bool]:
        ps = psrpcore.ClientPowerShell(self.pool, no_input=input is None)
        wants_keys = False
        for statement in pipeline.statements:
            for inv in statement:
                ps.add_command(inv.command)
                for name, value in inv.parameters.items():
                    if isinstance(value, Switch):
                        ps.add_parameter(name, True)
                    else:
                        wants_keys = wants_keys or needs_keys(value)
                        ps.add_parameter(name, to_wire(value))
            ps.add_statement()
        if input is not None:
            wants_keys = wants_keys or needs_keys(list(input))
        if wants_keys and not self.keys_exchanged:
            self.exchange_keys()
        ps.start()
        pid = ps.pipeline_id
        self._send(encode_guid("Command", pid), "CommandAck", pid)
        self._flush()
        if input is not None:
            for item in input:
                ps.send(to_wire(item))
            ps.send_eof()
            self._flush()
        output: list[Any] = []
        errors: list[Any] = []
        warnings: list[str] = []
        failed = False
        while True:
            event = self._next_event(None)
            if getattr(event, "pipeline_id", None) != pid:
                continue
            if isinstance(event, psrpcore.PipelineOutputEvent):
                output.append(event.data)
            elif isinstance(event, psrpcore.ErrorRecordEvent):
                errors.append(event.record)
            elif isinstance(event, psrpcore.WarningRecordEvent):
                warnings.append(str(_prop(event.record, "Message") or event.record))
            elif isinstance(event, psrpcore.PipelineStateEvent) and event.state in _DONE:
                if event.reason is not None:
                    errors.append(event.reason)
                failed = event.state != PSInvocationState.Completed
                break
        ps.close()
        self._send(encode_guid("Close", pid), "CloseAck", pid)
        return output, errors, warnings, failed

    def close(self) -> None:
        try:
            if self.opened:
                self.pool.begin_close()
                self._send(encode_guid("Close", None), "CloseAck", None)
        except Exception:  # closing a broken session must not mask the real error
            log.debug("closing the out-of-process session failed", exc_info=True)
        finally:
            self.carrier.close()


# --- the transport ----------------------------------------------------------------------------------------


class OopTransport:
    """A host connection over out-of-process PSRP sessions; thread-safe, up to ``size`` parallel pipelines.

    Errors, retries, AnswerLostError and stats behave as PsrpTransport's: transient failures (a stream that
    ended, a session the server dropped) are retried within ``policy``; a host that cannot be reached at all
    (no SSH server, no PowerShell server command, a refused key or host key) fails at once.
    """

    def __init__(self, endpoint: str, carrier: CarrierFactory, *, username: str | None = None, size: int = 4,
                 policy: RetryPolicy | None = None, cancel: Cancel | None = None,
                 service: str = "its PowerShell remoting server") -> None:
        self.endpoint = endpoint
        self.username = username
        self._carrier = carrier
        self._service = service
        self.size = max(1, min(size, MAX_SESSIONS))
        self.policy = policy or RetryPolicy()
        self.cancel = cancel or Cancel()
        self._pool: ConnectionPool[_Session] = ConnectionPool(self.size, self._open)
        self._lock = threading.Lock()
        self._reached = False  # a session opened once: from then on a stream that ends is transient
        self.stats = new_stats()

    def _open(self) -> _Session:
        carrier = self._carrier()
        try:
            session = _Session(carrier)
        except Failure as failure:
            carrier.close()
            failure.sent = False
            if failure.kind == "unreachable" and self._reached:
                failure.kind = "transient"  # the host answered before: it may be restarting
            raise
        except Exception as exc:  # KeyboardInterrupt is the user's, never a connection failure
            carrier.close()
            mapped = self._classify(exc, carrier, opening=True)
            mapped.sent = False
            raise mapped from exc
        with self._lock:
            self._reached = True
            self.stats["connections"] += 1
        return session

    def _classify(self, exc: BaseException, carrier: Carrier, *, opening: bool = False) -> Failure:
        """Map a failure of the stream or of psrpcore, once, to what it means for labctl."""
        if isinstance(exc, (_Eof, OSError, TimeoutError)):
            reason = carrier.exit_reason()
            what = "the connection ended" if isinstance(exc, _Eof) else short(exc)
            text = f"{self.endpoint}: {what}" + (f": {reason}" if reason else "")
            if opening and not self._reached:
                return Failure("unreachable", f"cannot open a PowerShell session on {text}",
                               "is the PowerShell remoting server there? (the powershell subsystem of sshd, "
                               "or the local server command)")
            return Failure("transient", text)
        if isinstance(exc, ProtocolError):
            return Failure("transient" if self._reached else "fatal", f"{self.endpoint}: {exc}")
        if isinstance(exc, psrpcore.PSRPCoreError):
            return Failure("transient", f"{self.endpoint}: {type(exc).__name__}: {short(exc)}")
        return Failure("fatal", f"{self.endpoint}: {type(exc).__name__}: {short(exc)}")

    def _raise_final(self, failure: Failure, command: str, attempts: int, seconds: float) -> None:
        raise_final(failure, endpoint=self.endpoint, username=self.username, command=command, attempts=attempts,
                    seconds=seconds, service=self._service)

    def invoke(self, pipeline: Pipeline | Invocation, *, input: Sequence[Any] | None = None,
               retry: bool = True) -> Result:
        """Run a pipeline. ``retry=False`` for calls that must not run twice (they create things)."""
        if isinstance(pipeline, Invocation):
            pipeline = Pipeline.of(pipeline)
        return invoke_with_retries(lambda: self._invoke_once(pipeline, input), pipeline=pipeline, retry=retry,
                                   policy=self.policy, cancel=self.cancel, stats=self.stats,
                                   final=self._raise_final, endpoint=self.endpoint)

    def _invoke_once(self, pipeline: Pipeline, input: Sequence[Any] | None) -> Result:
        log.debug("%s: %s", self.endpoint, pipeline.describe())  # describe() redacts secrets
        with self._pool.use() as session:
            try:
                output, records, warnings, failed = session.run(pipeline, input)
            except Failure:
                raise
            except Exception as exc:
                raise self._classify(exc, session.carrier) from exc
        count_pipeline(self._lock, self.stats)
        result = Result(output=[from_wire(o) for o in output], errors=[error_of(e) for e in records],
                        warnings=warnings)
        return check_result(result, had_errors=failed, command=pipeline.first_command)

    def close(self) -> None:
        self._pool.close()


__all__ = ["Carrier", "CarrierFactory", "OopTransport", "Packet", "decode", "encode_data",
           "encode_guid", "error_of", "from_wire", "to_wire"]
