"""The host's shared resources on the simulated timeline: CPU, disk bandwidth, disk IOPS, external network.

An operation has a base duration (what it takes alone on an idle host, durations.yaml ``seconds``) and the
total amount of each resource it uses over that time (``uses``). Alone it proceeds at full speed; when the
resources it needs are partly taken by operations already placed, it proceeds at the fraction ``p`` of full
speed that the tightest resource allows (``p = min(1, free_r / rate_r)``), so the capacity is never exceeded and
N equal operations that each would saturate a resource take N times as long together. Placement is first come,
first served: an operation placed later never slows down one placed earlier (its time is already promised to a
caller); it fills whatever capacity is left, also earlier in simulated time (backfill). Pure, no I/O, no clock.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Resource names as durations.yaml ``uses`` spells them; units of the amounts there.
CPU = "cpu"  # core-seconds (one logical processor busy for one second)
DISK = "disk_mb"  # megabytes read or written on the host volume that holds the VHDX files
IOPS = "disk_io"  # I/O operations on that volume
NET = "net_mb"  # megabytes over the host's external uplink (registry pulls, downloads)
RESOURCES = (CPU, DISK, IOPS, NET)

_EPS = 1e-9


@dataclass(frozen=True)
class Capacity:
    """What the host can deliver per second of each resource."""

    cpu: float = 16.0  # logical processors
    disk_mbps: float = 3000.0
    disk_iops: float = 400_000.0
    network_mbps: float = 1000.0  # megabits per second

    def per_second(self) -> dict[str, float]:
        return {CPU: self.cpu, DISK: self.disk_mbps, IOPS: self.disk_iops, NET: self.network_mbps / 8.0}

    @classmethod
    def from_host(cls, host: Any) -> Capacity:
        """From a HostConfig (hvsim.hyperv.models.host): logical processors, disk and network settings."""
        d = cls()
        return cls(cpu=float(getattr(host, "logical_processor_count", d.cpu) or d.cpu),
                   disk_mbps=float(getattr(host, "disk_mbps", d.disk_mbps) or d.disk_mbps),
                   disk_iops=float(getattr(host, "disk_iops", d.disk_iops) or d.disk_iops),
                   network_mbps=float(getattr(host, "network_mbps", d.network_mbps) or d.network_mbps))


@dataclass
class Profile:
    """Usage of one resource over simulated time: ``levels[i]`` holds on ``[times[i], times[i+1])``; 0 before the
    first breakpoint and after the last."""

    times: list[float] = field(default_factory=list)
    levels: list[float] = field(default_factory=list)

    def level_at(self, t: float) -> float:
        i = bisect.bisect_right(self.times, t) - 1
        return self.levels[i] if i >= 0 else 0.0

    def next_change(self, t: float) -> float:
        i = bisect.bisect_right(self.times, t)
        return self.times[i] if i < len(self.times) else math.inf

    def _split(self, t: float) -> int:
        """Index of the breakpoint at ``t``, inserting one when needed."""
        i = bisect.bisect_left(self.times, t)
        if i < len(self.times) and self.times[i] == t:
            return i
        self.times.insert(i, t)
        self.levels.insert(i, self.levels[i - 1] if i > 0 else 0.0)
        return i

    def add(self, start: float, end: float, amount: float) -> None:
        if end <= start or amount == 0:
            return
        a = self._split(start)
        b = self._split(end)
        for i in range(a, b):
            self.levels[i] += amount


@dataclass
class ResourceBook:
    """Every resource's usage profile, and the placement of operations on them."""

    capacity: Capacity = field(default_factory=Capacity)
    profiles: dict[str, Profile] = field(default_factory=lambda: {r: Profile() for r in RESOURCES})

    def place(self, start: float, seconds: float, uses: dict[str, float] | None) -> float:
        """Place an operation of base ``seconds`` using ``uses`` (totals) from ``start``; return when it ends."""
        rates = {r: amount / seconds for r, amount in (uses or {}).items() if amount > 0} if seconds > 0 else {}
        if not rates:
            return start + max(seconds, 0.0)
        caps = self.capacity.per_second()
        unknown = set(rates) - set(caps)
        if unknown:
            raise ValueError(f"unknown resource(s) {', '.join(sorted(unknown))}; choose from {', '.join(RESOURCES)}")
        segments: list[tuple[float, float, float]] = []  # (from, to, speed)
        t, left = start, 1.0  # left: the fraction of the work still to do
        while left > _EPS:
            nxt = min(self.profiles[r].next_change(t) for r in rates)
            speed = min([1.0] + [max(caps[r] - self.profiles[r].level_at(t), 0.0) / rates[r] for r in rates])
            if speed <= _EPS:
                if math.isinf(nxt):  # cannot happen: after the last breakpoint every resource is free
                    raise RuntimeError("resource profile never frees up")
                t = nxt
                continue
            finish = t + left * seconds / speed
            if finish <= nxt:
                segments.append((t, finish, speed))
                t, left = finish, 0.0
                break
            segments.append((t, nxt, speed))
            left -= speed * (nxt - t) / seconds
            t = nxt
        for a, b, speed in segments:
            for r, rate in rates.items():
                self.profiles[r].add(a, b, rate * speed)
        return t

    def usage(self, resource: str, t: float) -> float:
        """How much of ``resource`` is in use at simulated time ``t``."""
        return self.profiles[resource].level_at(t)


def host_limit(work: Mapping[str, float], operations: Mapping[str, Any], capacity: Capacity,
               chain: float = 0.0) -> tuple[float, dict[str, float]]:
    """The shortest makespan the host's resources allow for ``work`` (operation key -> how many times it ran,
    factors included: 2.5 for a 2.5 GB ``*_per_gb`` step) whose longest dependency chain takes ``chain`` seconds.

    Per resource, the total use of all operations (``operations[key].uses`` times the count, the
    durations.yaml figures clock.load_operations reads) over what the host delivers per second; the limit is the
    largest of those bounds and the chain. Returns (limit, bounds), bounds keyed by resource name and "chain"."""
    caps = capacity.per_second()
    totals = dict.fromkeys(RESOURCES, 0.0)
    for key, count in work.items():
        op = operations.get(key)
        if op is None:
            raise KeyError(f"unknown operation {key!r} (not in durations.yaml)")
        for r, amount in op.uses.items():
            totals[r] += amount * count
    bounds = {r: totals[r] / caps[r] for r in RESOURCES}
    bounds["chain"] = chain
    return max(bounds.values()), bounds
