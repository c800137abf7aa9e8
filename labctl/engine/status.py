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

def vm_status(t: Transport, vm: DesiredVm, owner: Ownership, credential: Credential | None,
              journal_entry: dict[str, Any] | None = None) -> VmStatus:
    """Read one VM (and, when it is healthy and a credential is given, ask the guest)."""
    res = t.invoke(ops.vm_details(vm.name))
    vms = [o for o in res.objects() if any(t_.endswith("VirtualMachine") for t_ in o.type_names)]
    status = VmStatus(name=vm.name, exists=bool(vms), expected_ip=vm.ip)
    if not vms:
        return status
    obj = vms[0]
    fact = parse_vm(obj)
    status.owned = fact.owner == owner
    status.state = fact.state
    status.heartbeat = fact.heartbeat or ""
    status.memory_bytes = fact.memory_startup
    status.dynamic_memory = fact.dynamic_memory
    status.processors = fact.processor_count
    status.uptime_seconds = fact.uptime_seconds
    for o in res.objects():
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
    if credential is not None and status.heartbeat == "OkApplicationsHealthy":
        try:
            out = t.invoke(ops.guest_invoke(vm.name, credential, load_step("probe").script, []))
            info = next((o for o in out.objects()), None)
            if isinstance(info, RemoteObject):
                status.guest = {k: v for k, v in info.props.items()
                                if k in ("ComputerName", "Caption", "BuildNumber", "TimeZone", "RdpEnabled",
                                         "PSRemoting", "AnswerFilePresent", "DnsServers")}
                status.checks["answer file applied: computer name"] = \
                    str(info.get("ComputerName", "")).lower() == vm.name.lower()
                status.checks["answer file removed"] = not _as_bool(info.get("AnswerFilePresent"))
                asks = (journal_entry or {}).get("answer_file_asks") or {}
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
        except LabctlError as err:
            status.problems.append(f"guest probe failed: {err.message}")
            status.checks["PowerShell Direct logon"] = False
    if vm.container_host:
        live = credential is not None and status.heartbeat == "OkApplicationsHealthy" \
            and status.checks.get("PowerShell Direct logon", True)
        container_status(t, vm, credential if live else None, journal_entry or {}, status)
    return status


def _docker(t: Transport, vm: DesiredVm, credential: Credential, arguments: list[str]) -> tuple[int, list[str]]:
    """`docker <arguments>` in the guest (docker-cli step): exit code and output lines."""
    out = t.invoke(ops.guest_invoke(vm.name, credential, load_step("docker-cli").script, [arguments]))
    obj = next(iter(out.objects()), None)
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


def container_status(t: Transport, vm: DesiredVm, credential: Credential | None, entry: dict[str, Any],
                     status: VmStatus) -> None:
    """A container host's features, Docker, base images and isolation checks, as ``checks`` entries.

    Docker and the images are asked from the guest (docker-cli step) when it is healthy and a credential
    is at hand; otherwise, and for the features and the isolation runs, the journal's facts from ``up``.
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
    if credential is not None:
        info["source"] = "guest"
        try:
            code, lines = _docker(t, vm, credential, ["version"])
            version = parse_server_version(lines) if code == 0 else None
            info["docker_running"] = version is not None
            info["docker_version"] = version
            images: list[str] = []
            if version is not None:
                code, lines = _docker(t, vm, credential, ["images"])
                images = parse_images(lines) if code == 0 else []
            info["images"] = images
        except LabctlError as err:
            status.problems.append(f"docker in the guest did not answer: {err.message}")
            info.update(docker_running=False, docker_version=None, images=[])
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
    """Status of every VM of the lab, in lab order (``journal``: the journal's snapshot, for bootstrap facts)."""
    vms = (journal or {}).get("vms") or {}
    return [vm_status(t, vm, owner, credential_for(vm) if credential_for else None, vms.get(vm.name))
            for vm in lab.vms]
