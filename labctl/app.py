"""The use cases behind the CLI verbs: up, plan, status, destroy.

Each takes a resolved lab and callbacks, connects to the host, reads facts, plans and acts; it
returns results for the CLI to print. Nothing here prints, exits or imports click/rich.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from labctl import dockerzip
from labctl.engine.apply import Applier, ApplyOptions, ApplyReport
from labctl.engine.bootstrap import BootstrapContext
from labctl.engine.destroy import DestroyReport, destroy
from labctl.engine.journal import Journal
from labctl.engine.lock import LabLock
from labctl.engine.plan import DesiredLab, DesiredVm, DockerWish, Plan, plan
from labctl.engine.progress import Progress
from labctl.engine.status import VmStatus, lab_status
from labctl.errors import PlanError, RemoteCommandError
from labctl.guest.readiness import Timeouts
from labctl.hostconn import HostConnection, connect
from labctl.hyperv import ops
from labctl.hyperv.facts import HostFacts, Ownership, host_facts_pipeline, parse_host_facts
from labctl.lab import GENERATED_PASSWORD_FILE, guest_password_source
from labctl.lab.model import ResolvedLab, ResolvedVm
from labctl.render import render_unattend
from labctl.secrets import Prompt, resolve_secret
from labctl.transport.base import Credential, Pipeline, Secret

GUEST_ADMIN = "Administrator"


def desired(lab: ResolvedLab) -> DesiredLab:
    """The engine's view of a resolved lab."""
    net = lab.network
    return DesiredLab(
        name=lab.name, switch=net.switch, subnet=net.subnet, gateway=net.gateway, nat=net.nat,
        nat_name=net.nat_name,
        vms=tuple(DesiredVm(
            name=vm.name, image=vm.image.id, base_disk=vm.image.base_disk, build=vm.image.build,
            processors=vm.processors, memory=vm.memory_bytes, mac=vm.mac, ip=vm.ip,
            prefix_length=vm.prefix_length, roles=tuple(vm.roles), nested=vm.nested, isolation=vm.isolation,
            container_images=tuple(vm.container_image_refs), docker_tls=vm.docker_tls, index=vm.index,
        ) for vm in lab.vms),
        docker=DockerWish(version=lab.docker.version, url=lab.docker.url, path=lab.docker.path,
                          sha256=lab.docker.sha256),
        container_cidr=net.container_cidr,
    )


def journal_path(lab: ResolvedLab) -> Path:
    return Path(lab.state_dir) / "journal.json"


def guest_password(lab: ResolvedLab, prompt: Prompt | None = None) -> Secret:
    """The guests' Administrator password from the lab's declared source."""
    src = guest_password_source(lab, os.environ)
    return resolve_secret(src.kind, src.name, what="guest Administrator password", prompt=prompt,
                          generated_path=Path(lab.state_dir) / GENERATED_PASSWORD_FILE)


@dataclass
class Session:
    """An open lab: its host connection, journal and ownership."""

    lab: ResolvedLab
    conn: HostConnection
    journal: Journal
    owner: Ownership
    want: DesiredLab

    def facts(self) -> tuple[HostFacts, dict[str, str]]:
        """Host facts, and the host folder of each VM (by id) for ownership by location."""
        facts = parse_host_facts(self.conn.transport.invoke(host_facts_pipeline()))
        paths: dict[str, str] = {}
        res = self.conn.transport.invoke(ops.list_vms())
        for obj in res.objects():
            paths[str(obj.get("Id"))] = str(obj.get("Path") or "")
        return facts, paths

    def base_disks_present(self) -> dict[str, bool]:
        bases = sorted({vm.base_disk for vm in self.want.vms})
        if not bases:
            return {}
        res = self.conn.transport.invoke(Pipeline.of(*[ops.test_path(b) for b in bases]))
        return {b: bool(v) for b, v in zip(bases, res.output, strict=False)}

    def plan(self) -> tuple[Plan, HostFacts]:
        facts, paths = self.facts()
        return plan(self.want, facts, self.owner, self.journal.snapshot(), paths,
                    self.base_disks_present()), facts


@contextmanager
def open_lab(lab: ResolvedLab, *, workers: int = 4, prompt: Prompt | None = None) -> Iterator[Session]:
    """Connect to the lab's host and open its journal."""
    conn = connect(lab, workers=workers, prompt=prompt)
    try:
        journal = Journal.open(journal_path(lab), lab.name)
        yield Session(lab, conn, journal, Ownership(lab.name, journal.lab_id), desired(lab))
    finally:
        conn.close()


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
    max_workers: int = 4
    dry_run: bool = False
    timeout_scale: float = 1.0
    timeouts: dict[str, float] = field(default_factory=dict)


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
        source = dockerzip.ZipSource(version=d.version, path=Path(d.path), sha256=d.sha256)
    elif conn.simulated:
        # A simulated host needs no network: its mirror serves the (placeholder) zip and its checksum.
        source = dockerzip.mirror_source(d.version, conn.endpoint.uri, conn.endpoint.fingerprint)
    else:
        source = dockerzip.ZipSource(version=d.version, url=d.url, sha256=d.sha256)
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


def up(lab: ResolvedLab, options: UpOptions, progress: Progress | None = None,
       prompt: Prompt | None = None) -> UpResult:
    """Make the host match the lab: plan, refuse on preflight problems, apply."""
    start = time.monotonic()
    with LabLock(Path(lab.state_dir) / "lock", "up"):
        password = guest_password(lab, prompt)
        renderer = answer_file_for(lab, password)
        with open_lab(lab, workers=options.max_workers, prompt=prompt) as s:
            the_plan, _facts = s.plan()
            the_plan.refusals += docker_refusals(lab, s.conn.simulated)
            result = UpResult(the_plan, None, 0.0, s.conn.simulated, s.conn.description, dry_run=options.dry_run)
            if the_plan.refusals:
                raise PlanError("the host cannot take this lab:\n  - " + "\n  - ".join(the_plan.refusals),
                                check="preflight", hint="fix these, then run up again; nothing was changed")
            if options.dry_run:
                result.elapsed = time.monotonic() - start
                return result
            timeouts = Timeouts(scale=options.timeout_scale)
            timeouts.values.update(options.timeouts)
            applier = Applier(
                s.conn.transport, s.want, the_plan, s.journal, s.owner, renderer,
                lambda vm: Credential(GUEST_ADMIN, password), progress,
                ApplyOptions(max_workers=options.max_workers, timeouts=timeouts),
                bootstrap_context(lab, s.conn),
            )
            result.report = applier.run()
            result.sim_clock = s.conn.sim_report()
        result.elapsed = time.monotonic() - start
        return result


def plan_only(lab: ResolvedLab, prompt: Prompt | None = None) -> tuple[Plan, str, bool]:
    """The plan, without changing anything (no lock needed: it only reads)."""
    with open_lab(lab, workers=1, prompt=prompt) as s:
        the_plan, _ = s.plan()
        the_plan.refusals += docker_refusals(lab, s.conn.simulated)
        return the_plan, s.conn.description, s.conn.simulated


def status(lab: ResolvedLab, *, guest: bool = True, prompt: Prompt | None = None) -> tuple[list[VmStatus], str, bool]:
    """Every VM's status as the host reports it (and the guest, over PowerShell Direct)."""
    password = None
    if guest:
        try:
            password = guest_password(lab, prompt)
        except Exception:  # no password at hand: status still shows the host's view
            password = None
    with open_lab(lab, workers=1, prompt=prompt) as s:
        cred = (lambda vm: Credential(GUEST_ADMIN, password)) if password is not None else None
        return (lab_status(s.conn.transport, s.want, s.owner, cred, s.journal.snapshot()), s.conn.description,
                s.conn.simulated)


def destroy_lab(lab: ResolvedLab, progress: Progress | None = None,
                prompt: Prompt | None = None) -> tuple[DestroyReport, str]:
    """Remove what the lab created."""
    with LabLock(Path(lab.state_dir) / "lock", "destroy"), open_lab(lab, workers=1, prompt=prompt) as s:
        facts, paths = s.facts()
        return destroy(s.conn.transport, s.want, facts, s.journal, s.owner, progress, paths), s.conn.description


__all__ = ["RemoteCommandError", "Session", "UpOptions", "UpResult", "destroy_lab", "open_lab", "plan_only",
           "status", "up"]
