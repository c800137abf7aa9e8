"""PowerShell's out-of-process (OOP) server of the simulator: the packet codec, the session, and the stdio relay
(``python -m hvsim.oop --state DIR``) driven by psrpcore's client as labctl's SSH and local carriers will."""

from __future__ import annotations

import io
import json
import os
import queue
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import IO, Any

import psrpcore
import pytest
from psrpcore.types import ErrorCategory, PSInvocationState, RunspacePoolState

from hvsim.oop import framing
from hvsim.oop.framing import NULL_GUID, OopProtocolError, Packet, parse_packet
from hvsim.oop.session import OopSession
from hvsim.powershell.cmdlet import Session
from hvsim.server import Simulator
from hvsim.wsman.service import MAX_SHELLS_PER_USER

PIPE = uuid.UUID("1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5")
UNKNOWN = 'An unknown element "{}" was received. This can happen if the remote process closed or ended abnormally.'


# ---------------------------------------------------------------------------------------------- codec
def test_server_packets_have_powershells_exact_form() -> None:
    assert framing.data_packet(b"\x00\x01hi", PIPE) == \
        b"<Data Stream='Default' PSGuid='1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5'>AAFoaQ==</Data>\n"
    assert framing.data_ack() == b"<DataAck PSGuid='00000000-0000-0000-0000-000000000000' />\n"
    assert framing.command_ack(PIPE) == b"<CommandAck PSGuid='1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5' />\n"
    assert framing.signal_ack(PIPE) == b"<SignalAck PSGuid='1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5' />\n"
    assert framing.close_ack() == b"<CloseAck PSGuid='00000000-0000-0000-0000-000000000000' />\n"
    with pytest.raises(ValueError):
        framing.guid_packet("Data", PIPE)


@pytest.mark.parametrize("line, expected", [
    (b"<Data Stream='Default' PSGuid='00000000-0000-0000-0000-000000000000'>AAE=</Data>\n",
     Packet("Data", NULL_GUID, b"\x00\x01", "Default")),
    (b"<Data Stream='PromptResponse' PSGuid='1D2E3F40-5A6B-4C7D-8E9F-A0B1C2D3E4F5'>AA==</Data>",
     Packet("Data", PIPE, b"\x00", "PromptResponse")),
    (b'<Command PSGuid="1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5"/>\r\n', Packet("Command", PIPE)),
    (b"<Signal PSGuid='1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5' />\n", Packet("Signal", PIPE)),
    (b"<Close PSGuid='00000000-0000-0000-0000-000000000000' />\n", Packet("Close", NULL_GUID)),
    (b"<CloseAck PSGuid='00000000-0000-0000-0000-000000000000' />\n", Packet("CloseAck", NULL_GUID)),
])
def test_client_packets_parse(line: bytes, expected: Packet) -> None:
    assert parse_packet(line) == expected


@pytest.mark.parametrize("line, message", [
    (b"<Hello PSGuid='00000000-0000-0000-0000-000000000000' />", UNKNOWN.format("Hello")),
    (b"<Data PSGuid='00000000-0000-0000-0000-000000000000'>AA==</Data>",
     'Expected only two attributes with the names "Stream" and "PSGuid" in the Data element.'),
    (b"<Command PSGuid='00000000-0000-0000-0000-000000000000' Extra='1' />",
     'Expected only one attribute with the name "PSGuid" in the Command element.'),
    (b"<Close />", 'Expected only one attribute with the name "PSGuid" in the Close element.'),
    (b"<Data Stream='Default' PSGuid='00000000-0000-0000-0000-000000000000'></Data>",
     "Not enough data is available to process the Data element."),
    (b"<Data Stream='Default' PSGuid='00000000-0000-0000-0000-000000000000'><x/></Data>",
     'Node type "Element" is unknown in the Data element. Only the "Text" node type is expected in the Data '
     "element."),
    (b"<Data Stream='Default' PSGuid='00000000-0000-0000-0000-000000000000'>not base64!</Data>",
     "The input is not a valid Base-64 string as it is not a Base 64 string, contains a non-base 64 character, "
     "more than two padding characters, or an illegal character among the padding characters."),
    (b"<Signal PSGuid='not-a-guid' />", "Unrecognized Guid format."),
    (b"hello", "hello"),
])
def test_malformed_packets_are_refused_with_powershells_text(line: bytes, message: str) -> None:
    with pytest.raises(OopProtocolError) as info:
        parse_packet(line)
    assert str(info.value) == message


def test_broken_xml_is_refused() -> None:
    with pytest.raises(OopProtocolError, match="not well formed"):
        parse_packet(b"<Data Stream='Default' PSGuid='x'>AA==")


# ---------------------------------------------------------------------------------------------- client loop
class OopClient:
    """A psrpcore client over the OOP framing, as PowerShell's OutOfProcessClientSessionTransportManager speaks
    it: one Data packet in flight (wait for its DataAck), Command/CommandAck before a pipeline's first fragment,
    Signal/SignalAck to stop, Close/CloseAck for a finished pipeline and then for the pool."""

    def __init__(self, stdin: IO[bytes], stdout: IO[bytes]) -> None:
        self._stdin = stdin
        self._packets: queue.Queue[Packet | None] = queue.Queue()
        self.pool = psrpcore.ClientRunspacePool()
        self.events: dict[uuid.UUID | None, list[Any]] = {}
        self.raw: list[bytes] = []
        threading.Thread(target=self._read, args=(stdout,), daemon=True).start()

    def _read(self, stdout: IO[bytes]) -> None:
        for line in stdout:
            self.raw.append(line)
            self._packets.put(parse_packet(line))
        self._packets.put(None)

    def send(self, packet: bytes) -> None:
        self._stdin.write(packet)
        self._stdin.flush()

    def expect(self, tag: str, guid: uuid.UUID, timeout: float = 60) -> None:
        """Process packets (feeding Data to the pool) until ``tag`` for ``guid`` arrives."""
        while True:
            packet = self._packets.get(timeout=timeout)
            assert packet is not None, f"the server closed the stream while the client waited for {tag}"
            if packet.tag == "Data":
                self._feed(packet)
            elif packet.tag == tag and packet.guid == guid:
                return
            else:
                assert packet.tag in ("DataAck", "CommandAck", "SignalAck", "CloseAck"), packet

    def pump(self, until: Any, timeout: float = 60) -> None:
        while not until():
            packet = self._packets.get(timeout=timeout)
            assert packet is not None, "the server closed the stream"
            if packet.tag == "Data":
                self._feed(packet)

    def _feed(self, packet: Packet) -> None:
        pid = None if packet.is_pool else packet.guid
        self.pool.receive_data(psrpcore.PSRPPayload(packet.data, psrpcore.StreamType.default, pid))
        while (event := self.pool.next_event()) is not None:
            self.events.setdefault(event.pipeline_id, []).append(event)

    def flush(self) -> None:
        while (payload := self.pool.data_to_send()) is not None:
            guid = payload.pipeline_id or NULL_GUID
            self.send(framing.data_packet(payload.data, guid))
            self.expect("DataAck", guid)

    def open(self) -> None:
        self.pool.open()
        self.flush()
        self.pump(lambda: self.pool.state == RunspacePoolState.Opened)

    def start(self, ps: psrpcore.ClientPowerShell) -> None:
        self.send(framing.guid_packet("Command", ps.pipeline_id))
        self.expect("CommandAck", ps.pipeline_id)
        ps.start()
        self.flush()

    def finish(self, ps: psrpcore.ClientPowerShell) -> list[Any]:
        self.pump(lambda: ps.state in (PSInvocationState.Completed, PSInvocationState.Failed,
                                       PSInvocationState.Stopped))
        self.send(framing.guid_packet("Close", ps.pipeline_id))
        self.expect("CloseAck", ps.pipeline_id)
        ps.close()
        return self.events.pop(ps.pipeline_id, [])

    def run(self, command: str, **params: Any) -> list[Any]:
        ps = psrpcore.ClientPowerShell(self.pool)
        ps.add_command(command)
        for name, value in params.items():
            ps.add_parameter(name, value)
        self.start(ps)
        return self.finish(ps)

    def close(self) -> None:
        self.send(framing.guid_packet("Close", NULL_GUID))
        self.expect("CloseAck", NULL_GUID)
        self.pool.close()


def _outputs(events: list[Any]) -> list[Any]:
    return [e.data for e in events if isinstance(e, psrpcore.PipelineOutputEvent)]


def _errors(events: list[Any]) -> list[Any]:
    found = [e.record for e in events if isinstance(e, psrpcore.ErrorRecordEvent)]
    found += [e.reason for e in events if isinstance(e, psrpcore.PipelineStateEvent) and e.reason is not None]
    return found


def _relay(state_dir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "hvsim.oop", "--state", str(state_dir)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=Path(__file__).resolve().parents[2])


def _client(proc: subprocess.Popen[bytes]) -> OopClient:
    assert proc.stdin is not None and proc.stdout is not None
    return OopClient(proc.stdin, proc.stdout)


# ---------------------------------------------------------------------------------------------- end to end
def test_relay_runs_get_vm_errors_and_closes(sim: Simulator) -> None:
    proc = _relay(sim.state_dir)
    try:
        client = _client(proc)
        client.open()
        assert sim.service is not None and sim.service.shell_count() == 1
        before = sim.counters.snapshot().get("pipelines", 0) if sim.counters else 0

        client.run("New-VMSwitch", Name="oop-lab", SwitchType="Internal")
        events = client.run("Get-VMSwitch", Name="oop-lab")
        assert [str(o.Name) for o in _outputs(events)] == ["oop-lab"]
        assert _outputs(client.run("Get-VM")) == []

        events = client.run("Get-VM", Name="nope")
        [err] = _errors(events)
        assert err.FullyQualifiedErrorId == "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM"
        assert str(err.Exception.Message) == 'Hyper-V was unable to find a virtual machine with name "nope".'
        assert err.CategoryInfo.Category == ErrorCategory.InvalidArgument
        assert str(err.CategoryInfo.TargetName) == "nope"

        assert sim.counters is not None and sim.counters.snapshot().get("pipelines", 0) == before + 4
        client.close()
        assert proc.wait(timeout=30) == 0
        assert sim.service.shell_count() == 0
        assert all(line.startswith(b"<") for line in client.raw)
    finally:
        proc.kill()
        proc.wait()


def test_signal_stops_a_long_pipeline(fake_sim: Simulator) -> None:
    proc = _relay(fake_sim.state_dir)
    try:
        client = _client(proc)
        client.open()
        ps = psrpcore.ClientPowerShell(client.pool)
        ps.add_command("Sleep-A-Bit").add_parameter("Seconds", 60)
        client.start(ps)
        client.pump(lambda: any(isinstance(e, psrpcore.VerboseRecordEvent)
                                for e in client.events.get(ps.pipeline_id, [])))
        client.send(framing.guid_packet("Signal", ps.pipeline_id))
        client.expect("SignalAck", ps.pipeline_id)
        events = client.finish(ps)
        assert ps.state == PSInvocationState.Stopped
        assert "slept 60.0" not in _outputs(events)
        assert fake_sim.service is not None and fake_sim.service.running_pipelines() == 0
        assert [o.Name for o in _outputs(client.run("Get-Thing"))] == ["vm1"]  # the pool still works
        client.close()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()


def test_two_relays_at_once(fake_sim: Simulator) -> None:
    procs = [_relay(fake_sim.state_dir) for _ in range(2)]
    try:
        clients = [_client(p) for p in procs]
        for client in clients:
            client.open()
        assert fake_sim.service is not None and fake_sim.service.shell_count() == 2
        results: dict[int, list[Any]] = {}

        def work(i: int) -> None:
            results[i] = [o.Name for n in range(5) for o in _outputs(clients[i].run("Get-Thing", Name=f"c{i}-{n}"))]

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert results == {i: [f"c{i}-{n}" for n in range(5)] for i in range(2)}
        for client in clients:
            client.close()
        assert [p.wait(timeout=30) for p in procs] == [0, 0]
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_fatal_packet_ends_the_relay_with_powershells_message(fake_sim: Simulator) -> None:
    proc = _relay(fake_sim.state_dir)
    out, err = proc.communicate(b"<DataAck PSGuid='00000000-0000-0000-0000-000000000000' />\n", timeout=30)
    # Environment.Exit(4000), as PowerShell's server: POSIX keeps the low 8 bits of an exit status.
    assert proc.returncode == (4000 if os.name == "nt" else 4000 & 0xFF)
    assert UNKNOWN.format("DataAck") in err.decode()
    assert "SIMULATED" in err.decode()
    assert out == b""
    assert fake_sim.service is not None and fake_sim.service.shell_count() == 0


def test_client_eof_closes_the_session(fake_sim: Simulator) -> None:
    proc = _relay(fake_sim.state_dir)
    client = _client(proc)
    client.open()
    ps = psrpcore.ClientPowerShell(client.pool)
    ps.add_command("Sleep-A-Bit").add_parameter("Seconds", 60)
    client.start(ps)
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    assert fake_sim.service is not None
    client.pump(lambda: True)
    deadline = 50
    while fake_sim.service.shell_count() and deadline:
        threading.Event().wait(0.1)
        deadline -= 1
    assert fake_sim.service.shell_count() == 0


def test_relay_without_a_simulator_fails_clearly(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "hvsim.oop", "--state", str(tmp_path / "none")],
                          input=b"", capture_output=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 1
    message = proc.stderr.decode()
    assert "no simulator is running for" in message and "SIMULATED Hyper-V host" in message
    assert "labctl sim serve --state" in message


def test_stale_endpoint_and_wrong_token_fail_clearly(fake_sim: Simulator, tmp_path: Path) -> None:
    stale = tmp_path / "stale"
    stale.mkdir()
    endpoint = json.loads(fake_sim.endpoint_file.read_text())
    (stale / "endpoint.json").write_text(json.dumps(endpoint))
    (stale / "oop_relay.token").write_text("0" * 64)
    proc = subprocess.run([sys.executable, "-m", "hvsim.oop", "--state", str(stale)], input=b"",
                          capture_output=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 1
    assert "refused the relay" in proc.stderr.decode() and "token" in proc.stderr.decode()


def test_endpoint_names_the_relay_port_never_the_token(fake_sim: Simulator) -> None:
    endpoint = json.loads(fake_sim.endpoint_file.read_text())
    assert fake_sim.oop_relay is not None
    assert endpoint["oop_relay"] == {"port": fake_sim.oop_relay.port}
    token_file = fake_sim.state_dir / "oop_relay.token"
    token = token_file.read_text().strip()
    assert len(token) == 64 and token not in fake_sim.endpoint_file.read_text()
    if os.name == "posix":
        assert token_file.stat().st_mode & 0o777 == 0o600


# ---------------------------------------------------------------------------------------------- in process
class _Sink(io.BytesIO):
    def flush(self) -> None:
        pass


def test_serve_oop_in_process_and_session_rules(fake_sim: Simulator) -> None:
    lines = [
        framing.guid_packet("Signal", NULL_GUID),  # a Signal to the session is fatal
    ]
    out = _Sink()
    fake_sim.serve_oop(io.BytesIO(b"".join(lines)), out)
    assert out.getvalue() == b""
    assert fake_sim.service is not None and fake_sim.service.shell_count() == 0

    session = OopSession(fake_sim.service, Session(username=fake_sim.username), io.BytesIO(b"\n"), _Sink())
    assert str(session.serve()) == UNKNOWN.format("")

    # Data for a pipeline that does not exist (any more) is acknowledged, as PowerShell does.
    out = _Sink()
    stream = framing.data_packet(b"x", PIPE) + framing.guid_packet("Close", NULL_GUID)
    session = OopSession(fake_sim.service, Session(username=fake_sim.username), io.BytesIO(stream), out)
    assert session.serve() is None
    assert out.getvalue() == framing.data_ack(PIPE) + framing.close_ack(NULL_GUID)


def test_oop_sessions_count_against_max_shells_per_user(fake_sim: Simulator) -> None:
    service = fake_sim.service
    assert service is not None
    held = [service.attach_shell(Session(username=fake_sim.username), lambda *_: None)
            for _ in range(MAX_SHELLS_PER_USER)]
    try:
        session = OopSession(service, Session(username=fake_sim.username), io.BytesIO(b""), _Sink())
        error = session.serve()
        assert error is not None and f"maximum number of {MAX_SHELLS_PER_USER} concurrent shells" in str(error)
        other = OopSession(service, Session(username="someone-else"), io.BytesIO(b""), _Sink())
        assert other.serve() is None
    finally:
        for shell in held:
            service.detach_shell(shell)
    assert service.shell_count() == 0
