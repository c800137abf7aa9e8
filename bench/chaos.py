"""Convergence through transient faults (a benchmark that prints figures; not a test).

A `labctl sim serve` host injects a seeded mix of transient faults (dropped connections, HTTP 500,
WSMan faults, slow Receives) on about --rate of all requests. Each run is a fresh copy of the quickstart
lab (its own lab directory, the same host): `up` until it converges (at most --max-ups calls), then
`destroy` until it exits 0, then the host's inventory must equal the inventory before the run.

Prints how many runs converged on the first `up`, every `up`/`destroy` exit code, and leftovers.

    python bench/chaos.py [--runs 50] [--rate 0.05] [--seed 1]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from labctl.resources import resource_dir

sys.path.insert(0, str(Path(__file__).resolve().parent))
from simhost import Served, labctl, make_lab

REPO = Path(__file__).resolve().parents[1]
GUEST_PASSWORD = "Chaos-Gu3st-Pw!"

# The share of each kind in the mix; slow Receives come on top (they slow a run, they do not break it).
MIX = {"drop_connection": 0.4, "http_500": 0.3, "wsman_fault": 0.3}


def remote_lab(served: Served, name: str) -> str:
    ep = json.loads((served.state / "endpoint.json").read_text())
    text = (resource_dir("labs") / "quickstart.yaml").read_text().replace("name: quickstart", f"name: {name}")
    return text.replace("host: sim", (
        "host:\n"
        f"  uri: {ep['https_uri']}\n"
        "  auth: ntlm\n"
        f"  username: '{ep['username']}'\n"
        "  password_env: LABCTL_CHAOS_HOST_PASSWORD\n"
        f"  fingerprint: 'sha256:{ep['fingerprint']}'\n")) + "guest_password_env: LABCTL_CHAOS_GUEST_PASSWORD\n"


def add_faults(served: Served, rate: float, seed: int) -> None:
    control = served.control()
    control.clear_faults(seed)
    for kind, share in MIX.items():
        params = {"when": "any"} if kind in ("drop_connection", "http_500") else {}
        control.add_fault(kind, probability=rate * share, times=0, **params)
    control.add_fault("slow_receive", match={"action": "Receive"}, probability=rate, times=0, seconds=0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-ups", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="labctl-chaos-") as tmp:
        root = Path(tmp)
        served = Served(root / "host", seed=args.seed)
        ep = json.loads((served.state / "endpoint.json").read_text())
        os.environ["LABCTL_CHAOS_HOST_PASSWORD"] = ep["password"]
        os.environ["LABCTL_CHAOS_GUEST_PASSWORD"] = GUEST_PASSWORD
        os.environ["LABCTL_CACHE_DIR"] = str(root / "cache")
        first_up = converged = clean = 0
        up_codes: collections.Counter[int] = collections.Counter()
        destroy_codes: collections.Counter[int] = collections.Counter()
        leftovers: list[str] = []
        fired: collections.Counter[str] = collections.Counter()
        start = time.monotonic()
        try:
            baseline = served.inventory()
            add_faults(served, args.rate, args.seed)
            for run in range(1, args.runs + 1):
                lab, _state = make_lab(root, f"chaos{run:02d}", "")
                lab.write_text(remote_lab(served, f"chaos{run:02d}"))
                ok = False
                for attempt in range(1, args.max_ups + 1):
                    code = labctl("up", str(lab), check=False).returncode
                    up_codes[code] += 1
                    if code == 0:
                        ok = True
                        first_up += attempt == 1
                        break
                converged += ok
                for _ in range(args.max_ups):
                    code = labctl("destroy", str(lab), "--yes", check=False).returncode
                    destroy_codes[code] += 1
                    if code == 0:
                        break
                control = served.control()
                fired.update(f["kind"] for f in control.faults()["log"])
                control.clear_faults(args.seed + run)
                after = served.inventory()
                add_faults(served, args.rate, args.seed + run)
                if after == baseline:
                    clean += 1
                else:
                    extra = {k: sorted(set(after[k]) - set(baseline[k])) for k in after}
                    leftovers.append(f"run {run}: " + json.dumps({k: v for k, v in extra.items() if v}))
                print(f"run {run:>3}: {'converged' if ok else 'NOT converged'}; "
                      f"ups so far {sum(up_codes.values())}", flush=True)
        finally:
            served.close()
    total = time.monotonic() - start
    print(f"\n== chaos: {args.runs} fresh quickstart labs, faults on ~{args.rate:.0%} of requests, seed {args.seed}")
    print(f"  converged on the first up:   {first_up}/{args.runs}")
    print(f"  converged within {args.max_ups} ups:    {converged}/{args.runs}")
    print(f"  up exit codes:               {dict(sorted(up_codes.items()))}")
    print(f"  destroy exit codes:          {dict(sorted(destroy_codes.items()))}")
    print(f"  destroy left nothing:        {clean}/{args.runs}")
    print(f"  faults fired:                {dict(sorted(fired.items()))}")
    print(f"  wall time:                   {total:.0f} s")
    for line in leftovers[:10]:
        print("  leftover " + line)


if __name__ == "__main__":
    main()
