"""CONTRACT SKELETON (the runtime owner replaces the body): runs PSRP pipelines against handlers.

- ``RawCommand(name, params, is_script)``: ``params`` is a list of (name or None for positional,
  neutral value) in the order the client sent them; values are labctl.sim.values types or plain
  Python (str, int, bool, float, None, list, dict, PSObj for deserialized objects).
- ``Runtime(world, catalog=None, registry=None)``; ``runtime.run(statements, input, sink, session)``
  runs each statement (a list of piped commands) in order; raises PSError when a terminating
  error ends the pipeline (the glue then fails the PSRP pipeline with that ErrorRecord).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from labctl.sim.catalog import Catalog, load_catalog
from labctl.sim.cmdlets.base import REGISTRY, Registration, Session, StreamSink
from labctl.sim.errors import command_not_found
from labctl.sim.model.world import World


@dataclass
class RawCommand:
    """One command as the client sent it."""

    name: str
    params: list[tuple[str | None, Any]] = field(default_factory=list)
    is_script: bool = False


class Runtime:
    """Binds and dispatches commands; one instance serves every shell of a simulator."""

    def __init__(self, world: World, catalog: Catalog | None = None,
                 registry: dict[str, Registration] | None = None) -> None:
        self.world = world
        self.catalog = catalog or load_catalog()
        self.registry = registry if registry is not None else REGISTRY

    def run(self, statements: list[list[RawCommand]], input: list[Any], sink: StreamSink,
            session: Session) -> None:
        for statement in statements:
            for cmd in statement:
                raise command_not_found(cmd.name)
