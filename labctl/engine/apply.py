"""Apply: host-wide steps once, then every VM's chain of stages in parallel.

Each stage checks the host before it acts and is recorded in the journal when done, so ``up``
after a crash, Ctrl-C or a failure picks up where it stopped and never creates a duplicate.
Calls that create things are sent without transport retries; after a transient failure the
stage reads the host again and adopts what the lost call may have made.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from labctl.engine.bootstrap import BootstrapContext, Bootstrapper
from labctl.engine.context import StageContext
from labctl.engine.destroy import remove_lab_vm
from labctl.engine.journal import Journal
from labctl.engine.parallel import run_parallel
from labctl.engine.plan import DesiredLab, DesiredVm, Plan
from labctl.engine.progress import NoProgress, Progress
from labctl.engine.stages import BOOT_WAITS, BOOTSTRAP_STAGES, STAGES, Stage, Timeouts, cause_of
from labctl.engine.vmstages import ReadinessStages
from labctl.errors import (
    Interrupted,
    LabctlError,
    StageError,
    TransientError,
)
from labctl.hyperv import ops
from labctl.hyperv.facts import Ownership
from labctl.transport.base import Cancel, Credential, Pipeline, RemoteObject, Transport

log = logging.getLogger(__name__)

HEALTHY = "OkApplicationsHealthy"
RDP_PORT = 3389
# Host ports publishing the guests' RDP: 33890 + the VM's index in the lab (a class numbers its VMs across
# copies), stable across runs and predictable for a roster.
RDP_HOST_PORT_BASE = 33890


def rdp_host_port(vm: DesiredVm) -> int:
    """The host port that reaches ``vm``'s RDP (labs with rdp: true)."""
    return RDP_HOST_PORT_BASE + vm.index

R = TypeVar("R")

# How many VMs of a run may be between their disk and vm stages (their new disk mounted for the answer file) at
# once: the host's free drive letters bound it (the 33rd VM of a 32-VM lab found none), and these stages take
# seconds, so a VM rarely waits here.
MAX_MOUNTED = 8


@dataclass
class VmOutcome:
    """How one VM's bring-up ended."""

    name: str
    ok: bool
    stage: str
    elapsed: float
    error: LabctlError | None = None
    changed: bool = False


@dataclass
class ApplyReport:
    """What apply did: host steps, per-VM outcomes, and what changed."""

    host_steps: list[str] = field(default_factory=list)
    outcomes: dict[str, VmOutcome] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth telling the user (e.g. placeholder Docker binaries)

    @property
    def failed(self) -> dict[str, VmOutcome]:
        return {n: o for n, o in self.outcomes.items() if not o.ok}

    @property
    def nothing_changed(self) -> bool:
        return not (self.host_steps or self.added or self.changed or self.removed)


@dataclass
class ApplyOptions:
    max_workers: int = 4
    timeouts: Timeouts = field(default_factory=Timeouts)
    poll_min: float = 0.05
    poll_max: float = 2.0
    resume_budget: float | None = None  # default: twice the transport's retry budget


class Applier:
    """Runs a plan against a host through a transport."""

    def __init__(
        self,
        transport: Transport,
        lab: DesiredLab,
        plan: Plan,
        journal: Journal,
        owner: Ownership,
        answer_file: Callable[[DesiredVm], str],
        credential: Callable[[DesiredVm], Credential],
        progress: Progress | None = None,
        options: ApplyOptions | None = None,
        bootstrap: BootstrapContext | None = None,
    ) -> None:
        self.t = transport
        self.lab = lab
        self.plan = plan
        self.journal = journal
        self.owner = owner
        self.progress = progress or NoProgress()
        self.options = options or ApplyOptions()
        self.root = plan.disk_root
        self.cancel: Cancel = transport.cancel
        # How long one stage (or host step) keeps resuming after transient failures before it fails.
        self.resume_budget = (self.options.resume_budget if self.options.resume_budget is not None
                              else 2 * transport.policy.budget_seconds)
        self._report_lock = threading.Lock()
        # Disks mounted on the host at once (from the disk stage, which mounts a new disk, to the vm stage, which
        # dismounts it): each takes a drive letter, and Windows has 23 (D: to Z:) for all of them.
        self._mounts = threading.BoundedSemaphore(MAX_MOUNTED)
        self.context = StageContext(transport, lab, journal, owner, self.root, self.progress, credential,
                                    self.options.timeouts.of, cause_of, self.options.poll_min, self.options.poll_max)
        self.ready = ReadinessStages(self.context, answer_file)
        # Container hosts get the bootstrap stages after readiness; without a context (no container host
        # in the lab, or a caller that only wants readiness) the chain ends at "ready".
        boot_waits = [(stage.name, getattr(self.ready, stage.fn)) for stage in BOOT_WAITS]
        self.bootstrap = (Bootstrapper(self.context, bootstrap, boot_waits) if bootstrap is not None else None)

    def note(self, text: str) -> None:
        """Something the run's report should tell the user (once)."""
        self.context.note(text)

    def _runner(self, stage: Stage) -> ReadinessStages | Bootstrapper | None:
        """The object whose method runs ``stage`` (its phase's)."""
        return self.bootstrap if stage.phase == "bootstrap" else self.ready

    # -- entry point -----------------------------------------------------------------------
    def run(self) -> ApplyReport:
        report = self.prepare()
        return self.run_vms(report)

    def prepare(self, report: ApplyReport | None = None) -> ApplyReport:
        """The host-wide steps (folder, switch, gateway, NAT, published ports), once, before any VM."""
        report = report if report is not None else ApplyReport(notes=self.context.notes)
        self.journal.persist()
        self._host_steps(report)
        return report

    def run_vms(self, report: ApplyReport) -> ApplyReport:
        """Every VM's chain, in parallel, then removals of VMs no longer in the file."""
        for outcome in run_parallel(list(self.lab.vms), lambda vm: self.chain(vm, report),
                                    self.options.max_workers, self.cancel):
            report.outcomes[outcome.name] = outcome
        if self.cancel.is_set():
            raise KeyboardInterrupt
        return self.finish(report)

    def chain(self, vm: DesiredVm, report: ApplyReport) -> VmOutcome:
        """One VM's stages (for callers that run the VMs of several labs on one pool of workers)."""
        return self._vm_chain(vm, report)

    def finish(self, report: ApplyReport) -> ApplyReport:
        """After the chains: remove the lab's VMs that are no longer in the file."""
        for change in self.plan.changes:
            if change.kind == "vm" and change.action == "remove":
                removal = remove_lab_vm(self.t, change.name, self.owner, self.root, self.journal, self.progress)
                if removal.removed:
                    report.removed.append(f"vm {change.name}")
                for left in removal.remaining:
                    self.note(f"not removed: {left}")
        return report

    def resumable(self, vm: str, stage: str, fn: Callable[[], R]) -> R:
        """Run one stage; after a transient failure (a lost answer included) run it again from its start.

        Every stage reads the host before it acts, so running it again adopts what a lost call made and never
        repeats a creation. It gives up after ``resume_budget`` seconds of failures.
        """
        start = time.monotonic()
        while True:
            if self.cancel.is_set():
                raise Interrupted("interrupted")
            try:
                return fn()
            except TransientError as err:
                spent = time.monotonic() - start
                if spent > self.resume_budget and vm == "host":
                    raise  # outside a VM's stages: the run stops (exit 75), nothing of a VM failed
                if spent > self.resume_budget:
                    raise StageError(
                        f"{vm}: {stage}: the host kept failing transiently for {spent:.0f} s: {err.message}",
                        vm=vm, stage=stage, cause="transient host or network failures outlasted the retry budget",
                        hint="the host answers but keeps failing; run up again (it continues from this stage)",
                    ) from err
                log.info("%s: %s: resuming after a transient failure: %s", vm, stage, err.message)
                self.progress.stage(vm, stage, "start", "resuming after a transient failure")
                if self.cancel.wait(min(1.0, 0.1 * (1 + spent))):
                    raise Interrupted("interrupted") from None

    # -- host-wide -------------------------------------------------------------------------
    def _host_steps(self, report: ApplyReport) -> None:
        lab = self.lab
        self.resumable("host", "folder", lambda: self.t.invoke(ops.new_directory(self.root)))
        if self.resumable("host", "switch", self._ensure_switch):
            report.host_steps.append(f"switch {lab.switch}")
        if self.resumable("host", "gateway", self._ensure_gateway):
            report.host_steps.append(f"gateway {lab.gateway}")
        if lab.nat and self.resumable("host", "nat", self._ensure_nat):
            report.host_steps.append(f"nat {lab.nat_name}")
        if lab.rdp and lab.nat:
            published = self.resumable("host", "rdp", self._ensure_rdp)
            if published:
                report.host_steps.append(f"rdp {published} VM(s) on host ports "
                                         f"{', '.join(str(rdp_host_port(vm)) for vm in lab.vms)}")

    def _ensure_rdp(self) -> int:
        """Each VM's RDP published on the host (NetNat static mapping to guest 3389), in one pipeline."""
        lab = self.lab
        have = self.t.invoke(ops.nat_static_mappings(lab.nat_name)).objects()
        taken = {int(o.get("ExternalPort") or 0): o for o in have if str(o.get("Protocol") or "TCP").upper() == "TCP"}
        missing = []
        for vm in lab.vms:
            port = rdp_host_port(vm)
            found = taken.get(port)
            if found is None:
                missing.append(ops.add_nat_static_mapping(lab.nat_name, port, vm.ip, RDP_PORT))
            elif str(found.get("InternalIPAddress")) != vm.ip or int(found.get("InternalPort") or 0) != RDP_PORT:
                raise StageError(
                    f"rdp: host port {port} of NAT {lab.nat_name} already maps to {found.get('InternalIPAddress')}:"
                    f"{found.get('InternalPort')}, not {vm.name}'s RDP", vm="host", stage="rdp",
                    cause="a static mapping labctl did not make uses the port",
                    hint=f"remove it with Remove-NetNatStaticMapping -NatName {lab.nat_name}, or set rdp: false")
        if missing:
            self.progress.stage("host", "rdp", "start", f"publishing RDP of {len(missing)} VM(s)")
            self.t.invoke(Pipeline.of(*missing), retry=False)
        return len(missing)

    def _ensure_switch(self) -> bool:
        """The lab switch, tagged as ours at creation (preflight refused a foreign one of the same name)."""
        lab = self.lab
        found = self.t.invoke(ops.find_switch(lab.switch)).objects()
        if found:
            self.journal.record_host("switch", name=lab.switch)
            return False
        self.progress.stage("host", "switch", "start", lab.switch)
        self.t.invoke(ops.create_switch(lab.switch, self.owner.tag()), retry=False)
        self.journal.record_host("switch", name=lab.switch)
        self.progress.stage("host", "switch", "done", lab.switch)
        return True

    def _ensure_nat(self) -> bool:
        """The lab NAT. NetNat has no field for an ownership tag, so the journal records it before it is
        created: a run killed in between still knows the NAT of that name and prefix is this lab's."""
        lab = self.lab
        prefix = lab.nat_internal_prefix
        found = self.t.invoke(ops.find_nat(lab.nat_name)).objects()
        if found:
            if self.journal.host_resource("nat") is None:
                self.journal.record_host("nat", name=lab.nat_name, prefix=prefix)
            return False
        self.progress.stage("host", "nat", "start", lab.nat_name)
        self.journal.record_host("nat", name=lab.nat_name, prefix=prefix, pending=True)
        self.t.invoke(ops.create_nat(lab.nat_name, prefix), retry=False)
        self.journal.record_host("nat", name=lab.nat_name, prefix=prefix)
        self.progress.stage("host", "nat", "done", lab.nat_name)
        return True

    def _ensure_gateway(self) -> bool:
        lab = self.lab
        alias = ops.host_vnic_alias(lab.switch)
        existing = self.t.invoke(ops.host_addresses(alias))
        if any(isinstance(o, RemoteObject) and o.get("IPAddress") == lab.gateway for o in existing.output):
            self.journal.record_host("gateway", address=lab.gateway, alias=alias)
            return False
        self.progress.stage("host", "gateway", "start", lab.gateway)
        self.t.invoke(ops.configure_gateway(lab.switch, lab.gateway, lab.prefix_length), retry=False)
        self.journal.record_host("gateway", address=lab.gateway, alias=alias)
        self.progress.stage("host", "gateway", "done", lab.gateway)
        return True

    # -- one VM ----------------------------------------------------------------------------
    def _vm_chain(self, vm: DesiredVm, report: ApplyReport) -> VmOutcome:
        # While its chain runs, the VM's guest steps are gathered with the other VMs' (engine.batch).
        self.context.batch.enter(vm.name)
        try:
            return self._vm_stages(vm, report)
        finally:
            self.context.batch.leave(vm.name)

    def _acquire_mount(self) -> None:
        while not self._mounts.acquire(timeout=0.2):
            if self.cancel.is_set():
                raise Interrupted("interrupted")

    def _vm_stages(self, vm: DesiredVm, report: ApplyReport) -> VmOutcome:
        start = time.monotonic()
        stage = "plan"
        changed = False
        try:
            change = self.plan.for_vm(vm.name)
            if change is not None and change.action == "keep":
                self.progress.stage(vm.name, "ready", "skip", "up to date")
                return VmOutcome(vm.name, True, "ready", time.monotonic() - start)
            bootstrapping = vm.container_host and self.bootstrap is not None
            mounting = False
            try:
                for row in STAGES:
                    if row.phase == "bootstrap" and not bootstrapping:
                        break
                    stage = row.name
                    if row.phase == "bootstrap" and stage == BOOTSTRAP_STAGES[0]:
                        self.journal.stage_done(vm.name, "ready")  # readiness reached; the bootstrap follows
                    if stage == "disk":
                        self._acquire_mount()
                        mounting = True
                    self.progress.stage(vm.name, stage, "start")
                    runner = self._runner(row)
                    did = self.resumable(vm.name, stage, partial(getattr(runner, row.fn), vm))
                    changed = changed or bool(did)
                    self.progress.stage(vm.name, stage, "done" if did else "skip")
                    if stage == "vm" and mounting:
                        self._mounts.release()
                        mounting = False
            finally:
                if mounting:
                    self._mounts.release()
            self.journal.stage_done(vm.name, "ready")
            with self._report_lock:
                if change is not None and change.action == "add":
                    report.added.append(f"vm {vm.name}")
                elif changed:
                    report.changed.append(f"vm {vm.name}")
            self.progress.stage(vm.name, "ready", "done")
            return VmOutcome(vm.name, True, "ready", time.monotonic() - start, changed=changed)
        except Interrupted as err:
            self.progress.stage(vm.name, stage, "failed", "interrupted")
            return VmOutcome(vm.name, False, stage, time.monotonic() - start, err, changed)
        except LabctlError as err:
            if not isinstance(err, StageError):
                err = StageError(f"{vm.name}: {stage} failed: {err.message}", vm=vm.name, stage=stage,
                                 cause=getattr(err, "fqid", None) or None, hint=err.hint)
            self.progress.stage(vm.name, stage, "failed", err.message)
            return VmOutcome(vm.name, False, stage, time.monotonic() - start, err, changed)
