"""The simulated clock and the time profiles.

``instant``: modeled durations take no wall time and slow transitions complete at once, but each
one is still accounted, so a run can report how long the real thing would have taken.
``realistic``: durations come from public figures (durations.yaml) and are divided by ``speedup``;
the simulated clock runs ``speedup`` times faster than the wall clock.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DURATIONS_FILE = Path(__file__).parent / "durations.yaml"
PROFILES = ("instant", "realistic")


def load_durations(path: Path = DURATIONS_FILE) -> dict[str, float]:
    """Modeled duration, in seconds, of each operation (key -> seconds)."""
    raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {k: float(v["seconds"]) for k, v in raw.items()}


@dataclass
class Clock:
    """Simulated time: ``now()`` in simulated seconds since the epoch."""

    profile: str = "instant"
    speedup: float = 1.0
    durations: dict[str, float] = field(default_factory=load_durations)
    _wall0: float = field(default_factory=time.time)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Modeled seconds spent per actor ("host", a VM name): what a real host would have spent.
    modeled: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown time profile {self.profile!r}; choose one of {', '.join(PROFILES)}")
        if self.speedup <= 0:
            raise ValueError("speedup must be > 0")

    @property
    def realistic(self) -> bool:
        return self.profile == "realistic"

    def now(self) -> float:
        """Simulated epoch seconds."""
        wall = time.time()
        if not self.realistic:
            return wall
        return self._wall0 + (wall - self._wall0) * self.speedup

    def duration(self, key: str) -> float:
        """Modeled seconds for an operation key (0 for unknown keys is a bug: raise)."""
        return self.durations[key]

    def account(self, actor: str, key: str, factor: float = 1.0) -> float:
        """Record that ``actor`` spent the modeled duration of ``key``; return those seconds."""
        seconds = self.duration(key) * factor
        with self._lock:
            self.modeled[actor] += seconds
        return seconds

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

    def report(self) -> dict[str, Any]:
        """Modeled seconds per actor and an estimate of the makespan (host + slowest VM)."""
        with self._lock:
            per_actor = dict(self.modeled)
        host = per_actor.get("host", 0.0)
        vms = [v for k, v in per_actor.items() if k != "host"]
        return {
            "profile": self.profile,
            "speedup": self.speedup,
            "modeled_seconds": per_actor,
            "estimated_makespan_seconds": host + (max(vms) if vms else 0.0),
        }
