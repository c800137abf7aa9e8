"""Fault injection, reproducible from a seed.

A FaultPlan holds rules. Each rule names a kind, what it matches, and when it fires: on the
``after``-th matching event (1-based; default 1) and for ``times`` events (default 1; 0 = always),
or with ``probability``. Kinds:

- ``drop_connection``: the HTTP server closes the socket without answering (match: action).
- ``wsman_fault``: a SOAP fault with ``code`` (default 0x80338012 ERROR_WSMAN_... internal) (match: action).
- ``http_500``: HTTP 500 with an empty body (match: action).
- ``slow_receive``: a Receive waits ``seconds`` before answering (match: action=Receive).
- ``cmdlet_fail``: the cmdlet fails with ``message``/``error_id``/``category`` (match: cmdlet, optional vm, step).
- ``guest_reboot``: the guest of ``vm`` reboots at the next PowerShell Direct call (match: vm).
- ``guest_ignores_shutdown``: the guest of ``vm`` takes a graceful Stop-VM's shutdown request and never shuts
  down: Stop-VM (with or without -Force) waits ``stop_vm_unanswered`` and fails with "Failed to stop.", the VM keeps
  running; -TurnOff still works (match: vm; ``times: 0`` for every stop).
- ``hold``: the cmdlet's request stops for ``seconds`` (default: until the plan is cleared), ``when`` before
  or after the cmdlet ran (match: cmdlet, vm, step). A test holds a call in flight to kill the client there.

``drop_connection`` and ``http_500`` take ``when``: ``before`` (default: the request is never processed),
``after`` (processed, then the answer is lost, as when a link drops after the host acted) or ``any``
(each firing picks one, from the same seeded draw). A rule may match ``key`` too (e.g.
``Command:Start-VM:web01``), to aim a wire-level fault at one pipeline.

Reproducible with parallel clients: a probability is not drawn from one shared random stream (whose order
would follow thread timing) but per event stream. Each event carries a ``key`` naming what the request is
(a pipeline's first cmdlet and its VM, or the WS-Management action), and the n-th event of a key gets the
n-th draw of that key's own stream, seeded by (plan seed, rule, key). The same requests get the same faults
whatever order the threads send them in, so a failing chaos run can be replayed from its seed.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("drop_connection", "wsman_fault", "http_500", "slow_receive", "cmdlet_fail", "guest_reboot",
         "guest_ignores_shutdown", "hold")
WHEN = ("before", "after", "any")


@dataclass
class FaultRule:
    """One injected fault."""

    kind: str
    match: dict[str, str] = field(default_factory=dict)
    after: int = 1
    times: int = 1
    probability: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    seen: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        when = str(self.params.get("when", "before"))
        if when not in WHEN:
            raise ValueError(f"unknown when {when!r}; choose one of {', '.join(WHEN)}")

    def matches(self, event: dict[str, str]) -> bool:
        def one(k: str, v: Any) -> bool:
            if k == "vm" and event.get("vms"):  # a call about several VMs: any of them
                return str(v).lower() in [n.lower() for n in str(event["vms"]).split(",")]
            return str(event.get(k, "")).lower() == str(v).lower()
        return all(one(k, v) for k, v in self.match.items())


@dataclass(frozen=True)
class Firing:
    """A rule that fired for one event, and the phase it picked (``before`` or ``after`` the request ran)."""

    rule: FaultRule
    when: str

    @property
    def params(self) -> dict[str, Any]:
        return self.rule.params


class FaultPlan:
    """Thread-safe set of rules; ``check`` says whether a fault fires for an event."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._rules: list[FaultRule] = []
        self._streams: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._holding = 0
        self.log: list[dict[str, Any]] = []

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
            self._released.clear()
        return rule

    def clear(self, seed: int | None = None) -> None:
        """Remove every rule (holds in progress end now), forget the log, optionally reseed."""
        with self._lock:
            self._rules.clear()
            self._streams.clear()
            self.log.clear()
            if seed is not None:
                self.seed = seed
            self._released.set()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(r) for r in self._rules]

    def _next(self, index: int, key: str) -> int:
        """Count one more event of ``key`` for this rule: the n-th event of a key gets its stream's n-th draw."""
        n = self._streams.get((index, key), 0) + 1
        self._streams[(index, key)] = n
        return n

    def check(self, kind: str, key: str = "", **event: str) -> Firing | None:
        """The rule that fires for this event, if any (and count it). ``key`` names the event's stream."""
        with self._lock:
            for index, rule in enumerate(self._rules):
                stream = key or kind
                if rule.kind != kind or not rule.matches({**event, "key": stream}):
                    continue
                rule.seen += 1
                occurrence = self._next(index, stream)
                if rule.probability is not None:
                    draw = random.Random(f"{self.seed}/{index}/{stream}/{occurrence}").random()
                    fire = draw < rule.probability
                else:
                    draw = 0.0
                    fire = rule.seen >= rule.after and (rule.times == 0 or rule.fired < rule.times)
                if not fire:
                    continue
                rule.fired += 1
                when = str(rule.params.get("when", "before"))
                if when == "any":
                    # The same draw decides the phase: below half the probability, before; above, after.
                    when = "before" if rule.probability is None or draw < rule.probability / 2 else "after"
                self.log.append({"kind": kind, "event": dict(event), "key": stream, "n": rule.seen,
                                 "occurrence": occurrence, "when": when})
                return Firing(rule, when)
            return None

    def hold(self, firing: Firing) -> None:
        """Wait out a ``hold`` fault: ``seconds``, or until the plan is cleared."""
        seconds = firing.params.get("seconds")
        with self._lock:
            self._holding += 1
        try:
            self._released.wait(None if seconds is None else max(float(seconds), 0.0))
        finally:
            with self._lock:
                self._holding -= 1

    def holding(self) -> int:
        """Requests a ``hold`` fault keeps waiting right now."""
        with self._lock:
            return self._holding
