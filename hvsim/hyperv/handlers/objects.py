"""Hyper-V model objects -> PowerShell-shaped output (real .NET type names, property names, enums).

Shapes follow the Hyper-V module's output types (Microsoft.HyperV.PowerShell.*) for what the Hyper-V
models hold: VMs, their devices and checkpoints, the host. The other surfaces shape their own objects:
storage (VHDs, files, disks) in hvsim.storage.handlers, networking (switches, NAT, addresses, adapters) in
hvsim.networking.handlers. The small helpers every surface's handlers share (``as_list``, ``enum``,
``cimv2``...) are the PowerShell engine's: hvsim.powershell.shaping.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from hvsim.core import paths as P
from hvsim.guest.models.localized import component
from hvsim.hyperv import errors as HE
from hvsim.powershell.cmdlet import BoundCall, CmdletContext
from hvsim.powershell.errors import PSError
from hvsim.powershell.shaping import as_list, enum, guid, when
from hvsim.powershell.values import Int64, PSEnum, PSObj, TimeSpan, UInt32, UInt64

if TYPE_CHECKING:
    from hvsim.hyperv.models.vm import VM, Snapshot, VMNetworkAdapter
    from hvsim.world import World

HV = "Microsoft.HyperV.PowerShell"
VO = [f"{HV}.VirtualizationObject", "System.Object"]

# --- enums ---------------------------------------------------------------------------------------

VM_STATE = {"Other": 1, "Running": 2, "Off": 3, "Stopping": 4, "Saved": 6, "Paused": 9, "Starting": 10,
            "Reset": 11, "Saving": 32773, "Pausing": 32776, "Resuming": 32777, "FastSaved": 32779,
            "FastSaving": 32780}
HEARTBEAT = {"Unknown": 0, "Disabled": 1, "NoContact": 2, "Error": 3, "LostCommunication": 4,
             "OkApplicationsUnknown": 5, "OkApplicationsHealthy": 6, "OkApplicationsCritical": 7, "Paused": 8}
CHECKPOINT_TYPE = {"Disabled": 2, "Production": 3, "ProductionOnly": 4, "Standard": 5}
SNAPSHOT_TYPE = {"Standard": 0, "Recovery": 1, "Planned": 2, "Missing": 5, "Replica": 6, "AppConsistentReplica": 7,
                 "SyncedReplica": 8}
IC_STATUS = {"Ok": 2, "Degraded": 3, "Error": 6, "NoContact": 12, "LostCommunication": 13, "Disabled": 32896}
START_ACTION = {"Nothing": 2, "StartIfRunning": 3, "Start": 4}
STOP_ACTION = {"TurnOff": 2, "Save": 3, "ShutDown": 4}


def on_off(flag: bool) -> PSEnum:
    return PSEnum(f"{HV}.OnOffState", "On" if flag else "Off", 0 if flag else 1)


def vm_state(state: str) -> PSEnum:
    return enum(f"{HV}.VMState", VM_STATE, state)


def to_bool_flag(value: Any) -> bool:
    """OnOffState/bool/str parameter values to a bool."""
    if isinstance(value, PSEnum):
        return value.name.lower() == "on" if value.type_name.endswith("OnOffState") else bool(value.value)
    if isinstance(value, str):
        return value.strip().lower() in ("on", "true", "1", "$true")
    return bool(value)


# --- VMs ---------------------------------------------------------------------------------------------


def vm_status(vm: VM) -> str:
    return "Operating normally"


def vm_heartbeat(world: World, vm: VM) -> PSEnum | None:
    """Off/Saved VMs report no heartbeat; a disabled Heartbeat service reports Disabled."""
    if vm.state not in ("Running", "Paused"):
        return None
    if not vm.integration_services.get("Heartbeat", True):
        return enum(f"{HV}.VMHeartbeatStatus", HEARTBEAT, "Disabled")
    if vm.state == "Paused":
        return enum(f"{HV}.VMHeartbeatStatus", HEARTBEAT, "Paused")
    hb = vm.guest.heartbeat(world, vm)
    return enum(f"{HV}.VMHeartbeatStatus", HEARTBEAT, hb if hb in HEARTBEAT else "Unknown")


def vm_obj(world: World, vm: VM) -> PSObj:
    """Microsoft.HyperV.PowerShell.VirtualMachine."""
    running = vm.state in ("Running", "Paused")
    uptime = (world.clock.now() - vm.started_at) if (vm.state == "Running" and vm.started_at) else 0.0
    parent = next((s for s in vm.snapshots if s.id == vm.current_snapshot_id), None)
    props: dict[str, Any] = {
        "VMName": vm.name,
        "VMId": guid(vm.id),
        "Id": guid(vm.id),
        "Name": vm.name,
        "State": vm_state(vm.state),
        "OperationalStatus": [PSEnum(f"{HV}.VMOperationalStatus", "Ok", 2)],
        "PrimaryOperationalStatus": PSEnum(f"{HV}.VMOperationalStatus", "Ok", 2),
        "PrimaryStatusDescription": "Operating normally",
        "StatusDescriptions": ["Operating normally"],
        "Status": vm_status(vm),
        "Heartbeat": vm_heartbeat(world, vm),
        "ReplicationState": PSEnum(f"{HV}.VMReplicationState", "Disabled", 0),
        "Generation": vm.generation,
        "Version": vm.version,
        "IsDeleted": False,
        "ComputerName": world.host.computer_name,
        "Path": vm.path,
        "ConfigurationLocation": vm.path,
        "SnapshotFileLocation": vm.path,
        "CheckpointFileLocation": vm.path,
        "SmartPagingFilePath": vm.path,
        "Uptime": TimeSpan(float(int(uptime))),
        "CPUUsage": 1 if vm.state == "Running" else 0,
        "MemoryAssigned": Int64(vm.memory_assigned),  # reserved from Starting until Off/Saved
        "MemoryDemand": Int64(vm.memory_assigned if running else 0),
        "MemoryStatus": "",
        "MemoryStartup": Int64(vm.memory_startup),
        "MemoryMinimum": Int64(vm.memory_minimum),
        "MemoryMaximum": Int64(vm.memory_maximum),
        "DynamicMemoryEnabled": vm.dynamic_memory,
        "ProcessorCount": Int64(vm.processor_count),
        "Notes": vm.notes,
        "AutomaticStartAction": enum(f"{HV}.StartAction", START_ACTION, vm.automatic_start_action),
        "AutomaticStopAction": enum(f"{HV}.StopAction", STOP_ACTION, vm.automatic_stop_action),
        "AutomaticStartDelay": 0,
        "AutomaticCheckpointsEnabled": vm.automatic_checkpoints_enabled,
        "CheckpointType": enum(f"{HV}.CheckpointType", CHECKPOINT_TYPE, vm.checkpoint_type),
        "ParentCheckpointId": guid(parent.id) if parent else None,
        "ParentCheckpointName": parent.name if parent else None,
        "ParentSnapshotId": guid(parent.id) if parent else None,
        "ParentSnapshotName": parent.name if parent else None,
        "IsClustered": False,
        "CreationTime": when(vm.created),
        "IntegrationServicesState": "Up to date" if running else "",
        "IntegrationServicesVersion": None,
        "ReplicationHealth": PSEnum(f"{HV}.VMReplicationHealthState", "NotApplicable", 0),
        "ReplicationMode": PSEnum(f"{HV}.VMReplicationMode", "None", 0),
        "ResourceMeteringEnabled": False,
        "VirtualMachineType": PSEnum(f"{HV}.VirtualMachineType", "RealizedVirtualMachine", 3),
        "VirtualMachineSubType": PSEnum(f"{HV}.VirtualMachineSubType", f"Generation{vm.generation}", vm.generation),
        "SizeOfSystemFiles": Int64(40960),
        "LockOnDisconnect": on_off(False),
        "NetworkAdapters": [vm_adapter_obj(world, vm, a) for a in vm.network_adapters],
        "HardDrives": [hdd_obj(world, vm, i) for i in range(len(vm.hard_drives))],
        "DVDDrives": [],
    }
    return PSObj([f"{HV}.VirtualMachine", *VO], props,
                 to_string=f"VirtualMachine (Name = '{vm.name}') [Id = '{vm.id}']")


def vm_adapter_obj(world: World, vm: VM | None, ad: VMNetworkAdapter, management_os: bool = False) -> PSObj:
    """Microsoft.HyperV.PowerShell.VMNetworkAdapter."""
    ips: list[str] = []
    if vm is not None and vm.state == "Running" and ad.mac_address != "000000000000":
        ips = list(vm.guest.ip_addresses(world, vm, ad.mac_address))
    connected = vm is not None and vm.state in ("Running", "Paused") and ad.switch_name is not None
    props: dict[str, Any] = {
        "Name": ad.name,
        "Id": f"Microsoft:{vm.id.upper()}\\{ad.id.upper()}" if vm else ad.id,
        "IsLegacy": ad.is_legacy,
        "IsManagementOs": management_os,
        "ComputerName": world.host.computer_name,
        "VMName": vm.name if vm else "",
        "VMId": guid(vm.id) if vm else None,
        "SwitchName": ad.switch_name,
        "SwitchId": guid(ad.switch_id) if ad.switch_id else None,
        "Connected": connected,
        "MacAddress": ad.mac_address,
        "DynamicMacAddressEnabled": ad.dynamic_mac,
        "MacAddressSpoofing": on_off(ad.mac_address_spoofing),
        "AllowTeaming": on_off(False),
        "DhcpGuard": on_off(False),
        "RouterGuard": on_off(False),
        "IPAddresses": ips,
        "IsSynthetic": not ad.is_legacy,
        "IsExternalAdapter": False,
        "AdapterId": ad.id.upper(),
        "Status": [PSEnum(f"{HV}.VMNetworkAdapterOperationalStatus", "Ok", 2)] if connected else [],
        "StatusDescription": ["OK"] if connected else [],
        "VlanSetting": None,
    }
    return PSObj([f"{HV}.VMNetworkAdapter", f"{HV}.VMNetworkAdapterBase", f"{HV}.VMDevice", *VO], props)


def hdd_obj(world: World, vm: VM, index: int) -> PSObj:
    """Microsoft.HyperV.PowerShell.HardDiskDrive (Gen1: IDE 0:0, 0:1 then SCSI; Gen2: SCSI 0:n)."""
    path = vm.hard_drives[index]
    if vm.generation == 1 and index < 2:
        ctype, cnum, cloc = "IDE", 0, index
    else:
        ctype, cnum, cloc = "SCSI", 0, index if vm.generation == 2 else index - 2
    props = {
        "Path": path,
        "DiskNumber": None,
        "MaximumIOPS": UInt64(0),
        "MinimumIOPS": UInt64(0),
        "QoSPolicyID": guid("00000000-0000-0000-0000-000000000000"),
        "SupportPersistentReservations": False,
        "WriteHardeningMethod": 0,
        "ControllerLocation": cloc,
        "ControllerNumber": cnum,
        "ControllerType": PSEnum(f"{HV}.ControllerType", ctype, 0 if ctype == "IDE" else 1),
        "Name": "Hard Drive",
        "PoolName": "Primordial",
        "Id": f"Microsoft:{vm.id.upper()}\\{cnum}\\{cloc}\\D",
        "VMId": guid(vm.id),
        "VMName": vm.name,
        "VMSnapshotId": guid("00000000-0000-0000-0000-000000000000"),
        "VMSnapshotName": "",
        "ComputerName": world.host.computer_name,
        "IsDeleted": False,
    }
    return PSObj([f"{HV}.HardDiskDrive", f"{HV}.Drive", f"{HV}.VMDevice", *VO], props)


def processor_obj(world: World, vm: VM) -> PSObj:
    props = {
        "ResourcePoolName": "Primordial",
        "Count": Int64(vm.processor_count),
        "CompatibilityForMigrationEnabled": False,
        "CompatibilityForMigrationMode": PSEnum(f"{HV}.CompatibilityForMigrationMode", "MinimumFeatureSet", 0),
        "CompatibilityForOlderOperatingSystemsEnabled": False,
        "HwThreadCountPerCore": Int64(0),
        "ExposeVirtualizationExtensions": vm.expose_virtualization_extensions,
        "EnablePerfmonPmu": False, "EnablePerfmonLbr": False, "EnablePerfmonPebs": False,
        "EnablePerfmonIpt": False, "EnableLegacyApicMode": False,
        "AllowACountMCount": True,
        "Maximum": Int64(100000), "Reserve": Int64(0), "RelativeWeight": 100,
        "MaximumCountPerNumaNode": Int64(world.host.logical_processor_count),
        "MaximumCountPerNumaSocket": Int64(world.host.logical_processor_count),
        "EnableHostResourceProtection": False,
        "Name": "Processor",
        "Id": f"Microsoft:{vm.id.upper()}\\b637f346-6a0e-4dec-af52-bd70cb80a21d\\0",
        "VMId": guid(vm.id), "VMName": vm.name, "ComputerName": world.host.computer_name, "IsDeleted": False,
    }
    return PSObj([f"{HV}.VMProcessor", f"{HV}.VMDevice", *VO], props)


def memory_obj(world: World, vm: VM) -> PSObj:
    props = {
        "ResourcePoolName": "Primordial",
        "Buffer": vm.memory_buffer,
        "DynamicMemoryEnabled": vm.dynamic_memory,
        "Maximum": Int64(vm.memory_maximum),
        "MaximumPerNumaNode": Int64(world.host.memory_capacity // (1024**2)),
        "Minimum": Int64(vm.memory_minimum),
        "Priority": vm.memory_priority,
        "Startup": Int64(vm.memory_startup),
        "Name": "Memory",
        "Id": f"Microsoft:{vm.id.upper()}\\4764334d-e001-4176-82ee-5594ec9b530e",
        "VMId": guid(vm.id), "VMName": vm.name, "ComputerName": world.host.computer_name, "IsDeleted": False,
    }
    return PSObj([f"{HV}.VMMemory", f"{HV}.VMDevice", *VO], props)


def firmware_obj(world: World, vm: VM) -> PSObj:
    boot = []
    for i, path in enumerate(vm.hard_drives):
        boot.append(PSObj([f"{HV}.VMBootSource", "System.Object"],
                          {"BootType": PSEnum(f"{HV}.BootType", "Drive", 1), "Description": "SCSI Disk",
                           "FirmwarePath": f"\\AcpiEx(VMBus,0,0)\\VenHw(...)\\Scsi(0,{i})", "Device": path}))
    for ad in vm.network_adapters:
        boot.append(PSObj([f"{HV}.VMBootSource", "System.Object"],
                          {"BootType": PSEnum(f"{HV}.BootType", "Network", 2),
                           "Description": f"EFI Network ({ad.name})", "FirmwarePath": "", "Device": ad.name}))
    props = {
        "SecureBoot": on_off(vm.secure_boot),
        "SecureBootTemplate": vm.secure_boot_template,
        "SecureBootTemplateId": guid("1734c6e8-3154-4dda-ba5f-a874cc483422"
                                     if vm.secure_boot_template == "MicrosoftWindows"
                                     else "272e7447-90a4-4563-a4b9-8e4ab00526ce"),
        "PreferredNetworkBootProtocol": PSEnum(f"{HV}.IPProtocolPreference", "IPv4", 0),
        "BootOrder": boot,
        "PauseAfterBootFailure": on_off(False),
        "ConsoleMode": PSEnum(f"{HV}.ConsoleModeType", "Default", 0),
        "VMName": vm.name, "VMId": guid(vm.id), "ComputerName": world.host.computer_name, "IsDeleted": False,
    }
    return PSObj([f"{HV}.VMFirmware", *VO], props)


def integration_obj(world: World, vm: VM, name: str, enabled: bool) -> PSObj:
    comp = component(name)
    running = vm.state == "Running"
    # A running guest whose integration services answer reports Ok; before that, NoContact.
    booted = running and vm.guest.heartbeat(world, vm).startswith("Ok")
    status = ("Ok" if booted else "NoContact") if (running and enabled) else ""
    ics = f"{HV}.VMIntegrationComponentOperationalStatus"
    props = {
        "Enabled": enabled,
        "OperationalStatus": [PSEnum(ics, status, IC_STATUS[status])] if status else [],
        "PrimaryOperationalStatus": PSEnum(ics, status, IC_STATUS[status]) if status else None,
        "PrimaryStatusDescription": "OK" if status == "Ok" else ("No Contact" if status else None),
        "SecondaryOperationalStatus": None,
        "SecondaryStatusDescription": None,
        "StatusDescription": ["OK"] if status == "Ok" else [],
        # Name is the display name in the host's language; Id ends in the component's GUID, which is not
        # localized (what a script should select by).
        "Name": comp.name(world.host.ui_culture),
        "Id": f"Microsoft:{vm.id.upper()}\\{comp.guid or name}",
        "VMId": guid(vm.id), "VMName": vm.name, "ComputerName": world.host.computer_name, "IsDeleted": False,
    }
    return PSObj([f"{HV}.VMIntegrationComponent", f"{HV}.VMDevice", *VO], props)


def snapshot_obj(world: World, vm: VM, snap: Snapshot) -> PSObj:
    parent = next((s for s in vm.snapshots if s.id == snap.parent_snapshot_id), None)
    props = {
        "VMId": guid(vm.id), "VMName": vm.name, "Id": guid(snap.id), "Name": snap.name,
        # Production and standard checkpoints both list as SnapshotType Standard.
        "SnapshotType": enum(f"{HV}.SnapshotType", SNAPSHOT_TYPE, "Standard"),
        "IsAutomaticCheckpoint": False,
        "CreationTime": when(snap.created),
        "ParentCheckpointId": guid(parent.id) if parent else None,
        "ParentCheckpointName": parent.name if parent else None,
        "ParentSnapshotId": guid(parent.id) if parent else None,
        "ParentSnapshotName": parent.name if parent else None,
        "State": vm_state("Saved" if snap.state == "Running" and snap.snapshot_type == "Standard" else "Off"),
        "Generation": vm.generation, "Version": vm.version, "Path": vm.path,
        "MemoryStartup": Int64(snap.config.get("memory_startup", vm.memory_startup)),
        "ProcessorCount": Int64(snap.config.get("processor_count", vm.processor_count)),
        "Notes": snap.config.get("notes", ""),
        "HardDrives": list(snap.disks),
        "ComputerName": world.host.computer_name, "IsDeleted": False,
    }
    return PSObj([f"{HV}.VMSnapshot", f"{HV}.VirtualMachineBase", *VO], props)


def host_obj(world: World) -> PSObj:
    """Microsoft.HyperV.PowerShell.VMHost."""
    h = world.host
    props = {
        "ComputerName": h.computer_name, "Name": h.computer_name,
        "FullyQualifiedDomainName": h.domain,
        "LogicalProcessorCount": h.logical_processor_count,
        "MemoryCapacity": Int64(h.memory_capacity),
        "VirtualHardDiskPath": h.virtual_hard_disk_path,
        "VirtualMachinePath": h.virtual_machine_path,
        "MacAddressMinimum": f"{h.mac_prefix}{h.mac_pool_start:06X}",
        "MacAddressMaximum": f"{h.mac_prefix}{(h.mac_pool_start + 0xFF):06X}",
        "MaximumStorageMigrations": UInt32(2), "MaximumVirtualMachineMigrations": UInt32(2),
        "VirtualMachineMigrationEnabled": False,
        "NumaSpanningEnabled": True,
        "EnableEnhancedSessionMode": False,
        "SupportedVmVersions": list(h.supported_vm_versions),
        "IovSupport": False,
        "NestedVirtualizationSupported": True,
    }
    return PSObj([f"{HV}.VMHost", *VO], props)


# --- shared handler helpers ----------------------------------------------------------------------------


def resolve_vms(ctx: CmdletContext, call: BoundCall, name_keys: Iterable[str] = ("Name", "VMName"),
                get_vm: bool = False) -> list[VM]:
    """The VMs a call targets: -VM objects, -Id, or names (missing names: non-terminating errors).

    Only Get-VM (``get_vm``) reports a missing name as InvalidParameter with the name as target
    (minikube#8970); every other Hyper-V cmdlet reports ObjectNotFound with no target (HE.vm_name_not_found).
    """
    world = ctx.world
    if call.has("VM"):
        return [vm for _, vm in vm_objects(world, call.get("VM"))]
    out: list[VM] = []
    if call.has("Id"):
        for ident in as_list(call.get("Id")):
            vm = world.vms.get(str(ident))
            if vm is None:
                # The -Id text is unconfirmed; its record follows the -Name rule above.
                text = f'Hyper-V was unable to find a virtual machine with id "{ident}".'
                ctx.write_error(PSError(text, "InvalidParameter", "InvalidArgument", target=str(ident),
                                        exception_type=HE.VE) if get_vm else
                                PSError(text, "ObjectNotFound", "ObjectNotFound", exception_type=HE.VE))
            else:
                out.append(vm)
        return out
    for key in name_keys:
        if call.has(key):
            for name in as_list(call.get(key)):
                found = world.find_vms(str(name))
                if not found and not P.has_wildcard(str(name)):
                    ctx.write_error(HE.vm_not_found(str(name)) if get_vm else HE.vm_name_not_found(str(name)))
                out.extend(v for v in found if v not in out)
            return out
    return sorted(world.vms.values(), key=lambda v: (v.created, v.name.lower()))


def vm_from_obj(world: World, obj: Any) -> VM | None:
    if isinstance(obj, PSObj):
        ident = obj.get("VMId") or obj.get("Id")
        if ident is not None:
            return world.vms.get(str(ident))
    return None


def vm_objects(world: World, value: Any) -> list[tuple[Any, VM]]:
    """(object, its VM) for each VM or device object a parameter holds (-VM, -VMNetworkAdapter...); objects
    whose VM is gone are skipped."""
    pairs = []
    for obj in as_list(value):
        vm = vm_from_obj(world, obj)
        if vm is not None:
            pairs.append((obj, vm))
    return pairs
