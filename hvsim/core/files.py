"""The simulator's private files (its credentials, key, endpoint.json): owner-only on every OS.

The embedded simulator runs wherever labctl does, Windows included. POSIX gets mode 0600 (0700 for a
folder) from the moment the file exists; Windows ignores permission bits, so the file's ACL is replaced
by one granting the current user alone (icacls, inheritance removed) before anything secret is written.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path


def _owner_only_acl(path: Path, folder: bool) -> None:
    account = os.environ.get("USERNAME") or os.getlogin()
    if os.environ.get("USERDOMAIN"):
        account = os.environ["USERDOMAIN"] + "\\" + account
    rights = "(OI)(CI)F" if folder else "F"
    result = subprocess.run(["icacls", os.fspath(path), "/inheritance:r", "/grant:r", f"{account}:{rights}"],
                            capture_output=True, text=True, check=False)
    if result.returncode:
        raise OSError(f"icacls refused to restrict {path} to {account}: {result.stderr or result.stdout}")


def make_private(path: Path, *, folder: bool = False) -> None:
    """Only the current user may read or change ``path``."""
    if sys.platform == "win32":
        _owner_only_acl(path, folder)
    else:
        path.chmod(0o700 if folder else 0o600)


def private_folder(prefix: str) -> Path:
    """A new temporary folder only the current user may open."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))  # 0700 on POSIX already
    make_private(folder, folder=True)
    return folder


def replace_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically; the new file is private before its first byte."""
    handle, staged = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            make_private(Path(staged))
            out.write(data)
        os.replace(staged, path)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise
