"""Images: what building them costs on a real host, and what a golden image saves (a benchmark that prints
figures and ratios; not a test).

On `labctl sim serve` (instant profile; modeled times are what the simulator's durations say a real host takes):

- each base from its evaluation ISO (`labctl image build`, on a host with `--host-setting base_disks=false`);
- the golden ws2022-container from ws2022-core (labctl.app.golden.build_golden_on: build VM, bootstrap,
  golden-clean, sysprep, standalone disk);
- a 4-VM lab's bring-up (`labctl up`) from the plain ws2022-core base and the same lab from ws2022-container:
  the ratio golden / plain, target <= 0.2 (the bootstrap's features + reboot, Docker and the image pull are
  about 13 of the quickstart's 14 modeled minutes, and a golden guest does none of them).

Modeled real-host time of a command = the host's modeled seconds plus the slowest VM's (the VMs work in
parallel), from the simulator's clock reports before and after it.

    python bench/images.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from simhost import Served, clock_report, labctl, make_lab, modeled_estimate

LAB = """\
name: imgbench
host: sim
network: {{subnet: 10.32.0.0/24}}
defaults: {{image: {image}, processors: 2, memory: 4GiB, disk: 60GiB}}
vms:
  - name: "{prefix}{{n}}"
    count: 4
"""
ISO_BASES = ("ws2019-core", "ws2022-core", "ws2025-core")
TARGET = 0.2
FIRST_BOOT_SECONDS = 210 + 40  # durations.yaml: first_boot_specialize_oobe + boot_to_heartbeat


def _clock(served: Served) -> dict[str, Any]:
    return clock_report(served.state)


def _modeled(before: dict[str, Any], after: dict[str, Any]) -> float:
    # The estimate (host + slowest VM): the timeline's span is not per command yet (an up after other work
    # starts its host-wide steps early on the timeline's host lane; issue 12).
    return modeled_estimate(before, after)


def _measure(served: Served, work: Callable[[], None]) -> float:
    before = _clock(served)
    work()
    return _modeled(before, _clock(served))


def _cli(*args: str) -> Callable[[], None]:
    def run() -> None:
        result = labctl(*args, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"labctl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n"
                               f"{result.stderr}")
    return run


def _golden(served: Served, state: Path) -> Callable[[], None]:
    """ws2022-container built in this process against the served simulator (its endpoint.json)."""
    def run() -> None:
        from labctl.app.connection import connect_endpoint, sim_endpoint
        from labctl.app.golden import build_golden_on
        from labctl.lab.files import load_catalog
        from labctl.resources import resource_dir

        images = load_catalog([resource_dir("images")]).entries
        info = json.loads((served.state / "endpoint.json").read_text())
        conn = connect_endpoint(sim_endpoint(info), workers=2, simulated=True)
        try:
            build_golden_on(conn, images["ws2022-container"], images["ws2022-core"], state_dir=state,
                            progress=None)
        finally:
            conn.close()
    return run


def iso_bases(root: Path) -> dict[str, float]:
    """Modeled minutes to build each base from its ISO on a host without bases."""
    lab, state = make_lab(root / "iso", "imgbench", LAB.format(image="ws2022-core", prefix="ib-node"))
    served = Served(state, settings=("memory_capacity=512GiB", "logical_processor_count=64", "base_disks=false"))
    try:
        return {image: _measure(served, _cli("image", "build", str(lab), image)) for image in ISO_BASES}
    finally:
        served.close()


def golden_and_ratio(root: Path) -> tuple[float, float, float]:
    """(golden build, plain 4-VM up, golden 4-VM up), modeled seconds, on one host with the shipped bases."""
    lab, state = make_lab(root / "golden", "imgbench", LAB.format(image="ws2022-core", prefix="ib-node"))
    served = Served(state)
    try:
        plain = _measure(served, _cli("up", str(lab)))
        _cli("destroy", str(lab), "--yes")()
        build = _measure(served, _golden(served, root / "golden-state"))
        # Other VM names than the plain lab's, so the simulator's per-guest counters are the golden VMs' own.
        lab.write_text(LAB.format(image="ws2022-container", prefix="gb-node"))
        golden = _measure(served, _cli("up", str(lab)))
        counters = served.counters().get("guests", {})
        work = {k: sum(c.get(k, 0) for vm, c in counters.items() if vm.startswith("gb-node"))
                for k in ("feature_installs", "docker_installs", "registry_pulls")}
        print("   in the golden lab's 4 guests: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in work.items()))
    finally:
        served.close()
    return build, plain, golden


def main() -> None:
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    with tempfile.TemporaryDirectory(prefix="labctl-bench-") as tmp:
        root = Path(tmp)
        print("== images (modeled real-host minutes, instant profile)")
        try:
            for image, seconds in iso_bases(root).items():
                print(f"{'base ' + image + ' from its ISO':<40} {seconds / 60:>8.1f}")
        except RuntimeError as err:
            print(f"base images from ISO: not measured ({str(err).splitlines()[0]})")
        build, plain, golden = golden_and_ratio(root)
        print(f"{'golden ws2022-container from ws2022-core':<40} {build / 60:>8.1f}")
        print(f"{'4-VM lab up from ws2022-core':<40} {plain / 60:>8.1f}")
        print(f"{'4-VM lab up from ws2022-container':<40} {golden / 60:>8.1f}")
        ratio = golden / plain if plain else float("nan")
        print(f"golden / plain bring-up (modeled) = {ratio:.2f}; target <= {TARGET} -> "
              f"{'met' if ratio <= TARGET else 'NOT met'}; the golden build pays for itself after "
              f"{build / max(plain - golden, 1e-9):.1f} lab(s)")
        floor = FIRST_BOOT_SECONDS / plain if plain else float("nan")
        print(f"(every new VM pays its first boot: boot, specialize, OOBE: {FIRST_BOOT_SECONDS / 60:.1f} min modeled, "
              f"golden or not: {floor:.2f} of the plain bring-up before any other step)")


if __name__ == "__main__":
    main()
