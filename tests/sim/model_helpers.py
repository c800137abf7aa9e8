"""Shared helpers for the host model tests: a fresh World, a fake sink, hand-bound calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hvsim.core.clock import Clock
from hvsim.core.counters import Counters
from hvsim.core.faults import FaultPlan
from hvsim.powershell.catalog import CmdletSpec
from hvsim.powershell.cmdlet import REGISTRY, BoundCall, CmdletContext, Session
from hvsim.powershell.errors import PSError
from hvsim.world import World

GB = 1024**3
MB = 1024**2


def make_world(state_dir: Path | None = None, **host: Any) -> World:
    return World(state_dir, Clock(), FaultPlan(), Counters(), host_config=host or None)


class FakeSink:
    """Collects the streams a handler writes."""

    def __init__(self) -> None:
        self.outputs: list[Any] = []
        self.errors: list[PSError] = []
        self.warnings: list[str] = []
        self.verbose_lines: list[str] = []

    def output(self, value: Any) -> None:
        self.outputs.append(value)

    def error(self, err: PSError) -> None:
        self.errors.append(err)

    def warning(self, text: str) -> None:
        self.warnings.append(text)

    def verbose(self, text: str) -> None:
        self.verbose_lines.append(text)


def call(world: World, name: str, sink: FakeSink | None = None, error_action: str = "Continue",
         **params: Any) -> tuple[list[Any], FakeSink]:
    """Run the registered handler for ``name`` with hand-bound parameters."""
    import hvsim.hyperv.handlers.host
    import hvsim.hyperv.handlers.vm
    import hvsim.networking.handlers
    import hvsim.storage.handlers.disks
    import hvsim.storage.handlers.files
    import hvsim.storage.handlers.vhd  # noqa: F401  (registration)

    sink = sink or FakeSink()
    reg = REGISTRY[name.lower()]
    spec = CmdletSpec(name=name, type=f"Test.{name.replace('-', '')}", module="", default_set=None, parameters={})
    ctx = CmdletContext(world=world, session=Session(username="Administrator"), sink=sink,
                        call_error_action=error_action)
    with world.lock:
        out = list(reg.handler(ctx, BoundCall(spec, "__AllParameterSets", params)) or [])
    return out, sink
