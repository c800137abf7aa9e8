"""Facts read from a Hyper-V host: one pipeline to ask, pure functions to parse.

The parsers take the transport's plain Result, so they are tested with recorded objects and run
unchanged against the simulator and a real host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from labctl.transport.base import Invocation, Pipeline, RemoteObject, Result

OWNER_MARK = "labctl-owned"


@dataclass(frozen=True)
class Ownership:
    """The tag labctl writes into what it creates (VM and switch Notes).

    ``copy`` numbers a copy of a lab with ``copies: N`` (each copy has its own lab id); it is informative
    (``labctl ls`` groups by it) and not part of the identity, which the lab id alone decides."""

    lab: str
    lab_id: str
    copy: int | None = field(default=None, compare=False)

    def tag(self) -> str:
        text = f"{OWNER_MARK} lab={self.lab} lab-id={self.lab_id}"
        return text + (f" copy={self.copy}" if self.copy is not None else "")

    @staticmethod
    def parse(notes: str | None) -> Ownership | None:
        """The ownership a Notes text carries, if it has labctl's tag."""
        if not notes:
            return None
        for line in str(notes).splitlines():
            parts = line.strip().split()
            if not parts or parts[0] != OWNER_MARK:
                continue
            kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
            if "lab" in kv and "lab-id" in kv:
                copy = kv.get("copy", "")
                return Ownership(kv["lab"], kv["lab-id"], int(copy) if copy.isdigit() else None)
        return None


@dataclass(frozen=True)
class AdapterFact:
    """A VM network adapter as Get-VMNetworkAdapter reports it."""

    vm: str
    name: str
    mac: str
    switch: str | None
    spoofing: bool
    ips: tuple[str, ...]


@dataclass(frozen=True)
class VmFact:
    """A VM as Get-VM reports it."""

    name: str
    id: str
    state: str
    heartbeat: str | None
    status: str | None
    notes: str
    memory_startup: int
    dynamic_memory: bool
    processor_count: int
    generation: int
    uptime_seconds: float
    created: datetime | None = None  # CreationTime, timezone-aware (naive host times are taken as UTC)

    @property
    def owner(self) -> Ownership | None:
        return Ownership.parse(self.notes)


@dataclass(frozen=True)
class SwitchFact:
    name: str
    switch_type: str
    notes: str

    @property
    def owner(self) -> Ownership | None:
        return Ownership.parse(self.notes)


@dataclass(frozen=True)
class NatFact:
    name: str
    prefix: str


@dataclass
class HostFacts:
    """What preflight and planning need to know about the host."""

    computer_name: str = ""
    os_caption: str = ""
    os_build: int = 0
    cpu_vendor: str = ""
    logical_processors: int = 0
    memory_capacity: int = 0
    free_memory: int = 0
    vhd_path: str = ""
    vm_path: str = ""
    hyperv_installed: bool = False
    free_disk: dict[str, int] = field(default_factory=dict)  # drive letter -> bytes free
    vms: list[VmFact] = field(default_factory=list)
    switches: list[SwitchFact] = field(default_factory=list)
    nats: list[NatFact] = field(default_factory=list)
    simulated: bool = False

    def vms_named(self, name: str) -> list[VmFact]:
        return [v for v in self.vms if v.name.lower() == name.lower()]

    def switch(self, name: str) -> SwitchFact | None:
        return next((s for s in self.switches if s.name.lower() == name.lower()), None)


def host_facts_pipeline() -> Pipeline:
    """One round trip: host, OS, CPU, volumes, VMs, switches, NATs.

    Get-VMHost answering proves the Hyper-V role and its module are present (Get-WindowsFeature
    exists on Windows Server only, so it is not asked).
    """
    return Pipeline.of(
        Invocation("Get-VMHost"),
        Invocation("Get-CimInstance", {"ClassName": "Win32_OperatingSystem"}),
        Invocation("Get-CimInstance", {"ClassName": "Win32_Processor"}),
        Invocation("Get-Volume"),
        Invocation("Get-VM"),
        Invocation("Get-VMSwitch"),
        Invocation("Get-NetNat"),
    )


def _type_is(obj: RemoteObject, suffix: str) -> bool:
    s = suffix.lower()
    return any(t.lower().endswith(s) for t in obj.type_names)


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _uptime(value: Any) -> float:
    """Seconds from a TimeSpan as pypsrp gives it (timedelta, ISO 8601 text or number)."""
    if value is None:
        return 0.0
    if hasattr(value, "total_seconds"):
        return float(value.total_seconds())
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value)
    if text.startswith("P"):
        m = re.match(r"P(?:(\d+)D)?T?(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?", text)
        if m:
            d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
            return d * 86400 + h * 3600 + mi * 60 + s
    parts = text.split(":")
    if len(parts) == 3:
        days, hours = 0.0, parts[0]
        if "." in hours:
            day_text, hours = hours.split(".", 1)
            days = float(day_text)
        return days * 86400 + float(hours) * 3600 + float(parts[1]) * 60 + float(parts[2])
    return 0.0


def _when(value: Any) -> datetime | None:
    """A DateTime as pypsrp gives it (CLIXML <DT> text: ISO 8601 with .NET's 7 fractional digits and an offset
    for a Local or Utc kind, none for Unspecified), or a datetime; None when absent or unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        when = value
    else:
        m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?", str(value).strip())
        if not m:
            return None
        zone = m.group(3) or ""
        text = m.group(1) + (f".{(m.group(2) or '')[:6]:0<6}") + ("+00:00" if zone == "Z" else zone)
        when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def parse_vm(obj: RemoteObject) -> VmFact:
    """A VmFact from a Get-VM object."""
    return VmFact(
        name=str(obj.get("Name", "")),
        id=str(obj.get("Id", obj.get("VMId", ""))),
        state=str(obj.get("State", "")),
        heartbeat=str(obj.get("Heartbeat")) if obj.get("Heartbeat") is not None else None,
        status=str(obj.get("Status")) if obj.get("Status") is not None else None,
        notes=str(obj.get("Notes") or ""),
        memory_startup=_int(obj.get("MemoryStartup")),
        dynamic_memory=bool(obj.get("DynamicMemoryEnabled")),
        processor_count=_int(obj.get("ProcessorCount")),
        generation=_int(obj.get("Generation")),
        uptime_seconds=_uptime(obj.get("Uptime")),
        created=_when(obj.get("CreationTime")),
    )


def parse_adapter(obj: RemoteObject) -> AdapterFact:
    """An AdapterFact from a Get-VMNetworkAdapter object."""
    ips = obj.get("IPAddresses") or []
    if isinstance(ips, str):
        ips = [ips]
    return AdapterFact(
        vm=str(obj.get("VMName", "")),
        name=str(obj.get("Name", "")),
        mac=str(obj.get("MacAddress", "")).upper(),
        switch=str(obj.get("SwitchName")) if obj.get("SwitchName") else None,
        spoofing=str(obj.get("MacAddressSpoofing", "Off")).lower() == "on",
        ips=tuple(str(i) for i in ips),
    )


def parse_host_facts(result: Result) -> HostFacts:
    """HostFacts from the output of host_facts_pipeline()."""
    facts = HostFacts()
    for obj in result.objects():
        if _type_is(obj, "VMHost"):
            facts.hyperv_installed = True
            facts.computer_name = str(obj.get("ComputerName") or obj.get("Name") or "")
            facts.logical_processors = _int(obj.get("LogicalProcessorCount"))
            facts.memory_capacity = _int(obj.get("MemoryCapacity"))
            facts.vhd_path = str(obj.get("VirtualHardDiskPath") or "")
            facts.vm_path = str(obj.get("VirtualMachinePath") or "")
        elif _type_is(obj, "Win32_OperatingSystem"):
            facts.os_caption = str(obj.get("Caption") or "")
            facts.os_build = _int(obj.get("BuildNumber"))
            facts.free_memory = _int(obj.get("FreePhysicalMemory")) * 1024  # reported in KB
            facts.simulated = facts.simulated or "simulated" in facts.os_caption.lower()
        elif _type_is(obj, "Win32_Processor"):
            facts.cpu_vendor = facts.cpu_vendor or str(obj.get("Manufacturer") or "")
        elif _type_is(obj, "MSFT_Volume"):
            letter = obj.get("DriveLetter")
            if letter:
                facts.free_disk[str(letter).upper()[:1]] = _int(obj.get("SizeRemaining"))
        elif _type_is(obj, "VirtualMachine"):
            facts.vms.append(parse_vm(obj))
        elif _type_is(obj, "VMSwitch"):
            facts.switches.append(SwitchFact(
                name=str(obj.get("Name", "")),
                switch_type=str(obj.get("SwitchType", "")),
                notes=str(obj.get("Notes") or ""),
            ))
        elif _type_is(obj, "MSFT_NetNat"):
            facts.nats.append(NatFact(
                name=str(obj.get("Name", "")),
                prefix=str(obj.get("InternalIPInterfaceAddressPrefix") or ""),
            ))
    return facts


def attached_disk_number(result: Result) -> int | None:
    """The host disk number of a VHD that Get-VHD or Mount-VHD -Passthru reports attached, else None."""
    for obj in result.objects():
        number = obj.get("DiskNumber")
        attached = obj.get("Attached")
        if number is not None and attached is not False:
            try:
                return int(number)
            except (TypeError, ValueError):
                return None
    return None
