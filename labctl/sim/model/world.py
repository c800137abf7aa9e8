"""CONTRACT SKELETON (the model owner replaces the body): the whole simulated host and its lock.

Public surface the other parts rely on:
- ``World(state_dir: Path | None, clock: Clock, faults: FaultPlan, counters: Counters)``
- ``world.lock`` (threading.RLock; the runtime holds it while a cmdlet handler runs)
- ``world.clock``, ``world.faults``, ``world.counters``
- ``world.save()`` atomic write of the persistent state to state_dir/state.json (no-op without state_dir)
- ``World.open(state_dir, clock, faults, counters)`` loads state.json if present, else a fresh host
- ``world.reset()`` back to a fresh simulated host (base disks present, nothing else)
- ``world.dirty`` set by mutating handlers; the runtime saves after a pipeline when it is set
"""

from __future__ import annotations

import threading
from pathlib import Path

from labctl.sim.clock import Clock
from labctl.sim.counters import Counters
from labctl.sim.faults import FaultPlan


class World:
    """The simulated host."""

    def __init__(self, state_dir: Path | None, clock: Clock, faults: FaultPlan, counters: Counters) -> None:
        self.state_dir = state_dir
        self.clock = clock
        self.faults = faults
        self.counters = counters
        self.lock = threading.RLock()
        self.dirty = False

    @classmethod
    def open(cls, state_dir: Path | None, clock: Clock, faults: FaultPlan, counters: Counters) -> World:
        return cls(state_dir, clock, faults, counters)

    def save(self) -> None:
        self.dirty = False

    def reset(self) -> None:
        self.dirty = True
