"""Host-level cmdlets: Get-VMHost, CIM classes (Win32_*) and Get-WindowsFeature as the Hyper-V host answers
them. The Storage module's cmdlets (Get-Disk/Partition/Volume) are hvsim.storage.handlers.disks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hvsim.core import paths as P
from hvsim.hyperv.handlers.objects import host_obj
from hvsim.powershell.cmdlet import BoundCall, CmdletContext, cmdlet
from hvsim.powershell.errors import PSError
from hvsim.powershell.shaping import as_list, cimv2, when
from hvsim.powershell.values import PSObj, UInt32, UInt64
from hvsim.storage.handlers.objects import logical_disk_objs
from hvsim.world import World

KB = 1024
HOST_OS_USAGE = 3 * 1024**3  # memory the host OS itself uses (what FreePhysicalMemory leaves out)


@cmdlet("Get-VMHost")
def get_vm_host(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    return [host_obj(ctx.world)]


@cmdlet("Get-VMHostSupportedVersion")
def get_vm_host_supported_version(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    h = ctx.world.host
    out = []
    for v in h.supported_vm_versions:
        if call.get("Default") and v != h.default_vm_version:
            continue
        out.append(PSObj(["Microsoft.HyperV.PowerShell.VMHostSupportedVersion", "System.Object"],
                         {"Name": f"Microsoft Windows (config version {v})", "Version": v,
                          "IsDefault": v == h.default_vm_version}))
    return out


# --- CIM --------------------------------------------------------------------------------------------


def _free_memory(w: World) -> int:
    return max(0, w.host.memory_capacity - HOST_OS_USAGE - w.hv.memory_in_use())


def _os(w: World) -> PSObj:
    h = w.host
    return PSObj(cimv2("Win32_OperatingSystem"), {
        "Caption": h.os_caption, "Version": h.os_version, "BuildNumber": str(h.os_build),
        "BuildType": "Multiprocessor Free", "OSArchitecture": "64-bit", "CSName": h.computer_name,
        "Manufacturer": "Microsoft Corporation", "OSType": 18, "OperatingSystemSKU": UInt32(8),
        "ProductType": UInt32(3), "SystemDirectory": "C:\\Windows\\system32", "SystemDrive": "C:",
        "WindowsDirectory": "C:\\Windows", "Locale": "0409", "OSLanguage": UInt32(1033),
        "TotalVisibleMemorySize": UInt64(h.memory_capacity // KB),
        "FreePhysicalMemory": UInt64(_free_memory(w) // KB),
        "TotalVirtualMemorySize": UInt64((h.memory_capacity + 8 * 1024**3) // KB),
        "FreeVirtualMemory": UInt64((_free_memory(w) + 8 * 1024**3) // KB),
        "LastBootUpTime": when(w.boot_time), "InstallDate": when(w.boot_time - 30 * 86400),
        "LocalDateTime": when(w.clock.now()), "NumberOfProcesses": UInt32(150),
        "SerialNumber": "00454-60000-00001-AA123", "Status": "OK", "Name": f"{h.os_caption}|C:\\Windows|"
        "\\Device\\Harddisk0\\Partition4", "PSComputerName": None,
    })


def _processor(w: World) -> PSObj:
    h = w.host
    intel = h.cpu_vendor == "GenuineIntel"
    return PSObj(cimv2("Win32_Processor"), {
        "DeviceID": "CPU0", "Name": h.cpu_name if intel or "AMD" in h.cpu_name else "AMD EPYC 7543 32-Core Processor",
        "Manufacturer": h.cpu_vendor,
        "Caption": "Intel64 Family 6 Model 106 Stepping 6" if intel else "AMD64 Family 25 Model 1 Stepping 1",
        "Architecture": 9, "AddressWidth": 64, "DataWidth": 64, "MaxClockSpeed": UInt32(2000),
        "NumberOfCores": UInt32(max(1, h.logical_processor_count // 2)),
        "NumberOfLogicalProcessors": UInt32(h.logical_processor_count),
        "NumberOfEnabledCore": UInt32(max(1, h.logical_processor_count // 2)),
        "ThreadCount": UInt32(h.logical_processor_count), "SocketDesignation": "CPU0",
        # With the hypervisor running, the root partition sees these as False (they are in use).
        "VirtualizationFirmwareEnabled": False, "VMMonitorModeExtensions": False,
        "SecondLevelAddressTranslationExtensions": False,
        "Status": "OK", "LoadPercentage": 3, "PSComputerName": None,
    })


SIM_MANUFACTURER = "labctl"
SIM_MODEL = "SIMULATED Hyper-V host (labctl simulator)"


def _computer_system(w: World) -> PSObj:
    h = w.host
    return PSObj(cimv2("Win32_ComputerSystem"), {
        "Name": h.computer_name, "DNSHostName": h.computer_name, "Domain": h.domain, "Workgroup": h.domain,
        # The hardware fields are where a person (and labctl) sees that this host is simulated.
        "PartOfDomain": False, "DomainRole": 2, "Manufacturer": SIM_MANUFACTURER,
        "Model": SIM_MODEL, "SystemType": "x64-based PC", "TotalPhysicalMemory": UInt64(h.memory_capacity),
        "NumberOfProcessors": UInt32(1), "NumberOfLogicalProcessors": UInt32(h.logical_processor_count),
        "HypervisorPresent": True, "Status": "OK", "OEMStringArray": list(w.oem_strings), "PSComputerName": None,
    })


_CIM_CLASSES = {
    "win32_operatingsystem": lambda w: [_os(w)],
    "win32_processor": lambda w: [_processor(w)],
    "win32_computersystem": lambda w: [_computer_system(w)],
    "win32_logicaldisk": logical_disk_objs,
}


@cmdlet("Get-CimInstance")
def get_cim_instance(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    cls = str(call.get("ClassName") or "")
    if not cls and call.has("Query"):
        q = str(call.get("Query"))
        parts = q.split()
        cls = parts[parts.index(next(p for p in parts if p.lower() == "from")) + 1] if "from" in q.lower() else ""
    fn = _CIM_CLASSES.get(cls.lower())
    if fn is None:
        # WBEM_E_INVALID_CLASS as the CIM cmdlets report it.
        raise PSError("Invalid class ", "HRESULT 0x80041010", "MetadataError", target=cls,
                      exception_type="Microsoft.Management.Infrastructure.CimException")
    return fn(ctx.world)


# --- Get-WindowsFeature on the host ---------------------------------------------------------------------

_HOST_FEATURES = [
    # name, display name, type, installed, parent
    ("Hyper-V", "Hyper-V", "Role", True, None),
    ("Containers", "Containers", "Feature", False, None),
    ("RSAT", "Remote Server Administration Tools", "Feature", True, None),
    ("RSAT-Role-Tools", "Role Administration Tools", "Feature", True, "RSAT"),
    ("RSAT-Hyper-V-Tools", "Hyper-V Management Tools", "Feature", True, "RSAT-Role-Tools"),
    ("Hyper-V-Tools", "Hyper-V GUI Management Tools", "Feature", False, "RSAT-Hyper-V-Tools"),
    ("Hyper-V-PowerShell", "Hyper-V Module for Windows PowerShell", "Feature", True, "RSAT-Hyper-V-Tools"),
    ("PowerShellRoot", "Windows PowerShell", "Feature", True, None),
    ("PowerShell", "Windows PowerShell 5.1", "Feature", True, "PowerShellRoot"),
]


@cmdlet("Get-WindowsFeature")
def get_windows_feature(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    names = [str(n) for n in as_list(call.get("Name"))]
    out = []
    for name, display, ftype, installed, parent in _HOST_FEATURES:
        if names and not any(P.wildcard_match(n, name) for n in names):
            continue
        out.append(PSObj(["Microsoft.Windows.ServerManager.Commands.Feature", "System.Object"], {
            "Name": name, "DisplayName": display, "Description": display, "Installed": installed,
            # InstallState values as ServerManager's enum (Available=0, Installed=1: unconfirmed numbering).
            "InstallState": _install_state(installed), "FeatureType": ftype,
            "Path": display, "Depth": 1 if parent is None else 2, "DependsOn": [], "Parent": parent,
            "ServerComponentDescriptor": None, "SubFeatures": [n for n, _, _, _, p in _HOST_FEATURES if p == name],
            "SystemService": [], "Notification": [], "BestPracticesModelId": None, "EventQuery": None,
            "PostConfigurationNeeded": False, "AdditionalInfo": {},
        }, to_string=name))
    return out


def _install_state(installed: bool) -> Any:
    from hvsim.powershell.values import PSEnum

    return PSEnum("Microsoft.Windows.ServerManager.Commands.InstallState",
                  "Installed" if installed else "Available", 1 if installed else 0)
