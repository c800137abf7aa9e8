"""The use case behind ``labctl destroy``: remove what the lab made, each removal checked on the host."""

from __future__ import annotations

from pathlib import Path

from labctl.app.secrets import Prompt
from labctl.app.session import open_lab
from labctl.engine.destroy import DestroyReport, destroy
from labctl.engine.lock import LabLock
from labctl.engine.progress import Progress
from labctl.lab.model import ResolvedLab


def destroy_lab(lab: ResolvedLab, progress: Progress | None = None,
                prompt: Prompt | None = None) -> tuple[DestroyReport, str]:
    """Remove what the lab created."""
    with LabLock(Path(lab.state_dir) / "lock", "destroy"), open_lab(lab, workers=1, prompt=prompt) as s:
        facts, paths = s.facts()
        return destroy(s.conn.transport, s.want, facts, s.journal, s.owner, progress, paths), s.conn.description
