"""The simulated clock, the time profiles and the simulated timeline.

``instant``: modeled durations take no wall time and slow transitions complete at once, but each one is placed
on the simulated timeline, so a run can report how long the real thing would have taken.
``realistic``: the simulated clock runs ``speedup`` times faster than the wall clock, and a handler blocks for
the wall time of the interval the timeline gives it (simulated interval / speedup).

The timeline: every modeled operation is an interval (actor, key, start, end). Its length is its base duration
(durations.yaml ``seconds``) stretched by contention for the host's shared resources (``uses``, see
hvsim/core/resources.py), so the same arithmetic holds in both profiles. Where it starts:

- realistic: when the request that caused it runs (simulated now), after what the same request did before;
- instant: nothing waits in wall time, so the start follows causality instead. Each *lane* (a VM, a disk path,
  an object a call names) remembers when the last operation on it ended; a pipeline (``call``) starts at the
  latest end of the lanes it touches and of the host lane (host-wide steps such as a new switch, which precede
  everything after them), and its operations run one after the other. A VM's boot or setup is a background
  interval: the call that started it returns at once, the VM's lane ends when the guest is ready, and the next
  operation on that VM (PowerShell Direct after the readiness polls) starts there. Lanes, not connections:
  labctl multiplexes its workers' calls on a pool of connections, so a connection's history is not a worker's.

The makespan is the span of the timeline: last end minus first start.
"""

from __future__ import annotations

import contextvars
import heapq
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hvsim.core.resources import RESOURCES, Capacity, ResourceBook

DURATIONS_FILE = Path(__file__).parent / "durations.yaml"
PROFILES = ("instant", "realistic")
HOST = "host"
# Bounds of the timeline kept for GET /clock: intervals in total, and rows per actor in the report.
MAX_INTERVALS = 20_000
MAX_ROWS_PER_ACTOR = 400


@dataclass(frozen=True)
class Duration:
    """One operation key: its base seconds and the resources it uses over them (totals, resources.py units)."""

    seconds: float
    uses: dict[str, float] = field(default_factory=dict)


def load_operations(path: Path = DURATIONS_FILE) -> dict[str, Duration]:
    """Every operation key of durations.yaml with its seconds and resource uses."""
    raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    out: dict[str, Duration] = {}
    for key, v in raw.items():
        uses = {str(r): float(a) for r, a in dict(v.get("uses") or {}).items()}
        bad = set(uses) - set(RESOURCES)
        if bad:
            raise ValueError(f"durations.yaml {key}: unknown resource(s) {', '.join(sorted(bad))}")
        out[key] = Duration(float(v["seconds"]), uses)
    return out


def load_durations(path: Path = DURATIONS_FILE) -> dict[str, float]:
    """Modeled duration, in seconds, of each operation (key -> seconds)."""
    return {k: d.seconds for k, d in load_operations(path).items()}


@dataclass(frozen=True)
class Interval:
    actor: str
    key: str
    start: float
    end: float


@dataclass
class _Call:
    """One pipeline's place on the timeline (instant: from its lanes; realistic: from simulated now)."""

    cursor: float
    touched: set[str] = field(default_factory=set)


_current: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("hvsim_clock_call", default=None)
# Inside a fan-out the handlers do not sleep per operation: the branches run at the same time, and the fan-out
# waits once, for the last of them (see Clock.fan_out).
_fanning: contextvars.ContextVar[bool] = contextvars.ContextVar("hvsim_clock_fanning", default=False)

# Invoke-Command's default -ThrottleLimit: at most 32 concurrent connections (PowerShell-Docs, Invoke-Command.md).
THROTTLE_LIMIT = 32


@dataclass
class FanOut:
    """Several branches of one call that run at the same time, at most ``limit`` at once (Invoke-Command to
    several VMs); ``wait_seconds`` afterwards: how long the call still has to wait for the last branch."""

    clock: Clock
    call: _Call | None
    start: float
    limit: int
    ends: list[float] = field(default_factory=list)
    _running: list[float] = field(default_factory=list)
    wait_seconds: float = 0.0

    @contextmanager
    def branch(self) -> Iterator[None]:
        """One branch: it starts when the fan-out did, or when a running branch ends once ``limit`` run."""
        c = self.call
        if c is None:
            yield
            return
        with self.clock._lock:
            c.cursor = self.start if len(self._running) < self.limit else heapq.heappop(self._running)
        try:
            yield
        finally:
            with self.clock._lock:
                heapq.heappush(self._running, c.cursor)
                self.ends.append(c.cursor)


@dataclass
class Clock:
    """Simulated time: ``now()`` in simulated seconds since the epoch; the timeline of what ran."""

    profile: str = "instant"
    speedup: float = 1.0
    durations: dict[str, float] = field(default_factory=load_durations)
    operations: dict[str, Duration] = field(default_factory=load_operations)
    capacity: Capacity = field(default_factory=Capacity)
    _wall0: float = field(default_factory=time.time)
    _lock: Any = field(default_factory=threading.RLock, repr=False)
    # Modeled base seconds spent per actor ("host", a VM name): the work, before any contention.
    modeled: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    intervals: list[Interval] = field(default_factory=list)
    dropped: int = 0
    _book: ResourceBook = field(init=False, repr=False)
    _lanes: dict[str, float] = field(default_factory=dict, repr=False)  # lane -> end of its last operation
    _host_lane: float = 0.0

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown time profile {self.profile!r}; choose one of {', '.join(PROFILES)}")
        if self.speedup <= 0:
            raise ValueError("speedup must be > 0")
        self._book = ResourceBook(self.capacity)

    @property
    def realistic(self) -> bool:
        return self.profile == "realistic"

    def now(self) -> float:
        """Simulated epoch seconds."""
        wall = time.time()
        if not self.realistic:
            return wall
        return self._wall0 + (wall - self._wall0) * self.speedup

    def _sim_now(self) -> float:
        """Simulated seconds since the clock started (the timeline's origin in the realistic profile)."""
        return (time.time() - self._wall0) * self.speedup

    def set_capacity(self, capacity: Capacity) -> None:
        """The host's resources (from its settings); only before anything is placed, or on a reset."""
        with self._lock:
            self.capacity = capacity
            self._book = ResourceBook(capacity, self._book.profiles)

    def reset_timeline(self) -> None:
        """Forget the timeline, the lanes, the resource usage and the accounted seconds (a fresh host)."""
        with self._lock:
            self.modeled.clear()
            self.intervals.clear()
            self.dropped = 0
            self._lanes.clear()
            self._host_lane = 0.0
            self._book = ResourceBook(self.capacity)

    def duration(self, key: str) -> float:
        """Modeled seconds for an operation key (0 for unknown keys is a bug: raise)."""
        return self.durations[key]

    # -- calls and lanes -----------------------------------------------------------------------------
    @contextmanager
    def call(self) -> Iterator[None]:
        """One request (a pipeline) on the timeline: its operations run in order from where it starts; when it
        ends, every lane it touched ends there too."""
        c = _Call(self._sim_now() if self.realistic else self._host_lane)
        token = _current.set(c)
        try:
            yield
        finally:
            _current.reset(token)
            self._commit(c)

    @contextmanager
    def fan_out(self, limit: int = THROTTLE_LIMIT) -> Iterator[FanOut]:
        """Run the branches opened in the block at the same time (each with ``fan.branch()``); the call goes on
        when the last one ends. The realistic profile does not sleep per operation inside; the caller waits
        ``wait_seconds`` once afterwards (outside any lock)."""
        c = _current.get()
        start = 0.0
        if c is not None:
            start = max(c.cursor, self._sim_now()) if self.realistic else c.cursor
        fan = FanOut(self, c, start, max(1, limit))
        token = _fanning.set(True)
        try:
            yield fan
        finally:
            _fanning.reset(token)
            if c is not None:
                end = max(fan.ends, default=start)
                c.cursor = end
                if self.realistic:
                    fan.wait_seconds = max(0.0, end - self._sim_now())

    @staticmethod
    def fanning() -> bool:
        """Whether the current operation is a branch of a fan-out (its handler must not sleep for it)."""
        return _fanning.get()

    def touch(self, lane: str) -> None:
        """The current call acts on ``lane`` (a VM name, a path): it starts no earlier than the lane's last end."""
        c = _current.get()
        if c is None:
            return
        with self._lock:
            self._touch(c, lane)

    def _touch(self, c: _Call, lane: str) -> None:
        key = lane.lower()
        c.touched.add(key)
        if not self.realistic:
            c.cursor = max(c.cursor, self._lanes.get(key, 0.0))

    def _commit(self, c: _Call) -> None:
        with self._lock:
            for key in c.touched:
                self._lanes[key] = max(self._lanes.get(key, 0.0), c.cursor)

    def _place(self, c: _Call, actor: str, key: str, factor: float, start: float) -> float:
        op = self.operations.get(key)
        base = self.durations[key] * factor
        # The resource rates belong to the operation: when its seconds are changed (a test shortens a boot), its
        # totals scale with them.
        scale = factor * (self.durations[key] / op.seconds) if op is not None and op.seconds > 0 else 0.0
        uses = {r: a * scale for r, a in op.uses.items()} if op is not None else {}
        end = self._book.place(start, base, uses)
        self.modeled[actor] += base
        if len(self.intervals) < MAX_INTERVALS:
            self.intervals.append(Interval(actor, key, start, end))
        else:
            self.dropped += 1
        return end

    def account(self, actor: str, key: str, factor: float = 1.0, *, lane: str | None = None,
                background: bool = False) -> float:
        """Place ``key`` (times ``factor``) for ``actor`` on the timeline; return its length in simulated seconds
        (its base duration, stretched by contention). ``lane`` defaults to the actor (none for the host: a
        host-wide step). ``background``: the guest goes on after the call returns (a boot): the lane moves to
        the interval's end, the call does not."""
        lane = lane if lane is not None else (None if actor == HOST else actor)
        own = _current.get()
        c = own or _Call(self._sim_now() if self.realistic else self._host_lane)
        with self._lock:
            if lane is not None:
                self._touch(c, lane)
            start = max(c.cursor, self._sim_now()) if self.realistic else c.cursor
            if background and lane is not None:
                start = max(start, self._lanes.get(lane.lower(), 0.0))
            end = self._place(c, actor, key, factor, start)
            if background and lane is not None:
                self._lanes[lane.lower()] = max(self._lanes.get(lane.lower(), 0.0), end)
            else:
                c.cursor = end
                if lane is None and not c.touched and not self.realistic:
                    self._host_lane = max(self._host_lane, end)
            if own is None:
                self._commit(c)
        return end - start

    def account_parallel(self, items: list[tuple[str, str]]) -> float:
        """Several operations (actor, key) that run at the same time within one call (Stop-VM of many VMs):
        each starts where the call is; the call goes on when the last one ends. Returns that length."""
        own = _current.get()
        c = own or _Call(self._sim_now() if self.realistic else self._host_lane)
        with self._lock:
            for actor, _ in items:
                if actor != HOST:
                    self._touch(c, actor)
            start = max(c.cursor, self._sim_now()) if self.realistic else c.cursor
            ends = [self._place(c, actor, key, 1.0, start) for actor, key in items]
            c.cursor = max(ends, default=start)
            if own is None:
                self._commit(c)
        return c.cursor - start

    # -- waiting ---------------------------------------------------------------------------------------
    def due(self, seconds: float) -> float:
        """Simulated time at which a transition of ``seconds`` that starts now completes."""
        return self.now() + (seconds if self.realistic else 0.0)

    def wall_seconds(self, seconds: float) -> float:
        """Wall-clock seconds a blocking operation of modeled ``seconds`` takes."""
        return seconds / self.speedup if self.realistic else 0.0

    def sleep(self, seconds: float) -> None:
        """Block for a modeled duration (scaled to wall time)."""
        wall = self.wall_seconds(seconds)
        if wall > 0:
            time.sleep(wall)

    # -- the report --------------------------------------------------------------------------------------
    def makespan(self) -> float:
        """Simulated seconds from the first operation's start to the last one's end."""
        with self._lock:
            if not self.intervals:
                return 0.0
            return max(i.end for i in self.intervals) - min(i.start for i in self.intervals)

    def timeline(self) -> dict[str, Any]:
        """Per actor, its intervals as [key, start, end] in seconds from the first start; consecutive intervals
        of the same key merge, and each actor keeps at most MAX_ROWS_PER_ACTOR rows (``truncated`` says so)."""
        with self._lock:
            intervals = list(self.intervals)
            dropped = self.dropped
        origin = min((i.start for i in intervals), default=0.0)
        rows: dict[str, list[list[Any]]] = defaultdict(list)
        truncated: set[str] = set()
        for i in sorted(intervals, key=lambda i: (i.actor, i.start, i.end)):
            mine = rows[i.actor]
            start, end = round(i.start - origin, 3), round(i.end - origin, 3)
            if mine and mine[-1][0] == i.key and mine[-1][2] >= start - 1e-6:
                mine[-1][2] = max(mine[-1][2], end)
                mine[-1][3] += 1
            elif len(mine) < MAX_ROWS_PER_ACTOR:
                mine.append([i.key, start, end, 1])
            else:
                truncated.add(i.actor)
        return {"unit": "simulated seconds from the first operation", "columns": ["key", "start", "end", "count"],
                "actors": dict(rows), "truncated_actors": sorted(truncated), "dropped_intervals": dropped}

    def report(self) -> dict[str, Any]:
        """Modeled seconds per actor, the makespan of the timeline, the host's capacity and the timeline."""
        with self._lock:
            per_actor = dict(self.modeled)
        cap = self.capacity
        return {
            "profile": self.profile,
            "speedup": self.speedup,
            "modeled_seconds": per_actor,
            "estimated_makespan_seconds": self.makespan(),
            "capacity": {"logical_processors": cap.cpu, "disk_mbps": cap.disk_mbps, "disk_iops": cap.disk_iops,
                         "network_mbps": cap.network_mbps},
            "timeline": self.timeline(),
        }
