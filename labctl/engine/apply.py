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
from typing import TypeVar

from labctl.engine.bootstrap import BootstrapContext, Bootstrapper
from labctl.engine.destroy import dismount_disk, remove_lab_vm
from labctl.engine.journal import Journal
from labctl.engine.parallel import run_parallel
from labctl.engine.plan import DesiredLab, DesiredVm, Plan, is_ours
from labctl.engine.progress import NoProgress, Progress
from labctl.errors import (
    Interrupted,
    LabctlError,
    RemoteCommandError,
    StageError,
    TemplateError,
    TransientError,
)
from labctl.guest.readiness import CAUSES, Timeouts
from labctl.guest.steps import load_step
from labctl.hyperv import ops
from labctl.hyperv.facts import Ownership, attached_disk_number, parse_adapter, parse_vm
from labctl.render.check import answer_file_asks
from labctl.transport.base import Cancel, Credential, RemoteObject, Result, Transport

log = logging.getLogger(__name__)

HEALTHY = "OkApplicationsHealthy"

R = TypeVar("R")


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
        self.answer_file = answer_file
        self.credential = credential
        self.progress = progress or NoProgress()
        self.options = options or ApplyOptions()
        self.root = plan.disk_root
        self.cancel: Cancel = transport.cancel
        # How long one stage (or host step) keeps resuming after transient failures before it fails.
        self.resume_budget = (self.options.resume_budget if self.options.resume_budget is not None
                              else 2 * transport.policy.budget_seconds)
        self._report_lock = threading.Lock()
        self._xml: dict[str, str] = {}
        # Container hosts get the bootstrap stages after readiness; without a context (no container host
        # in the lab, or a caller that only wants readiness) the chain ends at "ready".
        self.bootstrap = Bootstrapper(self, bootstrap) if bootstrap is not None else None
        self._notes: list[str] = []

    def note(self, text: str) -> None:
        """Something the run's report should tell the user (once)."""
        with self._report_lock:
            if text not in self._notes:
                self._notes.append(text)

    # -- entry point -----------------------------------------------------------------------
    def run(self) -> ApplyReport:
        report = ApplyReport(notes=self._notes)
        self.journal.persist()
        self._host_steps(report)
        for outcome in run_parallel(list(self.lab.vms), lambda vm: self._vm_chain(vm, report),
                                    self.options.max_workers, self.cancel):
            report.outcomes[outcome.name] = outcome
        if self.cancel.is_set():
            raise KeyboardInterrupt
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
        found = self.t.invoke(ops.find_nat(lab.nat_name)).objects()
        if found:
            if self.journal.host_resource("nat") is None:
                self.journal.record_host("nat", name=lab.nat_name, prefix=lab.subnet)
            return False
        self.progress.stage("host", "nat", "start", lab.nat_name)
        self.journal.record_host("nat", name=lab.nat_name, prefix=lab.subnet, pending=True)
        self.t.invoke(ops.create_nat(lab.nat_name, lab.subnet), retry=False)
        self.journal.record_host("nat", name=lab.nat_name, prefix=lab.subnet)
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
        start = time.monotonic()
        stage = "plan"
        changed = False
        try:
            change = self.plan.for_vm(vm.name)
            if change is not None and change.action == "keep":
                self.progress.stage(vm.name, "ready", "skip", "up to date")
                return VmOutcome(vm.name, True, "ready", time.monotonic() - start)
            stages: list[tuple[str, Callable[[DesiredVm], bool]]] = [
                ("render", self._stage_render),
                ("disk", self._stage_disk),
                ("answer-file", self._stage_answer_file),
                ("vm", self._stage_vm),
                ("configure", self._stage_configure),
                ("start", self._stage_start),
                ("running", self._stage_running),
                ("heartbeat", self._stage_heartbeat),
                ("ip", self._stage_ip),
                ("logon", self._stage_logon),
                ("cleanup", self._stage_cleanup),
            ]
            if vm.container_host and self.bootstrap is not None:
                stages += self.bootstrap.stages()
            for stage, fn in stages:
                if stage == "features":
                    self.journal.stage_done(vm.name, "ready")  # readiness reached; the bootstrap follows
                self.progress.stage(vm.name, stage, "start")
                did = self.resumable(vm.name, stage, lambda fn=fn: fn(vm))  # type: ignore[misc]
                changed = changed or bool(did)
                self.progress.stage(vm.name, stage, "done" if did else "skip")
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

    def _disk_path(self, vm: DesiredVm) -> str:
        return f"{self.root}\\{vm.name}.vhdx"

    def _find_vm(self, vm: DesiredVm) -> RemoteObject | None:
        res = self.t.invoke(ops.find_vm(vm.name))
        for obj in res.objects():
            fact = parse_vm(obj)
            if is_ours(fact, self.owner, self.root, str(obj.get("Path") or "")):
                return obj
        return None

    def _stage_disk(self, vm: DesiredVm) -> bool:
        path = self._disk_path(vm)
        exists = self.t.invoke(ops.test_path(path)).output
        if exists and exists[0] is True:
            # Our lab folder carries the lab id: a disk there was made by an earlier run.
            self.journal.record_vm(vm.name, disk=path)
            return False
        self.t.invoke(ops.create_differencing_disk(path, vm.base_disk), retry=False)
        self.journal.record_vm(vm.name, disk=path)
        self.journal.stage_done(vm.name, "disk")
        return True

    def _stage_render(self, vm: DesiredVm) -> bool:
        """Render and check the answer file before this VM touches the host."""
        if self.journal.has_stage(vm.name, "answer-file"):
            return False
        try:
            self._xml[vm.name] = self.answer_file(vm)
        except TemplateError as err:
            raise StageError(f"{vm.name}: its answer file is invalid: {err.message}", vm=vm.name, stage="render",
                             cause=err.message, hint=err.hint or f"fix template {err.template}") from err
        return False

    def _stage_answer_file(self, vm: DesiredVm) -> bool:
        if self.journal.has_stage(vm.name, "answer-file") or self._find_vm(vm) is not None:
            return False  # injected before the first boot only: setup won't read it again
        path = self._disk_path(vm)
        xml = self._xml.get(vm.name) or self.answer_file(vm)
        # A run killed (or an answer lost) while the disk was mounted left it mounted: use that mount.
        number = attached_disk_number(self.t.invoke(ops.get_vhd(path)))
        if number is None:
            number = attached_disk_number(self.t.invoke(ops.mount_disk(path), retry=False))
        try:
            if number is None:
                raise StageError(f"{vm.name}: Mount-VHD returned no disk number for {path}", vm=vm.name,
                                 stage="answer-file", cause="the disk did not attach to the host")
            parts = self.t.invoke(ops.partitions_of(number)).objects()
            letters = [str(p.get("DriveLetter")) for p in parts
                       if p.get("DriveLetter") and str(p.get("DriveLetter")).strip("\x00 ")]
            if not letters:
                raise StageError(f"{vm.name}: the mounted disk {path} has no partition with a drive letter",
                                 vm=vm.name, stage="answer-file",
                                 hint="is the base image a sysprepped Windows system disk?")
            self.t.invoke(ops.write_answer_file(letters[-1][:1], xml))
        finally:
            dismount_disk(self.t, path)
        self._xml.pop(vm.name, None)
        # What status can verify in the guest later: only what this answer file asked for is checked.
        self.journal.record_vm(vm.name, answer_file_asks=answer_file_asks(xml))
        self.journal.stage_done(vm.name, "answer-file")
        return True

    def _stage_vm(self, vm: DesiredVm) -> bool:
        found = self._find_vm(vm)
        if found is None:
            # Not retried: a lost answer resumes this stage, which finds (adopts) the VM the call made.
            self.t.invoke(ops.create_vm(vm.name, memory=vm.memory, vhd_path=self._disk_path(vm),
                                        switch=self.lab.switch, path=self.root), retry=False)
            found = self._find_vm(vm)
            if found is None:
                raise StageError(f"{vm.name}: New-VM returned but the VM is not there",
                                 vm=vm.name, stage="vm")
            self.journal.record_vm(vm.name, id=str(found.get("Id") or ""))
            self.journal.stage_done(vm.name, "vm")
            return True
        self.journal.record_vm(vm.name, id=str(found.get("Id") or ""))
        return False

    def _stage_configure(self, vm: DesiredVm) -> bool:
        found = self._find_vm(vm)
        state = str(found.get("State")) if found is not None else ""
        fact = parse_vm(found) if found is not None else None
        needs = (not self.journal.has_stage(vm.name, "configure")
                 or (fact is not None and (fact.processor_count != vm.processors
                                           or fact.memory_startup != vm.memory)))
        if not needs:
            return False
        if state not in ("Off", ""):
            # Processor and memory changes, and exposing virtualization extensions, need the VM off.
            self.power_down(vm)
        self.t.invoke(ops.configure_vm(vm.name, processors=vm.processors, memory=vm.memory, mac=vm.mac,
                                       notes=self.owner.tag()))
        self.journal.stage_done(vm.name, "configure")
        return True

    def _stage_start(self, vm: DesiredVm) -> bool:
        found = self._find_vm(vm)
        if found is not None and str(found.get("State")) == "Running":
            return False
        self.t.invoke(ops.start_vm(vm.name))
        self.journal.stage_done(vm.name, "start")
        return True

    def _poll(self, vm: DesiredVm, stage: str, probe: Callable[[], tuple[bool, str]]) -> bool:
        """Call ``probe`` until it says done or the stage's timeout passes."""
        timeout = self.options.timeouts.of(stage)
        deadline = time.monotonic() + timeout
        delay = self.options.poll_min
        last = ""
        first = True
        while True:
            done, last = probe()
            if done:
                return not first
            first = False
            now = time.monotonic()
            if now >= deadline:
                raise StageError(
                    f"{vm.name}: not ready at stage {stage} after {timeout:.0f} s ({last})",
                    vm=vm.name, stage=stage, cause=CAUSES.get(stage),
                    hint=f"likely cause: {CAUSES.get(stage, 'unknown')}",
                )
            if self.cancel.wait(min(delay, max(deadline - now, 0.0))):
                raise Interrupted("interrupted")
            delay = min(delay * 2, self.options.poll_max)

    def power_down(self, vm: DesiredVm) -> None:
        """Shut the guest down gracefully; turn the VM off only when the guest cannot shut down, and say so."""
        if self.vm_state(vm) == "Running":
            try:
                self.t.invoke(ops.shutdown_vm(vm.name), retry=False)
            except RemoteCommandError as err:
                self.note(f"{vm.name}: the guest could not shut down ({err.message}); it was turned off")
        if self.vm_state(vm) not in ("Off", ""):
            self.t.invoke(ops.stop_vm(vm.name))

    def vm_state(self, vm: DesiredVm) -> str:
        """The VM's state as Get-VM reports it ("" when it is not there)."""
        found = self._find_vm(vm)
        return str(found.get("State")) if found is not None else ""

    def wait_state(self, vm: DesiredVm, state: str, stage: str) -> None:
        """Poll until the VM reports ``state`` (the stage's timeout applies)."""
        def probe() -> tuple[bool, str]:
            current = self.vm_state(vm)
            return current == state, f"state {current or 'absent'}"
        self._poll(vm, stage, probe)

    def _vm_state(self, vm: DesiredVm) -> RemoteObject:
        found = self._find_vm(vm)
        if found is None:
            raise StageError(f"{vm.name}: the VM disappeared from the host", vm=vm.name, stage="running")
        return found

    def _stage_running(self, vm: DesiredVm) -> bool:
        def probe() -> tuple[bool, str]:
            state = str(self._vm_state(vm).get("State"))
            return state == "Running", f"state {state}"
        return self._poll(vm, "running", probe)

    def _stage_heartbeat(self, vm: DesiredVm) -> bool:
        def probe() -> tuple[bool, str]:
            obj = self._vm_state(vm)
            heartbeat = str(obj.get("Heartbeat"))
            if str(obj.get("State")) != "Running":
                raise StageError(f"{vm.name}: the VM stopped while booting (state {obj.get('State')})",
                                 vm=vm.name, stage="heartbeat", cause="the guest shut down or crashed")
            return heartbeat == HEALTHY, f"heartbeat {heartbeat}"
        return self._poll(vm, "heartbeat", probe)

    def _stage_ip(self, vm: DesiredVm) -> bool:
        def probe() -> tuple[bool, str]:
            res = self.t.invoke(ops.vm_adapters(vm.name))
            ips = [ip for o in res.objects() for ip in parse_adapter(o).ips]
            return vm.ip in ips, f"reported {', '.join(ips) or 'no address'}"
        return self._poll(vm, "ip", probe)

    def _guest(self, vm: DesiredVm, step: str, arguments: list[object] | None = None) -> Result:
        script = load_step(step).script
        return self.t.invoke(ops.guest_invoke(vm.name, self.credential(vm), script, arguments or []))

    def _stage_logon(self, vm: DesiredVm) -> bool:
        def probe() -> tuple[bool, str]:
            try:
                res = self._guest(vm, "probe")
            except RemoteCommandError as err:
                # By the record's type, not its text: the host's messages are in its display language.
                # PowerShell Direct reports a refused logon as a PSDirectException ("The credential is
                # invalid." on an English host; transcripts in tests/sim/transcripts/psdirect).
                if err.category == "PSDirectException" or "InvalidCredential" in err.fqid \
                        or "AccessDenied" in err.fqid:
                    raise StageError(f"{vm.name}: PowerShell Direct refused the credential: {err.message}",
                                     vm=vm.name, stage="logon", cause=CAUSES["logon"],
                                     hint="the guest was built with another Administrator password; destroy "
                                     "and rebuild the VM, or set the password it was built with") from err
                return False, err.message
            info = res.objects()[0] if res.objects() else None
            if info is None:
                return False, "no answer from the probe"
            name = str(info.get("ComputerName") or "")
            if name.lower() != vm.name.lower():
                raise StageError(f"{vm.name}: the guest calls itself {name!r}, not {vm.name!r}",
                                 vm=vm.name, stage="logon",
                                 cause="the answer file's ComputerName was not applied")
            return True, "logged on"
        self._poll(vm, "logon", probe)
        return False

    def _stage_cleanup(self, vm: DesiredVm) -> bool:
        if self.journal.has_stage(vm.name, "cleanup"):
            return False
        res = self._guest(vm, "remove-answer-file")
        self.journal.stage_done(vm.name, "cleanup")
        info = res.objects()[0] if res.objects() else None
        return bool(info.get("Changed")) if info is not None else False

