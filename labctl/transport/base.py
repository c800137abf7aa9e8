"""The cut between labctl and the network: ``Transport.invoke(Invocation) -> Result``.

Everything above this module builds Invocations (a cmdlet and its parameters, never script
text with values pasted in) and reads Results made of plain Python values. Only
labctl/transport/psrp.py knows pypsrp.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from labctl.secret import Secret, Sensitive


@dataclass(frozen=True)
class Credential:
    """A PSCredential: sent with its password as a SecureString (session key exchanged first)."""

    username: str
    password: Secret


@dataclass(frozen=True)
class ScriptBlock:
    """Guest code sent as a real ScriptBlock (CLIXML SBK), with values passed as -ArgumentList."""

    text: str


@dataclass(frozen=True)
class Switch:
    """A switch parameter given without a value (``-Force``)."""


SWITCH = Switch()


@dataclass(frozen=True)
class Invocation:
    """One cmdlet call: ``command`` and its named parameters, in order."""

    command: str
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """A log-safe one-line form: parameter names, values only when not secret."""
        parts = [self.command]
        for name, value in self.parameters.items():
            if isinstance(value, Switch):
                parts.append(f"-{name}")
            elif isinstance(value, (Secret, Credential, Sensitive)):
                parts.append(f"-{name} <redacted>")
            elif isinstance(value, ScriptBlock):
                parts.append(f"-{name} {{...}}")
            elif isinstance(value, bytes | bytearray):
                parts.append(f"-{name} <{len(value)} bytes>")  # file chunks: never a megabyte in a log line
            elif isinstance(value, list | tuple) and any(isinstance(v, Secret | Credential | Sensitive)
                                                          for v in value):
                # -ArgumentList of a guest step may carry a secret (a TLS key): the whole list is redacted.
                shown = ", ".join("<redacted>" if isinstance(v, Secret | Credential | Sensitive) else repr(v)
                                  for v in value)
                parts.append(f"-{name} [{shown}]")
            else:
                parts.append(f"-{name} {value!r}")
        return " ".join(parts)


@dataclass(frozen=True)
class Pipeline:
    """Related calls sent together: statements run in order; each is a list of piped commands."""

    statements: tuple[tuple[Invocation, ...], ...]

    @classmethod
    def of(cls, *invocations: Invocation) -> Pipeline:
        """Each invocation as its own statement, run in order in one round trip."""
        return cls(tuple((inv,) for inv in invocations))

    @classmethod
    def piped(cls, *invocations: Invocation) -> Pipeline:
        """``a | b | c`` as one statement."""
        return cls((tuple(invocations),))

    def describe(self) -> str:
        return "; ".join(" | ".join(i.describe() for i in stmt) for stmt in self.statements)

    @property
    def first_command(self) -> str:
        return self.statements[0][0].command if self.statements and self.statements[0] else ""


@dataclass
class RemoteObject:
    """An object the host returned: its .NET type names and properties as plain values."""

    type_names: list[str]
    props: dict[str, Any]
    text: str | None = None

    def __getitem__(self, name: str) -> Any:
        for key, value in self.props.items():
            if key.lower() == name.lower():
                return value
        raise KeyError(name)

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def is_a(self, type_name: str) -> bool:
        """True when the object is (or was deserialized from) ``type_name``, or is Select-Object's projection
        of one (``Selected.<type>``: the properties asked for)."""
        t = type_name.lower()
        forms = (t, "deserialized." + t, "selected." + t, "deserialized.selected." + t)
        return any(n.lower() in forms for n in self.type_names)


@dataclass(frozen=True)
class RemoteError:
    """A PowerShell ErrorRecord as plain fields."""

    message: str
    fqid: str
    category: str = ""
    target: str | None = None


@dataclass
class Result:
    """What a pipeline produced: output, non-terminating errors and warnings."""

    output: list[Any] = field(default_factory=list)
    errors: list[RemoteError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def objects(self) -> list[RemoteObject]:
        return [o for o in self.output if isinstance(o, RemoteObject)]


@dataclass(frozen=True)
class RetryPolicy:
    """How long a call that may run twice is retried through transient failures.

    The first retry comes quickly (most drops and 500s of a busy WinRM pass within a second), then the
    waits double up to ``max_delay``; ``budget_seconds`` bounds the whole call. ``jitter`` spreads the
    retries of parallel workers so they do not hit a recovering host at the same instant.
    """

    budget_seconds: float = 120.0
    first_delay: float = 0.1
    max_delay: float = 8.0
    jitter: float = 0.25

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1-based)."""
        import random

        base = min(self.first_delay * (2 ** (attempt - 1)), self.max_delay)
        return base * (1 + self.jitter * random.random())


class Cancel:
    """Set when the user interrupts: transports stop retrying and workers stop at the next step."""

    def __init__(self) -> None:
        import threading

        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True as soon as the run is cancelled."""
        return self._event.wait(max(seconds, 0.0))


class Transport(Protocol):
    """A connection to a host. Implementations are safe to call from several threads."""

    endpoint: str
    cancel: Cancel
    policy: RetryPolicy

    def invoke(self, pipeline: Pipeline | Invocation, *, input: Sequence[Any] | None = None,
               retry: bool = True) -> Result:
        """Run a pipeline; raise RemoteCommandError when it fails with a terminating error.

        Transient failures are retried within the transport's RetryPolicy; with ``retry=False`` (a call
        that creates something) a failure after the call left raises AnswerLostError instead.
        """
        ...

    def close(self) -> None: ...
