"""PowerShell Direct and guest file copy: Invoke-Command, New/Get/Remove/Enter-PSSession, Copy-VMFile.

The host reaches a guest over VMBus, so these cmdlets act on the guest model, never on a network.
Errors follow Windows PowerShell 5.1 (the host's endpoint) and the Hyper-V module:

- the VM name/id must resolve to exactly one VM (InvalidVMNameNotSingle / InvalidVMIdNotSingle)
  and the VM must be Running (InvalidVMState), checked before any connection, as
  PSExecutionCmdlet.CreateHelpersForSpecifiedVMSession does;
- opening the session fails with "An error has occurred which Windows PowerShell cannot handle. A
  remote session might have ended." while the guest has not booted, failed setup or waits at OOBE,
  and with "The credential is invalid." for a wrong credential. Invoke-Command reports a failed open
  through its job as PSSessionStateBroken (OpenError, target the VM name); New-PSSession as
  PSSessionOpenFailed;
- the guest runs only the guest steps the simulator models (guest/handlers/steps.py); any other
  script is a terminating ScriptNotModelled error, never a silent success.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hvsim.core import paths as P
from hvsim.core.clock import THROTTLE_LIMIT
from hvsim.guest.errors import (
    ARG_EXC,
    DEVICE_NOT_READY,
    FILE_EXISTS,
    FILE_NOT_FOUND,
    MSG_INTERACTIVE_NOT_MODELLED,
    MSG_NO_PUSH_IN_SESSION,
    MSG_NO_SESSION_ID,
    MSG_NO_SESSION_INSTANCE,
    MSG_NO_SESSION_NAME,
    MSG_NOT_MODELLED,
    MSG_SESSION_ENDED,
    MSG_SESSION_NOT_OPEN,
    MSG_VM_NOT_RUNNING,
    MSG_VMID_INVALID,
    MSG_VMID_NOT_SINGLE,
    MSG_VMNAME_MULTIPLE,
    MSG_VMNAME_NO_VM,
    MSG_VMNAME_NOT_SINGLE,
    PATH_NOT_FOUND,
    PROTO_EXC,
    PSDIRECT_EXC,
    broken,
    copy_failed,
    open_failed,
)
from hvsim.guest.handlers.direct import MIB, open_problem
from hvsim.guest.handlers.step import parse_header
from hvsim.hyperv import errors as HE
from hvsim.powershell.cmdlet import BoundCall, CmdletContext, cmdlet
from hvsim.powershell.errors import PSError
from hvsim.powershell.values import PSEnum, PSObj, ScriptBlock
from hvsim.step_registry import find_host_step, find_step
from hvsim.storage.models import Location

PSSESSION_TYPE = "System.Management.Automation.Runspaces.PSSession"



@dataclass
class DirectSession:
    """A PowerShell Direct PSSession held by one runspace pool (ctx.session.ps_sessions)."""

    id: int
    name: str
    instance_id: str
    vm_id: str
    vm_name: str
    boot_count: int  # the guest boot it lives in: a reboot breaks it


# ---------------------------------------------------------------------------------------------
# Errors


def _not_modelled(script: str) -> PSError:
    header = parse_header(script)
    detail = (f" (header: labctl-step {header[0]} {header[1]})" if header
              else " (no '# labctl-step: <name> <version>' header)")
    return PSError(MSG_NOT_MODELLED + detail, "ScriptNotModelled", "NotImplemented",
                   exception_type="System.NotImplementedException", terminating=True)


# ---------------------------------------------------------------------------------------------
# Helpers


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _resolve_vms(ctx: CmdletContext, call: BoundCall) -> list[Any]:
    """VMs named by -VMName / -VMId; errors for the ones that do not resolve or do not run."""
    world = ctx.world
    found: list[Any] = []
    if call.has("VMId"):
        for raw in _as_list(call.get("VMId")):
            key = str(raw).lower()
            vm = next((v for v in world.vms.values() if str(v.id).lower() == key), None)
            if vm is None:
                ctx.write_error(PSError(MSG_VMID_NOT_SINGLE.format(key), "InvalidVMIdNotSingle",
                                        "InvalidArgument", exception_type=ARG_EXC))
                continue
            found.append(vm)
    else:
        for name in _as_list(call.get("VMName")):
            vms = world.find_vms(str(name))
            if len(vms) != 1:
                ctx.write_error(PSError(MSG_VMNAME_NOT_SINGLE.format(name), "InvalidVMNameNotSingle",
                                        "InvalidArgument", exception_type=ARG_EXC))
                continue
            found.append(vms[0])
    running = []
    for vm in found:
        if vm.state != "Running":
            ctx.write_error(PSError(MSG_VM_NOT_RUNNING.format(vm.name), "InvalidVMState",
                                    "InvalidArgument", exception_type=ARG_EXC))
            continue
        running.append(vm)
    return running


def _rebooted_by_fault(ctx: CmdletContext, vm: Any) -> bool:
    """The guest_reboot fault: the guest restarts under the running call."""
    if ctx.world.faults.check("guest_reboot", vm=vm.name) is None:
        return False
    vm.guest.reboot(ctx.world, vm)
    ctx.world.dirty = True
    return True


def _deserialized(value: Any) -> Any:
    """Objects come back from a remote runspace deserialized: type names get "Deserialized."."""
    if isinstance(value, PSObj):
        names = [n if n.startswith("Deserialized.") else f"Deserialized.{n}" for n in value.type_names]
        props = {k: _deserialized(v) for k, v in value.props.items()}
        return PSObj(names, props, value.to_string)
    if isinstance(value, list):
        return [_deserialized(v) for v in value]
    return value


def _tag(value: Any, vm_name: str, runspace_id: str, show: bool) -> Any:
    """Add the note properties Invoke-Command puts on remote output."""
    value = _deserialized(value)
    if isinstance(value, PSObj):
        value.props["PSComputerName"] = vm_name
        value.props["RunspaceId"] = uuid.UUID(runspace_id)
        value.props["PSShowComputerName"] = show
    return value


def _run_step(ctx: CmdletContext, vm: Any, script: str, args: list[Any], runspace_id: str,
              show: bool) -> Iterable[Any]:
    """Run a modeled guest step in ``vm``'s guest; its errors are the remote script's errors."""
    step = find_step(script)
    if step is None:
        raise _not_modelled(script)
    ctx.spend(vm.name, "ps_direct_command")
    if vm.guest.ps_direct_refusal(ctx.world, vm) is not None:
        # The world lock was released while the command ran: the VM may have gone meanwhile.
        ctx.write_error(broken(vm.name, MSG_SESSION_ENDED, PROTO_EXC))
        return []
    ctx.world.counters.add(f"guest_step:{step.name}")
    try:
        outputs = step.fn(ctx.world, vm, vm.guest, args)
    except PSError as err:
        err.target = err.target if err.target is not None else vm.name
        ctx.write_error(err)
        return []
    ctx.world.dirty = True
    out: list[Any] = []
    for o in outputs:
        if isinstance(o, PSError):
            # A step's non-terminating error in output order (e.g. a native command's stderr lines). A guest
            # cmdlet's own ErrorRecord (its activity is set) arrives as it was written: no target stays "(:)".
            if o.target is None and o.activity is None:
                o.target = vm.name
            ctx.write_error(o)
            continue
        out.append(_tag(o, vm.name, runspace_id, show))
    return out


def _script_text(call: BoundCall) -> str:
    sb = call.get("ScriptBlock")
    if isinstance(sb, ScriptBlock):
        return sb.text
    if call.has("FilePath"):
        raise PSError("The simulated host runs guest scripts given as -ScriptBlock only; -FilePath is not "
                      "modelled by the simulator.", "FilePathNotModelled", "NotImplemented",
                      exception_type="System.NotImplementedException", terminating=True)
    return str(sb or "")


def _session_state(ctx: CmdletContext, sess: DirectSession) -> str:
    vm = ctx.world.vms.get(sess.vm_id)
    if vm is None or vm.state != "Running" or vm.guest.boot_count != sess.boot_count:
        return "Broken"
    return "Opened"


_RUNSPACE_STATES = {"BeforeOpen": 0, "Opening": 1, "Opened": 2, "Closed": 3, "Closing": 4, "Broken": 5}


def _session_obj(ctx: CmdletContext, sess: DirectSession) -> PSObj:
    """A PSSession as Windows PowerShell shows one for a VM."""
    state = _session_state(ctx, sess)
    avail = "Available" if state == "Opened" else "None"
    return PSObj(
        [PSSESSION_TYPE, "System.Object"],
        {
            "State": PSEnum("System.Management.Automation.Runspaces.RunspaceState", state,
                            _RUNSPACE_STATES[state]),
            "IdleTimeout": -1,
            "OutputBufferingMode": PSEnum("System.Management.Automation.Runspaces.OutputBufferingMode",
                                          "None", 0),
            "DisconnectedOn": None,
            "ExpiresOn": None,
            "ComputerType": PSEnum("System.Management.Automation.Runspaces.TargetMachineType",
                                   "VirtualMachine", 1),
            "ComputerName": sess.vm_name,
            "ContainerId": None,
            "VMName": sess.vm_name,
            "VMId": uuid.UUID(sess.vm_id),
            "ConfigurationName": "",
            "InstanceId": uuid.UUID(sess.instance_id),
            "Id": sess.id,
            "Name": sess.name,
            "Availability": PSEnum("System.Management.Automation.Runspaces.RunspaceAvailability", avail,
                                   1 if avail == "Available" else 0),
            "ApplicationPrivateData": None,
            "Transport": "PSRP",
        },
        to_string=f"[PSSession]{sess.name}",
    )


def _lookup_session(ctx: CmdletContext, value: Any) -> DirectSession | None:
    """The pool's session for a -Session argument (the live object, a PSSession PSObj, or an Id).

    A real host keeps the PSSession object in its runspace; a client that got it back from
    New-PSSession passes its deserialized copy, which the simulator matches by InstanceId or Id.
    """
    sessions: dict[int, Any] = ctx.session.ps_sessions
    if isinstance(value, DirectSession):
        return sessions.get(value.id)
    if isinstance(value, PSObj):
        inst = value.get("InstanceId")
        if inst is not None:
            for s in sessions.values():
                if str(s.instance_id).lower() == str(inst).lower():
                    return s
            return None
        value = value.get("Id")
    if isinstance(value, int) and not isinstance(value, bool):
        return sessions.get(value)
    return None


# ---------------------------------------------------------------------------------------------
# Invoke-Command


@cmdlet("Invoke-Command")
def invoke_command(ctx: CmdletContext, call: BoundCall) -> list[Any]:
    """Run a modeled guest step in VMs over PowerShell Direct (-VMName/-VMId or -Session)."""
    targets = call.has("VMName") or call.has("VMId") or call.has("Session")
    if not targets and not (call.has("ComputerName") or call.has("ConnectionUri") or call.has("ContainerId")
                            or call.has("HostName") or call.get("AsJob")):
        host_step = find_host_step(_script_text(call))
        if host_step is not None:
            return host_step(ctx, _as_list(call.get("ArgumentList")))
    if not targets or call.has("ComputerName") or call.has("ConnectionUri") or call.has("ContainerId") \
            or call.has("HostName") or call.get("AsJob"):
        # In-process (-ScriptBlock alone) would run on the host itself: no host-side script model.
        raise PSError("The simulated host models Invoke-Command only against its virtual machines "
                      "(-VMName, -VMId, -Session from New-PSSession -VMName).", "ParameterSetNotModelled",
                      "NotImplemented", exception_type="System.NotImplementedException", terminating=True)
    script = _script_text(call)
    args = _as_list(call.get("ArgumentList"))
    show = not bool(call.get("HideComputerName"))
    out: list[Any] = []
    if call.has("Session"):
        for value in _as_list(call.get("Session")):
            sess = _lookup_session(ctx, value)
            if sess is None:
                ref = value.get("Id") if isinstance(value, PSObj) else value
                ctx.write_error(PSError(MSG_NO_SESSION_ID.format(ref),
                                        "RemoteRunspaceNotAvailableForSpecifiedSessionId",
                                        "InvalidArgument", target=ref, exception_type=ARG_EXC))
                continue
            state = _session_state(ctx, sess)
            if state != "Opened":
                ctx.write_error(PSError(
                    MSG_SESSION_NOT_OPEN.format(sess.name, sess.instance_id, sess.vm_name, state),
                    "InvokeCommandCommandInvalidSessionState", "InvalidOperation", target=sess.name,
                    exception_type="System.Management.Automation.Runspaces.InvalidRunspaceStateException"))
                continue
            vm = ctx.world.vms[sess.vm_id]
            if _rebooted_by_fault(ctx, vm):
                ctx.write_error(broken(vm.name, MSG_SESSION_ENDED, PROTO_EXC))
                continue
            out.extend(_run_step(ctx, vm, script, args, sess.instance_id, show))
        return out
    credential = call.get("Credential")
    limit = int(call.get("ThrottleLimit") or THROTTLE_LIMIT)
    # Invoke-Command runs in the VMs at the same time (up to -ThrottleLimit connections): on the timeline each
    # VM's work is a branch from where the call stands, and the call ends with the last of them.
    with ctx.world.clock.fan_out(limit) as fan:
        for vm in _resolve_vms(ctx, call):
            with fan.branch():
                problem = open_problem(ctx, vm, credential)
                if problem is not None:
                    ctx.write_error(broken(vm.name, *problem))
                    continue
                if _rebooted_by_fault(ctx, vm):
                    ctx.write_error(broken(vm.name, MSG_SESSION_ENDED, PROTO_EXC))
                    continue
                out.extend(_run_step(ctx, vm, script, args, str(uuid.uuid4()), show))
    ctx.idle(fan.wait_seconds)
    return out


# ---------------------------------------------------------------------------------------------
# PSSessions


@cmdlet("New-PSSession")
def new_pssession(ctx: CmdletContext, call: BoundCall) -> list[Any]:
    """Open PowerShell Direct sessions to VMs; they live as long as the pool and the guest boot."""
    if not (call.has("VMName") or call.has("VMId")):
        raise PSError("The simulated host models New-PSSession only for its virtual machines "
                      "(-VMName, -VMId).", "ParameterSetNotModelled", "NotImplemented",
                      exception_type="System.NotImplementedException", terminating=True)
    names = [str(n) for n in _as_list(call.get("Name"))]
    credential = call.get("Credential")
    out: list[Any] = []
    for index, vm in enumerate(_resolve_vms(ctx, call)):
        problem = open_problem(ctx, vm, credential)
        if problem is not None:
            message, exc = problem
            ctx.write_error(open_failed(vm.name, message, exc, prefix=exc == PROTO_EXC))
            continue
        if _rebooted_by_fault(ctx, vm):
            ctx.write_error(open_failed(vm.name, MSG_SESSION_ENDED, PROTO_EXC, prefix=True))
            continue
        sid = ctx.session.next_session_id
        ctx.session.next_session_id += 1
        sess = DirectSession(sid, names[index] if index < len(names) else f"Session{sid}",
                             str(uuid.uuid4()), str(vm.id), vm.name, vm.guest.boot_count)
        ctx.session.ps_sessions[sid] = sess
        out.append(_session_obj(ctx, sess))
    return out


def _select_sessions(ctx: CmdletContext, call: BoundCall) -> list[DirectSession]:
    """Sessions matching -Id/-Name/-InstanceId/-VMName/-VMId/-Session; errors for missing ones."""
    sessions: list[DirectSession] = list(ctx.session.ps_sessions.values())
    if call.has("Session"):
        picked = []
        for value in _as_list(call.get("Session")):
            sess = _lookup_session(ctx, value)
            if sess is not None:
                picked.append(sess)
        return picked
    if call.has("Id"):
        picked = []
        for sid in _as_list(call.get("Id")):
            match = [s for s in sessions if s.id == int(sid)]
            if not match:
                ctx.write_error(PSError(MSG_NO_SESSION_ID.format(sid),
                                        "RemoteRunspaceNotAvailableForSpecifiedSessionId",
                                        "InvalidArgument", target=sid, exception_type=ARG_EXC))
            picked.extend(match)
        return picked
    if call.has("Name"):
        picked = []
        for name in _as_list(call.get("Name")):
            match = [s for s in sessions if P.wildcard_match(str(name), s.name)]
            if not match and not P.has_wildcard(str(name)):
                ctx.write_error(PSError(MSG_NO_SESSION_NAME.format(name),
                                        "RemoteRunspaceNotAvailableForSpecifiedName",
                                        "InvalidArgument", target=name, exception_type=ARG_EXC))
            picked.extend(m for m in match if m not in picked)
        return picked
    if call.has("InstanceId"):
        picked = []
        for inst in _as_list(call.get("InstanceId")):
            match = [s for s in sessions if s.instance_id.lower() == str(inst).lower()]
            if not match and call.parameter_set == "InstanceId":
                # Only the local session table is searched (the -ComputerName... sets ask the remote end).
                ctx.write_error(PSError(MSG_NO_SESSION_INSTANCE.format(inst),
                                        "RemoteRunspaceNotAvailableForSpecifiedRunspaceId", "InvalidArgument",
                                        target=inst, exception_type=ARG_EXC, target_type="Guid"))
            picked.extend(m for m in match if m not in picked)
        return picked
    if call.has("VMName"):
        return [s for s in sessions
                if any(P.wildcard_match(str(n), s.vm_name) for n in _as_list(call.get("VMName")))]
    if call.has("VMId"):
        wanted = {str(i).lower() for i in _as_list(call.get("VMId"))}
        return [s for s in sessions if s.vm_id.lower() in wanted]
    return sessions


@cmdlet("Get-PSSession")
def get_pssession(ctx: CmdletContext, call: BoundCall) -> list[Any]:
    """This pool's PowerShell Direct sessions, with their current state (-State filters)."""
    if call.has("ComputerName") or call.has("ConnectionUri") or call.has("ContainerId"):
        raise PSError("The simulated host models Get-PSSession only for this pool's PowerShell Direct "
                      "sessions.", "ParameterSetNotModelled", "NotImplemented",
                      exception_type="System.NotImplementedException", terminating=True)
    wanted = str(call.get("State") or "All")
    out = []
    for sess in sorted(_select_sessions(ctx, call), key=lambda s: s.id):
        if wanted in ("All", _session_state(ctx, sess)):
            out.append(_session_obj(ctx, sess))
    return out


@cmdlet("Remove-PSSession")
def remove_pssession(ctx: CmdletContext, call: BoundCall) -> list[Any]:
    """Close and forget sessions (no output)."""
    if call.has("ComputerName") or call.has("ContainerId"):
        raise PSError("The simulated host models Remove-PSSession only for this pool's PowerShell Direct "
                      "sessions.", "ParameterSetNotModelled", "NotImplemented",
                      exception_type="System.NotImplementedException", terminating=True)
    for sess in _select_sessions(ctx, call):
        ctx.session.ps_sessions.pop(sess.id, None)
    return []


def _enter_vm(ctx: CmdletContext, call: BoundCall) -> Any:
    """The VM of Enter-PSSession -VMName/-VMId (errors written, None when there is none to enter)."""
    world = ctx.world
    if call.parameter_set == "VMId":
        key = str(call.get("VMId")).lower()
        vms = [v for v in world.vms.values() if str(v.id).lower() == key]
        if len(vms) != 1:
            ctx.write_error(PSError(MSG_VMID_INVALID, "InvalidVMId", "InvalidArgument", exception_type=ARG_EXC))
            return None
    else:
        vms = world.find_vms(str(call.get("VMName")))
        if len(vms) != 1:
            ctx.write_error(PSError(MSG_VMNAME_NO_VM if not vms else MSG_VMNAME_MULTIPLE,
                                    "InvalidVMNameNoVM" if not vms else "InvalidVMNameMultipleVM",
                                    "InvalidArgument", exception_type=ARG_EXC))
            return None
    vm = vms[0]
    if vm.state != "Running":
        ctx.write_error(PSError(MSG_VM_NOT_RUNNING.format(vm.name), "InvalidVMState", "InvalidArgument",
                                exception_type=ARG_EXC))
        return None
    return vm


@cmdlet("Enter-PSSession")
def enter_pssession(ctx: CmdletContext, call: BoundCall) -> list[Any]:
    """Enter-PSSession as the host's endpoint answers it (EnterPSSessionCommand, Windows PowerShell 5.1).

    -VMName/-VMId: the VM must resolve through Get-VM and run; a failed open is CreateRemoteRunspaceForVMFailed
    with the open's exception (PSDirectException for a refused credential, InvalidArgument; otherwise the
    PSRemotingDataStructureException, InvalidOperation), target none. Every other set is refused because the
    caller already is in a remote session. A session that opens would be pushed as an interactive session,
    which the simulator does not model (a terminating NotImplemented error, never a silent success).
    Logic from EnterPSSessionCommand (PowerShell/PowerShell's PushRunspaceCommand.cs, which 5.1 shares), records
    from the psdirect transcripts (tests/sim/transcripts/psdirect).
    """
    if call.parameter_set not in ("VMName", "VMId"):
        if call.parameter_set == "ContainerId":
            raise PSError("The simulated host models Enter-PSSession only for its virtual machines (-VMName, "
                          "-VMId).", "ParameterSetNotModelled", "NotImplemented",
                          exception_type="System.NotImplementedException", terminating=True)
        ctx.write_error(PSError(MSG_NO_PUSH_IN_SESSION, "RemoteHostDoesNotSupportPushRunspace", "InvalidArgument",
                                exception_type=ARG_EXC))
        return []
    vm = _enter_vm(ctx, call)
    if vm is None:
        return []
    problem = open_problem(ctx, vm, call.get("Credential"))
    if problem is None and _rebooted_by_fault(ctx, vm):
        problem = (MSG_SESSION_ENDED, PROTO_EXC)
    if problem is not None:
        message, exc = problem
        ctx.write_error(PSError(message, "CreateRemoteRunspaceForVMFailed",
                                "InvalidArgument" if exc == PSDIRECT_EXC else "InvalidOperation",
                                exception_type=exc))
        return []
    raise PSError(MSG_INTERACTIVE_NOT_MODELLED.format(vm.name), "InteractiveSessionNotModelled", "NotImplemented",
                  target=vm.name, exception_type="System.NotImplementedException", terminating=True)


# ---------------------------------------------------------------------------------------------
# Copy-VMFile


def _guest_location(world: Any, vm: Any, dest: str) -> tuple[str, Location] | None:
    """(vhd path, Location) of a C:\\ path inside the guest's system volume, or None."""
    if not vm.hard_drives:
        return None
    vhd = world.storage.get_vhd(vm.hard_drives[0])
    if vhd is None or P.drive_of(dest) != "C":
        return None
    return vhd.path, Location(dest, P.key(vhd.path))


@cmdlet("Copy-VMFile")
def copy_vm_file(ctx: CmdletContext, call: BoundCall) -> list[Any]:
    """Copy a host file into a running guest over the Guest Service Interface."""
    world = ctx.world
    src_raw = str(call.get("SourcePath"))
    dst_raw = str(call.get("DestinationPath"))
    force = bool(call.get("Force"))
    create_full_path = bool(call.get("CreateFullPath"))
    vms: list[Any] = []
    for value in _as_list(call.get("VM")):
        vm = world.vms.get(str(value.get("Id") if isinstance(value, PSObj) else getattr(value, "id", value)))
        if vm is not None:
            vms.append(vm)
    for name in _as_list(call.get("Name")):
        try:
            vms.extend(world.hv.require(str(name)))
        except PSError as err:
            ctx.write_error(err)
    for vm in vms:
        try:
            _copy_one(ctx, vm, src_raw, dst_raw, force, create_full_path)
        except PSError as err:
            ctx.write_error(err)
    return []


def _copy_one(ctx: CmdletContext, vm: Any, src_raw: str, dst_raw: str, force: bool,
              create_full_path: bool) -> None:
    world = ctx.world
    if vm.state != "Running":
        raise HE.invalid_state(vm.name, str(vm.id))
    src = P.normalize(src_raw)
    dst = P.normalize(dst_raw, cwd="C:\\")
    if not vm.integration_services.get("Guest Service Interface", False) \
            or not vm.guest.is_ready(world, vm):
        raise copy_failed(vm, src, dst, DEVICE_NOT_READY)
    try:
        data = world.storage.read(world.storage.resolve(src))
    except PSError:
        data = None
    if data is None:
        raise copy_failed(vm, src, dst, FILE_NOT_FOUND)
    target = _guest_location(world, vm, dst)
    if target is None:
        raise copy_failed(vm, src, dst, PATH_NOT_FOUND)
    vhd_path, loc = target
    entry = world.storage.stat(loc)
    if (entry is not None and entry.is_dir) or dst_raw.rstrip().endswith(("\\", "/")):
        # An existing folder (or a path written as one) receives the file under its own name.
        dst = dst.rstrip("\\") + "\\" + P.leaf(src)
        loc = Location(dst, loc.vhd_key)
        entry = world.storage.stat(loc)
    parent = world.storage.stat(Location(P.parent(dst), loc.vhd_key))
    if (parent is None or not parent.is_dir) and not create_full_path:
        raise copy_failed(vm, src, dst, PATH_NOT_FOUND)
    if entry is not None and not force:
        raise copy_failed(vm, src, dst, FILE_EXISTS)
    ctx.spend(vm.name, "copy_vm_file_per_mb", factor=max(len(data) / MIB, 0.001))
    if vm.state != "Running" or not vm.guest.is_ready(world, vm):
        raise copy_failed(vm, src, dst, DEVICE_NOT_READY)  # the guest went away during the copy
    world.storage.write_file(vhd_path, P.inner(dst), data, error_id="Unspecified")
    world.dirty = True


