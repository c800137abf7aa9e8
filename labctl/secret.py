"""Secrets in memory: values that never show in a repr, a log line, a journal or a traceback."""

from __future__ import annotations

from labctl import redact


class Secret:
    """A secret value (password, key). Its text never shows in repr, str, logs or journals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        redact.register(value)  # no log line may show it, whoever writes the line

    def reveal(self) -> str:
        """The secret text; call only where it is sent to the host."""
        return self._value

    def __repr__(self) -> str:
        return "Secret(<redacted>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))


class Sensitive(str):
    """A plain string that contains a secret (an answer file): sent as is, never logged."""

    def __repr__(self) -> str:
        return "Sensitive(<redacted>)"
