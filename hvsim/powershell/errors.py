"""Errors that a simulated Windows host reports, shaped like PowerShell ErrorRecords.

A handler or the model raises PSError; the runtime completes its FullyQualifiedErrorId with
the running cmdlet's .NET type (``InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM``)
unless the error is ``bare`` (engine errors such as CommandNotFoundException have no suffix).
"""

from __future__ import annotations

from typing import Any

# ErrorCategory names as in System.Management.Automation.ErrorCategory.
CATEGORIES = (
    "NotSpecified", "OpenError", "CloseError", "DeviceError", "DeadlockDetected", "InvalidArgument",
    "InvalidData", "InvalidOperation", "InvalidResult", "InvalidType", "MetadataError",
    "NotImplemented", "NotInstalled", "ObjectNotFound", "OperationStopped", "OperationTimeout",
    "SyntaxError", "ParserError", "PermissionDenied", "ResourceBusy", "ResourceExists",
    "ResourceUnavailable", "ReadError", "WriteError", "FromStdErr", "SecurityError",
    "ProtocolError", "ConnectionError", "AuthenticationError", "LimitsExceeded", "QuotaExceeded",
    "NotEnabled",
)


class PSError(Exception):
    """An ErrorRecord: message, error id, category, target and .NET exception type."""

    def __init__(
        self,
        message: str,
        error_id: str,
        category: str = "NotSpecified",
        target: Any = None,
        exception_type: str = "System.Management.Automation.RuntimeException",
        *,
        bare: bool = False,
        terminating: bool = False,
        hresult: int = -2146233087,
        activity: str | None = None,
        target_type: str | None = None,
    ) -> None:
        if category not in CATEGORIES:
            raise ValueError(f"unknown ErrorCategory {category!r}")
        super().__init__(message)
        self.message = message
        self.error_id = error_id
        self.category = category
        self.target = target
        self.exception_type = exception_type
        self.bare = bare
        self.terminating = terminating
        self.hresult = hresult
        self.command_type: str | None = None  # filled by the runtime
        # CategoryInfo.Activity: the cmdlet's name, filled by the runtime unless the error names its own.
        self.activity = activity
        # CategoryInfo.TargetType when it is not the target's own type (a CIM key's UInt32, a FileInfo).
        self.target_type = target_type

    @property
    def fqid(self) -> str:
        """FullyQualifiedErrorId as PowerShell shows it."""
        if self.bare or not self.command_type:
            return self.error_id
        return f"{self.error_id},{self.command_type}"

    def __repr__(self) -> str:
        return f"PSError({self.fqid!r}, {self.message!r})"


PBE = "System.Management.Automation.ParameterBindingException"


def command_not_found(name: str) -> PSError:
    """The term 'X' is not recognized... (CommandNotFoundException)."""
    return PSError(
        # Windows PowerShell 5.1's text: the WinRM endpoint Microsoft.PowerShell runs 5.1.
        f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or "
        "operable program. Check the spelling of the name, or if a path was included, verify "
        "that the path is correct and try again.",
        "CommandNotFoundException",
        "ObjectNotFound",
        target=name,
        exception_type="System.Management.Automation.CommandNotFoundException",
        bare=True,
        terminating=True,
    )


def parameter_not_found(name: str) -> PSError:
    """A parameter cannot be found that matches parameter name 'X'."""
    return PSError(
        f"A parameter cannot be found that matches parameter name '{name}'.",
        "NamedParameterNotFound",
        "InvalidArgument",
        exception_type=PBE,
        terminating=True,
    )


# --- CIM cmdletization (CDXML cmdlets: the FQID suffix is the cmdlet name) -----------------------

CIM = "Microsoft.Management.Infrastructure.CimException"


def cim_not_found(cmdlet: str, class_name: str, what: str, value: str) -> PSError:
    """CDXML Get-* with no match: "No MSFT_X objects found with property 'P' equal to 'V'."
    ObjectNotFound, 'CmdletizationQuery_NotFound_P,Cmdlet'."""
    return PSError(
        f"No {class_name} objects found with property '{what}' equal to '{value}'.  Verify the value of the "
        "property and retry.", f"CmdletizationQuery_NotFound_{what},{cmdlet}", "ObjectNotFound",
        target=value, exception_type=CIM, bare=True)
CIM_JOB = "Microsoft.PowerShell.Cmdletization.Cim.CimJobException"


def cim_method_failed(message: str, win32_error: int, cmdlet: str, category: str, class_path: str) -> PSError:
    """A CDXML cmdlet whose CIM method failed: 'Windows System Error <n>,<Cmdlet>', CimException, the target the
    class ('(MSFT_NetNat:root/StandardCimv2/MSFT_NetNat)' in Virtualization-Documentation#361,
    '(MSFT_NetIPAddress:ROOT/StandardCimv2/MSFT_NetIPAddress)' in #338 and WgServerforWindows#160)."""
    return PSError(message, f"Windows System Error {win32_error},{cmdlet}", category,
                   target=class_path.rsplit("/", 1)[-1], target_type=class_path, exception_type=CIM, bare=True)


def cdxml_not_found(cmdlet: str, class_name: str, prop: str, value: str) -> PSError:
    """A CDXML query on one property whose value matched nothing: "No MSFT_X objects found with property 'P'
    equal to 'V'.  Verify the value of the property and retry." ObjectNotFound, the value as target,
    'CmdletizationQuery_NotFound_P,Cmdlet', CimJobException (PowerShell's QueryJobBase; Get-NetAdapter in
    PS-AutoLab-Env#199, Get-NetIPAddress in cloudfoundry/bosh-dns-release#6, Get-NetNat in PS-AutoLab-Env#256)."""
    return PSError(
        f"No {class_name} objects found with property '{prop}' equal to '{value}'.  Verify the value of the "
        "property and retry.", f"CmdletizationQuery_NotFound_{prop},{cmdlet}", "ObjectNotFound",
        target=value, exception_type=CIM_JOB, bare=True)


def cdxml_query_not_found(cmdlet: str, class_path: str, wql: str) -> PSError:
    """A CDXML query on several properties that matched nothing: "No matching MSFT_X objects found by CIM query
    for instances of the <namespace/class> class on the  CIM server: <WQL>. Verify query parameters and retry."
    (the empty server name leaves two spaces; PlagueHO/LoopbackAdapter#1, NetworkingDsc#283). No target and
    the id 'CmdletizationQuery_NotFound' without a property (PowerShell's QueryJobBase)."""
    class_name = class_path.rsplit("/", 1)[-1]
    return PSError(f"No matching {class_name} objects found by CIM query for instances of the {class_path} class "
                   f"on the  CIM server: {wql}. Verify query parameters and retry.",
                   f"CmdletizationQuery_NotFound,{cmdlet}", "ObjectNotFound", exception_type=CIM_JOB, bare=True)
