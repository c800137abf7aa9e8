"""The real error texts, ids and categories of virtual switches, NAT and host addresses (hvsim.hyperv.errors
explains the conventions; the CDXML query errors are in hvsim.powershell.errors)."""

from __future__ import annotations

from hvsim.hyperv.errors import VE, VOFE
from hvsim.powershell import errors as PE
from hvsim.powershell.errors import PSError


def switch_not_found(name: str, error_id: str = "InvalidParameter") -> PSError:
    """Get-VMSwitch / Connect-VMNetworkAdapter with a missing switch. Text from the Hyper-V
    module resources ('Hyper-V was unable to find a virtual switch with name "X".')."""
    return PSError(f'Hyper-V was unable to find a virtual switch with name "{name}".',
                   error_id, "InvalidArgument", target=name, exception_type=VE)
NETNAT_CLASS = "root/StandardCimv2/MSFT_NetNat"  # NetNat's CDXML spells the namespace in lower case
NETIP_CLASS = "ROOT/StandardCimv2/MSFT_NetIPAddress"


def switch_argument_not_found(name: str) -> PSError:
    """A switch named as another cmdlet's argument (New-VM -SwitchName...) that does not exist: InvalidArgument,
    'InvalidParameter,...NewVM', no target (VirtualEngine/Lability#40)."""
    return PSError(f'Hyper-V was unable to find a virtual switch with name "{name}".', "InvalidParameter",
                   "InvalidArgument", exception_type=VE)


def switch_id_not_found() -> PSError:
    """Get-VMSwitch -Id of no switch: ObjectNotFound, no target (canonical/multipass#1323)."""
    return PSError("No Ethernet switch could be found matching the specified criteria.", "ObjectNotFound",
                   "ObjectNotFound", exception_type=VE)


def switch_in_use(name: str) -> PSError:
    """Remove-VMSwitch of a switch a running VM is connected to: three lines, ResourceBusy, ObjectInUse, the
    target the failed VMTask, VirtualizationOperationFailedException (AutomatedLab#164; the second line's
    wording also in eryph-org/eryph#252)."""
    return PSError("Failed while removing virtual Ethernet switch.\n"
                   f"The virtual switch '{name}' cannot be deleted because it is being used by running virtual "
                   "machines or assigned to child pools.\n"
                   "The operation cannot be performed while the object is in use.", "ObjectInUse", "ResourceBusy",
                   target="Microsoft.HyperV.PowerShell.VMTask", target_type="VMTask", exception_type=VOFE)


NETNAT_MAPPING_CLASS = "root/StandardCimv2/MSFT_NetNatStaticMapping"  # the CIM target (class spelling unconfirmed)


def static_mapping_exists() -> PSError:
    """Add-NetNatStaticMapping of an external port already mapped: ERROR_ALREADY_EXISTS through CIM, "The object
    already exists." (5010, the Win32 text New-NetIPAddress shows in WgServerforWindows#160). That WinNAT refuses
    the duplicate is documented (WinNAT capabilities and limitations blog, 2016); this record's id and category are
    unconfirmed."""
    return PE.cim_method_failed("The object already exists.", 5010, "Add-NetNatStaticMapping", "NotSpecified",
                                NETNAT_MAPPING_CLASS)
