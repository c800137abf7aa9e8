"""atomic_write on POSIX and on Windows (platform mocked): the file is whole, the directory synced where it can be."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from labctl.fsio import atomic_write


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


def test_windows_branch_does_not_open_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Windows cannot os.open() a directory; the rename alone is what it offers.
    monkeypatch.setattr(sys, "platform", "win32")
    calls = _count_fsyncs(monkeypatch)
    target = tmp_path / "state.json"
    target.write_text("old\n")
    atomic_write(target, "new\n")
    assert target.read_text() == "new\n" and len(calls) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left behind
