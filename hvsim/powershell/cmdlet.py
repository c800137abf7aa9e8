"""The contract between the runtime and cmdlet handlers.

A handler is ``def handler(ctx: CmdletContext, call: BoundCall) -> Iterable[Any] | None``,
registered with ``@cmdlet("Get-VM")``. It reads ``call`` (parameters already bound and converted
against the catalog), asks the model to act, and returns output values (PSObj, str, int, ...).
Non-terminating errors go to ``ctx.write_error``; raising PSError is terminating for the
statement. Handlers never see XML, HTTP or psrpcore.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from hvsim.powershell.catalog import CmdletSpec
from hvsim.powershell.errors import PSError

if TYPE_CHECKING:
    from hvsim.world import World

T = TypeVar("T")


@dataclass
class BoundCall:
    """A cmdlet call after parameter binding."""

    spec: CmdletSpec
    parameter_set: str
    params: dict[str, Any]  # canonical parameter name -> converted value; switches -> True/False
    invoked_as: str = ""  # the name or alias the caller used

    def has(self, name: str) -> bool:
        return name in self.params

    def get(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    @property
    def error_action(self) -> str:
        value = self.params.get("ErrorAction")
        return str(value) if value is not None else "Continue"

    @property
    def warning_action(self) -> str:
        value = self.params.get("WarningAction")
        return str(value) if value is not None else "Continue"


class StreamSink(Protocol):
    """Where a pipeline's streams go (the PSRP glue implements it)."""

    def output(self, value: Any) -> None: ...
    def error(self, err: PSError) -> None: ...
    def warning(self, text: str) -> None: ...
    def verbose(self, text: str) -> None: ...


@dataclass
class Session:
    """Per runspace pool state: who connected, and their PowerShell Direct sessions."""

    username: str
    client_address: str = "127.0.0.1"
    ps_sessions: dict[int, Any] = field(default_factory=dict)
    next_session_id: int = 1


@dataclass
class CmdletContext:
    """What a handler may use while it runs."""

    world: World
    session: Session
    sink: StreamSink
    call_error_action: str = "Continue"
    call_warning_action: str = "Continue"
    input_object: Any = None  # the current pipeline input object (process-record semantics)
    all_input: list[Any] = field(default_factory=list)  # for handlers registered collects_input

    def write_error(self, err: PSError) -> None:
        """A non-terminating error; -ErrorAction Stop turns it terminating."""
        if self.call_error_action == "Stop":
            err.terminating = True
            raise err
        if self.call_error_action in ("SilentlyContinue", "Ignore"):
            return
        self.sink.error(err)

    def each(self, items: Iterable[T], fn: Callable[[T], Any]) -> list[Any]:
        """Run ``fn`` per item and collect what it returns (a list extends, None adds nothing). A PSError for one
        item is non-terminating, written before the next item, as a cmdlet with many targets behaves; a
        terminating one (-ErrorAction Stop turns them so) ends the call."""
        out: list[Any] = []
        for item in items:
            try:
                r = fn(item)
            except PSError as exc:
                if exc.terminating:
                    raise
                self.write_error(exc)
                continue
            if r is not None:
                out.extend(r if isinstance(r, list) else [r])
        return out

    def write_warning(self, text: str) -> None:
        if self.call_warning_action in ("SilentlyContinue", "Ignore"):
            return
        self.sink.warning(text)

    def write_verbose(self, text: str) -> None:
        self.sink.verbose(text)

    @contextmanager
    def unlocked(self) -> Iterator[None]:
        """Release the world lock around a blocking wait (a modeled duration)."""
        self.world.lock.release()
        try:
            yield
        finally:
            self.world.lock.acquire()

    def spend(self, actor: str, key: str, factor: float = 1.0, *, lane: str | None = None) -> float:
        """Place the modeled duration ``key`` for ``actor`` on the timeline (``lane``: what it acts on, see
        hvsim/core/clock.py) and block for the interval it got (scaled)."""
        seconds = self.world.clock.account(actor, key, factor, lane=lane)
        if not self.world.clock.fanning():  # a fan-out's branches run at once: it waits once, at its end
            self.idle(seconds)
        return seconds

    def idle(self, seconds: float) -> None:
        """Block for ``seconds`` of simulated time (realistic profile), other requests going on meanwhile."""
        if self.world.clock.wall_seconds(seconds) > 0:
            with self.unlocked():
                self.world.clock.sleep(seconds)


Handler = Callable[[CmdletContext, BoundCall], Iterable[Any] | None]


@dataclass(frozen=True)
class Registration:
    handler: Handler
    collects_input: bool = False  # end-block semantics: one call with all input in ctx.all_input


REGISTRY: dict[str, Registration] = {}


def cmdlet(name: str, *, collects_input: bool = False) -> Callable[[Handler], Handler]:
    """Register a handler for the catalog cmdlet ``name``."""

    def deco(fn: Handler) -> Handler:
        key = name.lower()
        if key in REGISTRY:
            raise ValueError(f"handler for {name} registered twice")
        REGISTRY[key] = Registration(fn, collects_input)
        return fn

    return deco
