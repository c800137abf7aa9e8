"""The use case behind ``labctl destroy``: remove what the lab made, each removal checked on the host."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from labctl.app import classes
from labctl.app.inventory import HostLabs, HostSpec, OrphanRemoval, destroy_orphans, find_journals, open_hosts
from labctl.app.secrets import Prompt
from labctl.app.session import open_lab
from labctl.engine.destroy import DestroyReport, destroy
from labctl.engine.lock import LabLock
from labctl.engine.progress import Progress
from labctl.lab.model import ResolvedLab


def destroy_lab(lab: ResolvedLab, progress: Progress | None = None,
                prompt: Prompt | None = None) -> tuple[DestroyReport, str]:
    """Remove what the lab created (for a class: the selected copies, each on its host)."""
    if lab.is_class:
        return classes.destroy_class(lab, progress, prompt)
    with LabLock(Path(lab.state_dir) / "lock", "destroy"), open_lab(lab, workers=1, prompt=prompt) as s:
        facts, paths = s.facts()
        return destroy(s.conn.transport, s.want, facts, s.journal, s.owner, progress, paths), s.conn.description


# --- destroy --orphaned: labs whose journal is gone (labctl.app.inventory does the work) ---------------------


def destroy_orphaned(lab: ResolvedLab | None, hosts: Sequence[HostSpec], journal_dirs: Sequence[Path],
                     confirm: Callable[[list[HostLabs]], bool], progress: Progress | None = None,
                     prompt: Prompt | None = None) -> tuple[list[HostLabs], list[OrphanRemoval]]:
    """Remove, after ``confirm``, the labs on the lab's host and on ``hosts`` that no journal under
    ``journal_dirs`` knows, by ownership tag only."""
    with open_hosts(lab, hosts, prompt=prompt) as conns:
        return destroy_orphans(conns, find_journals(journal_dirs), confirm, progress,
                               journals_again=lambda: find_journals(journal_dirs))
