r"""The host's storage: the C: volume and its files, VHD/VHDX disks, mounts, and mounted volumes.

A VHD is a file on C: (a HostFile that carries a Vhd). A mounted VHD with a data partition gets a
drive letter; its files live in the VHD (``Vhd.files``), read through the differencing chain: a
child overlays its parent, a deleted file is a whiteout (``None``). Space is accounted: the C:
volume has a size and free space; dynamic/differencing VHDs grow on C: as content is written;
each VHD's own volume has the VHD's virtual size.

Locks follow Windows: a VHD is open (locked) while mounted or attached to a VM that is not Off;
the parents of an open differencing disk are open read-only too. An open file cannot be removed or
overwritten. Writing into a parent that has children changes its identity, and the children then
fail to open ("The chain of virtual hard disks is corrupted").
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hvsim.core import paths as P
from hvsim.hyperv import errors as HE
from hvsim.hyperv.models.host import GIB, HostConfig
from hvsim.powershell.errors import PSError
from hvsim.storage import errors as SE
from hvsim.storage import media as M

MIB = 1024**2
VHD_EMPTY_SIZE = 4 * MIB  # a new dynamic/differencing VHDX file is ~4 MiB of metadata
OS_PARTITIONS_OVERHEAD = 645 * MIB  # GPT layout of a Gen2 OS disk: recovery + EFI + MSR
FIRST_VHD_LETTER = "E"  # C: is the system volume, D: usually the DVD drive
MEDIUM_MARKER = b"hvsim-installation-medium:"  # the (placeholder) content of a seeded ISO file
# What a Generation 2 VM's firmware reports for the disk in its boot summary (docs/facts.md "Images").
NO_UEFI_FS = "No UEFI-compatible file system was found."
BOOT_LOADER_FAILED = "The boot loader did not load an operating system."


def medium_marker(medium: M.Medium) -> bytes:
    return MEDIUM_MARKER + medium.media_id.encode("ascii")

# Files a sysprepped Server Core base image carries (content is placeholder, paths are real).
_BASE_LAYOUT_DIRS = [
    "\\Windows", "\\Windows\\System32", "\\Windows\\System32\\Sysprep", "\\Windows\\System32\\config",
    "\\Windows\\Panther", "\\Windows\\Setup", "\\Windows\\Setup\\Scripts", "\\Windows\\Temp",
    "\\Program Files", "\\Program Files (x86)", "\\ProgramData", "\\Users", "\\Users\\Default",
    "\\Users\\Public",
]
_BASE_LAYOUT_FILES = {
    "\\Windows\\System32\\ntoskrnl.exe": b"MZ\x90\x00sim-ntoskrnl",
    "\\Windows\\System32\\cmd.exe": b"MZ\x90\x00sim-cmd",
    "\\Windows\\System32\\Sysprep\\sysprep.exe": b"MZ\x90\x00sim-sysprep",
    "\\Windows\\System32\\config\\SOFTWARE": b"regf-sim",
    "\\Windows\\System32\\config\\SYSTEM": b"regf-sim",
}

BASE_LAYOUT_DIRS = tuple(_BASE_LAYOUT_DIRS)
BASE_LAYOUT_FILES = dict(_BASE_LAYOUT_FILES)

# The sysprepped base disks a fresh simulated host carries (C:\LabBases).
BASE_DISKS: list[dict[str, Any]] = [
    {"path": "C:\\LabBases\\WS2019-Core.vhdx", "build": 17763, "file_size": 8_724_152_320,
     "edition": "ServerDatacenterCor", "caption": "Microsoft Windows Server 2019 Datacenter",
     "version": "10.0.17763", "release": "ltsc2019"},
    {"path": "C:\\LabBases\\WS2022-Core.vhdx", "build": 20348, "file_size": 9_126_805_504,
     "edition": "ServerDatacenterCor", "caption": "Microsoft Windows Server 2022 Datacenter",
     "version": "10.0.20348", "release": "ltsc2022"},
    {"path": "C:\\LabBases\\WS2025-Core.vhdx", "build": 26100, "file_size": 9_932_111_872,
     "edition": "ServerDatacenterCor", "caption": "Microsoft Windows Server 2025 Datacenter",
     "version": "10.0.26100", "release": "ltsc2025"},
]


def _round_up(n: int, block: int) -> int:
    return -(-n // block) * block if n > 0 else 0


@dataclass
class FileEntry:
    """A file's content and times (inside a VHD volume or on C:)."""

    path: str
    data: bytes = b""
    created: float = 0.0
    modified: float = 0.0
    size_override: int | None = None  # large placeholder files (VHDs on C:) whose bytes are not kept
    read_only: bool = False  # FILE_ATTRIBUTE_READONLY (Set-ItemProperty -Name IsReadOnly)

    @property
    def size(self) -> int:
        return self.size_override if self.size_override is not None else len(self.data)

    def to_state(self) -> dict[str, Any]:
        return {"path": self.path, "data": base64.b64encode(self.data).decode("ascii"),
                "created": self.created, "modified": self.modified, "size_override": self.size_override,
                "read_only": self.read_only}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> FileEntry:
        return cls(s["path"], base64.b64decode(s["data"]), s["created"], s["modified"], s.get("size_override"),
                   bool(s.get("read_only", False)))


@dataclass
class Vhd:
    """One virtual hard disk file's metadata and (overlay) content."""

    path: str
    vhd_type: str  # Fixed | Dynamic | Differencing
    virtual_size: int
    file_size: int
    parent_path: str | None = None
    disk_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # Changes whenever content is written: a child records its parent's value at creation.
    data_write_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    parent_write_id: str | None = None
    block_size: int = 32 * MIB
    logical_sector_size: int = 512
    physical_sector_size: int = 4096
    os: dict[str, Any] | None = None  # only on a base disk; children inherit it through the chain
    partitioned: bool = False  # carries an NTFS data partition (gets a drive letter when mounted)
    used_base: int = 0  # bytes used on the inner volume that are not modeled as files (the OS)
    files: dict[str, FileEntry | None] = field(default_factory=dict)  # inner key -> entry / whiteout
    dirs: dict[str, str | None] = field(default_factory=dict)  # inner key -> path / whiteout
    created: float = 0.0
    # An explicit layout (a disk initialized and partitioned by the Storage cmdlets): "GPT" | "MBR"; "" is the
    # implicit layout of a base disk (GPT, 4 partitions, when ``partitioned``) or a RAW disk.
    partition_style: str = ""
    partitions: list[Partition] = field(default_factory=list)
    # What bcdboot wrote to the system partition ({"firmware": "UEFI", "windows": "\\Windows"}), None: nothing.
    boot: dict[str, Any] | None = None

    @property
    def format(self) -> str:
        return "VHD" if self.path.lower().endswith(".vhd") else "VHDX"

    def to_state(self) -> dict[str, Any]:
        return {
            "path": self.path, "vhd_type": self.vhd_type, "virtual_size": self.virtual_size,
            "file_size": self.file_size, "parent_path": self.parent_path, "disk_id": self.disk_id,
            "data_write_id": self.data_write_id, "parent_write_id": self.parent_write_id,
            "block_size": self.block_size, "logical_sector_size": self.logical_sector_size,
            "physical_sector_size": self.physical_sector_size, "os": self.os, "partitioned": self.partitioned,
            "used_base": self.used_base, "created": self.created,
            "files": {k: (v.to_state() if v else None) for k, v in self.files.items()},
            "dirs": dict(self.dirs),
            "partition_style": self.partition_style, "partitions": [p.to_state() for p in self.partitions],
            "boot": self.boot,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> Vhd:
        v = cls(s["path"], s["vhd_type"], s["virtual_size"], s["file_size"], s.get("parent_path"),
                s["disk_id"], s["data_write_id"], s.get("parent_write_id"), s["block_size"],
                s["logical_sector_size"], s["physical_sector_size"], s.get("os"), s["partitioned"],
                s["used_base"], {}, dict(s.get("dirs", {})), s.get("created", 0.0))
        v.files = {k: (FileEntry.from_state(e) if e else None) for k, e in s.get("files", {}).items()}
        v.partition_style = str(s.get("partition_style", ""))
        v.partitions = [Partition.from_state(p) for p in s.get("partitions", [])]
        v.boot = s.get("boot")
        return v

    def main_partition(self) -> Partition | None:
        """The Windows (data) partition of an explicit layout: the basic data partition formatted NTFS."""
        return next((p for p in self.partitions if p.gpt_type == GPT_BASIC and p.file_system == "NTFS"), None)


GPT_ESP = "{c12a7328-f81f-11d2-ba4b-00a0c93ec93b}"
GPT_MSR = "{e3c9e316-0b5c-4db8-817d-f92df00215ae}"
GPT_BASIC = "{ebd0a0a2-b9e5-4433-87c0-68b6b72699c7}"
GPT_RECOVERY = "{de94bba4-06d1-4d40-a16a-bfd50179d6ac}"
GPT_TYPE_NAMES = {GPT_ESP: "System", GPT_MSR: "Reserved", GPT_BASIC: "Basic", GPT_RECOVERY: "Recovery"}
GPT_FIRST_USABLE = MIB  # the first partition starts at 1 MiB (Windows' alignment)
GPT_TRAILER = MIB  # backup GPT and alignment at the end of the disk


@dataclass
class Partition:
    """One partition of an explicit layout (Initialize-Disk + New-Partition + Format-Volume)."""

    number: int
    gpt_type: str
    offset: int
    size: int
    file_system: str | None = None  # "NTFS" | "FAT32" | None (RAW)
    label: str = ""
    guid: str = field(default_factory=lambda: "{" + str(uuid.uuid4()) + "}")

    @property
    def type_name(self) -> str:
        return GPT_TYPE_NAMES.get(self.gpt_type.lower(), "Unknown")

    def to_state(self) -> dict[str, Any]:
        return {"number": self.number, "gpt_type": self.gpt_type, "offset": self.offset, "size": self.size,
                "file_system": self.file_system, "label": self.label, "guid": self.guid}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> Partition:
        return cls(int(s["number"]), str(s["gpt_type"]), int(s["offset"]), int(s["size"]), s.get("file_system"),
                   str(s.get("label", "")), str(s.get("guid", "")))


@dataclass
class Mount:
    """A VHD attached to the host (Mount-VHD)."""

    vhd_key: str
    disk_number: int
    letter: str | None  # the data (Windows) volume's letter
    read_only: bool = False
    # Explicit layouts: partition number -> drive letter of every lettered partition (the data one included).
    part_letters: dict[int, str] = field(default_factory=dict)


@dataclass
class DiskImageMount:
    """An ISO attached to the host (Mount-DiskImage): a CD-ROM device with a read-only volume."""

    iso_key: str  # key of the ISO file on C:
    path: str
    media_id: str | None  # None: the file is no installation medium the simulator knows
    device_number: int
    letter: str | None


@dataclass
class Entry:
    """What Get-Item / Get-ChildItem report for one item."""

    path: str
    is_dir: bool
    size: int = 0
    created: float = 0.0
    modified: float = 0.0
    read_only: bool = False


@dataclass
class Location:
    """A resolved path: the host C: volume or a mounted VHD volume, and the path on it."""

    path: str  # normalized full path (C:\x, E:\Windows)
    vhd_key: str | None  # None for the host volume
    iso_key: str | None = None  # a mounted ISO's volume (read-only)

    @property
    def inner(self) -> str:
        return P.inner(self.path)


class Storage:
    """C:, its files and directories, the VHDs, and the mounts."""

    def __init__(self, host: HostConfig, now: Callable[[], float]) -> None:
        self.host = host
        self.now = now
        self.files: dict[str, FileEntry] = {}  # host files, key = lower full path
        self.dirs: dict[str, str] = {}  # host directories
        self.vhds: dict[str, Vhd] = {}  # key = lower full path of the file (also in self.files)
        self.mounts: dict[str, Mount] = {}  # vhd key -> mount
        self.disk_images: dict[str, DiskImageMount] = {}  # ISO file key -> its mount (Mount-DiskImage)
        self.c_size = host.c_volume_size
        self.c_other_used = 0  # bytes on C: not modeled as files (Windows itself, page file...)
        # Set by the World: vhd key -> names of VMs that hold it open (VM not Off).
        self.open_by_vms: Callable[[str], list[str]] = lambda _k: []

    # --- fresh host --------------------------------------------------------------------------

    def seed(self) -> None:
        """A fresh host: standard folders, the base disks, C: free space as configured."""
        for d in ("C:\\Windows", "C:\\Windows\\System32", "C:\\Program Files", "C:\\ProgramData",
                  "C:\\Users", "C:\\Users\\Administrator", "C:\\Users\\Administrator\\Documents",
                  "C:\\Users\\Public", "C:\\Windows\\Temp", self.host.virtual_hard_disk_path,
                  self.host.virtual_machine_path):
            self.mkdirs(d)
        self.mkdirs("C:\\LabBases")
        if self.host.base_disks:
            for spec in BASE_DISKS:
                self._seed_base(spec)
        wanted = self.host.iso_media or ("" if self.host.base_disks else ",".join(M.DEFAULT_MEDIA))
        for medium in M.media_for(wanted):
            self.mkdirs(M.ISO_DIR)
            now = self.now()
            self.files[P.key(medium.path)] = FileEntry(medium.path, medium_marker(medium), now, now,
                                                       size_override=medium.size)
        used = sum(f.size for f in self.files.values())
        self.c_other_used = max(0, self.c_size - self.host.c_volume_free - used)

    def medium_of(self, path: str) -> M.Medium | None:
        """The installation medium a host file holds (its content marks it; a copy keeps it), or None."""
        f = self.files.get(P.key(P.normalize(path)))
        if f is None or not f.data.startswith(MEDIUM_MARKER):
            return None
        return M.MEDIA.get(f.data[len(MEDIUM_MARKER):].decode("ascii", errors="replace"))

    def _seed_base(self, spec: dict[str, Any]) -> None:
        now = self.now()
        path = spec["path"]
        vhd = Vhd(path, "Dynamic", 127 * GIB, spec["file_size"], partitioned=True, created=now,
                  used_base=spec["file_size"] - 64 * MIB,
                  os={"build": spec["build"], "edition": spec["edition"], "caption": spec["caption"],
                      "version": spec["version"], "installation_type": "Server Core", "sysprepped": True,
                      "architecture": "amd64", "release": spec["release"]})
        for d in _BASE_LAYOUT_DIRS:
            vhd.dirs[d.lower()] = d
        for p, data in _BASE_LAYOUT_FILES.items():
            vhd.files[p.lower()] = FileEntry(p, data, now, now)
        self._add_vhd_file(vhd)

    def _add_vhd_file(self, vhd: Vhd) -> None:
        k = P.key(vhd.path)
        self.vhds[k] = vhd
        self.files[k] = FileEntry(vhd.path, b"", vhd.created, vhd.created, size_override=vhd.file_size)

    def merge_layer(self, layer: Vhd, target: Vhd) -> None:
        """Fold a differencing disk into ``target``, a disk below it in its chain (the layer's data wins): its
        files, folders and deletions (kept as deletions only where ``target`` has a parent itself); the target's
        file grows by the data the layer held, and the layer's file goes. The caller syncs the target's size."""
        for k, e in layer.files.items():
            if e is None:
                if target.parent_path:
                    target.files[k] = None
                else:
                    target.files.pop(k, None)
            else:
                target.files[k] = e
        target.dirs.update(layer.dirs)
        target.file_size += max(0, layer.file_size - VHD_EMPTY_SIZE)
        self.files.pop(P.key(layer.path), None)
        self.vhds.pop(P.key(layer.path), None)

    def sync_vhd_size(self, vhd: Vhd) -> None:
        """The VHD's file entry on C: takes its (grown) file size."""
        self._sync_vhd_size(vhd)

    def flatten(self, vhd: Vhd, path: str, vhd_type: str) -> Vhd:
        """Convert-VHD: a new standalone disk at ``path`` holding what ``vhd`` shows through its chain (files,
        folders, the OS and its servicing record, the partition layout and boot files). A dynamic copy takes the
        chain's data on C:, a fixed one the whole size. The caller checks that the source is not in use."""
        path = P.normalize(path)
        k = P.key(path)
        if k in self.files or k in self.dirs:
            raise SE.vhd_create_failed(path, "The file exists.", "0x80070050")
        if P.key(P.parent(path)) not in self.dirs and len(P.parent(path)) > 3:
            raise SE.vhd_create_failed(path, "The system cannot find the path specified.", "0x80070003")
        chain = self.chain(vhd)
        data = sum(max(0, v.file_size - VHD_EMPTY_SIZE) for v in chain)
        file_size = vhd.virtual_size + VHD_EMPTY_SIZE if vhd_type == "Fixed" else data + VHD_EMPTY_SIZE
        if file_size > self.c_free:
            raise SE.vhd_create_failed(path, SE.DISK_FULL, SE.DISK_FULL_CODE)
        layout = self.layout_of(vhd)
        now = self.now()
        new = Vhd(path, vhd_type, vhd.virtual_size, file_size, created=now,
                  os=self.os_info(vhd.path), partitioned=any(v.partitioned for v in chain),
                  used_base=next((v.used_base for v in reversed(chain) if v.used_base), 0))
        new.files = {ik: FileEntry(e.path, e.data, e.created, e.modified, e.size_override)
                     for ik, e in self._merged_files(vhd).items()}
        new.dirs = dict(self._merged_dirs(vhd))
        if layout is not None:
            new.partition_style = layout.partition_style
            new.partitions = [Partition.from_state(p.to_state()) for p in layout.partitions]
        new.boot = next((dict(v.boot) for v in chain if v.boot), None)
        self._add_vhd_file(new)
        return new

    def _sync_vhd_size(self, vhd: Vhd) -> None:
        entry = self.files.get(P.key(vhd.path))
        if entry is not None:
            entry.size_override = vhd.file_size
            entry.modified = self.now()

    # --- C: volume -----------------------------------------------------------------------------

    @property
    def c_used(self) -> int:
        return self.c_other_used + sum(f.size for f in self.files.values())

    @property
    def c_free(self) -> int:
        return max(0, self.c_size - self.c_used)

    def _need_host_space(self, nbytes: int, path: str, error_id: str) -> None:
        if nbytes > self.c_free:
            raise SE.disk_full(path, error_id)

    def put_host_placeholder(self, path: str, size: int) -> None:
        """A large host file whose bytes are not kept (a checkpoint's .vmrs memory image): its directories are
        made, its size counts against C:. The caller checks the space first (``c_free``)."""
        path = P.normalize(path)
        self.mkdirs(P.parent(path))
        now = self.now()
        self.files[P.key(path)] = FileEntry(path, b"", now, now, size_override=int(size))

    # --- host directories ----------------------------------------------------------------------

    def mkdirs(self, path: str) -> None:
        """Create a host directory and its parents (New-Item -ItemType Directory semantics)."""
        path = P.normalize(path)
        while len(path) > 3 and P.key(path) not in self.dirs:
            self.dirs[P.key(path)] = path
            path = P.parent(path)

    # --- VHD chain -----------------------------------------------------------------------------

    def get_vhd(self, path: str) -> Vhd | None:
        return self.vhds.get(P.key(P.normalize(path)))

    def chain(self, vhd: Vhd) -> list[Vhd]:
        """The VHD and its ancestors, child first; stops at a missing parent."""
        out = [vhd]
        seen = {P.key(vhd.path)}
        cur = vhd
        while cur.parent_path:
            parent = self.vhds.get(P.key(cur.parent_path))
            if parent is None or P.key(parent.path) in seen:
                break
            out.append(parent)
            seen.add(P.key(parent.path))
            cur = parent
        return out

    def check_chain(self, vhd: Vhd) -> None:
        """Raise the Windows error a broken chain gives on open (missing or changed parent)."""
        cur = vhd
        while cur.parent_path:
            parent = self.vhds.get(P.key(cur.parent_path))
            if parent is None:
                raise SE.mount_failed(cur.parent_path, "The system cannot find the file specified.",
                                     SE.NOT_FOUND_CODE)
            if cur.parent_write_id and parent.data_write_id != cur.parent_write_id:
                raise SE.chain_corrupted(cur.path)
            cur = parent

    def children_of(self, vhd_key: str) -> list[Vhd]:
        return [v for v in self.vhds.values() if v.parent_path and P.key(v.parent_path) == vhd_key]

    def is_open(self, vhd_key: str) -> bool:
        """Open = mounted, attached to a VM that is not Off, or a parent of an open disk."""
        return bool(self.open_reasons(vhd_key))

    def open_reasons(self, vhd_key: str) -> list[str]:
        reasons: list[str] = []
        if vhd_key in self.mounts:
            reasons.append("mounted")
        reasons += [f"vm:{n}" for n in self.open_by_vms(vhd_key)]
        for child in self.children_of(vhd_key):
            if self.is_open(P.key(child.path)):
                reasons.append(f"child:{child.path}")
        return reasons

    def os_info(self, vhd_path: str) -> dict[str, Any] | None:
        """OS metadata of the image in this disk, inherited from the base of the chain."""
        vhd = self.get_vhd(vhd_path)
        if vhd is None:
            return None
        for v in self.chain(vhd):
            if v.os is not None:
                return dict(v.os)
        return None

    def is_mounted(self, vhd_path: str) -> bool:
        return P.key(P.normalize(vhd_path)) in self.mounts

    # --- VHD creation / resize -----------------------------------------------------------------

    def new_vhd(self, path: str, vhd_type: str, size_bytes: int | None = None, parent_path: str | None = None,
                block_size: int | None = None, checkpoint: bool = False) -> Vhd:
        """New-VHD: Fixed and Dynamic need a size; Differencing needs an existing parent.

        ``checkpoint`` allows the .avhdx extension (Checkpoint-VM's children; New-VHD refuses it)."""
        path = P.normalize(path)
        k = P.key(path)
        ext = P.extension(path).lower()
        if ext not in (".vhd", ".vhdx") and not (checkpoint and ext == ".avhdx"):
            raise PSError(f"Failed to create the virtual hard disk.\nThe system failed to create '{path}': The "
                          "file name extension is not valid. Use .vhd or .vhdx. (0xC03A0022).",  # unconfirmed
                          "InvalidParameter", "InvalidArgument", target=path, exception_type=HE.VE)
        if k in self.files or k in self.dirs:
            raise SE.vhd_create_failed(path, "The file exists.", "0x80070050")
        if (P.key(P.parent(path)) not in self.dirs and len(P.parent(path)) > 3) or P.drive_of(path) != "C":
            raise SE.vhd_create_failed(path, "The system cannot find the path specified.", "0x80070003")
        now = self.now()
        if vhd_type == "Differencing":
            assert parent_path is not None
            parent = self.get_vhd(parent_path)
            if parent is None:
                raise SE.not_a_vhd(P.normalize(parent_path))
            if self.c_free < VHD_EMPTY_SIZE:
                raise SE.vhd_create_failed(path, SE.DISK_FULL, SE.DISK_FULL_CODE)
            vhd = Vhd(path, "Differencing", parent.virtual_size, VHD_EMPTY_SIZE, parent_path=parent.path,
                      parent_write_id=parent.data_write_id, block_size=block_size or 2 * MIB, created=now,
                      partitioned=parent.partitioned)
        else:
            assert size_bytes is not None
            # A fixed disk allocates its whole size up front; a dynamic one starts as metadata only.
            file_size = int(size_bytes) + VHD_EMPTY_SIZE if vhd_type == "Fixed" else VHD_EMPTY_SIZE
            if file_size > self.c_free:
                raise SE.vhd_create_failed(path, SE.DISK_FULL, SE.DISK_FULL_CODE)
            vhd = Vhd(path, vhd_type, int(size_bytes), file_size, block_size=block_size or 32 * MIB, created=now)
        self._add_vhd_file(vhd)
        return vhd

    def resize_vhd(self, path: str, size_bytes: int) -> Vhd:
        """Resize-VHD: growing is allowed while closed; shrinking below content is refused."""
        vhd = self.get_vhd(path)
        if vhd is None:
            raise SE.not_a_vhd(P.normalize(path))
        if vhd.vhd_type == "Differencing" and size_bytes != vhd.virtual_size:
            # The chain shares one size; real Hyper-V resizes the child only if the parent matches.
            pass
        if size_bytes < self.inner_used(vhd):
            raise PSError(f"Failed to resize the virtual disk.\nThe system failed to resize '{vhd.path}': The "
                          "requested operation could not be completed because the size of the data is too "
                          "large for the new size. (0xC03A0021).", "InvalidParameter", "InvalidArgument",
                          target=vhd.path, exception_type=HE.VE)  # unconfirmed
        if vhd.vhd_type == "Fixed":
            grow = size_bytes - vhd.virtual_size
            if grow > 0:
                self._need_host_space(grow, vhd.path, "Unspecified")
            vhd.file_size += grow
            self._sync_vhd_size(vhd)
        vhd.virtual_size = int(size_bytes)
        return vhd

    # --- mounts --------------------------------------------------------------------------------

    def mount(self, path: str, no_drive_letter: bool = False, read_only: bool = False) -> Mount:
        """Mount-VHD: a disk number and (for a disk with a data partition) the first free letter."""
        vhd = self.get_vhd(path)
        if vhd is None:
            raise SE.not_a_vhd(P.normalize(path))
        k = P.key(vhd.path)
        if k in self.mounts or self.open_by_vms(k):
            raise SE.mount_failed(vhd.path, SE.IN_USE, SE.IN_USE_CODE)
        entry = self.files.get(k)
        if entry is not None and entry.read_only and not read_only:
            raise SE.mount_failed(vhd.path, "Access is denied.", "0x80070005")  # a read-only file, read-write
        self.check_chain(vhd)
        letter = None
        part_letters: dict[int, str] = {}
        layout = self.layout_of(vhd)
        if layout is not None:
            # Windows mounts every basic data partition with a file system and gives it the next free letter.
            main = layout.main_partition()
            for part in layout.partitions:
                if part.gpt_type == GPT_BASIC and part.file_system and not no_drive_letter:
                    free = self.free_letter(exclude=set(part_letters.values()))
                    if free:
                        part_letters[part.number] = free
            letter = part_letters.get(main.number) if main else None
        elif vhd.partitioned and not no_drive_letter:
            letter = self.free_letter()
        mount = Mount(k, self.free_disk_number(), letter, read_only, part_letters)
        self.mounts[k] = mount
        return mount

    def dismount(self, path: str | None = None, disk_number: int | None = None) -> Vhd:
        for k, m in list(self.mounts.items()):
            if (path is not None and k == P.key(P.normalize(path))) or (
                    disk_number is not None and m.disk_number == disk_number):
                del self.mounts[k]
                return self.vhds[k]
        if path is not None and self.get_vhd(path) is None:
            raise SE.not_a_vhd(P.normalize(path))
        raise SE.vhd_not_mounted(path if path is not None else str(disk_number))

    def free_letter(self, exclude: set[str] | None = None) -> str | None:
        used = {"C", "D"} | {m.letter for m in self.mounts.values() if m.letter} | (exclude or set())
        used |= {x for m in self.mounts.values() for x in m.part_letters.values()}
        used |= {d.letter for d in self.disk_images.values() if d.letter}
        for code in range(ord(FIRST_VHD_LETTER), ord("Z") + 1):
            if chr(code) not in used:
                return chr(code)
        return None

    def free_disk_number(self) -> int:
        used = {0} | {m.disk_number for m in self.mounts.values()}
        n = 1
        while n in used:
            n += 1
        return n

    def mount_by_letter(self, letter: str) -> Mount | None:
        for m in self.mounts.values():
            if m.letter and m.letter.upper() == letter.upper():
                return m
        return None

    def partition_by_letter(self, letter: str) -> tuple[Mount, int] | None:
        """(the mount, the partition number) of a lettered partition of an explicit layout."""
        for m in self.mounts.values():
            for number, x in m.part_letters.items():
                if x.upper() == letter.upper():
                    return m, number
        return None

    def disk_image_by_letter(self, letter: str) -> DiskImageMount | None:
        return next((d for d in self.disk_images.values() if d.letter and d.letter.upper() == letter.upper()),
                    None)

    # --- inner volume (a VHD's files through its chain) ------------------------------------------

    def _find_file(self, vhd: Vhd, inner_key: str) -> FileEntry | None:
        for v in self.chain(vhd):
            if inner_key in v.files:
                return v.files[inner_key]
        return None

    def _find_dir(self, vhd: Vhd, inner_key: str) -> str | None:
        if inner_key in ("\\", ""):
            return "\\"
        for v in self.chain(vhd):
            if inner_key in v.dirs:
                return v.dirs[inner_key]
        return None

    def _merged_files(self, vhd: Vhd) -> dict[str, FileEntry]:
        merged: dict[str, FileEntry | None] = {}
        for v in reversed(self.chain(vhd)):
            merged.update(v.files)
        return {k: e for k, e in merged.items() if e is not None}

    def _merged_dirs(self, vhd: Vhd) -> dict[str, str]:
        merged: dict[str, str | None] = {}
        for v in reversed(self.chain(vhd)):
            merged.update(v.dirs)
        return {k: d for k, d in merged.items() if d is not None}

    def inner_used(self, vhd: Vhd) -> int:
        base = next((v.used_base for v in reversed(self.chain(vhd)) if v.used_base), 0)
        return base + sum(e.size for e in self._merged_files(vhd).values())

    def layout_of(self, vhd: Vhd) -> Vhd | None:
        """The disk of the chain that carries an explicit partition layout (a child shares its base's)."""
        return next((v for v in self.chain(vhd) if v.partition_style), None)

    def inner_size(self, vhd: Vhd) -> int:
        """Size of the data volume inside the disk (an explicit layout: its Windows partition's)."""
        layout = self.layout_of(vhd)
        if layout is not None:
            main = layout.main_partition()
            return main.size if main else 0
        return max(0, vhd.virtual_size - OS_PARTITIONS_OVERHEAD)

    def boot_problem(self, vhd_path: str) -> str | None:
        """Why a Generation 2 VM's UEFI firmware boots nothing from this disk, or None: a base disk boots; an
        explicit layout needs a FAT32 EFI system partition that bcdboot wrote the boot files to."""
        vhd = self.get_vhd(vhd_path)
        if vhd is None:
            return NO_UEFI_FS
        layout = self.layout_of(vhd)
        if layout is None:
            return None if vhd.partitioned or self.os_info(vhd_path) else NO_UEFI_FS
        esp = next((p for p in layout.partitions if p.gpt_type == GPT_ESP and p.file_system == "FAT32"), None)
        if esp is None:
            return NO_UEFI_FS
        boot = next((v.boot for v in self.chain(vhd) if v.boot), None)
        if not boot or self.os_info(vhd_path) is None:
            return BOOT_LOADER_FAILED
        return None

    def inner_free(self, vhd: Vhd) -> int:
        return max(0, self.inner_size(vhd) - self.inner_used(vhd))

    def read_file(self, vhd_path: str, inner_path: str) -> bytes | None:
        """A file's bytes inside a VHD (through the chain), or None. Case-insensitive."""
        vhd = self.get_vhd(vhd_path)
        if vhd is None:
            return None
        entry = self._find_file(vhd, P.key(P.norm_inner(inner_path)))
        return entry.data if entry else None

    def write_file(self, vhd_path: str, inner_path: str, data: bytes, append: bool = False,
                   error_id: str = "System.IO.IOException") -> None:
        """Write a file inside a VHD (creating its folders): space is checked on both volumes."""
        vhd, ip, old = self._inner_target(vhd_path, inner_path)
        new_data = (old.data if (old and append) else b"") + bytes(data)
        self._put_inner(vhd, ip, old, FileEntry(ip, new_data), error_id)

    def write_placeholder(self, vhd_path: str, inner_path: str, size: int,
                          error_id: str = "System.IO.IOException") -> None:
        """A file inside a VHD whose bytes are not kept, only its size (container image layers): it takes
        space in the guest volume and grows the VHD file on C: like written data, with the same refusals."""
        vhd, ip, old = self._inner_target(vhd_path, inner_path)
        self._put_inner(vhd, ip, old, FileEntry(ip, b"", size_override=size), error_id)

    def _inner_target(self, vhd_path: str, inner_path: str) -> tuple[Vhd, str, FileEntry | None]:
        """(the VHD, the normalized inner path, the file there now) of a file about to be written."""
        vhd = self.get_vhd(vhd_path)
        if vhd is None:
            raise SE.not_a_vhd(P.normalize(vhd_path))
        ip = P.norm_inner(inner_path)
        return vhd, ip, self._find_file(vhd, P.key(ip))

    def _put_inner(self, vhd: Vhd, ip: str, old: FileEntry | None, entry: FileEntry, error_id: str) -> None:
        """Put ``entry`` at inner path ``ip`` (replacing ``old``): the guest volume must hold its growth, and a
        dynamic or differencing file on C: grows by whole blocks of its size (never shrinks)."""
        shown = f"{self._letter_for(vhd) or '?'}:{ip}"
        if entry.size - (old.size if old else 0) > self.inner_free(vhd):
            raise SE.disk_full(shown, error_id)
        growth_file = 0
        if vhd.vhd_type != "Fixed":
            growth_file = _round_up(entry.size, MIB)
            self._need_host_space(growth_file, shown, error_id)
        now = self.now()
        self._ensure_inner_dirs(vhd, P.parent("X:" + ip)[2:] or "\\")
        entry.created = old.created if old else now
        entry.modified = now
        vhd.files[P.key(ip)] = entry
        vhd.file_size += growth_file
        vhd.data_write_id = str(uuid.uuid4())
        self._sync_vhd_size(vhd)

    def delete_file(self, vhd_path: str, inner_path: str) -> bool:
        """Delete a file inside a VHD: a whiteout hides a parent's copy. False if absent."""
        vhd = self.get_vhd(vhd_path)
        if vhd is None:
            return False
        ik = P.key(P.norm_inner(inner_path))
        if self._find_file(vhd, ik) is None:
            return False
        if any(ik in v.files for v in self.chain(vhd)[1:]):
            vhd.files[ik] = None
        else:
            vhd.files.pop(ik, None)
        vhd.data_write_id = str(uuid.uuid4())
        return True

    def _ensure_inner_dirs(self, vhd: Vhd, inner_dir: str) -> None:
        cur = P.norm_inner(inner_dir)
        while cur not in ("\\", "") and self._find_dir(vhd, P.key(cur)) is None:
            vhd.dirs[P.key(cur)] = cur
            cur = P.parent("X:" + cur)[2:] or "\\"

    def _letter_for(self, vhd: Vhd) -> str | None:
        m = self.mounts.get(P.key(vhd.path))
        return m.letter if m else None

    # --- a uniform file system view for the provider cmdlets ---------------------------------------

    def resolve(self, path: str) -> Location:
        """Map a path to C: or to a mounted VHD's volume; other drives do not exist."""
        full = P.normalize(path)
        letter = P.drive_of(full)
        if letter == "C":
            return Location(full, None)
        m = self.mount_by_letter(letter)
        if m is None:
            iso = self.disk_image_by_letter(letter)
            if iso is not None:
                return Location(full, None, iso.iso_key)
            if self.partition_by_letter(letter) is not None:
                raise SE.volume_not_modelled(letter)
            raise SE.drive_not_found(letter)
        return Location(full, m.vhd_key)

    def _iso_view(self, loc: Location) -> tuple[dict[str, str], dict[str, int]]:
        """(dirs, files) of a mounted ISO's volume, keyed by lower-case inner path."""
        d = self.disk_images[loc.iso_key or ""]
        medium = M.MEDIA.get(d.media_id or "")
        if medium is None:
            return {}, {}
        dirs = {x.lower(): x for x in M.medium_dirs(medium)}
        return dirs, {k: v for k, v in M.medium_files(medium).items()}

    def _iso_stat(self, loc: Location) -> Entry | None:
        dirs, files = self._iso_view(loc)
        ik = P.key(loc.inner)
        if ik in ("\\", ""):
            return Entry(loc.path[:3], True)
        if ik in dirs:
            return Entry(loc.path[:2] + dirs[ik], True)
        name = next((n for n in files if n.lower() == ik), None)
        return Entry(loc.path[:2] + name, False, files[name]) if name else None

    def stat(self, loc: Location) -> Entry | None:
        if loc.iso_key is not None:
            return self._iso_stat(loc)
        if loc.vhd_key is None:
            k = P.key(loc.path)
            if len(loc.path) <= 3 or k in self.dirs:
                return Entry(loc.path, True)
            f = self.files.get(k)
            return Entry(f.path, False, f.size, f.created, f.modified, f.read_only) if f else None
        vhd = self.vhds[loc.vhd_key]
        ik = P.key(loc.inner)
        d = self._find_dir(vhd, ik)
        if d is not None:
            return Entry(loc.path[:2] + d if d != "\\" else loc.path[:3], True)
        f = self._find_file(vhd, ik)
        return Entry(loc.path[:2] + f.path, False, f.size, f.created, f.modified) if f else None

    def children(self, loc: Location) -> list[Entry]:
        """Items directly inside a directory."""
        out: list[Entry] = []
        if loc.iso_key is not None:
            dirs, files = self._iso_view(loc)
            base = P.key(loc.inner).rstrip("\\") + "\\"
            drive = loc.path[:2]
            out += [Entry(drive + d, True) for k, d in dirs.items() if k.startswith(base) and "\\" not in k[len(base):]]
            out += [Entry(drive + n, False, size) for n, size in files.items()
                    if n.lower().startswith(base) and "\\" not in n.lower()[len(base):]]
        elif loc.vhd_key is None:
            base = P.key(loc.path).rstrip("\\") + "\\"
            for k, d in self.dirs.items():
                if k.startswith(base) and "\\" not in k[len(base):]:
                    out.append(Entry(d, True))
            for k, f in self.files.items():
                if k.startswith(base) and "\\" not in k[len(base):]:
                    out.append(Entry(f.path, False, f.size, f.created, f.modified))
        else:
            vhd = self.vhds[loc.vhd_key]
            base = P.key(loc.inner).rstrip("\\") + "\\"
            drive = loc.path[:2]
            for k, d in self._merged_dirs(vhd).items():
                if k.startswith(base) and "\\" not in k[len(base):]:
                    out.append(Entry(drive + d, True))
            for k, f in self._merged_files(vhd).items():
                if k.startswith(base) and "\\" not in k[len(base):]:
                    out.append(Entry(drive + f.path, False, f.size, f.created, f.modified))
        out.sort(key=lambda e: (not e.is_dir, e.path.lower()))
        return out

    def walk(self, loc: Location) -> Iterator[Entry]:
        """Every item below a directory, depth first (Get-ChildItem -Recurse)."""
        for e in self.children(loc):
            yield e
            if e.is_dir:
                yield from self.walk(Location(e.path, loc.vhd_key))

    def read(self, loc: Location) -> bytes | None:
        if loc.iso_key is not None:
            found = self._iso_stat(loc)
            return b"" if found is not None and not found.is_dir else None
        if loc.vhd_key is None:
            f = self.files.get(P.key(loc.path))
            return f.data if f else None
        entry = self._find_file(self.vhds[loc.vhd_key], P.key(loc.inner))
        return entry.data if entry else None

    def _check_writable(self, loc: Location, error_id: str) -> None:
        if loc.iso_key is not None:
            raise SE.write_protected(loc.path, error_id)  # a CD-ROM volume (CDFS/UDF) is read-only
        if loc.vhd_key is not None and self.mounts[loc.vhd_key].read_only:
            raise SE.write_protected(loc.path, error_id)

    def write(self, loc: Location, data: bytes, append: bool = False, error_id: str = "System.IO.IOException",
              dir_error_id: str = "GetContentWriterDirectoryNotFoundError") -> None:
        """Create or replace (or append to) a file; its directory must exist."""
        self._check_writable(loc, error_id)
        parent_loc = Location(P.parent(loc.path), loc.vhd_key)
        pst = self.stat(parent_loc)
        if pst is None or not pst.is_dir:
            raise SE.part_of_path_not_found(loc.path, dir_error_id)
        if loc.vhd_key is None:
            k = P.key(loc.path)
            if k in self.vhds:
                if self.is_open(k):
                    raise SE.file_in_use(loc.path, error_id)
                # Overwriting a VHD file with plain content: it is no longer a VHD.
                del self.vhds[k]
                self.mounts.pop(k, None)
            old = self.files.get(k)
            new_data = (old.data if (old and append) else b"") + bytes(data)
            growth = len(new_data) - (old.size if old else 0)
            self._need_host_space(growth, loc.path, error_id)
            now = self.now()
            self.files[k] = FileEntry(old.path if old else loc.path, new_data, old.created if old else now, now)
            return
        vhd = self.vhds[loc.vhd_key]
        self.write_file(vhd.path, loc.inner, data, append=append, error_id=error_id)

    def make_dir(self, loc: Location) -> None:
        self._check_writable(loc, "CreateDirectoryIOError")
        if loc.vhd_key is None:
            self.mkdirs(loc.path)
        else:
            vhd = self.vhds[loc.vhd_key]
            self._ensure_inner_dirs(vhd, loc.inner)
            vhd.data_write_id = str(uuid.uuid4())

    def _file_in_use(self, path: str) -> PSError:
        return SE.remove_item_failed(path, SE.file_in_use_text(path), directory=False)

    def remove(self, loc: Location) -> None:
        """Remove a file or an (empty or recursed) directory; open VHD files refuse (nothing is removed)."""
        self._check_writable(loc, "RemoveFileSystemItemIOError")
        if loc.vhd_key is None:
            k = P.key(loc.path)
            if k in self.files:
                if (k in self.vhds and self.is_open(k)) or k in self.disk_images:
                    raise self._file_in_use(loc.path)
                del self.files[k]
                self.vhds.pop(k, None)
                return
            prefix = k.rstrip("\\") + "\\"
            for fk in [fk for fk in self.files if fk.startswith(prefix)]:
                if fk in self.vhds and self.is_open(fk):
                    raise self._file_in_use(self.files[fk].path)
            for fk in [fk for fk in self.files if fk.startswith(prefix)]:
                del self.files[fk]
                self.vhds.pop(fk, None)
            for dk in [dk for dk in self.dirs if dk == k or dk.startswith(prefix)]:
                del self.dirs[dk]
            return
        vhd = self.vhds[loc.vhd_key]
        ik = P.key(loc.inner)
        if self._find_file(vhd, ik) is not None:
            self.delete_file(vhd.path, loc.inner)
            return
        prefix = ik.rstrip("\\") + "\\"
        for fk in [fk for fk in self._merged_files(vhd) if fk.startswith(prefix)]:
            self.delete_file(vhd.path, fk)
        for dk in [dk for dk in self._merged_dirs(vhd) if dk == ik or dk.startswith(prefix)]:
            if any(dk in v.dirs for v in self.chain(vhd)[1:]):
                vhd.dirs[dk] = None
            else:
                vhd.dirs.pop(dk, None)
        vhd.data_write_id = str(uuid.uuid4())

    def remove_tree(self, loc: Location) -> list[PSError]:
        """Remove-Item -Recurse of a directory as FileSystemProvider.RemoveDirectoryInfoItem does it: child
        directories first, then files, each failure one error and the removal going on; a directory left with
        anything in it then fails with "The directory is not empty." (aspnet/dnvm#457)."""
        self._check_writable(loc, "RemoveFileSystemItemIOError")
        if loc.vhd_key is not None:
            self.remove(loc)  # a mounted volume's files are never held open by another process here
            return []
        errors: list[PSError] = []
        self._remove_host_dir(P.key(loc.path), loc.path, errors)
        return errors

    def _remove_host_dir(self, k: str, path: str, errors: list[PSError]) -> bool:
        prefix = k.rstrip("\\") + "\\"
        emptied = True
        for dk in sorted(d for d in self.dirs if d.startswith(prefix) and "\\" not in d[len(prefix):]):
            emptied &= self._remove_host_dir(dk, self.dirs[dk], errors)
        for fk in sorted(f for f in self.files if f.startswith(prefix) and "\\" not in f[len(prefix):]):
            if fk in self.vhds and self.is_open(fk):
                errors.append(self._file_in_use(self.files[fk].path))
                emptied = False
                continue
            del self.files[fk]
            self.vhds.pop(fk, None)
        if not emptied:
            errors.append(SE.remove_item_failed(path, SE.DIRECTORY_NOT_EMPTY, directory=True))
            return False
        self.dirs.pop(k, None)
        return True

    # --- persistence ---------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "c_size": self.c_size, "c_other_used": self.c_other_used,
            "dirs": dict(self.dirs),
            "files": {k: f.to_state() for k, f in self.files.items()},
            "vhds": {k: v.to_state() for k, v in self.vhds.items()},
            "mounts": {k: {"disk_number": m.disk_number, "letter": m.letter, "read_only": m.read_only,
                           "part_letters": {str(n): x for n, x in m.part_letters.items()}}
                       for k, m in self.mounts.items()},
            "disk_images": {k: {"path": d.path, "media_id": d.media_id, "device_number": d.device_number,
                                "letter": d.letter} for k, d in self.disk_images.items()},
        }

    def load_state(self, s: dict[str, Any]) -> None:
        self.c_size = s["c_size"]
        self.c_other_used = s["c_other_used"]
        self.dirs = dict(s["dirs"])
        self.files = {k: FileEntry.from_state(f) for k, f in s["files"].items()}
        self.vhds = {k: Vhd.from_state(v) for k, v in s["vhds"].items()}
        self.mounts = {k: Mount(k, m["disk_number"], m["letter"], m["read_only"],
                                {int(n): x for n, x in (m.get("part_letters") or {}).items()})
                       for k, m in s["mounts"].items()}
        self.disk_images = {k: DiskImageMount(k, d["path"], d.get("media_id"), int(d["device_number"]), d.get("letter"))
                            for k, d in (s.get("disk_images") or {}).items()}
