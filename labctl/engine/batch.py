"""PowerShell Direct calls of several VMs made as one: ``Invoke-Command -VMName a,b,c`` (issue 12, section 2).

The VMs of a run go through the same guest steps at about the same time (a lab's VMs start together). When a
VM's thread asks for a guest step, it waits for the run's other VMs to ask for it too (at most a short window):
every VM that asks for the same step, with the same credential and arguments, meanwhile joins the call. The host
runs the step in all of them at once (Invoke-Command fans out, up to its ThrottleLimit), and each VM's thread gets back
only its own part: the output objects whose PSComputerName is the VM, and the errors about it. A step whose
arguments differ per VM (a VM's own TLS key) or carry a secret runs alone, as before.

One Invoke-Command returns when its last VM is done, so a VM in a batch goes on when the slowest of the batch
does; the window is short (half a second of host time) so a VM far behind the others does not hold them up.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from labctl.errors import RemoteCommandError
from labctl.hyperv import ops
from labctl.secret import Secret, Sensitive
from labctl.transport.base import Credential, Invocation, RemoteError, RemoteObject, Result, Transport


def vm_of_error(err: RemoteError, names: Iterable[str]) -> str | None:
    """Which VM a non-terminating error of a lab-wide call is about: its target, else the VM its message names."""
    by_lower = {n.lower(): n for n in names}
    if err.target and err.target.strip().lower() in by_lower:
        return by_lower[err.target.strip().lower()]
    for lower, name in by_lower.items():
        if re.search(r"(?<![\w-])" + re.escape(lower) + r"(?![\w-])", err.message.lower()):
            return name
    return None


def split_by_vm(res: Result, names: list[str]) -> dict[str, Result]:
    """Each VM's part of an Invoke-Command -VMName a,b,c: its output objects (PSComputerName) and its errors."""
    by_lower = {n.lower(): n for n in names}
    parts = {n: Result(warnings=list(res.warnings)) for n in names}
    for obj in res.output:
        owner = by_lower.get(str(obj.get("PSComputerName") or "").lower()) if isinstance(obj, RemoteObject) else None
        if owner is not None:
            parts[owner].output.append(obj)
    for err in res.errors:
        owner = vm_of_error(err, names)
        for name in [owner] if owner is not None else names:  # an error that names no VM is about the call
            parts[name].errors.append(err)
    return parts


def _plain_key(value: Any) -> str | None:
    """The arguments as a comparable text, or None when they cannot be shared (a secret, an odd type)."""
    def check(v: Any) -> Any:
        if isinstance(v, Secret | Sensitive | Credential | bytes | bytearray):
            raise TypeError("not shareable")
        if isinstance(v, list | tuple):
            return [check(x) for x in v]
        if isinstance(v, dict):
            return {str(k): check(x) for k, x in v.items()}
        if v is None or isinstance(v, str | int | float | bool):
            return v
        raise TypeError("not shareable")
    try:
        return json.dumps(check(value), sort_keys=True)
    except TypeError:
        return None


@dataclass
class _Batch:
    names: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    parts: dict[str, Result] | None = None
    error: BaseException | None = None


@dataclass
class GuestBatcher:
    """Guest steps of several VMs gathered into one Invoke-Command (thread-safe).

    A batch closes as soon as every VM of the run that is still going (``enter``/``leave``) has asked for this
    step as often as the batch's first VM has (the common case: a lab's VMs all reach it), or after ``window``
    seconds, whichever comes first: a VM that skips the step (done by an earlier run) or is still far behind
    costs the others at most the window."""

    t: Transport
    window: float = 0.5
    calls: int = 0  # Invoke-Commands sent
    steps: int = 0  # VM steps they carried
    _open: dict[Hashable, _Batch] = field(default_factory=dict, repr=False)
    _active: set[str] = field(default_factory=set, repr=False)
    _asked: dict[Hashable, dict[str, int]] = field(default_factory=dict, repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def enter(self, vm: str) -> None:
        """``vm``'s chain runs: batches wait for it."""
        with self._cond:
            self._active.add(vm)

    def leave(self, vm: str) -> None:
        """``vm``'s chain ended (done or failed): batches no longer wait for it."""
        with self._cond:
            self._active.discard(vm)
            self._cond.notify_all()

    def run(self, vm: str, credential: Credential, script: str, arguments: list[object],
            cancelled: Callable[[], bool] | None = None) -> Result:
        """Run ``script`` in ``vm`` with ``arguments``, together with the VMs that ask for the same at once."""
        shared = _plain_key(arguments)
        if shared is None:
            return self.t.invoke(ops.guest_invoke(vm, credential, script, arguments))
        key = ("guest", hashlib.sha256(script.encode()).hexdigest(), credential, shared)

        def make(names: list[str]) -> Invocation:
            if len(names) == 1:
                return ops.guest_invoke(names[0], credential, script, arguments)
            return ops.guest_invoke_many(names, credential, script, arguments)
        return self.call(vm, key, make, split_by_vm, cancelled=cancelled)

    def call(self, vm: str, key: Hashable, make: Callable[[list[str]], Invocation],
             split: Callable[[Result, list[str]], dict[str, Result]], *, retry: bool = True,
             cancelled: Callable[[], bool] | None = None) -> Result:
        """``make(names)`` for ``vm`` and the VMs that ask for the same ``key`` at once; ``vm``'s part of it
        (``split`` of the one result). The host calls a batch makes take several names (``-Name a,b,c``)."""
        with self._cond:
            asked = self._asked.setdefault(key, {})
            asked[vm] = round_ = asked.get(vm, 0) + 1
            batch = self._open.get(key)
            leader = batch is None
            if batch is None:
                batch = self._open[key] = _Batch()
            batch.names.append(vm)
            self._cond.notify_all()
            if leader:
                deadline = time.monotonic() + self.window
                while not all(asked.get(v, 0) >= round_ for v in self._active):
                    left = deadline - time.monotonic()
                    if left <= 0 or (cancelled is not None and cancelled()):
                        break
                    self._cond.wait(min(left, 0.1))
                self._open.pop(key, None)  # who asks from now on starts the next batch
        if not leader:
            batch.done.wait()
            return self._take(batch, vm)
        try:
            names = list(batch.names)
            with self._cond:
                self.calls += 1
                self.steps += len(names)
            res = self.t.invoke(make(names), retry=retry)
            batch.parts = {names[0]: res} if len(names) == 1 else split(res, names)
        except BaseException as exc:  # every VM of the batch meets the failure in its own stage
            batch.error = exc
        finally:
            batch.done.set()
        return self._take(batch, vm)

    @staticmethod
    def _take(batch: _Batch, vm: str) -> Result:
        if batch.error is not None:
            raise batch.error
        assert batch.parts is not None
        return batch.parts[vm]


def raise_errors(part: Result, command: str) -> Result:
    """A VM's part of a batched host call, failing as the call on that VM alone would have (-ErrorAction Stop)."""
    if part.errors:
        last = part.errors[-1]
        raise RemoteCommandError(last.message, command=command, fqid=last.fqid, category=last.category,
                                 target=last.target)
    return part
