"""Fault injection, reproducible from a seed.

A FaultPlan holds rules. Each rule names a kind, what it matches, and when it fires: on the
``after``-th matching event (1-based; default 1) and for ``times`` events (default 1; 0 = always),
or with ``probability`` drawn from the plan's seeded RNG. Kinds:

- ``drop_connection``: the HTTP server closes the socket without answering (match: action).
- ``wsman_fault``: a SOAP fault with ``code`` (default 0x80338012 ERROR_WSMAN_... internal) (match: action).
- ``http_500``: HTTP 500 with an empty body (match: action).
- ``slow_receive``: a Receive waits ``seconds`` before answering (match: action=Receive).
- ``cmdlet_fail``: the cmdlet fails with ``message``/``error_id``/``category`` (match: cmdlet, optional vm).
- ``guest_reboot``: the guest of ``vm`` reboots at the next PowerShell Direct call (match: vm).
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("drop_connection", "wsman_fault", "http_500", "slow_receive", "cmdlet_fail", "guest_reboot")


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

    def matches(self, event: dict[str, str]) -> bool:
        return all(str(event.get(k, "")).lower() == str(v).lower() for k, v in self.match.items())


class FaultPlan:
    """Thread-safe set of rules; ``check`` says whether a fault fires for an event."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self.log: list[dict[str, Any]] = []

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self, seed: int | None = None) -> None:
        with self._lock:
            self._rules.clear()
            self.log.clear()
            if seed is not None:
                self.seed = seed
            self._rng = random.Random(self.seed)

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(r) for r in self._rules]

    def check(self, kind: str, **event: str) -> FaultRule | None:
        """The rule that fires for this event, if any (and count it)."""
        with self._lock:
            for rule in self._rules:
                if rule.kind != kind or not rule.matches(event):
                    continue
                rule.seen += 1
                if rule.probability is not None:
                    fire = self._rng.random() < rule.probability
                else:
                    fire = rule.seen >= rule.after and (rule.times == 0 or rule.fired < rule.times)
                if fire:
                    rule.fired += 1
                    self.log.append({"kind": kind, "event": dict(event), "n": rule.seen})
                    return rule
            return None
