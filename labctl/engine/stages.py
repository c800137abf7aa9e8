"""The stage table: every stage of a VM's bring-up, in order, with its function, timeout and likely cause.

One table drives apply (the chain each VM runs), the container-host bootstrap, readiness waits, the plan's
"what is left" and status's view; nothing else writes stage names out. The journal records each stage as
it completes, under the name given here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Phase = Literal["build", "ready", "bootstrap"]


@dataclass(frozen=True)
class Stage:
    """One stage. ``fn`` is the method that runs it, ``fn(vm) -> changed``, on the phase's stage object:
    labctl.engine.vmstages.ReadinessStages for build and ready, labctl.engine.bootstrap.Bootstrapper for
    bootstrap (named, not imported, so the table stays pure: the plan and status read it too; a unit test
    checks every name resolves)."""

    name: str
    phase: Phase
    fn: str
    timeout: float | None = None  # seconds a waiting stage may wait (None: it does not wait; 300 s if asked)
    cause: str | None = None  # what most likely went wrong when it fails, for the error and the docs


STAGES: tuple[Stage, ...] = (
    Stage("render", "build", "render"),
    Stage("disk", "build", "disk"),
    Stage("answer-file", "build", "answer_file"),
    Stage("vm", "build", "vm"),
    Stage("configure", "build", "configure"),
    Stage("start", "build", "start"),
    Stage("running", "ready", "running", 120.0,
          "Hyper-V did not report the VM as Running: look at the Hyper-V-VMMS event log on the host"),
    # First boot runs specialize and OOBE: minutes on real hardware.
    Stage("heartbeat", "ready", "heartbeat", 1800.0,
          "Windows setup did not finish: the answer file was probably rejected (specialize/oobeSystem), or "
          "the guest is waiting at an OOBE screen; open the VM console or read "
          r"C:\Windows\Panther\setuperr.log on its disk"),
    Stage("ip", "ready", "ip", 600.0,
          "the guest is up but does not report the expected address: the answer file's TCPIP settings did "
          "not match the adapter's MAC, or the adapter is not connected to the lab switch"),
    Stage("logon", "ready", "logon", 600.0,
          "PowerShell Direct refused the logon: the guest's Administrator password differs from the one "
          "labctl has, or the guest is still finishing OOBE"),
    Stage("cleanup", "ready", "cleanup"),
    # After readiness, a VM with the container-host role becomes a Windows container host.
    Stage("features", "bootstrap", "features", None,
          "Install-WindowsFeature did not finish: look at C:\\Windows\\Logs\\CBS\\CBS.log in the guest"),
    # After the Containers/Hyper-V reboot the guest boots normally (no setup): the readiness waits apply.
    Stage("docker", "bootstrap", "docker", 600.0,
          "the docker service did not answer: look at the Application event log (source docker) in the guest"),
    Stage("images", "bootstrap", "images"),
    Stage("verify", "bootstrap", "verify"),
)

BY_NAME: dict[str, Stage] = {s.name: s for s in STAGES}
BUILD_STAGES = tuple(s.name for s in STAGES if s.phase == "build" and s.name != "render")  # render: no host
BOOTSTRAP_STAGES = tuple(s.name for s in STAGES if s.phase == "bootstrap")
# The waits a guest goes through again after a restart (no setup this time, and no answer file to remove).
BOOT_WAITS = tuple(s for s in STAGES if s.phase == "ready" and s.timeout is not None)
DEFAULT_TIMEOUT = 300.0


def cause_of(stage: str) -> str | None:
    """The stage's likely cause, for an error that names it."""
    found = BY_NAME.get(stage)
    return found.cause if found is not None else None


@dataclass
class Timeouts:
    """Per-stage timeouts in seconds: the table's, overridden by ``values``, scaled for rehearsals."""

    values: dict[str, float] = field(default_factory=dict)
    scale: float = 1.0

    def of(self, stage: str) -> float:
        if stage in self.values:
            return self.values[stage] * self.scale
        found = BY_NAME.get(stage)
        timeout = found.timeout if found is not None and found.timeout is not None else DEFAULT_TIMEOUT
        return timeout * self.scale
