"""Kill anywhere, every point in one run (a benchmark that prints figures; not a test).

For each kill point of tests/integration/killpoints.py (every stage of the quickstart's bring-up), a
simulator in this process holds that call, `labctl up` (its own process) is SIGKILLed there, and then:
(1) `labctl destroy` must leave the host as it was; (2) after a second kill at the same point, one `labctl up`
must converge to the host an uninterrupted run makes (ids aside), and `destroy` must leave nothing.

    python bench/kill_anywhere.py
"""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
import time
from pathlib import Path

from labctl.resources import resource_dir

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO / "tests" / "integration"), str(HERE)]
from hostview import inventory, shape  # noqa: E402
from killpoints import POINTS, kill_up_at  # noqa: E402
from simhost import labctl, make_lab, sim_transport  # noqa: E402

from hvsim.server import Simulator  # noqa: E402


def main() -> None:
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    rows = []
    with tempfile.TemporaryDirectory(prefix="labctl-kill-") as tmp:
        lab, state = make_lab(Path(tmp), "quickstart", (resource_dir("labs") / "quickstart.yaml").read_text())
        os.environ["LABCTL_CACHE_DIR"] = str(Path(tmp) / "cache")
        state.mkdir(parents=True)
        lock = os.open(state / "serve.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as `labctl sim serve` does: labctl joins this host
        sim = Simulator(state).start()
        t = sim_transport(sim.endpoint())
        try:
            empty = inventory(t)
            assert labctl("up", str(lab), check=False).returncode == 0
            reference = shape(inventory(t))
            assert labctl("destroy", str(lab), "--yes", check=False).returncode == 0
            for point in POINTS:
                start = time.monotonic()
                kill_up_at(sim, lab, point)
                destroyed = labctl("destroy", str(lab), "--yes", check=False).returncode == 0 and inventory(t) == empty
                kill_up_at(sim, lab, point)
                rerun = labctl("up", str(lab), check=False).returncode == 0 and shape(inventory(t)) == reference
                cleaned = labctl("destroy", str(lab), "--yes", check=False).returncode == 0 and inventory(t) == empty
                rows.append((point.id, destroyed, rerun, cleaned, time.monotonic() - start))
                print(f"  {point.id:<55} destroy-after-kill {'ok' if destroyed else 'LEFTOVERS'}  "
                      f"one rerun {'converged' if rerun else 'DIFFERS'}  "
                      f"then destroy {'ok' if cleaned else 'LEFTOVERS'}  ({rows[-1][4]:.1f} s)", flush=True)
        finally:
            t.close()
            sim.stop()
            os.close(lock)
    n = len(rows)
    print(f"\n== kill anywhere: {n} kill points over every stage of the quickstart (2 VMs)")
    print(f"  destroy after a kill left nothing:          {sum(r[1] for r in rows)}/{n}")
    print(f"  one rerun converged to the uninterrupted host: {sum(r[2] for r in rows)}/{n}")
    print(f"  destroy after that rerun left nothing:      {sum(r[3] for r in rows)}/{n}")


if __name__ == "__main__":
    main()
