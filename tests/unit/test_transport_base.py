"""Invocations never show secrets; values cross to pypsrp with the right tags."""

from __future__ import annotations

from labctl.secret import Secret, Sensitive
from labctl.transport.base import SWITCH, Credential, Invocation, Pipeline, ScriptBlock
from labctl.transport.psrp import _to_wire


def test_describe_redacts_secrets() -> None:
    inv = Invocation("Invoke-Command", {"VMName": "a", "Credential": Credential("Administrator", Secret("P@ss1")),
                                        "ScriptBlock": ScriptBlock("param($x) $x"), "Force": SWITCH})
    text = Pipeline.of(inv, Invocation("Set-Content", {"Value": Sensitive("<Value>c2VjcmV0</Value>")})).describe()
    assert "P@ss1" not in text and "c2VjcmV0" not in text
    assert "-Credential <redacted>" in text and "-Force" in text and "-Value <redacted>" in text
    assert "P@ss1" not in repr(Secret("P@ss1")) and "P@ss1" not in str(Credential("a", Secret("P@ss1")))


def test_to_wire_tags_scriptblocks_and_secure_strings() -> None:
    sbk = _to_wire(ScriptBlock("1"))
    assert (sbk.tag, sbk.value) == ("SBK", "1")
    ss = _to_wire(Secret("x"))
    assert ss.tag == "SS"
    cred = _to_wire(Credential("u", Secret("p")))
    assert cred.username == "u" and cred.password == "p"
    assert _to_wire(Sensitive("abc")) == "abc" and type(_to_wire(Sensitive("abc"))) is str


def test_large_ints_travel_as_int64() -> None:
    big = _to_wire(4 * 1024**3)
    assert (big.tag, big.value) == ("I64", 4 * 1024**3)
    assert _to_wire(7) == 7 and _to_wire(True) is True
