"""Host-side readiness of every waiting VM of a run, observed together: one pipeline per poll.

Each VM's chain runs on its own thread and goes on the moment its own wait passes, but the waits of all VMs
(running, heartbeat, ip) share their polls: whichever waiting thread is due first reads the host for every
waiter that is due (``Get-VM -Name a,b,c`` and their adapters, one round trip) and hands each its verdict. A thread
that waits holds no host connection, and a lab of 32 booting VMs costs one Get-VM per poll, not 32.

Each waiter keeps its own backoff (poll_min doubling to poll_max) and its own stage timeout, as a single VM's
poll would. A new waiter is first read after ``poll_min``: VMs that reach a wait at about the same time (a
lab's VMs started together) share that first read too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from labctl.engine.plan import DesiredVm, is_ours
from labctl.engine.readiness import HOST_WAITS, Check, host_check
from labctl.errors import Interrupted, LabctlError, StageError
from labctl.hyperv import ops
from labctl.hyperv.facts import Ownership, VmFact, parse_adapter, parse_vm
from labctl.transport.base import Transport

VM_TYPE = "Microsoft.HyperV.PowerShell.VirtualMachine"
ADAPTER_TYPE = "Microsoft.HyperV.PowerShell.VMNetworkAdapter"
# How long a waiter sleeps at most before it looks at its own deadline and the run's cancel again.
_NAP = 0.2


@dataclass
class _Waiter:
    vm: DesiredVm
    stage: str
    deadline: float
    timeout: float
    due: float
    delay: float
    waited: bool = False
    last: str = ""
    verdict: bool | None = None  # True: passed
    error: BaseException | None = None
    want_state: str | None = None  # wait_state: the state to reach instead of a readiness stage


@dataclass
class Watch:
    """The shared host-side waits of one run's VMs (thread-safe)."""

    t: Transport
    owner: Ownership
    root: str
    timeout_of: Callable[[str], float]
    cause_of: Callable[[str], str | None]
    poll_min: float = 0.05
    poll_max: float = 2.0
    polls: int = 0  # rounds sent: one pipeline each, whatever the number of waiters
    _waiters: dict[int, _Waiter] = field(default_factory=dict, repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _polling: bool = field(default=False, repr=False)

    def wait(self, vm: DesiredVm, stage: str) -> bool:
        """Block until ``vm`` passes the host-side wait ``stage``; True when it had to wait (it had not passed
        at the first look). Raises StageError when it fails or times out, Interrupted on Ctrl-C."""
        if stage not in HOST_WAITS:
            raise ValueError(f"{stage} is not a host-side wait")
        return self._wait(vm, stage, None)

    def wait_state(self, vm: DesiredVm, state: str, stage: str) -> bool:
        """Block until ``vm`` reports ``state`` (``stage``'s timeout applies): a shutdown's Off, say."""
        return self._wait(vm, stage, state)

    def _wait(self, vm: DesiredVm, stage: str, want_state: str | None) -> bool:
        timeout = self.timeout_of(stage)
        now = time.monotonic()
        me = _Waiter(vm, stage, now + timeout, timeout, due=now + self.poll_min, delay=self.poll_min,
                     want_state=want_state)
        key = id(me)
        with self._cond:
            self._waiters[key] = me
            self._cond.notify_all()
        try:
            while True:
                with self._cond:
                    while True:
                        if me.error is not None:
                            raise me.error
                        if me.verdict is not None:
                            return me.waited
                        if self.t.cancel.is_set():
                            raise Interrupted("interrupted")
                        now = time.monotonic()
                        if not self._polling and now >= self._next_due():
                            self._polling = True
                            break  # this thread reads the host for every waiter
                        self._cond.wait(min(_NAP, max(self._next_due() - now, 0.005)))
                try:
                    self._round()
                finally:
                    with self._cond:
                        self._polling = False
                        self._cond.notify_all()
        finally:
            with self._cond:
                self._waiters.pop(key, None)

    def _next_due(self) -> float:
        pending = [w.due for w in self._waiters.values() if w.verdict is None and w.error is None]
        return min(pending, default=float("inf"))

    def _round(self) -> None:
        """One read of the host for every waiter that has no verdict yet; each gets its verdict or its next due."""
        with self._cond:
            # The waiters that are due (and those nearly due, which would otherwise cost a round of their own): a
            # VM that has just been read is not read again for the others, so the rounds' answers grow with the
            # VMs that are due, not with all that wait.
            horizon = time.monotonic() + self.poll_min / 2
            waiters = [w for w in self._waiters.values() if w.verdict is None and w.error is None
                       and w.due <= horizon]
        if not waiters:
            return
        names = sorted({w.vm.name for w in waiters}, key=str.lower)
        try:
            res = self.t.invoke(ops.lab_readiness(names))
        except LabctlError as err:
            # Every waiter of this round meets the failure in its own stage (a transient one resumes the stage).
            with self._cond:
                for w in waiters:
                    w.error = err
            return
        self.polls += 1
        facts: dict[str, VmFact] = {}
        ips: dict[str, list[str]] = {}
        for obj in res.objects():
            if obj.is_a(VM_TYPE):
                fact = parse_vm(obj)
                if is_ours(fact, self.owner, self.root, str(obj.get("Path") or "")):
                    facts[fact.name.lower()] = fact
            elif obj.is_a(ADAPTER_TYPE):
                ips.setdefault(str(obj.get("VMId") or "").lower(), []).extend(parse_adapter(obj).ips)
        now = time.monotonic()
        with self._cond:
            for w in waiters:
                found = facts.get(w.vm.name.lower())
                if w.want_state is not None:
                    state = found.state if found is not None else "absent"
                    check = Check(state == w.want_state, f"state {state}")
                else:
                    check = host_check(w.stage, found, ips.get(found.id.lower(), []) if found else [], w.vm.ip)
                self._judge(w, check, now)

    def _judge(self, w: _Waiter, check: Check, now: float) -> None:
        name, stage = w.vm.name, w.stage
        if check.failure is not None:
            w.error = StageError(f"{name}: {check.failure}", vm=name, stage=stage, cause=check.cause)
            return
        if check.passed:
            w.verdict = True
            return
        w.waited = True
        w.last = check.last
        if now >= w.deadline:
            cause = self.cause_of(stage)
            w.error = StageError(f"{name}: not ready at stage {stage} after {w.timeout:.0f} s ({w.last})",
                                 vm=name, stage=stage, cause=cause, hint=f"likely cause: {cause or 'unknown'}")
            return
        w.due = min(now + w.delay, w.deadline)
        w.delay = min(w.delay * 2, self.poll_max)
