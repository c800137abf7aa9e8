"""VHD cmdlets: New-VHD, Get-VHD, Mount-VHD, Dismount-VHD, Resize-VHD.

Their records follow the transcript corpus: no target object ("CategoryInfo : InvalidArgument: (:)
[Mount-VHD], VirtualizationException"), a missing file named as the caller wrote it ("'.\\test.vhd' is not
an existing virtual hard disk file."), the FullyQualifiedErrorId suffixed with
Microsoft.Vhd.PowerShell.Cmdlets.* (the catalog's types).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from hvsim.core import paths as P
from hvsim.hyperv import errors as HE
from hvsim.powershell.cmdlet import BoundCall, CmdletContext, cmdlet
from hvsim.powershell.errors import PSError
from hvsim.powershell.shaping import as_list
from hvsim.storage import errors as SE
from hvsim.storage.handlers.objects import vhd_obj
from hvsim.storage.models import Vhd

GB = 1024**3


def _full(ctx: CmdletContext, path: str) -> str:
    # Relative VHD paths resolve against the session's location (Documents over WinRM).
    return P.normalize(str(path))


def _untargeted(err: PSError) -> PSError:
    """The VHD cmdlets' VirtualizationException records carry no target object (PS-AutoLab-Env#159,
    openzfsonwindows#381, MSLab#386, minikube#18714, multipass#3353)."""
    err.target = None
    return err


def _not_a_vhd(typed: Any) -> PSError:
    # The path as the caller typed it, not resolved: "'.\test.vhd' is not an existing virtual hard disk file."
    return _untargeted(SE.not_a_vhd(str(typed)))


def _typed_paths(ctx: CmdletContext, call: BoundCall) -> list[tuple[Any, str]]:
    """(the path as the caller typed it, its full path) of each -Path."""
    return [(typed, _full(ctx, typed)) for typed in as_list(call.get("Path"))]


def _existing(ctx: CmdletContext, named: Iterable[tuple[Any, str]]) -> Iterator[tuple[str, Vhd]]:
    """(full path, VHD) of each named disk in turn; one that is not a VHD is a non-terminating error when its
    turn comes (interleaved with the errors of the operation on the others)."""
    for typed, path in named:
        vhd = ctx.world.storage.get_vhd(path)
        if vhd is None:
            ctx.write_error(_not_a_vhd(typed))
            continue
        yield path, vhd


def _changed(ctx: CmdletContext, duration: str, op: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """Run one VHD operation, ``op(*args, **kwargs)``: a refusal is a non-terminating error with no target; done,
    the host changed and the operation's modeled duration passes."""
    try:
        op(*args, **kwargs)
    except PSError as exc:
        ctx.write_error(_untargeted(exc))
        return False
    ctx.world.dirty = True
    ctx.spend("host", duration)
    return True


@cmdlet("New-VHD")
def new_vhd(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    out = []
    for _, path in _typed_paths(ctx, call):
        try:
            if call.get("Differencing") or call.has("ParentPath"):
                vhd = w.storage.new_vhd(path, "Differencing", parent_path=str(call.get("ParentPath")),
                                        block_size=call.get("BlockSizeBytes"))
                ctx.spend("host", "new_vhd_differencing", lane=path)
            elif call.get("Fixed"):
                vhd = w.storage.new_vhd(path, "Fixed", int(call.get("SizeBytes")),
                                        block_size=call.get("BlockSizeBytes"))
                ctx.spend("host", "new_vhd_fixed_per_gb", max(1.0, vhd.virtual_size / GB), lane=path)
            else:
                vhd = w.storage.new_vhd(path, "Dynamic", int(call.get("SizeBytes")),
                                        block_size=call.get("BlockSizeBytes"))
                ctx.spend("host", "new_vhd_dynamic", lane=path)
        except PSError as exc:
            raise _untargeted(exc) from None
        w.dirty = True
        out.append(vhd_obj(w, vhd))
    return out


def _paths_or_disks(ctx: CmdletContext, call: BoundCall) -> list[tuple[Any, str]]:
    """(the path as given, its full path) of each disk the call names."""
    w = ctx.world
    if call.has("DiskNumber"):
        paths = []
        for n in as_list(call.get("DiskNumber")):
            m = next((m for m in w.storage.mounts.values() if m.disk_number == int(n)), None)
            if m is None:
                ctx.write_error(PSError(f"The disk number {n} does not correspond to a virtual hard disk.",
                                        "InvalidParameter", "InvalidArgument",
                                        exception_type=HE.VE))  # unconfirmed text
            else:
                full = w.storage.vhds[m.vhd_key].path
                paths.append((full, full))
        return paths
    if call.has("VMId"):
        vm = w.vms.get(str(call.get("VMId")))
        return [(p, p) for p in vm.hard_drives] if vm else []
    return _typed_paths(ctx, call)


@cmdlet("Get-VHD")
def get_vhd(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    return [vhd_obj(ctx.world, vhd) for _, vhd in _existing(ctx, _paths_or_disks(ctx, call))]


@cmdlet("Mount-VHD")
def mount_vhd(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    out = []
    for path, _ in _existing(ctx, _paths_or_disks(ctx, call)):
        w.clock.touch(path)  # the timeline lane of the disk (hvsim/core/clock.py)
        mounted = _changed(ctx, "mount_vhd", w.storage.mount, path, no_drive_letter=bool(call.get("NoDriveLetter")),
                           read_only=bool(call.get("ReadOnly")))
        if mounted and call.get("Passthru"):
            vhd = w.storage.get_vhd(path)
            assert vhd is not None
            out.append(vhd_obj(w, vhd))
    return out


@cmdlet("Dismount-VHD")
def dismount_vhd(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    storage = ctx.world.storage
    if call.has("DiskNumber"):
        for n in as_list(call.get("DiskNumber")):
            _changed(ctx, "dismount_vhd", storage.dismount, disk_number=int(n))
        return []
    for path, _ in _existing(ctx, _typed_paths(ctx, call)):
        ctx.world.clock.touch(path)
        _changed(ctx, "dismount_vhd", storage.dismount, path=path)
    return []


def _resize_refused(ctx: CmdletContext, vhd: Any) -> bool:
    """Whether another holder of the file refuses the resize. A running VM may resize a VHDX it has attached
    (online resize); the VHD format cannot be resized while attached, a disk mounted on the host is held by
    its storage stack, and the parent of an open differencing disk is held open by the VM's worker process
    (multipass#3353 shows the refusal; which holder it was there is not posted)."""
    reasons = ctx.world.storage.open_reasons(P.key(vhd.path))
    if not reasons:
        return False
    return vhd.format == "VHD" or any(not r.startswith("vm:") for r in reasons)


@cmdlet("Resize-VHD")
def resize_vhd(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    out = []
    for full, vhd in _existing(ctx, _typed_paths(ctx, call)):
        if _resize_refused(ctx, vhd):
            ctx.write_error(SE.vhd_resize_in_use(vhd.path))
            continue
        size = w.storage.inner_used(vhd) + 645 * 1024**2 if call.get("ToMinimumSize") else int(call.get("SizeBytes"))
        if _changed(ctx, "resize_vhd", w.storage.resize_vhd, full, size) and call.get("Passthru"):
            out.append(vhd_obj(w, vhd))
    return out
