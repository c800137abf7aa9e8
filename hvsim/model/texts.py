"""The real Windows/Hyper-V error texts, ids and categories the model raises.

Each factory says where its wording comes from. "unconfirmed" marks wording that could not be
checked against a real host or a public transcript; it is the most plausible Hyper-V phrasing.
The runtime appends the cmdlet's .NET type to ``error_id`` to form the FullyQualifiedErrorId,
except for ``bare`` errors whose id already is complete (CDXML cmdlets such as New-NetNat use the
cmdlet name, not a .NET type, as the suffix).
"""

from __future__ import annotations

from hvsim.errors import PSError
from hvsim.model.localized import integration_not_found

VE = "Microsoft.HyperV.PowerShell.VirtualizationException"
CIM = "Microsoft.Management.Infrastructure.CimException"
IOE = "System.IO.IOException"
INF = "System.Management.Automation.ItemNotFoundException"

# --- Hyper-V: VMs ------------------------------------------------------------------------------


def vm_not_found(name: str, error_id: str = "InvalidParameter", category: str = "InvalidArgument") -> PSError:
    """Get-VM/Start-VM... on a missing name (hyperv-facts.md; Remove-VM uses ObjectNotFound:
    multipass#2867 shows 'ObjectNotFound: (:) [Remove-VM]', 'ObjectNotFound,...RemoveVM')."""
    return PSError(f'Hyper-V was unable to find a virtual machine with name "{name}".',
                   error_id, category, target=name, exception_type=VE)


def vm_id_line(vm_name: str, vm_id: str) -> str:
    return f"'{vm_name}' failed to start. (Virtual machine ID {vm_id.upper()})"


def start_out_of_memory(vm_name: str, vm_id: str, startup_mb: int) -> PSError:
    """Start-VM beyond host memory. Text, id and category from multipass#3345, minikube#13922/#18049
    transcripts: CategoryInfo 'FromStdErr: (:) [Start-VM], VirtualizationException' (no target),
    FullyQualifiedErrorId 'OutOfMemory,Microsoft.HyperV.PowerShell.Commands.StartVM'."""
    vid = vm_id.upper()
    msg = (
        f"'{vm_name}' failed to start.\n"
        f"Not enough memory in the system to start the virtual machine {vm_name}.\n"
        "Could not initialize memory: Not enough memory resources are available to complete this "
        "operation. (0x8007000E).\n"
        f"'{vm_name}' failed to start. (Virtual machine ID {vid})\n"
        f"Not enough memory in the system to start the virtual machine {vm_name} with ram size "
        f"{startup_mb} megabytes. (Virtual machine ID {vid})\n"
        f"'{vm_name}' could not initialize memory: Not enough memory resources are available to "
        f"complete this operation. (0x8007000E). (Virtual machine ID {vid})"
    )
    return PSError(msg, "OutOfMemory", "FromStdErr", exception_type=VE)


def start_attachment_failed(vm_name: str, vm_id: str, path: str, reason: str, code: str) -> PSError:
    """Start-VM when a disk cannot be opened. Shape from coreos-hyperv#2 and vagrant#5101
    ("Failed to Power on with Error ..." / "Failed to open attachment ..."); id/category
    'Unspecified'/NotSpecified as in MSLab#300 (unconfirmed for this exact cause)."""
    vid = vm_id.upper()
    msg = (
        f"'{vm_name}' failed to start.\n"
        f"Synthetic SCSI Controller (Instance ID 00000000-0000-0000-0000-000000000000): Failed to Power on "
        f"with Error '{reason}'.\n"
        f"Failed to open attachment '{path}'. Error: '{reason}'.\n"
        f"'{vm_name}' failed to start. (Virtual machine ID {vid})\n"
        f"'{vm_name}': Failed to open attachment '{path}'. Error: '{reason}' ({code}). "
        f"(Virtual machine ID {vid})"
    )
    return PSError(msg, "Unspecified", "NotSpecified", target=vm_name, exception_type=VE)


def invalid_state(vm_name: str, vm_id: str, device: str | None = None) -> PSError:
    """An operation the VM's current state forbids (Set-VMProcessor while Running...).
    The envelope "Failed to modify device 'Processor'." and category InvalidOperation follow
    LabBuilder#251; the reason sentence and the id InvalidState are unconfirmed."""
    reason = "The operation cannot be performed while the virtual machine is in its current state."
    if device:
        msg = (f"Failed to modify device '{device}'.\n{reason}\n"
               f"'{vm_name}' failed to modify device '{device}'. (Virtual machine ID {vm_id.upper()})")
    else:
        msg = reason
    return PSError(msg, "InvalidState", "InvalidOperation", target=vm_name, exception_type=VE)


def nested_not_supported(vm_name: str, vm_id: str, why: str) -> PSError:
    """ExposeVirtualizationExtensions refused: envelope, id NotSupported and category
    InvalidOperation from LabBuilder#251; the reason lines are unconfirmed."""
    if why == "host":
        reason = ("Nested virtualization is not supported on this host: the processor does not support "
                  "it with this version of Windows.")
    else:
        reason = ("Nested virtualization is not supported for this virtual machine configuration version. "
                  "Upgrade the configuration version of the virtual machine.")
    msg = (f"Failed to modify device 'Processor'.\nCannot modify property.\n"
           f"'{vm_name}' failed to modify device 'Processor'. (Virtual machine ID {vm_id.upper()})\n{reason}")
    return PSError(msg, "NotSupported", "InvalidOperation", target=vm_name, exception_type=VE)


def memory_change_running(vm_name: str, vm_id: str) -> PSError:
    """Changing static memory / turning dynamic memory on while Running (unconfirmed text)."""
    msg = (f"Failed to modify device 'Memory'.\n"
           "The operation cannot be performed while the virtual machine is in its current state.\n"
           f"'{vm_name}' failed to modify device 'Memory'. (Virtual machine ID {vm_id.upper()})")
    return PSError(msg, "InvalidState", "InvalidOperation", target=vm_name, exception_type=VE)


def switch_not_found(name: str, error_id: str = "InvalidParameter") -> PSError:
    """Get-VMSwitch / Connect-VMNetworkAdapter with a missing switch. Text from the Hyper-V
    module resources ('Hyper-V was unable to find a virtual switch with name "X".')."""
    return PSError(f'Hyper-V was unable to find a virtual switch with name "{name}".',
                   error_id, "InvalidArgument", target=name, exception_type=VE)


def gen2_boot_device(device: str) -> PSError:
    """New-VM -Generation 2 -BootDevice IDE/Floppy/LegacyNetworkAdapter (unconfirmed text)."""
    return PSError(
        f"The boot device '{device}' is not supported for generation 2 virtual machines.",
        "InvalidParameter", "InvalidArgument", target=device, exception_type=VE)


def unsupported_version(version: str) -> PSError:
    """New-VM -Version not supported by this host (unconfirmed text)."""
    return PSError(
        f"The configuration version '{version}' is not supported on this host. Use Get-VMHostSupportedVersion "
        "to list the supported versions.",
        "InvalidParameter", "InvalidArgument", target=version, exception_type=VE)


def integration_service_not_found(culture: str = "en-US", host_build: int = 26100) -> PSError:
    """Get-/Enable-VMIntegrationService -Name that matches no component (the German text and the
    record's shape from PlagueHO/LabBuilder#183: InvalidArgument, no target,
    VirtualizationInvalidArgumentException)."""
    return PSError(integration_not_found(culture, host_build), "InvalidParameter", "InvalidArgument",
                   exception_type="Microsoft.HyperV.PowerShell.VirtualizationInvalidArgumentException")


# --- Hyper-V: VHDs -----------------------------------------------------------------------------


def not_a_vhd(path: str) -> PSError:
    """Get-VHD/Mount-VHD on a missing file: "'X' is not an existing virtual hard disk file."
    InvalidArgument, InvalidParameter (PS-AutoLab-Env#159, openzfsonwindows#381)."""
    return PSError(f"'{path}' is not an existing virtual hard disk file.", "InvalidParameter",
                   "InvalidArgument", target=path, exception_type=VE)


def vhd_create_failed(path: str, reason: str, code: str) -> PSError:
    """New-VHD failure, verbatim shape from MSLab#386 ("The file exists. (0x80070050)"):
    NotSpecified, 'OperationFailed,Microsoft.Vhd.PowerShell.Cmdlets.NewVhd'."""
    return PSError(f"Failed to create the virtual hard disk.\nThe system failed to create '{path}'.\n"
                   f"Failed to create the virtual hard disk.\nThe system failed to create '{path}': {reason} ({code}).",
                   "OperationFailed", "NotSpecified", target=path, exception_type=VE)


def mount_failed(path: str, reason: str, code: str) -> PSError:
    """Mount-VHD failure: 'Failed to mount the virtual disk.' / "The system failed to mount 'X'."
    (NetworkingDsc#312, category NotSpecified); the repeated reason line follows New-VHD's envelope and
    the id OperationFailed follows New-VHD's (unconfirmed for Mount-VHD)."""
    return PSError(f"Failed to mount the virtual disk.\nThe system failed to mount '{path}'.\n"
                   f"Failed to mount the virtual disk.\nThe system failed to mount '{path}': {reason} ({code}).",
                   "OperationFailed", "NotSpecified", target=path, exception_type=VE)


def vhd_not_mounted(path: str) -> PSError:
    """Dismount-VHD of a disk that is not attached (unconfirmed text)."""
    return PSError(f"Failed to dismount the virtual disk.\nThe system failed to dismount '{path}': The virtual "
                   "disk is not attached. (0xC03A0017).", "Unspecified", "NotSpecified", target=path,
                   exception_type=VE)


def chain_corrupted(path: str) -> PSError:
    """A differencing disk whose parent changed (ERROR_VHD_DIFFERENCING_CHAIN_ID_MISMATCH text)."""
    return PSError(f"The chain of virtual hard disks is corrupted. There is a mismatch in the identifiers of "
                   f"the parent virtual hard disk and differencing disk. (0xC03A000E). '{path}'",
                   "Unspecified", "NotSpecified", target=path, exception_type=VE)


IN_USE = "The process cannot access the file because it is being used by another process."
IN_USE_CODE = "0x80070020"
NOT_FOUND = "The system cannot find the file specified."
NOT_FOUND_CODE = "0x80070002"
DISK_FULL = "There is not enough space on the disk."
DISK_FULL_CODE = "0x80070070"
WRITE_PROTECTED = "The media is write protected."

# --- File system provider ----------------------------------------------------------------------


def path_not_found(path: str, verb_id: str = "PathNotFound") -> PSError:
    """Get-Item/Get-Content/Remove-Item on a missing path: "Cannot find path 'X' because it does not
    exist." ObjectNotFound, PathNotFound, ItemNotFoundException (PowerShell FileSystemProvider)."""
    return PSError(f"Cannot find path '{path}' because it does not exist.", verb_id, "ObjectNotFound",
                   target=path, exception_type=INF)


def drive_not_found(letter: str) -> PSError:
    """A path on a drive that does not exist (DriveNotFoundException)."""
    return PSError(f"Cannot find drive. A drive with the name '{letter}' does not exist.", "DriveNotFound",
                   "ObjectNotFound", target=letter,
                   exception_type="System.Management.Automation.DriveNotFoundException")


def part_of_path_not_found(path: str, error_id: str) -> PSError:
    """Writing a file into a missing directory (DirectoryNotFoundException)."""
    return PSError(f"Could not find a part of the path '{path}'.", error_id, "ObjectNotFound", target=path,
                   exception_type="System.IO.DirectoryNotFoundException")


def file_in_use_remove(path: str) -> PSError:
    """Remove-Item of an open file: 'Cannot remove item X: The process cannot access the file 'X'
    because it is being used by another process.' WriteError, RemoveFileSystemItemIOError."""
    return PSError(f"Cannot remove item {path}: The process cannot access the file '{path}' because it is "
                   "being used by another process.", "RemoveFileSystemItemIOError", "WriteError",
                   target=path, exception_type=IOE)


def file_in_use(path: str, error_id: str) -> PSError:
    """Writing to an open file (IOException)."""
    return PSError(f"The process cannot access the file '{path}' because it is being used by another process.",
                   error_id, "WriteError", target=path, exception_type=IOE)


def disk_full(path: str, error_id: str, category: str = "WriteError") -> PSError:
    """'There is not enough space on the disk.' (IOException, ERROR_DISK_FULL 0x80070070)."""
    return PSError(DISK_FULL, error_id, category, target=path, exception_type=IOE)


def write_protected(path: str, error_id: str) -> PSError:
    """A write to a volume mounted read-only (ERROR_WRITE_PROTECT)."""
    return PSError(WRITE_PROTECTED, error_id, "WriteError", target=path, exception_type=IOE)


def file_exists(path: str) -> PSError:
    """New-Item -ItemType File on an existing file: "The file 'X' already exists." (NewItemIOError)."""
    return PSError(f"The file '{path}' already exists.", "NewItemIOError", "WriteError", target=path,
                   exception_type=IOE)


def directory_exists(path: str) -> PSError:
    """New-Item -ItemType Directory on an existing directory (DirectoryExist, ResourceExists)."""
    return PSError(f"An item with the specified name {path} already exists.", "DirectoryExist",
                   "ResourceExists", target=path, exception_type=IOE)


def directory_not_empty(path: str) -> PSError:
    """Remove-Item of a non-empty directory without -Recurse when not interactive (unconfirmed id)."""
    return PSError(f"The item at {path} has children and the Recurse parameter was not specified. If you "
                   "continue, all children will be removed with the item. Are you sure you want to continue?",
                   "RemoveFileSystemItemUnAuthorizedAccess", "WriteError", target=path, exception_type=IOE)


# --- NetNat / NetTCPIP (CDXML: the FQID suffix is the cmdlet name) -----------------------------


def cim_not_found(cmdlet: str, class_name: str, what: str, value: str) -> PSError:
    """CDXML Get-* with no match: "No MSFT_X objects found with property 'P' equal to 'V'."
    ObjectNotFound, 'CmdletizationQuery_NotFound_P,Cmdlet'."""
    return PSError(
        f"No {class_name} objects found with property '{what}' equal to '{value}'.  Verify the value of the "
        "property and retry.", f"CmdletizationQuery_NotFound_{what},{cmdlet}", "ObjectNotFound",
        target=value, exception_type=CIM, bare=True)


# --- Hyper-V and networking records as the transcript corpus shows them -----------------------------
# (tests/sim/transcripts/hyperv, networking). Hyper-V's VirtualizationException records carry no target
# object ("CategoryInfo : ObjectNotFound: (:) [Set-VM]"); only Get-VM's own name lookup names one. These
# supersede vm_not_found (for every cmdlet but Get-VM),
# switch_not_found (for a switch named as another cmdlet's argument),
# and cim_not_found, whose records differ from the transcripts.

VIAE = "Microsoft.HyperV.PowerShell.VirtualizationInvalidArgumentException"
VOFE = "Microsoft.HyperV.PowerShell.VirtualizationOperationFailedException"
CIM_JOB = "Microsoft.PowerShell.Cmdletization.Cim.CimJobException"
NETNAT_CLASS = "root/StandardCimv2/MSFT_NetNat"  # NetNat's CDXML spells the namespace in lower case
NETIP_CLASS = "ROOT/StandardCimv2/MSFT_NetIPAddress"


def vm_name_not_found(name: str) -> PSError:
    """A VM named by -Name/-VMName to a Hyper-V cmdlet other than Get-VM: Get-VM's text, but
    'ObjectNotFound: (:)' and 'ObjectNotFound,<type>' (Set-VM/Set-VMMemory Easy-GPU-PV#449, Stop-VM
    minikube#16679, Remove-VM multipass#2867, Set-VMFirmware PS-AutoLab-Env#133, Checkpoint-VM
    Lability#294, Set-VMProcessor MicrosoftDocs/WSL#796)."""
    return PSError(f'Hyper-V was unable to find a virtual machine with name "{name}".', "ObjectNotFound",
                   "ObjectNotFound", exception_type=VE)


def firmware_generation1(vm_name: str) -> PSError:
    """Get-/Set-VMFirmware on a generation 1 VM: the text of AutomatedLab#18. InvalidArgument with no target,
    id InvalidParameter and VirtualizationInvalidArgumentException as a 2012 R2 host recorded it
    (hashicorp/vagrant#5509, whose older text read "A parameter is invalid. Generation 1 virtual machines do
    not support the VMFirmware cmdlets.  Use Get-VMBios and Set-VMBios instead.")."""
    return PSError(f'The Generation 1 virtual machine or snapshot "{vm_name}" does not support the VMFirmware '
                   "cmdlets. Use Get-VMBios and Set-VMBios instead.", "InvalidParameter", "InvalidArgument",
                   exception_type=VIAE)


def device_add_failed(vm_name: str, device: str = "Microsoft:Hyper-V:Virtual Hard Disk") -> PSError:
    """New-VM -VHDPath naming no virtual hard disk: "Adding the device 'Microsoft:Hyper-V:Virtual Hard Disk'
    to 'S1' failed." NotSpecified, 'Unspecified,...NewVM', no target (PS-AutoLab-Env#159)."""
    return PSError(f"Adding the device '{device}' to '{vm_name}' failed.", "Unspecified", "NotSpecified",
                   exception_type=VE)


def snapshot_not_matched() -> PSError:
    """No checkpoint matched: 'Unable to find a snapshot matching the given criteria.' ObjectNotFound,
    no target (Get-VMSnapshot in multipass#3918)."""
    return PSError("Unable to find a snapshot matching the given criteria.", "ObjectNotFound", "ObjectNotFound",
                   exception_type=VE)


def vm_adapter_not_found() -> PSError:
    """No VM network adapter matched -Name: 'No network adapter was found with the given criteria.'
    ObjectNotFound, no target (Connect-VMNetworkAdapter in Qonfused/OSX-Hyper-V#35)."""
    return PSError("No network adapter was found with the given criteria.", "ObjectNotFound", "ObjectNotFound",
                   exception_type=VE)


def switch_argument_not_found(name: str) -> PSError:
    """A switch named as another cmdlet's argument (New-VM -SwitchName...) that does not exist: InvalidArgument,
    'InvalidParameter,...NewVM', no target (VirtualEngine/Lability#40)."""
    return PSError(f'Hyper-V was unable to find a virtual switch with name "{name}".', "InvalidParameter",
                   "InvalidArgument", exception_type=VE)


def switch_id_not_found() -> PSError:
    """Get-VMSwitch -Id of no switch: ObjectNotFound, no target (canonical/multipass#1323)."""
    return PSError("No Ethernet switch could be found matching the specified criteria.", "ObjectNotFound",
                   "ObjectNotFound", exception_type=VE)


def switch_in_use(name: str) -> PSError:
    """Remove-VMSwitch of a switch a running VM is connected to: three lines, ResourceBusy, ObjectInUse, the
    target the failed VMTask, VirtualizationOperationFailedException (AutomatedLab#164; the second line's
    wording also in eryph-org/eryph#252)."""
    return PSError("Failed while removing virtual Ethernet switch.\n"
                   f"The virtual switch '{name}' cannot be deleted because it is being used by running virtual "
                   "machines or assigned to child pools.\n"
                   "The operation cannot be performed while the object is in use.", "ObjectInUse", "ResourceBusy",
                   target="Microsoft.HyperV.PowerShell.VMTask", target_type="VMTask", exception_type=VOFE)


def cim_method_failed(message: str, win32_error: int, cmdlet: str, category: str, class_path: str) -> PSError:
    """A CDXML cmdlet whose CIM method failed: 'Windows System Error <n>,<Cmdlet>', CimException, the target the
    class ('(MSFT_NetNat:root/StandardCimv2/MSFT_NetNat)' in Virtualization-Documentation#361,
    '(MSFT_NetIPAddress:ROOT/StandardCimv2/MSFT_NetIPAddress)' in #338 and WgServerforWindows#160)."""
    return PSError(message, f"Windows System Error {win32_error},{cmdlet}", category,
                   target=class_path.rsplit("/", 1)[-1], target_type=class_path, exception_type=CIM, bare=True)


def cdxml_not_found(cmdlet: str, class_name: str, prop: str, value: str) -> PSError:
    """A CDXML query on one property whose value matched nothing: "No MSFT_X objects found with property 'P'
    equal to 'V'.  Verify the value of the property and retry." ObjectNotFound, the value as target,
    'CmdletizationQuery_NotFound_P,Cmdlet', CimJobException (PowerShell's QueryJobBase; Get-NetAdapter in
    PS-AutoLab-Env#199, Get-NetIPAddress in cloudfoundry/bosh-dns-release#6, Get-NetNat in PS-AutoLab-Env#256)."""
    return PSError(
        f"No {class_name} objects found with property '{prop}' equal to '{value}'.  Verify the value of the "
        "property and retry.", f"CmdletizationQuery_NotFound_{prop},{cmdlet}", "ObjectNotFound",
        target=value, exception_type=CIM_JOB, bare=True)


def cdxml_query_not_found(cmdlet: str, class_path: str, wql: str) -> PSError:
    """A CDXML query on several properties that matched nothing: "No matching MSFT_X objects found by CIM query
    for instances of the <namespace/class> class on the  CIM server: <WQL>. Verify query parameters and retry."
    (the empty server name leaves two spaces; PlagueHO/LoopbackAdapter#1, NetworkingDsc#283). No target and
    the id 'CmdletizationQuery_NotFound' without a property (PowerShell's QueryJobBase)."""
    class_name = class_path.rsplit("/", 1)[-1]
    return PSError(f"No matching {class_name} objects found by CIM query for instances of the {class_path} class "
                   f"on the  CIM server: {wql}. Verify query parameters and retry.",
                   f"CmdletizationQuery_NotFound,{cmdlet}", "ObjectNotFound", exception_type=CIM_JOB, bare=True)


# --- Storage records as the transcript corpus shows them (tests/sim/transcripts/storage) ------------
# The VHD cmdlets (Microsoft.Vhd.PowerShell.Cmdlets.*) name no target object ("(:) [Mount-VHD]",
# "(:) [New-VHD]", "(:) [Resize-VHD]"): their handlers clear not_a_vhd's and vhd_create_failed's target.
# FileSystem provider errors carry the FileInfo/DirectoryInfo they failed on as the target.

DIRECTORY_NOT_EMPTY = "The directory is not empty."


def vhd_resize_in_use(path: str) -> PSError:
    """Resize-VHD of a file another process holds open: the two-line envelope twice, the second with
    ERROR_SHARING_VIOLATION; ResourceBusy, 'ObjectInUse,...ResizeVhd', no target (canonical/multipass#3353)."""
    return PSError(f"Failed to resize the virtual disk.\nThe system failed to resize '{path}'.\n"
                   f"Failed to resize the virtual disk.\nThe system failed to resize '{path}': {IN_USE} "
                   f"({IN_USE_CODE}).", "ObjectInUse", "ResourceBusy", exception_type=VE)


def remove_item_failed(path: str, reason: str, directory: bool) -> PSError:
    """Remove-Item of an item the file system refuses: "Cannot remove item X: <reason>" WriteError,
    RemoveFileSystemItemIOError, IOException, the FileInfo/DirectoryInfo as target (a file in use:
    MicrosoftDocs/PowerShell-Docs#6625; a folder left non-empty by -Recurse: aspnet/dnvm#457)."""
    return PSError(f"Cannot remove item {path}: {reason}", "RemoveFileSystemItemIOError", "WriteError",
                   target=path, target_type="DirectoryInfo" if directory else "FileInfo", exception_type=IOE)


def file_in_use_text(path: str) -> str:
    """ERROR_SHARING_VIOLATION as System.IO words it for a named file."""
    return f"The process cannot access the file '{path}' because it is being used by another process."
