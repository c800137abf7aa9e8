"""Neutral PowerShell values that cmdlet handlers produce and consume.

Handlers and the model never touch psrpcore: the PSRP glue (hvsim.wsman.convert) turns
these into serialized CLIXML objects and turns incoming arguments into these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Int64(int):
    """A value that must travel as System.Int64 (Hyper-V sizes, counts)."""


class UInt64(int):
    """A value that must travel as System.UInt64 (VHD sizes in bytes)."""


class UInt32(int):
    """A value that must travel as System.UInt32."""


class Byte(int):
    """A value that must travel as System.Byte (prefix lengths)."""


@dataclass(frozen=True)
class TimeSpan:
    """System.TimeSpan, in seconds."""

    seconds: float


@dataclass(frozen=True)
class PSEnum:
    """A .NET enum value: its type, member name and integer value."""

    type_name: str
    name: str
    value: int

    def __str__(self) -> str:
        return self.name


@dataclass
class PSObj:
    """An output object with real .NET type names and ordered properties."""

    type_names: list[str]
    props: dict[str, Any] = field(default_factory=dict)
    to_string: str | None = None

    @property
    def type_name(self) -> str:
        return self.type_names[0] if self.type_names else "System.Object"

    def get(self, name: str, default: Any = None) -> Any:
        """Property lookup, case-insensitive as in PowerShell."""
        for key, value in self.props.items():
            if key.lower() == name.lower():
                return value
        return default


class SecureText:
    """A decrypted SecureString. Its text never shows in repr, str or logs."""

    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text = text

    def reveal(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return "SecureText(<redacted>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecureText) and other._text == self._text

    def __hash__(self) -> int:
        return hash(("SecureText", len(self._text)))


@dataclass(frozen=True)
class Credential:
    """System.Management.Automation.PSCredential."""

    username: str
    password: SecureText

    def __repr__(self) -> str:
        return f"Credential(username={self.username!r}, password=<redacted>)"


@dataclass(frozen=True)
class ScriptBlock:
    """System.Management.Automation.ScriptBlock (arrived tagged SBK, not as a plain string)."""

    text: str


@dataclass(frozen=True)
class SwitchValue:
    """A switch parameter given without a value (``-Force``)."""


PRESENT = SwitchValue()
