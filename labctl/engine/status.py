"""Status: each VM's state, heartbeat, addresses, nested settings and checks, read from the host."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from labctl.engine.apply import Invoker
from labctl.engine.plan import DesiredLab, DesiredVm
from labctl.errors import LabctlError
from labctl.guest.steps import load_step
from labctl.hyperv import ops
from labctl.hyperv.facts import Ownership, parse_adapter, parse_vm
from labctl.transport.base import Credential, RemoteObject

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
    checks: dict[str, bool] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

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


def vm_status(t: Invoker, vm: DesiredVm, owner: Ownership, credential: Credential | None) -> VmStatus:
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
        except LabctlError as err:
            status.problems.append(f"guest probe failed: {err.message}")
            status.checks["PowerShell Direct logon"] = False
    return status


def lab_status(t: Invoker, lab: DesiredLab, owner: Ownership,
               credential_for: Any = None) -> list[VmStatus]:
    """Status of every VM of the lab, in lab order."""
    return [vm_status(t, vm, owner, credential_for(vm) if credential_for else None) for vm in lab.vms]
