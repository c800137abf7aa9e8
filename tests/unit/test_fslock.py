"""The portable lock (filelock): exclusive across processes, says who holds it, freed when its holder dies."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labctl.engine.lock import LabLock
from labctl.errors import LockError
from labctl.fslock import Busy, ExclusiveLock

REPO = Path(__file__).resolve().parents[2]
HOLD = """
import sys, time
from pathlib import Path
from labctl.fslock import ExclusiveLock
lock = ExclusiveLock(Path(sys.argv[1]), "up quickstart").acquire()
print("held", flush=True)
time.sleep(60)
"""


def _holder(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_another_process_is_refused_and_told_who_holds_it(tmp_path: Path) -> None:
    path = tmp_path / "lab" / "lock"
    proc = _holder(path)
    try:
        with pytest.raises(Busy) as busy:
            ExclusiveLock(path).acquire()
        assert busy.value.holder is not None and busy.value.holder.startswith(f"up quickstart pid={proc.pid}")
        with pytest.raises(LockError, match="another labctl run holds the lab lock"), LabLock(path, "destroy"):
            pass
    finally:
        proc.kill()
        proc.wait(10)
    # The OS freed the lock of the killed holder: no stale lock to clean up by hand.
    deadline = time.monotonic() + 5
    while True:
        try:
            with ExclusiveLock(path, "destroy") as lock:
                assert lock.held and lock.holder() is not None and lock.holder().startswith("destroy pid=")
            break
        except Busy:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert not (path.parent / "lock.holder").exists()  # the note goes with the lock


def test_release_is_idempotent_and_the_lock_can_be_taken_again(tmp_path: Path) -> None:
    lock = ExclusiveLock(tmp_path / "l")
    lock.acquire()
    lock.release()
    lock.release()
    with ExclusiveLock(tmp_path / "l"):
        pass
