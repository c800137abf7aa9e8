"""labctl's own CLIXML and PSRP framing (transport.clixml, transport.wire), checked against psrpcore, an
independent implementation of [MS-PSRP]: what labctl writes psrpcore reads as meant, and what psrpcore writes
(as PowerShell would) labctl reads as the values a caller judges."""

from __future__ import annotations

import base64
import os
import struct
import uuid
import xml.etree.ElementTree as ET

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st
from psrpcore.types import (
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    PipelineState,
    PSCryptoProvider,
    PSCustomObject,
    PSInvocationState,
    PSNoteProperty,
    PSObject,
    RunspacePoolState,
    RunspacePoolStateMsg,
    deserialize,
    serialize,
)

from labctl.secret import Secret, Sensitive
from labctl.transport import clixml, wire
from labctl.transport.base import SWITCH, Credential, Invocation, Pipeline, RemoteObject, ScriptBlock

KEY = bytes(range(32))


def _aes() -> Cipher[modes.CBC]:
    return Cipher(algorithms.AES(KEY), modes.CBC(b"\x00" * 16))


def _encrypt(text: str) -> str:
    padder = padding.PKCS7(128).padder()
    data = padder.update(text.encode("utf-16-le")) + padder.finalize()
    enc = _aes().encryptor()
    return base64.b64encode(enc.update(data) + enc.finalize()).decode()


class _Crypto(PSCryptoProvider):
    def decrypt(self, value: str) -> str:
        dec = _aes().decryptor()
        data = dec.update(base64.b64decode(value)) + dec.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return (unpadder.update(data) + unpadder.finalize()).decode("utf-16-le")

    def encrypt(self, value: str) -> str:
        return _encrypt(value)


def _theirs(xml: str) -> object:
    return deserialize(ET.fromstring(xml), _Crypto())


def _write(value: object) -> str:
    w = clixml.Writer(_encrypt)
    w.value(value)
    return w.text()


@given(st.text())
def test_any_string_survives_the_escaping(text: str) -> None:
    assert str(_theirs(_write(text))) == text
    assert clixml.Reader().value(ET.fromstring(_write(text))) == text


def test_values_psrpcore_reads_as_sent() -> None:
    assert _theirs(_write(True)) is True
    assert int(_theirs(_write(7))) == 7  # type: ignore[call-overload]
    big = _theirs(_write(4 * 1024**3))
    assert int(big) == 4 * 1024**3 and "Int64" in big.PSObject.type_names[0]  # type: ignore[call-overload,attr-defined]
    assert _theirs(_write(None)) is None
    assert float(_theirs(_write(1.25))) == 1.25  # type: ignore[arg-type]
    assert bytes(_theirs(_write(b"\x00\xff"))) == b"\x00\xff"  # type: ignore[call-overload]
    assert str(_theirs(_write(ScriptBlock("param($x) $x")))) == "param($x) $x"
    assert str(_theirs(_write(Sensitive("<Value>x</Value>")))) == "<Value>x</Value>"
    nested = _theirs(_write(["a", 1, ["b", {"k": "v"}]]))
    assert [str(nested[0]), int(nested[1])] == ["a", 1]  # type: ignore[index]
    assert str(nested[2][1]["k"]) == "v"  # type: ignore[index]


def test_secrets_travel_only_as_secure_strings() -> None:
    text = _write({"pw": Secret("P@ss w0rd"), "cred": Credential("HOST\\admin", Secret("s3cret"))})
    assert "P@ss w0rd" not in text and "s3cret" not in text
    back = _theirs(text)
    assert back["pw"].decrypt() == "P@ss w0rd"  # type: ignore[index]
    cred = back["cred"]  # type: ignore[index]
    assert str(cred.UserName) == "HOST\\admin" and cred.Password.decrypt() == "s3cret"
    with pytest.raises(clixml.SerializeError):
        clixml.Writer().value(Secret("x"))  # no session key: never sent in the clear
    with pytest.raises(clixml.SerializeError):
        clixml.Writer().value(object())


def test_a_pipeline_of_statements_reads_back_as_its_commands() -> None:
    pipeline = Pipeline(statements=(
        (Invocation("Get-VM", {"Name": ["a", "b"]}), Invocation("Select-Object", {"Property": "State"})),
        (Invocation("Test-Path", {"Path": "C:\\x_x\n", "IsValid": SWITCH}),),
    ))
    root = _theirs(clixml.create_pipeline(pipeline, no_input=True))
    ps = root.PowerShell  # type: ignore[attr-defined]
    statements = [[(str(c.Cmd), {str(a.N): a.V for a in c.Args}) for c in extra.Cmds] for extra in ps.ExtraCmds]
    assert [[name for name, _ in s] for s in statements] == [["Get-VM", "Select-Object"], ["Test-Path"]]
    assert [str(v) for v in statements[0][0][1]["Name"]] == ["a", "b"]
    assert str(statements[1][0][1]["Path"]) == "C:\\x_x\n" and statements[1][0][1]["IsValid"] is None
    assert [str(c.Cmd) for c in ps.Cmds] == ["Get-VM", "Select-Object"]  # the first statement, as PowerShell
    single = _theirs(clixml.create_pipeline(Pipeline.of(Invocation("Get-VMHost", {})), no_input=False))
    assert single.PowerShell.ExtraCmds is None and single.NoInput is False  # type: ignore[attr-defined]


def test_objects_psrpcore_writes_read_as_remote_objects() -> None:
    vm = PSObject()
    vm.PSObject.type_names = ["Microsoft.HyperV.PowerShell.VirtualMachine", "System.Object"]
    vm.PSObject.to_string = "VirtualMachine (Name = 'lab-01')"
    vm.PSObject.adapted_properties.append(PSNoteProperty("Name", "lab-01"))
    vm.PSObject.adapted_properties.append(PSNoteProperty("MemoryStartup", 4 * 1024**3))
    vm.PSObject.extended_properties.append(PSNoteProperty("Notes", "labctl:owner=x\n_x0041_"))
    state = ErrorCategory.ObjectNotFound  # an enum: read as its name
    custom = PSCustomObject(Tags=["a", "b"], Table={"k": 1}, State=state, Nothing=None)
    xml = ET.tostring(serialize([vm, vm, custom], _Crypto())).decode()
    first, second, third = clixml.Reader().value(ET.fromstring(xml))
    assert isinstance(first, RemoteObject) and first.is_a("Microsoft.HyperV.PowerShell.VirtualMachine")
    assert first["name"] == "lab-01" and first["MemoryStartup"] == 4 * 1024**3
    assert first["Notes"] == "labctl:owner=x\n_x0041_"
    assert first.text == "VirtualMachine (Name = 'lab-01')"
    assert second == first  # written once, then as a Ref
    assert third["Tags"] == ["a", "b"] and third["Table"] == {"k": 1}
    assert third["State"] == "ObjectNotFound" and third["Nothing"] is None


def test_error_records_give_the_text_id_category_and_target() -> None:
    exc = NETException(Message="Hyper-V was unable to find a virtual machine with name \"lab-09\".")
    exc.PSObject.type_names = ["Microsoft.HyperV.PowerShell.VirtualizationException", "System.Exception",
                               "System.Object"]
    record = ErrorRecord(Exception=exc, FullyQualifiedErrorId="InvalidParameter,Microsoft.HyperV.PowerShell."
                         "Commands.GetVM", CategoryInfo=ErrorCategoryInfo(
                             Category=ErrorCategory.InvalidArgument, Reason="VirtualizationException",
                             TargetName="lab-09"), TargetObject="lab-09")
    fields = clixml.Reader().record(ET.fromstring(ET.tostring(serialize(record, _Crypto()))))
    err = clixml.error_of(fields)
    assert err.message.startswith("Hyper-V was unable to find a virtual machine with name")
    assert err.fqid == "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM"
    assert err.category == "VirtualizationException" and err.target == "lab-09"


def test_a_doctype_in_an_answer_is_refused() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE S [<!ENTITY a "aaaa">]><S>&a;</S>'
    with pytest.raises(clixml.SerializeError):
        clixml.parse(bomb)
    assert clixml.Reader().value(clixml.parse(b"\xef\xbb\xbf<S>ok</S>")) == "ok"


def test_fragments_of_interleaved_messages_join_in_order() -> None:
    rpid, pid = uuid.uuid4(), uuid.uuid4()
    frag = wire.Fragmenter(max_size=wire.FRAGMENT_HEADER + 7)
    one = frag.fragments(wire.pack_message(wire.CREATE_PIPELINE, rpid, pid, "<S>" + "x" * 40 + "</S>"))
    two = frag.fragments(wire.pack_message(wire.PIPELINE_INPUT, rpid, pid, "<S>y</S>"))
    assert len(one) > 3 and all(len(f) <= wire.FRAGMENT_HEADER + 7 for f in one)
    interleaved = [one[0], two[0], *one[1:-1], *two[1:], one[-1]]
    defrag = wire.Defragmenter()
    got = [m for f in interleaved for m in defrag.feed(f)]
    assert [m.type for m in got] == [wire.PIPELINE_INPUT, wire.CREATE_PIPELINE]
    assert got[1].rpid == rpid and got[1].pid == pid and got[1].data.endswith(b"x" * 40 + b"</S>")
    assert wire.pack_message(wire.END_OF_PIPELINE_INPUT, rpid, pid, "").endswith(pid.bytes_le)  # no body
    with pytest.raises(wire.ProtocolError):
        wire.Defragmenter().feed(one[1])  # a middle fragment without its start
    blobs = wire.Fragmenter(max_size=1000).pack_many([wire.pack_message(wire.PIPELINE_INPUT, rpid, pid, "<S/>")] * 3)
    assert len(blobs) == 1 and len(wire.Defragmenter().feed(blobs[0])) == 3


def test_the_key_exchange_yields_the_hosts_session_key() -> None:
    """Play the host's half as [MS-PSRP] 3.2.5.4.2 does: read the CAPI public key blob, encrypt a session key
    to it in a SIMPLEBLOB, and check labctl's SecureStrings decrypt with that key."""
    mine = wire.SessionKey()
    blob = base64.b64decode(mine.public_blob())
    assert blob[8:12] == b"RSA1" and struct.unpack_from("<I", blob, 12)[0] == 2048
    e = struct.unpack_from("<I", blob, 16)[0]
    n = int.from_bytes(blob[20:20 + 256], "little")
    public = rsa.RSAPublicNumbers(e, n).public_key()
    session = os.urandom(32)
    encrypted = public.encrypt(session, rsa_padding.PKCS1v15())
    simple = b"\x01\x02\x00\x00\x10\x66\x00\x00\x00\xa4\x00\x00" + encrypted[::-1]
    mine.accept(base64.b64encode(simple).decode())
    cipher = Cipher(algorithms.AES(session), modes.CBC(b"\x00" * 16)).decryptor()
    data = cipher.update(base64.b64decode(mine.encrypt("P@ss"))) + cipher.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    assert (unpadder.update(data) + unpadder.finalize()).decode("utf-16-le") == "P@ss"


def _message(msg_type: int, obj: object, pid: uuid.UUID | None = None) -> wire.Message:
    body = ET.tostring(serialize(obj, _Crypto())).decode()
    packed = wire.pack_message(msg_type, uuid.uuid4(), pid, body)
    return wire.unpack_message(packed)


def _not_found() -> ErrorRecord:
    exc = NETException(Message="Cannot find path 'C:\\\\missing' because it does not exist.")
    return ErrorRecord(Exception=exc, FullyQualifiedErrorId="PathNotFound,Microsoft.PowerShell.Commands."
                       "GetItemCommand", CategoryInfo=ErrorCategoryInfo(
                           Category=ErrorCategory.ObjectNotFound, Reason="ItemNotFoundException",
                           TargetName="C:\\missing"))


def test_a_failed_pipeline_state_carries_its_error_record() -> None:
    answer = clixml.Answer()
    assert answer.take(_message(wire.PIPELINE_OUTPUT, "first")) is False
    failed = PipelineState(PipelineState=PSInvocationState.Failed, ExceptionAsErrorRecord=_not_found())
    assert answer.take(_message(wire.PIPELINE_STATE, failed)) is True
    assert answer.output == ["first"] and answer.state == wire.PIPELINE_FAILED
    (err,) = answer.errors
    assert err.fqid.startswith("PathNotFound,") and err.category == "ItemNotFoundException"
    assert err.target == "C:\\missing" and "does not exist" in err.message


def test_a_broken_pool_says_why() -> None:
    broken = RunspacePoolStateMsg(RunspaceState=RunspacePoolState.Broken, ExceptionAsErrorRecord=_not_found())
    state, reason = clixml.pool_state(_message(wire.RUNSPACEPOOL_STATE, broken))
    assert state == wire.POOL_BROKEN and "does not exist" in reason
    opened = clixml.pool_state(_message(wire.RUNSPACEPOOL_STATE, RunspacePoolStateMsg(
        RunspaceState=RunspacePoolState.Opened)))
    assert opened == (wire.POOL_OPENED, "")
