"""The real errors of PowerShell Direct and Copy-VMFile: texts, ids, categories, exception types."""

from __future__ import annotations

from typing import Any

from hvsim.hyperv import errors as HE
from hvsim.powershell.errors import PSError

# RemotingErrorIdStrings.resx (PowerShell/PowerShell) and transcripts of Enter-PSSession -VMName.
MSG_SESSION_ENDED = ("An error has occurred which Windows PowerShell cannot handle. A remote session "
                     "might have ended.")
MSG_INVALID_CREDENTIAL = "The credential is invalid."
MSG_VMNAME_NOT_SINGLE = "The input VMName {0} does not resolve to a single virtual machine."
MSG_VMID_NOT_SINGLE = "The input VMId {0} does not resolve to a single virtual machine."
MSG_VM_NOT_RUNNING = "The virtual machine {0} is not in running state."
MSG_SESSION_NOT_OPEN = ("Because the session state for session {0}, {1}, {2} is not equal to Open, you "
                        "cannot run a command  in the session.  The session state is {3}.")
MSG_NO_SESSION_ID = "The remote session with the session ID {0} is not available."
MSG_NO_SESSION_NAME = "The remote session with the name {0} is not available."
MSG_NO_SESSION_INSTANCE = "Remote session is not available for {0}."  # RemoteRunspaceNotAvailableForSpecifiedRunspaceId
# Enter-PSSession resolves -VMName/-VMId with Get-VM itself and has its own texts (no VM name in them).
MSG_VMNAME_NO_VM = "The input VMName parameter does not resolve to any virtual machine."
MSG_VMNAME_MULTIPLE = "The input VMName parameter resolves to multiple virtual machines."
MSG_VMID_INVALID = "The input VMId parameter does not resolve to a single virtual machine."
# The host's WinRM endpoint is itself a remote session: its host (ServerRemoteHost) cannot push a runspace
# for -ComputerName/-ConnectionUri/-Session..., only for VM and container sessions.
MSG_NO_PUSH_IN_SESSION = ("You are currently in a Windows PowerShell PSSession and cannot use the Enter-PSSession "
                          "cmdlet to enter another PSSession.")
MSG_INTERACTIVE_NOT_MODELLED = ("The PowerShell Direct session to {0} opened, but an interactive session "
                                "(Enter-PSSession) is not modelled by the simulator; use Invoke-Command -VMName or "
                                "New-PSSession.")
MSG_NOT_MODELLED = ("The simulated guest runs only the labctl guest steps it models; this script is not "
                    "modelled by the simulator.")

# Copy-VMFile reasons (Win32 errors as Hyper-V prints them).
DEVICE_NOT_READY = "The device is not ready for use. (0x800710DF)"  # GSI off or guest not up
FILE_EXISTS = "The file exists. (0x80070050)"
FILE_NOT_FOUND = "The system cannot find the file specified. (0x80070002)"
PATH_NOT_FOUND = "The system cannot find the path specified. (0x80070003)"

PSDIRECT_EXC = "System.Management.Automation.Remoting.PSDirectException"
PROTO_EXC = "System.Management.Automation.Remoting.PSRemotingDataStructureException"
ARG_EXC = "System.ArgumentException"
NEW_PSSESSION = "Microsoft.PowerShell.Commands.NewPSSessionCommand"


def broken(vm_name: str, message: str, exception_type: str) -> PSError:
    """A session that could not open (or broke) as Invoke-Command's job reports it."""
    return PSError(message, "PSSessionStateBroken", "OpenError", target=vm_name,
                   exception_type=exception_type, bare=True)


# New-PSSession's open failures name the RemoteRunspace that failed as their target (its ToString is the
# type name; CategoryInfo shows "(System.Manageme....RemoteRunspace:RemoteRunspace)").
REMOTE_RUNSPACE = "System.Management.Automation.RemoteRunspace"


def open_failed(vm_name: str, message: str, exception_type: str, prefix: bool) -> PSError:
    """New-PSSession's failed open; data-structure errors carry "[vm] " in their details."""
    text = f"[{vm_name}] {message}" if prefix else message
    return PSError(text, "PSSessionOpenFailed", "OpenError", target=REMOTE_RUNSPACE,
                   exception_type=exception_type, bare=True, target_type="RemoteRunspace")


def copy_failed(vm: Any, src: str, dst: str, reason: str) -> PSError:
    """Copy-VMFile's failure envelope (shape from a Copy-VMFile transcript, microsoft/azure_arc#2091;
    id/category unconfirmed, as for other Hyper-V job failures)."""
    vid = str(vm.id).upper()
    msg = ("Failed to initiate copying files to the guest.\n"
           f"Failed to copy the source file '{src}' to the destination '{dst}' in the guest.\n"
           f"'{vm.name}' failed to initiate copying files to the guest: {reason}. (Virtual machine ID {vid})\n"
           f"'{vm.name}' failed to copy the source file '{src}' to the destination '{dst}' in the guest: "
           f"{reason}. (Virtual machine ID {vid})")
    return PSError(msg, "Unspecified", "NotSpecified", target=vm.name, exception_type=HE.VE)
