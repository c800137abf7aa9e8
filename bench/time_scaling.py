"""Honest time and near-limit parallelism of `labctl up` (issue 12, section 5): a benchmark that prints figures and
ratios in one run; not a test.

1. Large host (512 GiB, 64 logical processors, the default NVMe disk and 1 Gbit/s uplink), instant profile:
   `up` of container-host labs (bench/up_scaling.py's lab: ws2022-core, nested, roles: [container-host]) with
   1, 4, 16 and 32 VMs, default options and --max-workers 4: the modeled makespan (`labctl sim clock`,
   estimated_makespan_seconds) over the longest single-VM chain (the 1-VM lab's makespan); target <= 1.10.
   Also the line labctl itself prints ("a real Hyper-V host would have taken about X min"), from an `up` with
   the embedded simulator on the same host settings (a served simulator gives labctl no clock to report).
2. The same on a host whose disk is the bottleneck (disk_mbps and disk_iops chosen so 16 VMs saturate it),
   against the limit the host's resources allow (hvsim.core.resources.host_limit: per resource, the total use
   of every operation that ran over the capacity, and the chain).
3. For 16 VMs: HTTP requests and pipelines per VM split into creation, polling and bootstrap
   (bench/up_scaling.py part 1b), and controller CPU per VM (the `labctl up` process only, default options).
4. Estimate/realistic agreement: 4 VMs (and 16 when it fits in ~2 minutes of wall time) in the realistic profile
   at --speedup: wall x speedup against the instant profile's estimate of the same lab (target within 10%).

    python bench/time_scaling.py [--sizes 1,4,16,32] [--speedup 100] [--skip-realistic] [--quick]
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simhost import Served, clock_report, make_lab, timed_labctl, timeline_work
from up_scaling import LAB, split

from hvsim.core.clock import load_operations
from hvsim.core.resources import Capacity, host_limit

LARGE = ("memory_capacity=512GiB", "logical_processor_count=64")
TARGET_CHAIN = 1.10
TARGET_AGREEMENT = 0.10
# How far past the chain the disk-bound host's disk limit lies for 16 VMs (bandwidth; IOPS a little less tight).
DISK_SQUEEZE = 2.0
IOPS_SQUEEZE = 1.5
ESTIMATE_LINE = re.compile(r"a real Hyper-V host would have taken about ([0-9.]+) min")


@dataclass
class Run:
    """One `labctl up` of an n-VM lab against a served simulator."""

    n: int
    workers: int | None
    wall: float
    cpu: float
    makespan: float
    report: dict[str, Any]
    failed: str = ""  # the first failure line labctl printed, when the up failed


def _lab(root: Path, name: str, n: int) -> tuple[Path, Path]:
    return make_lab(root, name, LAB.format(name=name, prefix=name[:6] + "-", count=n))


def _options(workers: int | None) -> tuple[str, ...]:
    return () if workers is None else ("--max-workers", str(workers))


def _label(workers: int | None) -> str:
    return "default" if workers is None else f"--max-workers {workers}"


def up_served(root: Path, name: str, n: int, workers: int | None, settings: tuple[str, ...],
              profile: str = "instant", speedup: float = 1.0) -> Run:
    """`labctl up` in its own process against `labctl sim serve` in another; the clock read afterwards."""
    lab, state = _lab(root, name, n)
    served = Served(state, profile=profile, speedup=speedup, settings=settings)
    try:
        result, wall, cpu = timed_labctl("up", str(lab), *_options(workers))
        report = clock_report(state)
    finally:
        served.close()
    failed = ""
    if result.returncode != 0:
        lines = [ln for ln in (result.stdout + result.stderr).splitlines() if " failed at stage " in ln
                 or ln.startswith("error")]
        failed = f"rc {result.returncode}: " + (lines[0].strip()[:150] if lines else "(no failure line)")
    return Run(n, workers, wall, cpu, float(report["estimated_makespan_seconds"]), report, failed)


def printed_estimate(root: Path, name: str, n: int, workers: int | None) -> str:
    """The estimate line labctl prints after an `up` with the embedded simulator. That simulator takes no host
    settings (the default host: 64 GiB, 16 logical processors), so this is the same lab on a smaller host, and
    labs that do not fit are refused."""
    lab, _state = _lab(root, name, n)
    result, _wall, _cpu = timed_labctl("up", str(lab), *_options(workers))
    match = ESTIMATE_LINE.search(" ".join(result.stdout.split()))
    if match:
        return f"{match.group(1)} min"
    return "refused" if "cannot take this lab" in result.stdout + result.stderr else f"failed ({result.returncode})"


def stretch(report: dict[str, Any]) -> float:
    """Timeline seconds of all operations over their base seconds (1.00: nothing slowed by contention)."""
    rows = [r for rs in ((report.get("timeline") or {}).get("actors") or {}).values() for r in rs]
    placed = sum(float(r[2]) - float(r[1]) for r in rows)
    base = sum(float(v) for v in (report.get("modeled_seconds") or {}).values())
    return placed / base if base else 1.0


def large_host(root: Path, sizes: list[int], quick: bool) -> tuple[dict[tuple[int, int | None], Run], float]:
    print("== 1. large host (512 GiB, 64 LP, disk 3000 MB/s / 400k IOPS, 1 Gbit/s), instant profile: "
          "makespan / longest single-VM chain (target <= 1.10)")
    runs: dict[tuple[int, int | None], Run] = {}
    print(f"{'VMs':>4} {'options':<16} {'makespan min':>13} {'/ chain':>8} {'stretch':>8} {'wall s':>7} "
          f"{'labctl printed':>15}")
    chain = 0.0
    for n in sizes:
        for workers in (None, 4):
            run = up_served(root, f"tl{n}{'d' if workers is None else 'w'}", n, workers, LARGE)
            runs[(n, workers)] = run
            if n == sizes[0] and workers is None:
                chain = run.makespan
            line = "-" if quick else printed_estimate(root, f"te{n}{'d' if workers is None else 'w'}", n,
                                                       workers)
            ratio = run.makespan / chain if chain else float("nan")
            flag = "" if ratio <= TARGET_CHAIN else "  > target"
            print(f"{n:>4} {_label(workers):<16} {run.makespan / 60:>13.1f} {ratio:>8.2f} {stretch(run.report):>8.2f} "
                  f"{run.wall:>7.1f} {line:>15}{flag}")
            if run.failed:
                print(f"     UP FAILED ({run.n} VMs, {_label(workers)}): {run.failed}")
    print(f"(chain = the {sizes[0]}-VM lab's makespan, {chain / 60:.1f} min; stretch = timeline seconds / base "
          "seconds of all operations, 1.00 when nothing waited for a shared resource; labctl printed: "
          "its own 'would have taken' line after an up of the same lab with the embedded simulator, which takes no "
          "host settings: the default 64 GiB / 16 LP host; refused = it does not fit there. A served simulator "
          "gives labctl no clock, so the line is absent after the runs measured here)")
    return runs, chain


def disk_bound_settings(work16: dict[str, float], chain: float) -> tuple[str, ...]:
    """Host settings whose disk 16 VMs saturate: bandwidth for DISK_SQUEEZE x the chain, IOPS for IOPS_SQUEEZE x."""
    ops = load_operations()
    _, per_mb = host_limit(work16, ops, Capacity(disk_mbps=1.0, disk_iops=1.0))
    mbps = max(1, round(per_mb["disk_mb"] / (DISK_SQUEEZE * chain)))
    iops = max(1, round(per_mb["disk_io"] / (IOPS_SQUEEZE * chain)))
    return (*LARGE, f"disk_mbps={mbps}", f"disk_iops={iops}")


def disk_host(root: Path, sizes: list[int], large: dict[tuple[int, int | None], Run], settings: tuple[str, ...],
              ) -> None:
    ops = load_operations()
    values = dict(s.split("=", 1) for s in settings)
    cap = Capacity(cpu=64, disk_mbps=float(values["disk_mbps"]), disk_iops=float(values["disk_iops"]))
    print(f"\n== 2. disk-bound host (disk {cap.disk_mbps:g} MB/s / {cap.disk_iops:g} IOPS, chosen so 16 VMs "
          f"saturate it; 64 LP, 1 Gbit/s), instant profile: makespan / the limit the host's resources allow")
    print(f"{'VMs':>4} {'options':<16} {'makespan min':>13} {'limit min':>10} {'bound by':>9} {'/ limit':>8} "
          f"{'cpu':>6} {'disk_mb':>8} {'disk_io':>8} {'net':>6} {'chain':>6}  (bounds, min)")
    chain = 0.0
    for n in sizes:
        for workers in (None, 4):
            run = up_served(root, f"td{n}{'d' if workers is None else 'w'}", n, workers, settings)
            if n == sizes[0] and workers is None:
                chain = run.makespan
            # What ran, from the same lab on the large host (nothing stretched there, so lengths are counts).
            work = timeline_work(large[(n, None)].report, ops)
            limit, bounds = host_limit(work, ops, cap, chain)
            by = max(bounds, key=lambda k: bounds[k])
            cols = " ".join(f"{bounds[k] / 60:>{w}.1f}" for k, w in
                            (("cpu", 6), ("disk_mb", 8), ("disk_io", 8), ("net_mb", 6), ("chain", 6)))
            print(f"{n:>4} {_label(workers):<16} {run.makespan / 60:>13.1f} {limit / 60:>10.1f} {by:>9} "
                  f"{run.makespan / limit:>8.2f} {cols}")
            if run.failed or large[(n, None)].failed:
                print(f"     UP FAILED (this run or the large-host one the work comes from): "
                      f"{run.failed or large[(n, None)].failed}")
    print(f"(limit = max over resources of total use / capacity, and the chain: the {sizes[0]}-VM lab's makespan "
          "on this host; 1.00 is as fast as the host allows)")


def requests_and_cpu(root: Path, n: int, large: dict[tuple[int, int | None], Run]) -> None:
    split(n, root)
    run = large.get((n, None))
    if run is not None:
        per_vm = run.cpu / n
        print(f"  controller CPU (labctl up process, default options, {n} VMs): {per_vm * 1000:.0f} ms/VM "
              f"(target <= 50 ms: {'met' if per_vm <= 0.050 else 'NOT met'}); --max-workers 4: "
              f"{large[(n, 4)].cpu / n * 1000:.0f} ms/VM")


def agreement(root: Path, speedups: list[float], large: dict[tuple[int, int | None], Run]) -> None:
    print(f"\n== 4. estimate vs realistic (large host, default options, realistic profile at speedup "
          f"{', '.join(f'{s:g}' for s in speedups)})")
    print(f"{'VMs':>4} {'speedup':>7} {'instant estimate min':>21} {'wall s':>7} {'wall x speedup min':>19} "
          f"{'ratio':>6} {'realistic timeline min':>23}")
    for speedup in speedups:
        _agreement_at(root, speedup, large)
    print("(wall = the whole `labctl up` process, Python start and connection included; realistic timeline = the "
          "realistic simulator's own estimated_makespan_seconds. Every wall second the controller and the simulator "
          "spend computing counts `speedup` simulated seconds: on 2 cores, a higher speedup measures them more than "
          "the host model)")


def _agreement_at(root: Path, speedup: float, large: dict[tuple[int, int | None], Run]) -> None:
    for n in (4, 16):
        instant = large.get((n, None))
        if instant is None:
            continue
        if instant.makespan / speedup > 180:
            print(f"{n:>4} skipped: about {instant.makespan / speedup:.0f} s of wall time at speedup {speedup:g}")
            continue
        run = up_served(root, f"tr{n}-{speedup:g}", n, None, LARGE, profile="realistic", speedup=speedup)
        if run.failed:
            print(f"     UP FAILED: {run.failed}")
        real = run.wall * speedup
        ratio = real / instant.makespan
        flag = "" if abs(ratio - 1) <= TARGET_AGREEMENT else "  outside 10%"
        print(f"{n:>4} {speedup:>7g} {instant.makespan / 60:>21.1f} {run.wall:>7.1f} {real / 60:>19.1f} "
              f"{ratio:>6.2f} {run.makespan / 60:>23.1f}{flag}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,4,16,32", help="lab sizes; the first is the single-VM chain")
    parser.add_argument("--speedup", default="100,20", help="realistic profile speedups, comma-separated (part 4)")
    parser.add_argument("--skip-realistic", action="store_true", help="skip part 4")
    parser.add_argument("--quick", action="store_true",
                        help="sizes 1,4,16 unless --sizes is given, no printed-estimate runs, no realistic 16-VM run")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.quick and args.sizes == parser.get_default("sizes"):
        sizes = [1, 4, 16]
    if sizes[0] != 1:
        sizes.insert(0, 1)
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    with tempfile.TemporaryDirectory(prefix="labctl-time-") as tmp:
        root = Path(tmp)
        large, chain = large_host(root, sizes, args.quick)
        ref = 16 if (16, None) in large else max(n for n, _ in large)
        settings = disk_bound_settings(timeline_work(large[(ref, None)].report, load_operations()), chain)
        disk_host(root, sizes, large, settings)
        print(f"\n== 3. {ref} VMs: requests per VM by part, controller CPU per VM")
        requests_and_cpu(root, ref, large)
        if not args.skip_realistic:
            if args.quick:
                large = {k: v for k, v in large.items() if k[0] <= 4}
            agreement(root, [float(x) for x in args.speedup.split(",")], large)


if __name__ == "__main__":
    main()
