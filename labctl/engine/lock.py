"""A per-lab lock so two runs of up/destroy never act on the same lab at once."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from labctl.errors import LockError
from labctl.fslock import Busy, ExclusiveLock


class LabLock:
    """An exclusive, non-blocking lock on .labctl/<lab>/lock (labctl/fslock.py); released by the OS if we die."""

    def __init__(self, path: Path, action: str) -> None:
        self.path = path
        self.action = action
        self._lock = ExclusiveLock(path, action)

    def __enter__(self) -> LabLock:
        try:
            self._lock.acquire()
        except Busy as busy:
            raise LockError(
                f"another labctl run holds the lab lock ({busy.holder or 'unknown holder'})",
                lock_path=str(self.path), holder=busy.holder,
                hint="wait for it to finish; the lock is released automatically when that process exits",
            ) from None
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._lock.release()
