"""Planning: the lab as wished, compared with facts read from the host. Pure: no I/O.

``preflight`` lists every reason the host cannot take the lab; ``plan`` lists what ``up`` will
add, change and remove. Both only read HostFacts and the journal's snapshot.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Literal

from labctl.engine.stages import BOOTSTRAP_STAGES
from labctl.hyperv.facts import HostFacts, Ownership, VmFact

GiB = 1024**3
# A differencing disk grows with what the first boot writes (specialize, OOBE, page file,
# updates of the component store): a conservative figure for preflight.
FIRST_BOOT_GROWTH = 4 * GiB
# Memory Hyper-V and the parent partition keep for themselves, beyond FreePhysicalMemory.
HOST_RESERVE = 1 * GiB
# Nested virtualization: Intel VT-x since WS2016 (14393); AMD since WS2022 (20348) / Win11 (22000).
NESTED_MIN_BUILD = {"GenuineIntel": 14393, "AuthenticAMD": 20348}
# Windows Server 2016's WinNAT: one NAT network (internal prefix) per host (docs/facts.md, "WinNAT"). Later
# builds accept several with disjoint prefixes, which Microsoft still calls unsupported; labctl's classes use
# one NAT per host over the copy pool either way.
WINNAT_SINGLE_BUILD = 14393

Action = Literal["add", "change", "remove", "keep", "start"]


@dataclass(frozen=True)
class DesiredVm:
    """One VM as the lab file wants it (already resolved: defaults, group, patterns)."""

    name: str
    image: str
    base_disk: str
    build: int
    processors: int
    memory: int
    mac: str
    ip: str
    prefix_length: int
    roles: tuple[str, ...] = ()
    nested: bool = True
    isolation: str = "process"
    container_images: tuple[str, ...] = ()  # full references, e.g. mcr.microsoft.com/windows/nanoserver:ltsc2022
    docker_tls: bool = False
    index: int = 0
    buildable: bool = False  # the image has a build: recipe, so a missing base disk is built, not refused

    @property
    def container_host(self) -> bool:
        """Whether the VM gets the container-host bootstrap after readiness."""
        return "container-host" in self.roles

    @property
    def windows_features(self) -> tuple[str, ...]:
        """Windows features a container host needs: Containers, and Hyper-V where Hyper-V isolated containers
        can run (a nested VM) or are the default (isolation: hyperv, which validation ties to nested)."""
        if self.nested or self.isolation == "hyperv":
            return ("Containers", "Hyper-V")
        return ("Containers",)


@dataclass(frozen=True)
class DockerWish:
    """Docker's static zip for the container hosts (see labctl.docker.release)."""

    version: str
    url: str
    path: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class DesiredLab:
    """The lab as wished: host-wide network and the VMs."""

    name: str
    switch: str
    subnet: str
    gateway: str
    nat: bool
    nat_name: str
    vms: tuple[DesiredVm, ...]
    docker: DockerWish | None = None
    container_cidr: str = "172.20.0.0/16"
    nat_prefix: str = ""  # the NetNat's internal prefix: the subnet, or the copy pool a class's copies share
    copy: int | None = None  # the copy number, for one copy of a lab with copies
    rdp: bool = False  # publish every VM's RDP through a NetNat static mapping

    @property
    def prefix_length(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen

    @property
    def nat_internal_prefix(self) -> str:
        """The prefix New-NetNat gets: the copy pool for a class, else the lab subnet."""
        return self.nat_prefix or self.subnet


@dataclass(frozen=True)
class Change:
    """One line of the plan."""

    action: Action
    kind: str  # switch, gateway, nat, vm
    name: str
    detail: str = ""


@dataclass
class Plan:
    """What up will do, and why the host cannot take the lab (refusals)."""

    changes: list[Change] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    disk_root: str = ""

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action == action)

    def for_vm(self, name: str) -> Change | None:
        return next((c for c in self.changes if c.kind == "vm" and c.name == name), None)


def disk_root(facts: HostFacts, lab: str, lab_id: str) -> str:
    """The host folder for this lab's disks and VM files; its name carries the lab id."""
    base = facts.vhd_path.rstrip("\\") or r"C:\ProgramData\Microsoft\Windows\Virtual Hard Disks"
    return f"{base}\\labctl\\{lab}-{lab_id}"


def is_ours(vm: VmFact, owner: Ownership, root: str, vm_path: str | None = None) -> bool:
    """A VM is ours if it carries our tag, or (before the tag is set) lives in our lab folder."""
    tag = vm.owner
    if tag is not None:
        return tag == owner
    return bool(vm_path) and str(vm_path).lower().startswith(root.lower())


def preflight(lab: DesiredLab, facts: HostFacts, owner: Ownership, base_present: dict[str, bool],
              vm_paths: dict[str, str] | None = None) -> list[str]:
    """Every reason this host cannot take this lab now (empty when it can)."""
    problems: list[str] = []
    root = disk_root(facts, lab.name, owner.lab_id)
    vm_paths = vm_paths or {}
    if not facts.hyperv_installed:
        problems.append("Hyper-V is not installed on the host (Get-VMHost is not available): "
                        "Install-WindowsFeature -Name Hyper-V -IncludeManagementTools -Restart")
    vendor = facts.cpu_vendor
    min_build = NESTED_MIN_BUILD.get(vendor)
    if min_build is None:
        problems.append(f"nested virtualization needs an Intel or AMD processor; the host reports {vendor!r}")
    elif facts.os_build and facts.os_build < min_build:
        problems.append(f"nested virtualization on {vendor} needs host build {min_build} or later; "
                        f"the host runs build {facts.os_build}")
    for vm in lab.vms:
        if not base_present.get(vm.base_disk, False) and not vm.buildable:
            problems.append(f"VM {vm.name}: base disk {vm.base_disk} ({vm.image}) is missing on the host; "
                            "copy a sysprepped image there, fix the image catalog entry, or give the image a "
                            "build: recipe (docs/images.md)")
    # Clashes with things that exist and are not ours.
    switch = facts.switch(lab.switch)
    if switch is not None and switch.owner != owner:
        problems.append(f"a switch named {lab.switch!r} exists and labctl did not create it for this lab; "
                        "choose another network.switch or remove that switch yourself")
    lab_net = ipaddress.ip_network(lab.subnet)
    others = [n for n in facts.nats if n.name.lower() != lab.nat_name.lower()]
    if lab.nat and others and facts.os_build and facts.os_build <= WINNAT_SINGLE_BUILD:
        problems.append(f"the host runs build {facts.os_build} (Windows Server 2016), whose WinNAT serves one NAT "
                        f"network per host, and NetNat {others[0].name!r} ({others[0].prefix}) exists; remove it, "
                        "set network.nat: false, or use a host on Windows Server 2019 or later")
    for nat in facts.nats:
        try:
            other = ipaddress.ip_network(nat.prefix, strict=False)
        except ValueError:
            continue
        if nat.name != lab.nat_name and other.overlaps(lab_net):
            problems.append(f"NetNat {nat.name!r} ({nat.prefix}) overlaps the lab subnet {lab.subnet}; "
                            "choose another network.subnet")
    new_memory = 0
    new_vms = 0
    for vm in lab.vms:
        existing = facts.vms_named(vm.name)
        foreign = [v for v in existing if not is_ours(v, owner, root, vm_paths.get(v.id))]
        if foreign:
            problems.append(f"a VM named {vm.name!r} exists on the host and labctl did not create it; "
                            "rename the VM in the lab file or remove that VM yourself")
        ours = [v for v in existing if is_ours(v, owner, root, vm_paths.get(v.id))]
        if not ours or all(v.state != "Running" for v in ours):
            new_memory += vm.memory
        if not ours:
            new_vms += 1
    available = facts.free_memory - HOST_RESERVE
    if facts.free_memory and new_memory > available:
        problems.append(f"the lab needs {new_memory / GiB:.1f} GiB of static memory for VMs to start but the "
                        f"host has {max(available, 0) / GiB:.1f} GiB free; lower memory or "
                        "stop other VMs")
    drive = (root[:1] or "C").upper()
    free = facts.free_disk.get(drive)
    need = new_vms * FIRST_BOOT_GROWTH
    if free is not None and need > free:
        problems.append(f"the lab's disks need about {need / GiB:.0f} GiB on {drive}: but "
                        f"{free / GiB:.1f} GiB is free")
    return problems


def plan(lab: DesiredLab, facts: HostFacts, owner: Ownership, journal: dict[str, Any],
         vm_paths: dict[str, str] | None = None, base_present: dict[str, bool] | None = None) -> Plan:
    """What up must do to make the host match the lab."""
    root = disk_root(facts, lab.name, owner.lab_id)
    result = Plan(disk_root=root)
    result.refusals = preflight(lab, facts, owner, base_present or {}, vm_paths)
    vm_paths = vm_paths or {}
    for image, base in dict.fromkeys((vm.image, vm.base_disk) for vm in lab.vms
                                     if vm.buildable and not (base_present or {}).get(vm.base_disk, False)):
        result.changes.append(Change("add", "image", image, f"build {base} from its recipe (once per host)"))
    switch = facts.switch(lab.switch)
    if switch is None:
        result.changes.append(Change("add", "switch", lab.switch, "Internal"))
        result.changes.append(Change("add", "gateway", lab.gateway,
                                     f"{lab.gateway}/{lab.prefix_length} on vEthernet ({lab.switch})"))
    else:
        result.changes.append(Change("keep", "switch", lab.switch))
        result.changes.append(Change("keep", "gateway", lab.gateway))
    if lab.nat:
        if any(n.name == lab.nat_name for n in facts.nats):
            result.changes.append(Change("keep", "nat", lab.nat_name))
        else:
            result.changes.append(Change("add", "nat", lab.nat_name, lab.nat_internal_prefix))
    wanted = {vm.name.lower() for vm in lab.vms}
    journal_vms: dict[str, Any] = journal.get("vms") or {}
    for vm in lab.vms:
        ours = [v for v in facts.vms_named(vm.name) if is_ours(v, owner, root, vm_paths.get(v.id))]
        done = set((journal_vms.get(vm.name) or {}).get("stages", []))
        if not ours:
            detail = f"{vm.image}, {vm.processors} vCPU, {vm.memory // GiB} GiB, {vm.ip}"
            result.changes.append(Change("add", "vm", vm.name, detail))
            continue
        current = ours[0]
        diffs = []
        if current.processor_count and current.processor_count != vm.processors:
            diffs.append(f"processors {current.processor_count} -> {vm.processors}")
        if current.memory_startup and current.memory_startup != vm.memory:
            diffs.append(f"memory {current.memory_startup // GiB} -> {vm.memory // GiB} GiB")
        if diffs:
            result.changes.append(Change("change", "vm", vm.name, "; ".join(diffs) + " (restarts the VM)"))
        elif current.state != "Running":
            result.changes.append(Change("start", "vm", vm.name, f"is {current.state}"))
        elif "ready" not in done:
            result.changes.append(Change("change", "vm", vm.name, "finish bring-up (readiness)"))
        elif vm.container_host and not set(BOOTSTRAP_STAGES) <= done:
            missing = ", ".join(s for s in BOOTSTRAP_STAGES if s not in done)
            result.changes.append(Change("change", "vm", vm.name, f"finish bring-up (container host: {missing})"))
        elif vm.container_host and not set(vm.container_images) <= set(
                (journal_vms.get(vm.name) or {}).get("images") or []):
            have = set((journal_vms.get(vm.name) or {}).get("images") or [])
            new = ", ".join(r for r in vm.container_images if r not in have)
            result.changes.append(Change("change", "vm", vm.name, f"add container images: {new}"))
        else:
            result.changes.append(Change("keep", "vm", vm.name))
    for fact in facts.vms:
        if fact.name.lower() in wanted:
            continue
        if fact.owner == owner:
            result.changes.append(Change("remove", "vm", fact.name, "no longer in the lab file"))
    return result
