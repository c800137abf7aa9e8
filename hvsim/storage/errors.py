"""The real error texts, ids and categories of VHDs and the FileSystem provider (hvsim.hyperv.errors
explains the conventions)."""

from __future__ import annotations

from hvsim.hyperv.errors import VE
from hvsim.powershell.errors import PSError

IOE = "System.IO.IOException"
INF = "System.Management.Automation.ItemNotFoundException"


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


def volume_not_modelled(letter: str) -> PSError:
    """A path on a lettered system or FAT32 partition of a mounted disk: its files are outside the simulator's
    model (only the Windows volume of a disk and installation media are browsable). A simulator limit, not a
    Windows error."""
    return PSError(f"The simulated host does not model the files of volume {letter}: (only a disk's Windows "
                   "volume and mounted installation media are modelled).", "VolumeNotModelled", "NotImplemented",
                   target=letter, exception_type="System.NotImplementedException")


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


# --- Storage module (CDXML) and DISM: the image-build commands -------------------------------------------------

CIM = "Microsoft.Management.Infrastructure.CimException"
COM = "System.Runtime.InteropServices.COMException"
STORAGE_NS = "ROOT/Microsoft/Windows/Storage"


def storage_wmi(message: str, code: int, cls: str = "MSFT_Disk") -> PSError:
    """A Storage cmdlet's failed CIM method: 'StorageWMI <code>,<Cmdlet>', NotSpecified, the target
    '(StorageWMI:ROOT/Microsoft/.../MSFT_Disk)' ("Not enough available capacity", StorageWMI 40000, New-Partition:
    dsccommunity/StorageDsc#151, #102; the target shape: StorageDsc#172)."""
    return PSError(message, f"StorageWMI {code}", "NotSpecified", target="StorageWMI",
                   target_type=f"{STORAGE_NS}/{cls}", exception_type=CIM)


NOT_ENOUGH_CAPACITY = "Not enough available capacity"  # StorageWMI 40000
ALREADY_INITIALIZED = "The disk has already been initialized."  # StorageWMI 41001 (OSDeploy/OSD#43; id unconfirmed)
NOT_INITIALIZED = "The disk has not been initialized."  # StorageWMI 41000 (unconfirmed)
ACCESS_PATH_IN_USE = "The requested access path is already in use."  # StorageWMI 42002 (unconfirmed)
INVALID_PARAMETER = "Invalid Parameter"  # StorageWMI 5 (unconfirmed for Format-Volume of an ESP)


def disk_image_failed(message: str, hresult: str, category: str = "NotSpecified") -> PSError:
    """Mount-DiskImage/Dismount-DiskImage failures: the HRESULT's text, 'HRESULT 0x...,<Cmdlet>', the target
    '(MSFT_DiskImage:ROOT/Microsoft/.../MSFT_DiskImage)' (a foreign extension: 0xc03a0014 "A virtual disk support
    provider for the specified file was not found.", DrEmpiricism/Optimize-Offline#127; a corrupt file: "The file
    or directory is corrupted and unreadable.", cloudbase/coriolis#454; access denied: PermissionDenied,
    0x80070005, Easy-GPU-PV#272)."""
    return PSError(message, f"HRESULT {hresult}", category, target="MSFT_DiskImage",
                   target_type=f"{STORAGE_NS}/MSFT_DiskImage", exception_type=CIM)


def dism_failed(message: str, command_type: str) -> PSError:
    """A DISM cmdlet's failure: no target ('(:) [Get-WindowsImage]'), NotSpecified, COMException, and the
    FullyQualifiedErrorId the command's type alone ('Microsoft.Dism.Commands.GetWindowsImageCommand':
    ntdevlabs/tiny11builder#360, #337)."""
    return PSError(message, command_type, "NotSpecified", exception_type=COM, bare=True)


def dism_error_code(cmdlet: str, hresult: str) -> str:
    """DISM's text for a failure it has no message for: "Get-WindowsImage failed. Error code = 0x80070570"
    (tiny11builder#360, in French there)."""
    return f"{cmdlet} failed. Error code = {hresult}"


PARAMETER_INCORRECT = "The parameter is incorrect."  # a wrong image index/name (HaroldMitts/wininstall#9)
FEATURE_UNKNOWN = "Feature name {} is unknown."  # DISM 0x800f080c
PARENT_FEATURES_DISABLED = "One or several parent features are disabled so current feature can not be enabled."
PACKAGE_NOT_APPLICABLE = "The specified package is not applicable to this image."  # CBS_E_NOT_APPLICABLE 0x800f081e
