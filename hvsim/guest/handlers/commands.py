"""Cmdlets the simulated guest runs from a typed command line (the `exec` step), bound against the catalog.

`labctl exec <vm> -- <command>` runs the user's text in the guest as at a prompt. The simulator has no
PowerShell engine, so it models a command line only when it is one cmdlet call with literal arguments:

- the words are split as PowerShell's argument mode does ('...' and "..." quote, a comma joins array
  elements, `-Name:value` binds a value to a parameter, a switch never takes the next word);
- `$null`, `$true`, `$false` and numbers are the values they name; any other variable, sub-expression or
  expandable string needs an engine and is refused as not modelled;
- the call is bound with the catalog's parameter sets (hvsim.powershell.binding), so a wrong parameter, a missing
  argument or an ambiguous set fails as it does in Windows PowerShell 5.1, and the validation attributes the
  catalog records (``validate``) answer before the mandatory null check, as the engine's binder runs them;
- the cmdlet's errors carry its own FullyQualifiedErrorId suffix and activity (they are the remote
  command's errors, not Invoke-Command's).

A cmdlet is modelled here when a handler is registered with ``@guest_cmdlet``; ``run_command_line`` returns
None for any other command so that its caller can refuse it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hvsim.docker.models import engine as C
from hvsim.powershell.catalog import CmdletSpec, load_catalog
from hvsim.powershell.commandline import Word, split_words
from hvsim.powershell.errors import PSError
from hvsim.powershell.values import PRESENT, PSEnum, PSObj

if TYPE_CHECKING:
    from hvsim.powershell.cmdlet import BoundCall
    from hvsim.world import World

# hvsim.powershell.binding imports the cmdlet handlers, which import the guest steps and so this module: it is
# imported where it is used, so that this module can be imported first.
PBVE = "System.Management.Automation.ParameterBindingValidationException"

GuestCmdletFn = Callable[["World", Any, Any, "BoundCall"], list[Any]]
GUEST_CMDLETS: dict[str, GuestCmdletFn] = {}  # catalog name (lower case) -> model

_NOT_IMPLEMENTED = "System.NotImplementedException"
# PowerShell reads these as the dash of a parameter name (SpecialCharacters.IsDash).
_DASHES = "-\u2013\u2014\u2015"
_PARAMETER = re.compile(rf"^[{_DASHES}](?P<name>[A-Za-z_?][\w-]*)(?P<colon>:)?(?P<rest>.*)$", re.DOTALL)
_NUMBER = re.compile(r"^[+-]?\d+$")


def guest_cmdlet(name: str) -> Callable[[GuestCmdletFn], GuestCmdletFn]:
    """Register the guest model of the catalog cmdlet ``name``."""

    def deco(fn: GuestCmdletFn) -> GuestCmdletFn:
        GUEST_CMDLETS[name.lower()] = fn
        return fn

    return deco


def not_modelled(command: str, why: str) -> PSError:
    return PSError(f"The simulated guest does not model this command line: {command} ({why}); it is not "
                   "modelled by the simulator.", "CommandNotModelled", "NotImplemented", target=command,
                   exception_type=_NOT_IMPLEMENTED, bare=True, terminating=True)


# ------------------------------------------------------------------- parsing (words: hvsim.powershell.commandline)


def _literal(word: Word, command: str) -> Any:
    """The value of one argument word."""
    if word.quoted == "'":
        return word.text
    if "$" in word.text or "(" in word.text or "@" in word.text[:1]:
        lowered = word.text.lower()
        if not word.quoted and lowered in ("$null", "$true", "$false"):
            return {"$null": None, "$true": True, "$false": False}[lowered]
        raise not_modelled(command, f"the argument {word.text} needs PowerShell to evaluate it")
    if not word.quoted and _NUMBER.match(word.text):
        return int(word.text)
    return word.text


def _values(words: list[Word], i: int, command: str) -> tuple[Any, int]:
    """An argument starting at ``words[i]`` (a comma-joined array when commas follow); the next index."""
    items = [_literal(words[i], command)]
    i += 1
    while i < len(words) and words[i].comma:
        if i + 1 >= len(words):
            raise not_modelled(command, "a comma ends the command line")
        items.append(_literal(words[i + 1], command))
        i += 2
    return (items if len(items) > 1 else items[0]), i


def _is_parameter(word: Word) -> bool:
    return not word.quoted and not word.comma and _PARAMETER.match(word.text) is not None


def parse_call(spec: CmdletSpec, words: list[Word], command: str) -> list[tuple[str | None, Any]]:
    """The (name or None, value) arguments of a cmdlet call, in order, as a client would send them."""
    from hvsim.powershell.binding import resolve_name

    raw: list[tuple[str | None, Any]] = []
    i = 0
    while i < len(words):
        word = words[i]
        m = _PARAMETER.match(word.text) if _is_parameter(word) else None
        if m is None:
            if word.comma:
                raise not_modelled(command, "a comma without an argument before it")
            value, i = _values(words, i, command)
            raw.append((None, value))
            continue
        name = m.group("name")
        if m.group("colon"):
            rest = m.group("rest")
            if rest:
                # -Name:a,b: the argument starts inside the parameter's word and may go on with commas.
                value, used = _values([Word(rest), *words[i + 1:]], 0, command)
                i += used
            elif i + 1 < len(words):
                value, i = _values(words, i + 1, command)
            else:
                raw.append((name, PRESENT))  # no argument at all (not $null): the binder's MissingArgument
                i += 1
                continue
            raw.append((name, value))
            continue
        param = resolve_name(spec, name)  # a wrong name fails here, as the binder does
        if param.is_switch or i + 1 >= len(words) or _is_parameter(words[i + 1]):
            raw.append((name, PRESENT))  # a switch; or a parameter missing its argument (MissingArgument)
            i += 1
            continue
        value, i = _values(words, i + 1, command)
        raw.append((name, value))
    return raw


# --------------------------------------------------------------------------------------------- binding


def _empty(value: Any) -> bool:
    if value is None or value == "":
        return True
    if isinstance(value, list):
        return not value or any(v is None or v == "" for v in value)
    return False


def validation_error(param: str) -> PSError:
    """[ValidateNotNullOrEmpty()] refusing an argument (text from MicrosoftDocs/windowsserverdocs#1339;
    for an array with a null element Windows words it differently: unconfirmed here)."""
    return PSError(f"Cannot validate argument on parameter '{param}'. The argument is null or empty. Provide an "
                   "argument that is not null or empty, and then try the command again.",
                   "ParameterArgumentValidationError", "InvalidData", exception_type=PBVE)


def bind_command(spec: CmdletSpec, raw: list[tuple[str | None, Any]]) -> BoundCall:
    """Bind as the engine does, with the catalog's validation attributes checked when an argument binds."""
    from hvsim.powershell.binding import bind, resolve_name

    named: list[tuple[str | None, Any]] = []
    for name, value in raw:
        if name is None:
            named.append((name, value))
            continue
        p = resolve_name(spec, name)
        if value is None and not p.is_switch:
            if "NotNullOrEmpty" in p.validate:
                raise validation_error(p.name)
            if any(s.mandatory for s in p.sets.values()):
                raise PSError(f"Cannot bind argument to parameter '{p.name}' because it is null.",
                              "ParameterArgumentValidationErrorNullNotAllowed", "InvalidData", exception_type=PBVE)
            continue  # $null for an optional parameter leaves it at its default
        if "NotNullOrEmpty" in p.validate and _empty(value):
            raise validation_error(p.name)
        named.append((name, value))
    try:
        call = bind(spec, named).finish()
    except PSError as err:
        # A positional $null/empty argument: the binder's mandatory check answers, but a validation attribute
        # of the parameter it bound to runs first.
        m = re.match(r"Cannot bind argument to parameter '(\w+)' because it is (null|an empty)", err.message)
        if m and err.error_id.startswith("ParameterArgumentValidationError"):
            bound = spec.parameters.get(m.group(1))
            if bound is not None and "NotNullOrEmpty" in bound.validate:
                raise validation_error(bound.name) from None
        raise
    for p in spec.parameters.values():
        if "NotNullOrEmpty" in p.validate and p.name in call.params and _empty(call.params[p.name]):
            raise validation_error(p.name)
    return call


def _stamp(err: PSError, spec: CmdletSpec) -> PSError:
    """The guest cmdlet's own id suffix and activity (the host's Invoke-Command must not claim them)."""
    if not err.bare and not err.command_type:
        err.command_type = spec.type
    if err.activity is None:
        err.activity = spec.name
    return err


def run_command_line(world: World, vm: Any, guest: Any, command: str) -> list[Any] | None:
    """Outputs and errors (PSError items) of a modelled guest cmdlet call, or None when not one."""
    words = split_words(command)
    if not words or words[0].quoted or words[0].comma:
        return None
    spec = load_catalog().get(words[0].text)
    if spec is None or spec.name.lower() not in GUEST_CMDLETS:
        return None
    try:
        call = bind_command(spec, parse_call(spec, words[1:], command))
        outputs = GUEST_CMDLETS[spec.name.lower()](world, vm, guest, call)
    except PSError as err:
        if err.error_id == "CommandNotModelled":
            raise
        # A terminating error of the statement; the user's text runs under 'Continue', so it is reported.
        err.terminating = False
        return [_stamp(err, spec)]
    action = str(call.get("ErrorAction") or "Continue")
    out: list[Any] = []
    for o in outputs:
        if isinstance(o, PSError):
            if action in ("SilentlyContinue", "Ignore"):
                continue
            _stamp(o, spec)
        out.append(o)
    return out


# --------------------------------------------------------------------------------------------- features

# The Get-WindowsFeature names of Windows Server 2022 Datacenter (roles, role services, features; compiled
# from public feature lists). Install-WindowsFeature refuses any other name (ArgumentNotValid ...): that is how
# Application-Server (removed in Windows Server 2016) or RSAT-Azure-Stack-HCI (Azure Stack HCI only) fail.
SERVER_2022_FEATURES = frozenset(n.lower() for n in (
    "AD-Certificate", "ADCS-Cert-Authority", "ADCS-Enroll-Web-Pol", "ADCS-Enroll-Web-Svc", "ADCS-Web-Enrollment",
    "ADCS-Device-Enrollment", "ADCS-Online-Cert", "AD-Domain-Services", "ADFS-Federation", "ADLDS", "ADRMS",
    "ADRMS-Server", "ADRMS-Identity", "DeviceHealthAttestationService", "DHCP", "DNS", "Fax",
    "FileAndStorage-Services", "File-Services", "FS-FileServer", "FS-BranchCache", "FS-Data-Deduplication",
    "FS-DFS-Namespace", "FS-DFS-Replication", "FS-Resource-Manager", "FS-VSS-Agent", "FS-iSCSITarget-Server",
    "iSCSITarget-VSS-VDS", "FS-NFS-Service", "FS-SyncShareService", "Storage-Services", "HostGuardianServiceRole",
    "Hyper-V", "MultiPointServerRole", "NPAS", "Print-Services", "Print-Server", "Print-Scan-Server", "Print-Internet",
    "Print-LPD-Service", "RemoteAccess", "DirectAccess-VPN", "Routing", "Web-Application-Proxy",
    "Remote-Desktop-Services", "RDS-Connection-Broker", "RDS-Gateway", "RDS-Licensing", "RDS-RD-Server",
    "RDS-Virtualization", "RDS-Web-Access", "VolumeActivation", "Web-Server", "Web-WebServer", "Web-Common-Http",
    "Web-Default-Doc", "Web-Dir-Browsing", "Web-Http-Errors", "Web-Static-Content", "Web-Http-Redirect",
    "Web-DAV-Publishing", "Web-Health", "Web-Http-Logging", "Web-Custom-Logging", "Web-Log-Libraries",
    "Web-ODBC-Logging", "Web-Request-Monitor", "Web-Http-Tracing", "Web-Performance", "Web-Stat-Compression",
    "Web-Dyn-Compression", "Web-Security", "Web-Filtering", "Web-Basic-Auth", "Web-CertProvider", "Web-Client-Auth",
    "Web-Digest-Auth", "Web-Cert-Auth", "Web-IP-Security", "Web-Url-Auth", "Web-Windows-Auth", "Web-App-Dev",
    "Web-Net-Ext", "Web-Net-Ext45", "Web-AppInit", "Web-ASP", "Web-Asp-Net", "Web-Asp-Net45", "Web-CGI",
    "Web-ISAPI-Ext", "Web-ISAPI-Filter", "Web-Includes", "Web-WebSockets", "Web-Ftp-Server", "Web-Ftp-Service",
    "Web-Ftp-Ext", "Web-Mgmt-Tools", "Web-Mgmt-Console", "Web-Mgmt-Compat", "Web-Metabase", "Web-Lgcy-Mgmt-Console",
    "Web-Lgcy-Scripting", "Web-WMI", "Web-Scripting-Tools", "Web-Mgmt-Service", "WDS", "WDS-Deployment",
    "WDS-Transport", "ServerEssentialsRole", "UpdateServices", "UpdateServices-WidDB", "UpdateServices-Services",
    "UpdateServices-DB", "NET-Framework-Features", "NET-Framework-Core", "NET-HTTP-Activation", "NET-Non-HTTP-Activ",
    "NET-Framework-45-Features", "NET-Framework-45-Core", "NET-Framework-45-ASPNET", "NET-WCF-Services45",
    "NET-WCF-HTTP-Activation45", "NET-WCF-MSMQ-Activation45", "NET-WCF-Pipe-Activation45", "NET-WCF-TCP-Activation45",
    "NET-WCF-TCP-PortSharing45", "BITS", "BITS-IIS-Ext", "BITS-Compact-Server", "BitLocker", "BitLocker-NetworkUnlock",
    "BranchCache", "NFS-Client", "Containers", "Data-Center-Bridging", "Direct-Play", "EnhancedStorage",
    "Failover-Clustering", "GPMC", "HostGuardian", "DiskIo-QoS", "Web-WHC", "Internet-Print-Client", "IPAM",
    "LPR-Port-Monitor", "ManagementOdata", "Server-Media-Foundation", "MSMQ", "MSMQ-Services", "MSMQ-Server",
    "MSMQ-Directory", "MSMQ-HTTP-Support", "MSMQ-Triggers", "MSMQ-Multicasting", "MSMQ-Routing", "MSMQ-DCOM",
    "Windows-Defender", "Multipath-IO", "MultiPoint-Connector", "MultiPoint-Connector-Services", "MultiPoint-Tools",
    "NLB", "NetworkVirtualization", "PNRP", "qWave", "CMAK", "Remote-Assistance", "RDC", "RSAT", "RSAT-Feature-Tools",
    "RSAT-Feature-Tools-BitLocker", "RSAT-Feature-Tools-BitLocker-RemoteAdminTool",
    "RSAT-Feature-Tools-BitLocker-BdeAducExt", "RSAT-Bits-Server", "RSAT-DataCenterBridging-LLDP-Tools",
    "RSAT-Clustering", "RSAT-Clustering-Mgmt", "RSAT-Clustering-PowerShell", "RSAT-Clustering-AutomationServer",
    "RSAT-Clustering-CmdInterface", "IPAM-Client-Feature", "RSAT-NLB", "RSAT-Shielded-VM-Tools", "RSAT-SNMP",
    "RSAT-SMS", "RSAT-Storage-Replica", "RSAT-System-Insights", "RSAT-WINS", "RSAT-Role-Tools", "RSAT-AD-Tools",
    "RSAT-AD-PowerShell", "RSAT-ADDS", "RSAT-AD-AdminCenter", "RSAT-ADDS-Tools", "RSAT-ADLDS", "RSAT-Hyper-V-Tools",
    "Hyper-V-Tools", "Hyper-V-PowerShell", "RSAT-RDS-Tools", "RSAT-RDS-Gateway", "RSAT-RDS-Licensing-Diagnosis-UI",
    "RDS-Licensing-UI", "UpdateServices-RSAT", "UpdateServices-API", "UpdateServices-UI", "RSAT-ADCS",
    "RSAT-ADCS-Mgmt", "RSAT-Online-Responder", "RSAT-ADRMS", "RSAT-DHCP", "RSAT-DNS-Server", "RSAT-Fax",
    "RSAT-File-Services", "RSAT-DFS-Mgmt-Con", "RSAT-FSRM-Mgmt", "RSAT-NFS-Admin", "RSAT-CoreFile-Mgmt",
    "RSAT-NetworkController", "RSAT-NPAS", "RSAT-Print-Services", "RSAT-RemoteAccess", "RSAT-RemoteAccess-Mgmt",
    "RSAT-RemoteAccess-PowerShell", "RSAT-VA-Tools", "WDS-AdminPack", "RPC-over-HTTP-Proxy",
    "Setup-and-Boot-Event-Collection", "Simple-TCPIP", "FS-SMB1", "FS-SMB1-CLIENT", "FS-SMB1-SERVER", "FS-SMBBW",
    "SMS", "SMS-Proxy", "SNMP-Service", "SNMP-WMI-Provider", "Storage-Replica", "System-DataArchiver",
    "System-Insights", "Telnet-Client", "TFTP-Client", "FabricShieldedTools", "WebDAV-Redirector",
    "Biometric-Framework", "Windows-Identity-Foundation", "Windows-Internal-Database", "PowerShellRoot", "PowerShell",
    "PowerShell-V2", "DSC-Service", "WindowsPowerShellWebAccess", "WAS", "WAS-Process-Model", "WAS-NET-Environment",
    "WAS-Config-APIs", "Search-Service", "Windows-Server-Backup", "Migration", "WindowsStorageManagementService",
    "Microsoft-Windows-Subsystem-Linux", "Windows-TIFF-IFilter", "WinRM-IIS-Ext", "WINS", "Wireless-Networking",
    "WoW64-Support", "XPS-Viewer",
))
# Hyper-V's management tools: installed at once, no restart (the simulator models them with the Hyper-V role).
HYPERV_TOOLS = ("RSAT-Hyper-V-Tools", "Hyper-V-Tools", "Hyper-V-PowerShell")
_MODELLED = {n.lower(): n for n in (*C.FEATURES, *HYPERV_TOOLS)}

_SM = "Microsoft.Windows.ServerManager.Commands"
# Enum member names as Install-WindowsFeature prints them (Restart Needed: No/Yes/Maybe; Exit Code: Success,
# NoChangeNeeded, SuccessRestartRequired, Failed, InvalidArgs); their numeric values are unconfirmed.
_RESTART = {"No": 0, "Yes": 1, "Maybe": 2}
_EXIT = {"Success": 0, "NoChangeNeeded": 1003, "SuccessRestartRequired": 3010, "InvalidArgs": 87, "Failed": 1}


def _operation_result(success: bool, restart: str, exit_code: str, features: list[str]) -> PSObj:
    """FeatureOperationResult, the object Install-WindowsFeature writes (also when it fails)."""
    results = [PSObj([f"{_SM}.FeatureResult", "System.Object"],
                     {"DisplayName": C.FEATURES.get(n, n), "Name": n, "RestartNeeded": n in C.FEATURES,
                      "SkipReason": PSEnum(f"{_SM}.SkipReason", "NotSkipped", 0), "Success": True},
                     to_string=C.FEATURES.get(n, n)) for n in features]
    return PSObj([f"{_SM}.FeatureOperationResult", "System.Object"],
                 {"Success": success, "RestartNeeded": PSEnum(f"{_SM}.RestartState", restart, _RESTART[restart]),
                  "FeatureResult": results, "ExitCode": PSEnum(f"{_SM}.FeatureOperationExitCode", exit_code,
                                                               _EXIT[exit_code])},
                 to_string=f"{_SM}.FeatureOperationResult")


def name_not_valid(raw: str) -> PSError:
    """An unknown feature name (MicrosoftDocs/MIMDocs#292, awsdocs/aws-directory-service-admin-guide#9)."""
    return PSError(f"ArgumentNotValid: The role, role service, or feature name is not valid: '{raw}'. The name was "
                   "not found.", "NameDoesNotExist", "InvalidArgument", target=raw, exception_type="System.Exception")


_UNMODELLED_PARAMETERS = ("Restart", "Vhd", "ConfigurationFilePath", "Source", "ComputerName", "Credential",
                          "LogPath", "WhatIf", "Confirm")


@guest_cmdlet("Install-WindowsFeature")
def install_windows_feature(world: World, vm: Any, guest: Any, call: BoundCall) -> list[Any]:
    """Install-WindowsFeature -Name <names> [-IncludeManagementTools] [-IncludeAllSubFeature] in the guest.

    Names are checked first (the first unknown one fails the call: nothing is installed, the result says
    InvalidArgs); then the roles the simulator models are installed with docker/models/engine.py (Containers and
    Hyper-V, pending until the next boot; Hyper-V's prerequisite check fails on a VM without virtualization
    extensions: nothing is installed, Restart Needed is Maybe) and Hyper-V's tools at once. Other valid names
    are refused as not modelled before anything changes.
    """
    for param in _UNMODELLED_PARAMETERS:
        if call.has(param):
            raise not_modelled(f"Install-WindowsFeature -{param}", "the simulated guest installs features in "
                               "the running guest only, without -Restart")
    names = [str(n) for n in call.get("Name") or []]
    for raw in names:
        if raw.strip().lower() not in SERVER_2022_FEATURES:
            return [name_not_valid(raw), _operation_result(False, "No", "InvalidArgs", [])]
    wanted: list[str] = []
    for raw in names:
        name = _MODELLED.get(raw.strip().lower())
        if name is None:
            raise not_modelled(f"Install-WindowsFeature -Name {raw}", "the simulator models the Containers and "
                               "Hyper-V features and Hyper-V's management tools only")
        if name not in wanted:
            wanted.append(name)
    if "Hyper-V" in wanted and call.get("IncludeManagementTools"):
        wanted.extend(t for t in HYPERV_TOOLS if t not in wanted)
    ch = C.host_of(guest)
    tools = [n for n in wanted if n in HYPERV_TOOLS and ch.feature_state(n) == "Available"]
    try:
        result = C.install_features(world, vm, guest, [n for n in wanted if n in C.FEATURES])
    except PSError as err:
        if err.error_id.startswith(C.HYPERV_PREREQ_ID):
            # The record's target is Server Manager's wrapper of the feature: "(Hyper-V:ServerComponentWrapper)".
            err.target_type = "ServerComponentWrapper"
        return [err, _operation_result(False, "Maybe", "Failed", [])]
    for name in tools:
        ch.features[name] = C.INSTALLED
    changed = [*result.changed, *tools]
    if not changed:
        return [_operation_result(True, "No", "NoChangeNeeded", [])]
    if result.changed:
        # Windows also warns "You must restart this server to finish the installation process."; a guest step
        # reports objects and errors only, so the warning is not modelled.
        return [_operation_result(True, "Yes", "SuccessRestartRequired", changed)]
    return [_operation_result(True, "No", "Success", changed)]
