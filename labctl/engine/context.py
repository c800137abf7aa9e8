"""What every stage of a VM's bring-up shares: the transport, the journal, progress, ownership, and the
host-side waits (a VM's state, polling with a stage's timeout, a guest step over PowerShell Direct).

The readiness stages (labctl.engine.vmstages) and the container-host bootstrap (labctl.engine.bootstrap)
both work through one StageContext; neither reaches into the other or into the Applier.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from labctl.engine.journal import Journal
from labctl.engine.plan import DesiredLab, DesiredVm, is_ours
from labctl.engine.progress import Progress
from labctl.engine.watch import Watch
from labctl.errors import Interrupted, RemoteCommandError, StageError
from labctl.guest.steps import load_step
from labctl.hyperv import ops
from labctl.hyperv.facts import Ownership, parse_vm
from labctl.transport.base import Cancel, Credential, RemoteObject, Result, Transport


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

    def __post_init__(self) -> None:
        # The host-side waits of all VMs share one read of the host per poll (labctl.engine.watch).
        self.watch = Watch(self.t, self.owner, self.root, self.timeout_of, self.cause_of, self.poll_min,
                           self.poll_max)

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
        """Poll until the VM reports ``state`` (the stage's timeout applies)."""
        def probe() -> tuple[bool, str]:
            current = self.vm_state(vm)
            return current == state, f"state {current or 'absent'}"
        self.poll(vm, stage, probe)

    def power_down(self, vm: DesiredVm) -> None:
        """Shut the guest down gracefully; turn the VM off only when the guest cannot shut down, and say so."""
        if self.vm_state(vm) == "Running":
            try:
                self.t.invoke(ops.shutdown_vm(vm.name), retry=False)
            except RemoteCommandError as err:
                self.note(f"{vm.name}: the guest could not shut down ({err.message}); it was turned off")
        if self.vm_state(vm) not in ("Off", ""):
            self.t.invoke(ops.stop_vm(vm.name))

    def guest(self, vm: DesiredVm, step: str, arguments: list[object] | None = None) -> Result:
        """Run the shipped guest step ``step`` in ``vm`` over PowerShell Direct."""
        script = load_step(step).script
        return self.t.invoke(ops.guest_invoke(vm.name, self.credential(vm), script, arguments or []))
