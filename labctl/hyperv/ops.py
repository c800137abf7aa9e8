"""Host operations as typed invocations: each function returns what to send, never script text.

Related calls go together in one Pipeline (one round trip); the engine decides the order.
"""

from __future__ import annotations

import ipaddress

from labctl.secret import Sensitive
from labctl.transport.base import SWITCH, Credential, Invocation, Pipeline, ScriptBlock

ANSWER_FILE = r"Windows\Panther\unattend.xml"
# The Guest Service Interface's component GUID, the tail of its VMIntegrationComponent.Id
# (Microsoft:<VMId>\<GUID>). Its Name is localized ("Gastdienstschnittstelle" on a German host:
# HyperVDsc#76, MSLab#422), so labctl never selects it by name.
GUEST_SERVICE_INTERFACE_ID = "6C09BB55-D683-4DA0-8931-C9BF705F6480"


def host_vnic_alias(switch: str) -> str:
    """The host adapter Windows makes for an Internal switch."""
    return f"vEthernet ({switch})"


def create_switch(name: str, notes: str) -> Pipeline:
    """An Internal switch tagged as ours."""
    return Pipeline.of(
        Invocation("New-VMSwitch", {"Name": name, "SwitchType": "Internal", "Notes": notes}),
    )


def configure_gateway(switch: str, gateway: str, prefix_length: int) -> Invocation:
    """The host vNIC's address on the lab subnet (the VMs' gateway)."""
    return Invocation("New-NetIPAddress", {
        "IPAddress": gateway, "PrefixLength": prefix_length, "InterfaceAlias": host_vnic_alias(switch),
    })


def find_switch(name: str) -> Invocation:
    return Invocation("Get-VMSwitch", {"Name": name, "ErrorAction": "SilentlyContinue"})


def find_nat(name: str) -> Invocation:
    return Invocation("Get-NetNat", {"Name": name, "ErrorAction": "SilentlyContinue"})


def host_addresses(alias: str) -> Invocation:
    """The IP addresses of a host adapter (none when the adapter is not there)."""
    return Invocation("Get-NetIPAddress", {"InterfaceAlias": alias, "ErrorAction": "SilentlyContinue"})


def create_nat(name: str, subnet: str) -> Invocation:
    """A NetNat for the lab subnet so guests reach out through the host."""
    return Invocation("New-NetNat", {
        "Name": name, "InternalIPInterfaceAddressPrefix": str(ipaddress.ip_network(subnet)),
    })


def create_differencing_disk(path: str, parent: str) -> Invocation:
    return Invocation("New-VHD", {"Path": path, "ParentPath": parent, "Differencing": SWITCH})


def get_vhd(path: str) -> Invocation:
    """A disk's VHD object (Attached, DiskNumber, ParentPath); nothing when the file is not there."""
    return Invocation("Get-VHD", {"Path": path, "ErrorAction": "SilentlyContinue"})


def mount_disk(path: str) -> Invocation:
    return Invocation("Mount-VHD", {"Path": path, "Passthru": SWITCH})


def partitions_of(disk_number: int) -> Invocation:
    return Invocation("Get-Partition", {"DiskNumber": disk_number})


def write_answer_file(drive_letter: str, xml: str) -> Pipeline:
    """Write unattend.xml into a mounted system disk (the caller dismounts in every case)."""
    root = f"{drive_letter}:\\"
    return Pipeline.of(
        Invocation("New-Item", {"Path": root + r"Windows\Panther", "ItemType": "Directory", "Force": SWITCH}),
        Invocation("Set-Content", {"Path": root + ANSWER_FILE, "Value": Sensitive(xml), "Encoding": "UTF8"}),
    )


def dismount_disk(path: str) -> Invocation:
    return Invocation("Dismount-VHD", {"Path": path})


def create_vm(name: str, *, memory: int, vhd_path: str, switch: str, path: str | None = None) -> Invocation:
    """A Generation 2 VM on an existing disk (the ExistingVHD parameter set)."""
    params: dict[str, object] = {
        "Name": name, "Generation": 2, "MemoryStartupBytes": memory,
        "VHDPath": vhd_path, "SwitchName": switch,
    }
    if path:
        params["Path"] = path
    return Invocation("New-VM", params)


def configure_vm(name: str, *, processors: int, memory: int, mac: str, notes: str) -> Pipeline:
    """Nested virtualization settings, static memory and MAC, guest services, ownership tag.

    ExposeVirtualizationExtensions can only change while the VM is off, so this runs before
    the first start (and again only on a VM that is off).
    """
    settings = Pipeline.of(
        Invocation("Set-VM", {
            "Name": name, "ProcessorCount": processors, "StaticMemory": SWITCH, "MemoryStartupBytes": memory,
            "AutomaticCheckpointsEnabled": False, "Notes": notes,
        }),
        Invocation("Set-VMProcessor", {"VMName": name, "ExposeVirtualizationExtensions": True}),
        Invocation("Set-VMMemory", {"VMName": name, "DynamicMemoryEnabled": False}),
        Invocation("Set-VMNetworkAdapter", {
            "VMName": name, "MacAddressSpoofing": "On", "StaticMacAddress": mac.replace("-", "").upper(),
        }),
    )
    return Pipeline((*settings.statements, *enable_guest_service_interface(name).statements))


def enable_guest_service_interface(name: str) -> Pipeline:
    """Enable the Guest Service Interface (Copy-VMFile needs it), selected by its GUID in any language."""
    return Pipeline.piped(
        Invocation("Get-VMIntegrationService", {"VMName": name}),
        Invocation("Where-Object", {"Property": "Id", "Like": SWITCH, "Value": f"*\\{GUEST_SERVICE_INTERFACE_ID}"}),
        Invocation("Enable-VMIntegrationService", {}),
    )


def _stopping(statement: tuple[Invocation, ...]) -> tuple[Invocation, ...]:
    """The statement with -ErrorAction Stop on each command: its first error ends the whole pipeline, so the
    statements after it (which depend on it) never run."""
    return tuple(Invocation(i.command, {**i.parameters, "ErrorAction": "Stop"}) for i in statement)


def build_view(name: str, disk_path: str) -> Pipeline:
    """What a VM's build stages decide on, in one round trip: the VMs of that name and its disk's VHD object
    (Attached, DiskNumber); nothing for either when it is not there."""
    return Pipeline.of(find_vm(name), get_vhd(disk_path))


def mounted_partitions(path: str) -> Pipeline:
    """``Mount-VHD -Path <vhdx> -Passthru`` (the VHD object: its DiskNumber), then every partition of the host
    with its DiskNumber and DriveLetter, in one round trip; the caller keeps the mounted disk's partitions.

    Not ``Mount-VHD -Passthru | Get-Disk | Get-Partition``: the simulator's Get-Disk does not bind the piped VHD
    and returns every disk (reported, hvsim), so partitions of another VM's mounted disk would come back too."""
    return Pipeline.of(Invocation("Mount-VHD", {"Path": path, "Passthru": SWITCH, "ErrorAction": "Stop"}),
                       Invocation("Get-Partition", {}))


def create_disk(path: str, parent: str, *, mount: bool) -> Pipeline:
    """The VM's differencing disk; with ``mount`` it is then mounted for its answer file and its partitions
    read back, in the same round trip (New-VHD stops the pipeline when it fails)."""
    statements = [_stopping((create_differencing_disk(path, parent),))]
    if mount:
        statements += mounted_partitions(path).statements
    return Pipeline(tuple(statements))


def create_and_start_vm(name: str, *, disk_path: str, dismount: bool, memory: int, switch: str, path: str,
                        processors: int, mac: str, notes: str) -> Pipeline:
    """The VM made on its disk (dismounted first when its answer file was just written), configured
    (configure_vm) and started, in one round trip; the output is New-VM's VM object (as it was made: Off).
    Every command has -ErrorAction Stop: the first failure ends the pipeline, so a VM is never started
    unconfigured nor made on a disk still mounted."""
    steps: tuple[tuple[Invocation, ...], ...] = ((dismount_disk(disk_path),),) if dismount else ()
    steps += ((create_vm(name, memory=memory, vhd_path=disk_path, switch=switch, path=path),),
              *configure_vm(name, processors=processors, memory=memory, mac=mac, notes=notes).statements,
              (start_vm(name),))
    return Pipeline(tuple(_stopping(s) for s in steps))


def vm_settings(name: str) -> Pipeline:
    """What configure_vm sets, read back in one round trip (vm_details and the integration services)."""
    return Pipeline((*vm_details(name).statements,
                     (Invocation("Get-VMIntegrationService", {"VMName": name, "ErrorAction": "SilentlyContinue"}),)))


def start_vm(name: str) -> Invocation:
    return Invocation("Start-VM", {"Name": name})


def find_vm(name: str) -> Invocation:
    """VMs of that name (none is not an error)."""
    return Invocation("Get-VM", {"Name": name, "ErrorAction": "SilentlyContinue"})


def list_vms() -> Invocation:
    """Every VM on the host (for ownership by location: each VM's Path)."""
    return Invocation("Get-VM")


def vm_adapters(name: str) -> Invocation:
    """A VM's network adapters (their IPAddresses come from the guest's KVP exchange)."""
    return Invocation("Get-VMNetworkAdapter", {"VMName": name})


def computer_system() -> Invocation:
    """Win32_ComputerSystem: its Model says whether the host is a labctl simulator."""
    return Invocation("Get-CimInstance", {"ClassName": "Win32_ComputerSystem"})


def find_vm_by_id(vm_id: str) -> Invocation:
    return Invocation("Get-VM", {"Id": vm_id, "ErrorAction": "SilentlyContinue"})


def turn_off_vm_by_id(vm_id: str) -> Pipeline:
    """Turn off exactly that VM (piped by Id, so a same-named VM that is not ours is never hit)."""
    return Pipeline.piped(Invocation("Get-VM", {"Id": vm_id}), Invocation("Stop-VM", {"TurnOff": SWITCH,
                                                                                      "Force": SWITCH}))


def remove_vm_by_id(vm_id: str) -> Pipeline:
    return Pipeline.piped(Invocation("Get-VM", {"Id": vm_id}), Invocation("Remove-VM", {"Force": SWITCH}))


def list_files(folder: str) -> Invocation:
    """Files under a folder, recursively (none when it is not there)."""
    return Invocation("Get-ChildItem", {"Path": folder, "Recurse": SWITCH, "File": SWITCH,
                                        "ErrorAction": "SilentlyContinue"})


def list_children(folder: str) -> Invocation:
    return Invocation("Get-ChildItem", {"Path": folder, "Force": SWITCH, "ErrorAction": "SilentlyContinue"})


def remove_folder(path: str) -> Invocation:
    return Invocation("Remove-Item", {"Path": path, "Recurse": SWITCH, "Force": SWITCH})


def remove_empty_folder(path: str) -> Invocation:
    """Remove a folder only when it is empty (no -Recurse: PowerShell refuses a folder with children)."""
    return Invocation("Remove-Item", {"Path": path, "Force": SWITCH, "Confirm": False})


def lab_details(names: list[str]) -> Pipeline:
    """Everything status shows about the lab's VMs, in one round trip (VMs that are not there return nothing;
    each adapter, processor and memory object carries its VMId)."""
    quiet = {"ErrorAction": "SilentlyContinue"}
    return Pipeline.of(
        Invocation("Get-VM", {"Name": list(names), **quiet}),
        Invocation("Get-VMNetworkAdapter", {"VMName": list(names), **quiet}),
        Invocation("Get-VMProcessor", {"VMName": list(names), **quiet}),
        Invocation("Get-VMMemory", {"VMName": list(names), **quiet}),
    )


def guest_steps_many(calls: list[tuple[list[str], Credential, str, list[object]]]) -> Pipeline:
    """Several batched PowerShell Direct calls (guest_invoke_many) as the statements of one round trip, in order."""
    return Pipeline.of(*[guest_invoke_many(vms, credential, script, arguments)
                         for vms, credential, script, arguments in calls])


def vm_details(name: str) -> Pipeline:
    """Everything status shows about one VM, in one round trip (a missing VM returns nothing)."""
    quiet = {"ErrorAction": "SilentlyContinue"}
    return Pipeline.of(
        Invocation("Get-VM", {"Name": name, **quiet}),
        Invocation("Get-VMNetworkAdapter", {"VMName": name, **quiet}),
        Invocation("Get-VMProcessor", {"VMName": name, **quiet}),
        Invocation("Get-VMMemory", {"VMName": name, **quiet}),
    )


def stop_vm(name: str) -> Invocation:
    return Invocation("Stop-VM", {"Name": name, "TurnOff": SWITCH, "Force": SWITCH})


def remove_file(path: str) -> Invocation:
    return Invocation("Remove-Item", {"Path": path, "Force": SWITCH})


def test_path(path: str) -> Invocation:
    return Invocation("Test-Path", {"Path": path})


def remove_switch(name: str) -> Invocation:
    return Invocation("Remove-VMSwitch", {"Name": name, "Force": SWITCH})


def remove_nat(name: str) -> Invocation:
    return Invocation("Remove-NetNat", {"Name": name, "Confirm": False})


def guest_invoke(vm: str, credential: Credential, script: str, arguments: list[object]) -> Invocation:
    """PowerShell Direct: a ScriptBlock run in the guest with its values as -ArgumentList."""
    params: dict[str, object] = {"VMName": vm, "Credential": credential, "ScriptBlock": ScriptBlock(script)}
    if arguments:
        params["ArgumentList"] = arguments
    return Invocation("Invoke-Command", params)


# --- container-host bootstrap ---------------------------------------------------------------------------

UPLOAD_CHUNK = 1024 * 1024  # bytes per call: large enough to be quick, small enough for WinRM envelopes


def upload_chunk(path: str, piece: bytes, *, first: bool) -> Invocation:
    """One chunk of a host file upload: the first replaces the file, the others append."""
    return Invocation("Set-Content" if first else "Add-Content", {"Path": path, "Value": piece, "Encoding": "Byte"})


def file_hash(path: str) -> Invocation:
    """The SHA-256 of a host file (an object with Algorithm, Hash, Path)."""
    return Invocation("Get-FileHash", {"Path": path, "Algorithm": "SHA256"})


def new_directory(path: str) -> Invocation:
    return Invocation("New-Item", {"Path": path, "ItemType": "Directory", "Force": SWITCH})


def copy_vm_file(vm: str, source: str, destination: str) -> Invocation:
    """Host -> guest over the Guest Service Interface (configure_vm enables it)."""
    return Invocation("Copy-VMFile", {
        "Name": vm, "SourcePath": source, "DestinationPath": destination, "FileSource": "Host",
        "CreateFullPath": SWITCH, "Force": SWITCH, "ErrorAction": "Stop",
    })


def start_vms(names: list[str]) -> Invocation:
    """Start-VM of several VMs in one call; a VM that fails is a non-terminating error about it."""
    return Invocation("Start-VM", {"Name": list(names)})


def shutdown_vms(names: list[str]) -> Invocation:
    """shutdown_vm of several VMs in one call (each VM's failure a non-terminating error about it)."""
    return Invocation("Stop-VM", {"Name": list(names), "Force": SWITCH})


def copy_vm_files(vms: list[str], source: str, destination: str) -> Invocation:
    """copy_vm_file of one host file into several guests (Copy-VMFile -Name a,b,c); each VM's failure is a
    non-terminating error about it."""
    return Invocation("Copy-VMFile", {
        "Name": list(vms), "SourcePath": source, "DestinationPath": destination, "FileSource": "Host",
        "CreateFullPath": SWITCH, "Force": SWITCH,
    })


def shutdown_vm(name: str) -> Invocation:
    """A guest shutdown through the Shutdown integration service; -Force closes applications with unsaved data
    (after five minutes), it does not cut the power (that is -TurnOff)."""
    return Invocation("Stop-VM", {"Name": name, "Force": SWITCH})


def nat_static_mappings(nat: str) -> Invocation:
    return Invocation("Get-NetNatStaticMapping", {"NatName": nat, "ErrorAction": "SilentlyContinue"})


def add_nat_static_mapping(nat: str, external_port: int, internal_ip: str, internal_port: int) -> Invocation:
    """Publish a guest's TCP port on every host address (0.0.0.0/24 is WinNAT's "any")."""
    return Invocation("Add-NetNatStaticMapping", {
        "NatName": nat, "Protocol": "TCP", "ExternalIPAddress": "0.0.0.0/24", "ExternalPort": external_port,
        "InternalIPAddress": internal_ip, "InternalPort": internal_port,
    })


def host_invoke(script: str, arguments: list[object]) -> Invocation:
    """A host step: a ScriptBlock run on the host itself (no -VMName), values as -ArgumentList."""
    params: dict[str, object] = {"ScriptBlock": ScriptBlock(script)}
    if arguments:
        params["ArgumentList"] = arguments
    return Invocation("Invoke-Command", params)


# --- inventory -----------------------------------------------------------------------------------------------


def lab_folder_files(roots: list[str]) -> Pipeline:
    """Every file under each lab folder, in one round trip (FullName and Length: the bytes they take)."""
    return Pipeline.of(*[list_files(root) for root in roots])


def host_ipv4_addresses() -> Invocation:
    """Every IPv4 address of the host with its adapter (InterfaceAlias): which switch a NAT prefix serves."""
    return Invocation("Get-NetIPAddress", {"AddressFamily": "IPv4", "ErrorAction": "SilentlyContinue"})


# --- checkpoints and power ------------------------------------------------------------------------------
# Lab-wide verbs (snapshot, reset, stop, start) act on all VMs of a lab in one pipeline each. They select the
# lab's VMs by name and then by Id (Where-Object -Property Id -In): Hyper-V allows several VMs of one name, and
# a same-named VM that is not the lab's must never be hit. PowerShell's -In compares each listed string with
# the Guid converted to text ("D" format, case-insensitive), so the ids are passed as lower-case text.


def _lab_vms(names: list[str], vm_ids: list[str]) -> tuple[Invocation, Invocation]:
    """``Get-VM -Name a,b,c | Where-Object Id -In <ids>``: exactly the lab's VMs (missing names are silent)."""
    return (Invocation("Get-VM", {"Name": list(names), "ErrorAction": "SilentlyContinue"}),
            Invocation("Where-Object", {"Property": "Id", "In": SWITCH, "Value": [i.lower() for i in vm_ids]}))


def _lab_checkpoints(names: list[str], checkpoint_ids: list[str]) -> tuple[Invocation, Invocation]:
    """``Get-VMSnapshot -VMName a,b,c | Where-Object Id -In <ids>``: exactly the recorded checkpoints."""
    return (Invocation("Get-VMSnapshot", {"VMName": list(names), "ErrorAction": "SilentlyContinue"}),
            Invocation("Where-Object", {"Property": "Id", "In": SWITCH,
                                        "Value": [i.lower() for i in checkpoint_ids]}))


def lab_vm_view(names: list[str]) -> Pipeline:
    """The lab's VMs (by name; the engine keeps those with the lab's tag) and all their checkpoints."""
    quiet = {"ErrorAction": "SilentlyContinue"}
    return Pipeline.of(
        Invocation("Get-VM", {"Name": list(names), **quiet}),
        Invocation("Get-VMSnapshot", {"VMName": list(names), **quiet}),
    )


def checkpoint_lab(names: list[str], vm_ids: list[str], snapshot: str) -> Pipeline:
    """Production-only checkpoints of every lab VM, then every checkpoint of those VMs read back.

    ``Set-VM -CheckpointType ProductionOnly`` first, with -ErrorAction Stop: if any VM cannot be set, the
    pipeline ends before a single checkpoint is taken, so Hyper-V never falls back to a standard checkpoint
    (memory state, which nested VMs refuse) for a guest whose VSS does not answer. Checkpoint-VM then writes a
    non-terminating error per VM it could not checkpoint; the engine removes the others (all or nothing).
    """
    return Pipeline((
        (*_lab_vms(names, vm_ids), Invocation("Set-VM", {"CheckpointType": "ProductionOnly", "ErrorAction": "Stop"})),
        (*_lab_vms(names, vm_ids), Invocation("Checkpoint-VM", {"SnapshotName": snapshot})),
        (Invocation("Get-VMSnapshot", {"VMName": list(names), "ErrorAction": "SilentlyContinue"}),),
    ))


def restore_checkpoints(names: list[str], vm_ids: list[str], checkpoint_ids: list[str]) -> Pipeline:
    """Turn the lab's VMs off, apply exactly these checkpoints (one per VM) in one statement, read the VMs back.

    Their current state is discarded either way; turning off first makes the restore the same for a running
    and a stopped VM. A production checkpoint restores its VM to Off."""
    return Pipeline((
        (*_lab_vms(names, vm_ids), Invocation("Stop-VM", {"TurnOff": SWITCH, "Force": SWITCH})),
        (*_lab_checkpoints(names, checkpoint_ids), Invocation("Restore-VMSnapshot", {"Confirm": False})),
        (Invocation("Get-VM", {"Name": list(names), "ErrorAction": "SilentlyContinue"}),),
    ))


def remove_checkpoints(by_vm: dict[str, str], names: list[str]) -> Pipeline:
    """``Remove-VMSnapshot -VMName <vm> -Name <checkpoint>`` for each VM (Hyper-V merges the differencing
    disks), in one round trip, then every checkpoint of the lab's VMs read back.

    By name, not by Id: the exact form (``Get-VMSnapshot ... | Where-Object Id -In ... | Remove-VMSnapshot``)
    is refused by the simulator's binder as an ambiguous parameter set (it offers the piped VMSnapshot to
    -Name too; reported, hvsim). The engine calls this only after reading that, on every VM of that name, the
    one checkpoint of that name is the lab's recorded one."""
    return Pipeline((
        *((Invocation("Remove-VMSnapshot", {"VMName": vm, "Name": checkpoint, "Confirm": False}),)
          for vm, checkpoint in by_vm.items()),
        (Invocation("Get-VMSnapshot", {"VMName": list(names), "ErrorAction": "SilentlyContinue"}),),
    ))


def start_lab_vms(names: list[str], vm_ids: list[str]) -> Pipeline:
    """Start-VM for every listed lab VM, in one statement (a VM already running gets Hyper-V's warning)."""
    return Pipeline.piped(*_lab_vms(names, vm_ids), Invocation("Start-VM", {}))


def shutdown_lab_vms(names: list[str], vm_ids: list[str]) -> Pipeline:
    """A guest shutdown of every listed lab VM through its Shutdown integration service.

    Stop-VM waits until the guest is off; -AsJob returns at once, so labctl keeps its own timeout and polls
    the VMs' state. No -Force: with it, Hyper-V turns off a VM whose Shutdown service does not answer (as the
    simulator models it) and "shut down" would not be true; labctl turns off only after its timeout, and says so.
    """
    return Pipeline.piped(*_lab_vms(names, vm_ids), Invocation("Stop-VM", {"AsJob": SWITCH}))


def turn_off_lab_vms(names: list[str], vm_ids: list[str]) -> Pipeline:
    """Turn off every listed lab VM (power cut: what a guest that would not shut down gets)."""
    return Pipeline.piped(*_lab_vms(names, vm_ids), Invocation("Stop-VM", {"TurnOff": SWITCH, "Force": SWITCH}))


# What a readiness poll reads of a VM and of its adapters: a poll of many VMs runs often, and a whole VM object is
# large (the host builds it, PSRP carries it as XML, the client parses it), so only these travel.
READINESS_VM_PROPERTIES = ("Name", "Id", "State", "Heartbeat", "Status", "Notes", "Path")
READINESS_ADAPTER_PROPERTIES = ("VMName", "VMId", "Name", "IPAddresses")


def lab_readiness(names: list[str]) -> Pipeline:
    """One poll of every lab VM: state and heartbeat (Get-VM) and the addresses its adapters report, each
    ``| Select-Object`` of what readiness judges (the objects come back as Selected.<type>)."""
    quiet = {"ErrorAction": "SilentlyContinue"}
    return Pipeline((
        (Invocation("Get-VM", {"Name": list(names), **quiet}),
         Invocation("Select-Object", {"Property": list(READINESS_VM_PROPERTIES)})),
        (Invocation("Get-VMNetworkAdapter", {"VMName": list(names), **quiet}),
         Invocation("Select-Object", {"Property": list(READINESS_ADAPTER_PROPERTIES)})),
    ))


def guest_invoke_many(vms: list[str], credential: Credential, script: str, arguments: list[object]) -> Invocation:
    """PowerShell Direct into several VMs at once (Invoke-Command -VMName a,b,c): one round trip; each output
    object carries PSComputerName (the VM), each failure is a non-terminating error."""
    params: dict[str, object] = {"VMName": list(vms), "Credential": credential, "ScriptBlock": ScriptBlock(script)}
    if arguments:
        params["ArgumentList"] = arguments
    return Invocation("Invoke-Command", params)


# --- classes (copies, roster) ---------------------------------------------------------------------------


def find_vms(names: list[str]) -> Invocation:
    """Get-VM of several names at once (names that do not exist are skipped)."""
    return Invocation("Get-VM", {"Name": list(names), "ErrorAction": "SilentlyContinue"})


def remove_nat_static_mappings(nat: str, mapping_ids: list[int]) -> Invocation:
    """Remove the static mappings of these ids from a NAT (what one copy published on a shared NAT)."""
    return Invocation("Remove-NetNatStaticMapping", {
        "NatName": nat, "StaticMappingID": list(mapping_ids), "Confirm": False})


# --- golden images ----------------------------------------------------------------------------------------
# A golden image's build VM disk (a differencing child of the `from:` image) becomes a standalone disk:
# Convert-VHD writes a new VHDX holding the whole chain's data (Microsoft Learn, Convert-VHD: "converts a
# virtual hard disk file by creating a new virtual hard disk file with the desired format and type"); the
# parent is only read. Merge-VHD would write into the parent, which is read-only and shared.


def convert_to_standalone_disk(path: str, destination: str) -> Invocation:
    """A new dynamic VHDX at ``destination`` with everything ``path`` (and its parents) hold."""
    return Invocation("Convert-VHD", {"Path": path, "DestinationPath": destination, "VHDType": "Dynamic"})


def move_host_file(path: str, destination: str) -> Invocation:
    """Move (rename, on one volume) a host file to its final path."""
    return Invocation("Move-Item", {"LiteralPath": path, "Destination": destination})


def mark_read_only(path: str) -> Invocation:
    """The file's read-only attribute set (a base disk must never change under its children)."""
    return Invocation("Set-ItemProperty", {"LiteralPath": path, "Name": "IsReadOnly", "Value": True})


def write_host_text(path: str, text: str) -> Invocation:
    """A small text file on the host (an image's ``.labctl.json`` sidecar), replaced whole, UTF-8."""
    return Invocation("Set-Content", {"LiteralPath": path, "Value": text, "Encoding": "UTF8"})


# --- images ---------------------------------------------------------------------------------------------
# Building a base image from an ISO on the host (labctl.engine.imagebuild), as Windows setup lays out a Gen 2
# disk: GPT with an EFI system partition, an MSR and the Windows partition (Microsoft Learn, "UEFI/GPT-based hard
# drive partitions"), the image applied with DISM's Expand-WindowsImage, made bootable with bcdboot.

GPT_EFI_SYSTEM = "{c12a7328-f81f-11d2-ba4b-00a0c93ec93b}"
GPT_MSR = "{e3c9e316-0b5c-4db8-817d-f92df00215ae}"
GPT_BASIC_DATA = "{ebd0a0a2-b9e5-4433-87c0-68b6b72699c7}"
EFI_PARTITION_SIZE = 100 * 1024**2
MSR_PARTITION_SIZE = 16 * 1024**2


def disk_image_volume(iso: str) -> Pipeline:
    """``Get-DiskImage -ImagePath <iso> | Get-Volume``: the drive of an ISO that is already mounted (nothing when
    it is not; an error when the file is not there)."""
    return Pipeline.piped(Invocation("Get-DiskImage", {"ImagePath": iso}), Invocation("Get-Volume", {}))


def disk_image(iso: str) -> Invocation:
    """The ISO's DiskImage object (Attached, DevicePath)."""
    return Invocation("Get-DiskImage", {"ImagePath": iso})


def mount_iso(iso: str) -> Pipeline:
    """``Mount-DiskImage -ImagePath <iso> -PassThru | Get-Volume``: the mounted ISO's volume (its DriveLetter)."""
    return Pipeline.piped(Invocation("Mount-DiskImage", {"ImagePath": iso, "PassThru": SWITCH}),
                          Invocation("Get-Volume", {}))


def dismount_iso(iso: str) -> Invocation:
    return Invocation("Dismount-DiskImage", {"ImagePath": iso})


def install_images_present(drive_letter: str) -> Pipeline:
    r"""Whether X:\sources\install.wim and X:\sources\install.esd exist, in that order."""
    root = f"{drive_letter}:\\sources\\"
    return Pipeline.of(test_path(root + "install.wim"), test_path(root + "install.esd"))


def windows_images(image_path: str) -> Invocation:
    """Every image in an install.wim/esd (ImageIndex, ImageName, ImageDescription, ImageSize)."""
    return Invocation("Get-WindowsImage", {"ImagePath": image_path})


def windows_image(image_path: str, *, index: int | None = None, name: str | None = None) -> Invocation:
    """One image's details (Version with the build, EditionId, ...), by index or by name."""
    params: dict[str, object] = {"ImagePath": image_path}
    if index is not None:
        params["Index"] = index
    else:
        params["Name"] = name
    return Invocation("Get-WindowsImage", params)


def new_dynamic_vhd(path: str, size: int) -> Invocation:
    return Invocation("New-VHD", {"Path": path, "SizeBytes": size, "Dynamic": SWITCH})


def mount_vhd_disk(path: str) -> Pipeline:
    """``Mount-VHD -Path <vhdx> -Passthru | Get-Disk``: the mounted disk (its Number)."""
    return Pipeline.piped(mount_disk(path), Invocation("Get-Disk", {}))


def initialize_gpt(disk_number: int) -> Invocation:
    return Invocation("Initialize-Disk", {"Number": disk_number, "PartitionStyle": "GPT"})


def new_partition(disk_number: int, gpt_type: str, size: int | None = None) -> Invocation:
    """A partition of ``size`` bytes (None: the rest of the disk) with that GPT type."""
    params: dict[str, object] = {"DiskNumber": disk_number}
    if size is None:
        params["UseMaximumSize"] = SWITCH
    else:
        params["Size"] = size
    params["GptType"] = gpt_type
    return Invocation("New-Partition", params)


def set_partition_type(disk_number: int, partition_number: int, gpt_type: str) -> Invocation:
    """Set-Partition -GptType: the EFI system partition is made as basic data, formatted FAT32, then given the ESP
    type (the Storage module formats no volume on a partition created as an ESP; Convert-WindowsImage does the
    same)."""
    return Invocation("Set-Partition", {"DiskNumber": disk_number, "PartitionNumber": partition_number,
                                        "GptType": gpt_type})


def format_volume(drive_letter: str, file_system: str, label: str) -> Invocation:
    """``Format-Volume -DriveLetter X -FileSystem ... -NewFileSystemLabel ... -Confirm:$false`` (a new partition,
    given its letter first)."""
    return Invocation("Format-Volume", {"DriveLetter": drive_letter, "FileSystem": file_system,
                                        "NewFileSystemLabel": label, "Confirm": False})


def assign_drive_letter(disk_number: int, partition_number: int) -> Pipeline:
    """Add-PartitionAccessPath -AssignDriveLetter, then the partition read back (its DriveLetter)."""
    return Pipeline.of(
        Invocation("Add-PartitionAccessPath", {"DiskNumber": disk_number, "PartitionNumber": partition_number,
                                                "AssignDriveLetter": SWITCH}),
        Invocation("Get-Partition", {"DiskNumber": disk_number, "PartitionNumber": partition_number}))


def expand_windows_image(image_path: str, index: int, apply_path: str) -> Invocation:
    return Invocation("Expand-WindowsImage", {"ImagePath": image_path, "Index": index, "ApplyPath": apply_path})


def enable_offline_feature(path: str, feature: str) -> Invocation:
    """Enable a Windows optional feature in an offline image (with its parent features: -All)."""
    return Invocation("Enable-WindowsOptionalFeature", {"Path": path, "FeatureName": feature, "All": SWITCH})


def add_offline_package(path: str, package: str) -> Invocation:
    """Apply an update package (.msu/.cab) to an offline image."""
    return Invocation("Add-WindowsPackage", {"Path": path, "PackagePath": package})


def read_text(path: str) -> Invocation:
    """A text file's content as one string (nothing when the file is not there)."""
    return Invocation("Get-Content", {"Path": path, "Raw": SWITCH, "ErrorAction": "SilentlyContinue"})


def create_exclusive_file(path: str, text: str) -> Invocation:
    """New-Item -ItemType File without -Force: it fails ("The file '...' already exists.") when the file exists,
    which makes it a lock only one caller can take."""
    return Invocation("New-Item", {"Path": path, "ItemType": "File", "Value": text})


def get_vhds(paths: list[str]) -> Invocation:
    """Several disks' VHD objects (Path, ParentPath, VhdType, Size, FileSize, Attached); missing ones skipped."""
    return Invocation("Get-VHD", {"Path": list(paths), "ErrorAction": "SilentlyContinue"})


def vm_hard_disks() -> Pipeline:
    """Every VM (Name, Id, Notes: the ownership tag) and every VM's hard disk drives (VMName, Path)."""
    return Pipeline((
        (Invocation("Get-VM", {}),),
        (Invocation("Get-VM", {}), Invocation("Get-VMHardDiskDrive", {})),
    ))
