"""Journal atomicity and the per-lab lock."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from labctl.engine.journal import Journal
from labctl.engine.lock import LabLock
from labctl.errors import LockError


def test_journal_round_trip_mode_and_lab_check(tmp_path: Path) -> None:
    path = tmp_path / "j" / "journal.json"
    j = Journal.open(path, "qs")
    j.record_host("switch", name="qs-lab")
    j.record_vm("vm1", disk=r"C:\x.vhdx")
    j.stage_done("vm1", "disk")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = Journal.open(path, "qs")
    assert again.lab_id == j.lab_id and again.has_stage("vm1", "disk")
    assert again.host_resource("switch") == {"name": "qs-lab"}
    with pytest.raises(ValueError, match="belongs to lab 'qs'"):
        Journal.open(path, "other")
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".journal")]  # no temp files left
    assert json.loads(path.read_text())["vms"]["vm1"]["stages"] == ["disk"]


def _hold(path: str, ready: multiprocessing.synchronize.Event, release: multiprocessing.synchronize.Event) -> None:
    with LabLock(Path(path), "up"):
        ready.set()
        release.wait(10)


def test_lock_refuses_a_second_run_and_names_the_holder(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    ready, release = multiprocessing.Event(), multiprocessing.Event()
    proc = multiprocessing.Process(target=_hold, args=(str(lock), ready, release))
    proc.start()
    try:
        assert ready.wait(10)
        with pytest.raises(LockError) as err, LabLock(lock, "destroy"):
            pass
        assert f"pid={proc.pid}" in str(err.value.holder)
    finally:
        release.set()
        proc.join(10)
    with LabLock(lock, "up"):  # released when the holder exits
        pass
