"""Guest steps: shipped PowerShell scripts with a declared name and version.

Each script in templates/guest starts with ``# labctl-step: <name> <version>``; labctl sends it
as a ScriptBlock with its values as -ArgumentList, never pasted into the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from labctl.errors import TemplateError

TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates"
_HEADER = re.compile(r"^# labctl-step: (?P<name>[a-z0-9-]+) (?P<version>\d+)\s*$")


@dataclass(frozen=True)
class GuestStep:
    """A guest script: its declared name and version, and its text."""

    name: str
    version: int
    script: str
    path: Path


def parse_step(path: Path) -> GuestStep:
    """Read a step script and its header."""
    text = path.read_text(encoding="utf-8")
    first = text.splitlines()[0] if text else ""
    m = _HEADER.match(first)
    if not m:
        raise TemplateError(f"{path}: first line must be '# labctl-step: <name> <version>'",
                            template=str(path))
    return GuestStep(m["name"], int(m["version"]), text, path)


@cache
def load_step(name: str, templates: Path = TEMPLATES) -> GuestStep:
    """The shipped step called ``name``."""
    path = templates / "guest" / f"{name}.ps1"
    if not path.exists():
        raise TemplateError(f"no guest step {name!r} in {path.parent}", template=str(path))
    step = parse_step(path)
    if step.name != name:
        raise TemplateError(f"{path} declares step {step.name!r}, expected {name!r}", template=str(path))
    return step


def all_steps(templates: Path = TEMPLATES) -> list[GuestStep]:
    return [parse_step(p) for p in sorted((templates / "guest").glob("*.ps1"))]
