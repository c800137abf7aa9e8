"""PSRP over PowerShell's out-of-process framing: the SSH and local transports (the messages and CLIXML are
transport.wire's and transport.clixml's, as for WinRM).

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
import collections
import logging
import queue
import re
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from labctl.transport import clixml, wire
from labctl.transport.base import (
    Cancel,
    Invocation,
    Pipeline,
    Result,
    RetryPolicy,
)
from labctl.transport.common import (
    ConnectionPool,
    Failure,
    check_result,
    count_pipeline,
    invoke_with_retries,
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
        self.rpid = uuid.uuid4()
        self.fragmenter = wire.Fragmenter(FRAGMENT_SIZE)
        self.defragmenter = wire.Defragmenter()
        self._messages: collections.deque[wire.Message] = collections.deque()
        self.key: wire.SessionKey | None = None
        self._pending_key: wire.SessionKey | None = None
        self.opened = False
        self._send_messages(None, [
            wire.pack_message(wire.SESSION_CAPABILITY, self.rpid, None, clixml.session_capability()),
            wire.pack_message(wire.INIT_RUNSPACEPOOL, self.rpid, None, clixml.init_runspace_pool()),
        ])
        state = None
        while state != wire.POOL_OPENED:
            msg = self._next_message(None)
            if msg.type == wire.RUNSPACEPOOL_STATE:
                state, reason = clixml.pool_state(msg)
                if state in (wire.POOL_BROKEN, wire.POOL_CLOSED):
                    raise Failure("fatal", f"the host refused the runspace pool: {reason or f'state {state}'}")
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
            try:
                self._messages.extend(self.defragmenter.feed(packet.data))
            except wire.ProtocolError as exc:
                raise ProtocolError(str(exc)) from exc
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

    def _send_messages(self, guid: uuid.UUID | None, messages: list[bytes]) -> None:
        for blob in self.fragmenter.pack_many(messages):
            self._send(encode_data(blob, guid), "DataAck", guid)

    def _next_message(self, timeout: float | None) -> wire.Message:
        while True:
            while not self._messages:
                self._handle(self._packet(timeout))
            msg = self._messages.popleft()
            if msg.type == wire.PUBLIC_KEY_REQUEST and self._pending_key is None and self.key is None:
                self._start_key_exchange()  # the server asks for the session key itself
            elif msg.type == wire.ENCRYPTED_SESSION_KEY and self._pending_key is not None:
                self._pending_key.accept(clixml.session_key(msg))
                self.key, self._pending_key = self._pending_key, None
            return msg

    # pipelines
    def _start_key_exchange(self) -> None:
        self._pending_key = wire.SessionKey()
        body = clixml.public_key(self._pending_key.public_blob())
        self._send_messages(None, [wire.pack_message(wire.PUBLIC_KEY, self.rpid, None, body)])

    def exchange_keys(self) -> None:
        """The session key for SecureStrings, once per session, only when a call carries one (as pypsrp)."""
        if self._pending_key is None:
            self._start_key_exchange()
        while self.key is None:
            self._next_message(ACK_TIMEOUT)

    def run(self, pipeline: Pipeline, input: Sequence[Any] | None) -> clixml.Answer:
        if clixml.carries_secrets(pipeline, input) and self.key is None:
            self.exchange_keys()
        encrypt = self.key.encrypt if self.key is not None else None
        pid = uuid.uuid4()
        body = clixml.create_pipeline(pipeline, no_input=input is None, encrypt=encrypt)
        self._send(encode_guid("Command", pid), "CommandAck", pid)
        self._send_messages(pid, [wire.pack_message(wire.CREATE_PIPELINE, self.rpid, pid, body)])
        if input is not None:
            self._send_messages(pid, clixml.input_messages(self.rpid, pid, input, encrypt))
        answer = clixml.Answer()
        while True:
            msg = self._next_message(None)
            if msg.pid == pid and answer.take(msg):
                break
        self._send(encode_guid("Close", pid), "CloseAck", pid)
        return answer

    def close(self) -> None:
        try:
            if self.opened:
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
        """Map a failure of the stream or of the PSRP messages, once, to what it means for labctl."""
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
        if isinstance(exc, (wire.ProtocolError, ET.ParseError, clixml.SerializeError)):
            kind = "fatal" if isinstance(exc, clixml.SerializeError) else "transient"
            return Failure(kind, f"{self.endpoint}: {type(exc).__name__}: {short(exc)}")
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
                answer = session.run(pipeline, input)
            except Failure:
                raise
            except Exception as exc:
                raise self._classify(exc, session.carrier) from exc
        count_pipeline(self._lock, self.stats)
        result = Result(output=answer.output, errors=answer.errors, warnings=answer.warnings)
        # A pipeline that ended Stopped or Failed did not do what was asked.
        return check_result(result, had_errors=answer.state != wire.PIPELINE_COMPLETED,
                            command=pipeline.first_command)

    def close(self) -> None:
        self._pool.close()


__all__ = ["Carrier", "CarrierFactory", "OopTransport", "Packet", "decode", "encode_data", "encode_guid"]
