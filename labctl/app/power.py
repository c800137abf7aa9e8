"""The use cases behind ``labctl stop`` and ``labctl start``: every VM of a lab down gracefully, or up and ready.

Each verb comes twice: ``stop(lab, ...)`` takes the lab lock and opens the lab itself; ``stop_in(session, ...)``
does the work on a Session already open (a caller driving several labs over one connection). Nothing here
prints: the results are dataclasses the CLI shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl.app import classes
from labctl.app.secrets import Prompt
from labctl.app.session import GUEST_ADMIN, Session, guest_password, open_lab
from labctl.engine.lock import LabLock
from labctl.engine.power import DEFAULT_STOP_TIMEOUT, LabHost, VmPower, start_lab, stop_lab
from labctl.engine.progress import NoProgress, Progress
from labctl.engine.stages import Timeouts
from labctl.lab.model import ResolvedLab
from labctl.transport.base import Credential


@dataclass
class PowerResult:
    """What a lab-wide power verb did, per VM, and where."""

    lab: str
    verb: str
    host: str
    simulated: bool
    vms: dict[str, VmPower] = field(default_factory=dict)
    elapsed: float = 0.0
    sim_clock: dict[str, Any] | None = None

    @property
    def failed(self) -> dict[str, VmPower]:
        return {n: v for n, v in self.vms.items() if not v.ok}


def lab_host(session: Session, progress: Progress | None = None, credential: Credential | None = None,
             timeouts: Timeouts | None = None) -> LabHost:
    """The engine's view of an open lab for the lab-wide verbs."""
    return LabHost(session.conn.transport, session.want, session.journal, session.owner,
                   progress or NoProgress(), credential, timeouts or Timeouts())


def lab_credential(lab: ResolvedLab, prompt: Prompt | None = None) -> Credential:
    """The guests' Administrator credential (readiness logs on over PowerShell Direct)."""
    return Credential(GUEST_ADMIN, guest_password(lab, prompt))


def stop_in(session: Session, *, timeout: float = DEFAULT_STOP_TIMEOUT,
            progress: Progress | None = None) -> PowerResult:
    """Shut every VM of the open lab down; turn off those still running after ``timeout`` seconds."""
    start = time.monotonic()
    vms = stop_lab(lab_host(session, progress), timeout)
    return PowerResult(session.lab.name, "stop", session.conn.description, session.conn.simulated,
                       {vm.name: vms[vm.name] for vm in session.want.vms}, time.monotonic() - start,
                       session.conn.sim_report())


def _per_copy(lab: ResolvedLab, verb: str, fn: Callable[[Session], PowerResult],
              prompt: Prompt | None) -> PowerResult:
    begin = time.monotonic()
    results, host, simulated = classes.per_copy(lab, fn, action=verb, prompt=prompt)
    merged = PowerResult(lab.name, verb, host, simulated, elapsed=time.monotonic() - begin)
    for r in results:
        merged.vms.update(r.vms)
        merged.sim_clock = r.sim_clock or merged.sim_clock
    return merged


def stop(lab: ResolvedLab, *, timeout: float = DEFAULT_STOP_TIMEOUT, progress: Progress | None = None,
         prompt: Prompt | None = None) -> PowerResult:
    """``stop_in`` under the lab lock, on a connection of its own (a class: every selected copy)."""
    if lab.is_class:
        return _per_copy(lab, "stop", lambda s: stop_in(s, timeout=timeout, progress=progress), prompt)
    with LabLock(Path(lab.state_dir) / "lock", "stop"), open_lab(lab, workers=1, prompt=prompt) as s:
        return stop_in(s, timeout=timeout, progress=progress)


def start_in(session: Session, credential: Credential, *, progress: Progress | None = None,
             timeouts: Timeouts | None = None) -> PowerResult:
    """Start every VM of the open lab and wait until all are ready (containers verified on container hosts)."""
    start = time.monotonic()
    vms = start_lab(lab_host(session, progress, credential, timeouts))
    return PowerResult(session.lab.name, "start", session.conn.description, session.conn.simulated,
                       {vm.name: vms[vm.name] for vm in session.want.vms}, time.monotonic() - start,
                       session.conn.sim_report())


def start(lab: ResolvedLab, *, progress: Progress | None = None, prompt: Prompt | None = None,
          timeouts: Timeouts | None = None) -> PowerResult:
    """``start_in`` under the lab lock, on a connection of its own (a class: every selected copy)."""
    if lab.is_class:
        return _per_copy(lab, "start", lambda s: start_in(s, lab_credential(s.lab, prompt), progress=progress,
                                                          timeouts=timeouts), prompt)
    with LabLock(Path(lab.state_dir) / "lock", "start"):
        credential = lab_credential(lab, prompt)
        with open_lab(lab, workers=1, prompt=prompt) as s:
            return start_in(s, credential, progress=progress, timeouts=timeouts)
