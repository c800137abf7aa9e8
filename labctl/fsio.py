"""Small file helpers shared by the journal, secrets and TLS material, on Windows, macOS and Linux:
atomic writes, and files and folders only their owner can read.

Private means mode 0600/0700 on POSIX. On Windows the permission bits do nothing (chmod only toggles
read-only), so the file's ACL is replaced: inheritance removed, full control for the current user only,
with icacls, as Microsoft documents for OpenSSH private keys.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path


def _windows() -> bool:
    return sys.platform == "win32"


def protect(path: Path, *, directory: bool = False) -> None:
    """Make ``path`` readable and writable by its owner only (a folder: also its future contents)."""
    if not _windows():
        os.chmod(path, 0o700 if directory else 0o600)
        return
    user = os.environ.get("USERNAME") or os.getlogin()
    domain = os.environ.get("USERDOMAIN")
    who = f"{domain}\\{user}" if domain else user
    grant = f"{who}:(OI)(CI)F" if directory else f"{who}:F"
    done = subprocess.run(["icacls", str(path), "/inheritance:r", "/grant:r", grant], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise OSError(f"icacls could not make {path} private to {who}: {(done.stderr or done.stdout).strip()}")


def is_private(path: Path) -> bool:
    """Whether nobody but the owner may read ``path`` (on Windows: labctl set its ACL when writing it)."""
    return _windows() or not (path.stat().st_mode & 0o077)


def atomic_write(path: Path, text: str, mode: int = 0o600, *, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never a mix.

    A private ``mode`` (no group or other bits) makes the file private before any byte is written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # created 0600 on POSIX
    try:
        with os.fdopen(fd, "w", encoding=encoding) as fh:
            if mode & 0o077 == 0:
                protect(Path(tmp))
            elif not _windows():
                os.chmod(tmp, mode)
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)


def private_dir(path: Path) -> Path:
    """``path`` as a folder only its owner may open (created if missing)."""
    path.mkdir(parents=True, exist_ok=True)
    protect(path, directory=True)
    return path


def _sync_directory(folder: Path) -> None:
    """Make the rename durable: fsync the directory on POSIX (Windows cannot open a directory for that, and
    its rename is journaled by NTFS)."""
    if _windows():
        return
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
