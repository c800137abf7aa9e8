"""Lab-wide power: stop every VM (a guest shutdown, turned off only after a timeout), start every VM and wait
until the lab is ready again, in a constant number of host pipelines whatever the number of VMs.

Every host call names all the lab's VMs at once (``Get-VM -Name a,b,c``, ``Invoke-Command -VMName a,b,c``)
and acts only on the lab's own VMs, selected by their Id after reading which VMs carry the lab's ownership
tag (a same-named VM of someone else is never touched). Readiness is the one ``up`` waits for (the stage
table's running, heartbeat, ip, logon, with their timeouts and likely causes), and for container hosts Docker
answering and a process (and Hyper-V) isolated container running (the verify-isolation step), as ``up``'s
verify stage judges it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from labctl.engine.batch import vm_of_error
from labctl.engine.journal import Journal
from labctl.engine.plan import DesiredLab, DesiredVm, is_ours
from labctl.engine.progress import NoProgress, Progress
from labctl.engine.readiness import HOST_WAITS, host_check
from labctl.engine.stages import Timeouts, cause_of
from labctl.engine.status import parse_server_version
from labctl.errors import Interrupted, LabctlError, StageError
from labctl.guest.steps import load_step
from labctl.hyperv import ops
from labctl.hyperv.facts import Ownership, VmFact, parse_adapter, parse_vm
from labctl.transport.base import Credential, RemoteError, RemoteObject, Result, Transport

VM_TYPE = "Microsoft.HyperV.PowerShell.VirtualMachine"
SNAPSHOT_TYPE = "Microsoft.HyperV.PowerShell.VMSnapshot"
ADAPTER_TYPE = "Microsoft.HyperV.PowerShell.VMNetworkAdapter"
DEFAULT_STOP_TIMEOUT = 300.0  # seconds a guest gets to shut down before it is turned off

# The readiness a VM goes through after a start, in order (container hosts add docker and verify).
GUEST_WAITS = ("logon",)
CONTAINER_WAITS = ("docker", "verify")


@dataclass
class LabHost:
    """What the lab-wide verbs share: the host, the lab as wished, its journal and ownership, progress, the
    guests' credential and the stage timeouts."""

    t: Transport
    lab: DesiredLab
    journal: Journal
    owner: Ownership
    progress: Progress = field(default_factory=NoProgress)
    credential: Credential | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    poll_min: float = 0.05
    poll_max: float = 2.0

    @property
    def names(self) -> list[str]:
        return [vm.name for vm in self.lab.vms]

    def vm(self, name: str) -> DesiredVm:
        return next(v for v in self.lab.vms if v.name == name)

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` unless the run is interrupted."""
        if self.t.cancel.wait(max(seconds, 0.0)):
            raise Interrupted("interrupted")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint as Get-VMSnapshot reports it."""

    vm: str
    vm_id: str
    id: str
    name: str
    created: str = ""


@dataclass
class LabView:
    """The lab's VMs as the host shows them, with their checkpoints (one pipeline: ``read_view``)."""

    vms: dict[str, VmFact] = field(default_factory=dict)  # lab VM name -> the lab's own VM
    foreign: dict[str, int] = field(default_factory=dict)  # lab VM name -> VMs of that name that are not ours
    checkpoints: list[Checkpoint] = field(default_factory=list)  # of every VM of those names (ours or not)

    def ids(self, names: Iterable[str]) -> list[str]:
        return [self.vms[n].id for n in names if n in self.vms]

    def ours(self) -> list[Checkpoint]:
        mine = {f.id.lower() for f in self.vms.values()}
        return [c for c in self.checkpoints if c.vm_id.lower() in mine]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def parse_view(lab: DesiredLab, owner: Ownership, result: Result) -> LabView:
    """A LabView from the output of ops.lab_vm_view (pure)."""
    view = LabView()
    wanted = {vm.name.lower(): vm.name for vm in lab.vms}
    for obj in result.objects():
        if obj.is_a(VM_TYPE):
            fact = parse_vm(obj)
            name = wanted.get(fact.name.lower())
            if name is None:
                continue
            if is_ours(fact, owner, ""):
                view.vms[name] = fact
            else:
                view.foreign[name] = view.foreign.get(name, 0) + 1
        elif obj.is_a(SNAPSHOT_TYPE):
            view.checkpoints.append(Checkpoint(vm=_text(obj.get("VMName")), vm_id=_text(obj.get("VMId")),
                                               id=_text(obj.get("Id")), name=_text(obj.get("Name")),
                                               created=_text(obj.get("CreationTime"))))
    return view


def read_view(h: LabHost) -> LabView:
    """The lab's VMs and their checkpoints, in one pipeline."""
    return parse_view(h.lab, h.owner, h.t.invoke(ops.lab_vm_view(h.names)))


def errors_by_vm(result_errors: Iterable[RemoteError], names: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Errors of a lab-wide call by VM (the first one each), and those that name no VM."""
    names = list(names)
    by_vm: dict[str, str] = {}
    other: list[str] = []
    for err in result_errors:
        vm = vm_of_error(err, names)
        text = f"{err.message} ({err.fqid})" if err.fqid else err.message
        if vm is None:
            other.append(text)
        else:
            by_vm.setdefault(vm, text)
    return by_vm, other


@dataclass
class VmPower:
    """How one VM ended a lab-wide verb."""

    name: str
    ok: bool
    state: str  # as the host reports it at the end ("Absent" when there is no such VM of the lab)
    action: str  # what labctl did: "shut down", "turned off", "already off", "started", "ready", ...
    stage: str = ""  # the stage it stopped at when it failed
    detail: str = ""
    error: LabctlError | None = None

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "state": self.state, "action": self.action, "stage": self.stage or None,
                "detail": self.detail or None, "error": self.error.message if self.error else None,
                "cause": getattr(self.error, "cause", None)}


def _failed(h: LabHost, name: str, stage: str, message: str, cause: str | None = None, state: str = "",
            action: str = "failed") -> VmPower:
    err = StageError(f"{name}: {stage}: {message}", vm=name, stage=stage, cause=cause,
                     hint=f"likely cause: {cause}" if cause else None)
    h.progress.stage(name, stage, "failed", message)
    return VmPower(name, False, state or "Unknown", action, stage, message, err)


def absent(h: LabHost, view: LabView, stage: str) -> dict[str, VmPower]:
    """The lab's VMs that are not on the host (or only as someone else's VM of that name)."""
    out: dict[str, VmPower] = {}
    for name in h.names:
        if name in view.vms:
            continue
        why = ("only a VM of that name that labctl did not create for this lab is on the host"
               if view.foreign.get(name) else "the VM is not on the host")
        out[name] = _failed(h, name, stage, why, "the lab is not (fully) up: run labctl up", state="Absent",
                            action="skipped")
    return out


# --- stop -------------------------------------------------------------------------------------------------


def stop_lab(h: LabHost, timeout: float = DEFAULT_STOP_TIMEOUT) -> dict[str, VmPower]:
    """Shut every running VM of the lab down through its guest; turn off only those still running after
    ``timeout`` seconds (or whose guest refused the shutdown), and say so per VM."""
    view = read_view(h)
    report = absent(h, view, "stop")
    states = {n: f.state for n, f in view.vms.items()}
    for name, state in states.items():
        if state == "Off":
            h.progress.stage(name, "stop", "skip", "already off")
            report[name] = VmPower(name, True, "Off", "already off")
        elif state == "Saved":
            # Its memory is on disk, nothing runs: left as it is (Stop-VM would discard the saved state).
            h.progress.stage(name, "stop", "skip", "saved: left as is")
            report[name] = VmPower(name, True, "Saved", "left saved", detail="its saved state is kept")
    down = [n for n in h.names if n in states and n not in report]
    if not down:
        return report
    for name in down:
        h.progress.stage(name, "stop", "start", "shutting the guest down")
    refused: dict[str, str] = {}
    running = [n for n in down if states[n] == "Running"]
    if running:
        res = h.t.invoke(ops.shutdown_lab_vms(running, view.ids(running)), retry=False)
        refused, _ = errors_by_vm(res.errors, running)
    deadline = time.monotonic() + timeout
    delay = h.poll_min
    while True:
        states = _states(h, down)
        waiting = [n for n in down if states.get(n) not in ("Off", None)]
        if not waiting or all(n in refused for n in waiting) or time.monotonic() >= deadline:
            break
        h.wait(min(delay, max(deadline - time.monotonic(), 0.0)))
        delay = min(delay * 2, h.poll_max)
    stragglers = [n for n in down if states.get(n) not in ("Off", None)]
    if stragglers:
        for name in stragglers:
            h.progress.stage(name, "stop", "start", "turning the VM off")
        res = h.t.invoke(ops.turn_off_lab_vms(stragglers, view.ids(stragglers)), retry=False)
        off_errors, _ = errors_by_vm(res.errors, stragglers)
        states = _states(h, down)
    else:
        off_errors = {}
    for name in down:
        state = states.get(name) or "Absent"
        if name not in stragglers:
            h.progress.stage(name, "stop", "done", "shut down")
            report[name] = VmPower(name, state == "Off", state, "shut down")
            continue
        why = (f"the guest refused to shut down ({refused[name]})" if name in refused
               else f"still {_text(state).lower() or 'running'} after {timeout:g} s")
        if state == "Off":
            h.progress.stage(name, "stop", "done", f"turned off: {why}")
            report[name] = VmPower(name, True, "Off", "turned off", detail=why)
        else:
            report[name] = _failed(h, name, "stop", f"could not be turned off ({off_errors.get(name) or why})",
                                   "Hyper-V did not turn the VM off: look at the Hyper-V-VMMS event log on the host",
                                   state=state)
    return report


def _states(h: LabHost, names: list[str]) -> dict[str, str]:
    """The state of each of the lab's VMs named (one pipeline; a VM gone is missing from the mapping)."""
    res = h.t.invoke(ops.lab_readiness(names))
    out: dict[str, str] = {}
    wanted = {n.lower(): n for n in names}
    for obj in res.objects():
        if obj.is_a(VM_TYPE):
            fact = parse_vm(obj)
            name = wanted.get(fact.name.lower())
            if name is not None and is_ours(fact, h.owner, ""):
                out[name] = fact.state
    return out


# --- start and wait for ready -------------------------------------------------------------------------------


def start_lab(h: LabHost) -> dict[str, VmPower]:
    """Start every VM of the lab that is not running (one pipeline), then wait until all are ready."""
    view = read_view(h)
    report = absent(h, view, "start")
    present = [n for n in h.names if n in view.vms]
    return {**report, **start_and_wait(h, view, present)}


def start_and_wait(h: LabHost, view: LabView, names: list[str], action: str = "started") -> dict[str, VmPower]:
    """Start those of ``names`` that are not running, then wait for every one of them to be ready."""
    stopped = [n for n in names if view.vms[n].state != "Running"]
    failed: dict[str, VmPower] = {}
    if stopped:
        for name in stopped:
            h.progress.stage(name, "start", "start", f"was {view.vms[name].state}")
        res = h.t.invoke(ops.start_lab_vms(stopped, view.ids(stopped)), retry=False)
        refused, _ = errors_by_vm(res.errors, stopped)
        for name, why in refused.items():
            failed[name] = _failed(h, name, "start", f"Start-VM failed: {why}",
                                   "Hyper-V refused to start the VM (not enough free memory, or a disk is missing)",
                                   state=view.vms[name].state)
        for name in stopped:
            if name not in failed:
                h.progress.stage(name, "start", "done")
    ready = wait_ready(h, {n: view.vms[n].id for n in names if n not in failed})
    for name, outcome in ready.items():
        if outcome.ok:
            outcome.action = action if name in stopped else "already running"
    return {**failed, **ready}


@dataclass
class _Wait:
    vm: DesiredVm
    vm_id: str
    stages: list[str]
    since: float
    last: str = ""

    @property
    def stage(self) -> str:
        """The stage it waits for; "" once it passed them all (it is then among a round's finished VMs)."""
        return self.stages[0] if self.stages else ""


def wait_ready(h: LabHost, vm_ids: dict[str, str]) -> dict[str, VmPower]:
    """Poll every VM of ``vm_ids`` (name -> Id) until it is ready, each stage with its own timeout.

    Per poll: one pipeline for the host's view of all waiting VMs, one Invoke-Command for all VMs waiting for
    a logon, one for all container hosts waiting for Docker, and one per base image for the isolation check."""
    now = time.monotonic()
    pending: dict[str, _Wait] = {}
    for name, vm_id in vm_ids.items():
        vm = h.vm(name)
        stages = [*HOST_WAITS, *GUEST_WAITS, *(CONTAINER_WAITS if vm.container_host else ())]
        pending[name] = _Wait(vm, vm_id, stages, now)
        h.progress.stage(name, stages[0], "start")
    done: dict[str, VmPower] = {}
    delay = h.poll_min
    while pending:
        for name, outcome in _round(h, pending).items():
            done[name] = outcome
            pending.pop(name, None)
        now = time.monotonic()
        for name, w in list(pending.items()):
            timeout = h.timeouts.of(w.stage)
            if now - w.since > timeout:
                cause = cause_of(w.stage)
                done[name] = _failed(h, name, w.stage, f"not ready after {timeout:.0f} s ({w.last or 'no answer'})",
                                     cause)
                pending.pop(name)
        if not pending:
            break
        h.wait(delay)
        delay = min(delay * 2, h.poll_max)
    return {n: done[n] for n in vm_ids}


def _advance(h: LabHost, w: _Wait, detail: str = "") -> bool:
    """The VM passed its current stage; True when it has no stage left."""
    h.progress.stage(w.vm.name, w.stage, "done", detail)
    w.stages.pop(0)
    w.since = time.monotonic()
    w.last = ""
    if not w.stages:
        return True
    h.progress.stage(w.vm.name, w.stage, "start")
    return False


def _ready(h: LabHost, w: _Wait) -> VmPower:
    h.progress.stage(w.vm.name, "ready", "done")
    return VmPower(w.vm.name, True, "Running", "ready")


def _round(h: LabHost, pending: dict[str, _Wait]) -> dict[str, VmPower]:
    """One poll of every waiting VM; the VMs that finished (ready or failed)."""
    finished: dict[str, VmPower] = {}
    host = [w for w in pending.values() if w.stage in HOST_WAITS]
    if host:
        finished.update(_host_poll(h, host))
    logon = [w for w in pending.values() if w.stage == "logon" and w.vm.name not in finished]
    if logon:
        finished.update(_logon_poll(h, logon))
    docker = [w for w in pending.values() if w.stage == "docker" and w.vm.name not in finished]
    if docker:
        finished.update(_docker_poll(h, docker))
    verify = [w for w in pending.values() if w.stage == "verify" and w.vm.name not in finished]
    if verify:
        finished.update(_verify(h, verify))
    return finished


def _host_poll(h: LabHost, waits: list[_Wait]) -> dict[str, VmPower]:
    res = h.t.invoke(ops.lab_readiness([w.vm.name for w in waits]))
    facts: dict[str, VmFact] = {}
    ips: dict[str, list[str]] = {}
    for obj in res.objects():
        if obj.is_a(VM_TYPE):
            fact = parse_vm(obj)
            facts[fact.id.lower()] = fact
        elif obj.is_a(ADAPTER_TYPE):
            ips.setdefault(_text(obj.get("VMId")).lower(), []).extend(parse_adapter(obj).ips)
    finished: dict[str, VmPower] = {}
    for w in waits:
        key = w.vm_id.lower()
        while w.stage in HOST_WAITS:
            check = host_check(w.stage, facts.get(key), ips.get(key, []), w.vm.ip)
            if check.failure is not None:
                finished[w.vm.name] = _failed(h, w.vm.name, w.stage, check.failure, check.cause, state=check.state)
                break
            w.last = check.last
            if not check.passed:
                break
            if _advance(h, w):
                finished[w.vm.name] = _ready(h, w)
                break
    return finished


def _by_vm(res: Result, names: list[str]) -> dict[str, RemoteObject]:
    """The one output object of a guest step per VM (PSComputerName names the VM)."""
    by_lower = {n.lower(): n for n in names}
    out: dict[str, RemoteObject] = {}
    for obj in res.objects():
        name = by_lower.get(_text(obj.get("PSComputerName")).lower())
        if name is not None:
            out.setdefault(name, obj)
    return out


def _guest(h: LabHost, waits: list[_Wait], step: str, arguments: list[object]) -> tuple[dict[str, RemoteObject],
                                                                                         dict[str, str], Result]:
    names = [w.vm.name for w in waits]
    if h.credential is None:
        raise LabctlError("the guests' credential is needed to check readiness over PowerShell Direct")
    res = h.t.invoke(ops.guest_invoke_many(names, h.credential, load_step(step).script, arguments))
    errors, _ = errors_by_vm(res.errors, names)
    return _by_vm(res, names), errors, res


def _logon_poll(h: LabHost, waits: list[_Wait]) -> dict[str, VmPower]:
    answers, errors, res = _guest(h, waits, "probe", [])
    refused = {vm for e in res.errors if (e.category == "PSDirectException" or "InvalidCredential" in e.fqid
                                          or "AccessDenied" in e.fqid)
               for vm in [vm_of_error(e, [w.vm.name for w in waits])] if vm}
    finished: dict[str, VmPower] = {}
    for w in waits:
        name = w.vm.name
        info = answers.get(name)
        if name in refused:
            finished[name] = _failed(h, name, "logon", f"PowerShell Direct refused the credential: {errors[name]}",
                                     cause_of("logon"), state="Running")
        elif info is None:
            w.last = errors.get(name, "no answer from the probe")
        elif _text(info.get("ComputerName")).lower() != name.lower():
            finished[name] = _failed(h, name, "logon", f"the guest calls itself {info.get('ComputerName')!r}",
                                     "the guest is not the VM the lab built", state="Running")
        elif _advance(h, w):
            finished[name] = _ready(h, w)
    return finished


def _docker_poll(h: LabHost, waits: list[_Wait]) -> dict[str, VmPower]:
    answers, errors, _ = _guest(h, waits, "docker-cli", [["version"]])
    finished: dict[str, VmPower] = {}
    for w in waits:
        info = answers.get(w.vm.name)
        raw = info.get("Output") if info is not None else None
        lines = [line for item in (raw if isinstance(raw, list) else [raw] if raw is not None else [])
                 for line in str(item).splitlines()]
        version = parse_server_version(lines) if info is not None and _int(info.get("ExitCode")) == 0 else None
        if version is None:
            w.last = errors.get(w.vm.name) or "the docker daemon did not answer docker version"
            continue
        if _advance(h, w, f"docker {version} running"):
            finished[w.vm.name] = _ready(h, w)
    return finished


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 1


def _verify(h: LabHost, waits: list[_Wait]) -> dict[str, VmPower]:
    """verify-isolation in every waiting container host, one Invoke-Command per base image."""
    finished: dict[str, VmPower] = {}
    groups: dict[str, list[_Wait]] = {}
    for w in waits:
        if not w.vm.container_images:
            if _advance(h, w):
                finished[w.vm.name] = _ready(h, w)
            continue
        groups.setdefault(w.vm.container_images[0], []).append(w)
    for ref, group in groups.items():
        answers, errors, _ = _guest(h, group, "verify-isolation", [ref])
        for w in group:
            name = w.vm.name
            obj = answers.get(name)
            if obj is None:
                finished[name] = _failed(h, name, "verify", f"the verify-isolation step failed: "
                                         f"{errors.get(name) or 'no result'}", cause_of("verify"), state="Running")
                continue
            facts = obj.get("Facts")
            result: dict[str, Any] = {"image": ref}
            for key, prop in (("process", "Process"), ("hyperv", "HyperV")):
                run = _prop(facts, prop)
                result[key] = {"ok": _truthy(_prop(run, "Ok")), "output": _lines(_prop(run, "Output")),
                               "error": _lines(_prop(run, "Error"))}
            h.journal.record_vm(name, verify=result)
            bad = [k for k in ("process", "hyperv") if not result[k]["ok"]
                   and (k == "process" or w.vm.isolation == "hyperv")]
            if bad:
                kind = "process-isolated" if bad[0] == "process" else "Hyper-V isolated"
                finished[name] = _failed(h, name, "verify", f"a {kind} {ref} container failed: "
                                         f"{result[bad[0]]['error'] or 'no error text'}",
                                         "the container host no longer runs containers after the restart",
                                         state="Running")
            elif _advance(h, w):
                finished[name] = _ready(h, w)
    return finished


def _prop(obj: Any, name: str) -> Any:
    if isinstance(obj, RemoteObject):
        return obj.get(name)
    if isinstance(obj, dict):
        return next((v for k, v in obj.items() if str(k).lower() == name.lower()), None)
    return None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _lines(value: Any) -> str:
    items = value if isinstance(value, list) else [] if value is None else [value]
    return "\n".join(str(v) for v in items if v is not None)
