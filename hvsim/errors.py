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
