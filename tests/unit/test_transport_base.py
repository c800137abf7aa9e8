"""Invocations never show secrets."""

from __future__ import annotations

from labctl.secret import Secret, Sensitive
from labctl.transport.base import SWITCH, Credential, Invocation, Pipeline, ScriptBlock


def test_describe_redacts_secrets() -> None:
    inv = Invocation("Invoke-Command", {"VMName": "a", "Credential": Credential("Administrator", Secret("P@ss1")),
                                        "ScriptBlock": ScriptBlock("param($x) $x"), "Force": SWITCH})
    text = Pipeline.of(inv, Invocation("Set-Content", {"Value": Sensitive("<Value>c2VjcmV0</Value>")})).describe()
    assert "P@ss1" not in text and "c2VjcmV0" not in text
    assert "-Credential <redacted>" in text and "-Force" in text and "-Value <redacted>" in text
    assert "P@ss1" not in repr(Secret("P@ss1")) and "P@ss1" not in str(Credential("a", Secret("P@ss1")))
