"""The stages that bring one VM from nothing to ready: build (disk, answer file, VM, configuration, start)
and readiness (running, heartbeat, address, PowerShell Direct logon, answer file removed).

Each stage reads the host before it acts and records itself in the journal when done, so a resumed stage
adopts what an earlier (killed, or answer-lost) attempt made. The order, timeouts and likely causes are the
stage table's (labctl.engine.stages).
"""

from __future__ import annotations

from collections.abc import Callable

from labctl.engine.context import StageContext
from labctl.engine.destroy import dismount_disk
from labctl.engine.plan import DesiredVm
from labctl.errors import RemoteCommandError, StageError, TemplateError
from labctl.hyperv import ops
from labctl.hyperv.facts import attached_disk_number, parse_adapter, parse_vm
from labctl.render.check import answer_file_asks

HEALTHY = "OkApplicationsHealthy"


class ReadinessStages:
    """The build and readiness stages of every VM of one run (the answer files rendered but not yet injected)."""

    def __init__(self, ctx: StageContext, answer_file: Callable[[DesiredVm], str]) -> None:
        self.c = ctx
        self.render_answer_file = answer_file
        self._xml: dict[str, str] = {}

    def disk(self, vm: DesiredVm) -> bool:
        path = self.c.disk_path(vm)
        exists = self.c.t.invoke(ops.test_path(path)).output
        if exists and exists[0] is True:
            # Our lab folder carries the lab id: a disk there was made by an earlier run.
            self.c.journal.record_vm(vm.name, disk=path)
            return False
        self.c.t.invoke(ops.create_differencing_disk(path, vm.base_disk), retry=False)
        self.c.journal.record_vm(vm.name, disk=path)
        self.c.journal.stage_done(vm.name, "disk")
        return True

    def render(self, vm: DesiredVm) -> bool:
        """Render and check the answer file before this VM touches the host."""
        if self.c.journal.has_stage(vm.name, "answer-file"):
            return False
        try:
            self._xml[vm.name] = self.render_answer_file(vm)
        except TemplateError as err:
            raise StageError(f"{vm.name}: its answer file is invalid: {err.message}", vm=vm.name, stage="render",
                             cause=err.message, hint=err.hint or f"fix template {err.template}") from err
        return False

    def answer_file(self, vm: DesiredVm) -> bool:
        if self.c.journal.has_stage(vm.name, "answer-file") or self.c.find_vm(vm) is not None:
            return False  # injected before the first boot only: setup won't read it again
        path = self.c.disk_path(vm)
        xml = self._xml.get(vm.name) or self.render_answer_file(vm)
        # A run killed (or an answer lost) while the disk was mounted left it mounted: use that mount.
        number = attached_disk_number(self.c.t.invoke(ops.get_vhd(path)))
        if number is None:
            number = attached_disk_number(self.c.t.invoke(ops.mount_disk(path), retry=False))
        try:
            if number is None:
                raise StageError(f"{vm.name}: Mount-VHD returned no disk number for {path}", vm=vm.name,
                                 stage="answer-file", cause="the disk did not attach to the host")
            parts = self.c.t.invoke(ops.partitions_of(number)).objects()
            letters = [str(p.get("DriveLetter")) for p in parts
                       if p.get("DriveLetter") and str(p.get("DriveLetter")).strip("\x00 ")]
            if not letters:
                raise StageError(f"{vm.name}: the mounted disk {path} has no partition with a drive letter",
                                 vm=vm.name, stage="answer-file",
                                 hint="is the base image a sysprepped Windows system disk?")
            self.c.t.invoke(ops.write_answer_file(letters[-1][:1], xml))
        finally:
            dismount_disk(self.c.t, path)
        self._xml.pop(vm.name, None)
        # What status can verify in the guest later: only what this answer file asked for is checked.
        self.c.journal.record_vm(vm.name, answer_file_asks=answer_file_asks(xml))
        self.c.journal.stage_done(vm.name, "answer-file")
        return True

    def vm(self, vm: DesiredVm) -> bool:
        found = self.c.find_vm(vm)
        if found is None:
            # Not retried: a lost answer resumes this stage, which finds (adopts) the VM the call made.
            self.c.t.invoke(ops.create_vm(vm.name, memory=vm.memory, vhd_path=self.c.disk_path(vm),
                                        switch=self.c.lab.switch, path=self.c.root), retry=False)
            found = self.c.find_vm(vm)
            if found is None:
                raise StageError(f"{vm.name}: New-VM returned but the VM is not there",
                                 vm=vm.name, stage="vm")
            self.c.journal.record_vm(vm.name, id=str(found.get("Id") or ""))
            self.c.journal.stage_done(vm.name, "vm")
            return True
        self.c.journal.record_vm(vm.name, id=str(found.get("Id") or ""))
        return False

    def configure(self, vm: DesiredVm) -> bool:
        found = self.c.find_vm(vm)
        state = str(found.get("State")) if found is not None else ""
        fact = parse_vm(found) if found is not None else None
        needs = (not self.c.journal.has_stage(vm.name, "configure")
                 or (fact is not None and (fact.processor_count != vm.processors
                                           or fact.memory_startup != vm.memory)))
        if not needs:
            return False
        if state not in ("Off", ""):
            # Processor and memory changes, and exposing virtualization extensions, need the VM off.
            self.c.power_down(vm)
        self.c.t.invoke(ops.configure_vm(vm.name, processors=vm.processors, memory=vm.memory, mac=vm.mac,
                                       notes=self.c.owner.tag()))
        self.c.journal.stage_done(vm.name, "configure")
        return True

    def start(self, vm: DesiredVm) -> bool:
        found = self.c.find_vm(vm)
        if found is not None and str(found.get("State")) == "Running":
            return False
        self.c.t.invoke(ops.start_vm(vm.name))
        self.c.journal.stage_done(vm.name, "start")
        return True

    def running(self, vm: DesiredVm) -> bool:
        def probe() -> tuple[bool, str]:
            state = str(self.c.present_vm(vm, "running").get("State"))
            return state == "Running", f"state {state}"
        return self.c.poll(vm, "running", probe)

    def heartbeat(self, vm: DesiredVm) -> bool:
        def probe() -> tuple[bool, str]:
            obj = self.c.present_vm(vm, "running")
            heartbeat = str(obj.get("Heartbeat"))
            if str(obj.get("State")) != "Running":
                raise StageError(f"{vm.name}: the VM stopped while booting (state {obj.get('State')})",
                                 vm=vm.name, stage="heartbeat", cause="the guest shut down or crashed")
            return heartbeat == HEALTHY, f"heartbeat {heartbeat}"
        return self.c.poll(vm, "heartbeat", probe)

    def ip(self, vm: DesiredVm) -> bool:
        def probe() -> tuple[bool, str]:
            res = self.c.t.invoke(ops.vm_adapters(vm.name))
            ips = [ip for o in res.objects() for ip in parse_adapter(o).ips]
            return vm.ip in ips, f"reported {', '.join(ips) or 'no address'}"
        return self.c.poll(vm, "ip", probe)

    def logon(self, vm: DesiredVm) -> bool:
        def probe() -> tuple[bool, str]:
            try:
                res = self.c.guest(vm, "probe")
            except RemoteCommandError as err:
                # By the record's type, not its text: the host's messages are in its display language.
                # PowerShell Direct reports a refused logon as a PSDirectException ("The credential is
                # invalid." on an English host; transcripts in tests/sim/transcripts/psdirect).
                if err.category == "PSDirectException" or "InvalidCredential" in err.fqid \
                        or "AccessDenied" in err.fqid:
                    raise StageError(f"{vm.name}: PowerShell Direct refused the credential: {err.message}",
                                     vm=vm.name, stage="logon", cause=self.c.cause_of("logon"),
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
        self.c.poll(vm, "logon", probe)
        return False

    def cleanup(self, vm: DesiredVm) -> bool:
        if self.c.journal.has_stage(vm.name, "cleanup"):
            return False
        res = self.c.guest(vm, "remove-answer-file")
        self.c.journal.stage_done(vm.name, "cleanup")
        info = res.objects()[0] if res.objects() else None
        return bool(info.get("Changed")) if info is not None else False

