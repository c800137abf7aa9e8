"""Pipelines and HTTP requests of `labctl status` as a lab grows (a benchmark that prints figures; not a test).

`up` of a lab of N VMs (roles: [], so no container-host bootstrap) against `labctl sim serve` in its own process
(instant profile, a host with 512 GiB, 64 logical processors and a 4 TiB C: so that 50 VMs fit), then
`labctl status` (guests asked over PowerShell Direct) and `labctl status --no-guest`, each counted by the
simulator. Issue 12's target: a 50-VM lab in at most 3 pipelines, guests included, whatever N.

    python bench/status_50.py [--sizes 5,50]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from up_scaling import Served, _labctl  # the served simulator and CLI runner of the up bench

LAB = """\
name: {name}
host: sim
network: {{switch: {name}-sw, subnet: 10.44.0.0/22, gateway: 10.44.0.1}}
defaults: {{image: ws2022-core, processors: 2, memory: 4GiB, disk: 40GiB, roles: []}}
vms:
  - name: "{name}-{{n:02d}}"
    count: {count}
"""


def measure(n: int, root: Path) -> None:
    labs = root / f"st{n}" / "labs"
    labs.mkdir(parents=True)
    lab = labs / f"st{n}.yaml"
    lab.write_text(LAB.format(name=f"st{n}", count=n))
    served = Served(labs / ".labctl" / f"st{n}" / "sim", "instant", 1.0,
                    ("c_volume_size=4TiB", "c_volume_free=4TiB"))
    try:
        up = _labctl("up", str(lab), "--max-workers", "16", check=False)
        if up.returncode != 0:
            raise RuntimeError(f"up failed ({up.returncode}):\n{up.stdout}\n{up.stderr}")
        for label, extra in (("guests asked", ()), ("--no-guest", ("--no-guest",))):
            before = served.counters()
            t0 = time.perf_counter()
            out = _labctl("status", str(lab), "--json", *extra, check=False)
            wall = time.perf_counter() - t0
            after = served.counters()
            vms = json.loads(out.stdout)["vms"] if out.stdout.strip() else []
            healthy = sum(1 for v in vms if v.get("healthy"))
            pipelines = after["pipelines"] - before["pipelines"]
            requests = after["http_requests"] - before["http_requests"]
            print(f"{n:>4} {label:<13} {pipelines:>10} {requests:>9} {healthy:>4}/{len(vms):<4} {wall:>7.2f}"
                  f"  {'ok' if pipelines <= 3 else 'over 3'}")
    finally:
        served.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="5,50")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    print("== `labctl status`, instant profile: what the simulator counted")
    print(f"{'VMs':>4} {'mode':<13} {'pipelines':>10} {'HTTP req':>9} {'healthy':>9} {'wall s':>7}")
    with tempfile.TemporaryDirectory(prefix="labctl-bench-") as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            measure(n, Path(tmp))


if __name__ == "__main__":
    main()
