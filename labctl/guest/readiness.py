"""Readiness stages: each has its own timeout and, when it runs out, a likely cause to name."""

from __future__ import annotations

from dataclasses import dataclass, field

# Stages of one VM's bring-up, in order. The journal records each as it completes.
BUILD_STAGES = ("disk", "answer-file", "vm", "configure", "start")
READY_STAGES = ("running", "heartbeat", "ip", "logon", "cleanup")
# After readiness, a VM with the container-host role becomes a Windows container host (labctl.engine.bootstrap).
BOOTSTRAP_STAGES = ("features", "docker", "images", "verify")

DEFAULT_TIMEOUTS: dict[str, float] = {
    "running": 120.0,
    # First boot runs specialize and OOBE: minutes on real hardware.
    "heartbeat": 1800.0,
    "ip": 600.0,
    "logon": 600.0,
    # After the Containers/Hyper-V reboot the guest boots normally (no setup): the same waits apply.
    "docker": 600.0,
}

CAUSES: dict[str, str] = {
    "running": "Hyper-V did not report the VM as Running: look at the Hyper-V-VMMS event log on the host",
    "heartbeat": "Windows setup did not finish: the answer file was probably rejected "
                 "(specialize/oobeSystem), or the guest is waiting at an OOBE screen; "
                 "open the VM console or read "
                 r"C:\Windows\Panther\setuperr.log on its disk",
    "ip": "the guest is up but does not report the expected address: the answer file's TCPIP settings did "
          "not match the adapter's MAC, or the adapter is not connected to the lab switch",
    "logon": "PowerShell Direct refused the logon: the guest's Administrator password differs from the one "
             "labctl has, or the guest is still finishing OOBE",
    "features": "Install-WindowsFeature did not finish: look at C:\\Windows\\Logs\\CBS\\CBS.log in the guest",
    "docker": "the docker service did not answer: look at the Application event log (source docker) in the guest",
}


@dataclass
class Timeouts:
    """Per-stage timeouts in seconds, scaled for quick rehearsals (``scale``)."""

    values: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TIMEOUTS))
    scale: float = 1.0

    def of(self, stage: str) -> float:
        return self.values.get(stage, 300.0) * self.scale
