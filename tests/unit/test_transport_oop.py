"""OopTransport against a real PSRP peer: psrpcore's ServerRunspacePool behind PowerShell's out-of-process
framing, driven here on a thread over OS pipes (the framing read with an XML parser of its own, not labctl's)."""

from __future__ import annotations

import base64
import os
import sys
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import psrpcore
import pytest
from psrpcore.types import (
    ErrorCategory,
    ErrorCategoryInfo,
    NETException,
    PSEnumBase,
    PSInvocationState,
    PSObject,
    PSSecureString,
    PSType,
    add_note_property,
)

from labctl.errors import AnswerLostError, ConnectError, RemoteCommandError
from labctl.secret import Secret
from labctl.transport.base import SWITCH, Credential, Invocation, Pipeline, RemoteObject, RetryPolicy, ScriptBlock
from labctl.transport.local import LocalCarrier, server_command
from labctl.transport.oop import OopTransport, ProtocolError, decode, encode_data, encode_guid

EMPTY = "00000000-0000-0000-0000-000000000000"
Handler = Callable[[psrpcore.ServerPipeline, list[Any], list[Any]], None]


class Peer:
    """A PowerShell out-of-process server made of psrpcore's server objects; ``handler`` runs each pipeline."""

    def __init__(self, handler: Handler, *, drop_on_command: bool = False) -> None:
        self.handler = handler
        self.drop_on_command = drop_on_command
        self.key_requests = 0
        self.packets: list[str] = []
        c_read, s_write = os.pipe()
        s_read, c_write = os.pipe()
        self.client = (os.fdopen(c_read, "rb"), os.fdopen(c_write, "wb"))
        self._in, self._out = os.fdopen(s_read, "rb"), os.fdopen(s_write, "wb")
        self.pool = psrpcore.ServerRunspacePool()
        self._inputs: dict[uuid.UUID, list[Any]] = {}
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _write(self, line: str) -> None:
        self._out.write(line.encode() + b"\n")
        self._out.flush()

    def _drain(self) -> None:
        while (payload := self.pool.data_to_send()) is not None:
            guid = str(payload.pipeline_id or EMPTY)
            self._write(f"<Data Stream='Default' PSGuid='{guid}'>{base64.b64encode(payload.data).decode()}</Data>")

    def _serve(self) -> None:
        try:
            for line in self._in:
                element = ET.fromstring(line)
                guid = element.attrib["PSGuid"]
                self.packets.append(element.tag)
                if element.tag == "Data":
                    pid = None if guid == EMPTY else uuid.UUID(guid)
                    self.pool.receive_data(psrpcore.PSRPPayload(base64.b64decode(element.text or ""),
                                                                psrpcore.StreamType.default, pid))
                    self._write(f"<DataAck PSGuid='{guid}' />")
                    while (event := self.pool.next_event()) is not None:
                        self._on_event(event)
                elif element.tag == "Command":
                    if self.drop_on_command:
                        break
                    psrpcore.ServerPipeline(self.pool, uuid.UUID(guid))
                    self._write(f"<CommandAck PSGuid='{guid}' />")
                elif element.tag == "Close":
                    self._write(f"<CloseAck PSGuid='{guid}' />")
                    if guid == EMPTY:
                        break
                self._drain()
        finally:
            self._out.close()

    def _on_event(self, event: Any) -> None:
        if isinstance(event, psrpcore.PublicKeyEvent):
            self.key_requests += 1
        elif isinstance(event, psrpcore.CreatePipelineEvent):
            self._inputs[event.pipeline_id] = []
            pipe = self.pool.pipeline_table[event.pipeline_id]
            pipe.start()
            if event.pipeline.no_input:
                self._run(pipe, event.pipeline)
            else:
                pipe.metadata = event.pipeline
        elif isinstance(event, psrpcore.PipelineInputEvent):
            self._inputs[event.pipeline_id].append(event.data)
        elif isinstance(event, psrpcore.EndOfPipelineInputEvent):
            pipe = self.pool.pipeline_table[event.pipeline_id]
            self._run(pipe, pipe.metadata)

    def _run(self, pipe: psrpcore.ServerPipeline, metadata: Any) -> None:
        self.handler(pipe, list(metadata.commands), self._inputs.get(pipe.pipeline_id, []))
        if pipe.state == PSInvocationState.Running:
            pipe.complete()


@PSType(["Microsoft.HyperV.PowerShell.VMState"])
class VMState(PSEnumBase):
    """Hyper-V's VMState enum (2 = Running), serialized as PowerShell does: its name in ToString."""

    Running = 2
    Off = 3


def _vm(name: str, memory: int) -> PSObject:
    vm = PSObject()
    vm.PSObject.type_names = ["Microsoft.HyperV.PowerShell.VirtualMachine", "System.Object"]
    vm.PSObject.to_string = f"VirtualMachine (Name = '{name}')"
    add_note_property(vm, "Name", name)
    add_note_property(vm, "State", VMState.Running)
    add_note_property(vm, "MemoryStartup", psrpcore.types.PSInt64(memory))
    return vm


def _record(message: str, fqid: str, reason: str, target: str) -> dict[str, Any]:
    exc = NETException(Message=message)
    return dict(exception=exc, category_info=ErrorCategoryInfo(Category=ErrorCategory.InvalidArgument,
                                                              Reason=reason, TargetName=target),
                fully_qualified_error_id=fqid)


def _transport(peer: Peer, **kwargs: Any) -> OopTransport:
    class PipeCarrier:
        def open(self) -> tuple[Any, Any]:
            return peer.client

        def exit_reason(self) -> str | None:
            return "the peer stopped"

        def close(self) -> None:
            pass

    return OopTransport("test-peer", PipeCarrier, size=1, **kwargs)


def test_packets_round_trip_and_garbage_is_refused() -> None:
    pid = uuid.uuid4()
    packet = decode(encode_data(b"\x00fragment", pid))
    assert (packet.tag, packet.guid, packet.stream, packet.data) == ("Data", pid, "Default", b"\x00fragment")
    assert encode_guid("Close", None) == f"<Close PSGuid='{EMPTY}' />\n".encode()
    assert decode(b'<CloseAck PSGuid="%s"/>' % EMPTY.encode()).guid is None
    with pytest.raises(ProtocolError, match="not a PowerShell out-of-process packet"):
        decode(b"Welcome to PowerShell!")


def test_objects_enums_errors_and_warnings_come_back_as_plain_values() -> None:
    seen: list[Any] = []

    def handler(pipe: psrpcore.ServerPipeline, commands: list[Any], inputs: list[Any]) -> None:
        seen.append([(c.command_text, [(p[0], p[1]) for p in c.parameters]) for c in commands])
        pipe.write_output(_vm("dc1", 4 * 2**30))
        pipe.write_warning("the VM has no network adapter")
        pipe.write_error(**_record('Hyper-V was unable to find a virtual machine with name "x".',
                                   "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM",
                                   "VirtualizationException", "x"))

    peer = Peer(handler)
    transport = _transport(peer)
    res = transport.invoke(Pipeline.piped(Invocation("Get-VM", {"Name": ["dc1", "x"], "Size": 5 * 2**40}),
                                          Invocation("Select-Object", {"First": 1, "Force": SWITCH})))
    vm = res.objects()[0]
    assert isinstance(vm, RemoteObject) and vm.is_a("Microsoft.HyperV.PowerShell.VirtualMachine")
    assert vm.props == {"Name": "dc1", "State": "Running", "MemoryStartup": 4 * 2**30}
    assert type(vm["Name"]) is str and type(vm["MemoryStartup"]) is int
    assert res.warnings == ["the VM has no network adapter"]
    assert [(e.message, e.fqid, e.category, e.target) for e in res.errors] == [
        ('Hyper-V was unable to find a virtual machine with name "x".',
         "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM", "VirtualizationException", "x")]
    (get_vm, select), = seen
    assert get_vm[0] == "Get-VM" and get_vm[1][0] == ("Name", ["dc1", "x"])
    size = get_vm[1][1][1]
    assert size == 5 * 2**40 and "System.Int64" in size.PSObject.type_names  # I64, not an overflowing I32
    # A switch goes as PowerShell's AddParameter(name) sends it: the name with a null value.
    assert select == ("Select-Object", [("First", 1), ("Force", None)])
    assert transport.stats == {"pipelines": 1, "retries": 0, "connections": 1, "lost_answers": 0}
    assert peer.key_requests == 0  # no secret, no session key exchange
    transport.close()
    peer.thread.join(5)
    assert peer.packets[-1] == "Close"


def test_a_failed_pipeline_raises_remote_command_error_with_the_record_fields() -> None:
    def handler(pipe: psrpcore.ServerPipeline, commands: list[Any], inputs: list[Any]) -> None:
        from psrpcore.types import ErrorRecord

        record = _record("The operation cannot be performed while the virtual machine is in its current state.",
                         "InvalidState,Microsoft.HyperV.PowerShell.Commands.StartVM", "VirtualizationException",
                         "dc1")
        pipe._change_state(PSInvocationState.Failed, error=ErrorRecord(
            Exception=record["exception"], CategoryInfo=record["category_info"],
            FullyQualifiedErrorId=record["fully_qualified_error_id"]))

    peer = Peer(handler)
    transport = _transport(peer)
    with pytest.raises(RemoteCommandError) as info:
        transport.invoke(Invocation("Start-VM", {"Name": "dc1"}))
    err = info.value
    assert (err.command, err.fqid, err.category, err.target) == (
        "Start-VM", "InvalidState,Microsoft.HyperV.PowerShell.Commands.StartVM", "VirtualizationException", "dc1")
    assert "current state" in str(err)
    transport.close()


def test_secrets_are_secure_strings_after_one_key_exchange_and_input_is_piped() -> None:
    got: list[Any] = []

    def handler(pipe: psrpcore.ServerPipeline, commands: list[Any], inputs: list[Any]) -> None:
        params = dict(commands[0].parameters)
        got.append((params, inputs))

    peer = Peer(handler)
    transport = _transport(peer)
    cred = Credential("Administrator", Secret("Guest-Pa55!"))
    transport.invoke(Invocation("Invoke-Command", {"VMName": "dc1", "Credential": cred,
                                                   "ScriptBlock": ScriptBlock("param($k) $k"),
                                                   "ArgumentList": [Secret("tls-key")]}))
    transport.invoke(Invocation("ConvertTo-Json", {"Depth": 2}), input=[{"a": 1}, "two"])
    transport.invoke(Invocation("New-LocalUser", {"Password": Secret("x")}))
    assert peer.key_requests == 1  # once per session, and only because a call carried a secret
    (first, _), (_, piped), (third, _) = got
    assert first["Credential"].UserName == "Administrator"
    assert isinstance(first["Credential"].Password, PSSecureString)
    assert first["Credential"].Password.decrypt() == "Guest-Pa55!"
    assert first["ArgumentList"][0].decrypt() == "tls-key"
    assert "System.Management.Automation.ScriptBlock" in first["ScriptBlock"].PSObject.type_names
    assert [dict(piped[0]), piped[1]] == [{"a": 1}, "two"]
    assert third["Password"].decrypt() == "x"
    transport.close()


def test_a_stream_that_ends_after_the_call_left_is_a_lost_answer() -> None:
    peer = Peer(lambda *a: None, drop_on_command=True)
    transport = _transport(peer, policy=RetryPolicy(budget_seconds=0))
    transport._reached = True  # the session opened: the drop happens to the pipeline
    with pytest.raises(AnswerLostError, match="the answer to New-VM was lost") as info:
        transport.invoke(Invocation("New-VM", {"Name": "dc1"}), retry=False)
    assert "the peer stopped" in str(info.value)
    assert transport.stats["lost_answers"] == 1


def test_local_server_command_missing_or_failing_is_a_clear_connect_error() -> None:
    missing = OopTransport("local", lambda: LocalCarrier(["/nonexistent/pwsh", "-s"]))
    with pytest.raises(ConnectError, match="/nonexistent/pwsh not found") as info:
        missing.invoke(Invocation("Get-VM"))
    assert "LABCTL_LOCAL_SERVER" in (info.value.hint or "")
    failing = OopTransport("local", lambda: LocalCarrier(
        [sys.executable, "-c", "import sys; sys.stderr.write('no simulator runs for /x\\n'); sys.exit(1)"]))
    with pytest.raises(ConnectError, match="exited with code 1: no simulator runs for /x"):
        failing.invoke(Invocation("Get-VM"))
    assert failing.stats["retries"] == 0


def test_server_command_comes_from_the_environment_or_windows() -> None:
    assert server_command({"LABCTL_LOCAL_SERVER": "py -m hvsim.oop --state '/a b'"}, "linux") == \
        ["py", "-m", "hvsim.oop", "--state", "/a b"]
    assert server_command({}, "win32") == ["powershell.exe", "-s", "-NoLogo", "-NoProfile"]
    with pytest.raises(ConnectError, match="needs Windows") as info:
        server_command({}, "linux")
    assert "LABCTL_LOCAL_SERVER" in (info.value.hint or "")
