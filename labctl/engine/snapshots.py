"""Lab-wide snapshots: one Hyper-V production checkpoint per VM, taken, listed, restored and removed together,
each in a constant number of host pipelines (docs/snapshots.md says why production checkpoints).

A snapshot is a journal record (labctl.engine.journal: name, time, checkpoint type, per VM the checkpoint's Id
and its VM's Id). Only the lab's own VMs (ownership tag) and only the recorded checkpoints are ever touched;
every claim (taken, present, restored, removed) is what the host showed when read back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from labctl.engine.power import (
    SNAPSHOT_TYPE,
    VM_TYPE,
    Checkpoint,
    LabHost,
    LabView,
    VmPower,
    errors_by_vm,
    read_view,
    start_and_wait,
)
from labctl.engine.stages import BOOTSTRAP_STAGES
from labctl.errors import ApplyError, LabctlError, LabUsageError, PlanError, RemoteCommandError, StageError
from labctl.hyperv import ops
from labctl.transport.base import Result

CHECKPOINT_TYPE = "ProductionOnly"
# Get-VMSnapshot and Remove-VMSnapshot read -Name as a wildcard pattern: a name must match only itself.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
_CAUSE_VSS = ("a production checkpoint needs the guest's VSS writer through the Backup (volume shadow copy) "
              "integration service (Id ending 5CED1297-4598-4915-A5FC-AD21BB4D02A4): is it enabled and the guest "
              "running? Is there room for the checkpoint's differencing disk in the lab folder?")


@dataclass
class SnapshotVm:
    """One VM's checkpoint of a snapshot, as recorded and as found on the host."""

    vm: str
    checkpoint_id: str
    present: bool  # verified on the host: the VM is the lab's and has this checkpoint


@dataclass
class SnapshotInfo:
    """A recorded snapshot, verified on the host."""

    name: str
    created: str
    checkpoint_type: str
    state: str  # complete | incomplete (a save that did not finish)
    vms: list[SnapshotVm] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        return [v.vm for v in self.vms if not v.present]

    @property
    def usable(self) -> bool:
        return self.state == "complete" and bool(self.vms) and not self.missing

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "created": self.created, "checkpoint_type": self.checkpoint_type,
                "state": self.state, "usable": self.usable, "missing": self.missing,
                "vms": {v.vm: {"checkpoint_id": v.checkpoint_id, "present": v.present} for v in self.vms}}


@dataclass
class ResetReport:
    """What reset did: the snapshot, and each VM's outcome (restored, then ready)."""

    snapshot: str
    vms: dict[str, VmPower] = field(default_factory=dict)

    @property
    def failed(self) -> dict[str, VmPower]:
        return {n: v for n, v in self.vms.items() if not v.ok}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_name(name: str) -> None:
    """A snapshot name labctl can pass to Hyper-V as itself (no wildcard, no leading dash)."""
    if not _NAME.match(name):
        raise LabUsageError(f"snapshot name {name!r} is not allowed: use letters, digits, space, '.', '_' or '-' "
                            "(up to 100, starting with a letter or digit); Hyper-V reads * ? [ ] as wildcards",
                            field="snapshot")


def recorded(h: LabHost, name: str | None) -> tuple[str, dict[str, Any]]:
    """The journal's snapshot ``name`` (None: the most recent complete one); unknown names list the known."""
    snaps = h.journal.lab_snapshots()
    if name is None:
        complete = [(rec.get("created", ""), n) for n, rec in snaps.items() if rec.get("state") == "complete"]
        if not complete:
            raise LabUsageError(f"lab {h.lab.name} has no snapshot to reset to",
                                hint="take one with: labctl snapshot save LAB NAME", field="snapshot")
        name = max(complete)[1]
    if name not in snaps:
        known = ", ".join(sorted(snaps)) or "none"
        raise LabUsageError(f"lab {h.lab.name} has no snapshot {name!r} (known: {known})",
                            hint="labctl snapshot list LAB shows them", field="snapshot")
    return name, snaps[name]


def _targets(rec: dict[str, Any], name: str, view: LabView) -> dict[str, Checkpoint]:
    """The lab's checkpoints of this snapshot present on the host, by VM: the recorded Ids, or for a save that
    did not finish, the checkpoints of that name on the lab's VMs that were not there before it."""
    ours = view.ours()
    out: dict[str, Checkpoint] = {}
    if rec.get("state") == "complete":
        for vm, entry in (rec.get("vms") or {}).items():
            found = next((c for c in ours if c.id.lower() == str(entry.get("id", "")).lower()
                          and vm in view.vms and c.vm_id.lower() == view.vms[vm].id.lower()), None)
            if found is not None:
                out[vm] = found
        return out
    before = {str(i).lower() for i in rec.get("before") or []}
    for vm, fact in view.vms.items():
        found = next((c for c in ours if c.vm_id.lower() == fact.id.lower() and c.name == name
                      and c.id.lower() not in before), None)
        if found is not None:
            out[vm] = found
    return out


def info_of(name: str, rec: dict[str, Any], view: LabView) -> SnapshotInfo:
    present = _targets(rec, name, view)
    vms = [SnapshotVm(vm, str(entry.get("id", "")), vm in present)
           for vm, entry in sorted((rec.get("vms") or {}).items())]
    if rec.get("state") != "complete":
        vms = [SnapshotVm(vm, c.id, True) for vm, c in sorted(present.items())]
    return SnapshotInfo(name, str(rec.get("created", "")), str(rec.get("checkpoint_type", CHECKPOINT_TYPE)),
                        "complete" if rec.get("state") == "complete" else "incomplete", vms)


# --- list ---------------------------------------------------------------------------------------------------


def list_snapshots(h: LabHost) -> list[SnapshotInfo]:
    """Every snapshot the journal records, each checkpoint verified on the host (one pipeline), oldest first."""
    snaps = h.journal.lab_snapshots()
    if not snaps:
        return []
    view = read_view(h)
    infos = [info_of(n, rec, view) for n, rec in snaps.items()]
    return sorted(infos, key=lambda i: (i.created, i.name))


# --- save ---------------------------------------------------------------------------------------------------


def _not_up(h: LabHost) -> list[str]:
    """The lab's VMs the journal does not show fully up (ready, and bootstrapped for container hosts)."""
    problems = []
    for vm in h.lab.vms:
        stages = set(h.journal.vm(vm.name).get("stages") or [])
        todo = [s for s in ("ready", *(BOOTSTRAP_STAGES if vm.container_host else ())) if s not in stages]
        if todo:
            problems.append(f"VM {vm.name}: bring-up not finished ({', '.join(todo)} pending); run labctl up first")
    return problems


def save_snapshot(h: LabHost, name: str) -> SnapshotInfo:
    """Checkpoint every VM of the lab at once (production checkpoints), recorded in the journal.

    All or nothing: when a VM cannot be checkpointed, the checkpoints the others got are removed again."""
    check_name(name)
    if name in h.journal.lab_snapshots():
        raise LabUsageError(f"lab {h.lab.name} already has a snapshot {name!r}",
                            hint=f"remove it first (labctl snapshot rm LAB {name!r}) or choose another name",
                            field="snapshot")
    view = read_view(h)
    problems = _not_up(h)
    for wanted in h.lab.vms:
        fact = view.vms.get(wanted.name)
        if fact is None:
            problems.append(f"VM {wanted.name} is not on the host (run labctl up)")
        elif fact.state not in ("Running", "Off"):
            problems.append(f"VM {wanted.name} is {fact.state}: a production checkpoint is taken of a running or "
                            "an off VM; run labctl start LAB (or stop LAB) first")
        elif any(c.name == name and c.vm_id.lower() == fact.id.lower() for c in view.checkpoints):
            problems.append(f"VM {wanted.name} already has a checkpoint named {name!r} that labctl did not "
                            "record; choose another snapshot name")
    if problems:
        raise PlanError(f"cannot snapshot lab {h.lab.name}:\n  - " + "\n  - ".join(problems), check="snapshot",
                        hint="nothing was changed")
    names = h.names
    before = [c.id for c in view.ours()]
    created = _now()
    h.journal.record_lab_snapshot(name, {"created": created, "checkpoint_type": CHECKPOINT_TYPE,
                                         "state": "pending", "before": before})
    for vm in names:
        h.progress.stage(vm, "snapshot", "start", f"production checkpoint {name!r}")
    try:
        res = h.t.invoke(ops.checkpoint_lab(names, view.ids(names), name), retry=False)
    except RemoteCommandError as err:
        # Set-VM -ErrorAction Stop ended the pipeline before any Checkpoint-VM ran.
        h.journal.forget_lab_snapshot(name)
        raise _lab_error(h, "snapshot", f"Set-VM -CheckpointType {CHECKPOINT_TYPE} failed: {err.message}", err,
                         "the VM's checkpoint setting could not be changed; nothing was checkpointed") from err
    after = LabView(vms=view.vms, foreign=view.foreign, checkpoints=[
        c for c in _checkpoints_of(res) if c.vm_id.lower() in {f.id.lower() for f in view.vms.values()}])
    made = _targets({"state": "pending", "before": before}, name, after)
    errors, other = errors_by_vm(res.errors, names)
    failures: dict[str, LabctlError] = {}
    for vm in names:
        if vm in made:
            h.progress.stage(vm, "snapshot", "done", f"checkpoint {made[vm].id}")
            continue
        why = errors.get(vm) or "; ".join(other) or "Checkpoint-VM reported no error, but no checkpoint appeared"
        failures[vm] = StageError(f"{vm}: snapshot: no production checkpoint was taken: {why}", vm=vm,
                                  stage="snapshot", cause=_CAUSE_VSS)
        h.progress.stage(vm, "snapshot", "failed", why)
    if failures:
        left = _rollback(h, name, made, view)
        if left:
            for vm in left:
                failures.setdefault(vm, StageError(f"{vm}: snapshot: its checkpoint {name!r} could not be removed "
                                                   "again", vm=vm, stage="snapshot"))
        else:
            h.journal.forget_lab_snapshot(name)
        raise ApplyError(failures)
    h.journal.record_lab_snapshot(name, {
        "created": created, "checkpoint_type": CHECKPOINT_TYPE, "state": "complete",
        "vms": {vm: {"id": made[vm].id, "vm_id": view.vms[vm].id} for vm in names}})
    return info_of(name, h.journal.lab_snapshots()[name], after)


def _checkpoints_of(res: Result) -> list[Checkpoint]:
    return [Checkpoint(vm=str(o.get("VMName") or ""), vm_id=str(o.get("VMId") or ""), id=str(o.get("Id") or ""),
                       name=str(o.get("Name") or ""), created=str(o.get("CreationTime") or ""))
            for o in res.objects() if o.is_a(SNAPSHOT_TYPE)]


def _rollback(h: LabHost, name: str, made: dict[str, Checkpoint], view: LabView) -> list[str]:
    """Remove the checkpoints a failed save made; the VMs whose checkpoint is still there."""
    if not made:
        return []
    res = h.t.invoke(ops.remove_checkpoints({vm: name for vm in made}, h.names), retry=False)
    still = {c.id.lower() for c in _checkpoints_of(res)}
    return [vm for vm, c in made.items() if c.id.lower() in still]


def _lab_error(h: LabHost, stage: str, message: str, err: RemoteCommandError, cause: str) -> LabctlError:
    vm = next((n for n in h.names if err.target and err.target.lower() == n.lower()), None)
    if vm is not None:
        return StageError(f"{vm}: {stage}: {message}", vm=vm, stage=stage, cause=cause)
    return LabctlError(f"{stage}: {message}", hint=cause)


# --- remove -------------------------------------------------------------------------------------------------


def remove_snapshot(h: LabHost, name: str) -> SnapshotInfo:
    """Remove exactly the snapshot's checkpoints (Remove-VMSnapshot), verified gone; then forget the snapshot.

    A checkpoint already gone from the host (removed by hand) is reported missing, not removed."""
    name, rec = recorded(h, name)
    view = read_view(h)
    info = info_of(name, rec, view)
    targets = _targets(rec, name, view)
    problems = []
    for vm, target in targets.items():
        same = [c for c in view.checkpoints if c.vm.lower() == vm.lower() and c.name == name]
        if len(same) != 1:
            # Removal goes by VM name and checkpoint name (ops.remove_checkpoints): it must hit this one only.
            problems.append(f"VM {vm}: {len(same)} checkpoints named {name!r} on VMs named {vm}; labctl removes "
                            f"only its own ({target.id}): remove or rename the others by hand first")
    if problems:
        raise PlanError(f"cannot remove snapshot {name!r}:\n  - " + "\n  - ".join(problems), check="snapshot",
                        hint="nothing was changed")
    for vm in h.names:
        if vm in targets:
            h.progress.stage(vm, "snapshot-rm", "start", f"Remove-VMSnapshot {targets[vm].id}")
        elif any(v.vm == vm for v in info.vms):
            h.progress.stage(vm, "snapshot-rm", "skip", "its checkpoint is not on the host (missing)")
    if targets:
        res = h.t.invoke(ops.remove_checkpoints({vm: name for vm in targets}, h.names), retry=False)
        still = {c.id.lower() for c in _checkpoints_of(res)}
        errors, other = errors_by_vm(res.errors, list(targets))
        failures: dict[str, LabctlError] = {}
        for vm, target in targets.items():
            if target.id.lower() in still:
                why = errors.get(vm) or "; ".join(other) or "it is still listed by Get-VMSnapshot"
                failures[vm] = StageError(f"{vm}: snapshot-rm: checkpoint {target.id} was not removed: {why}",
                                          vm=vm, stage="snapshot-rm",
                                          cause="Hyper-V could not merge the checkpoint's differencing disk "
                                                "(a disk in use, or too little room in the lab folder)")
                h.progress.stage(vm, "snapshot-rm", "failed", why)
            else:
                h.progress.stage(vm, "snapshot-rm", "done", "removed")
        if failures:
            raise ApplyError(failures)
    h.journal.forget_lab_snapshot(name)
    return info


# --- reset --------------------------------------------------------------------------------------------------


def reset_lab(h: LabHost, name: str | None = None) -> ResetReport:
    """Restore every VM to the snapshot (one pipeline), start them all and wait until the lab is ready."""
    name, rec = recorded(h, name)
    view = read_view(h)
    info = info_of(name, rec, view)
    problems = []
    if info.state != "complete":
        problems.append(f"snapshot {name!r} is incomplete (its save did not finish): remove it with "
                        f"labctl snapshot rm LAB {name!r}")
    recorded_vms = set(rec.get("vms") or {})
    for vm in h.names:
        if vm not in view.vms:
            problems.append(f"VM {vm} is not on the host (or not this lab's)")
        elif vm not in recorded_vms and info.state == "complete":
            problems.append(f"VM {vm} was added to the lab after snapshot {name!r}: it has no checkpoint in it")
    problems += [f"VM {v.vm}: checkpoint {v.checkpoint_id} of snapshot {name!r} is missing on the host"
                 for v in info.vms if not v.present]
    if problems:
        raise PlanError(f"cannot reset lab {h.lab.name} to {name!r}:\n  - " + "\n  - ".join(problems),
                        check="reset", hint="nothing was changed")
    targets = _targets(rec, name, view)
    names = h.names
    for vm in names:
        h.progress.stage(vm, "restore", "start", f"checkpoint {targets[vm].id}")
    res = h.t.invoke(ops.restore_checkpoints(names, view.ids(names), [targets[vm].id for vm in names]),
                     retry=False)
    errors, other = errors_by_vm(res.errors, names)
    after = read_states(res, view)
    report = ResetReport(name)
    restored: list[str] = []
    for vm in names:
        if vm in errors or after.get(vm) != "Off":
            why = errors.get(vm) or "; ".join(other) or f"the VM is {after.get(vm, 'absent')} after the restore"
            err = StageError(f"{vm}: restore: {why}", vm=vm, stage="restore",
                             cause="Hyper-V could not apply the checkpoint (look at the Hyper-V-VMMS event log)")
            h.progress.stage(vm, "restore", "failed", why)
            report.vms[vm] = VmPower(vm, False, after.get(vm, "Unknown"), "not restored", "restore", why, err)
        else:
            h.progress.stage(vm, "restore", "done", "Off")
            restored.append(vm)
    for vm in restored:
        view.vms[vm] = replace(view.vms[vm], state="Off")
    report.vms.update(start_and_wait(h, view, restored, action="restored"))
    report.vms = {vm: report.vms[vm] for vm in names}
    return report


def read_states(res: Result, view: LabView) -> dict[str, str]:
    """The state of each of the lab's VMs in a result's Get-VM objects (matched by Id)."""
    by_id = {f.id.lower(): n for n, f in view.vms.items()}
    out: dict[str, str] = {}
    for obj in res.objects():
        if obj.is_a(VM_TYPE):
            vm = by_id.get(str(obj.get("Id") or "").lower())
            if vm is not None:
                out[vm] = str(obj.get("State") or "")
    return out


