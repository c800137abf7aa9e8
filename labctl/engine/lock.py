"""A per-lab lock so two runs of up/destroy never act on the same lab at once."""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path
from types import TracebackType

from labctl.errors import LockError


class LabLock:
    """An exclusive, non-blocking flock on .labctl/<lab>/lock; released by the OS if we die."""

    def __init__(self, path: Path, action: str) -> None:
        self.path = path
        self.action = action
        self._fd: int | None = None

    def __enter__(self) -> LabLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or None
            os.close(fd)
            raise LockError(
                f"another labctl run holds the lab lock ({holder or 'unknown holder'})",
                lock_path=str(self.path), holder=holder,
                hint="wait for it to finish; the lock is released automatically when that process exits",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{self.action} pid={os.getpid()} host={socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
