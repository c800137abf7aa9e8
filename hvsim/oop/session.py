"""One PowerShell out-of-process (OOP) session over a byte stream, served against the live simulator.

What PowerShell's server does with each client packet (OutOfProcessMediatorBase in PowerShell/PowerShell,
src/System.Management.Automation/engine/remoting/server/OutOfProcServerMediator.cs, and the server transport
managers of engine/remoting/fanin/OutOfProcTransportManager.cs), and so what this session does:

- ``Data`` for the pool (Guid.Empty) or a pipeline: the PSRP fragments are processed, then ``DataAck`` with the
  same PSGuid (``ProcessRawData``); Data for a pipeline that no longer exists is acknowledged only;
- ``Command``: a pipeline transport is made, then ``CommandAck`` (``CreateCommandTransportManager``); its
  CreatePipeline fragments follow in Data packets of that PSGuid;
- ``Signal`` for a pipeline: it is stopped, and ``SignalAck`` always follows; a Signal to the session is an error
  (IPCNoSignalForSession);
- ``Close`` for a pipeline: it is dropped, ``CloseAck``; ``Close`` for Guid.Empty: the session closes, ``CloseAck``;
- a DataAck/CommandAck/SignalAck/CloseAck from the client, an empty line or a line that does not parse is fatal:
  PowerShell's stdio server writes the message to stderr and exits with 4000 (EXITCODE_UNHANDLED_EXCEPTION).
  Here the session ends and :attr:`OopSession.error` holds the message (the relay prints it and exits 4000).

Server output goes out as ``<Data Stream='Default' PSGuid=...>`` packets as soon as psrpcore makes the fragments
(32 KiB at most, the OOP transport's fragment size). The runspace pool and pipelines are a
:class:`hvsim.wsman.shell.Shell` attached to the WSMan service: same runtime, clock, counters, worker pool,
error records and MaxShellsPerUser as a WinRM shell.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from typing import Protocol

from hvsim.oop import framing
from hvsim.oop.framing import NULL_GUID, OopProtocolError, Packet
from hvsim.powershell.cmdlet import Session
from hvsim.wsman.service import WSManService
from hvsim.wsman.shell import Shell
from hvsim.wsman.soap import WSManFault

log = logging.getLogger(__name__)

EXIT_UNHANDLED = 4000  # OutOfProcessUtils.EXITCODE_UNHANDLED_EXCEPTION (0x0FA0)
# RemotingErrorIdStrings.FatalErrorCausingClose: PSRP data the server could not process.
FATAL = "An error has occurred which Windows PowerShell cannot handle. A remote session might have ended."


class Reader(Protocol):
    def readline(self) -> bytes: ...


class Writer(Protocol):
    def write(self, data: bytes, /) -> object: ...

    def flush(self) -> object: ...


def _unknown(tag: str) -> OopProtocolError:
    return OopProtocolError(f'An unknown element "{tag}" was received. This can happen if the remote process '
                            "closed or ended abnormally.")


class OopSession:
    """Serve one OOP client until it closes the pool, the stream ends or a packet is fatal."""

    def __init__(self, service: WSManService, session: Session, reader: Reader, writer: Writer) -> None:
        self._service = service
        self._session = session
        self._reader = reader
        self._writer = writer
        self._out: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._write_failed = threading.Event()
        self.shell: Shell | None = None
        self.error: OopProtocolError | None = None

    # ------------------------------------------------------------------ output
    def _emit(self, pipeline_id: uuid.UUID | None, data: bytes) -> None:
        self._out.put(framing.data_packet(data, pipeline_id or NULL_GUID))

    def _send(self, packet: bytes) -> None:
        self._out.put(packet)

    def _write_loop(self) -> None:
        while True:
            item = self._out.get()
            batch = [item]
            while item is not None and not self._out.empty():
                item = self._out.get()
                batch.append(item)
            chunks = [b for b in batch if b is not None]
            if chunks and not self._write_failed.is_set():
                try:
                    self._writer.write(b"".join(chunks))
                    self._writer.flush()
                except (OSError, ValueError):
                    self._write_failed.set()  # the client went away; keep draining until the session ends
            if batch[-1] is None:
                return

    # ------------------------------------------------------------------ input
    def serve(self) -> OopProtocolError | None:
        """Run the session; returns the fatal error, if any (also kept in :attr:`error`)."""
        writer = threading.Thread(target=self._write_loop, name="oop-writer", daemon=True)
        writer.start()
        try:
            self.shell = self._service.attach_shell(self._session, self._emit)
        except WSManFault as fault:  # MaxShellsPerUser or the service's limit
            self.error = OopProtocolError(fault.reason)
        try:
            while self.shell is not None and self.error is None:
                line = self._reader.readline()
                if not line:
                    break  # EOF: the client died; PowerShell closes the session
                if not line.strip():
                    # PowerShell's Start() loop: an empty line closes the session and is reported as an error.
                    self.error = _unknown("")
                    break
                try:
                    if not self._handle(framing.parse_packet(line)):
                        break
                except OopProtocolError as exc:
                    self.error = exc
        except (OSError, ValueError) as exc:
            log.info("OOP session input ended: %s", type(exc).__name__)
        finally:
            if self.shell is not None:
                self._service.detach_shell(self.shell)
            self._out.put(None)
            writer.join(timeout=30)
        if self.error is not None:
            log.warning("OOP session ended by a protocol error: %s", self.error)
        return self.error

    def _handle(self, packet: Packet) -> bool:
        """Act on one packet; False once the session is closed."""
        shell = self.shell
        assert shell is not None
        tag, guid = packet.tag, packet.guid
        if tag == framing.DATA:
            with shell.cond:
                pipeline_id = None if packet.is_pool else guid
                if pipeline_id is None or pipeline_id in shell.runs:
                    try:
                        shell.feed(packet.data, pipeline_id)
                    except WSManFault:
                        raise OopProtocolError(FATAL) from None
                self._send(framing.data_ack(guid))
            return True
        if tag == framing.COMMAND:
            if packet.is_pool:
                raise OopProtocolError(FATAL)
            try:
                shell.open_pipeline(guid)
            except WSManFault as fault:
                if fault.subcode == "w:AlreadyExists":  # Dictionary.Add in CreateCommandTransportManager
                    raise OopProtocolError(f"An item with the same key has already been added. Key: {guid}") \
                        from None
                raise OopProtocolError(fault.reason) from None
            self._send(framing.command_ack(guid))
            return True
        if tag == framing.SIGNAL:
            if packet.is_pool:
                raise OopProtocolError("A Signal message to a session is not supported. A Signal message can be "
                                       "sent only to a command.")
            try:
                shell.stop_pipeline(guid)
            finally:
                self._send(framing.signal_ack(guid))
            return True
        if tag == framing.CLOSE:
            if packet.is_pool:
                self._service.detach_shell(shell)
                self.shell = None
                self._send(framing.close_ack(guid))
                return False
            shell.close_pipeline(guid)
            self._send(framing.close_ack(guid))
            return True
        raise _unknown(tag)  # an ack sent to the server
