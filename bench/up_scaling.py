"""How `labctl up` scales on the simulator (a benchmark that prints figures and ratios; not a test).

Part 1, instant profile: `up` of a lab with 1, 4 and 16 VMs against `labctl sim serve` in its own
process; per VM: HTTP requests, pipelines, and controller CPU seconds (the `labctl up` process only).
Part 2, realistic profile (durations from public figures, divided by --speedup): the makespan of a
4-VM lab against the longest single-VM chain (a 1-VM lab) and against the same lab with
--max-workers 1.

    python bench/up_scaling.py [--sizes 1,4,16] [--speedup 20] [--skip-realistic]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LAB = """\
name: {name}
host: sim
network: {{switch: {name}-sw, subnet: 10.40.0.0/22, gateway: 10.40.0.1}}
defaults: {{image: ws2022-core, processors: 2, memory: 4GiB, disk: 40GiB}}
vms:
  - name: "{prefix}{{n:02d}}"
    count: {count}
"""


def _labctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labctl.cli.main", *args], capture_output=True, text=True,
                          check=check)


class Served:
    """`labctl sim serve` in its own process for one lab's state."""

    def __init__(self, state: Path, profile: str, speedup: float) -> None:
        self.state = state
        state.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "labctl.cli.main", "sim", "serve", "--state", str(state), "--profile", profile,
             "--speedup", str(speedup), "--host-setting", "memory_capacity=512GiB",
             "--host-setting", "logical_processor_count=64"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not (state / "endpoint.json").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sim serve did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")
            time.sleep(0.05)

    def counters(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(_labctl("sim", "counters", "--state", str(self.state)).stdout)
        return data

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def _up(lab: Path, workers: int) -> tuple[float, float]:
    """Wall seconds and CPU seconds of one `labctl up` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    result = _labctl("up", str(lab), "--max-workers", str(workers), check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"up failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _make_lab(root: Path, name: str, count: int) -> tuple[Path, Path]:
    labs = root / name / "labs"
    labs.mkdir(parents=True)
    lab = labs / f"{name}.yaml"
    lab.write_text(LAB.format(name=name, prefix=name[:6] + "-", count=count))
    return lab, labs / ".labctl" / name / "sim"


def instant(sizes: list[int], root: Path) -> None:
    print("== instant profile: cost per VM of `labctl up` (controller = the labctl up process only)")
    print(f"{'VMs':>4} {'wall s':>8} {'HTTP req/VM':>12} {'pipelines/VM':>13} {'ctl CPU s/VM':>13}")
    base: tuple[float, float, float] | None = None
    for n in sizes:
        lab, state = _make_lab(root, f"bi{n}", n)
        served = Served(state, "instant", 1.0)
        try:
            start = served.counters()
            wall, cpu = _up(lab, min(n, 8))
            end = served.counters()
        finally:
            served.close()
        http = (end["http_requests"] - start["http_requests"]) / n
        pipes = (end["pipelines"] - start["pipelines"]) / n
        print(f"{n:>4} {wall:>8.2f} {http:>12.1f} {pipes:>13.1f} {cpu / n:>13.3f}")
        base = base or (http, pipes, cpu / n)
    if base:
        print("(per-VM figures should stay flat as the lab grows: host-wide steps are amortized, nothing is "
              "per-pair)")


def realistic(speedup: float, root: Path) -> None:
    print(f"\n== realistic profile (durations / {speedup:g}): makespan of a 4-VM lab")
    one, one_state = _make_lab(root, "br1", 1)
    four, four_state = _make_lab(root, "br4", 4)
    serial, serial_state = _make_lab(root, "bs4", 4)
    results = {}
    for label, lab, state, workers in (("1 VM (the longest single-VM chain)", one, one_state, 1),
                                       ("4 VMs, --max-workers 4", four, four_state, 4),
                                       ("4 VMs, --max-workers 1", serial, serial_state, 1)):
        served = Served(state, "realistic", speedup)
        try:
            wall, _cpu = _up(lab, workers)
        finally:
            served.close()
        results[label] = wall
        print(f"  {label:<40} {wall:8.2f} s")
    chain = results["1 VM (the longest single-VM chain)"]
    par = results["4 VMs, --max-workers 4"]
    ser = results["4 VMs, --max-workers 1"]
    print(f"  makespan / longest chain = {par / chain:.2f}  (1.00 is perfect overlap)")
    print(f"  makespan / serial run    = {par / ser:.2f}  (0.25 is perfect 4-way parallelism)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,4,16")
    parser.add_argument("--speedup", type=float, default=20.0)
    parser.add_argument("--skip-realistic", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    with tempfile.TemporaryDirectory(prefix="labctl-bench-") as tmp:
        root = Path(tmp)
        instant([int(s) for s in args.sizes.split(",")], root)
        if not args.skip_realistic:
            realistic(args.speedup, root)


if __name__ == "__main__":
    main()
