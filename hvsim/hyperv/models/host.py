"""Facts about the simulated Hyper-V host: name, OS build, CPU, memory, default paths.

Defaults describe a Windows Server 2025 Datacenter host; tests override any field through a
dict (``HostConfig.from_overrides({"cpu_vendor": "AuthenticAMD"})``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hvsim.guest.models.localized import check_culture

GIB = 1024**3

# Build -> (caption, supported VM configuration versions, default version).
# Source: docs/facts.md "Supported config versions": WS2016 5.0-8.0, WS2019 5.0-9.0,
# WS2022 8.0-10.0, WS2025 8.0-12.0 (the full lists are Microsoft's "Supported VM configuration
# versions" table; 254.0/255.0 prerelease versions are left out).
_WS2016_VERSIONS = ["5.0", "6.2", "7.0", "7.1", "8.0"]
_WS2019_VERSIONS = [*_WS2016_VERSIONS, "8.1", "8.2", "8.3", "9.0"]
_WS2022_VERSIONS = ["8.0", "8.1", "8.2", "8.3", "9.0", "9.1", "9.2", "9.3", "10.0"]
_WS2025_VERSIONS = [*_WS2022_VERSIONS, "11.0", "12.0"]
BUILDS: dict[int, tuple[str, list[str], str]] = {
    14393: ("Microsoft Windows Server 2016 Datacenter", _WS2016_VERSIONS, "8.0"),
    17763: ("Microsoft Windows Server 2019 Datacenter", _WS2019_VERSIONS, "9.0"),
    20348: ("Microsoft Windows Server 2022 Datacenter", _WS2022_VERSIONS, "10.0"),
    26100: ("Microsoft Windows Server 2025 Datacenter", _WS2025_VERSIONS, "12.0"),
}
# A build not in the table: an unnamed Datacenter edition with Windows Server 2025's versions.
_OTHER_BUILD = ("Microsoft Windows Server Datacenter", _WS2025_VERSIONS, "12.0")


def version_tuple(version: str) -> tuple[int, int]:
    """"9.3" -> (9, 3), for ordering configuration versions."""
    major, _, minor = str(version).partition(".")
    return int(major), int(minor or 0)


@dataclass
class HostConfig:
    """The host's fixed facts (what Get-VMHost and Win32_* report)."""

    computer_name: str = "HV-SIM01"
    domain: str = "WORKGROUP"
    os_build: int = 26100
    cpu_vendor: str = "GenuineIntel"  # or "AuthenticAMD": nested virtualization rules differ
    cpu_name: str = "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"
    logical_processor_count: int = 16
    memory_capacity: int = 64 * GIB
    # Memory the root partition keeps for itself; VMs can use the rest (Start-VM refuses beyond).
    host_reserved_memory: int = 4 * GIB
    # The volume holding the VHDX files and the uplink, as the simulated timeline shares them among concurrent
    # operations (hvsim/core/resources.py; defaults and sources in hvsim/core/durations.yaml, "capacity").
    disk_mbps: int = 3000
    disk_iops: int = 400_000
    network_mbps: int = 1000
    virtual_hard_disk_path: str = "C:\\ProgramData\\Microsoft\\Windows\\Virtual Hard Disks"
    virtual_machine_path: str = "C:\\ProgramData\\Microsoft\\Windows\\Hyper-V"
    c_volume_size: int = 500 * 1000**3  # "500 GB" as disk vendors count
    c_volume_free: int = 200 * 1000**3
    base_disks: bool = True  # the sysprepped base disks under C:\LabBases
    # Installation media in C:\ISO: comma-separated ids of hvsim.storage.media.MEDIA ("" = the Windows Server
    # 2019/2022/2025 evaluation ISOs on a host without base disks, none on a host with them).
    iso_media: str = ""
    mac_prefix: str = "00155D"
    mac_pool_start: int = 0x380100  # Hyper-V picks a host-specific range inside 00155D
    physical_adapter: str = "Ethernet"
    physical_ip: str = "192.168.1.50"
    physical_prefix_length: int = 24
    # The host's display language (and its base images'): Hyper-V's integration-service names and
    # Windows Firewall group names are shown in it (hvsim/guest/models/localized.py).
    ui_culture: str = "en-US"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_overrides(cls, overrides: dict[str, Any] | None = None) -> HostConfig:
        """Defaults with ``overrides`` applied; unknown keys are an error (typos hide bugs)."""
        cfg = cls()
        names = {f.name for f in fields(cls)}
        for key, value in (overrides or {}).items():
            if key not in names:
                raise KeyError(f"unknown host setting {key!r}")
            setattr(cfg, key, value)
        if cfg.cpu_vendor not in ("GenuineIntel", "AuthenticAMD"):
            raise ValueError("cpu_vendor must be GenuineIntel or AuthenticAMD")
        cfg.ui_culture = check_culture(cfg.ui_culture)
        return cfg

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> HostConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in state.items() if k in names})

    # Derived facts ------------------------------------------------------------------------

    @property
    def os_caption(self) -> str:
        return BUILDS.get(self.os_build, _OTHER_BUILD)[0]

    @property
    def os_version(self) -> str:
        return f"10.0.{self.os_build}"

    @property
    def supported_vm_versions(self) -> list[str]:
        return list(BUILDS.get(self.os_build, _OTHER_BUILD)[1])

    @property
    def default_vm_version(self) -> str:
        return BUILDS.get(self.os_build, _OTHER_BUILD)[2]

    def nested_supported(self, vm_version: str) -> tuple[bool, str]:
        """Whether a VM of ``vm_version`` may expose virtualization extensions, and why not.

        Intel VT-x: host WS2016+ (14393) and VM version >= 8.0. AMD: host WS2022+ (20348) and
        VM version >= 9.3 (docs/facts.md "Nested virtualization").
        """
        if self.cpu_vendor == "AuthenticAMD":
            if self.os_build < 20348:
                return False, "host"
            return (version_tuple(vm_version) >= (9, 3)), "version"
        if self.os_build < 14393:
            return False, "host"
        return (version_tuple(vm_version) >= (8, 0)), "version"
