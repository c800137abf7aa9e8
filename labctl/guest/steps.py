"""Guest and host steps: shipped PowerShell scripts with a declared name and version.

Each script in templates/guest starts with ``# labctl-step: <name> <version>`` and each one in
templates/host with ``# labctl-host-step: <name> <version>`` (docs/guest-steps.md); labctl sends it
as a ScriptBlock with its values as -ArgumentList, never pasted into the text.

A script is sent alone, so helpers shared by several scripts live once in templates/<kind>/lib/ and a
line ``# labctl-include: <file>.ps1`` (after the param block) is replaced by that file when the step is
loaded; a lib file may include others (each file once per script, a cycle is an error). What is sent,
parsed by the tests and modelled by the simulator is the expanded text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from labctl.errors import TemplateError
from labctl.resources import resource_dir

TEMPLATES = resource_dir("templates")
_HEADER = re.compile(r"^# labctl-(?P<kind>step|host-step): (?P<name>[a-z0-9-]+) (?P<version>\d+)\s*$")
_KINDS = {"guest": "step", "host": "host-step"}
_INCLUDE = re.compile(r"^# labctl-include: (?P<file>[a-z0-9-]+\.ps1)\s*$", re.MULTILINE)


def expand_includes(text: str, lib: Path, source: Path) -> str:
    """``text`` with each ``# labctl-include: X.ps1`` line replaced by lib/X.ps1, itself expanded.

    A file already included is not included again (its functions are defined once); a file that includes
    itself, directly or not, is a TemplateError naming the chain.
    """
    done: set[str] = set()

    def expand(body: str, chain: tuple[str, ...]) -> str:
        def include(m: re.Match[str]) -> str:
            name = m["file"]
            if name in chain:
                raise TemplateError(f"{source}: include cycle {' -> '.join((*chain, name))}", template=str(source))
            if name in done:
                return f"# ({name} is included above)"
            path = lib / name
            if not path.is_file():
                raise TemplateError(f"{source}: includes {name}, which is not in {lib}", template=str(source))
            done.add(name)
            return expand(path.read_text(encoding="utf-8").rstrip("\n"), (*chain, name))

        return _INCLUDE.sub(include, body)

    return expand(text, ())


@dataclass(frozen=True)
class GuestStep:
    """A guest script: its declared name and version, and its text."""

    name: str
    version: int
    script: str
    path: Path
    kind: str = "guest"  # guest (run with -VMName over PowerShell Direct) or host (run on the host itself)


def parse_step(path: Path, kind: str = "guest") -> GuestStep:
    """Read a step script and its header (``kind`` guest or host says which header it must carry)."""
    text = expand_includes(path.read_text(encoding="utf-8"), path.parent / "lib", path)
    first = text.splitlines()[0] if text else ""
    m = _HEADER.match(first)
    header = f"# labctl-{_KINDS[kind]}: <name> <version>"
    if not m or m["kind"] != _KINDS[kind]:
        raise TemplateError(f"{path}: first line must be '{header}'", template=str(path))
    return GuestStep(m["name"], int(m["version"]), text, path, kind)


@cache
def load_step(name: str, templates: Path = TEMPLATES, kind: str = "guest") -> GuestStep:
    """The shipped step called ``name``: templates/guest/<name>.ps1 (or templates/host/ for kind host)."""
    path = templates / kind / f"{name}.ps1"
    if not path.exists():
        raise TemplateError(f"no {kind} step {name!r} in {path.parent}", template=str(path))
    step = parse_step(path, kind)
    if step.name != name:
        raise TemplateError(f"{path} declares step {step.name!r}, expected {name!r}", template=str(path))
    return step


def load_host_step(name: str, templates: Path = TEMPLATES) -> GuestStep:
    """The shipped host step called ``name`` (templates/host/<name>.ps1, ``# labctl-host-step:`` header)."""
    return load_step(name, templates, "host")


