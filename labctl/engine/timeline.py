"""The timeline of a run: every stage event with its wall time, and the per-row stage intervals drawn from it.

``TimelineProgress`` wraps the Progress a run reports to, records each event (VM or host row, stage, status,
detail, wall seconds since the run began) and forwards it unchanged. The pure functions below turn the events
into intervals (what ran when, what each one waited on) and, when the host is a simulator whose clock report
carries modeled intervals, place the stages on modeled time instead of the wall clock. ``up`` writes the
document to ``.labctl/<lab>/timeline.json`` (atomically; names and details only, never a secret, like the
journal) and ``labctl report`` draws it.

The simulator's modeled intervals come from its clock report (GET /clock, key ``timeline``: per actor, rows of
key, start, end in simulated seconds from the first operation). Each VM's operations are placed in the labctl
stage that causes them (a table of durations.yaml's keys), so the chart shows modeled stage times; the
operations themselves are drawn too.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from labctl.engine.progress import NoProgress, Progress
from labctl.engine.stages import BOOT_WAITS, BY_NAME
from labctl.fsio import atomic_write
from labctl.redact import scrub

log = logging.getLogger(__name__)

VERSION = 1
TIMELINE_FILE = "timeline.json"
HOST = "host"
READY = "ready"  # not a stage of the table: the end of a VM's chain ("ready done", or "ready skip up to date")
PREFLIGHT = "preflight"  # before the host steps: the lock, the connection, the host's facts, the plan
QUEUED = "queued"  # a VM waiting for a free worker before its first stage
MAX_DETAIL = 300  # characters of a detail kept per event
WAIT_STAGES = frozenset(s.name for s in BOOT_WAITS)  # running, heartbeat, ip, logon: waits for the guest

Kind = Literal["host", "create", "boot", "bootstrap", "verify", "queue", "ready", "other"]
Axis = Literal["wall", "modeled"]


@dataclass(frozen=True)
class Event:
    """One stage event as the engine reported it; ``t`` is wall seconds since the run began."""

    t: float
    row: str
    stage: str
    status: str  # start, done, skip, failed
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"t": round(self.t, 6), "row": self.row, "stage": self.stage, "status": self.status,
                "detail": self.detail}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        return cls(float(data["t"]), str(data["row"]), str(data["stage"]), str(data["status"]),
                   str(data.get("detail") or ""))


class TimelineProgress:
    """A Progress that records every event and forwards it to ``inner``."""

    def __init__(self, inner: Progress | None = None, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.inner: Progress = inner if inner is not None else NoProgress()
        self._clock = clock
        self._t0 = clock()
        self.started_at = wall()  # epoch seconds: when the run began, for the report
        self._events: list[Event] = []
        self._lock = threading.Lock()

    def stage(self, vm: str, stage: str, status: str, detail: str = "") -> None:
        self.record(vm, stage, status, detail)
        self.inner.stage(vm, stage, status, detail)

    def record(self, row: str, stage: str, status: str, detail: str = "") -> None:
        """Keep one event (the detail scrubbed of secrets and shortened), without forwarding it."""
        text = scrub(detail)
        if len(text) > MAX_DETAIL:
            text = text[: MAX_DETAIL - 1] + "…"
        with self._lock:
            self._events.append(Event(self._clock() - self._t0, row, stage, status, text))

    def elapsed(self) -> float:
        return self._clock() - self._t0

    def for_host(self, label: str) -> Progress:
        """A view for one host of several: its "host" events are recorded as ``label`` (forwarded as they came)."""
        return _HostView(self, label)

    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def document(self, *, lab: str, host: str, simulated: bool, vms: Sequence[str],
                 clocks: Mapping[str, Mapping[str, Any] | None] | None = None) -> dict[str, Any]:
        """What ``up`` writes: the run's identity, every event, and the simulators' clock reports by host row."""
        reports = {k: dict(v) for k, v in (clocks or {}).items() if v}
        profiles = sorted({str(r.get("profile")) for r in reports.values() if r.get("profile")})
        return {
            "version": VERSION, "lab": lab, "host": host, "simulated": simulated,
            "profile": ", ".join(profiles) if profiles else None,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
            "started_epoch": self.started_at, "elapsed_seconds": round(self.elapsed(), 6),
            "vms": list(vms), "events": [e.to_json() for e in self.events()], "clocks": reports,
        }


class _HostView:
    def __init__(self, timeline: TimelineProgress, label: str) -> None:
        self.timeline = timeline
        self.label = label

    def stage(self, vm: str, stage: str, status: str, detail: str = "") -> None:
        self.timeline.record(self.label if vm == HOST else vm, stage, status, detail)
        self.timeline.inner.stage(vm, stage, status, detail)


# --- the file ---------------------------------------------------------------------------------------------


def write_timeline(path: Path, document: Mapping[str, Any]) -> None:
    """Write the timeline atomically (readers see the last run's or this one's, never a mix)."""
    atomic_write(path, json.dumps(document, sort_keys=True) + "\n")  # no indent: json's C encoder


def save(path: Path, timeline: TimelineProgress, **meta: Any) -> bool:
    """Write the run's timeline; a failure to write is logged, never raised (the run itself worked or not)."""
    try:
        write_timeline(path, timeline.document(**meta))
    except (OSError, TypeError, ValueError) as exc:
        log.warning("could not write the run's timeline to %s: %s", path, exc)
        return False
    return True


def load_timeline(path: Path) -> dict[str, Any]:
    """The timeline document at ``path`` (OSError when missing, ValueError when it is not one)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("events"), list) or "lab" not in data:
        raise ValueError(f"{path} is not a labctl timeline")
    return data


# --- events -> intervals (pure) ---------------------------------------------------------------------------


@dataclass
class Interval:
    """One stage of one row, from its first start event to its end (``status``: done, skip, failed, or
    unfinished when the run ended first); ``after`` names the intervals it waited on."""

    id: str
    row: str
    stage: str
    kind: Kind
    start: float
    end: float
    status: str
    wait: bool = False
    detail: str = ""
    steps: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


def is_host_row(row: str, vms: Iterable[str]) -> bool:
    return row not in set(vms)


def kind_of(row_is_host: bool, stage: str) -> Kind:
    """How a stage is coloured: host steps; a VM's create, boot and waits, bootstrap, verify."""
    if row_is_host:
        return "host"
    if stage == READY:
        return "ready"
    if stage == QUEUED:
        return "queue"
    row = BY_NAME.get(stage)
    if row is None:
        return "other"
    if row.name == "verify":
        return "verify"
    phases: dict[str, Kind] = {"build": "create", "ready": "boot", "bootstrap": "bootstrap"}
    return phases[row.phase]


def intervals(events: Sequence[Event], vms: Sequence[str], end_of_run: float | None = None) -> list[Interval]:
    """The intervals of a run's events, in the order they began, with what each waited on.

    A start while the same row's stage is open is a step of it (its detail kept in ``steps``); a VM's stages
    wait on the one before; its first waits on the host steps that ended before it began, or on a free worker
    (a ``queued`` interval) when it began only after another VM's chain ended."""
    vm_set = set(vms)
    out: list[Interval] = []
    open_: dict[tuple[str, str], Interval] = {}
    used: dict[str, int] = {}
    last_t = max((e.t for e in events), default=0.0)
    finish = max(end_of_run if end_of_run is not None else last_t, last_t)

    def new(row: str, stage: str, t: float) -> Interval:
        base = f"{row}/{stage}"
        used[base] = used.get(base, 0) + 1
        ident = base if used[base] == 1 else f"{base}#{used[base]}"
        host = row not in vm_set
        item = Interval(ident, row, stage, kind_of(host, stage), t, t, "unfinished",
                        wait=not host and stage in WAIT_STAGES)
        out.append(item)
        return item

    for e in events:
        key = (e.row, e.stage)
        if e.status == "start":
            current = open_.get(key)
            if current is None:
                current = open_[key] = new(e.row, e.stage, e.t)
                current.detail = e.detail
            elif e.detail:
                current.steps.append(e.detail)
            continue
        current = open_.pop(key, None) or new(e.row, e.stage, e.t)
        current.end = e.t
        current.status = e.status
        if e.detail:
            current.detail = e.detail
    for current in open_.values():
        current.end = finish
    _link(out, vm_set)
    return out


def _link(items: list[Interval], vms: set[str]) -> None:
    """Fill ``after``; insert the queued waits of VMs that began only when another VM's chain had ended."""
    hosts = [i for i in items if i.row not in vms]
    chain_ends: dict[str, float] = {}  # VM -> when its chain ended (ready, or its failure)
    for i in items:
        if i.row in vms and (i.stage == READY or i.status == "failed"):
            chain_ends[i.row] = max(chain_ends.get(i.row, 0.0), i.end)
    by_row: dict[str, list[Interval]] = {}
    for i in items:
        if i.row in vms:
            by_row.setdefault(i.row, []).append(i)
    queued: list[Interval] = []
    for row, own in by_row.items():
        first = own[0]
        before = [h for h in hosts if h.end <= first.start]
        anchor = max(before, key=lambda h: h.end) if before else None
        freed = [t for other, t in chain_ends.items() if other != row and t <= first.start]
        if freed:
            start = anchor.end if anchor is not None else 0.0
            wait = Interval(f"{row}/{QUEUED}", row, QUEUED, "queue", start, first.start, "done", wait=True,
                            detail="waiting for a free worker (--max-workers)",
                            after=[anchor.id] if anchor is not None else [])
            queued.append(wait)
            first.after = [wait.id]
        elif anchor is not None:
            first.after = [anchor.id]
        for prev, cur in pairwise(own):
            cur.after = [prev.id]
            # A host step done inside a VM's stage (the Docker zip uploaded once for the lab) held that stage.
            cur.after += [h.id for h in hosts if h.stage == cur.stage and cur.start <= h.start and h.end <= cur.end]
    for wait in queued:
        index = next(k for k, i in enumerate(items) if i.row == wait.row)
        items.insert(index, wait)


# --- the simulator's modeled intervals (pure) ------------------------------------------------------------


@dataclass(frozen=True)
class ModeledOp:
    """One operation the simulator modeled: who (host or a VM), what, when in modeled seconds."""

    actor: str
    key: str
    start: float
    end: float


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return None


def _op(actor: Any, key: Any, start: Any, end: Any, host_label: str) -> ModeledOp | None:
    lo, hi = _number(start), _number(end)
    if not isinstance(actor, str) or lo is None or hi is None or hi < lo:
        return None
    return ModeledOp(host_label if actor == HOST else actor, str(key), lo, hi)


def modeled_ops(report: Mapping[str, Any] | None, host_label: str = HOST) -> list[ModeledOp]:
    """The modeled intervals of a simulator's clock report (its ``timeline``: ``actors`` maps each actor to rows
    in ``columns`` order, key/start/end; a plain list of {actor, key, start, end} is read too); [] without one.
    Its "host" actor is renamed ``host_label`` (one row per host of a pool)."""
    raw: Any = (report or {}).get("timeline")
    ops: list[ModeledOp | None] = []
    if isinstance(raw, Mapping) and isinstance(raw.get("actors"), Mapping):
        columns = list(raw.get("columns") or ["key", "start", "end"])
        at = {name: columns.index(name) for name in ("key", "start", "end") if name in columns}
        if len(at) == 3:
            for actor, rows in raw["actors"].items():
                for row in rows if isinstance(rows, list) else []:
                    if isinstance(row, list | tuple) and len(row) > max(at.values()):
                        ops.append(_op(actor, row[at["key"]], row[at["start"]], row[at["end"]], host_label))
    elif isinstance(raw, list):
        for e in raw:
            if isinstance(e, Mapping):
                ops.append(_op(e.get("actor"), e.get("key", ""), e.get("start"), e.get("end"), host_label))
    return sorted((o for o in ops if o is not None), key=lambda o: (o.actor, o.start, o.end))


def op_kind(row_is_host: bool, key: str) -> Kind:
    """The colour of a modeled operation, from its name (durations.yaml's keys)."""
    stage = _OP_STAGE.get(key, ())
    if row_is_host:
        return "host"
    if stage:
        return kind_of(False, stage[0])
    return "other"


# Which stage of the table causes each modeled operation (durations.yaml keys), first candidate first. An
# operation not named here (a PowerShell Direct command, a poll) belongs to the stage running at the time.
_OP_STAGE: dict[str, tuple[str, ...]] = {
    "new_vhd_differencing": ("disk",), "new_vhd_dynamic": ("disk",), "new_vhd_fixed_per_gb": ("disk",),
    "mount_vhd": ("answer-file",), "file_write": ("answer-file",), "dismount_vhd": ("answer-file",),
    "new_vm": ("vm",), "set_vm": ("configure",), "start_vm": ("start",),
    "first_boot_specialize_oobe": ("heartbeat",), "first_boot_offline_features": ("heartbeat",),
    "boot_to_heartbeat": ("heartbeat",), "vm_provisioning_mslab": ("heartbeat",),
    "ps_direct_logon": ("logon",),
    "install_feature_containers": ("features",), "install_feature_hyperv": ("features",),
    "guest_reboot": ("features",), "stop_vm": ("features",),
    "copy_vm_file_per_mb": ("docker",), "docker_install": ("docker",), "docker_wait_poll": ("docker",),
    "image_pull_nanoserver": ("images",), "image_pull_servercore": ("images",), "image_extract_per_gb": ("images",),
    "container_start_process": ("verify",), "container_start_hyperv": ("verify",),
    "new_vm_switch": ("switch",), "new_net_nat": ("nat",),
}


def on_modeled_time(items: Sequence[Interval], ops: Sequence[ModeledOp], vms: Sequence[str]) -> list[Interval]:
    """The stage intervals placed on the simulator's modeled time.

    Each row's operations, in modeled order, go to the stage that causes them (``_OP_STAGE``), never to one
    before the stage the previous operation went to (a boot after the features' restart stays in features);
    others to the stage reached so far. On a host row an operation of a VM's stage (a disk or VM the simulator
    books to the host) places nothing: it shows among the modeled operations. A stage spans its operations; one
    without any sits where the stage before it ended. Times start at 0 with the run's first modeled operation."""
    origin = min((o.start for o in ops), default=0.0)
    by_row: dict[str, list[Interval]] = {}
    for i in items:
        if i.stage != QUEUED:
            by_row.setdefault(i.row, []).append(i)
    spans: dict[str, tuple[float, float]] = {}
    for row, own in by_row.items():
        at = 0
        for op in (o for o in ops if o.actor == row):
            wanted = _OP_STAGE.get(op.key, ())
            found = next((k for k in range(at, len(own)) if own[k].stage in wanted), None)
            if found is None and wanted and row not in vms:
                continue
            at = found if found is not None else at
            holder = own[at].id
            lo, hi = spans.get(holder, (op.start, op.end))
            spans[holder] = (min(lo, op.start), max(hi, op.end))
    placed: dict[str, Interval] = {}
    out: list[Interval] = []
    for i in items:
        if i.stage == QUEUED:
            continue
        copy = Interval(i.id, i.row, i.stage, i.kind, 0.0, 0.0, i.status, i.wait, i.detail, list(i.steps),
                        list(i.after))
        if i.id in spans:
            copy.start, copy.end = spans[i.id][0] - origin, spans[i.id][1] - origin
        else:
            prev = next((placed[a] for a in i.after if a in placed), None)
            copy.start = copy.end = prev.end if prev is not None else 0.0
        placed[i.id] = copy
        out.append(copy)
    for i in items:  # a queued wait lasts from what it waited on until the VM's first stage began
        if i.stage != QUEUED:
            continue
        first = next((c for c in out if c.row == i.row), None)
        anchor = next((placed[a] for a in i.after if a in placed), None)
        start = anchor.end if anchor is not None else 0.0
        end = first.start if first is not None else start
        out.insert(out.index(first) if first is not None else len(out),
                   Interval(i.id, i.row, i.stage, i.kind, start, max(start, end), i.status, True, i.detail, [],
                            list(i.after)))
    return out


# --- what a report draws (pure) ---------------------------------------------------------------------------


@dataclass
class Chart:
    """The rows (host rows first, then the VMs in the lab's order) and their bars, on one time axis."""

    lab: str
    host: str
    simulated: bool
    profile: str | None
    axis: Axis
    axis_label: str
    note: str
    rows: list[str]
    vms: list[str]
    bars: list[Interval]
    span: float
    modeled_ops: list[ModeledOp] = field(default_factory=list)  # the simulator's own, drawn below the stages
    started_at: str = ""


def _clock_ops(document: Mapping[str, Any]) -> list[ModeledOp]:
    clocks = document.get("clocks") or {}
    ops: list[ModeledOp] = []
    if isinstance(clocks, Mapping):
        for label, report in clocks.items():
            if isinstance(report, Mapping):
                ops += modeled_ops(report, str(label))
    return ops


def chart(document: Mapping[str, Any]) -> Chart:
    """What ``labctl report`` draws from a timeline document."""
    vms = [str(v) for v in document.get("vms") or []]
    events = [Event.from_json(e) for e in document.get("events") or []]
    elapsed = _number(document.get("elapsed_seconds")) or 0.0
    items = intervals(events, vms, elapsed)
    seen = list(dict.fromkeys(i.row for i in items))
    host_rows = [r for r in seen if r not in vms]
    host_rows.sort(key=lambda r: (r != HOST, r))
    rows = host_rows + vms  # every VM of the lab, one it never reached too (an empty row)
    simulated = bool(document.get("simulated"))
    profile = document.get("profile")
    ops = _clock_ops(document) if simulated else []
    common: dict[str, Any] = {
        "lab": str(document.get("lab", "")), "host": str(document.get("host", "")), "simulated": simulated,
        "profile": str(profile) if profile else None, "rows": rows, "vms": vms,
        "started_at": str(document.get("started_at") or "")}
    if ops:
        bars = on_modeled_time(items, ops, vms)
        span = max([b.end for b in bars] + [0.0])
        return Chart(axis="modeled", axis_label="modeled (simulated host) seconds", bars=bars, span=span,
                     note=("modeled time: the simulator's model of how long a real Hyper-V host takes, each stage "
                           "placed by the operations it caused; not this run's wall clock"),
                     modeled_ops=ops, **common)
    span = max([i.end for i in items] + [elapsed, 0.0])
    if not simulated:
        note = "wall-clock time of the run"
    elif profile == "instant":
        note = ("wall-clock time of this run: the simulator's instant profile takes no time for what a real host "
                "would wait for, and its clock gave no modeled intervals")
    else:
        note = f"wall-clock time of this run on the simulated host ({profile or 'unknown'} profile)"
    return Chart(axis="wall", axis_label="wall-clock seconds since the run began", bars=items, span=span,
                 note=note, modeled_ops=ops, **common)
