"""What the benchmarks share: `labctl sim serve` in its own process, the labctl CLI as a user runs it, and
the host's inventory as a person would compare it (not a test; imported by the bench scripts)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from labctl.secret import Secret
from labctl.transport.psrp import Endpoint, PsrpTransport

# The one inventory the tests compare too (tests/integration/hostview.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from hostview import inventory


def labctl(*args: str, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """One `labctl` process, output captured."""
    return subprocess.run([sys.executable, "-m", "labctl.cli.main", *args], capture_output=True, text=True,
                          check=check, timeout=timeout)


def timed_labctl(*args: str) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """A `labctl` process with its wall and CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    result = labctl(*args, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result, wall, cpu


class Served:
    """`labctl sim serve` in its own process for one state directory."""

    def __init__(self, state: Path, profile: str = "instant", speedup: float = 1.0, seed: int = 0,
                 settings: tuple[str, ...] = ("memory_capacity=512GiB", "logical_processor_count=64"),
                 extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        """``extra_args`` go to `sim serve` as they are (``--kerberos-keytab K --kerberos-realm R``); ``env``
        replaces the process environment (a Kerberos realm's KRB5_CONFIG, which gssapi reads once)."""
        self.state = state
        state.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "labctl.cli.main", "sim", "serve", "--state", str(state), "--profile", profile,
               "--speedup", str(speedup), "--seed", str(seed)]
        for setting in settings:
            cmd += ["--host-setting", setting]
        cmd += list(extra_args)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 30
        while not (state / "endpoint.json").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sim serve did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")
            time.sleep(0.05)
        self._transport: PsrpTransport | None = None

    def control(self) -> Any:
        from hvsim.control import ControlClient

        return ControlClient.from_state_dir(self.state)

    def counters(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(labctl("sim", "counters", "--state", str(self.state)).stdout)
        return data

    def transport(self) -> PsrpTransport:
        if self._transport is None:
            self._transport = sim_transport(json.loads((self.state / "endpoint.json").read_text()))
        return self._transport

    def inventory(self) -> dict[str, list[str]]:
        return inventory(self.transport())

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self.proc.terminate()
        self.proc.wait(30)


def sim_transport(info: dict[str, Any]) -> PsrpTransport:
    """A transport to a simulator from its endpoint.json."""
    return PsrpTransport(Endpoint(uri=info["https_uri"], auth="ntlm", username=info["username"],
                                  password=Secret(info["password"]), fingerprint=info["fingerprint"]), size=1)


def make_lab(root: Path, name: str, text: str) -> tuple[Path, Path]:
    """A lab file in root/name/labs/ and the simulator state directory `host: sim` gives it."""
    labs = root / name / "labs"
    labs.mkdir(parents=True, exist_ok=True)
    lab = labs / f"{name}.yaml"
    lab.write_text(text)
    return lab, labs / ".labctl" / name / "sim"


def clock_report(state: Path) -> dict[str, Any]:
    """A running simulator's clock report (modeled seconds per actor, the timeline of what ran)."""
    report: dict[str, Any] = json.loads(labctl("sim", "clock", "--state", str(state)).stdout)
    return report


def modeled_span(before: dict[str, Any], after: dict[str, Any]) -> float:
    """Modeled real-host seconds of what ran between two clock reports: from the first start to the last end of
    the timeline's new intervals (operations placed where they ran, sharing the host's CPU, disk and network).
    Without a timeline (an older simulator): the host's seconds plus the slowest VM's."""
    def rows(report: dict[str, Any]) -> set[tuple[str, str, float, float, int]]:
        actors = (report.get("timeline") or {}).get("actors") or {}
        return {(a, str(r[0]), float(r[1]), float(r[2]), int(r[3])) for a, rs in actors.items() for r in rs}

    new = rows(after) - rows(before)
    if new:
        return max(r[3] for r in new) - min(r[2] for r in new)
    return modeled_estimate(before, after)


def modeled_estimate(before: dict[str, Any], after: dict[str, Any]) -> float:
    """The simpler estimate between two clock reports: the host's modeled seconds plus the slowest VM's (no
    contention, everything of a VM in sequence)."""
    b, a = before.get("modeled_seconds") or {}, after.get("modeled_seconds") or {}
    delta = {k: float(a[k]) - float(b.get(k, 0.0)) for k in a}
    vms = [v for k, v in delta.items() if k != "host"]
    return delta.get("host", 0.0) + (max(vms) if vms else 0.0)


def timeline_work(report: dict[str, Any], operations: dict[str, Any]) -> dict[str, float]:
    """How many times each operation ran (factors included) in a clock report's timeline: each row's length over
    the operation's base seconds. True only where nothing was stretched by contention (a host large enough for
    the lab), so take it from such a run and apply it to the same lab on a smaller host."""
    work: dict[str, float] = {}
    for rows in ((report.get("timeline") or {}).get("actors") or {}).values():
        for key, start, end, _count in rows:
            op = operations.get(key)
            if op is not None and op.seconds > 0:
                work[key] = work.get(key, 0.0) + (float(end) - float(start)) / op.seconds
    return work
