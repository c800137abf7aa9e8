"""VHD cmdlets: New-VHD, Get-VHD, Mount-VHD, Dismount-VHD, Resize-VHD."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from labctl.sim.cmdlets.base import BoundCall, CmdletContext, cmdlet
from labctl.sim.cmdlets.hvobjects import as_list, vhd_obj
from labctl.sim.errors import PSError
from labctl.sim.model import paths as P
from labctl.sim.model import texts as T

GB = 1024**3


def _full(ctx: CmdletContext, path: str) -> str:
    # Relative VHD paths resolve against the session's location (Documents over WinRM).
    return P.normalize(str(path))


@cmdlet("New-VHD")
def new_vhd(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    out = []
    for raw in as_list(call.get("Path")):
        path = _full(ctx, raw)
        if call.get("Differencing") or call.has("ParentPath"):
            vhd = w.storage.new_vhd(path, "Differencing", parent_path=str(call.get("ParentPath")),
                                    block_size=call.get("BlockSizeBytes"))
            ctx.spend("host", "new_vhd_differencing")
        elif call.get("Fixed"):
            vhd = w.storage.new_vhd(path, "Fixed", int(call.get("SizeBytes")), block_size=call.get("BlockSizeBytes"))
            ctx.spend("host", "new_vhd_fixed_per_gb", max(1.0, vhd.virtual_size / GB))
        else:
            vhd = w.storage.new_vhd(path, "Dynamic", int(call.get("SizeBytes")),
                                    block_size=call.get("BlockSizeBytes"))
            ctx.spend("host", "new_vhd_dynamic")
        w.dirty = True
        out.append(vhd_obj(w, vhd))
    return out


def _paths_or_disks(ctx: CmdletContext, call: BoundCall) -> list[str]:
    w = ctx.world
    if call.has("DiskNumber"):
        paths = []
        for n in as_list(call.get("DiskNumber")):
            m = next((m for m in w.storage.mounts.values() if m.disk_number == int(n)), None)
            if m is None:
                ctx.write_error(PSError(f"The disk number {n} does not correspond to a virtual hard disk.",
                                        "InvalidParameter", "InvalidArgument", target=n,
                                        exception_type=T.VE))  # unconfirmed text
            else:
                paths.append(w.storage.vhds[m.vhd_key].path)
        return paths
    if call.has("VMId"):
        vm = w.vms.get(str(call.get("VMId")))
        return list(vm.hard_drives) if vm else []
    return [_full(ctx, p) for p in as_list(call.get("Path"))]


@cmdlet("Get-VHD")
def get_vhd(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    out = []
    for path in _paths_or_disks(ctx, call):
        vhd = w.storage.get_vhd(path)
        if vhd is None:
            ctx.write_error(T.not_a_vhd(path))
            continue
        out.append(vhd_obj(w, vhd))
    return out


@cmdlet("Mount-VHD")
def mount_vhd(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    out = []
    for path in _paths_or_disks(ctx, call):
        try:
            w.storage.mount(path, no_drive_letter=bool(call.get("NoDriveLetter")),
                            read_only=bool(call.get("ReadOnly")))
        except PSError as exc:
            ctx.write_error(exc)
            continue
        w.dirty = True
        ctx.spend("host", "mount_vhd")
        if call.get("Passthru"):
            vhd = w.storage.get_vhd(path)
            assert vhd is not None
            out.append(vhd_obj(w, vhd))
    return out


@cmdlet("Dismount-VHD")
def dismount_vhd(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    if call.has("DiskNumber"):
        for n in as_list(call.get("DiskNumber")):
            try:
                w.storage.dismount(disk_number=int(n))
            except PSError as exc:
                ctx.write_error(exc)
                continue
            w.dirty = True
            ctx.spend("host", "dismount_vhd")
        return []
    for path in as_list(call.get("Path")):
        try:
            w.storage.dismount(path=_full(ctx, path))
        except PSError as exc:
            ctx.write_error(exc)
            continue
        w.dirty = True
        ctx.spend("host", "dismount_vhd")
    return []


@cmdlet("Resize-VHD")
def resize_vhd(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    out = []
    for path in as_list(call.get("Path")):
        full = _full(ctx, path)
        vhd = w.storage.get_vhd(full)
        if vhd is None:
            ctx.write_error(T.not_a_vhd(full))
            continue
        if w.storage.is_open(P.key(vhd.path)) and vhd.format == "VHD":
            ctx.write_error(T.mount_failed(vhd.path, T.IN_USE, T.IN_USE_CODE))
            continue
        size = w.storage.inner_used(vhd) + 645 * 1024**2 if call.get("ToMinimumSize") else int(call.get("SizeBytes"))
        w.storage.resize_vhd(full, size)
        w.dirty = True
        ctx.spend("host", "resize_vhd")
        if call.get("Passthru"):
            out.append(vhd_obj(w, vhd))
    return out
