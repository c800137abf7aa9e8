"""Storage model objects -> PowerShell-shaped output (real .NET type names, property names, enums).

Shapes follow the Hyper-V module's VHD type (Microsoft.Vhd.PowerShell.VirtualHardDisk), the FileSystem
provider's System.IO.FileInfo/DirectoryInfo and the CIM class Win32_LogicalDisk. These are the storage
objects other surfaces' handlers show too (Get-CimInstance on the host lists the logical disks); the
Storage module's MSFT_Disk/Partition/Volume are shaped by its cmdlets (hvsim.storage.handlers.disks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hvsim.core import paths as P
from hvsim.powershell.shaping import cimv2, enum, when
from hvsim.powershell.values import Int64, PSEnum, PSObj, UInt32, UInt64

if TYPE_CHECKING:
    from hvsim.storage.models import Entry, Vhd
    from hvsim.world import World

VHD_TYPE = {"Unknown": 0, "Fixed": 2, "Dynamic": 3, "Differencing": 4}
VHD_FORMAT = {"Unknown": 0, "VHD": 2, "VHDX": 3, "VHDSet": 4}


def vhd_obj(world: World, vhd: Vhd) -> PSObj:
    """Microsoft.Vhd.PowerShell.VirtualHardDisk."""
    st = world.storage
    mount = st.mounts.get(P.key(vhd.path))
    props = {
        "ComputerName": world.host.computer_name,
        "Path": vhd.path,
        "VhdFormat": enum("Microsoft.Vhd.PowerShell.VhdFormat", VHD_FORMAT, vhd.format),
        "VhdType": enum("Microsoft.Vhd.PowerShell.VhdType", VHD_TYPE, vhd.vhd_type),
        "FileSize": UInt64(vhd.file_size),
        "Size": UInt64(vhd.virtual_size),
        "MinimumSize": UInt64(st.inner_used(vhd) + 645 * 1024**2) if vhd.partitioned else None,
        "LogicalSectorSize": UInt32(vhd.logical_sector_size),
        "PhysicalSectorSize": UInt32(vhd.physical_sector_size),
        "BlockSize": UInt32(vhd.block_size if vhd.vhd_type != "Fixed" else 0),
        "ParentPath": vhd.parent_path or "",
        "DiskIdentifier": vhd.disk_id.upper(),
        "FragmentationPercentage": 0,
        "Alignment": 1,
        "Attached": mount is not None or bool(st.open_by_vms(P.key(vhd.path))),
        "DiskNumber": mount.disk_number if mount else None,
        "IsPMEMCompatible": False,
        "AddressAbstractionType": 0,
        "Number": mount.disk_number if mount else None,
    }
    return PSObj(["Microsoft.Vhd.PowerShell.VirtualHardDisk", "System.Object"], props)


def file_obj(world: World, e: Entry) -> PSObj:
    """System.IO.FileInfo / DirectoryInfo with the provider's PS* note properties."""
    parent = P.parent(e.path)
    name = P.leaf(e.path)
    common = {
        "PSPath": f"Microsoft.PowerShell.Core\\FileSystem::{e.path}",
        "PSParentPath": f"Microsoft.PowerShell.Core\\FileSystem::{parent}" if len(e.path) > 3 else "",
        "PSChildName": name,
        "PSDrive": e.path[0],
        "PSProvider": "Microsoft.PowerShell.Core\\FileSystem",
        "PSIsContainer": e.is_dir,
        "Mode": "d-----" if e.is_dir else "-a----",
        "Name": name,
        "FullName": e.path,
        "Extension": P.extension(e.path),
        "CreationTime": when(e.created or world.boot_time),
        "LastWriteTime": when(e.modified or world.boot_time),
        "LastAccessTime": when(e.modified or world.boot_time),
        "Exists": True,
    }
    if e.is_dir:
        common.update({
            "Parent": parent if len(e.path) > 3 else None,
            "Root": e.path[:3],
            "Attributes": PSEnum("System.IO.FileAttributes", "Directory", 16),
        })
        return PSObj(["System.IO.DirectoryInfo", "System.IO.FileSystemInfo", "System.MarshalByRefObject",
                      "System.Object"], common, to_string=e.path)
    common.update({
        "Length": Int64(e.size),
        "DirectoryName": parent,
        "Directory": parent,
        "IsReadOnly": e.read_only,
        "Attributes": (PSEnum("System.IO.FileAttributes", "ReadOnly, Archive", 33) if e.read_only
                       else PSEnum("System.IO.FileAttributes", "Archive", 32)),
    })
    return PSObj(["System.IO.FileInfo", "System.IO.FileSystemInfo", "System.MarshalByRefObject",
                  "System.Object"], common, to_string=e.path)


def logical_disk_objs(w: World) -> list[PSObj]:
    """Win32_LogicalDisk: the host's C: and every mounted VHD volume with a drive letter."""
    st = w.storage
    out = [PSObj(cimv2("Win32_LogicalDisk"), {"DeviceID": "C:", "DriveType": UInt32(3), "FileSystem": "NTFS",
                                              "Size": UInt64(st.c_size), "FreeSpace": UInt64(st.c_free),
                                              "VolumeName": "", "PSComputerName": None})]
    for m in sorted(st.mounts.values(), key=lambda m: m.letter or ""):
        if m.letter:
            vhd = st.vhds[m.vhd_key]
            out.append(PSObj(cimv2("Win32_LogicalDisk"), {
                "DeviceID": f"{m.letter}:", "DriveType": UInt32(3), "FileSystem": "NTFS",
                "Size": UInt64(st.inner_size(vhd)), "FreeSpace": UInt64(st.inner_free(vhd)), "VolumeName": "",
                "PSComputerName": None}))
    return out
