"""Status: each VM's state, heartbeat, addresses, nested settings and checks, read from the host."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from labctl.engine.plan import DesiredLab, DesiredVm
from labctl.engine.stages import BOOTSTRAP_STAGES
from labctl.errors import LabctlError
from labctl.guest.steps import load_step
from labctl.hyperv import ops
from labctl.hyperv.facts import Ownership, parse_adapter, parse_vm
from labctl.transport.base import Credential, RemoteObject, Transport

GiB = 1024**3


@dataclass
class VmStatus:
    """What `labctl status` shows for one VM."""

    name: str
    exists: bool
    owned: bool = False
    state: str = "Absent"
    heartbeat: str = ""
    ips: list[str] = field(default_factory=list)
    expected_ip: str = ""
    memory_bytes: int = 0
    dynamic_memory: bool = False
    processors: int = 0
    expose_virtualization_extensions: bool = False
    mac_address_spoofing: bool = False
    mac: str = ""
    uptime_seconds: float = 0.0
    guest: dict[str, Any] = field(default_factory=dict)
    # Container hosts only: features, docker, images, isolation (see container_status).
    containers: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    copy: int | None = None  # labs with copies: the copy, and the key of the host it is placed on
    host: str = ""

    @property
    def healthy(self) -> bool:
        return self.exists and self.state == "Running" and self.heartbeat == "OkApplicationsHealthy" \
            and all(self.checks.values())

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["healthy"] = self.healthy
        return data


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("true", "on", "1")
    return bool(value)


# The firewall groups the guest probe reports, by id, with their English display names (what answer files
# written for English Windows name them by; Microsoft's unattend reference gives the Remote Desktop id).
_ENGLISH_GROUP_NAMES = {"@FirewallAPI.dll,-28752": "Remote Desktop",
                        "@FirewallAPI.dll,-30267": "Windows Remote Management"}

VM_TYPE = "Microsoft.HyperV.PowerShell.VirtualMachine"


def _host_status(vm: DesiredVm, owner: Ownership, objects: list[RemoteObject]) -> VmStatus:
    """One VM's status from the lab-wide host read (ops.lab_details): its VM (ours first, when several VMs
    carry the name) and the adapters, processor and memory whose VMId is that VM's."""
    vms = [o for o in objects if o.is_a(VM_TYPE) and str(o.get("Name") or "").lower() == vm.name.lower()]
    status = VmStatus(name=vm.name, exists=bool(vms), expected_ip=vm.ip)
    if not vms:
        return status
    obj = next((o for o in vms if parse_vm(o).owner == owner), vms[0])
    fact = parse_vm(obj)
    status.owned = fact.owner == owner
    status.state = fact.state
    status.heartbeat = fact.heartbeat or ""
    status.memory_bytes = fact.memory_startup
    status.dynamic_memory = fact.dynamic_memory
    status.processors = fact.processor_count
    status.uptime_seconds = fact.uptime_seconds
    vm_id = fact.id.lower()
    for o in objects:
        if o.is_a(VM_TYPE) or str(o.get("VMId") or "").lower() != vm_id:
            continue
        if o.is_a("Microsoft.HyperV.PowerShell.VMNetworkAdapter"):
            adapter = parse_adapter(o)
            status.ips.extend(adapter.ips)
            status.mac_address_spoofing = adapter.spoofing
            status.mac = adapter.mac
        elif o.is_a("Microsoft.HyperV.PowerShell.VMProcessor"):
            status.expose_virtualization_extensions = _as_bool(o.get("ExposeVirtualizationExtensions"))
        elif o.is_a("Microsoft.HyperV.PowerShell.VMMemory"):
            status.dynamic_memory = _as_bool(o.get("DynamicMemoryEnabled"))
    status.checks = {
        "nested: ExposeVirtualizationExtensions": status.expose_virtualization_extensions,
        "nested: static memory": not status.dynamic_memory,
        "nested: memory >= 4 GiB": status.memory_bytes >= 4 * GiB,
        "nested: MAC spoofing": status.mac_address_spoofing,
        "expected IP reported": vm.ip in status.ips,
    }
    return status


def _probe_checks(status: VmStatus, vm: DesiredVm, info: RemoteObject, journal_entry: dict[str, Any]) -> None:
    """What the guest's probe answer shows: who it is, and what its answer file asked for."""
    status.guest = {k: v for k, v in info.props.items()
                    if k in ("ComputerName", "Caption", "BuildNumber", "TimeZone", "RdpEnabled",
                             "PSRemoting", "AnswerFilePresent", "DnsServers")}
    status.checks["answer file applied: computer name"] = \
        str(info.get("ComputerName", "")).lower() == vm.name.lower()
    status.checks["answer file removed"] = not _as_bool(info.get("AnswerFilePresent"))
    asks = journal_entry.get("answer_file_asks") or {}
    if asks.get("rdp") is True:
        status.checks["answer file applied: Remote Desktop enabled"] = _as_bool(info.get("RdpEnabled"))
    wanted = {str(g).lower() for g in asks.get("firewall_groups") or []}
    for group in info.get("FirewallGroups") or []:
        if not isinstance(group, RemoteObject):
            continue
        shown = group.get("DisplayGroup")
        shown = shown[0] if isinstance(shown, list) and shown else shown
        # The answer file may name a group by id or by a display name (the English one, or the
        # guest's own); the guest reports its id and its name in the guest's language.
        names = {str(group.get("Group")).lower(), str(shown or "").lower(),
                 _ENGLISH_GROUP_NAMES.get(str(group.get("Group")), "").lower()}
        if not names & wanted:
            continue
        label = f"{shown} ({group.get('Group')})" if shown else str(group.get("Group"))
        status.checks[f"answer file applied: firewall group {label}"] = _as_bool(group.get("Enabled"))


@dataclass
class _GuestAnswers:
    """A batched guest call's answers: each VM's output objects in order, and its first error."""

    objects: dict[str, list[RemoteObject]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


GuestCall = tuple[list[DesiredVm], Credential, str, list[object]]


def _guest_calls(t: Transport, calls: list[GuestCall]) -> _GuestAnswers:
    """Several batched PowerShell Direct calls (``Invoke-Command -VMName a,b,c`` each) in one pipeline; the
    answers by VM (PSComputerName), the errors by the VM they name. A call that fails as a whole is every
    named VM's error."""
    from labctl.engine.power import errors_by_vm  # power reads docker versions with this module's parser

    names = list(dict.fromkeys(v.name for vms, _c, _s, _a in calls for v in vms))
    answers = _GuestAnswers()
    if not calls:
        return answers
    try:
        res = t.invoke(ops.guest_steps_many([([v.name for v in vms], cred, script, args)
                                             for vms, cred, script, args in calls]))
    except LabctlError as err:
        answers.errors = {n: err.message for n in names}
        return answers
    answers.errors, _ = errors_by_vm(res.errors, names)
    by_lower = {n.lower(): n for n in names}
    for obj in res.objects():
        name = by_lower.get(str(obj.get("PSComputerName") or "").lower())
        if name is not None:
            answers.objects.setdefault(name, []).append(obj)
    return answers


def _by_credential(vms: list[DesiredVm], credential_for: Any) -> list[tuple[list[DesiredVm], Credential]]:
    """The VMs grouped by their guest credential (one batched call per credential; a lab has one)."""
    groups: list[tuple[list[DesiredVm], Credential]] = []
    for vm in vms:
        cred = credential_for(vm)
        for members, known in groups:
            if known == cred:
                members.append(vm)
                break
        else:
            groups.append(([vm], cred))
    return groups


def _docker_answer(objs: list[RemoteObject]) -> tuple[int, list[str]]:
    """A docker-cli step's exit code and output lines."""
    obj = objs[0] if objs else None
    if obj is None:
        return 1, []
    try:
        code = int(obj.get("ExitCode") or 0)
    except (TypeError, ValueError):
        code = 1
    raw = obj.get("Output")
    items = raw if isinstance(raw, list) else ([] if raw is None else [raw])
    return code, [line for item in items for line in str(item).splitlines()]


def parse_server_version(lines: list[str]) -> str | None:
    """The engine's version from `docker version` output (None when the daemon did not answer)."""
    in_server = False
    for line in lines:
        if line.startswith("Server"):
            in_server = True
            continue
        if in_server:
            key, _, value = line.strip().partition(":")
            if key.strip() == "Version" and value.strip():
                return value.strip()
    return None


def parse_images(lines: list[str]) -> list[str]:
    """``repository:tag`` of each row of `docker images` output."""
    refs = []
    for line in lines:
        cols = line.split()
        if len(cols) < 2 or cols[0] == "REPOSITORY":
            continue
        refs.append(f"{cols[0]}:{cols[1]}")
    return refs


def container_status(vm: DesiredVm, asked: tuple[list[RemoteObject], str | None] | None, entry: dict[str, Any],
                     status: VmStatus) -> None:
    """A container host's features, Docker, base images and isolation checks, as ``checks`` entries.

    ``asked``: the guest's answers to ``docker version`` and ``docker images`` (docker-cli step, in that order)
    and its error, when it was asked (healthy, logged on); otherwise, and for the features and the isolation
    runs, the journal's facts from ``up``.
    """
    stages = set(entry.get("stages") or [])
    info: dict[str, Any] = {
        "bootstrap": {s: s in stages for s in BOOTSTRAP_STAGES},
        "features": list(entry.get("features") or []),
        "isolation_default": vm.isolation,
        "images_expected": list(vm.container_images),
    }
    for feature in vm.windows_features:
        status.checks[f"container host: {feature} feature installed"] = feature in info["features"]
    docker = entry.get("docker") or {}
    info["docker_placeholder"] = bool(docker.get("placeholder"))
    if asked is not None:
        info["source"] = "guest"
        objs, error = asked
        code, lines = _docker_answer(objs[:1])
        version = parse_server_version(lines) if code == 0 else None
        if version is None and error:
            status.problems.append(f"docker in the guest did not answer: {error}")
        info["docker_running"] = version is not None
        info["docker_version"] = version
        images: list[str] = []
        if version is not None:
            code, lines = _docker_answer(objs[1:2])
            images = parse_images(lines) if code == 0 else []
        info["images"] = images
    else:
        info["source"] = "journal"
        # Installed is the journal's word; running needs a running VM (an Off or Saved VM runs nothing).
        info["docker_running"] = "docker" in stages and status.state == "Running"
        info["docker_version"] = docker.get("server_version")
        info["images"] = list(entry.get("images") or [])
    status.checks["container host: Docker service running"] = bool(info["docker_running"])
    for ref in vm.container_images:
        status.checks[f"container host: image {ref}"] = ref in info["images"]
    verify = entry.get("verify") or {}
    info["isolation"] = {k: verify.get(k) for k in ("process", "hyperv") if verify.get(k) is not None}
    status.checks["container host: process isolation"] = bool((verify.get("process") or {}).get("ok"))
    if "Hyper-V" in vm.windows_features:
        # Where Hyper-V is installed, Hyper-V isolated containers must run too (on a process-only VM without
        # Hyper-V the result is shown but not judged).
        status.checks["container host: hyperv isolation"] = bool((verify.get("hyperv") or {}).get("ok"))
    if entry.get("docker_tls"):
        info["docker_tls"] = entry["docker_tls"]
    status.containers = info


def lab_status(t: Transport, lab: DesiredLab, owner: Ownership,
               credential_for: Any = None, journal: dict[str, Any] | None = None) -> list[VmStatus]:
    """Status of every VM of the lab, in lab order (``journal``: the journal's snapshot, for bootstrap facts).

    Three pipelines whatever the number of VMs: the host's view of all of them; the probe in every healthy
    guest (one ``Invoke-Command -VMName a,b,c``); ``docker version`` and ``docker images`` in every container
    host that answered the probe (two such statements in one pipeline)."""
    entries = (journal or {}).get("vms") or {}
    objects = t.invoke(ops.lab_details([vm.name for vm in lab.vms])).objects() if lab.vms else []
    rows = {vm.name: _host_status(vm, owner, objects) for vm in lab.vms}
    healthy = [vm for vm in lab.vms if rows[vm.name].heartbeat == "OkApplicationsHealthy"]
    groups = _by_credential(healthy, credential_for) if credential_for is not None else []
    probe = _guest_calls(t, [(vms, cred, load_step("probe").script, []) for vms, cred in groups])
    live: list[DesiredVm] = []
    for vm in healthy if groups else []:
        answer = next(iter(probe.objects.get(vm.name, [])), None)
        if answer is None:
            rows[vm.name].problems.append(f"guest probe failed: {probe.errors.get(vm.name, 'no answer')}")
            rows[vm.name].checks["PowerShell Direct logon"] = False
            continue
        _probe_checks(rows[vm.name], vm, answer, entries.get(vm.name) or {})
        live.append(vm)
    hosts = [vm for vm in live if vm.container_host]
    docker_cli = load_step("docker-cli").script
    calls: list[GuestCall] = []
    for vms, cred in _by_credential(hosts, credential_for) if hosts else []:
        calls += [(vms, cred, docker_cli, [["version"]]), (vms, cred, docker_cli, [["images"]])]
    asked = _guest_calls(t, calls)
    for vm in lab.vms:
        if vm.container_host:
            answers = (asked.objects.get(vm.name, []), asked.errors.get(vm.name)) if vm in hosts else None
            container_status(vm, answers, entries.get(vm.name) or {}, rows[vm.name])
    return [rows[vm.name] for vm in lab.vms]
