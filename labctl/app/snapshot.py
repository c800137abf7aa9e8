"""The use cases behind ``labctl snapshot save|list|rm`` and ``labctl reset``.

Each verb comes twice: ``snapshot_save(lab, ...)`` takes the lab lock and opens the lab itself;
``snapshot_save_in(session, ...)`` does the work on a Session already open (a caller driving several labs over
one connection). Listing only reads, so it takes no lock. Nothing here prints: results are dataclasses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from labctl.app import classes
from labctl.app.power import PowerResult, lab_credential, lab_host
from labctl.app.secrets import Prompt
from labctl.app.session import Session, journal_path, open_lab
from labctl.engine.journal import Journal
from labctl.engine.lock import LabLock
from labctl.engine.progress import Progress
from labctl.engine.snapshots import SnapshotInfo, SnapshotVm, list_snapshots, remove_snapshot, reset_lab, save_snapshot
from labctl.engine.stages import Timeouts
from labctl.errors import LabUsageError, PlanError
from labctl.lab.model import ResolvedLab
from labctl.transport.base import Credential


@dataclass
class SnapshotResult:
    """One snapshot after save or rm (its checkpoints as the host showed them), or every one after list."""

    lab: str
    host: str
    simulated: bool
    snapshots: list[SnapshotInfo] = field(default_factory=list)


@dataclass
class ResetResult(PowerResult):
    """What reset did: each VM's outcome (restored, then ready), and the snapshot restored."""

    snapshot: str = ""


def _result(session: Session, infos: list[SnapshotInfo]) -> SnapshotResult:
    return SnapshotResult(session.lab.name, session.conn.description, session.conn.simulated, infos)


def _lock(lab: ResolvedLab, action: str) -> LabLock:
    return LabLock(Path(lab.state_dir) / "lock", action)


def snapshot_save_in(session: Session, name: str, *, progress: Progress | None = None) -> SnapshotResult:
    """Checkpoint every VM of the open lab as snapshot ``name`` (production checkpoints, all or nothing)."""
    return _result(session, [save_snapshot(lab_host(session, progress), name)])


def _merged(lab: ResolvedLab, parts: list[tuple[ResolvedLab, SnapshotResult]], host: str,
            simulated: bool) -> SnapshotResult:
    """A class's snapshots: one per name over every copy (a copy without it shows its VMs as missing)."""
    by_name: dict[str, SnapshotInfo] = {}
    for _unit, r in parts:
        for info in r.snapshots:
            have = by_name.get(info.name)
            if have is None:
                by_name[info.name] = SnapshotInfo(info.name, info.created, info.checkpoint_type, info.state,
                                                  list(info.vms))
                continue
            have.vms += info.vms
            have.created = min(have.created, info.created)
            if info.state != "complete":
                have.state = info.state
    for name, merged in by_name.items():
        for unit, r in parts:
            if not any(i.name == name for i in r.snapshots):
                merged.vms += [SnapshotVm(vm.name, "", False) for vm in unit.vms]
    return SnapshotResult(lab.name, host, simulated, sorted(by_name.values(), key=lambda i: (i.created, i.name)))


def _class_snapshot(lab: ResolvedLab, fn: Callable[[Session], SnapshotResult], action: str | None,
                    prompt: Prompt | None) -> SnapshotResult:
    results, host, simulated = classes.per_copy(lab, fn, action=action, prompt=prompt)
    units = sorted((u for _, u in classes.placed(lab, classes.ClassRecord.load(lab))),
                   key=lambda u: u.copy_number or 0)
    return _merged(lab, list(zip(units, results, strict=True)), host, simulated)


def snapshot_save(lab: ResolvedLab, name: str, *, progress: Progress | None = None,
                  prompt: Prompt | None = None) -> SnapshotResult:
    if lab.is_class:
        return _class_snapshot(lab, lambda s: snapshot_save_in(s, name, progress=progress), "snapshot save", prompt)
    with _lock(lab, "snapshot save"), open_lab(lab, workers=1, prompt=prompt) as s:
        return snapshot_save_in(s, name, progress=progress)


def snapshot_list_in(session: Session) -> SnapshotResult:
    """Every snapshot the journal records, each checkpoint verified on the host."""
    return _result(session, list_snapshots(lab_host(session)))


def snapshot_list(lab: ResolvedLab, *, prompt: Prompt | None = None) -> SnapshotResult:
    if lab.is_class:
        return _class_snapshot(lab, snapshot_list_in, None, prompt)
    with open_lab(lab, workers=1, prompt=prompt) as s:
        return snapshot_list_in(s)


def snapshot_rm_in(session: Session, name: str, *, progress: Progress | None = None) -> SnapshotResult:
    """Remove snapshot ``name``: exactly its checkpoints, each verified gone."""
    return _result(session, [remove_snapshot(lab_host(session, progress), name)])


def snapshot_rm(lab: ResolvedLab, name: str, *, progress: Progress | None = None,
                prompt: Prompt | None = None) -> SnapshotResult:
    if lab.is_class:
        return _class_snapshot(lab, lambda s: snapshot_rm_in(s, name, progress=progress), "snapshot rm", prompt)
    with _lock(lab, "snapshot rm"), open_lab(lab, workers=1, prompt=prompt) as s:
        return snapshot_rm_in(s, name, progress=progress)


def reset_in(session: Session, credential: Credential, name: str | None = None, *,
             progress: Progress | None = None, timeouts: Timeouts | None = None) -> ResetResult:
    """Restore every VM of the open lab to snapshot ``name`` (None: the most recent), then wait until ready."""
    start = time.monotonic()
    report = reset_lab(lab_host(session, progress, credential, timeouts), name)
    return ResetResult(session.lab.name, "reset", session.conn.description, session.conn.simulated, report.vms,
                       time.monotonic() - start, session.conn.sim_report(), snapshot=report.snapshot)


def class_snapshot_name(lab: ResolvedLab, name: str | None) -> str:
    """The snapshot a class resets to: ``name``, or the most recent one; every selected copy must have it
    complete (PlanError naming the copies that do not, before anything changes)."""
    records = []
    for _key, unit in classes.placed(lab, classes.ClassRecord.load(lab)):
        path = journal_path(unit)
        snaps = Journal.open(path, unit.name).lab_snapshots() if path.exists() else {}
        records.append((unit.copy_number, snaps))
    if not records:
        raise LabUsageError(f"no copy of lab {lab.name} is on a host yet", hint=f"run labctl up {lab.source}")
    if name is None:
        latest = [(str(r.get("created", "")), n) for _, snaps in records for n, r in snaps.items()
                  if r.get("state") == "complete"]
        if not latest:
            raise LabUsageError(f"lab {lab.name} has no snapshot to reset to",
                                hint=f"labctl snapshot save {lab.source} NAME first")
        name = max(latest)[1]
    lacking = [c for c, snaps in records if (snaps.get(name) or {}).get("state") != "complete"]
    if lacking:
        raise PlanError(f"snapshot {name!r} is not complete in copies {', '.join(map(str, lacking))} of lab "
                        f"{lab.name}; nothing was changed", check="snapshot",
                        hint="reset the other copies with --copy K, or save the snapshot again for every copy")
    return name


def reset(lab: ResolvedLab, name: str | None = None, *, progress: Progress | None = None,
          prompt: Prompt | None = None, timeouts: Timeouts | None = None) -> ResetResult:
    if lab.is_class:
        start = time.monotonic()
        chosen = class_snapshot_name(lab, name)
        results, host, simulated = classes.per_copy(
            lab, lambda s: reset_in(s, lab_credential(s.lab, prompt), chosen, progress=progress, timeouts=timeouts),
            action="reset", prompt=prompt)
        merged = ResetResult(lab.name, "reset", host, simulated, elapsed=time.monotonic() - start, snapshot=chosen)
        for r in results:
            merged.vms.update(r.vms)
            merged.sim_clock = r.sim_clock or merged.sim_clock
        return merged
    with _lock(lab, "reset"):
        credential = lab_credential(lab, prompt)
        with open_lab(lab, workers=1, prompt=prompt) as s:
            return reset_in(s, credential, name, progress=progress, timeouts=timeouts)
