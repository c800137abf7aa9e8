"""Destroy: remove exactly what this lab created, prove each removal, and claim nothing else.

Every removal is read back from the host: what is gone is listed as removed, what is still there is listed
as not removed with the host's reason, and the journal keeps its record so the next run finishes the job.
It works on a half-built lab (a run killed at any stage: a disk still mounted, a VM not yet tagged, a NAT
created but not yet confirmed) because it reads the host, not only the journal. What is this lab's:

- a VM that carries this lab's ownership tag, or (before the tag is set) lives in the lab folder;
- files, disks and folders inside the lab folder (its name carries the lab id);
- the NAT the journal recorded (before creating it) with that name and prefix: NetNat has no tag;
- the switch that carries this lab's tag (its host adapter and address go with it).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from labctl.engine.journal import Journal
from labctl.engine.plan import DesiredLab, disk_root, is_ours
from labctl.engine.progress import NoProgress, Progress
from labctl.errors import RemoteCommandError, TransportError
from labctl.hyperv import ops
from labctl.hyperv.facts import HostFacts, Ownership, attached_disk_number, parse_vm
from labctl.transport.base import Invocation, Pipeline, Result, Transport


@dataclass
class Removal:
    """What one removal did, as the host shows it afterwards."""

    removed: list[str] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)  # "what: the host's reason"

    def add(self, other: Removal) -> None:
        self.removed += other.removed
        self.remaining += other.remaining


@dataclass
class DestroyReport:
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # same names, not ours: left alone
    remaining: list[str] = field(default_factory=list)  # ours, still on the host, with the reason

    @property
    def nothing_to_do(self) -> bool:
        return not self.removed and not self.remaining

    @property
    def complete(self) -> bool:
        return not self.remaining


def _reason(result: Result | None, err: Exception | None) -> str:
    """The host's own words for why a call did not do its work."""
    if err is not None:
        text = getattr(err, "message", None) or str(err)
        fqid = getattr(err, "fqid", "")
        return f"{text} ({fqid})" if fqid else text
    if result is not None and result.errors:
        last = result.errors[-1]
        return f"{last.message} ({last.fqid})" if last.fqid else last.message
    return "the host reported no error, but it is still there"


def _call(t: Transport, pipeline: Pipeline | Invocation) -> tuple[Result | None, Exception | None]:
    """Send a removal: a failure is data here (the read-back decides), not a reason to stop."""
    try:
        return t.invoke(pipeline), None
    except (RemoteCommandError, TransportError) as err:
        return None, err


def _exists(t: Transport, path: str) -> bool:
    out = t.invoke(ops.test_path(path)).output
    return bool(out) and out[0] is True


def dismount_disk(t: Transport, path: str) -> str | None:
    """Dismount ``path`` if it is mounted; None when it is (now) not attached, else the host's reason."""
    if attached_disk_number(t.invoke(ops.get_vhd(path))) is None:
        return None
    res, err = _call(t, ops.dismount_disk(path))
    if attached_disk_number(t.invoke(ops.get_vhd(path))) is None:
        return None  # (a retried Dismount-VHD of a disk the first call dismounted says "not attached")
    return _reason(res, err)


def _remove_file(t: Transport, path: str, what: str) -> Removal:
    out = Removal()
    if not _exists(t, path):
        return out
    why = dismount_disk(t, path) if path.lower().endswith((".vhd", ".vhdx", ".avhdx")) else None
    res, err = _call(t, ops.remove_file(path))
    if _exists(t, path):
        out.remaining.append(f"{what} {path}: {why or _reason(res, err)}")
    else:
        out.removed.append(f"{what} {path}")
    return out


def remove_lab_vm(t: Transport, name: str, owner: Ownership, root: str, journal: Journal,
                  progress: Progress | None = None, vm_paths: dict[str, str] | None = None) -> Removal:
    """Turn off and remove the VMs of that name that are ours, then their disk; each read back."""
    progress = progress or NoProgress()
    out = Removal()
    started = False
    for obj in t.invoke(ops.find_vm(name)).objects():
        fact = parse_vm(obj)
        path = str(obj.get("Path") or (vm_paths or {}).get(fact.id) or "")
        if not is_ours(fact, owner, root, path):
            continue  # same name, not ours: never touched
        progress.stage(name, "remove", "start")
        started = True
        if fact.state != "Off":
            _call(t, ops.turn_off_vm_by_id(fact.id))
        res, err = _call(t, ops.remove_vm_by_id(fact.id))
        if t.invoke(ops.find_vm_by_id(fact.id)).objects():
            out.remaining.append(f"vm {name}: {_reason(res, err)}")
        else:
            out.removed.append(f"vm {name}")
    entry = journal.vm(name)
    disk = str(entry.get("disk") or f"{root}\\{name}.vhdx")
    if disk.lower().startswith(root.lower()) and not out.remaining:
        out.add(_remove_file(t, disk, "disk"))
    if not out.remaining:
        journal.forget_vm(name)  # only once the host shows it gone: a rerun must still know it
    if started or out.removed:
        progress.stage(name, "remove", "failed" if out.remaining else "done",
                       "; ".join(out.remaining) if out.remaining else "")
    return out


def _same_prefix(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_network(a, strict=False) == ipaddress.ip_network(b, strict=False)
    except ValueError:
        return False


def destroy(t: Transport, lab: DesiredLab, facts: HostFacts, journal: Journal, owner: Ownership,
            progress: Progress | None = None, vm_paths: dict[str, str] | None = None) -> DestroyReport:
    """Remove the lab's VMs, their disks, the lab folder, the NAT and the switch it created."""
    report = DestroyReport()
    root = disk_root(facts, lab.name, owner.lab_id)
    paths = vm_paths or {}
    names = {vm.name for vm in lab.vms} | set(journal.vm_names())
    names |= {v.name for v in facts.vms if is_ours(v, owner, root, paths.get(v.id))}
    for name in sorted(names, key=str.lower):
        for fact in facts.vms_named(name):
            if not is_ours(fact, owner, root, paths.get(fact.id)):
                report.kept.append(f"vm {name} (not created by this lab)")
        removal = remove_lab_vm(t, name, owner, root, journal, progress, paths)
        report.removed += removal.removed
        report.remaining += removal.remaining
    _destroy_folder(t, root, report)
    _destroy_nat(t, lab, facts, journal, owner, report)
    _destroy_switch(t, facts, journal, owner, report)
    if report.complete:
        for name in journal.vm_names():
            journal.forget_vm(name)
        journal.delete()
    return report


def _destroy_folder(t: Transport, root: str, report: DestroyReport) -> None:
    """The lab folder (the docker zip, shared image tars, disks of VMs already gone); mounted disks first."""
    if not _exists(t, root):
        _remove_parent_if_empty(t, root)
        return
    for obj in t.invoke(ops.list_files(root)).objects():
        path = str(obj.get("FullName") or "")
        if path.lower().endswith((".vhd", ".vhdx", ".avhdx")):
            why = dismount_disk(t, path)
            if why is not None:
                report.remaining.append(f"disk {path}: still mounted: {why}")
    if report.remaining:
        return  # a VM or a mounted disk is still there: the folder cannot go yet
    res, err = _call(t, ops.remove_folder(root))
    if _exists(t, root):
        report.remaining.append(f"folder {root}: {_reason(res, err)}")
        return
    report.removed.append(f"folder {root}")
    _remove_parent_if_empty(t, root)


def _remove_parent_if_empty(t: Transport, root: str) -> None:
    """The shared parent (…\\labctl) that the first lab on this host created: removed when no lab is left."""
    parent = root.rsplit("\\", 1)[0]
    if parent.lower().endswith("\\labctl") and _exists(t, parent) and not t.invoke(ops.list_children(parent)).output:
        _call(t, ops.remove_empty_folder(parent))


def sharing_copies(lab: DesiredLab, facts: HostFacts, owner: Ownership) -> list[int]:
    """The other copies of this lab on the host (by their switches' tags): they still use the shared NAT."""
    if lab.copy is None:
        return []
    return sorted({s.owner.copy for s in facts.switches if s.owner is not None and s.owner.lab == lab.name
                   and s.owner.copy is not None and s.owner.lab_id != owner.lab_id})


def _destroy_nat(t: Transport, lab: DesiredLab, facts: HostFacts, journal: Journal, owner: Ownership,
                 report: DestroyReport) -> None:
    record = journal.host_resource("nat")
    if record is None:
        return
    name, prefix = str(record.get("name")), str(record.get("prefix") or lab.nat_internal_prefix)
    host = next((n for n in facts.nats if n.name == name), None)
    if host is None:
        journal.forget_host("nat")
        return
    others = sharing_copies(lab, facts, owner)
    if others:
        # One NetNat serves every copy on the host (WinNAT); it goes with the last copy.
        report.kept.append(f"nat {name} (shared with copies {', '.join(map(str, others))} on this host)")
        journal.forget_host("nat")
        return
    if not _same_prefix(host.prefix, prefix):
        report.kept.append(f"nat {name} (its prefix {host.prefix} is not the one this lab created)")
        journal.forget_host("nat")
        return
    res, err = _call(t, ops.remove_nat(name))
    if t.invoke(ops.find_nat(name)).objects():
        report.remaining.append(f"nat {name}: {_reason(res, err)}")
    else:
        report.removed.append(f"nat {name}")
        journal.forget_host("nat")


def _destroy_switch(t: Transport, facts: HostFacts, journal: Journal, owner: Ownership,
                    report: DestroyReport) -> None:
    recorded = journal.host_resource("switch")
    names = {s.name for s in facts.switches if s.owner == owner}
    if recorded is not None:
        host = facts.switch(str(recorded.get("name")))
        if host is not None and host.owner != owner:
            report.kept.append(f"switch {host.name} (not created by this lab)")
    for name in sorted(names):
        res, err = _call(t, ops.remove_switch(name))
        if t.invoke(ops.find_switch(name)).objects():
            report.remaining.append(f"switch {name}: {_reason(res, err)}")
        else:
            report.removed.append(f"switch {name}")
    if not any(r.startswith("switch ") for r in report.remaining):
        journal.forget_host("switch")
        journal.forget_host("gateway")  # the address went with the switch's host adapter
