"""The labs on a host, read from their ownership tags: pure grouping of host facts (no I/O).

A lab is known on a host only by the tag labctl writes into the Notes of its VMs and switches
(``labctl-owned lab=<name> lab-id=<id> [copy=K]``). The lab id is the identity: each copy of a lab with
``copies: N`` has its own id, its own journal and its own lab folder (``disk_root``), so one ``LabInstance``
is one lab id, and a ``LabOnHost`` gathers the instances of one lab name. An instance whose id matches no
journal at hand is orphaned: ``labctl destroy --orphaned`` may remove it, by its tag only.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from labctl.engine.plan import disk_root
from labctl.hyperv.facts import HostFacts, NatFact, Ownership, VmFact
from labctl.hyperv.ops import host_vnic_alias


@dataclass(frozen=True)
class LabInstance:
    """One lab id on the host: a lab, or one copy of a lab with copies."""

    lab: str
    lab_id: str
    copy: int | None
    vms: tuple[VmFact, ...]
    switches: tuple[str, ...]
    folder: str  # the lab folder (disk_root), whether or not it exists
    disk_bytes: int  # bytes of the files in the lab folder (its disks, the Docker zip, shared image tars)
    journal: str | None  # the journal at hand for this lab id; None: gone (orphaned)

    @property
    def owner(self) -> Ownership:
        return Ownership(self.lab, self.lab_id, self.copy)

    @property
    def orphaned(self) -> bool:
        return self.journal is None

    @property
    def memory_bytes(self) -> int:
        """The VMs' startup memory, summed."""
        return sum(v.memory_startup for v in self.vms)

    @property
    def states(self) -> dict[str, int]:
        return dict(Counter(v.state or "Unknown" for v in self.vms))

    @property
    def created(self) -> datetime | None:
        """When its first VM was created (Get-VM's CreationTime)."""
        times = [v.created for v in self.vms if v.created is not None]
        return min(times) if times else None

    def age_seconds(self, now: datetime) -> float | None:
        return age_seconds(self.created, now)

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "lab_id": self.lab_id, "copy": self.copy, "orphaned": self.orphaned, "journal": self.journal,
            "vms": [{"name": v.name, "id": v.id, "state": v.state, "memory_startup": v.memory_startup,
                     "created": v.created.isoformat() if v.created else None} for v in self.vms],
            "switches": list(self.switches), "folder": self.folder, "disk_bytes": self.disk_bytes,
            "memory_bytes": self.memory_bytes, "states": self.states,
            "created": self.created.isoformat() if self.created else None,
            "age_seconds": age_seconds(self.created, now),
        }


@dataclass(frozen=True)
class LabOnHost:
    """The instances of one lab name on a host (one, or one per copy)."""

    lab: str
    instances: tuple[LabInstance, ...]

    @property
    def lab_ids(self) -> tuple[str, ...]:
        return tuple(i.lab_id for i in self.instances)

    @property
    def copies(self) -> tuple[int, ...]:
        """The distinct ``copy=`` numbers its tags carry (empty for a lab without copies)."""
        return tuple(sorted({i.copy for i in self.instances if i.copy is not None}))

    @property
    def vms(self) -> tuple[VmFact, ...]:
        return tuple(v for i in self.instances for v in i.vms)

    @property
    def states(self) -> dict[str, int]:
        return dict(Counter(v.state or "Unknown" for v in self.vms))

    @property
    def memory_bytes(self) -> int:
        return sum(i.memory_bytes for i in self.instances)

    @property
    def disk_bytes(self) -> int:
        return sum(i.disk_bytes for i in self.instances)

    @property
    def created(self) -> datetime | None:
        times = [i.created for i in self.instances if i.created is not None]
        return min(times) if times else None

    @property
    def journal(self) -> str:
        """``at hand`` (every instance's journal found), ``gone`` (none) or ``partly`` (some copies')."""
        found = [i.journal is not None for i in self.instances]
        return "at hand" if all(found) else "gone" if not any(found) else "partly"

    def age_seconds(self, now: datetime) -> float | None:
        return age_seconds(self.created, now)

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "lab": self.lab, "lab_ids": list(self.lab_ids), "copies": list(self.copies),
            "vm_count": len(self.vms), "states": self.states, "memory_bytes": self.memory_bytes,
            "disk_bytes": self.disk_bytes, "created": self.created.isoformat() if self.created else None,
            "age_seconds": age_seconds(self.created, now), "journal": self.journal,
            "instances": [i.to_json(now) for i in self.instances],
        }


def age_seconds(created: datetime | None, now: datetime) -> float | None:
    """Seconds since ``created`` (never negative: host and local clocks may differ a little)."""
    if created is None:
        return None
    return max((now - created).total_seconds(), 0.0)


def tagged_owners(facts: HostFacts) -> list[Ownership]:
    """Every lab id the host's VM and switch tags name, once, in the order first seen."""
    seen: dict[str, Ownership] = {}
    for owner in [v.owner for v in facts.vms] + [s.owner for s in facts.switches]:
        if owner is not None and owner.lab_id not in seen:
            seen[owner.lab_id] = owner
    return list(seen.values())


def lab_folders(facts: HostFacts) -> dict[str, str]:
    """Each tagged lab id's lab folder on the host."""
    return {o.lab_id: disk_root(facts, o.lab, o.lab_id) for o in tagged_owners(facts)}


def _under(path: str, folder: str) -> bool:
    return path.lower().startswith(folder.lower().rstrip("\\") + "\\")


def labs_on_host(facts: HostFacts, files: Iterable[tuple[str, int]] = (),
                 journals: Mapping[str, str] | None = None) -> list[LabOnHost]:
    """The labs the host's ownership tags name, by lab name, each instance (lab id) with its VMs, switches,
    the bytes of ``files`` (path, length) in its lab folder and the journal ``journals`` (lab id -> path)
    has for it. Nothing without the tag is counted."""
    journals = journals or {}
    listed = list(files)
    by_name: dict[str, list[LabInstance]] = {}
    for owner in tagged_owners(facts):
        folder = disk_root(facts, owner.lab, owner.lab_id)
        vms = tuple(sorted((v for v in facts.vms if v.owner is not None and v.owner.lab_id == owner.lab_id),
                           key=lambda v: v.name.lower()))
        switches = tuple(sorted(s.name for s in facts.switches
                                if s.owner is not None and s.owner.lab_id == owner.lab_id))
        tags = [v.owner for v in vms] + [s.owner for s in facts.switches if s.name in switches]
        copy = min((t.copy for t in tags if t is not None and t.copy is not None), default=None)
        instance = LabInstance(
            lab=owner.lab, lab_id=owner.lab_id, copy=copy, vms=vms, switches=switches, folder=folder,
            disk_bytes=sum(size for path, size in listed if _under(path, folder)),
            journal=journals.get(owner.lab_id))
        by_name.setdefault(owner.lab, []).append(instance)
    return [LabOnHost(name, tuple(sorted(items, key=lambda i: (i.copy is None, i.copy or 0, i.lab_id))))
            for name, items in sorted(by_name.items(), key=lambda kv: kv[0].lower())]


def orphans(labs: Iterable[LabOnHost]) -> list[LabInstance]:
    """The instances whose journal is gone."""
    return [i for lab in labs for i in lab.instances if i.orphaned]


def nat_name(lab: str) -> str:
    """The NetNat name labctl gives a lab (NetNat has no Notes: its name and prefix are all it shows)."""
    return f"labctl-{lab}"


@dataclass(frozen=True)
class NatVerdict:
    """Whether an orphaned lab's NetNat may go, and why not when it stays."""

    nat: NatFact | None  # the NetNat named after the lab, if the host has one
    remove: bool
    why_kept: str = ""


def orphan_nat(lab: str, facts: HostFacts, addresses: Sequence[tuple[str, str]],
               switches: Collection[str]) -> NatVerdict:
    """The NetNat ``labctl-<lab>`` may go only when every host address in its prefix (``addresses``:
    IPv4 address, interface alias) sits on the host adapter of one of ``switches`` (the orphan switches being
    removed), and at least one does: then it serves nothing else."""
    nat = next((n for n in facts.nats if n.name.lower() == nat_name(lab).lower()), None)
    if nat is None:
        return NatVerdict(None, False)
    try:
        prefix = ipaddress.ip_network(nat.prefix, strict=False)
    except ValueError:
        return NatVerdict(nat, False, f"its prefix {nat.prefix!r} cannot be read")
    ours = {host_vnic_alias(s).lower() for s in switches}
    served: set[str] = set()
    for ip, alias in addresses:
        try:
            inside = ipaddress.ip_address(ip) in prefix
        except ValueError:
            continue
        if inside:
            served.add(alias)
    others = sorted(a for a in served if a.lower() not in ours)
    if others:
        return NatVerdict(nat, False, f"its prefix {nat.prefix} also holds addresses of {', '.join(others)}")
    if not served:
        return NatVerdict(nat, False, f"no host address in its prefix {nat.prefix} is on a switch of this lab, "
                                      "so nothing ties it to the lab; remove it yourself if it is unused")
    return NatVerdict(nat, True)
