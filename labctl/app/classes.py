"""Labs with copies (a class), on one host or a pool of hosts.

Every copy is a lab of its own (its switch, subnet, journal and lab id, in ``.labctl/<lab>/copy-<K>``) placed whole
on one host; one NetNat per host covers the copy pool (WinNAT: see docs/facts.md). The class record
(``.labctl/<lab>/class.json``) keeps where each copy was placed, so a rerun keeps every copy where it is. Commands
open each host once, run the copies of a host on that one connection, and drive the hosts in parallel.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from labctl.app.connection import HostConnection, connect_host
from labctl.app.secrets import Prompt
from labctl.app.session import GUEST_ADMIN, Session, connections_for, guest_password, poll_intervals, session_on
from labctl.engine.apply import Applier, ApplyOptions, ApplyReport, VmOutcome
from labctl.engine.destroy import DestroyReport, destroy
from labctl.engine.lock import LabLock
from labctl.engine.parallel import run_parallel
from labctl.engine.placement import CopyNeed, HostRoom, VmNeed, place, present_need, room_of
from labctl.engine.plan import DesiredVm, Plan
from labctl.engine.progress import Progress
from labctl.engine.stages import Timeouts
from labctl.engine.status import VmStatus, lab_status
from labctl.engine.timeline import HOST, PREFLIGHT, TIMELINE_FILE, TimelineProgress
from labctl.engine.timeline import save as save_timeline
from labctl.errors import ApplyError, LabctlError, LabUsageError, PlanError
from labctl.fsio import atomic_write
from labctl.hyperv.facts import HostFacts, host_facts_pipeline, parse_host_facts
from labctl.lab.model import ResolvedLab, ResolvedRemoteHost, ResolvedSimHost
from labctl.secret import Secret
from labctl.transport.base import Cancel, Credential

T = TypeVar("T")
RECORD_FILE = "class.json"


# --- which copies ---------------------------------------------------------------------------------------


def select(lab: ResolvedLab, copy: int | None) -> ResolvedLab:
    """The lab, or only copy ``copy`` of a class (``--copy K``)."""
    if copy is None:
        return lab
    if not lab.is_class:
        raise LabUsageError(f"{lab.source}: lab {lab.name} has no copies; --copy needs copies: N in the lab file")
    if not any(u.copy_number == copy for u in lab.units) or (copy < 1):
        numbers = [u.copy_number or 0 for u in lab.units]
        raise LabUsageError(f"lab {lab.name} has copies {min(numbers)}..{max(numbers)}; there is no copy {copy}",
                            hint=f"pass --copy between {min(numbers)} and {max(numbers)}")
    unit = lab.unit(copy)
    return lab.model_copy(update={"units": [unit], "vms": list(unit.vms)})


# --- the class record: where each copy is --------------------------------------------------------------


@dataclass
class ClassRecord:
    """Copy -> host key, kept in ``.labctl/<lab>/class.json`` (names only, never a secret)."""

    path: Path
    lab: str
    placement: dict[int, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, lab: ResolvedLab) -> ClassRecord:
        path = Path(lab.class_state_dir or lab.state_dir) / RECORD_FILE
        placement: dict[int, str] = {}
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            placement = {int(k): str(v) for k, v in (data.get("placement") or {}).items()}
        return cls(path, lab.name, placement)

    def save(self) -> None:
        with self._lock:
            if not self.placement:
                self.path.unlink(missing_ok=True)
                return
            data = {"version": 1, "lab": self.lab, "placement": {str(k): v for k, v in sorted(self.placement.items())}}
            atomic_write(self.path, json.dumps(data, indent=2) + "\n")

    def forget(self, copy: int) -> None:
        with self._lock:
            self.placement.pop(copy, None)
        self.save()


def host_by_key(lab: ResolvedLab, key: str) -> ResolvedSimHost | ResolvedRemoteHost:
    return lab.hosts[lab.host_keys.index(key)]


def placed(lab: ResolvedLab, record: ClassRecord) -> list[tuple[str, ResolvedLab]]:
    """(host key, copy on that host) for every copy of ``lab`` the record places (others are on no host yet)."""
    out = []
    for unit in lab.units:
        assert unit.copy_number is not None
        key = record.placement.get(unit.copy_number)
        if key is None or key not in lab.host_keys:
            continue
        out.append((key, unit.model_copy(update={"host": host_by_key(lab, key)})))
    return out


def unit_of(lab: ResolvedLab, vm_name: str) -> ResolvedLab:
    """The copy (a lab of its own, on the host it is placed on) holding ``vm_name``; the lab itself when it has
    no copies. A copy not placed yet is on the pool's first host (where it would show as absent)."""
    if not lab.is_class:
        return lab
    for unit in lab.units:
        if any(v.name.lower() == vm_name.lower() for v in unit.vms):
            assert unit.copy_number is not None
            key = ClassRecord.load(lab).placement.get(unit.copy_number)
            host = host_by_key(lab, key) if key in lab.host_keys else lab.hosts[0]
            return unit.model_copy(update={"host": host})
    raise LabUsageError(f"lab {lab.name} has no VM {vm_name!r}")


# --- hosts ------------------------------------------------------------------------------------------------


@contextmanager
def open_hosts(lab: ResolvedLab, keys: Sequence[str], *, workers: int,
               prompt: Prompt | None = None) -> Iterator[dict[str, HostConnection]]:
    """One connection per host key, opened in parallel, all closed at the end."""
    conns: dict[str, HostConnection] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def one(key: str) -> None:
        try:
            conn = connect_host(host_by_key(lab, key), workers=workers, prompt=prompt)
        except BaseException as exc:  # re-raised below, after every host had its chance
            with lock:
                errors.append(exc)
            return
        with lock:
            conns[key] = conn

    with ExitStack() as stack:
        threads = [threading.Thread(target=one, args=(k,), daemon=True) for k in dict.fromkeys(keys)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        for conn in conns.values():
            stack.callback(conn.close)
        if errors:
            raise errors[0]
        yield {k: conns[k] for k in dict.fromkeys(keys)}


def on_each_host(conns: dict[str, HostConnection], fn: Callable[[str, HostConnection], T]) -> dict[str, T]:
    """``fn`` for every host at the same time; the first error is raised once all are done."""
    if len(conns) == 1:
        key, conn = next(iter(conns.items()))
        return {key: fn(key, conn)}
    cancel = Cancel()
    pairs = list(conns.items())
    results = run_parallel(pairs, lambda kc: (kc[0], fn(kc[0], kc[1])), len(pairs), cancel)
    return dict(results)


def describe(conns: dict[str, HostConnection]) -> tuple[str, bool]:
    """How to name the hosts to a person, and whether they are all simulated."""
    simulated = all(c.simulated for c in conns.values())
    if len(conns) == 1:
        conn = next(iter(conns.values()))
        return conn.description, simulated
    return (f"{len(conns)} hosts (" + "; ".join(f"{k}: {c.description}" for k, c in conns.items()) + ")",
            simulated)


# --- up ---------------------------------------------------------------------------------------------------


def _need(unit: ResolvedLab) -> CopyNeed:
    assert unit.copy_number is not None
    return CopyNeed(unit.copy_number, tuple(VmNeed(v.name, v.memory_bytes, v.processors) for v in unit.vms))


def _credential(password: Secret) -> Callable[[DesiredVm], Credential]:
    def credential(_vm: DesiredVm) -> Credential:
        return Credential(GUEST_ADMIN, password)

    return credential


def placement_for(lab: ResolvedLab, record: ClassRecord, facts: dict[str, HostFacts]) -> dict[int, str]:
    """Where every selected copy goes (recorded ones stay); PlanError with what is missing where."""
    rooms: list[HostRoom] = [room_of(k, facts[k]) for k in lab.host_keys if k in facts]
    names = {v.name.lower() for v in lab.vms}
    new_on = {k: names - {v.name.lower() for v in f.vms if v.owner is not None and v.owner.lab == lab.name}
              for k, f in facts.items()}
    needs = []
    for unit in lab.units:
        need = _need(unit)
        key = record.placement.get(need.copy)
        needs.append(present_need(need, facts[key], lab.name) if key in facts else need)
    result = place(needs, rooms, record.placement, new_on)
    problems = result.moved + result.refusals
    if problems:
        raise PlanError("the pool cannot take the class:\n  - " + "\n  - ".join(problems), check="preflight",
                        hint="nothing was changed")
    return result.assignment


@dataclass
class ClassUp:
    """A class's up: the merged plan and report of every copy, and how the hosts were named."""

    plan: Plan
    report: ApplyReport | None
    host: str
    simulated: bool
    placement: dict[int, str]
    sim_clock: dict[str, Any] | None = None


def _merge_plans(plans: Sequence[tuple[ResolvedLab, str, Plan]], multi_host: bool) -> Plan:
    merged = Plan()
    for unit, key, p in plans:
        where = f"copy {unit.copy_number}" + (f" on {key}" if multi_host else "")
        # An image is built once per host, however many copies use it.
        merged.changes += [c for c in p.changes if c.kind != "image" or c not in merged.changes]
        merged.refusals += [f"{where}: {r}" for r in p.refusals]
        merged.disk_root = merged.disk_root or p.disk_root
    return merged


def up_class(lab: ResolvedLab, *, max_workers: int | None, dry_run: bool, timeouts: Timeouts,
             progress: Progress | None, prompt: Prompt | None,
             extra_refusals: Callable[[ResolvedLab, bool], list[str]],
             bootstrap: Callable[[ResolvedLab, HostConnection], Any],
             renderer: Callable[[ResolvedLab], Callable[[DesiredVm], str]],
             prepare_host: Callable[[list[ResolvedLab], HostConnection], list[str]] | None = None) -> ClassUp:
    """Place the class's copies, plan every copy (refusing before any change), then bring all up.

    ``prepare_host`` runs once per host before any copy's host steps (up builds the missing images there) and
    returns host steps to report."""
    record = ClassRecord.load(lab)
    # All VMs of a host at once unless capped; their calls share the host's connections (see app.up).
    in_flight = max_workers or max(1, len(lab.vms))
    connections = connections_for(in_flight)
    with LabLock(Path(lab.class_state_dir) / "lock", "up"), \
            open_hosts(lab, lab.host_keys, workers=connections, prompt=prompt) as conns:
        facts = on_each_host(conns, lambda _k, c: parse_host_facts(c.transport.invoke(host_facts_pipeline())))
        assignment = placement_for(lab, record, facts)
        units = [(assignment[u.copy_number], u.model_copy(update={"host": host_by_key(lab, assignment[u.copy_number])}))
                 for u in lab.units if u.copy_number is not None]
        sessions = [(key, session_on(unit, conns[key])) for key, unit in units]
        plans = [(s.lab, key, s.plan()[0]) for key, s in sessions]
        for (_key, s), (_u, _k, p) in zip(sessions, plans, strict=True):
            p.refusals += extra_refusals(s.lab, s.conn.simulated)
        merged = _merge_plans(plans, len(lab.hosts) > 1)
        host, simulated = describe({k: conns[k] for k in dict.fromkeys(key for key, _ in units)})
        result = ClassUp(merged, None, host, simulated, assignment)
        if merged.refusals:
            raise PlanError("the host cannot take this lab:\n  - " + "\n  - ".join(merged.refusals),
                            check="preflight", hint="fix these, then run up again; nothing was changed")
        if dry_run:
            return result
        for copy, key in assignment.items():
            record.placement[copy] = key
        record.save()  # before anything is created: a rerun keeps every copy where this run put it
        report = ApplyReport()
        passwords = {id(s): guest_password(s.lab, prompt) for _, s in sessions}
        # The run's timeline (.labctl/<lab>/timeline.json); on a pool each host's steps get a row of their own.
        timeline = progress if isinstance(progress, TimelineProgress) else TimelineProgress(progress)
        timeline.record(HOST, PREFLIGHT, "done", f"placed and planned {len(units)} copies")
        host_keys = list(dict.fromkeys(key for key, _ in units))
        row_of = {k: f"{HOST} {k}" if len(host_keys) > 1 else HOST for k in host_keys}
        progress_of = {k: timeline.for_host(row_of[k]) if len(host_keys) > 1 else timeline for k in host_keys}

        def appliers_for(key: str) -> list[tuple[Session, Applier]]:
            out = []
            for (k, s), (_u, _k2, p) in zip(sessions, plans, strict=True):
                if k != key:
                    continue
                out.append((s, Applier(
                    s.conn.transport, s.want, p, s.journal, s.owner, renderer(s.lab),
                    _credential(passwords[id(s)]), progress_of[key],
                    ApplyOptions(max_workers=in_flight, timeouts=timeouts, **poll_intervals(s.conn.time_scale)),
                    bootstrap(s.lab, s.conn))))
            return out

        lock = threading.Lock()

        def run_host(key: str, conn: HostConnection) -> None:
            if prepare_host is not None:  # once per host, before any VM of any copy on it
                steps = prepare_host([s.lab for k, s in sessions if k == key], conn)
                with lock:
                    report.host_steps += steps
            pairs = appliers_for(key)
            for s, applier in pairs:  # host steps one copy after another: the shared NAT is made once
                part = applier.prepare(ApplyReport())
                with lock:
                    report.host_steps += [f"copy {s.lab.copy_number}: {h}" for h in part.host_steps]
            items = [(a, vm) for _, a in pairs for vm in a.lab.vms]

            def chain(item: tuple[Applier, DesiredVm]) -> VmOutcome:
                applier, vm = item
                return applier.chain(vm, report)

            for outcome in run_parallel(items, chain, in_flight, conn.transport.cancel):
                with lock:
                    report.outcomes[outcome.name] = outcome
            if conn.transport.cancel.is_set():
                raise KeyboardInterrupt
            for _, applier in pairs:
                applier.finish(report)
                with lock:
                    report.notes += [n for n in applier.context.notes if n not in report.notes]

        used = {k: conns[k] for k in dict.fromkeys(key for key, _ in units)}

        def clock_of(conn: HostConnection) -> dict[str, Any] | None:
            try:
                return conn.sim_report()
            except Exception:  # a courtesy: never hides the run's own outcome
                return None

        try:
            on_each_host(used, run_host)
        finally:  # the timeline of a run that stopped early too: it shows where it stopped
            clocks = {k: clock_of(c) for k, c in used.items()}
            save_timeline(Path(lab.class_state_dir) / TIMELINE_FILE, timeline, lab=lab.name, host=host,
                          simulated=simulated, vms=[v.name for v in lab.vms],
                          clocks={row_of[k]: c for k, c in clocks.items()})
        reports = [c for c in clocks.values() if c]
        result.report = report
        result.sim_clock = max(reports, key=lambda c: float(c.get("estimated_makespan_seconds") or 0.0)) \
            if reports else None
        return result


def plan_class(lab: ResolvedLab, *, prompt: Prompt | None,
               extra_refusals: Callable[[ResolvedLab, bool], list[str]]) -> tuple[Plan, str, bool]:
    """The class's plan without changing anything (placement included)."""
    record = ClassRecord.load(lab)
    with open_hosts(lab, lab.host_keys, workers=1, prompt=prompt) as conns:
        facts = on_each_host(conns, lambda _k, c: parse_host_facts(c.transport.invoke(host_facts_pipeline())))
        try:
            assignment = placement_for(lab, record, facts)
        except PlanError as err:
            return Plan(refusals=[err.message]), describe(conns)[0], describe(conns)[1]
        plans = []
        for unit in lab.units:
            assert unit.copy_number is not None
            key = assignment[unit.copy_number]
            s = session_on(unit.model_copy(update={"host": host_by_key(lab, key)}), conns[key])
            p = s.plan()[0]
            p.refusals += extra_refusals(s.lab, s.conn.simulated)
            plans.append((s.lab, key, p))
        host, simulated = describe(conns)
        return _merge_plans(plans, len(lab.hosts) > 1), host, simulated


# --- status and destroy ---------------------------------------------------------------------------------


def status_class(lab: ResolvedLab, *, guest: bool, prompt: Prompt | None) -> tuple[list[VmStatus], str, bool]:
    """Every copy's VMs as their hosts report them; copies on no host yet show as absent."""
    record = ClassRecord.load(lab)
    where = placed(lab, record)
    keys = list(dict.fromkeys(k for k, _ in where)) or lab.host_keys[:1]
    rows: dict[str, VmStatus] = {}
    with open_hosts(lab, keys, workers=1, prompt=prompt) as conns:
        def one(key: str, conn: HostConnection) -> list[VmStatus]:
            out = []
            for k, unit in where:
                if k != key:
                    continue
                s = session_on(unit, conn)
                cred: Callable[[DesiredVm], Credential] | None = None
                if guest:
                    try:
                        cred = _credential(guest_password(unit, prompt))
                    except Exception:  # no password at hand: the host's view only
                        cred = None
                for row in lab_status(conn.transport, s.want, s.owner, cred, s.journal.snapshot()):
                    row.copy = unit.copy_number
                    row.host = key
                    out.append(row)
            return out

        for part in on_each_host(conns, one).values():
            for row in part:
                rows[row.name] = row
        host, simulated = describe(conns)
    ordered = []
    for vm in lab.vms:
        row = rows.get(vm.name) or VmStatus(name=vm.name, exists=False, expected_ip=vm.ip)
        row.copy = vm.copy_number
        ordered.append(row)
    return ordered, host, simulated


def destroy_class(lab: ResolvedLab, progress: Progress | None,
                  prompt: Prompt | None) -> tuple[DestroyReport, str]:
    """Remove the selected copies, each checked on its host; the shared NAT goes with a host's last copy."""
    record = ClassRecord.load(lab)
    where = placed(lab, record)
    total = DestroyReport()
    if not where:
        return total, "no host (no copy of the class is placed)"
    keys = list(dict.fromkeys(k for k, _ in where))
    lock = threading.Lock()
    with LabLock(Path(lab.class_state_dir) / "lock", "destroy"), \
            open_hosts(lab, keys, workers=1, prompt=prompt) as conns:
        def one(key: str, conn: HostConnection) -> None:
            here = DestroyReport()
            for k, unit in where:
                if k != key:
                    continue
                s = session_on(unit, conn)
                facts, paths = s.facts()
                rep = destroy(conn.transport, s.want, facts, s.journal, s.owner, progress, paths)
                here.removed += rep.removed
                here.kept += rep.kept
                here.remaining += rep.remaining
                if rep.complete and unit.copy_number is not None:
                    record.forget(unit.copy_number)
            # The shared NAT was kept for the copies destroyed first; when the last one took it along, those
            # "kept" lines are no longer true.
            here.kept = [k for k in here.kept
                         if not (k.startswith("nat ") and "(shared with copies" in k and " ".join(k.split()[:2])
                                 in here.removed)]
            with lock:
                total.removed += here.removed
                total.kept += here.kept
                total.remaining += here.remaining

        on_each_host(conns, one)
        return total, describe(conns)[0]


# --- any verb, per copy ----------------------------------------------------------------------------------


def per_copy(lab: ResolvedLab, fn: Callable[[Session], T], *, action: str | None,
             prompt: Prompt | None = None) -> tuple[list[T], str, bool]:
    """``fn`` on every selected copy that is on a host: one connection per host, the copies of a host at once,
    hosts in parallel; results in copy order. ``action`` takes the class lock for verbs that change things.

    A copy that fails does not stop the others; afterwards the failures are raised together (VMs of an
    ApplyError merged, else the first error)."""
    where = placed(lab, ClassRecord.load(lab))
    if not where:
        raise LabUsageError(f"no copy of lab {lab.name} is on a host yet", hint=f"run labctl up {lab.source}")
    keys = list(dict.fromkeys(k for k, _ in where))
    outcomes: dict[int, T] = {}
    errors: list[LabctlError] = []
    guard = threading.Lock()
    with ExitStack() as stack:
        if action is not None:
            stack.enter_context(LabLock(Path(lab.class_state_dir) / "lock", action))
        conns = stack.enter_context(open_hosts(lab, keys, workers=2, prompt=prompt))

        def one(key: str, conn: HostConnection) -> None:
            units = [u for k, u in where if k == key]

            def each(unit: ResolvedLab) -> None:
                try:
                    value = fn(session_on(unit, conn))
                except LabctlError as exc:
                    with guard:
                        errors.append(exc)
                    return
                with guard:
                    outcomes[unit.copy_number or 0] = value

            run_parallel(units, each, len(units), conn.transport.cancel)
            if conn.transport.cancel.is_set():
                raise KeyboardInterrupt

        on_each_host(conns, one)
        host, simulated = describe(conns)
    if errors:
        applies = [e for e in errors if isinstance(e, ApplyError)]
        if len(applies) == len(errors):
            raise ApplyError({n: e for a in applies for n, e in a.failures.items()})
        raise errors[0]
    return [outcomes[k] for k in sorted(outcomes)], host, simulated
