"""The real Hyper-V error texts, ids and categories of VMs, checkpoints and the host.

Each factory says where its wording comes from. "unconfirmed" marks wording that could not be
checked against a real host or a public transcript; it is the most plausible Hyper-V phrasing.
The runtime appends the cmdlet's .NET type to ``error_id`` to form the FullyQualifiedErrorId,
except for ``bare`` errors whose id already is complete (CDXML cmdlets such as New-NetNat use the
cmdlet name, not a .NET type, as the suffix).
"""

from __future__ import annotations

from hvsim.guest.models.localized import integration_not_found
from hvsim.powershell.errors import PSError

VE = "Microsoft.HyperV.PowerShell.VirtualizationException"


# --- Hyper-V: VMs ------------------------------------------------------------------------------


def vm_not_found(name: str, error_id: str = "InvalidParameter", category: str = "InvalidArgument") -> PSError:
    """Get-VM/Start-VM... on a missing name (docs/facts.md; Remove-VM uses ObjectNotFound:
    multipass#2867 shows 'ObjectNotFound: (:) [Remove-VM]', 'ObjectNotFound,...RemoveVM')."""
    return PSError(f'Hyper-V was unable to find a virtual machine with name "{name}".',
                   error_id, category, target=name, exception_type=VE)


def start_out_of_memory(vm_name: str, vm_id: str, startup_mb: int) -> PSError:
    """Start-VM beyond host memory. Text, id and category from multipass#3345, minikube#13922/#18049
    transcripts: CategoryInfo 'FromStdErr: (:) [Start-VM], VirtualizationException' (no target),
    FullyQualifiedErrorId 'OutOfMemory,Microsoft.HyperV.PowerShell.Commands.StartVM'."""
    vid = vm_id.upper()
    msg = (
        f"'{vm_name}' failed to start.\n"
        f"Not enough memory in the system to start the virtual machine {vm_name}.\n"
        "Could not initialize memory: Not enough memory resources are available to complete this "
        "operation. (0x8007000E).\n"
        f"'{vm_name}' failed to start. (Virtual machine ID {vid})\n"
        f"Not enough memory in the system to start the virtual machine {vm_name} with ram size "
        f"{startup_mb} megabytes. (Virtual machine ID {vid})\n"
        f"'{vm_name}' could not initialize memory: Not enough memory resources are available to "
        f"complete this operation. (0x8007000E). (Virtual machine ID {vid})"
    )
    return PSError(msg, "OutOfMemory", "FromStdErr", exception_type=VE)


def start_attachment_failed(vm_name: str, vm_id: str, path: str, reason: str, code: str) -> PSError:
    """Start-VM when a disk cannot be opened. Shape from coreos-hyperv#2 and vagrant#5101
    ("Failed to Power on with Error ..." / "Failed to open attachment ..."); id/category
    'Unspecified'/NotSpecified as in MSLab#300 (unconfirmed for this exact cause)."""
    vid = vm_id.upper()
    msg = (
        f"'{vm_name}' failed to start.\n"
        f"Synthetic SCSI Controller (Instance ID 00000000-0000-0000-0000-000000000000): Failed to Power on "
        f"with Error '{reason}'.\n"
        f"Failed to open attachment '{path}'. Error: '{reason}'.\n"
        f"'{vm_name}' failed to start. (Virtual machine ID {vid})\n"
        f"'{vm_name}': Failed to open attachment '{path}'. Error: '{reason}' ({code}). "
        f"(Virtual machine ID {vid})"
    )
    return PSError(msg, "Unspecified", "NotSpecified", target=vm_name, exception_type=VE)


def invalid_state(vm_name: str, vm_id: str, device: str | None = None) -> PSError:
    """An operation the VM's current state forbids (Set-VMProcessor while Running...).
    The envelope "Failed to modify device 'Processor'." and category InvalidOperation follow
    LabBuilder#251; the reason sentence and the id InvalidState are unconfirmed."""
    reason = "The operation cannot be performed while the virtual machine is in its current state."
    if device:
        msg = (f"Failed to modify device '{device}'.\n{reason}\n"
               f"'{vm_name}' failed to modify device '{device}'. (Virtual machine ID {vm_id.upper()})")
    else:
        msg = reason
    return PSError(msg, "InvalidState", "InvalidOperation", target=vm_name, exception_type=VE)


def nested_not_supported(vm_name: str, vm_id: str, why: str) -> PSError:
    """ExposeVirtualizationExtensions refused: envelope, id NotSupported and category
    InvalidOperation from LabBuilder#251; the reason lines are unconfirmed."""
    if why == "host":
        reason = ("Nested virtualization is not supported on this host: the processor does not support "
                  "it with this version of Windows.")
    else:
        reason = ("Nested virtualization is not supported for this virtual machine configuration version. "
                  "Upgrade the configuration version of the virtual machine.")
    msg = (f"Failed to modify device 'Processor'.\nCannot modify property.\n"
           f"'{vm_name}' failed to modify device 'Processor'. (Virtual machine ID {vm_id.upper()})\n{reason}")
    return PSError(msg, "NotSupported", "InvalidOperation", target=vm_name, exception_type=VE)


def memory_change_running(vm_name: str, vm_id: str) -> PSError:
    """Changing static memory / turning dynamic memory on while Running (unconfirmed text)."""
    msg = (f"Failed to modify device 'Memory'.\n"
           "The operation cannot be performed while the virtual machine is in its current state.\n"
           f"'{vm_name}' failed to modify device 'Memory'. (Virtual machine ID {vm_id.upper()})")
    return PSError(msg, "InvalidState", "InvalidOperation", target=vm_name, exception_type=VE)


def gen2_boot_device(device: str) -> PSError:
    """New-VM -Generation 2 -BootDevice IDE/Floppy/LegacyNetworkAdapter (unconfirmed text)."""
    return PSError(
        f"The boot device '{device}' is not supported for generation 2 virtual machines.",
        "InvalidParameter", "InvalidArgument", target=device, exception_type=VE)


def unsupported_version(version: str) -> PSError:
    """New-VM -Version not supported by this host (unconfirmed text)."""
    return PSError(
        f"The configuration version '{version}' is not supported on this host. Use Get-VMHostSupportedVersion "
        "to list the supported versions.",
        "InvalidParameter", "InvalidArgument", target=version, exception_type=VE)


def integration_service_not_found(culture: str = "en-US", host_build: int = 26100) -> PSError:
    """Get-/Enable-VMIntegrationService -Name that matches no component (the German text and the
    record's shape from PlagueHO/LabBuilder#183: InvalidArgument, no target,
    VirtualizationInvalidArgumentException)."""
    return PSError(integration_not_found(culture, host_build), "InvalidParameter", "InvalidArgument",
                   exception_type="Microsoft.HyperV.PowerShell.VirtualizationInvalidArgumentException")


# --- Hyper-V and networking records as the transcript corpus shows them -----------------------------
# (tests/sim/transcripts/hyperv, networking). Hyper-V's VirtualizationException records carry no target
# object ("CategoryInfo : ObjectNotFound: (:) [Set-VM]"); only Get-VM's own name lookup names one. These
# supersede vm_not_found (for every cmdlet but Get-VM),
# switch_not_found (for a switch named as another cmdlet's argument),
# and cim_not_found, whose records differ from the transcripts.

VIAE = "Microsoft.HyperV.PowerShell.VirtualizationInvalidArgumentException"
VOFE = "Microsoft.HyperV.PowerShell.VirtualizationOperationFailedException"


def vm_name_not_found(name: str) -> PSError:
    """A VM named by -Name/-VMName to a Hyper-V cmdlet other than Get-VM: Get-VM's text, but
    'ObjectNotFound: (:)' and 'ObjectNotFound,<type>' (Set-VM/Set-VMMemory Easy-GPU-PV#449, Stop-VM
    minikube#16679, Remove-VM multipass#2867, Set-VMFirmware PS-AutoLab-Env#133, Checkpoint-VM
    Lability#294, Set-VMProcessor MicrosoftDocs/WSL#796)."""
    return PSError(f'Hyper-V was unable to find a virtual machine with name "{name}".', "ObjectNotFound",
                   "ObjectNotFound", exception_type=VE)


def firmware_generation1(vm_name: str) -> PSError:
    """Get-/Set-VMFirmware on a generation 1 VM: the text of AutomatedLab#18. InvalidArgument with no target,
    id InvalidParameter and VirtualizationInvalidArgumentException as a 2012 R2 host recorded it
    (hashicorp/vagrant#5509, whose older text read "A parameter is invalid. Generation 1 virtual machines do
    not support the VMFirmware cmdlets.  Use Get-VMBios and Set-VMBios instead.")."""
    return PSError(f'The Generation 1 virtual machine or snapshot "{vm_name}" does not support the VMFirmware '
                   "cmdlets. Use Get-VMBios and Set-VMBios instead.", "InvalidParameter", "InvalidArgument",
                   exception_type=VIAE)


def device_add_failed(vm_name: str, device: str = "Microsoft:Hyper-V:Virtual Hard Disk") -> PSError:
    """New-VM -VHDPath naming no virtual hard disk: "Adding the device 'Microsoft:Hyper-V:Virtual Hard Disk'
    to 'S1' failed." NotSpecified, 'Unspecified,...NewVM', no target (PS-AutoLab-Env#159)."""
    return PSError(f"Adding the device '{device}' to '{vm_name}' failed.", "Unspecified", "NotSpecified",
                   exception_type=VE)


def snapshot_not_matched() -> PSError:
    """No checkpoint matched: 'Unable to find a snapshot matching the given criteria.' ObjectNotFound,
    no target (Get-VMSnapshot in multipass#3918)."""
    return PSError("Unable to find a snapshot matching the given criteria.", "ObjectNotFound", "ObjectNotFound",
                   exception_type=VE)


def vm_adapter_not_found() -> PSError:
    """No VM network adapter matched -Name: 'No network adapter was found with the given criteria.'
    ObjectNotFound, no target (Connect-VMNetworkAdapter in Qonfused/OSX-Hyper-V#35)."""
    return PSError("No network adapter was found with the given criteria.", "ObjectNotFound", "ObjectNotFound",
                   exception_type=VE)


# --- checkpoints and stop (docs/facts.md "Checkpoints") ---------------------------------------------


def checkpoint_disabled(vm_name: str, vm_id: str) -> PSError:
    """Checkpoint-VM on a VM whose CheckpointType is Disabled. Unconfirmed text and id: no public transcript was
    found; the envelope follows Hyper-V's "<operation> failed. (Virtual machine ID ...)" records."""
    return PSError(f"Checkpoint operation for '{vm_name}' failed. (Virtual machine ID {vm_id.upper()})\n"
                   f"Checkpoints are disabled for '{vm_name}'.", "InvalidOperation", "InvalidOperation",
                   exception_type=VE)


def production_checkpoint_failed(vm_name: str, vm_id: str) -> PSError:
    """CheckpointType ProductionOnly when the guest cannot take a VSS snapshot. The first two lines, "Checkpoint
    operation failed." and "Production checkpoints cannot be created.", are a public transcript's (a Hyper-V
    2016 user's notes, vmicvss stopped in the guest; the same wording in a GPU-P farm's readme); the line naming
    the VM, the id and the category are unconfirmed."""
    return PSError("Checkpoint operation failed.\nProduction checkpoints cannot be created.\n"
                   f"Production checkpoints cannot be created for '{vm_name}'. (Virtual machine ID "
                   f"{vm_id.upper()})", "OperationFailed", "NotSpecified", exception_type=VE)


def production_fallback_warning(vm_name: str) -> str:
    """The warning of a Production checkpoint that falls back to a Standard one (unconfirmed wording; the
    fallback itself is documented: Set-VM -CheckpointType Production "if the production checkpoint fails a
    standard checkpoint is being created", VD checkpoints.md)."""
    return (f"Production checkpoints cannot be created for '{vm_name}'. A standard checkpoint was created "
            "instead.")


def checkpoint_no_space(vm_name: str, vm_id: str) -> PSError:
    """Checkpoint-VM when the volume cannot hold the checkpoint's files: "Checkpoint operation failed." with
    Windows' ERROR_DISK_FULL text "There is not enough space on the disk. (0x80070070)" (the Win32 text is
    Windows'; its arrangement in this record, the id and the category are unconfirmed)."""
    return PSError("Checkpoint operation failed.\n"
                   f"'{vm_name}' could not initiate a checkpoint operation: There is not enough space on the disk. "
                   f"(0x80070070). (Virtual machine ID {vm_id.upper()})", "OperationFailed", "NotSpecified",
                   exception_type=VE)


def stop_failed() -> PSError:
    """Stop-VM when the guest does not shut down: "Failed to stop." NotSpecified, no target,
    'OperationFailed,Microsoft.HyperV.PowerShell.Commands.StopVM' (MattHodge/PackerTemplates#18, Stop-VM -Force on
    Windows Server 2016)."""
    return PSError("Failed to stop.", "OperationFailed", "NotSpecified", exception_type=VE)


def shutdown_unavailable(vm_name: str) -> PSError:
    """Graceful Stop-VM when the Shutdown integration service is disabled or the guest OS is not up (no -Force).
    Unconfirmed text."""
    return PSError(f"The virtual machine '{vm_name}' could not be shut down because the shutdown integration "
                   "service is not enabled or is not responding.", "Unspecified", "NotSpecified", target=vm_name,
                   exception_type=VE)
