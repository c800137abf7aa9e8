"""How one host-side readiness wait is judged from the host's view of a VM (pure).

``up`` (labctl.engine.watch) and the lab-wide verbs (labctl.engine.power) both read every waiting VM in one
pipeline per poll (``Get-VM -Name a,b,c`` and their adapters) and judge each VM's current wait the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from labctl.hyperv.facts import VmFact

HEALTHY = "OkApplicationsHealthy"
# The host-side waits after a start, in order; the guest-side ones (logon, docker, verify) follow.
HOST_WAITS = ("running", "heartbeat", "ip")


@dataclass(frozen=True)
class Check:
    """The verdict on one wait: passed, still waiting (``last`` says what the host reported), or failed
    (``failure`` is the message, ``cause`` the likely cause, ``state`` the VM's state)."""

    passed: bool
    last: str = ""
    failure: str | None = None
    cause: str | None = None
    state: str = ""


def host_check(stage: str, fact: VmFact | None, reported_ips: list[str], want_ip: str) -> Check:
    """Judge the host-side wait ``stage`` (running, heartbeat or ip) from the VM's fact and its addresses."""
    if fact is None:
        return Check(False, failure="the VM disappeared from the host", state="Absent")
    if stage == "running":
        return Check(fact.state == "Running", f"state {fact.state}")
    if fact.state != "Running":
        return Check(False, failure=f"the VM stopped while booting (state {fact.state})",
                     cause="the guest shut down or crashed", state=fact.state)
    if stage == "heartbeat":
        return Check(fact.heartbeat == HEALTHY, f"heartbeat {fact.heartbeat}")
    if stage == "ip":
        return Check(want_ip in reported_ips, f"reported {', '.join(reported_ips) or 'no address'}")
    raise ValueError(f"{stage} is not a host-side wait")
