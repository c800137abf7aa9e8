"""What every stage of a VM's bring-up shares: the transport, the journal, progress, ownership, and the
host-side waits (a VM's state, polling with a stage's timeout, a guest step over PowerShell Direct).

The readiness stages (labctl.engine.vmstages) and the container-host bootstrap (labctl.engine.bootstrap)
both work through one StageContext; neither reaches into the other or into the Applier.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from labctl.engine.batch import GuestBatcher, raise_errors, split_by_vm
from labctl.engine.journal import Journal
from labctl.engine.plan import DesiredLab, DesiredVm, is_ours
from labctl.engine.progress import Progress
from labctl.engine.watch import Watch
from labctl.errors import Interrupted, RemoteCommandError, StageError
from labctl.guest.steps import load_step
from labctl.hyperv import ops
from labctl.hyperv.facts import Ownership, parse_vm
from labctl.transport.base import Cancel, Credential, Invocation, RemoteObject, Result, Transport

# How long a guest step waits for the run's other VMs to ask for it too (labctl.engine.batch), in host seconds;
# scaled like the polls (poll_min is POLL_MIN on a real host).
GATHER_SECONDS = 0.5
POLL_MIN = 0.05


@dataclass
class StageContext:
    """One ``up`` run's shared ground for the stages of every VM (thread-safe where VMs meet)."""

    t: Transport
    lab: DesiredLab
    journal: Journal
    owner: Ownership
    root: str  # the lab's folder on the host
    progress: Progress
    credential: Callable[[DesiredVm], Credential]
    timeout_of: Callable[[str], float]  # a stage's timeout in seconds (the stage table's, scaled)
    cause_of: Callable[[str], str | None]  # a stage's likely cause when it runs out (the stage table's)
    poll_min: float = 0.05
    poll_max: float = 2.0
    notes: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    watch: Watch = field(init=False, repr=False)
    batch: GuestBatcher = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # The host-side waits of all VMs share one read of the host per poll (labctl.engine.watch).
        self.watch = Watch(self.t, self.owner, self.root, self.timeout_of, self.cause_of, self.poll_min,
                           self.poll_max)
        self.batch = GuestBatcher(self.t, window=GATHER_SECONDS * self.poll_min / POLL_MIN)

    @property
    def cancel(self) -> Cancel:
        return self.t.cancel

    def note(self, text: str) -> None:
        """Something the run's report should tell the user (once)."""
        with self._lock:
            if text not in self.notes:
                self.notes.append(text)

    def disk_path(self, vm: DesiredVm) -> str:
        return f"{self.root}\\{vm.name}.vhdx"

    def find_vm(self, vm: DesiredVm) -> RemoteObject | None:
        """The VM of this name that is ours (by tag or folder), or None."""
        res = self.t.invoke(ops.find_vm(vm.name))
        for obj in res.objects():
            if is_ours(parse_vm(obj), self.owner, self.root, str(obj.get("Path") or "")):
                return obj
        return None

    def vm_state(self, vm: DesiredVm) -> str:
        """The VM's state as Get-VM reports it ("" when it is not there)."""
        found = self.find_vm(vm)
        return str(found.get("State")) if found is not None else ""

    def present_vm(self, vm: DesiredVm, stage: str) -> RemoteObject:
        """The VM's Get-VM object; a StageError at ``stage`` when it vanished."""
        found = self.find_vm(vm)
        if found is None:
            raise StageError(f"{vm.name}: the VM disappeared from the host", vm=vm.name, stage=stage)
        return found

    def poll(self, vm: DesiredVm, stage: str, probe: Callable[[], tuple[bool, str]]) -> bool:
        """Call ``probe`` until it says done or the stage's timeout passes; True if it had to wait."""
        timeout = self.timeout_of(stage)
        deadline = time.monotonic() + timeout
        delay = self.poll_min
        first = True
        while True:
            done, last = probe()
            if done:
                return not first
            first = False
            now = time.monotonic()
            if now >= deadline:
                cause = self.cause_of(stage)
                raise StageError(f"{vm.name}: not ready at stage {stage} after {timeout:.0f} s ({last})",
                                 vm=vm.name, stage=stage, cause=cause, hint=f"likely cause: {cause or 'unknown'}")
            if self.cancel.wait(min(delay, max(deadline - now, 0.0))):
                raise Interrupted("interrupted")
            delay = min(delay * 2, self.poll_max)

    def wait_state(self, vm: DesiredVm, state: str, stage: str) -> None:
        """Wait until the VM reports ``state`` (the stage's timeout applies), read with the other waiting VMs."""
        self.watch.wait_state(vm, state, stage)

    def host_batch(self, vm: DesiredVm, key: Hashable, make: Callable[[list[str]], Invocation], *,
                   retry: bool = True, command: str = "") -> Result:
        """A host call about ``vm`` that the VMs asking for the same ``key`` at once share (``make(names)``:
        ``-Name a,b,c``); it fails for ``vm`` as the call on ``vm`` alone would."""
        part = self.batch.call(vm.name, key, make, split_by_vm, retry=retry, cancelled=self.cancel.is_set)
        return raise_errors(part, command)


    def power_down(self, vm: DesiredVm) -> None:
        """Shut the guest down gracefully; turn the VM off only when the guest cannot shut down, and say so."""
        if self.vm_state(vm) == "Running":
            try:
                self.t.invoke(ops.shutdown_vm(vm.name), retry=False)
            except RemoteCommandError as err:
                self.note(f"{vm.name}: the guest could not shut down ({err.message}); it was turned off")
        if self.vm_state(vm) not in ("Off", ""):
            self.t.invoke(ops.stop_vm(vm.name))

    def guest(self, vm: DesiredVm, step: str, arguments: list[object] | None = None, *,
              alone: bool = False) -> Result:
        """Run the shipped guest step ``step`` in ``vm`` over PowerShell Direct (``alone``: not gathered with the
        other VMs' same step)."""
        script = load_step(step).script
        if alone:
            return self.t.invoke(ops.guest_invoke(vm.name, self.credential(vm), script, arguments or []))
        # VMs at the same step at the same time share one Invoke-Command -VMName a,b,c (labctl.engine.batch).
        return self.batch.run(vm.name, self.credential(vm), script, arguments or [], self.cancel.is_set)
