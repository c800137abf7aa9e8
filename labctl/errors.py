"""The one error tree of labctl. Errors carry structured fields; only the CLI picks exit codes."""

from __future__ import annotations

from dataclasses import dataclass


class LabctlError(Exception):
    """Root of every error labctl reports. ``hint`` says what to do about it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


@dataclass(frozen=True)
class Problem:
    """One problem found in a lab file: where it is and what is wrong."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class LabFileError(LabctlError):
    """A lab or image file is invalid; ``problems`` lists every problem found at once."""

    def __init__(self, problems: list[Problem], *, hint: str | None = None) -> None:
        self.problems = list(problems)
        lines = "\n".join(str(p) for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in lab file:\n{lines}", hint=hint)


class LabUsageError(LabctlError):
    """The lab file is valid but does not fit what the command asks (no such VM, no Hyper-V isolation).

    Raised before anything is sent to the host, so nothing ran; ``field`` names the lab setting involved.
    """

    def __init__(self, message: str, *, field: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field


class TemplateError(LabctlError):
    """A template failed to render or its output breaks the target format's rules."""

    def __init__(self, message: str, *, template: str, vm: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.template = template
        self.vm = vm


class PlanError(LabctlError):
    """The lab cannot be planned against this host (preflight refused it)."""

    def __init__(self, message: str, *, check: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.check = check


class TransportError(LabctlError):
    """Talking to the host failed."""


class ConnectError(TransportError):
    """The host could not be reached at all (nothing listening, no such name, TLS refused). Not retried."""

    def __init__(self, message: str, *, endpoint: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.endpoint = endpoint


class TransientError(TransportError):
    """The host answered, then kept failing in ways that pass (dropped connections, HTTP 500, busy WSMan)
    for longer than the retry budget. Running the same command again is the remedy."""

    def __init__(self, message: str, *, endpoint: str, attempts: int, seconds: float, last: str,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.endpoint = endpoint
        self.attempts = attempts
        self.seconds = seconds
        self.last = last


class AnswerLostError(TransientError):
    """A call that must not be repeated blindly (it creates something) failed transiently after it was sent:
    it may or may not have run on the host. The caller reads the host again before acting."""


class AuthError(TransportError):
    """The host refused the credentials. Never retried."""

    def __init__(self, message: str, *, endpoint: str, username: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.endpoint = endpoint
        self.username = username


class RemoteCommandError(TransportError):
    """A cmdlet on the host failed; fields mirror the PowerShell ErrorRecord."""

    def __init__(self, message: str, *, command: str, fqid: str, category: str = "",
                 target: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.command = command
        self.fqid = fqid
        self.category = category
        self.target = target

    @property
    def error_id(self) -> str:
        """The FQID's first part (``InvalidParameter`` of ``InvalidParameter,Microsoft...GetVM``)."""
        return self.fqid.split(",", 1)[0]


class StageError(LabctlError):
    """A VM failed at one stage of bring-up; ``cause`` names the likely reason."""

    def __init__(self, message: str, *, vm: str, stage: str, cause: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.vm = vm
        self.stage = stage
        self.cause = cause


class SecretError(LabUsageError):
    """A secret is not where the lab file says it lives (an unset variable, no keyring entry, no terminal)."""


class Interrupted(LabctlError):
    """The user interrupted the run (Ctrl-C); what was done is in the journal."""


class LockError(LabctlError):
    """Another labctl run holds the lab's lock."""

    def __init__(self, message: str, *, lock_path: str, holder: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.lock_path = lock_path
        self.holder = holder


class DestroyIncompleteError(LabctlError):
    """Destroy could not remove everything: ``remaining`` lists what the host still has, with its reasons."""

    def __init__(self, remaining: list[str], *, hint: str | None = None) -> None:
        self.remaining = list(remaining)
        super().__init__(f"{len(self.remaining)} thing(s) of the lab are still on the host:\n  not removed: "
                         + "\n  not removed: ".join(self.remaining), hint=hint)


class ApplyError(LabctlError):
    """One or more VMs failed while the others finished."""

    def __init__(self, failures: dict[str, LabctlError]) -> None:
        self.failures = dict(failures)
        names = ", ".join(sorted(self.failures))
        super().__init__(f"{len(self.failures)} VM(s) failed: {names}")


class ImageError(LabctlError):
    """A base image could not be built, waited for or removed on a host; ``image`` and ``stage`` say which
    image and which step (``mount iso``, ``apply``, ``lock``, ``rm``...), ``fqid`` the host error's id if any."""

    def __init__(self, message: str, *, image: str, stage: str, host: str = "", fqid: str = "",
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.image = image
        self.stage = stage
        self.host = host
        self.fqid = fqid
