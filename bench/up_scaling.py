"""How `labctl up` scales on the simulator (a benchmark that prints figures and ratios; not a test).

Part 1, instant profile: `up` of a lab with 1, 4 and 16 VMs against `labctl sim serve` in its own
process; per VM: HTTP requests, pipelines, and controller CPU seconds (the `labctl up` process only).
Part 1b, the same per-VM requests and pipelines split by what they are for (issue 12, section 5): host-side
creation (disk, answer file, VM, configuration, start), polling (the readiness waits) and bootstrap (the
answer file's removal and the container-host stages), plus the host-wide steps. Each request is charged to
the stage running when the simulator counted it, so this run brings the VMs up one at a time
(--max-workers 1, `up` in this process, the simulator's own counters read between stages).
Part 2, realistic profile (durations from public figures, divided by --speedup): the makespan of a
4-VM lab against the longest single-VM chain (a 1-VM lab) and against the same lab with
--max-workers 1.

    python bench/up_scaling.py [--sizes 1,4,16] [--split-size 4] [--speedup 20] [--skip-realistic]
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

    def __init__(self, state: Path, profile: str, speedup: float, settings: tuple[str, ...] = ()) -> None:
        self.state = state
        state.mkdir(parents=True, exist_ok=True)
        extra = [arg for setting in settings for arg in ("--host-setting", setting)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "labctl.cli.main", "sim", "serve", "--state", str(state), "--profile", profile,
             "--speedup", str(speedup), "--host-setting", "memory_capacity=512GiB",
             "--host-setting", "logical_processor_count=64", *extra],
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


# Which part of the bring-up a stage's requests belong to (the stage table's phases: build is creation, the
# ready stages that wait are polling, the rest is guest work after readiness).
def _part(stage: str) -> str:
    from labctl.engine.stages import BY_NAME

    row = BY_NAME.get(stage)
    if row is None:
        return "host"  # host-wide steps (folder, switch, gateway, NAT) and the image check
    if row.phase == "build":
        return "creation"
    if row.phase == "ready" and row.timeout is not None:
        return "polling"
    return "bootstrap"


class _Charge:
    """Progress that charges the simulator's counters to the running stage's part (one VM at a time)."""

    def __init__(self, served: Served) -> None:
        from hvsim.control import ControlClient

        self.client = ControlClient.from_state_dir(served.state)
        self.totals: dict[str, list[int]] = {}
        self._open: dict[str, tuple[str, int, int]] = {}

    def _now(self) -> tuple[int, int]:
        data = self.client.counters()
        return int(data["http_requests"]), int(data["pipelines"])

    def stage(self, vm: str, stage: str, status: str, detail: str = "") -> None:
        requests, pipelines = self._now()
        if vm in self._open:
            part, r0, p0 = self._open.pop(vm)
            total = self.totals.setdefault(part, [0, 0])
            total[0] += requests - r0
            total[1] += pipelines - p0
        if status == "start":
            self._open[vm] = (_part(stage) if vm != "host" else "host", requests, pipelines)


def split(n: int, root: Path) -> None:
    """Per-VM requests and pipelines by part, for an n-VM lab brought up one VM at a time."""
    from labctl.app import up as up_case
    from labctl.app.labfile import load

    print(f"\n== instant profile, {n} VMs one at a time: HTTP requests (pipelines) per VM by part")
    lab, state = _make_lab(root, f"bx{n}", n)
    served = Served(state, "instant", 1.0)
    try:
        charge = _Charge(served)
        start = charge._now()
        result = up_case.up(load(str(lab)), up_case.UpOptions(max_workers=1), progress=charge)
        end = charge._now()
    finally:
        served.close()
    if result.report is None or result.report.failed:
        raise RuntimeError(f"up failed: {result.report.failed if result.report else 'no report'}")
    charged = sum(r for r, _ in charge.totals.values())
    # What no stage ran: connecting, the plan's host read, the lab lock and image checks before the first stage.
    other = (end[0] - start[0] - charged, end[1] - start[1] - sum(p for _, p in charge.totals.values()))
    rows = [(part, charge.totals.get(part, [0, 0])[0], charge.totals.get(part, [0, 0])[1])
            for part in ("creation", "polling", "bootstrap", "host")]
    rows.append(("connect+plan", other[0], other[1]))
    for part, requests, pipelines in rows:
        print(f"  {part:<13} {requests / n:8.1f} req/VM {pipelines / n:7.1f} pipelines/VM")
    print(f"  creation target: <= 12 HTTP requests per VM: {'met' if rows[0][1] / n <= 12 else 'NOT met'}")


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
    parser.add_argument("--split-size", type=int, default=4, help="VMs of the lab whose requests are split by part")
    parser.add_argument("--speedup", type=float, default=20.0)
    parser.add_argument("--skip-realistic", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    with tempfile.TemporaryDirectory(prefix="labctl-bench-") as tmp:
        root = Path(tmp)
        instant([int(s) for s in args.sizes.split(",")], root)
        if args.split_size > 0:
            split(args.split_size, root)
        if not args.skip_realistic:
            realistic(args.speedup, root)


if __name__ == "__main__":
    main()
