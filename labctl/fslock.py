"""An exclusive, non-blocking file lock that works on Windows, macOS and Linux.

filelock takes the OS's own lock (``flock`` on POSIX, ``msvcrt.locking`` on Windows), which the OS releases when
the holding process dies, so a killed run never leaves a stale lock. Who holds it is written to a sidecar file
(``<lock>.holder``): on Windows a locked file's bytes cannot be read by another process.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

from filelock import FileLock, Timeout


class Busy(Exception):
    """Another process holds the lock; ``holder`` is what it wrote about itself (None if unknown)."""

    def __init__(self, path: Path, holder: str | None) -> None:
        super().__init__(f"{path} is held by {holder or 'another process'}")
        self.path = path
        self.holder = holder


class ExclusiveLock:
    """``acquire()`` at once or raise Busy; ``release()``; usable as a context manager."""

    def __init__(self, path: Path, what: str = "") -> None:
        self.path = Path(path)
        self.what = what
        self._lock = FileLock(str(self.path), timeout=0, is_singleton=False)

    @property
    def holder_path(self) -> Path:
        return self.path.with_name(self.path.name + ".holder")

    def holder(self) -> str | None:
        try:
            text = self.holder_path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return text or None

    def acquire(self) -> ExclusiveLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise Busy(self.path, self.holder()) from None
        note = f"{self.what} pid={os.getpid()} host={socket.gethostname()}".strip()
        with contextlib.suppress(OSError):  # the lock holds without its note
            self.holder_path.write_text(note + "\n", encoding="utf-8")
        return self

    def release(self) -> None:
        if not self._lock.is_locked:
            return
        with contextlib.suppress(OSError):
            self.holder_path.unlink()
        self._lock.release(force=True)

    @property
    def held(self) -> bool:
        return bool(self._lock.is_locked)

    def __enter__(self) -> ExclusiveLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
