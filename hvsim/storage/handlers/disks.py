"""The Storage module's cmdlets (Get-Disk, Get-Partition, Get-Volume): the host's boot disk and every mounted
VHD, as the CDXML classes MSFT_Disk, MSFT_Partition and MSFT_Volume."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from hvsim.core import paths as P
from hvsim.powershell import binding as B
from hvsim.powershell import errors as PE
from hvsim.powershell.catalog import load_catalog
from hvsim.powershell.cmdlet import BoundCall, CmdletContext, cmdlet
from hvsim.powershell.errors import PSError
from hvsim.powershell.shaping import as_list
from hvsim.powershell.values import PSObj, UInt32, UInt64
from hvsim.storage import media as M
from hvsim.storage.models import GPT_FIRST_USABLE, GPT_TRAILER, OS_PARTITIONS_OVERHEAD, DiskImageMount, Partition, Vhd
from hvsim.world import World

MB = 1024**2


def _storage_types(cls: str) -> list[str]:
    """A Storage CIM instance's type names: the class with its namespace, the class alone (what a cdxml
    parameter's PSTypeName matches), its base class, CimInstance."""
    return [f"Microsoft.Management.Infrastructure.CimInstance#ROOT/Microsoft/Windows/Storage/{cls}",
            f"Microsoft.Management.Infrastructure.CimInstance#{cls}",
            "Microsoft.Management.Infrastructure.CimInstance#ROOT/Microsoft/Windows/Storage/MSFT_StorageObject",
            "Microsoft.Management.Infrastructure.CimInstance#MSFT_StorageObject",
            "Microsoft.Management.Infrastructure.CimInstance", "System.Object"]


def _disks(w: World) -> list[tuple[int, Vhd | None]]:
    out: list[tuple[int, Vhd | None]] = [(0, None)]
    for m in sorted(w.storage.mounts.values(), key=lambda m: m.disk_number):
        out.append((m.disk_number, w.storage.vhds[m.vhd_key]))
    return out


def _disk_obj(w: World, number: int, vhd: Vhd | None) -> PSObj:
    st = w.storage
    if vhd is None:
        size, name, bus, style, parts = (st.c_size + OS_PARTITIONS_OVERHEAD, "Dell Ent NVMe AGN RI U.2 960GB",
                                         "NVMe", "GPT", 4)
        location = "PCI Slot 2 : Adapter 0 : Port 0 : Target 0 : LUN 0"
    else:
        size, name, location, bus = vhd.virtual_size, "Msft Virtual Disk", vhd.path, "File Backed Virtual"
        style, parts = ("GPT", 4) if vhd.partitioned else ("RAW", 0)
        layout = st.layout_of(vhd)
        if layout is not None:
            style, parts = layout.partition_style, len(layout.partitions)
    m = st.mounts.get(P.key(vhd.path)) if vhd else None
    allocated = size if parts else 0
    if vhd is not None and st.layout_of(vhd) is not None:
        allocated = sum(p.size for p in (st.layout_of(vhd) or vhd).partitions)
    return PSObj(_storage_types("MSFT_Disk"), {
        "Number": UInt32(number), "FriendlyName": name, "SerialNumber": "" if vhd else "S4YNNA0R500123",
        "HealthStatus": "Healthy", "OperationalStatus": "Online", "Size": UInt64(size),
        "AllocatedSize": UInt64(allocated), "PartitionStyle": style, "BusType": bus,
        "LargestFreeExtent": UInt64(free_extent(w, vhd) if vhd is not None else 0),
        "Location": location, "Path": f"\\\\?\\scsi#disk&ven_msft&prod_virtual_disk#{number}",
        "IsBoot": vhd is None, "IsSystem": vhd is None, "IsOffline": False,
        "IsReadOnly": bool(m.read_only) if m else False, "NumberOfPartitions": UInt32(parts),
        "Guid": "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, vhd.disk_id if vhd else "host-disk0")).upper() + "}",
        "UniqueId": (vhd.disk_id.replace("-", "").upper() if vhd else "4E564D655F5F5F5F"),
        "LogicalSectorSize": UInt32(512), "PhysicalSectorSize": UInt32(4096), "PSComputerName": None,
    })


def free_extent(w: World, vhd: Vhd) -> int:
    """The largest free extent of a disk: after the last partition of an explicit layout (GPT keeps 1 MiB at each
    end), nothing on an implicit (base) layout, all of a RAW disk but its metadata."""
    layout = w.storage.layout_of(vhd)
    if layout is None:
        return 0 if vhd.partitioned else vhd.virtual_size
    end = max((p.offset + p.size for p in layout.partitions), default=GPT_FIRST_USABLE)
    return max(0, vhd.virtual_size - GPT_TRAILER - end)


def partition_obj(w: World, number: int, vhd: Vhd, part: Partition) -> PSObj:
    """MSFT_Partition of an explicit layout."""
    m = w.storage.mounts.get(P.key(vhd.path))
    dl = m.part_letters.get(part.number) if m else None
    volume_path = f"\\\\?\\Volume{part.guid}\\"
    return PSObj(_storage_types("MSFT_Partition"), {
        "DiskNumber": UInt32(number), "PartitionNumber": UInt32(part.number), "DriveLetter": dl or "\x00",
        "Offset": UInt64(part.offset), "Size": UInt64(part.size), "Type": part.type_name, "GptType": part.gpt_type,
        "IsBoot": False, "IsSystem": False, "IsActive": False, "IsHidden": False, "IsOffline": False,
        "IsReadOnly": False, "AccessPaths": ([f"{dl}:\\"] if dl else []) + ([volume_path] if part.file_system else []),
        "OperationalStatus": "Online", "Guid": part.guid, "DiskId": _disk_id(number, vhd),
        "UniqueId": f"{{00000000-0000-0000-0000-000000000000}}{vhd.disk_id.replace('-', '').upper()}:{part.number}",
        "PSComputerName": None,
    }, to_string=f"{number}-{part.number}")


def _disk_id(number: int, vhd: Vhd) -> str:
    return f"\\\\?\\scsi#disk&ven_msft&prod_virtual_disk#{number}"


def _partitions(w: World, number: int, vhd: Vhd | None) -> list[PSObj]:
    st = w.storage
    if vhd is not None:
        explicit = st.layout_of(vhd)
        if explicit is not None:
            return [partition_obj(w, number, vhd, part) for part in explicit.partitions]
    if vhd is not None and not vhd.partitioned:
        return []
    m = st.mounts.get(P.key(vhd.path)) if vhd else None
    letter = "C" if vhd is None else (m.letter if m else None)
    data_size = st.c_size if vhd is None else st.inner_size(vhd)
    layout = [("Recovery", 529 * MB, None, "{de94bba4-06d1-4d40-a16a-bfd50179d6ac}"),
              ("System", 100 * MB, None, "{c12a7328-f81f-11d2-ba4b-00a0c93ec93b}"),
              ("Reserved", 16 * MB, None, "{e3c9e316-0b5c-4db8-817d-f92df00215ae}"),
              ("Basic", data_size, letter, "{ebd0a0a2-b9e5-4433-87c0-68b6b72699c7}")]
    out = []
    offset = MB
    for i, (ptype, size, dl, gpt) in enumerate(layout, start=1):
        out.append(PSObj(_storage_types("MSFT_Partition"), {
            "DiskNumber": UInt32(number), "PartitionNumber": UInt32(i),
            "DriveLetter": dl or "\x00", "Offset": UInt64(offset), "Size": UInt64(size), "Type": ptype,
            "GptType": gpt, "IsBoot": vhd is None and ptype == "Basic", "IsSystem": vhd is None and ptype == "System",
            "IsActive": False, "IsHidden": ptype != "Basic", "IsOffline": False, "IsReadOnly": False,
            "AccessPaths": ([f"{dl}:\\"] if dl else []), "OperationalStatus": "Online", "PSComputerName": None,
        }))
        offset += size
    return out


def _volume(w: World, letter: str | None, vhd: Vhd | None, part: Partition | None = None) -> PSObj:
    st = w.storage
    size = st.c_size if vhd is None else st.inner_size(vhd)
    free = st.c_free if vhd is None else st.inner_free(vhd)
    fs, label = "NTFS", ""
    if part is not None:
        fs, label = part.file_system or "Unknown", part.label
        if vhd is not None and part is not (st.layout_of(vhd) or vhd).main_partition():
            size, free = part.size - 2 * MB, part.size - 2 * MB  # a small system volume: its files are not modelled
    seed = (vhd.disk_id if vhd else "host-c") + (part.guid if part else letter or "")
    oid = str(uuid.uuid5(uuid.NAMESPACE_URL, seed))
    return PSObj(_storage_types("MSFT_Volume"), {
        "DriveLetter": letter, "DriveType": "Fixed", "FileSystem": fs, "FileSystemType": fs,
        "FileSystemLabel": label, "HealthStatus": "Healthy", "OperationalStatus": "OK",
        "Size": UInt64(size), "SizeRemaining": UInt64(free), "AllocationUnitSize": UInt32(4096),
        "DedupMode": "NotAvailable", "ObjectId": "{1}\\\\" + w.host.computer_name + f"\\root/Microsoft/Windows/Storage/"
        f"Providers_v2\\WSP_Volume.ObjectId=\"{{{oid}}}\"",
        "Path": f"\\\\?\\Volume{{{oid}}}\\", "UniqueId": f"\\\\?\\Volume{{{oid}}}\\", "PSComputerName": None,
    }, to_string=letter or "")


def iso_volume(w: World, d: DiskImageMount) -> PSObj:
    """The CD-ROM volume of a mounted ISO (UDF, read-only, nothing free)."""
    medium = M.MEDIA.get(d.media_id or "")
    size = medium.size if medium else 0
    oid = str(uuid.uuid5(uuid.NAMESPACE_URL, "iso|" + d.iso_key))
    return PSObj(_storage_types("MSFT_Volume"), {
        "DriveLetter": d.letter, "DriveType": "CD-ROM", "FileSystem": "UDF", "FileSystemType": "UDF",
        "FileSystemLabel": medium.label if medium else "", "HealthStatus": "Healthy", "OperationalStatus": "OK",
        "Size": UInt64(size), "SizeRemaining": UInt64(0), "AllocationUnitSize": UInt32(2048),
        "DedupMode": "NotAvailable", "ObjectId": "{1}\\\\" + w.host.computer_name + "\\root/Microsoft/Windows/Storage/"
        f"Providers_v2\\WSP_Volume.ObjectId=\"{{{oid}}}\"", "Path": f"\\\\?\\Volume{{{oid}}}\\",
        "UniqueId": f"\\\\?\\Volume{{{oid}}}\\", "PSComputerName": None,
    }, to_string=d.letter or "")


def partition_volume(w: World, vhd: Vhd, part: Partition) -> PSObj | None:
    """The volume on a formatted partition of an explicit layout (None: no file system)."""
    if not part.file_system:
        return None
    m = w.storage.mounts.get(P.key(vhd.path))
    return _volume(w, m.part_letters.get(part.number) if m else None, vhd, part)


def _volumes(w: World) -> list[PSObj]:
    out = [_volume(w, "C", None)]
    for m in sorted(w.storage.mounts.values(), key=lambda m: m.letter or "~"):
        vhd = w.storage.vhds[m.vhd_key]
        layout = w.storage.layout_of(vhd)
        if layout is not None:
            for part in layout.partitions:
                vol = partition_volume(w, vhd, part)
                if vol is not None and part.number in m.part_letters:
                    out.append(vol)
        elif m.letter:
            out.append(_volume(w, m.letter, vhd))
    out += [iso_volume(w, d) for d in w.storage.disk_images.values() if d.letter]
    return out


def _query_not_found(call: BoundCall, class_name: str, prop: str, value: Any, param: str | None = None) -> PSError:
    """A Storage (CDXML) query value that matched nothing. CategoryInfo's target is the value as the parameter's
    element type holds it: '(3:UInt32) [Get-Disk]' (Easy-GPU-PV#393), '(4:UInt32) [Get-Partition]'
    (cloudfoundry/bosh-agent), '(Z:Char) [Get-Volume]' (SecureBoot-CA-2023-Updates#126)."""
    err = PE.cdxml_not_found(call.spec.name, class_name, prop, B.display(value))
    spec = load_catalog().get(call.spec.name) or call.spec
    declared = spec.parameters.get(param or prop)
    if declared is not None:
        err.target_type = B.parse_type(declared.type).net.rsplit(".", 1)[-1]
    return err


def _report_unmatched(ctx: CmdletContext, call: BoundCall, class_name: str, prop: str, wanted: list[Any],
                      present: Iterable[Any]) -> None:
    """ClientSideQuery: one error for each value that matched no instance, in the order given (once each)."""
    have = set(present)
    for value in dict.fromkeys(wanted):
        if value not in have:
            ctx.write_error(_query_not_found(call, class_name, prop, value))


@cmdlet("Get-Disk")
def get_disk(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    disks = _disks(w)
    if call.has("Number"):
        want = [int(n) for n in as_list(call.get("Number"))]
        _report_unmatched(ctx, call, "MSFT_Disk", "Number", want, (n for n, _ in disks))
        disks = [d for d in disks if d[0] in want]
    if call.has("FriendlyName"):
        pats = [str(x) for x in as_list(call.get("FriendlyName"))]
        disks = [d for d in disks if any(P.wildcard_match(p, _disk_obj(w, *d).get("FriendlyName")) for p in pats)]
    if call.has("Path"):
        # Get-Disk -Path takes the disk's device path; VHD paths are matched too (Location).
        pats = [str(x) for x in as_list(call.get("Path"))]
        disks = [d for d in disks if d[1] is not None and any(P.normalize(p).lower() == d[1].path.lower()
                                                              for p in pats)]
    return [_disk_obj(w, n, v) for n, v in disks]


@cmdlet("Get-Partition")
def get_partition(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    disks = _disks(w)
    numbers: set[int] | None = None
    if call.has("DiskNumber"):
        wanted = [int(n) for n in as_list(call.get("DiskNumber"))]
        # A query on MSFT_Partition.DiskNumber (cloudfoundry/bosh-agent: "No MSFT_Partition objects found with
        # property 'DiskNumber' equal to '4'.").
        _report_unmatched(ctx, call, "MSFT_Partition", "DiskNumber", wanted, (n for n, _ in disks))
        numbers = set(wanted)
    if call.has("Disk") or call.has("InputObject"):
        objs = as_list(call.get("Disk") or call.get("InputObject"))
        numbers = {int(o.get("Number")) for o in objs if isinstance(o, PSObj)}
        missing = numbers - {n for n, _ in disks}
        for n in sorted(missing):
            ctx.write_error(PE.cim_not_found("Get-Partition", "MSFT_Disk", "Number", str(n)))  # unconfirmed
    if numbers is not None:
        disks = [d for d in disks if d[0] in numbers]
    parts = [p for n, v in disks for p in _partitions(w, n, v)]
    if call.has("PartitionNumber"):
        want = {int(n) for n in as_list(call.get("PartitionNumber"))}
        parts = [p for p in parts if int(p.get("PartitionNumber")) in want]
    if call.has("DriveLetter"):
        letters = [str(x).upper()[:1] for x in as_list(call.get("DriveLetter"))]
        _report_unmatched(ctx, call, "MSFT_Partition", "DriveLetter", letters,
                          (p.get("DriveLetter").upper() for p in parts))
        parts = [p for p in parts if p.get("DriveLetter").upper() in letters]
    return parts


@cmdlet("Get-Volume")
def get_volume(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    vols = _volumes(w)
    if call.has("DiskImage"):
        out = []
        for img in as_list(call.get("DiskImage")):
            d = w.storage.disk_images.get(P.key(str(img.get("ImagePath")))) if isinstance(img, PSObj) else None
            if d is not None:
                out.append(iso_volume(w, d))
        return out
    if call.has("Partition"):
        out = []
        for p in as_list(call.get("Partition")):
            if not isinstance(p, PSObj):
                continue
            explicit = _explicit_partition(w, int(p.get("DiskNumber")), int(p.get("PartitionNumber")))
            if explicit is not None:
                vol = partition_volume(w, *explicit)
                if vol is not None:
                    out.append(vol)
                continue
            letter = str(p.get("DriveLetter")).upper()
            out += [v for v in vols if v.get("DriveLetter") == letter]
        return out
    if call.has("DriveLetter"):
        out = []
        for x in as_list(call.get("DriveLetter")):
            letter = str(x).upper()[:1]
            found = [v for v in vols if v.get("DriveLetter") == letter]
            if not found:
                ctx.write_error(_query_not_found(call, "MSFT_Volume", "DriveLetter", letter))
            out.extend(found)
        return out
    if call.has("FileSystemLabel"):
        pats = [str(x) for x in as_list(call.get("FileSystemLabel"))]
        return [v for v in vols if any(P.wildcard_match(p, v.get("FileSystemLabel")) for p in pats)]
    return vols


def _explicit_partition(w: World, disk_number: int, part_number: int) -> tuple[Vhd, Partition] | None:
    """(the VHD, the partition) of a partition of a mounted disk with an explicit layout."""
    m = next((m for m in w.storage.mounts.values() if m.disk_number == disk_number), None)
    if m is None:
        return None
    vhd = w.storage.vhds[m.vhd_key]
    layout = w.storage.layout_of(vhd)
    part = next((p for p in layout.partitions if p.number == part_number), None) if layout else None
    return (vhd, part) if part is not None else None


# The shapers and query error the image-build cmdlets (hvsim.storage.handlers.images) share.
disk_obj = _disk_obj
query_not_found = _query_not_found
storage_types = _storage_types
