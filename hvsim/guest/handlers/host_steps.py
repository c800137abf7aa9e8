"""Host steps (templates/host/*.ps1): scripts labctl runs on the Hyper-V host itself, as the simulator models them.

A host step script declares itself on its first line, ``# labctl-host-step: <name> <version>``; hvsim.step_registry
registers the table here and dispatches Invoke-Command -ScriptBlock (no -VMName) to it.
"""

from __future__ import annotations

from typing import Any

from hvsim.core import paths as P
from hvsim.guest.errors import (
    ARG_EXC,
    MSG_SESSION_ENDED,
    MSG_VM_NOT_RUNNING,
    MSG_VMNAME_NOT_SINGLE,
    NEW_PSSESSION,
    PROTO_EXC,
    broken,
    open_failed,
)
from hvsim.guest.handlers.direct import MIB, modeled_size, open_problem
from hvsim.guest.handlers.step import HostStepFn, StepTable, custom_object
from hvsim.powershell.cmdlet import CmdletContext
from hvsim.powershell.errors import PSError
from hvsim.storage import errors as SE
from hvsim.storage import imaging
from hvsim.storage.models import Location

HOST_STEPS: StepTable[HostStepFn] = StepTable()


@HOST_STEPS.step("copy-from-guest")
def copy_from_guest(ctx: CmdletContext, args: list[Any]) -> list[Any]:
    """templates/host/copy-from-guest.ps1: New-PSSession -VMName, Copy-Item -FromSession, Remove-PSSession.

    The script runs with $ErrorActionPreference = 'Stop': the first failure ends it with that
    cmdlet's error (New-PSSession's open failures, Copy-Item's missing path, the host disk's limits).
    """
    world = ctx.world
    vm_name = str(args[0]) if args else ""
    credential = args[1] if len(args) > 1 else None
    path = str(args[2]) if len(args) > 2 else ""
    destination = str(args[3]) if len(args) > 3 else ""
    ctx.world.counters.add("host_step:copy-from-guest")
    vms = world.find_vms(vm_name)
    # The errors are New-PSSession's (the script's first command), not Invoke-Command's.
    if len(vms) != 1:
        raise PSError(MSG_VMNAME_NOT_SINGLE.format(vm_name), f"InvalidVMNameNotSingle,{NEW_PSSESSION}",
                      "InvalidArgument", exception_type=ARG_EXC, bare=True, terminating=True)
    vm = vms[0]
    if vm.state != "Running":
        raise PSError(MSG_VM_NOT_RUNNING.format(vm.name), f"InvalidVMState,{NEW_PSSESSION}", "InvalidArgument",
                      exception_type=ARG_EXC, bare=True, terminating=True)
    problem = open_problem(ctx, vm, credential)
    if problem is not None:
        message, exc = problem
        err = open_failed(vm.name, message, exc, prefix=exc == PROTO_EXC)
        err.terminating = True
        raise err
    src = P.normalize(path, cwd="C:\\Users\\Administrator\\Documents")
    data = None
    if vm.hard_drives and P.drive_of(src) == "C":
        data = world.storage.read_file(vm.hard_drives[0], P.inner(src))
    if data is None:
        # Copy-Item -FromSession resolves the path in the remote session.
        raise PSError(f"Cannot find path '{src}' because it does not exist.",
                      "PathNotFound,Microsoft.PowerShell.Commands.CopyItemCommand", "ObjectNotFound", target=src,
                      exception_type="System.Management.Automation.ItemNotFoundException", bare=True,
                      terminating=True)
    st = world.storage
    dst_loc = st.resolve(destination)
    entry = st.stat(dst_loc)
    if entry is not None and entry.is_dir:
        dst_loc = Location(dst_loc.path.rstrip("\\") + "\\" + P.leaf(src), dst_loc.vhd_key)
    if st.read(dst_loc) == data:
        return [custom_object(Step="copy-from-guest", Changed=False, RebootNeeded=False,
                              Facts={"Path": src, "Destination": dst_loc.path, "Size": len(data)})]
    # PowerShell remoting moves the file in chunks over the VMBus session; time by its modeled size
    # (an image tar carries the size of the real archive in its metadata).
    ctx.spend(vm.name, "copy_vm_file_per_mb", factor=max(modeled_size(data) / MIB, 0.001))
    if vm.state != "Running" or not vm.guest.is_ready(world, vm):
        raise broken(vm.name, MSG_SESSION_ENDED, PROTO_EXC)
    modeled = modeled_size(data)
    if dst_loc.vhd_key is None and modeled > len(data):
        # The real archive is the image's size: the host volume must hold that much, not the placeholder.
        old = st.stat(dst_loc)
        if modeled - (old.size if old else 0) > st.c_free:
            raise SE.disk_full(dst_loc.path, "CopyItemRemotelyFailed")
    st.write(dst_loc, data, error_id="CopyItemRemotelyFailed")  # disk space and folder rules apply
    if dst_loc.vhd_key is None and modeled > len(data):
        st.files[P.key(dst_loc.path)].size_override = modeled
    world.dirty = True
    return [custom_object(Step="copy-from-guest", Changed=True, RebootNeeded=False,
                          Facts={"Path": src, "Destination": dst_loc.path, "Size": len(data)})]


@HOST_STEPS.step("bcdboot")
def bcdboot(ctx: CmdletContext, args: list[Any]) -> list[Any]:
    """templates/host/bcdboot.ps1: ``bcdboot $WindowsPath /s $SystemPartition /f UEFI``, the native command's exit
    code and output lines (hvsim.storage.imaging.bcdboot has the rules)."""
    windows_path = str(args[0]) if args else ""
    system_partition = str(args[1]) if len(args) > 1 else ""
    ctx.world.counters.add("host_step:bcdboot")
    code, lines = imaging.bcdboot(ctx.world.storage, windows_path, system_partition)
    if code == 0:
        ctx.world.dirty = True
        ctx.spend("host", "bcdboot")
    return [custom_object(ExitCode=code, Output=lines)]
