"""An open lab: the connection to its host, its journal and ownership, and the guests' credential.

The shared ground of the use cases (labctl.app.up, .status, .destroy, .guest): nothing here prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from labctl.app.connection import HostConnection, connect
from labctl.app.secrets import Prompt, resolve_secret
from labctl.engine.journal import Journal
from labctl.engine.plan import DesiredLab, DesiredVm, DockerWish, Plan, plan
from labctl.hyperv import ops
from labctl.hyperv.facts import HostFacts, Ownership, host_facts_pipeline, parse_host_facts
from labctl.lab import GENERATED_PASSWORD_FILE, guest_password_source
from labctl.lab.model import ResolvedLab
from labctl.lab.secrets import copy_password
from labctl.secret import Secret
from labctl.transport.base import Pipeline

GUEST_ADMIN = "Administrator"


def desired(lab: ResolvedLab) -> DesiredLab:
    """The engine's view of a resolved lab."""
    net = lab.network
    return DesiredLab(
        name=lab.name, switch=net.switch, subnet=net.subnet, gateway=net.gateway, nat=net.nat,
        nat_name=net.nat_name,
        vms=tuple(DesiredVm(
            name=vm.name, image=vm.image.id, base_disk=vm.image.base_disk, build=vm.image.os_build,
            processors=vm.processors, memory=vm.memory_bytes, mac=vm.mac, ip=vm.ip,
            prefix_length=vm.prefix_length, roles=tuple(vm.roles), nested=vm.nested, isolation=vm.isolation,
            container_images=tuple(vm.container_image_refs), docker_tls=vm.docker_tls, index=vm.index,
            buildable=vm.image.build is not None,
        ) for vm in lab.vms),
        docker=DockerWish(version=lab.docker.version, url=lab.docker.url, path=lab.docker.path,
                          sha256=lab.docker.sha256),
        container_cidr=net.container_cidr, nat_prefix=net.nat_prefix or net.subnet, copy=lab.copy_number,
        rdp=lab.rdp,
    )

def journal_path(lab: ResolvedLab) -> Path:
    return Path(lab.state_dir) / "journal.json"

def guest_password(lab: ResolvedLab, prompt: Prompt | None = None) -> Secret:
    """The guests' Administrator password from the lab's declared source."""
    src = guest_password_source(lab, os.environ)
    # A class keeps one generated password for all its copies (each copy's own is derived from it).
    master = resolve_secret(src.kind, src.name, what="guest Administrator password", prompt=prompt,
                            generated_path=Path(lab.class_state_dir or lab.state_dir) / GENERATED_PASSWORD_FILE)
    if lab.copy_number is None or lab.copy_passwords == "shared":
        return master
    return Secret(copy_password(master.reveal(), lab.name, lab.copy_number))

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

def session_on(lab: ResolvedLab, conn: HostConnection) -> Session:
    """The lab (or one copy of a class) on an open connection, which the caller closes."""
    journal = Journal.open(journal_path(lab), lab.name)
    return Session(lab, conn, journal, Ownership(lab.name, journal.lab_id, lab.copy_number), desired(lab))


# WinRM's MaxShellsPerUser is 30 by default (winrm/config/winrs; learn.microsoft.com/windows/win32/winrm/quotas), and
# the simulator enforces it: a run's shells stay well under it, leaving room for the host-wide calls (connect adds
# one), a `labctl status` or a second lab on the same host.
HOST_CONNECTIONS = 23


def connections_for(in_flight: int) -> int:
    """How many connections (WinRM shells) a run of ``in_flight`` VMs at once opens: one per VM in flight, at most
    HOST_CONNECTIONS. A VM that waits (a boot, a reboot) holds none; a long guest call (a feature install over
    PowerShell Direct) holds one for its length, so fewer than the VMs in flight would queue them."""
    return max(1, min(in_flight, HOST_CONNECTIONS))


# labctl's polls on a real host: the first after 50 ms, doubling to every 2 s. On a simulator whose time runs
# faster they are scaled to its time (HostConnection.time_scale), down to a floor that keeps the polling cheap.
POLL_MIN, POLL_MAX, POLL_FLOOR = 0.05, 2.0, 0.005


def poll_intervals(time_scale: float) -> dict[str, float]:
    """``poll_min`` and ``poll_max`` (wall seconds) for a host whose time runs ``1/time_scale`` times faster."""
    return {"poll_min": max(POLL_MIN * time_scale, POLL_FLOOR), "poll_max": max(POLL_MAX * time_scale, POLL_FLOOR)}


@contextmanager
def open_lab(lab: ResolvedLab, *, workers: int = 4, prompt: Prompt | None = None) -> Iterator[Session]:
    """Connect to the lab's host and open its journal."""
    conn = connect(lab, workers=workers, prompt=prompt)
    try:
        yield session_on(lab, conn)
    finally:
        conn.close()
