r"""Building a bootable disk from installation media, as the Storage and DISM cmdlets do it (pure rules on Storage).

Mount-DiskImage attaches an ISO as a read-only CD-ROM volume; Initialize-Disk / New-Partition / Format-Volume /
Add-PartitionAccessPath give a new VHD an explicit GPT layout; Expand-WindowsImage applies an image of the ISO's
install.wim (or install.esd) to the Windows partition; bcdboot writes the UEFI boot files to the EFI system
partition; Enable-WindowsOptionalFeature -Path / Add-WindowsPackage -Path service the applied image offline.

The applied image is what install.wim holds: a generalized Windows whose first boot runs specialize and OOBE
(hvsim.guest.models.guest), with its build, edition and the features enabled offline. Errors are the cmdlets'
real texts (hvsim.storage.errors); the caller shapes objects and accounts durations.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from hvsim.core import paths as P
from hvsim.powershell.errors import PSError
from hvsim.storage import errors as SE
from hvsim.storage import media as M
from hvsim.storage.models import (
    BASE_LAYOUT_DIRS,
    BASE_LAYOUT_FILES,
    GPT_BASIC,
    GPT_ESP,
    GPT_FIRST_USABLE,
    GPT_TRAILER,
    MIB,
    DiskImageMount,
    FileEntry,
    Location,
    Mount,
    Partition,
    Storage,
    Vhd,
)

DISK_IMAGE_EXTENSIONS = (".iso", ".vhd", ".vhdx", ".vhds")
DISM_LOG = "C:\\Windows\\Logs\\DISM\\dism.log"


# --------------------------------------------------------------------------------------------- ISOs


def mount_disk_image(st: Storage, path: str, no_drive_letter: bool = False) -> DiskImageMount:
    """Mount-DiskImage of an ISO: a CD-ROM device and (unless -NoDriveLetter) the next free letter. An image that
    is already attached is returned as it is (PowerShell/PowerShell#15249: the first mount comes back)."""
    full = P.normalize(path)
    k = P.key(full)
    if k in st.disk_images:
        return st.disk_images[k]
    entry = st.files.get(k)
    if entry is None:
        raise SE.disk_image_failed(SE.NOT_FOUND, "0x80070002", "ObjectNotFound")
    if P.extension(full).lower() not in DISK_IMAGE_EXTENSIONS:
        raise SE.disk_image_failed("A virtual disk support provider for the specified file was not found.",
                                   "0xc03a0014")
    # A seeded medium, or a placeholder ISO a client uploaded (hvsim.storage.media.placeholder_iso).
    medium = st.medium_of(full) or M.placeholder_medium(entry.data)
    if medium is None:
        # Not an ISO 9660/UDF image (a text file, a truncated header): cloudbase/coriolis#454 shows it for a
        # 14-byte text file ("echo test > x.iso"), as a Mount-DiskImage error record.
        raise SE.disk_image_failed("The file or directory is corrupted and unreadable.", "0x80070570")
    used = {d.device_number for d in st.disk_images.values()}
    number = next(n for n in range(len(used) + 1) if n not in used)
    d = DiskImageMount(k, entry.path, medium.media_id, number, None if no_drive_letter else st.free_letter())
    st.disk_images[k] = d
    return d


def dismount_disk_image(st: Storage, path: str) -> None:
    """Dismount-DiskImage: detach (an image that is not attached: nothing to do; unconfirmed that no error is
    written). A missing file is the same error as Mount-DiskImage's."""
    k = P.key(P.normalize(path))
    if k not in st.files:
        raise SE.disk_image_failed(SE.NOT_FOUND, "0x80070002", "ObjectNotFound")
    st.disk_images.pop(k, None)


@dataclass
class ImageSource:
    """A Windows image file on a mounted medium: install.wim or install.esd."""

    medium: M.Medium
    path: str  # as the caller named it
    esd: bool


def image_source(st: Storage, image_path: str, command_type: str, cmdlet: str) -> ImageSource:
    """The medium a -ImagePath names (X:\\sources\\install.wim on a mounted ISO), or DISM's error."""
    try:
        loc = st.resolve(image_path)
    except PSError:
        raise SE.dism_failed(SE.NOT_FOUND, command_type) from None
    entry = st.stat(loc)
    if loc.iso_key is None or entry is None or entry.is_dir:
        # A foreign ISO has no sources\install.*; a path on C: is no image the simulator models.
        raise SE.dism_failed(SE.NOT_FOUND, command_type)
    d = st.disk_images[loc.iso_key]
    medium = M.MEDIA[d.media_id or ""]
    if medium.kind == "partial":
        raise SE.dism_failed(SE.dism_error_code(cmdlet, "0x80070570"), command_type)
    if medium.image_path is None or P.key(loc.inner) != medium.image_path.lower():
        raise SE.dism_failed(SE.NOT_FOUND, command_type)
    return ImageSource(medium, loc.path, medium.image_file == "install.esd")


def pick_image(src: ImageSource, index: int | None, name: str | None, command_type: str) -> M.WimImage:
    """The image -Index or -Name selects; no such image: "The parameter is incorrect." (HaroldMitts/wininstall#9,
    jamesstringer90/Easy-GPU-PV#86)."""
    img = M.find_image(src.medium, index=index, name=name)
    if img is None:
        raise SE.dism_failed(SE.PARAMETER_INCORRECT, command_type)
    return img


# --------------------------------------------------------------------------------------------- disks


def disk_by_number(st: Storage, number: int) -> tuple[Mount, Vhd] | None:
    m = next((m for m in st.mounts.values() if m.disk_number == number), None)
    return (m, st.vhds[m.vhd_key]) if m else None


def initialize_disk(st: Storage, vhd: Vhd, style: str) -> None:
    """Initialize-Disk: a RAW disk gets an empty partition table (GPT unless told otherwise)."""
    if st.layout_of(vhd) is not None or vhd.partitioned:
        raise SE.storage_wmi(SE.ALREADY_INITIALIZED, 41001)
    vhd.partition_style = style
    vhd.partitions = []
    vhd.data_write_id = str(uuid.uuid4())


def _layout_or_refuse(st: Storage, vhd: Vhd) -> Vhd:
    layout = st.layout_of(vhd)
    if layout is None:
        if vhd.partitioned:
            raise SE.storage_wmi(SE.NOT_ENOUGH_CAPACITY, 40000)  # a base disk's layout fills it
        raise SE.storage_wmi(SE.NOT_INITIALIZED, 41000)
    return layout


def new_partition(st: Storage, m: Mount, vhd: Vhd, size: int | None, use_max: bool, gpt_type: str | None,
                  letter: str | None, assign_letter: bool) -> Partition:
    """New-Partition after the last one, 1 MiB aligned; too big: "Not enough available capacity" (StorageWMI
    40000)."""
    layout = _layout_or_refuse(st, vhd)
    offset = max((p.offset + p.size for p in layout.partitions), default=GPT_FIRST_USABLE)
    offset = -(-offset // MIB) * MIB
    free = max(0, vhd.virtual_size - GPT_TRAILER - offset)
    want = (free // MIB) * MIB if use_max else int(size or 0)
    if want <= 0 or want > free:
        raise SE.storage_wmi(SE.NOT_ENOUGH_CAPACITY, 40000)
    part = Partition(len(layout.partitions) + 1, (gpt_type or GPT_BASIC).lower(), offset, want)
    if letter or assign_letter:
        chosen = letter.upper() if letter else st.free_letter()
        if chosen is None or _letter_taken(st, chosen):
            raise SE.storage_wmi(SE.ACCESS_PATH_IN_USE, 42002, "MSFT_Partition")
        m.part_letters[part.number] = chosen
    layout.partitions.append(part)
    layout.data_write_id = str(uuid.uuid4())
    return part


def _letter_taken(st: Storage, letter: str) -> bool:
    return letter.upper() in ("C", "D") or st.mount_by_letter(letter) is not None or \
        st.partition_by_letter(letter) is not None or st.disk_image_by_letter(letter) is not None


def set_partition_type(st: Storage, vhd: Vhd, part: Partition, gpt_type: str) -> None:
    """Set-Partition -GptType (Convert-WindowsImage formats the system partition as basic data, then makes it
    the ESP)."""
    part.gpt_type = gpt_type.lower()
    layout = st.layout_of(vhd)
    if layout is not None:
        layout.data_write_id = str(uuid.uuid4())


def format_partition(st: Storage, m: Mount, vhd: Vhd, part: Partition, file_system: str, label: str) -> None:
    """Format-Volume: a new, empty file system. An EFI system partition made with its GPT type has no volume the
    Storage module formats: public image builders create it as basic data, format it, then Set-Partition -GptType
    (Convert-WindowsImage, build >= 10240); the error's text and id are unconfirmed."""
    if part.gpt_type == GPT_ESP:
        raise SE.storage_wmi(SE.INVALID_PARAMETER, 5, "MSFT_Volume")
    layout = st.layout_of(vhd) or vhd
    part.file_system = file_system
    part.label = label
    if file_system == "NTFS" and part.gpt_type == GPT_BASIC and part is layout.main_partition():
        # The Windows volume: a fresh file system holds nothing.
        layout.files, layout.dirs, layout.os, layout.used_base = {}, {}, None, 0
        layout.partitioned = True
        m.letter = m.part_letters.get(part.number)
    layout.data_write_id = str(uuid.uuid4())


def add_access_path(st: Storage, m: Mount, vhd: Vhd, part: Partition, access_path: str | None,
                    assign: bool) -> None:
    """Add-PartitionAccessPath: a drive letter (-AssignDriveLetter: the next free one; -AccessPath 'S:\\')."""
    letter = None
    if access_path:
        mm = re.fullmatch(r"\s*([A-Za-z]):\\?\s*", access_path)
        if mm is None:
            raise SE.storage_wmi(SE.INVALID_PARAMETER, 5, "MSFT_Partition")  # folder mount points: not modelled
        letter = mm.group(1).upper()
        if _letter_taken(st, letter):
            raise SE.storage_wmi(SE.ACCESS_PATH_IN_USE, 42002, "MSFT_Partition")
    elif assign:
        if part.number in m.part_letters:
            return
        letter = st.free_letter()
    if letter is None:
        return
    m.part_letters[part.number] = letter
    layout = st.layout_of(vhd) or vhd
    if part is layout.main_partition():
        m.letter = letter


# --------------------------------------------------------------------------------------------- applying


def windows_volume(st: Storage, path: str, command_type: str) -> tuple[Location, Vhd]:
    """The mounted Windows volume a -ApplyPath / -Path names (W:\\), or DISM's error."""
    try:
        loc = st.resolve(path)
    except PSError:
        raise SE.dism_failed("The system cannot find the path specified.", command_type) from None
    if loc.vhd_key is None or loc.iso_key is not None:
        raise SE.dism_failed("The system cannot find the path specified.", command_type)
    return loc, st.vhds[loc.vhd_key]


def expand_image(st: Storage, vhd: Vhd, src: ImageSource, img: M.WimImage, command_type: str) -> None:
    """Expand-WindowsImage: the image's files on the Windows volume (its size counted there and, for a dynamic
    disk, on C:); too little room: "There is not enough space on the disk." (ERROR_DISK_FULL)."""
    if st.inner_free(vhd) < img.size:
        raise SE.dism_failed(SE.DISK_FULL, command_type)
    growth = img.size if vhd.vhd_type != "Fixed" else 0
    if growth > st.c_free:
        raise SE.dism_failed(SE.DISK_FULL, command_type)
    now = st.now()
    for d in BASE_LAYOUT_DIRS:
        vhd.dirs[d.lower()] = d
    for p, data in BASE_LAYOUT_FILES.items():
        vhd.files[p.lower()] = FileEntry(p, data, now, now)
    vhd.used_base += img.size
    vhd.file_size += growth
    vhd.partitioned = True
    release = src.medium.release or f"build{img.build}"
    vhd.os = {"build": img.build, "revision": img.revision, "edition": img.edition_id, "caption": img.caption,
              "version": f"10.0.{img.build}", "installation_type": img.installation_type, "sysprepped": True,
              "architecture": "amd64", "release": release, "image_name": img.name,
              "source": {"medium": src.medium.media_id, "image_file": src.medium.image_file, "index": img.index},
              "features": {}, "packages": [], "generalize_count": 0}
    vhd.data_write_id = str(uuid.uuid4())
    st.sync_vhd_size(vhd)


def _offline_os(st: Storage, vhd: Vhd, command_type: str) -> dict[str, Any]:
    os_info = st.os_info(vhd.path)
    if not os_info:
        # No Windows on the volume (DISM cannot open an image there; the text is unconfirmed).
        raise SE.dism_failed("The system cannot find the path specified.", command_type)
    os_info.setdefault("features", {})
    os_info.setdefault("packages", [])
    return os_info


def enable_feature(st: Storage, vhd: Vhd, names: list[str], all_parents: bool, command_type: str) -> list[str]:
    """Enable-WindowsOptionalFeature -Path: the named features (and with -All their parents) are enabled in the
    offline image; a name the image does not have: "Feature name X is unknown." Returns the features enabled."""
    os_info = _offline_os(st, vhd, command_type)
    features: dict[str, str] = dict(os_info["features"])
    enabled: list[str] = []
    for raw in names:
        name = M.canonical_feature(raw)
        if name is None:
            raise SE.dism_failed(SE.FEATURE_UNKNOWN.format(raw), command_type)
        for parent in M.FEATURE_PARENTS.get(name, ()):
            if features.get(parent) != "Enabled":
                if not all_parents:
                    raise SE.dism_failed(SE.PARENT_FEATURES_DISABLED, command_type)
                features[parent] = "Enabled"
                enabled.append(parent)
        if features.get(name) != "Enabled":
            features[name] = "Enabled"
            enabled.append(name)
    os_info["features"] = features
    vhd.os = os_info
    vhd.data_write_id = str(uuid.uuid4())
    return enabled


PACKAGE_MAGIC = b"MSCF"  # a cabinet (an .msu is a cabinet holding the .cab)


def add_package(st: Storage, vhd: Vhd, package_path: str, command_type: str) -> dict[str, Any]:
    """Add-WindowsPackage -Path: a cabinet that applies to the image's build is installed offline.

    The simulator's package files are placeholders: a cabinet header and ``build=<n>`` (and ``revision=<n>``
    for a cumulative update, the servicing revision it brings) say what it applies to. Another build: "The
    specified package is not applicable to this image." (CBS_E_NOT_APPLICABLE); not a cabinet: DISM's error code
    for a corrupt file."""
    os_info = _offline_os(st, vhd, command_type)
    full = P.normalize(package_path)
    entry = st.files.get(P.key(full))
    if entry is None:
        raise SE.dism_failed(SE.NOT_FOUND, command_type)
    data = entry.data
    if not data.startswith(PACKAGE_MAGIC):
        raise SE.dism_failed(SE.dism_error_code("Add-WindowsPackage", "0x80070570"), command_type)
    build = re.search(rb"build=(\d+)", data)
    if build is None or int(build.group(1)) != int(os_info.get("build") or 0):
        raise SE.dism_failed(SE.PACKAGE_NOT_APPLICABLE, command_type)
    revision = re.search(rb"revision=(\d+)", data)
    record = {"name": P.leaf(full), "size": entry.size}
    os_info["packages"] = [*os_info["packages"], record]
    if revision is not None:
        os_info["revision"] = max(int(os_info.get("revision") or 0), int(revision.group(1)))
    vhd.os = os_info
    vhd.data_write_id = str(uuid.uuid4())
    return record


# --------------------------------------------------------------------------------------------- bcdboot


BCDBOOT_OK = "Boot files successfully created."
BCDBOOT_FAILED = "Failure when attempting to copy boot files."


def bcdboot(st: Storage, windows_path: str, system_partition: str) -> tuple[int, list[str]]:
    """bcdboot <W:\\Windows> /s <S:> /f UEFI: the UEFI boot files and a BCD store on the system partition.
    Returns (exit code, output lines); a Windows folder without a Windows, or a target that is no FAT32
    partition: "Failure when attempting to copy boot files." (exit code unconfirmed)."""
    try:
        loc = st.resolve(windows_path)
    except PSError:
        return 1, [BCDBOOT_FAILED]
    if loc.vhd_key is None or st.os_info(st.vhds[loc.vhd_key].path) is None:
        return 1, [BCDBOOT_FAILED]
    vhd = st.vhds[loc.vhd_key]
    if P.key(loc.inner).rstrip("\\") != "\\windows" or st.stat(loc) is None:
        return 1, [BCDBOOT_FAILED]
    mm = re.fullmatch(r"\s*([A-Za-z]):\\?\s*", system_partition or "")
    found = st.partition_by_letter(mm.group(1)) if mm else None
    if found is None or found[0].vhd_key != loc.vhd_key:
        return 1, [BCDBOOT_FAILED]
    layout = st.layout_of(vhd) or vhd
    part = next((p for p in layout.partitions if p.number == found[1]), None)
    if part is None or part.file_system not in ("FAT32", "FAT"):
        return 1, [BCDBOOT_FAILED]
    layout.boot = {"firmware": "UEFI", "windows": "\\Windows", "system_partition": part.number}
    layout.data_write_id = str(uuid.uuid4())
    return 0, [BCDBOOT_OK]


# --------------------------------------------------------------------------------------------- host files


def move_file(st: Storage, src: str, dst: str) -> str:
    """Move-Item of a host file on C: (a VHD keeps its identity under its new name). Returns the new path."""
    s_full, d_full = P.normalize(src), P.normalize(dst)
    sk = P.key(s_full)
    entry = st.files.get(sk)
    if entry is None:
        raise PSError(f"Cannot find path '{s_full}' because it does not exist.", "PathNotFound", "ObjectNotFound",
                      target=s_full, exception_type=SE.INF)
    if P.key(d_full) in st.dirs:
        d_full = d_full.rstrip("\\") + "\\" + P.leaf(s_full)
    dk = P.key(d_full)
    if (sk in st.vhds and st.is_open(sk)) or sk in st.disk_images:
        raise PSError(SE.IN_USE, "MoveFileInfoItemIOError", "WriteError", target=s_full, target_type="FileInfo",
                      exception_type=SE.IOE)
    if dk in st.files or dk in st.dirs:
        raise PSError("Cannot create a file when that file already exists.", "MoveFileInfoItemIOError",
                      "WriteError", target=s_full, target_type="FileInfo", exception_type=SE.IOE)
    if P.key(P.parent(d_full)) not in st.dirs and len(P.parent(d_full)) > 3:
        raise PSError("Could not find a part of the path.", "MoveFileInfoItemIOError", "WriteError", target=s_full,
                      target_type="FileInfo", exception_type=SE.IOE)
    del st.files[sk]
    entry.path = d_full
    st.files[dk] = entry
    vhd = st.vhds.pop(sk, None)
    if vhd is not None:
        vhd.path = d_full
        st.vhds[dk] = vhd
    return d_full
