"""Where the engine reports what it is doing; the CLI draws it, tests record it."""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)


class Progress(Protocol):
    """One line per VM (and one for the host): its stage, how that stage went, a short detail."""

    def stage(self, vm: str, stage: str, status: str, detail: str = "") -> None:
        """status: start, done, skip, failed."""


class NoProgress:
    """Progress for callers that show none: it goes to the debug log."""

    def stage(self, vm: str, stage: str, status: str, detail: str = "") -> None:
        log.debug("%s %s %s %s", vm, stage, status, detail)
