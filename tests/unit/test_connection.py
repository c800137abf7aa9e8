"""The process that serves the embedded simulator keeps serving while a joined labctl still works."""

from __future__ import annotations

import time

from labctl.app.connection import _wait_for_joined


class FakeSimulator:
    def __init__(self, busy_calls: int) -> None:
        self.busy_calls = busy_calls
        self.calls = 0

    def active_shells(self, within: float) -> int:
        self.calls += 1
        return 1 if self.calls <= self.busy_calls else 0


def test_waits_while_another_client_is_active_then_stops() -> None:
    simulator = FakeSimulator(busy_calls=3)
    start = time.monotonic()
    _wait_for_joined(simulator, idle=1.0, limit=10.0)
    assert simulator.calls == 4 and time.monotonic() - start < 5


def test_gives_up_after_the_limit() -> None:
    simulator = FakeSimulator(busy_calls=10**6)
    start = time.monotonic()
    _wait_for_joined(simulator, idle=1.0, limit=0.5)
    assert 0.4 < time.monotonic() - start < 3


def test_no_other_client_means_no_wait() -> None:
    simulator = FakeSimulator(busy_calls=0)
    _wait_for_joined(simulator)
    assert simulator.calls == 1
