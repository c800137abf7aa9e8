"""The use cases that make the host match a lab file: up, and plan (what up would do)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from labctl.app import classes
from labctl.app import images as image_case
from labctl.app.connection import HostConnection
from labctl.app.secrets import Prompt
from labctl.app.session import GUEST_ADMIN, connections_for, guest_password, open_lab, poll_intervals
from labctl.docker import release
from labctl.engine.apply import Applier, ApplyOptions, ApplyReport
from labctl.engine.bootstrap import BootstrapContext
from labctl.engine.lock import LabLock
from labctl.engine.plan import DesiredVm, Plan
from labctl.engine.progress import Progress
from labctl.engine.stages import Timeouts
from labctl.engine.timeline import HOST, PREFLIGHT, TIMELINE_FILE, TimelineProgress
from labctl.engine.timeline import save as save_timeline
from labctl.errors import PlanError
from labctl.lab.model import ResolvedLab, ResolvedVm
from labctl.render import render_unattend
from labctl.secret import Secret
from labctl.transport.base import Credential


@dataclass
class UpResult:
    plan: Plan
    report: ApplyReport | None
    elapsed: float
    simulated: bool
    host: str
    sim_clock: dict[str, Any] | None = None
    dry_run: bool = False

@dataclass
class UpOptions:
    max_workers: int | None = None  # a cap on VMs in flight; None: all of them at once
    dry_run: bool = False
    timeout_scale: float = 1.0
    timeouts: dict[str, float] = field(default_factory=dict)
    image_wait: float = image_case.DEFAULT_WAIT_SECONDS  # how long to wait for another run's build of an image

def docker_refusals(lab: ResolvedLab, simulated: bool) -> list[str]:
    """Why the container hosts' Docker cannot be installed from this lab file on this host (preflight)."""
    if simulated or not any(vm.container_host for vm in lab.vms):
        return []
    if lab.docker.sha256 is None and lab.docker.path is None:
        return [f"docker.sha256 is required for a real host: labctl installs {lab.docker.url} as a service in "
                "every container host and must know the file it expects (or give docker.path, a local copy)"]
    return []

def bootstrap_context(lab: ResolvedLab, conn: HostConnection) -> BootstrapContext | None:
    """How this run gets Docker and names the host, or None when the lab has no container host."""
    if not any(vm.container_host for vm in lab.vms):
        return None
    d = lab.docker
    if d.path is not None:
        source = release.ZipSource(version=d.version, path=Path(d.path), sha256=d.sha256)
    elif conn.simulated:
        # A simulated host needs no network: its mirror serves the (placeholder) zip and its checksum.
        mirror, fingerprint = conn.mirror or (conn.endpoint.uri, conn.endpoint.fingerprint)
        source = release.mirror_source(d.version, mirror, fingerprint)
    else:
        source = release.ZipSource(version=d.version, url=d.url, sha256=d.sha256)
    if conn.simulated:
        addresses: tuple[str, ...] = ("127.0.0.1", "localhost")
    else:
        addresses = (urlsplit(conn.endpoint.uri).hostname or "localhost",)
    return BootstrapContext(zip_source=source, pki_dir=Path(lab.state_dir) / "docker", simulated=conn.simulated,
                            host_addresses=addresses)

def answer_file_for(lab: ResolvedLab, password: Secret) -> Callable[[DesiredVm], str]:
    by_name: dict[str, ResolvedVm] = {vm.name: vm for vm in lab.vms}

    def render(vm: DesiredVm) -> str:
        return render_unattend(lab, by_name[vm.name], password.reveal())

    return render

def build_missing_images(conn: HostConnection, units: list[ResolvedLab], options: UpOptions,
                         progress: Progress | None) -> list[str]:
    """Before any VM: the images the lab (the copies on this host) use that are missing and have a recipe,
    built once on this host (or waited for while another run builds them); the host steps to report."""
    built = image_case.ensure_images(conn, units, progress=progress, wait_seconds=options.image_wait)
    return [f"image {b.image} {'built' if b.action == 'built' else 'built by another run'}: {b.path}"
            for b in built if b.action != "present"]

def clock_after_failure(conn: HostConnection) -> dict[str, Any] | None:
    """The simulator's clock report after a run that raised; None when it cannot be had (it is a courtesy)."""
    try:
        return conn.sim_report()
    except Exception:  # the run's own error is what the user must see, not one of the report
        return None

def up(lab: ResolvedLab, options: UpOptions, progress: Progress | None = None,
       prompt: Prompt | None = None) -> UpResult:
    """Make the host match the lab: plan, refuse on preflight problems, apply."""
    start = time.monotonic()
    timeline = TimelineProgress(progress)  # every stage event, written to .labctl/<lab>/timeline.json
    timeline.record(HOST, PREFLIGHT, "start", "lock, connect, read the host's facts, plan")
    if lab.is_class:
        timeouts = Timeouts(scale=options.timeout_scale)
        timeouts.values.update(options.timeouts)
        cu = classes.up_class(
            lab, max_workers=options.max_workers, dry_run=options.dry_run, timeouts=timeouts, progress=timeline,
            prompt=prompt, extra_refusals=docker_refusals, bootstrap=bootstrap_context,
            renderer=lambda unit: answer_file_for(unit, guest_password(unit, prompt)),
            prepare_host=lambda units, conn: build_missing_images(conn, units, options, timeline))
        return UpResult(cu.plan, cu.report, time.monotonic() - start, cu.simulated, cu.host, cu.sim_clock,
                        dry_run=options.dry_run)
    with LabLock(Path(lab.state_dir) / "lock", "up"):
        password = guest_password(lab, prompt)
        renderer = answer_file_for(lab, password)
        in_flight = options.max_workers or max(1, len(lab.vms))
        with open_lab(lab, workers=connections_for(in_flight), prompt=prompt) as s:
            the_plan, _facts = s.plan()
            the_plan.refusals += docker_refusals(lab, s.conn.simulated)
            result = UpResult(the_plan, None, 0.0, s.conn.simulated, s.conn.description, dry_run=options.dry_run)
            if the_plan.refusals:
                raise PlanError("the host cannot take this lab:\n  - " + "\n  - ".join(the_plan.refusals),
                                check="preflight", hint="fix these, then run up again; nothing was changed")
            if options.dry_run:
                result.elapsed = time.monotonic() - start
                return result
            timeline.record(HOST, PREFLIGHT, "done", "planned")
            try:
                images_built = build_missing_images(s.conn, [lab], options, timeline)
                timeouts = Timeouts(scale=options.timeout_scale)
                timeouts.values.update(options.timeouts)
                applier = Applier(
                    s.conn.transport, s.want, the_plan, s.journal, s.owner, renderer,
                    lambda vm: Credential(GUEST_ADMIN, password), timeline,
                    ApplyOptions(max_workers=in_flight, timeouts=timeouts, **poll_intervals(s.conn.time_scale)),
                    bootstrap_context(lab, s.conn),
                )
                result.report = applier.run()
                result.report.host_steps[:0] = images_built
                result.sim_clock = s.conn.sim_report()
            finally:  # the timeline of a run that stopped early too: it shows where it stopped
                clock = result.sim_clock if result.report is not None else clock_after_failure(s.conn)
                save_timeline(Path(lab.state_dir) / TIMELINE_FILE, timeline, lab=lab.name, host=s.conn.description,
                              simulated=s.conn.simulated, vms=[vm.name for vm in lab.vms], clocks={HOST: clock})
        result.elapsed = time.monotonic() - start
        return result

def plan_only(lab: ResolvedLab, prompt: Prompt | None = None) -> tuple[Plan, str, bool]:
    """The plan, without changing anything (no lock needed: it only reads)."""
    if lab.is_class:
        return classes.plan_class(lab, prompt=prompt, extra_refusals=docker_refusals)
    with open_lab(lab, workers=1, prompt=prompt) as s:
        the_plan, _ = s.plan()
        the_plan.refusals += docker_refusals(lab, s.conn.simulated)
        return the_plan, s.conn.description, s.conn.simulated
