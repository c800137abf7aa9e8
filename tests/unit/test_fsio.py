"""atomic_write and private files on POSIX and on Windows (platform mocked): the file is whole, private before
any byte is written (mode 0600, or an icacls ACL for the user alone), the directory synced where it can be."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from labctl.fsio import atomic_write, is_private, private_dir


def _count_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def spy(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return calls


def test_posix_syncs_the_file_and_its_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    calls = _count_fsyncs(monkeypatch)
    atomic_write(tmp_path / "a" / "state.json", "new\n")
    assert (tmp_path / "a" / "state.json").read_text() == "new\n"
    assert len(calls) == 2
    assert oct((tmp_path / "a" / "state.json").stat().st_mode & 0o777) == oct(0o600)


class FakeIcacls:
    """subprocess.run standing in for Windows' icacls: records each call and the file's size at that moment."""

    def __init__(self, returncode: int = 0) -> None:
        self.calls: list[tuple[list[str], int]] = []
        self.returncode = returncode

    def __call__(self, args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        target = Path(args[1])
        self.calls.append((list(args), target.stat().st_size if target.is_file() else -1))
        return subprocess.CompletedProcess(args, self.returncode, "", "Access is denied." if self.returncode else "")


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> FakeIcacls:
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("USERNAME", "trainer")
    monkeypatch.setenv("USERDOMAIN", "CLASSROOM")
    fake = FakeIcacls()
    monkeypatch.setattr(subprocess, "run", fake)
    return fake


def test_windows_branch_does_not_open_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    windows: FakeIcacls) -> None:
    # Windows cannot os.open() a directory; the rename alone is what it offers.
    calls = _count_fsyncs(monkeypatch)
    target = tmp_path / "state.json"
    target.write_text("old\n")
    atomic_write(target, "new\n")
    assert target.read_text() == "new\n" and len(calls) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left behind


def test_windows_private_file_gets_an_acl_for_the_user_alone_before_its_content(
        tmp_path: Path, windows: FakeIcacls) -> None:
    target = tmp_path / "generated-password"
    atomic_write(target, "s3cret\n")
    [(args, size_then)] = windows.calls
    assert args[0] == "icacls" and args[2:] == ["/inheritance:r", "/grant:r", "CLASSROOM\\trainer:F"]
    assert Path(args[1]).parent == tmp_path and Path(args[1]).name.startswith(".generated-password.")
    assert size_then == 0  # protected while still empty: the secret was never readable by others
    assert target.read_text() == "s3cret\n" and is_private(target)


def test_windows_public_file_gets_no_acl(tmp_path: Path, windows: FakeIcacls) -> None:
    atomic_write(tmp_path / "quickstart.yaml", "name: qs\n", mode=0o644)
    assert windows.calls == []


def test_windows_private_folder_is_inherited_by_what_it_will_hold(tmp_path: Path, windows: FakeIcacls) -> None:
    folder = private_dir(tmp_path / "docker")
    assert folder.is_dir() and windows.calls[0][0][2:] == ["/inheritance:r", "/grant:r", "CLASSROOM\\trainer:(OI)(CI)F"]


def test_windows_icacls_refusal_is_an_error_and_leaves_nothing(tmp_path: Path, windows: FakeIcacls) -> None:
    windows.returncode = 5
    with pytest.raises(OSError, match=r"icacls could not make .* private to CLASSROOM.trainer: Access is denied"):
        atomic_write(tmp_path / "key.pem", "KEY")
    assert list(tmp_path.iterdir()) == []


def test_posix_private_folder_and_loosened_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    folder = private_dir(tmp_path / "docker")
    assert folder.stat().st_mode & 0o777 == 0o700
    atomic_write(folder / "key.pem", "KEY")
    assert is_private(folder / "key.pem")
    os.chmod(folder / "key.pem", 0o644)
    assert not is_private(folder / "key.pem")
