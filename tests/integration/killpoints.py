"""Killing `labctl up` at a chosen call: the simulator holds that call in flight, the test SIGKILLs the client.

A ``hold`` fault stops one cmdlet's request on the host (after the cmdlet ran, or before), so the kill lands
exactly there: a disk just made, a disk still mounted, a restart just sent. Shared by the kill tests and
bench/killpoints.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hvsim.core.faults import FaultRule

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class KillPoint:
    """Where to kill: the stage it stands for and the call the host holds."""

    stage: str
    cmdlet: str
    vm: str = ""
    step: str = ""
    when: str = "after"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        what = self.step or self.cmdlet
        return f"{self.stage}:{what}:{self.when}"

    def rule(self) -> FaultRule:
        match = {"cmdlet": self.cmdlet}
        if self.vm:
            match["vm"] = self.vm
        if self.step:
            match["step"] = self.step
        return FaultRule("hold", match=match, times=1, params={"when": self.when})


# Every stage of a container host's bring-up, on the quickstart's second VM where a VM is involved.
VM = "qs-node01"
POINTS = (
    KillPoint("host switch", "New-VMSwitch"),
    KillPoint("host nat", "New-NetNat"),
    KillPoint("disk", "New-VHD"),
    KillPoint("answer-file (mounted)", "Mount-VHD"),
    KillPoint("answer-file (written, mounted)", "Set-Content"),
    KillPoint("vm", "New-VM", VM),
    KillPoint("configure", "Set-VMProcessor", VM),
    KillPoint("start", "Start-VM", VM),
    KillPoint("readiness (logon)", "Invoke-Command", VM, "probe"),
    KillPoint("features (shutdown sent)", "Stop-VM", VM),
    KillPoint("docker (zip copied)", "Copy-VMFile", VM),
    KillPoint("docker (install)", "Invoke-Command", VM, "docker-install"),
    KillPoint("images (pull)", "Invoke-Command", "", "image-pull"),
    KillPoint("verify", "Invoke-Command", VM, "verify-isolation"),
)


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def kill_up_at(sim: Any, lab_file: Path, point: KillPoint, env: dict[str, str] | None = None,
               timeout: float = 90) -> None:
    """Run `labctl up` in its own process, SIGKILL it while the host holds ``point``'s call, then let the
    host finish that call (as a real host finishes what it was doing when its client died)."""
    sim.faults.clear()
    sim.faults.add(point.rule())
    proc = subprocess.Popen([sys.executable, "-m", "labctl.cli.main", "up", str(lab_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {}), "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + timeout
        while sim.faults.holding() == 0:
            if proc.poll() is not None:
                output = proc.stdout.read() if proc.stdout else ""
                raise AssertionError(f"up ended (exit {proc.returncode}) before {point.id} was reached:\n{output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{point.id} was not reached in {timeout} s")
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
        sim.faults.clear()  # the held call goes on, on the host
    service = sim.service
    wait_for(lambda: sim.faults.holding() == 0 and service.running_pipelines() == 0, 30,
             "the host to finish the calls of the killed run")
