"""The stages that bring one VM from nothing to ready: build (disk, answer file, VM, configuration, start)
and readiness (running, heartbeat, address, PowerShell Direct logon, answer file removed).

Each stage reads the host before it acts and records itself in the journal when done, so a resumed stage
adopts what an earlier (killed, or answer-lost) attempt made. The order, timeouts and likely causes are the
stage table's (labctl.engine.stages).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from labctl.engine.context import StageContext
from labctl.engine.destroy import dismount_disk
from labctl.engine.plan import DesiredVm, is_ours
from labctl.errors import RemoteCommandError, StageError, TemplateError
from labctl.hyperv import ops
from labctl.hyperv.facts import attached_disk_number, parse_adapter, parse_vm
from labctl.render.check import answer_file_asks
from labctl.transport.base import RemoteObject, Result

HEALTHY = "OkApplicationsHealthy"
VM_TYPE = "Microsoft.HyperV.PowerShell.VirtualMachine"
VHD_TYPE = "Microsoft.Vhd.PowerShell.VirtualHardDisk"


@dataclass
class _View:
    """What the host last reported about one VM's build, read in the round trip that ended the previous stage
    (after its last action), for the next stage to decide on."""

    vm: RemoteObject | None = None  # the VM of that name that is ours
    vhd: RemoteObject | None = None  # its disk's VHD object (None: no such file)
    partitions: list[RemoteObject] | None = None  # the disk's partitions, when the previous stage mounted it
    mounted: bool = False  # the previous stage left the disk mounted (its answer file just written)


# The cmdlets of the combined build pipelines, by the stage whose work they are (a failure belongs to that stage).
_OWNER = {"newvhd": "disk", "mountvhd": "answer-file", "getdisk": "answer-file", "getpartition": "answer-file",
          "dismountvhd": "vm", "newvm": "vm", "startvm": "start", "setvm": "configure",
          "setvmprocessor": "configure", "setvmmemory": "configure", "setvmnetworkadapter": "configure",
          "getvmintegrationservice": "configure", "whereobject": "configure", "enablevmintegrationservice": "configure"}


def _stage_of(err: RemoteCommandError, default: str) -> str:
    """The build stage whose cmdlet failed, from the error's FullyQualifiedErrorId (``Id,Namespace.NewVM``: the
    cmdlet's class, ``SetContentCommand`` for the PowerShell ones); ``default`` when it names none of them."""
    cls = err.fqid.rsplit(",", 1)[-1].rsplit(".", 1)[-1].lower() if "," in err.fqid else ""
    cls = cls.removesuffix("command")
    return _OWNER.get(cls, default)


def _partitions_of_mount(res: Result) -> list[RemoteObject]:
    """The partitions of the disk that ops.mounted_partitions mounted (its VHD object names the disk number)."""
    number = attached_disk_number(Result(output=[o for o in res.objects() if o.is_a(VHD_TYPE)]))
    if number is None:
        return []
    return [o for o in res.objects() if o.get("PartitionNumber") is not None
            and str(o.get("DiskNumber")) == str(number)]


class ReadinessStages:
    """The build and readiness stages of every VM of one run (the answer files rendered but not yet injected).

    Host-side creation takes four round trips per VM: the disk stage reads the VM and its disk, then makes the
    disk and mounts it (its partitions read back); the answer-file stage writes the answer file; the vm stage
    dismounts the disk, makes the VM, configures and starts it. A stage whose work an earlier
    stage's round trip did records it, or raises the error that round trip met doing it (a failed Start-VM
    fails the start stage), and each stage acts only on what the host reported after the last action. A stage
    run again (a transient failure, a lost answer) reads the host afresh; configure then checks the settings
    on the host before it touches a VM that may already be booting.
    """

    def __init__(self, ctx: StageContext, answer_file: Callable[[DesiredVm], str]) -> None:
        self.c = ctx
        self.render_answer_file = answer_file
        self._xml: dict[str, str] = {}
        self._views: dict[str, _View] = {}
        self._done: dict[str, set[str]] = {}  # VM -> stages whose work an earlier stage's round trip did
        self._failed: dict[str, tuple[str, RemoteCommandError]] = {}  # VM -> (stage, its error) from such a trip
        self._lock = threading.Lock()

    # -- the view one stage hands the next --------------------------------------------------------------
    def _ours(self, objects: list[RemoteObject]) -> RemoteObject | None:
        for obj in objects:
            if obj.is_a(VM_TYPE) and is_ours(parse_vm(obj), self.c.owner, self.c.root, str(obj.get("Path") or "")):
                return obj
        return None

    def _read(self, vm: DesiredVm) -> _View:
        res = self.c.t.invoke(ops.build_view(vm.name, self.c.disk_path(vm)))
        vhd = next((o for o in res.objects() if o.is_a(VHD_TYPE)), None)
        return _View(vm=self._ours(res.objects()), vhd=vhd)

    def _take(self, vm: DesiredVm) -> _View | None:
        """The view the previous stage left (once: a stage that runs again reads the host itself)."""
        with self._lock:
            return self._views.pop(vm.name, None)

    def _hand(self, vm: DesiredVm, view: _View) -> None:
        with self._lock:
            self._views[vm.name] = view

    def _did_early(self, vm: DesiredVm, stage: str) -> bool:
        """True once if an earlier stage's round trip did ``stage``'s work; raises the error it met doing it."""
        with self._lock:
            failed = self._failed.get(vm.name)
            if failed is not None and failed[0] == stage:
                del self._failed[vm.name]
                raise failed[1]
            done = self._done.get(vm.name, set())
            if stage in done:
                done.discard(stage)
                return True
        return False

    def _found(self, vm: DesiredVm) -> RemoteObject | None:
        """The VM (ours) from the previous stage's view, else read from the host."""
        view = self._take(vm)
        if view is not None:
            self._hand(vm, view)  # configure and start decide on the same read-back
            return view.vm
        return self.c.find_vm(vm)

    # -- the stages -------------------------------------------------------------------------------------
    def disk(self, vm: DesiredVm) -> bool:
        path = self.c.disk_path(vm)
        view = self._read(vm)
        if view.vhd is not None:
            # Our lab folder carries the lab id: a disk there was made by an earlier run.
            self.c.journal.record_vm(vm.name, disk=path)
            self._hand(vm, view)
            return False
        # A VM without its answer file yet gets the disk mounted in the same round trip.
        mount = view.vm is None and not self.c.journal.has_stage(vm.name, "answer-file")
        try:
            res = self.c.t.invoke(ops.create_disk(path, vm.base_disk, mount=mount), retry=False)
        except RemoteCommandError as err:
            if _stage_of(err, "disk") == "disk":
                raise
            # The disk was made; mounting it failed: the answer-file stage's error, raised there.
            with self._lock:
                self._failed[vm.name] = ("answer-file", err)
            res = None
        self.c.journal.record_vm(vm.name, disk=path)
        self.c.journal.stage_done(vm.name, "disk")
        if res is not None:
            vhd = next((o for o in res.objects() if o.is_a(VHD_TYPE)), None)
            self._hand(vm, _View(vm=None, vhd=vhd, partitions=_partitions_of_mount(res) if mount else None))
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
        self._did_early(vm, "answer-file")  # a mount that failed in the disk stage's round trip fails here
        view = self._take(vm)
        if not self.c.journal.has_stage(vm.name, "answer-file") and view is None:
            view = self._read(vm)
        if view is None or view.vm is not None or self.c.journal.has_stage(vm.name, "answer-file"):
            if view is not None:
                self._hand(vm, view)
            return False  # injected before the first boot only: setup won't read it again
        path = self.c.disk_path(vm)
        xml = self._xml.get(vm.name) or self.render_answer_file(vm)
        try:
            parts = view.partitions
            if parts is None:
                # A run killed (or an answer lost) while the disk was mounted left it mounted: use that mount.
                number = attached_disk_number(Result(output=[view.vhd])) if view.vhd is not None else None
                if number is not None:
                    parts = self.c.t.invoke(ops.partitions_of(number)).objects()
                else:
                    parts = _partitions_of_mount(self.c.t.invoke(ops.mounted_partitions(path), retry=False))
            letters = [str(p.get("DriveLetter")) for p in parts
                       if p.get("DriveLetter") and str(p.get("DriveLetter")).strip("\x00 ")]
            if not letters:
                raise StageError(f"{vm.name}: the mounted disk {path} has no partition with a drive letter",
                                 vm=vm.name, stage="answer-file",
                                 hint="is the base image a sysprepped Windows system disk?")
            self.c.t.invoke(ops.write_answer_file(letters[-1][:1], xml))
        except BaseException:
            dismount_disk(self.c.t, path)
            raise
        # The disk stays mounted: the vm stage dismounts it in the round trip that makes the VM.
        self._xml.pop(vm.name, None)
        # What status can verify in the guest later: only what this answer file asked for is checked.
        self.c.journal.record_vm(vm.name, answer_file_asks=answer_file_asks(xml))
        self.c.journal.stage_done(vm.name, "answer-file")
        self._hand(vm, _View(vm=None, vhd=view.vhd, mounted=True))
        return True

    def vm(self, vm: DesiredVm) -> bool:
        view = self._take(vm) or self._read(vm)
        if view.vm is not None:
            self._hand(vm, view)
            self.c.journal.record_vm(vm.name, id=str(view.vm.get("Id") or ""))
            return False
        mounted = view.mounted or (view.vhd is not None
                                   and attached_disk_number(Result(output=[view.vhd])) is not None)
        # Not retried: a lost answer resumes this stage, which finds (adopts) the VM the call made.
        try:
            res = self.c.t.invoke(ops.create_and_start_vm(
                vm.name, disk_path=self.c.disk_path(vm), dismount=mounted, memory=vm.memory,
                switch=self.c.lab.switch, path=self.c.root, processors=vm.processors, mac=vm.mac,
                notes=self.c.owner.tag()), retry=False)
        except RemoteCommandError as err:
            stage = _stage_of(err, "vm")
            if stage == "vm":
                if mounted:
                    dismount_disk(self.c.t, self.c.disk_path(vm))
                raise
            # The VM was made; configuring or starting it failed: that stage's error, raised by that stage.
            found = self.c.find_vm(vm)
            if found is None:
                raise
            self._created(vm, found, ["configure"] if stage == "start" else [])
            with self._lock:
                self._failed[vm.name] = (stage, err)
            return True
        found = self._ours(res.objects())
        if found is None:
            raise StageError(f"{vm.name}: New-VM returned but the VM is not there", vm=vm.name, stage="vm")
        self._created(vm, found, ["configure", "start"])
        return True

    def _created(self, vm: DesiredVm, found: RemoteObject, also: list[str]) -> None:
        """The vm stage made the VM and, in the same round trip, did ``also`` (configure, start)."""
        self.c.journal.record_vm(vm.name, id=str(found.get("Id") or ""))
        self.c.journal.stage_done(vm.name, "vm")
        for stage in also:
            self.c.journal.stage_done(vm.name, stage)
        with self._lock:
            self._done[vm.name] = set(also)

    def _configured(self, vm: DesiredVm) -> bool:
        """Whether the VM already has every setting configure_vm makes (read from the host): a run that lost the
        answer to (or was killed during) the vm stage's round trip may have configured and started it."""
        res = self.c.t.invoke(ops.vm_settings(vm.name))
        found = self._ours(res.objects())
        if found is None:
            return False
        fact = parse_vm(found)
        vm_id = fact.id.lower()
        mine = [o for o in res.objects() if str(o.get("VMId") or "").lower() == vm_id and not o.is_a(VM_TYPE)]
        processor = next((o for o in mine if o.is_a("Microsoft.HyperV.PowerShell.VMProcessor")), None)
        memory = next((o for o in mine if o.is_a("Microsoft.HyperV.PowerShell.VMMemory")), None)
        adapters = [parse_adapter(o) for o in mine if o.is_a("Microsoft.HyperV.PowerShell.VMNetworkAdapter")]
        gsi = [o for o in mine if str(o.get("Id") or "").upper().endswith(ops.GUEST_SERVICE_INTERFACE_ID)]
        return (fact.processor_count == vm.processors and fact.memory_startup == vm.memory
                and fact.owner == self.c.owner
                and processor is not None and str(processor.get("ExposeVirtualizationExtensions")).lower() == "true"
                and memory is not None and str(memory.get("DynamicMemoryEnabled")).lower() == "false"
                and bool(adapters) and all(a.spoofing and a.mac.replace("-", "") == vm.mac.replace("-", "").upper()
                                           for a in adapters)
                and bool(gsi) and all(str(o.get("Enabled")).lower() == "true" for o in gsi))

    def configure(self, vm: DesiredVm) -> bool:
        if self._did_early(vm, "configure"):
            return True
        found = self._found(vm)
        state = str(found.get("State")) if found is not None else ""
        fact = parse_vm(found) if found is not None else None
        journaled = self.c.journal.has_stage(vm.name, "configure")
        needs = (not journaled or (fact is not None and (fact.processor_count != vm.processors
                                                          or fact.memory_startup != vm.memory)))
        if not needs:
            return False
        if not journaled and found is not None and self._configured(vm):
            self.c.journal.stage_done(vm.name, "configure")  # done by a run that never heard back
            return False
        self._take(vm)  # what follows changes the VM: start reads it again
        if state not in ("Off", ""):
            # Processor and memory changes, and exposing virtualization extensions, need the VM off.
            self.c.power_down(vm)
        self.c.t.invoke(ops.configure_vm(vm.name, processors=vm.processors, memory=vm.memory, mac=vm.mac,
                                       notes=self.c.owner.tag()))
        self.c.journal.stage_done(vm.name, "configure")
        return True

    def start(self, vm: DesiredVm) -> bool:
        if self._did_early(vm, "start"):
            return True
        view = self._take(vm)
        found = view.vm if view is not None else self.c.find_vm(vm)
        if found is not None and str(found.get("State")) == "Running":
            return False
        self.c.t.invoke(ops.start_vm(vm.name))
        self.c.journal.stage_done(vm.name, "start")
        return True

    # The host-side waits: every waiting VM of the run is read in the same poll (labctl.engine.watch).
    def running(self, vm: DesiredVm) -> bool:
        return self.c.watch.wait(vm, "running")

    def heartbeat(self, vm: DesiredVm) -> bool:
        return self.c.watch.wait(vm, "heartbeat")

    def ip(self, vm: DesiredVm) -> bool:
        return self.c.watch.wait(vm, "ip")

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

