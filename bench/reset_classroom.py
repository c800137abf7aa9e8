"""Resetting a classroom between classes (a benchmark that prints figures and ratios; not a test).

The 13-VM classroom (bench/labs/classroom13.yaml: one instructor, twelve student container hosts) on
`labctl sim serve` (instant profile; modeled times are what the simulator's durations say a real host takes):

- after: `labctl snapshot save baseline` once, then `labctl reset` (restore every VM, boot, ready, containers
  verified) after a student changed a guest;
- before this existed, a trainer's reset was `labctl destroy` + `labctl up` (a fresh build);
- and the same reset of a 4-VM lab, to show the host pipelines do not grow with the VMs.

Modeled real-host time of a command = the host's modeled seconds + the slowest VM's (the VMs work in
parallel), from the simulator's clock report before and after it.

    python bench/reset_classroom.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from simhost import Served, labctl, make_lab, timed_labctl

HERE = Path(__file__).resolve().parent
SMALL = """\
name: small
host: sim
network: {subnet: 10.31.0.0/24}
defaults: {image: ws2022-core, processors: 2, memory: 4GiB, disk: 60GiB}
vms:
  - name: "sm-node{n}"
    count: 4
"""


def _clock(served: Served) -> dict[str, float]:
    report: dict[str, Any] = json.loads(labctl("sim", "clock", "--state", str(served.state)).stdout)
    return {k: float(v) for k, v in report["modeled_seconds"].items()}


def _modeled(before: dict[str, float], after: dict[str, float]) -> float:
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    vms = [v for k, v in delta.items() if k != "host"]
    return delta.get("host", 0.0) + (max(vms) if vms else 0.0)


def _measure(served: Served, *args: str) -> tuple[float, int, int, float]:
    """(modeled seconds, pipelines, HTTP requests, wall seconds) of one labctl command."""
    c0, k0 = _clock(served), served.counters()
    result, wall, _cpu = timed_labctl(*args)
    if result.returncode != 0:
        raise RuntimeError(f"labctl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    c1, k1 = _clock(served), served.counters()
    return _modeled(c0, c1), k1["pipelines"] - k0["pipelines"], k1["http_requests"] - k0["http_requests"], wall


def _containers(lab: Path, vm: str) -> str:
    return labctl("docker", str(lab), vm, "--", "ps", "-a").stdout


def classroom(root: Path) -> None:
    lab, state = make_lab(root, "classroom", (HERE / "labs" / "classroom13.yaml").read_text())
    vms = 13
    served = Served(state)
    try:
        up = _measure(served, "up", str(lab), "--max-workers", "13")
        _measure(served, "snapshot", "save", str(lab), "baseline")
        labctl("docker", str(lab), "cls-st07", "--", "run", "--name", "homework",
               "mcr.microsoft.com/windows/nanoserver:ltsc2022", "cmd", "/c", "echo", "hi")
        assert "homework" in _containers(lab, "cls-st07")
        reset = _measure(served, "reset", str(lab))
        assert "homework" not in _containers(lab, "cls-st07"), "the reset left the student's container"
        healthy = labctl("status", str(lab), check=False).returncode == 0
        destroy = _measure(served, "destroy", str(lab), "--yes")
        rebuild = _measure(served, "up", str(lab), "--max-workers", "13")
    finally:
        served.close()
    print(f"== the {vms}-VM classroom (modeled real-host time, instant profile)")
    print(f"{'':<34} {'modeled min':>11} {'pipelines':>10} {'HTTP req':>9} {'wall s':>7}")
    rows = (("first up", up), ("reset (after: snapshot + reset)", reset),
            ("destroy + up (before: rebuild)", (destroy[0] + rebuild[0], destroy[1] + rebuild[1],
                                                destroy[2] + rebuild[2], destroy[3] + rebuild[3])))
    for label, (modeled, pipes, http, wall) in rows:
        print(f"{label:<34} {modeled / 60:>11.1f} {pipes:>10} {http:>9} {wall:>7.2f}")
    print(f"reset / rebuild (modeled) = {reset[0] / (destroy[0] + rebuild[0]):.2f}; target: reset under 2 min "
          f"modeled -> {'met' if reset[0] < 120 else 'NOT met'} ({reset[0]:.0f} s); all healthy after reset: "
          f"{healthy}; the student's container gone: True")


def pipelines_do_not_grow(root: Path) -> None:
    lab, state = make_lab(root, "small", SMALL)
    served = Served(state)
    try:
        _measure(served, "up", str(lab))
        _measure(served, "snapshot", "save", str(lab), "baseline")
        modeled, pipes, http, _wall = _measure(served, "reset", str(lab))
    finally:
        served.close()
    print(f"== the same reset of a 4-VM lab: {pipes} pipelines, {http} HTTP requests, {modeled / 60:.1f} min "
          "modeled (the pipelines are per lab, not per VM; polls repeat while guests boot)")


def main() -> None:
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    with tempfile.TemporaryDirectory(prefix="labctl-bench-") as tmp:
        classroom(Path(tmp))
        pipelines_do_not_grow(Path(tmp))


if __name__ == "__main__":
    main()
