"""The use case behind ``labctl roster``: per copy and VM, where it runs and how a student reaches it.

What the roster lists comes from the host: each VM's state and each published RDP port are read back (one
pipeline per host); the guest password of each copy is resolved only when asked for, and never logged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from labctl import rdp
from labctl.app import classes
from labctl.app.connection import HostConnection, connect
from labctl.app.secrets import Prompt
from labctl.app.session import GUEST_ADMIN, desired, guest_password
from labctl.engine.apply import RDP_PORT, rdp_host_port
from labctl.fsio import atomic_write, private_dir
from labctl.hyperv import ops
from labctl.hyperv.facts import Ownership
from labctl.lab.model import ResolvedLab, ResolvedSimHost
from labctl.secret import Secret
from labctl.transport.base import Pipeline


@dataclass
class RosterEntry:
    """One VM of one copy, as a student reaches it."""

    copy: int | None
    host: str  # the host's key (sim, sim-2, hv01.example.com:5986)
    address: str  # the address a student connects to (the host's)
    vm: str
    ip: str
    user: str
    password: Secret | None  # only when asked for
    state: str  # as the host reports it ("Absent" when it is not there)
    rdp_port: int | None  # the host port that reaches the VM's RDP, when published (verified on the host)
    reachable: bool | None = None  # with check: whether the RDP endpoint answered the RDP negotiation

    @property
    def rdp(self) -> str | None:
        return f"{self.address}:{self.rdp_port}" if self.rdp_port is not None else None

    def to_json(self, *, passwords: bool) -> dict[str, object]:
        return {"copy": self.copy, "host": self.host, "address": self.address, "vm": self.vm, "ip": self.ip,
                "user": self.user, "password": self.password.reveal() if passwords and self.password else None,
                "state": self.state, "rdp": self.rdp, "reachable": self.reachable}


@dataclass
class Roster:
    lab: str
    entries: list[RosterEntry]
    host: str
    simulated: bool
    # The embedded simulator serves the endpoints only while a labctl command runs: what keeps them up.
    keep_up: list[str] = field(default_factory=list)


def _address(conn: HostConnection) -> str:
    # The simulator serves on loopback; a real host is reached by the name in its URI.
    return urlsplit(conn.endpoint.uri).hostname or "localhost"


def _units(lab: ResolvedLab) -> list[tuple[str, ResolvedLab]]:
    if lab.is_class:
        return classes.placed(lab, classes.ClassRecord.load(lab))
    return [("host", lab)]


def roster(lab: ResolvedLab, *, passwords: bool = False, check: bool = False, timeout: float = 3.0,
           prompt: Prompt | None = None) -> Roster:
    """Every VM of the lab (or of each copy) with its host, address, user and RDP endpoint, read from the host."""
    units = _units(lab)
    entries: dict[str, RosterEntry] = {}
    if not units:  # a class not brought up yet
        return Roster(lab.name, [_absent(vm.name, vm.ip, vm.copy_number) for vm in lab.vms], "no host", False)
    keys = list(dict.fromkeys(k for k, _ in units))
    opener = (classes.open_hosts(lab, keys, workers=1, prompt=prompt) if lab.is_class
              else _open_single(lab, prompt))
    with opener as conns:
        def one(key: str, conn: HostConnection) -> list[RosterEntry]:
            out = []
            for k, unit in units:
                if k != key:
                    continue
                out += _unit_entries(key, unit, conn, passwords, prompt)
            return out

        for part in classes.on_each_host(conns, one).values():
            for e in part:
                entries[e.vm] = e
        host, simulated = classes.describe(conns)
        ordered = [entries.get(vm.name) or _absent(vm.name, vm.ip, vm.copy_number) for vm in lab.vms]
        if check:  # while the hosts are open: an embedded simulator serves its endpoints only while it runs
            for e in ordered:
                if e.rdp_port is not None:
                    e.reachable = rdp.probe(e.address, e.rdp_port, timeout).reachable
    keep_up = sorted({f"labctl sim serve --state {h.state_dir}" for h in (lab.hosts or [lab.host])
                      if isinstance(h, ResolvedSimHost)})
    return Roster(lab.name, ordered, host, simulated, keep_up)


def _absent(name: str, ip: str, copy: int | None) -> RosterEntry:
    return RosterEntry(copy, "", "", name, ip, GUEST_ADMIN, None, "Absent", None)


@contextmanager
def _open_single(lab: ResolvedLab, prompt: Prompt | None) -> Iterator[dict[str, HostConnection]]:
    """The host of a lab without copies, shaped like classes.open_hosts (key -> connection)."""
    conn = connect(lab, workers=1, prompt=prompt)
    try:
        yield {"host": conn}
    finally:
        conn.close()


def _unit_entries(key: str, unit: ResolvedLab, conn: HostConnection, passwords: bool,
                  prompt: Prompt | None) -> list[RosterEntry]:
    want = desired(unit)
    names = [vm.name for vm in want.vms]
    res = conn.transport.invoke(Pipeline.of(ops.find_vms(names), ops.nat_static_mappings(want.nat_name)))
    states: dict[str, str] = {}
    mapped: dict[int, tuple[str, int]] = {}
    for obj in res.objects():
        if obj.get("ExternalPort") is not None:
            mapped[int(obj.get("ExternalPort") or 0)] = (str(obj.get("InternalIPAddress")),
                                                         int(obj.get("InternalPort") or 0))
        elif obj.get("Name") is not None and Ownership.parse(str(obj.get("Notes") or "")) is not None:
            states[str(obj.get("Name")).lower()] = str(obj.get("State"))
    password = guest_password(unit, prompt) if passwords else None
    address = _address(conn)
    out = []
    for vm in want.vms:
        port = rdp_host_port(vm)
        published = want.rdp and mapped.get(port) == (vm.ip, RDP_PORT)
        out.append(RosterEntry(unit.copy_number, key, address, vm.name, vm.ip, f"{vm.name}\\{GUEST_ADMIN}",
                               password, states.get(vm.name.lower(), "Absent"), port if published else None))
    return out


def write_rdp_files(entries: list[RosterEntry], folder: Path) -> list[Path]:
    """One .rdp file per VM with a published RDP endpoint (no password in it: see labctl.rdp.rdp_file)."""
    private_dir(folder)
    written = []
    for e in entries:
        if e.rdp_port is None:
            continue
        path = folder / f"{e.vm}.rdp"
        atomic_write(path, rdp.rdp_file(e.address, e.rdp_port, e.user))
        written.append(path)
    return written
