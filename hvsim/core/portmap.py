"""Listeners that follow the host's NAT static mappings: the simulated Docker API (guest 2376) and RDP (3389).

On a real host WinNAT forwards ``<host>:<ExternalPort>`` to ``<guest IP>:<InternalPort>``. The simulator plays
both ends: a manager keeps one listener per external port whose TCP mapping leads to a running guest that serves
the internal port, and reconciles after every pipeline (a Simulator hook) and on a timer (a guest that finishes
booting between pipelines). A reconcile never raises; a port it cannot bind is tried again next time.
The surfaces say what a mapping leads to (``wanted``) and how to serve it (``open``); this module only keeps the
set of listeners equal to that.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

RECONCILE_INTERVAL = 2.0


class Listener(Protocol):
    """A served port: what it leads to, and how to close it."""

    @property
    def target(self) -> Any: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class GuestMapping:
    """A TCP static mapping of the host's NATs that leads to a running guest."""

    external_port: int
    internal_ip: str
    vm: Any


def guest_mappings(world: Any, internal_port: int) -> list[GuestMapping]:
    """Every TCP mapping to ``internal_port`` of a running guest's address, one per external port (the first);
    the caller holds the world lock."""
    by_ip: dict[str, Any] = {}
    for vm in list(world.vms.values()):
        if getattr(vm, "state", None) != "Running":
            continue
        for adapter in getattr(vm, "network_adapters", []) or []:
            for ip in vm.guest.ip_addresses(world, vm, adapter.mac_address):
                by_ip.setdefault(str(ip), vm)
    out: dict[int, GuestMapping] = {}
    for nat in world.network.nats:
        for mapping in nat.static_mappings:
            if str(mapping.get("protocol", "TCP")).upper() != "TCP":
                continue
            if int(mapping.get("internal_port", 0)) != internal_port:
                continue
            owner = by_ip.get(str(mapping.get("internal_ip")))
            port = int(mapping.get("external_port", 0))
            if owner is None or not 0 < port < 65536 or port in out:
                continue
            out[port] = GuestMapping(port, str(mapping.get("internal_ip")), owner)
    return list(out.values())


T = TypeVar("T", bound=Hashable)


class MappedPortManager(Generic[T]):
    """One listener per wanted port, kept equal to what ``wanted`` says after every reconcile."""

    label = "mapped port"  # for the log: "simulated <label> of <vm> ..."
    bind_errors: tuple[type[BaseException], ...] = (OSError,)

    def __init__(self, world: Any, host: str = "127.0.0.1", interval: float = RECONCILE_INTERVAL) -> None:
        self.world = world
        self.host = host
        self.interval = interval
        self._listeners: dict[int, Listener] = {}
        self._lock = threading.Lock()  # serializes reconciles (pipeline threads and the timer)
        self._stop = threading.Event()
        self._active = False
        self._thread: threading.Thread | None = None
        self._bind_failures: set[T] = set()

    # -- what a surface says ---------------------------------------------------------------------------------
    def wanted(self) -> dict[int, T]:
        """External port -> what its listener serves, read from the world now."""
        raise NotImplementedError

    def open(self, target: T) -> Listener:
        """Bind and serve ``target`` on this manager's host (raises one of ``bind_errors`` when it cannot)."""
        raise NotImplementedError

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        with self._lock:
            self._active = True
        self.reconcile()
        self._thread = threading.Thread(target=self._loop, name=f"sim-{self.label}-reconcile", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            self._active = False
            listeners = list(self._listeners.values())
            self._listeners.clear()
        for listener in listeners:
            self._close(listener)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.reconcile()

    @property
    def ports(self) -> dict[int, str]:
        """Port -> VM name of every listener (for tests and status)."""
        with self._lock:
            return {port: str(lst.target.vm_name) for port, lst in self._listeners.items()}

    # -- reconcile -------------------------------------------------------------------------------------------
    def reconcile(self) -> None:
        """Open, replace or close listeners so they match the NAT mappings and guests now. Never raises."""
        try:
            wanted = self.wanted()
        except Exception as exc:
            log.error("the simulated %s listeners could not read the host state: %s", self.label,
                      type(exc).__name__, exc_info=log.isEnabledFor(logging.DEBUG))
            return
        with self._lock:
            if not self._active:
                return  # stopped (or not started): a late pipeline must not reopen ports
            for port in [p for p, lst in self._listeners.items() if wanted.get(p) != lst.target]:
                self._close(self._listeners.pop(port))
            for port, target in wanted.items():
                if port in self._listeners:
                    continue
                try:
                    self._listeners[port] = self.open(target)
                    self._bind_failures.discard(target)
                    log.info("simulated %s of %s on %s:%d [SIMULATED]", self.label,
                             getattr(target, "vm_name", "?"), self.host, port)
                except self.bind_errors as exc:
                    # Port taken (or bad material in the guest): tried again at the next reconcile.
                    if target not in self._bind_failures:
                        self._bind_failures.add(target)
                        log.warning("cannot serve the simulated %s of %s on %s:%d: %s", self.label,
                                    getattr(target, "vm_name", "?"), self.host, port, type(exc).__name__)

    def _close(self, listener: Listener) -> None:
        try:
            listener.stop()
        except Exception as exc:
            log.warning("stopping a simulated %s listener failed: %s", self.label, type(exc).__name__)
