"""What a labctl step is to the simulator: its script header, its model, the table a step module fills.

The simulator cannot run arbitrary PowerShell. A labctl guest script (templates/guest/*.ps1)
declares what it is on its first line, ``# labctl-step: <name> <version>``; a host script
(templates/host/*.ps1) ``# labctl-host-step: <name> <version>``. The simulator dispatches that to
the model registered under that name and version (hvsim.step_registry). A script without a known
header is refused by the caller (never a silent success), so a new step needs its model before
the simulator can stand in for a real guest. Each model returns the same properties as the
shipped script.

A guest step is ``fn(world, vm, guest, args) -> list[output]``: ``args`` is -ArgumentList, outputs
are PSObj/plain values. It may raise PSError for what the real script would write as an error.
A host step is ``fn(ctx, args) -> list[output]``, run by Invoke-Command -ScriptBlock on the host.

A step module declares its steps in a ``StepTable`` (``@STEPS.step("name")``); nothing registers on
import: hvsim.step_registry lists every table.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from hvsim.powershell.values import PSObj

if TYPE_CHECKING:
    from hvsim.guest.models.guest import Guest
    from hvsim.powershell.cmdlet import CmdletContext
    from hvsim.world import World

StepFn = Callable[["World", Any, "Guest", list[Any]], list[Any]]
HostStepFn = Callable[["CmdletContext", list[Any]], list[Any]]
F = TypeVar("F", bound=Callable[..., list[Any]])

PS_CUSTOM_OBJECT = ["System.Management.Automation.PSCustomObject", "System.Object"]
GUEST_HEADER = re.compile(r"^#\s*labctl-step:\s*(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)\s+(?P<version>[0-9]+)\s*$")
HOST_HEADER = re.compile(r"^#\s*labctl-host-step:\s*(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)\s+(?P<version>[0-9]+)\s*$")


@dataclass(frozen=True)
class Step(Generic[F]):
    """A step model: its name, the script versions it models, the handler."""

    name: str
    versions: tuple[str, ...]
    fn: F


GuestStep = Step[StepFn]


class StepTable(Generic[F]):
    """The steps one module models, in declaration order (registered by hvsim.step_registry)."""

    def __init__(self) -> None:
        self.steps: list[Step[F]] = []

    def step(self, name: str, versions: tuple[str, ...] = ("1",)) -> Callable[[F], F]:
        """Declare ``fn`` the model of the step ``name`` for the script ``versions``."""

        def deco(fn: F) -> F:
            self.steps.append(Step(name, versions, fn))
            return fn

        return deco


class StepRegistry(Generic[F]):
    """Step models by name and script version, found from a script's header line."""

    def __init__(self, header: re.Pattern[str], kind: str) -> None:
        self._header = header
        self._kind = kind  # "guest step", "host step": how a double registration names it
        self.by_name: dict[str, Step[F]] = {}  # name -> its first registration
        # (name, version) -> model: a step whose behaviour changed gets a second model for its new version, and
        # the old version stays modelled as it behaved (a guest may still be configured by an older labctl).
        self._by_version: dict[tuple[str, str], Step[F]] = {}

    def register(self, step: Step[F]) -> None:
        key = step.name.lower()
        for version in step.versions:
            if (key, version) in self._by_version and key in self.by_name:
                raise ValueError(f"{self._kind} {step.name} {version} registered twice")
        for version in step.versions:
            self._by_version[(key, version)] = step
        self.by_name.setdefault(key, step)

    def register_table(self, table: StepTable[F]) -> None:
        for step in table.steps:
            self.register(step)

    def remove(self, name: str) -> None:
        key = name.lower()
        self.by_name.pop(key, None)
        for k in [k for k in self._by_version if k[0] == key]:
            del self._by_version[k]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self.by_name

    def find(self, script: str) -> Step[F] | None:
        """The registered step that models ``script`` (name and version must both match)."""
        header = parse_header(script, self._header)
        if header is None:
            return None
        key = header[0].lower()
        if key not in self.by_name:
            return None
        return self._by_version.get((key, header[1]))


def parse_header(script: str, header: re.Pattern[str] = GUEST_HEADER) -> tuple[str, str] | None:
    """(name, version) from a script's step header (first non-blank line), or None."""
    for line in script.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        m = header.match(stripped)
        return (m.group("name"), m.group("version")) if m else None
    return None


def custom_object(**props: Any) -> PSObj:
    """A [pscustomobject] with ordered properties."""
    return PSObj(list(PS_CUSTOM_OBJECT), dict(props))
