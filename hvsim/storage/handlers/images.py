r"""The cmdlets that build a base disk from installation media: Mount-DiskImage, Get-DiskImage, Dismount-DiskImage,
Initialize-Disk, New-Partition, Set-Partition, Format-Volume, Add-PartitionAccessPath (Storage, CDXML: the FQID
suffix is the cmdlet's name), Get-WindowsImage, Expand-WindowsImage, Enable-WindowsOptionalFeature,
Add-WindowsPackage (Dism: the FQID is the command's type), and Move-Item / Set-ItemProperty IsReadOnly on host
files. The rules are hvsim.storage.imaging's; this module reads the call and shapes the objects."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hvsim.core import paths as P
from hvsim.hyperv import errors as HE
from hvsim.powershell.cmdlet import BoundCall, CmdletContext, cmdlet
from hvsim.powershell.errors import PSError
from hvsim.powershell.shaping import as_list
from hvsim.powershell.values import PSEnum, PSObj, UInt32, UInt64
from hvsim.storage import errors as SE
from hvsim.storage import imaging as I
from hvsim.storage import media as M
from hvsim.storage.handlers.disks import disk_obj, partition_obj, partition_volume, query_not_found, storage_types
from hvsim.storage.handlers.objects import file_obj, vhd_obj
from hvsim.storage.models import DiskImageMount, Mount, Partition, Vhd
from hvsim.world import World

GB = 1024**3
STORAGE_TYPE = "Microsoft.PowerShell.Cmdletization.GeneratedTypes.DiskImage.StorageType"


# --------------------------------------------------------------------------------------------- disk images


def disk_image_obj(w: World, path: str, d: DiskImageMount | None) -> PSObj:
    """MSFT_DiskImage of an ISO (attached or not)."""
    entry = w.storage.files.get(P.key(path))
    size = entry.size if entry else 0
    return PSObj(storage_types("MSFT_DiskImage"), {
        "Attached": d is not None, "BlockSize": UInt32(0),
        "DevicePath": f"\\\\.\\CDROM{d.device_number}" if d else None,
        "FileSize": UInt64(size), "ImagePath": entry.path if entry else path, "LogicalSectorSize": UInt32(2048),
        "Number": None, "Size": UInt64(size), "StorageType": PSEnum(STORAGE_TYPE, "ISO", 1), "PSComputerName": None,
    }, to_string=entry.path if entry else path)


def _image_paths(call: BoundCall) -> list[str]:
    if call.has("InputObject"):
        return [str(o.get("ImagePath")) for o in as_list(call.get("InputObject")) if isinstance(o, PSObj)]
    return [P.normalize(str(p)) for p in as_list(call.get("ImagePath"))]


@cmdlet("Mount-DiskImage")
def mount_disk_image(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world

    def one(path: str) -> PSObj | None:
        if P.extension(path).lower() in (".vhd", ".vhdx"):
            w.storage.mount(path, no_drive_letter=bool(call.get("NoDriveLetter")),
                            read_only=str(call.get("Access") or "") == "ReadOnly")
            w.dirty = True
            return None
        d = I.mount_disk_image(w.storage, path, no_drive_letter=bool(call.get("NoDriveLetter")))
        w.dirty = True
        ctx.spend("host", "mount_disk_image")
        return disk_image_obj(w, path, d) if call.get("PassThru") else None

    return ctx.each(_image_paths(call), one)


@cmdlet("Get-DiskImage")
def get_disk_image(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    if call.has("DevicePath"):
        wanted = {str(x).lower() for x in as_list(call.get("DevicePath"))}
        return [disk_image_obj(w, d.path, d) for d in w.storage.disk_images.values()
                if f"\\\\.\\cdrom{d.device_number}" in wanted]

    def one(path: str) -> PSObj:
        if P.key(path) not in w.storage.files:
            raise SE.disk_image_failed(SE.NOT_FOUND, "0x80070002", "ObjectNotFound")
        return disk_image_obj(w, path, w.storage.disk_images.get(P.key(path)))

    return ctx.each(_image_paths(call), one)


@cmdlet("Dismount-DiskImage")
def dismount_disk_image(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world

    def one(path: str) -> PSObj | None:
        was = w.storage.disk_images.get(P.key(path))
        I.dismount_disk_image(w.storage, path)
        if was is not None:
            w.dirty = True
            ctx.spend("host", "dismount_vhd")
        return disk_image_obj(w, path, None) if call.get("PassThru") else None

    return ctx.each(_image_paths(call), one)


# --------------------------------------------------------------------------------------------- disks


def _disks_named(ctx: CmdletContext, call: BoundCall, number_param: str) -> list[tuple[Mount, Vhd, int]]:
    """The mounted VHDs a Storage call names by number or by a piped MSFT_Disk; an unknown number is the CDXML
    query error, the host's own disk 0 is refused by the operation."""
    w = ctx.world
    if call.has("InputObject"):
        numbers = [int(o.get("Number")) for o in as_list(call.get("InputObject")) if isinstance(o, PSObj)]
    else:
        numbers = [int(n) for n in as_list(call.get(number_param))]
    out = []
    for n in numbers:
        found = I.disk_by_number(w.storage, n)
        if found is None:
            if n == 0:
                raise SE.storage_wmi(SE.ALREADY_INITIALIZED, 41001)
            ctx.write_error(query_not_found(call, "MSFT_Disk", "Number", n, param=number_param))
            continue
        out.append((found[0], found[1], n))
    return out


@cmdlet("Initialize-Disk")
def initialize_disk(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    style = str(call.get("PartitionStyle") or "GPT")

    def one(item: tuple[Mount, Vhd, int]) -> PSObj | None:
        _m, vhd, n = item
        I.initialize_disk(w.storage, vhd, style)
        w.dirty = True
        ctx.spend("host", "initialize_disk")
        return disk_obj(w, n, vhd) if call.get("PassThru") else None

    return ctx.each(_disks_named(ctx, call, "Number"), one)


@cmdlet("New-Partition")
def new_partition(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world

    def one(item: tuple[Mount, Vhd, int]) -> PSObj:
        m, vhd, n = item
        letter = call.get("DriveLetter")
        part = I.new_partition(w.storage, m, vhd, call.get("Size"), bool(call.get("UseMaximumSize")),
                               call.get("GptType"), str(letter) if letter else None,
                               bool(call.get("AssignDriveLetter")))
        w.dirty = True
        ctx.spend("host", "new_partition")
        return partition_obj(w, n, vhd, part)

    return ctx.each(_disks_named(ctx, call, "DiskNumber"), one)


def _partition_named(ctx: CmdletContext, call: BoundCall, obj_param: str = "InputObject"
                     ) -> tuple[Mount, Vhd, int, Partition]:
    """The partition a call names: a piped MSFT_Partition, -DiskNumber/-PartitionNumber or -DriveLetter."""
    w = ctx.world
    obj = call.get(obj_param)
    obj = as_list(obj)[0] if obj is not None and as_list(obj) else None
    if isinstance(obj, PSObj):
        disk_n, part_n = int(obj.get("DiskNumber")), int(obj.get("PartitionNumber"))
    elif call.has("DriveLetter"):
        letter = str(as_list(call.get("DriveLetter"))[0])
        found = w.storage.partition_by_letter(letter)
        if found is None:
            raise query_not_found(call, "MSFT_Partition", "DriveLetter", letter)
        disk_n, part_n = found[0].disk_number, found[1]
    else:
        disk_n = int(as_list(call.get("DiskNumber"))[0])
        part_n = int(as_list(call.get("PartitionNumber"))[0])
    disk = I.disk_by_number(w.storage, disk_n)
    layout = w.storage.layout_of(disk[1]) if disk else None
    part = next((p for p in layout.partitions if p.number == part_n), None) if layout else None
    if disk is None or part is None:
        raise query_not_found(call, "MSFT_Partition", "PartitionNumber", part_n, param="PartitionNumber")
    return disk[0], disk[1], disk_n, part


@cmdlet("Set-Partition")
def set_partition(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    m, vhd, _n, part = _partition_named(ctx, call)
    if call.has("GptType"):
        I.set_partition_type(w.storage, vhd, part, str(call.get("GptType")))
    if call.has("NewDriveLetter"):
        m.part_letters.pop(part.number, None)
        I.add_access_path(w.storage, m, vhd, part, f"{call.get('NewDriveLetter')}:\\", False)
    w.dirty = True
    return []


@cmdlet("Format-Volume")
def format_volume(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    if call.has("Partition"):
        m, vhd, _n, part = _partition_named(ctx, call, "Partition")
    elif call.has("DriveLetter"):
        letter = str(as_list(call.get("DriveLetter"))[0]).upper()
        found = w.storage.partition_by_letter(letter)
        if found is None:
            raise query_not_found(call, "MSFT_Volume", "DriveLetter", letter)
        m, vhd, _n, part = _partition_named(ctx, BoundCall(call.spec, call.parameter_set, {
            "DiskNumber": found[0].disk_number, "PartitionNumber": found[1]}))
    else:
        raise PSError("The simulated host formats volumes named by -Partition or -DriveLetter only.",
                      "FormatVolumeNotModelled", "NotImplemented", exception_type="System.NotImplementedException")
    fs = str(call.get("FileSystem") or "NTFS")
    I.format_partition(w.storage, m, vhd, part, fs, str(call.get("NewFileSystemLabel") or ""))
    w.dirty = True
    ctx.spend("host", "format_volume")
    vol = partition_volume(w, vhd, part)
    return [vol] if vol is not None else []


@cmdlet("Add-PartitionAccessPath")
def add_partition_access_path(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    m, vhd, n, part = _partition_named(ctx, call)
    I.add_access_path(w.storage, m, vhd, part, call.get("AccessPath"), bool(call.get("AssignDriveLetter")))
    w.dirty = True
    return [partition_obj(w, n, vhd, part)] if call.get("PassThru") else []


# --------------------------------------------------------------------------------------------- DISM


def _dism_log() -> str:
    return I.DISM_LOG


def _basic_image(src: I.ImageSource, img: M.WimImage) -> PSObj:
    return PSObj(["Microsoft.Dism.Commands.BasicImageInfoObject", "Microsoft.Dism.Commands.BaseDismObject",
                  "System.Object"], {
        "ImagePath": src.path, "ImageIndex": UInt32(img.index), "ImageName": img.name,
        "ImageDescription": img.description, "ImageSize": UInt64(img.size), "LogPath": _dism_log()})


def _full_image(src: I.ImageSource, img: M.WimImage) -> PSObj:
    """Get-WindowsImage -Index/-Name: Microsoft.Dism.Commands.WimImageInfoObject."""
    props = _basic_image(src, img).props
    props.update({
        "WIMBoot": False, "Architecture": PSEnum("Microsoft.Dism.Commands.ImageInfo+Architecture", "x64", 9),
        "Hal": None, "Version": f"10.0.{img.build}", "SPBuild": UInt32(img.revision), "SPLevel": UInt32(0),
        "EditionId": img.edition_id, "InstallationType": img.installation_type, "ProductType": "ServerNT",
        "ProductSuite": "Terminal Server", "SystemRoot": "WINDOWS", "Languages": ["en-US (Default)"],
        "MajorVersion": UInt32(10), "MinorVersion": UInt32(0), "Build": UInt32(img.build),
    })
    return PSObj(["Microsoft.Dism.Commands.WimImageInfoObject", "Microsoft.Dism.Commands.BasicImageInfoObject",
                  "Microsoft.Dism.Commands.BaseDismObject", "System.Object"], props)


def _index(call: BoundCall) -> int | None:
    return int(call.get("Index")) if call.has("Index") else None


@cmdlet("Get-WindowsImage")
def get_windows_image(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    if call.get("Mounted"):
        return []  # no image is mounted with Mount-WindowsImage on the simulated host
    src = I.image_source(w.storage, str(call.get("ImagePath")), call.spec.type, "Get-WindowsImage")
    ctx.spend("host", "get_windows_image")
    if call.has("Index") or call.has("Name"):
        img = I.pick_image(src, _index(call), call.get("Name"), call.spec.type)
        return [_full_image(src, img)]
    return [_basic_image(src, img) for img in src.medium.images]


@cmdlet("Expand-WindowsImage")
def expand_windows_image(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    src = I.image_source(w.storage, str(call.get("ImagePath")), call.spec.type, "Expand-WindowsImage")
    img = I.pick_image(src, _index(call), call.get("Name"), call.spec.type)
    _loc, vhd = I.windows_volume(w.storage, str(call.get("ApplyPath")), call.spec.type)
    I.expand_image(w.storage, vhd, src, img, call.spec.type)
    w.dirty = True
    ctx.spend("host", "apply_image_esd_per_gb" if src.esd else "apply_image_wim_per_gb", img.size / GB)
    return [PSObj(["Microsoft.Dism.Commands.BaseDismObject", "System.Object"], {"LogPath": _dism_log()})]


def _offline_target(ctx: CmdletContext, call: BoundCall) -> Vhd:
    if call.get("Online"):
        raise PSError("The simulated host does not service its own running Windows (-Online); service an "
                      "offline image with -Path.", "OnlineServicingNotModelled", "NotImplemented",
                      exception_type="System.NotImplementedException")
    _loc, vhd = I.windows_volume(ctx.world.storage, str(call.get("Path")), call.spec.type)
    return vhd


def _image_object(path: str) -> PSObj:
    return PSObj(["Microsoft.Dism.Commands.ImageObject", "Microsoft.Dism.Commands.BaseDismObject", "System.Object"],
                 {"Path": path, "Online": False, "RestartNeeded": False, "LogPath": _dism_log()})


@cmdlet("Enable-WindowsOptionalFeature")
def enable_windows_optional_feature(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    vhd = _offline_target(ctx, call)
    names = [str(n) for n in as_list(call.get("FeatureName"))]
    enabled = I.enable_feature(ctx.world.storage, vhd, names, bool(call.get("All")), call.spec.type)
    ctx.world.dirty = True
    for name in enabled:
        ctx.spend("host", "offline_feature_hyperv" if name == "Microsoft-Hyper-V" else "offline_feature_enable")
    return [_image_object(str(call.get("Path")))]


@cmdlet("Add-WindowsPackage")
def add_windows_package(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    vhd = _offline_target(ctx, call)
    record = I.add_package(ctx.world.storage, vhd, str(call.get("PackagePath")), call.spec.type)
    ctx.world.dirty = True
    ctx.spend("host", "offline_package_per_gb", max(0.05, record["size"] / GB))
    return [_image_object(str(call.get("Path")))]


@cmdlet("Convert-VHD")
def convert_vhd(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    """Convert-VHD -Path <child> -DestinationPath <new> -VHDType Dynamic: a standalone copy of the chain. The source
    must not be in use (mounted or attached to a VM that is not Off: the sharing violation, no target)."""
    w = ctx.world
    src = P.normalize(str(call.get("Path")))
    vhd = w.storage.get_vhd(src)
    if vhd is None:
        err = SE.not_a_vhd(str(call.get("Path")))
        err.target = None
        raise err
    if w.storage.is_open(P.key(vhd.path)):
        raise PSError(f"Failed to convert the virtual disk.\nThe system failed to convert '{vhd.path}'.\n"
                      f"Failed to convert the virtual disk.\nThe system failed to convert '{vhd.path}': {SE.IN_USE} "
                      f"({SE.IN_USE_CODE}).", "ObjectInUse", "ResourceBusy", exception_type=HE.VE)  # unconfirmed text
    vhd_type = str(call.get("VHDType") or vhd.vhd_type)
    if vhd_type == "Differencing":
        raise PSError("The simulated host converts to Fixed or Dynamic disks only.", "ConvertVhdNotModelled",
                      "NotImplemented", exception_type="System.NotImplementedException")
    try:
        new = w.storage.flatten(vhd, str(call.get("DestinationPath")), vhd_type)
    except PSError as err:
        err.target = None
        raise
    if call.get("DeleteSource"):
        w.storage.files.pop(P.key(vhd.path), None)
        w.storage.vhds.pop(P.key(vhd.path), None)
    w.dirty = True
    ctx.spend("host", "convert_vhd_per_gb", max(1.0, new.file_size / GB))
    return [vhd_obj(w, new)] if call.get("Passthru") else []


# --------------------------------------------------------------------------------------------- host files


@cmdlet("Move-Item")
def move_item(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    st = ctx.world.storage
    paths = [str(p) for p in as_list(call.get("Path") if call.has("Path") else call.get("LiteralPath"))]
    dest = str(call.get("Destination") or "")

    def one(path: str) -> PSObj | None:
        if P.drive_of(P.normalize(path)) != "C" or P.drive_of(P.normalize(dest)) != "C":
            raise PSError("The simulated host moves files on C: only.", "MoveItemNotModelled", "NotImplemented",
                          exception_type="System.NotImplementedException")
        new = I.move_file(st, path, dest)
        ctx.world.dirty = True
        if call.get("PassThru"):
            entry = st.stat(st.resolve(new))
            return file_obj(ctx.world, entry) if entry else None
        return None

    return ctx.each(paths, one)


@cmdlet("Set-ItemProperty")
def set_item_property(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    st = ctx.world.storage
    name = str(call.get("Name") or "")
    if name.lower() != "isreadonly":
        raise PSError(f"The simulated host sets the IsReadOnly property of files only, not '{name}'.",
                      "SetItemPropertyNotModelled", "NotImplemented", exception_type="System.NotImplementedException")
    value = call.get("Value")
    flag = value if isinstance(value, bool) else str(value).strip().lower() in ("true", "1", "$true")
    paths = [str(p) for p in as_list(call.get("Path") if call.has("Path") else call.get("LiteralPath"))]

    def one(path: str) -> None:
        full = P.normalize(path)
        entry = st.files.get(P.key(full))
        if entry is None:
            raise SE.path_not_found(full)
        entry.read_only = bool(flag)
        ctx.world.dirty = True

    ctx.each(paths, one)
    return []
