"""The use case behind ``labctl init``: write the example labs shipped with labctl, to start from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from labctl.errors import LabUsageError
from labctl.fsio import atomic_write
from labctl.resources import resource_dir

EXAMPLES = ("quickstart", "isolation-demo", "classroom")


@dataclass(frozen=True)
class Written:
    """One example lab file and what init did with it: created, unchanged, kept (differs) or overwritten."""

    path: Path
    action: str


def init(directory: Path, *, force: bool = False, images: bool = False, templates: bool = False) -> list[Written]:
    """Write each example lab into ``directory``/labs/; with ``images`` the shipped image catalog into
    ``directory``/images/ (to point base_disk at a real host's disks), with ``templates`` the shipped answer-file
    templates into ``directory``/templates/unattend/ (to change them). Both override the shipped ones for the
    labs beside them.

    A file already there is never lost: identical ones are left as they are, and one that differs (the user's
    own edits) is kept unless ``force`` is given.
    """
    if directory.exists() and not directory.is_dir():
        raise LabUsageError(f"{directory} is a file, not a directory", hint="name a directory for the labs/ folder")
    labs = directory / "labs"
    if labs.exists() and not labs.is_dir():
        raise LabUsageError(f"{labs} exists and is not a directory", hint="move it away, or init another directory")
    wanted = [(resource_dir("labs") / f"{name}.yaml", labs / f"{name}.yaml") for name in EXAMPLES]
    if images:
        wanted += [(f, directory / "images" / f.name) for f in sorted(resource_dir("images").glob("*.yaml"))]
    if templates:
        shipped_unattend = resource_dir("templates") / "unattend"
        wanted += [(f, directory / "templates" / "unattend" / f.name) for f in sorted(shipped_unattend.glob("*.j2"))]
    done: list[Written] = []
    for source, target in wanted:
        shipped = source.read_text(encoding="utf-8")
        if target.is_file():
            current = target.read_text(encoding="utf-8", errors="replace")
            if current == shipped:
                done.append(Written(target, "unchanged"))
                continue
            if not force:
                done.append(Written(target, "kept"))
                continue
            action = "overwritten"
        elif target.exists():
            raise LabUsageError(f"{target} exists and is not a file", hint="move it away, then run labctl init again")
        else:
            action = "created"
        atomic_write(target, shipped, mode=0o644)  # these hold no secret: readable like any source file
        done.append(Written(target, action))
    return done
