"""The simulator's secrets on disk (NTLM users, TLS key, endpoint.json) are private on POSIX and on Windows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hvsim.core.files import make_private, private_folder, replace_private
from hvsim.server import write_private_json


def test_posix_files_are_0600_and_folders_0700(tmp_path: Path) -> None:
    write_private_json(tmp_path / "endpoint.json", {"password": "pw"})
    assert (tmp_path / "endpoint.json").stat().st_mode & 0o777 == 0o600
    assert json.loads((tmp_path / "endpoint.json").read_text()) == {"password": "pw"}
    folder = private_folder("hvsim-test-")
    try:
        assert folder.stat().st_mode & 0o777 == 0o700
    finally:
        folder.rmdir()


def test_windows_gets_an_owner_only_acl_before_the_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[list[str], int]] = []

    def icacls(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        target = Path(args[1])
        seen.append((args, target.stat().st_size if target.is_file() else -1))
        return subprocess.CompletedProcess(args, 0, "processed 1 file", "")

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("USERNAME", "trainer")
    monkeypatch.delenv("USERDOMAIN", raising=False)
    monkeypatch.setattr(subprocess, "run", icacls)
    replace_private(tmp_path / "users", b"secret line\n")
    make_private(tmp_path, folder=True)
    [(file_args, size), (dir_args, _)] = seen
    assert file_args[2:] == ["/inheritance:r", "/grant:r", "trainer:F"] and size == 0
    assert dir_args[2:] == ["/inheritance:r", "/grant:r", "trainer:(OI)(CI)F"]
    assert (tmp_path / "users").read_bytes() == b"secret line\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["users"]


def test_windows_refusal_leaves_no_staged_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("USERNAME", "trainer")
    monkeypatch.setattr(subprocess, "run", lambda args, **kw: subprocess.CompletedProcess(args, 5, "", "denied"))
    with pytest.raises(OSError, match="icacls refused"):
        replace_private(tmp_path / "key.pem", b"KEY")
    assert list(tmp_path.iterdir()) == []
