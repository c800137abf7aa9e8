"""Answer files (unattend.xml) as Windows Setup reads them at first boot of a sysprepped image.

Pure functions: ``validate(xml)`` parses the document with defusedxml, checks it the way Setup
does and returns an ``UnattendReport``: either the failure Windows would show (the pass, the
dialog text, a detailed reason and the setupact.log lines) or the settings the guest applies.
``report.to_dict()`` is JSON-able and never contains a password: passwords stay ``SecureText``
on the report and only the guest model turns them into salted hashes.

Which failure for which mistake (the dialog texts are the ones Windows shows; see
docs/facts.md "unattend.xml" and the quotes next to each constant):

- the file is not XML, has the wrong root or namespace, an unknown pass, a component without its
  identity attributes, a value that breaks the schema (a computer name over 15 characters,
  ``true``/``false`` misspelt, TCPIP interface children out of order): the *answer file is
  invalid*, reported for the first pass Setup processes from it (``specialize`` at first boot);
- an unknown component, an unknown setting, or a setting in a pass where it does not exist
  (ComputerName under oobeSystem): *a component or setting ... does not exist*, for that pass;
- a setting that parses but cannot be applied (a password whose encoding does not decode to the
  password plus its suffix, a malformed IP address): *the settings ... cannot be applied*;
- the same non-list setting twice: *a component or non-list setting is specified more than once*.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from hvsim.powershell.values import SecureText

UNATTEND_NS = "urn:schemas-microsoft-com:unattend"
WCM_NS = "http://schemas.microsoft.com/WMIConfig/2002/State"
DEFAULT_PATH = r"C:\Windows\Panther\unattend.xml"

# The seven configuration passes, in the order Setup runs them.
PASSES = ("windowsPE", "offlineServicing", "generalize", "specialize", "auditSystem", "auditUser",
          "oobeSystem")
# What the first boot of a generalized image (sysprep /generalize /oobe) processes, in order.
FIRST_BOOT_PASSES = ("specialize", "oobeSystem")

PUBLIC_KEY_TOKEN = "31bf3856ad364e35"  # noqa: S105 - the components' signing key token, not a secret
ARCHITECTURES = ("amd64", "x86", "arm64", "wow64")

# Dialog texts. File-level ("The answer file is invalid.") quotes the path; the setting-level
# variants, as users have reported them from the dialog, say "the unattend answer file" without
# the path and name the component. The duplicate-setting text is KB2425962's, translated from the
# Japanese article ("コンポーネントまたはリスト以外の設定が 1 回以上指定されています").
MSG_INVALID = ("Windows could not parse or process unattend answer file [{path}] for pass [{pass_}]. "
               "The answer file is invalid.")
MSG_NOT_EXIST = ("Windows could not parse or process the unattend answer file for pass [{pass_}]. "
                 "A component or setting specified in the answer file does not exist. The error was "
                 "detected while processing settings for component [{component}].")
MSG_CANNOT_APPLY = ("Windows could not parse or process the unattend answer file for pass [{pass_}]. "
                    "The settings specified in the answer file cannot be applied. The error was "
                    "detected while processing settings for component [{component}].")
MSG_DUPLICATE = ("Windows could not parse or process the unattend answer file for pass [{pass_}]. "
                 "A component or non-list setting is specified more than once in the answer file.")
# What setup.exe logs when the schema check fails (seen in setupact.log of a rejected file:
# "Error [0x060432] IBS  The provided unattend file is not valid; hrResult = 0x80220005").
HR_INVALID = "0x80220005"

_SHELL = "Microsoft-Windows-Shell-Setup"
_TCPIP = "Microsoft-Windows-TCPIP"
_DNS = "Microsoft-Windows-DNS-Client"
_LSM = "Microsoft-Windows-TerminalServices-LocalSessionManager"
_RDP = "Microsoft-Windows-TerminalServices-RDP-WinStationExtensions"
_INTL = "Microsoft-Windows-International-Core"

_OSS = frozenset({"offlineServicing", "specialize"})
_SOA = frozenset({"specialize", "oobeSystem", "auditSystem"})
_OA = frozenset({"oobeSystem", "auditSystem"})
_S = frozenset({"specialize"})
_O = frozenset({"oobeSystem"})
_PE = frozenset({"windowsPE"})
_SO = frozenset({"specialize", "oobeSystem"})

# Known components -> their top-level settings -> passes where each setting exists (Unattended
# Windows Setup Reference). A component missing here "does not exist"; so does a setting
# missing from its component's table, or present in a pass outside its set.
COMPONENTS: dict[str, dict[str, frozenset[str]]] = {
    _SHELL: {
        "ComputerName": _OSS,
        "UserAccounts": _OA,
        "TimeZone": _SOA,
        "AutoLogon": _SOA,
        "FirstLogonCommands": _O,
        "LogonCommands": _OA,
        "OOBE": _O,
        "RegisteredOwner": _SOA,
        "RegisteredOrganization": _SOA,
        "ProductKey": _S,
        "CopyProfile": _S,
        "DisableAutoDaylightTimeSet": _SOA,
        "Display": _SOA,
        "ShowWindowsLive": _S,
        "DoNotCleanTaskBar": _S,
        "BluetoothTaskbarIconEnabled": _SOA,
        "OEMInformation": _SOA,
        "OEMName": _SOA,
        "Themes": _SOA,
        "VisualEffects": _SOA,
        "WindowsFeatures": _SOA,
        "StartPanelOff": _SO,
        "TaskbarLinks": _SOA,
        "ConvertibleSlateModePromptPreference": _SOA,
    },
    _TCPIP: {
        "Interfaces": frozenset({"windowsPE", "specialize"}),
        "IcmpRedirectsEnabled": frozenset({"windowsPE", "specialize"}),
    },
    _DNS: {
        "Interfaces": _S,
        "DNSDomain": _S,
        "DNSSuffixSearchOrder": _S,
        "UseDomainNameDevolution": _S,
        "DomainNameDevolutionLevel": _S,
    },
    _LSM: {"fDenyTSConnections": _OSS},
    _RDP: {"UserAuthentication": _OSS, "SecurityLayer": _OSS},
    _INTL: {"InputLocale": _SO, "SystemLocale": _SO, "UILanguage": _SO, "UILanguageFallback": _SO,
            "UserLocale": _SO},
    "Microsoft-Windows-International-Core-WinPE": {
        "InputLocale": _PE, "SystemLocale": _PE, "UILanguage": _PE, "UILanguageFallback": _PE,
        "UserLocale": _PE, "SetupUILanguage": _PE, "LayeredDriver": _PE},
    "Microsoft-Windows-Security-SPP-UX": {"SkipAutoActivation": _S},
    "Microsoft-Windows-Security-SPP": {"SkipRearm": frozenset({"generalize"})},
    "Microsoft-Windows-Deployment": {
        "RunSynchronous": frozenset({"specialize", "auditSystem", "auditUser"}),
        "RunAsynchronous": frozenset({"specialize", "auditSystem", "auditUser"}),
        "Reseal": frozenset({"auditSystem", "auditUser", "oobeSystem"}),
        "ExtendOSPartition": frozenset({"specialize", "auditSystem", "oobeSystem"}),
        "Generalize": frozenset({"generalize"}),
    },
    "Microsoft-Windows-ServerManager-SvrMgrNc": {"DoNotOpenServerManagerAtLogon": _S},
    "Microsoft-Windows-IE-ESC": {"IEHardenAdmin": _S, "IEHardenUser": _S},
    "Microsoft-Windows-UnattendedJoin": {"Identification": _S},
    "Microsoft-Windows-Setup": {
        "DiskConfiguration": _PE, "ImageInstall": _PE, "UserData": _PE, "Diagnostics": _PE,
        "DynamicUpdate": _PE, "EnableFirewall": _PE, "EnableNetwork": _PE, "LogPath": _PE,
        "RunSynchronous": _PE, "RunAsynchronous": _PE, "UseConfigurationSet": _PE,
        "ComplianceCheck": _PE, "Restart": _PE},
    "Microsoft-Windows-PnpCustomizationsWinPE": {"DriverPaths": _PE},
    "Microsoft-Windows-PnpCustomizationsNonWinPE": {"DriverPaths": frozenset({"offlineServicing",
                                                                              "auditSystem"})},
    "Microsoft-Windows-PnpSysprep": {"PersistAllDeviceInstalls": frozenset({"generalize"}),
                                     "DoNotCleanUpNonPresentDevices": frozenset({"generalize"})},
    "Networking-MPSSVC-Svc": {
        "DomainProfile_EnableFirewall": _S, "PrivateProfile_EnableFirewall": _S,
        "PublicProfile_EnableFirewall": _S, "FirewallGroups": _S},
    "Microsoft-Windows-TerminalServices-LocalSessionManager-WinPE": {},
}

# Schema maxima of command strings. RunSynchronousCommand/Path: 259 characters (Unattended Setup
# reference; a 490-character Path was seen to make Setup reject the whole file with "Value is
# invalid"); Synchronous/LogonCommands CommandLine: 1024.
MAX_RUN_PATH = 259
MAX_COMMAND_LINE = 1024
# Children of a TCPIP <Interface>, in the order the schema's sequence requires.
TCPIP_INTERFACE_ORDER = ("Ipv4Settings", "Ipv6Settings", "Identifier", "UnicastIpAddresses", "Routes")
# Characters ComputerName may not contain (Shell-Setup ComputerName reference), besides spaces.
COMPUTER_NAME_FORBIDDEN = set("{|}~[\\]^':;<=>?@!\"#$%`()+/.,*&")
_MAC_DASHED = re.compile(r"^[0-9A-Fa-f]{2}(-[0-9A-Fa-f]{2}){5}$")
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}
_INTL_ATTRS = {"InputLocale": "input_locale", "SystemLocale": "system_locale",
               "UILanguage": "ui_language", "UserLocale": "user_locale"}


class _Reject(Exception):
    """Internal: stop validation with one failure (Setup stops at the first one too)."""

    def __init__(self, failure: UnattendFailure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


@dataclass(frozen=True)
class UnattendFailure:
    """Why Setup refuses the file: pass, kind, component/setting, dialog text, log detail."""

    pass_name: str
    kind: str  # invalid | not_exist | cannot_apply | duplicate
    message: str  # the dialog text
    reason: str  # what is wrong, for logs and for labctl's error message
    component: str | None = None
    setting: str | None = None  # a path like "UserAccounts/AdministratorPassword/Value"

    def to_dict(self) -> dict[str, Any]:
        return {"pass": self.pass_name, "kind": self.kind, "message": self.message,
                "reason": self.reason, "component": self.component, "setting": self.setting}

    def log_lines(self, path: str = DEFAULT_PATH) -> list[tuple[str, str]]:
        """(level, text) lines for setupact.log, shaped like Setup's own entries."""
        lines: list[tuple[str, str]] = []
        if self.kind == "invalid":
            source = self.setting or "unattend"
            lines.append(("Info", f"[setup.exe] SMI data results dump: Source = {source}"))
            lines.append(("Info", f"[setup.exe] SMI data results dump: Description = {self.reason}"))
            lines.append(("Error", "[0x060432] IBS    The provided unattend file is not valid; "
                                   f"hrResult = {HR_INVALID}"))
        else:
            where = f"{self.component}/{self.setting}" if self.setting else str(self.component)
            lines.append(("Error", f"[windeploy.exe] Unattend: {where}: {self.reason}"))
        lines.append(("Error", f"[windeploy.exe] {self.message}"))
        return lines


@dataclass
class InterfaceConfig:
    """One TCPIP/DNS-Client interface from the answer file."""

    identifier: str  # "00-15-5D-01-02-03" or an interface alias ("Ethernet")
    dhcp: bool | None = None
    addresses: list[str] = field(default_factory=list)  # "10.0.0.5/24"
    gateway: str | None = None
    dns_servers: list[str] = field(default_factory=list)

    @property
    def mac(self) -> str | None:
        """The identifier as 12 upper-case hex digits when it is a MAC address."""
        if _MAC_DASHED.match(self.identifier):
            return self.identifier.replace("-", "").upper()
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"identifier": self.identifier, "dhcp": self.dhcp, "addresses": list(self.addresses),
                "gateway": self.gateway, "dns_servers": list(self.dns_servers)}


@dataclass
class UnattendConfig:
    """The settings first boot applies, per pass merged into what the guest ends up with."""

    computer_name: str | None = None
    administrator_password: SecureText | None = None
    local_accounts: dict[str, SecureText] = field(default_factory=dict)
    time_zone: str | None = None
    rdp_enabled: bool | None = None  # from fDenyTSConnections (inverted)
    registered_owner: str | None = None
    registered_organization: str | None = None
    interfaces: list[InterfaceConfig] = field(default_factory=list)
    dns_domain: str | None = None
    first_logon_commands: list[str] = field(default_factory=list)
    auto_logon: bool = False
    hide_eula: bool = False
    input_locale: str | None = None
    system_locale: str | None = None
    ui_language: str | None = None
    user_locale: str | None = None
    # Networking-MPSSVC-Svc FirewallGroups: {"key", "group", "active", "profile"} as written; the guest
    # resolves each Group (an id such as @FirewallAPI.dll,-28752, or a display name in its own language).
    firewall_groups: list[dict[str, Any]] = field(default_factory=list)
    passes: list[str] = field(default_factory=list)

    def interface(self, identifier: str) -> InterfaceConfig:
        """The interface entry for ``identifier`` (TCPIP and DNS-Client entries merge)."""
        key = identifier.strip().upper()
        for iface in self.interfaces:
            if iface.identifier.strip().upper() == key:
                return iface
        iface = InterfaceConfig(identifier.strip())
        self.interfaces.append(iface)
        return iface

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, passwords reduced to whether they are set."""
        return {
            "computer_name": self.computer_name,
            "administrator_password_set": self.administrator_password is not None,
            "local_accounts": sorted(self.local_accounts),
            "time_zone": self.time_zone,
            "rdp_enabled": self.rdp_enabled,
            "registered_owner": self.registered_owner,
            "registered_organization": self.registered_organization,
            "interfaces": [i.to_dict() for i in self.interfaces],
            "dns_domain": self.dns_domain,
            "first_logon_commands": list(self.first_logon_commands),
            "auto_logon": self.auto_logon,
            "hide_eula": self.hide_eula,
            "input_locale": self.input_locale,
            "system_locale": self.system_locale,
            "ui_language": self.ui_language,
            "user_locale": self.user_locale,
            "firewall_groups": [dict(g) for g in self.firewall_groups],
            "passes": list(self.passes),
        }


@dataclass
class UnattendReport:
    """Outcome of validating an answer file for a set of passes."""

    valid: bool
    path: str
    failure: UnattendFailure | None = None
    config: UnattendConfig = field(default_factory=UnattendConfig)

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "path": self.path,
                "failure": self.failure.to_dict() if self.failure else None,
                "config": self.config.to_dict()}


# ---------------------------------------------------------------------------------------------
# Public helpers


def encode_password(password: str, suffix: str = "AdministratorPassword") -> str:
    """What Windows SIM writes for a hidden password: base64(UTF-16LE(password + suffix))."""
    return base64.b64encode((password + suffix).encode("utf-16-le")).decode("ascii")


def computer_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid ComputerName, or None. "*" asks for a random name."""
    if name == "*":
        return None
    if not name:
        return "ComputerName is empty."
    if len(name.encode("utf-8")) > 15:
        return f"ComputerName '{name}' is longer than 15 characters."
    if any(c.isspace() for c in name):
        return f"ComputerName '{name}' contains a space."
    bad = sorted({c for c in name if c in COMPUTER_NAME_FORBIDDEN})
    if bad:
        return f"ComputerName '{name}' contains the character(s) {''.join(bad)} that are not allowed."
    if name.isdigit():
        return f"ComputerName '{name}' consists only of digits."
    return None


def validate(xml: str | bytes, path: str = DEFAULT_PATH,
             passes: tuple[str, ...] = FIRST_BOOT_PASSES) -> UnattendReport:
    """Check an answer file as Setup does when it processes ``passes``; never raises."""
    try:
        config = _validate(xml, path, passes)
    except _Reject as rej:
        return UnattendReport(False, path, rej.failure)
    return UnattendReport(True, path, None, config)


# ---------------------------------------------------------------------------------------------
# The checker


def _local(tag: str) -> tuple[str, str]:
    """(namespace, local name) of an ElementTree tag."""
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


def _children(el: Element) -> list[Element]:
    return [c for c in el if isinstance(c.tag, str)]  # skip comments and processing instructions


def _text(el: Element) -> str:
    return (el.text or "").strip()


def _child_text(el: Element, name: str) -> str:
    """The text of ``el``'s child ``name`` in the unattend namespace ("" when there is none)."""
    child = el.find(f"{{{UNATTEND_NS}}}{name}")
    return _text(child) if child is not None else ""


class _Checker:
    """Walks one document; raises _Reject at the first problem."""

    def __init__(self, path: str, passes: tuple[str, ...]) -> None:
        self.path = path
        self.passes = passes
        # Schema errors are reported for the first pass Setup processes from this file.
        self.first_pass = passes[0] if passes else "specialize"
        self.config = UnattendConfig()

    # failures -------------------------------------------------------------------------------
    def invalid(self, reason: str, setting: str | None = None, component: str | None = None) -> _Reject:
        msg = MSG_INVALID.format(path=self.path, pass_=self.first_pass)
        return _Reject(UnattendFailure(self.first_pass, "invalid", msg, reason, component, setting))

    def not_exist(self, pass_: str, component: str, reason: str, setting: str | None = None) -> _Reject:
        msg = MSG_NOT_EXIST.format(pass_=pass_, component=component)
        return _Reject(UnattendFailure(pass_, "not_exist", msg, reason, component, setting))

    def cannot_apply(self, pass_: str, component: str, reason: str, setting: str | None = None) -> _Reject:
        msg = MSG_CANNOT_APPLY.format(pass_=pass_, component=component)
        return _Reject(UnattendFailure(pass_, "cannot_apply", msg, reason, component, setting))

    def duplicate(self, pass_: str, component: str, reason: str, setting: str | None = None) -> _Reject:
        msg = MSG_DUPLICATE.format(pass_=pass_)
        return _Reject(UnattendFailure(pass_, "duplicate", msg, reason, component, setting))

    # document ---------------------------------------------------------------------------------
    def document(self, root: Element) -> UnattendConfig:
        ns, name = _local(root.tag)
        if name != "unattend":
            raise self.invalid(f"The root element is <{name}>, expected <unattend>.")
        if ns != UNATTEND_NS:
            raise self.invalid(f"The root element's namespace is '{ns or '(none)'}', expected "
                               f"'{UNATTEND_NS}'.")
        settings_by_pass: list[tuple[str, Element]] = []
        seen_passes: set[str] = set()
        for child in _children(root):
            cns, cname = _local(child.tag)
            if cns != UNATTEND_NS:
                raise self.invalid(f"Element <{cname}> is not in the unattend namespace.")
            if cname in ("servicing", "offlineImage"):
                continue  # packages to service and the catalog reference: not settings
            if cname != "settings":
                raise self.invalid(f"Unexpected element <{cname}> under <unattend>.")
            pass_ = child.get("pass")
            if pass_ not in PASSES:
                raise self.invalid(f"<settings pass=\"{pass_}\"> is not a configuration pass; valid "
                                   f"passes are {', '.join(PASSES)}.", setting=f"settings[@pass={pass_}]")
            if pass_ in seen_passes:
                raise self.invalid(f"The pass {pass_} appears in more than one <settings> element.")
            seen_passes.add(pass_)
            settings_by_pass.append((pass_, child))
        # Schema-level checks cover every pass; semantic ones only the passes Setup runs now.
        components: list[tuple[str, str, Element]] = []
        for pass_, settings in settings_by_pass:
            seen: set[str] = set()
            for comp in _children(settings):
                cname = self.component_identity(pass_, comp)
                if cname in seen:
                    if pass_ in self.passes:
                        raise self.duplicate(pass_, cname, f"Component {cname} appears twice in the "
                                                           f"{pass_} pass.")
                    continue
                seen.add(cname)
                self.schema_check(pass_, cname, comp)
                components.append((pass_, cname, comp))
        for run_pass in self.passes:
            for pass_, cname, comp in components:
                if pass_ == run_pass:
                    self.component(pass_, cname, comp)
            if run_pass in seen_passes:
                self.config.passes.append(run_pass)
        return self.config

    def component_identity(self, pass_: str, comp: Element) -> str:
        ns, tag = _local(comp.tag)
        if ns != UNATTEND_NS or tag != "component":
            raise self.invalid(f"Unexpected element <{tag}> in the {pass_} pass; only <component> "
                               "elements belong under <settings>.")
        name = comp.get("name")
        if not name:
            raise self.invalid(f"A <component> in the {pass_} pass has no name attribute.",
                               setting="component")
        required = {"processorArchitecture": None, "publicKeyToken": PUBLIC_KEY_TOKEN,
                    "language": "neutral", "versionScope": "nonSxS"}
        for attr, expected in required.items():
            value = comp.get(attr)
            if value is None:
                raise self.invalid(f"Component {name} in the {pass_} pass lacks the required attribute "
                                   f"{attr}.", component=name, setting=f"component/@{attr}")
            if expected is not None and value != expected:
                raise self.invalid(f"Component {name} in the {pass_} pass has {attr}=\"{value}\", "
                                   f"expected \"{expected}\".", component=name,
                                   setting=f"component/@{attr}")
        arch = comp.get("processorArchitecture")
        if arch not in ARCHITECTURES:
            raise self.invalid(f"Component {name} has processorArchitecture=\"{arch}\"; valid values are "
                               f"{', '.join(ARCHITECTURES)}.", component=name,
                               setting="component/@processorArchitecture")
        return name

    # schema checks (any pass) -----------------------------------------------------------------
    def schema_check(self, pass_: str, cname: str, comp: Element) -> None:
        """Value syntax the schema enforces whatever the pass (Setup validates the whole file)."""
        for setting in _children(comp):
            sns, sname = _local(setting.tag)
            if sns != UNATTEND_NS:
                continue
            if cname == _SHELL and sname == "ComputerName":
                problem = computer_name_problem(_text(setting))
                if problem:
                    raise self.invalid(f"Value is invalid. {problem}", component=cname,
                                       setting=f"{cname}/ComputerName")
            if cname == _TCPIP and sname == "Interfaces":
                self.tcpip_schema(cname, setting)
            if cname == _LSM and sname == "fDenyTSConnections":
                self.boolean(cname, "fDenyTSConnections", setting)
            if cname == "Microsoft-Windows-Deployment" and sname in ("RunSynchronous", "RunAsynchronous"):
                self.command_lengths(cname, sname, setting, "Path", MAX_RUN_PATH)
            if cname == _SHELL and sname in ("FirstLogonCommands", "LogonCommands"):
                self.command_lengths(cname, sname, setting, "CommandLine", MAX_COMMAND_LINE)

    def command_lengths(self, cname: str, sname: str, setting: Element, field_name: str, limit: int) -> None:
        """Command strings have a schema maximum; one over it makes the whole file invalid."""
        for cmd in _children(setting):
            order_el = cmd.find(f"{{{UNATTEND_NS}}}Order")
            order = _text(order_el) if order_el is not None else "?"
            value_el = cmd.find(f"{{{UNATTEND_NS}}}{field_name}")
            value = (value_el.text or "") if value_el is not None else ""
            if len(value) > limit:
                cmd_tag = _local(cmd.tag)[1]
                raise self.invalid(
                    f"Value is invalid. {cmd_tag} {order}: {field_name} is {len(value)} characters long; "
                    f"the maximum is {limit}.", component=cname,
                    setting=f"{cname}/{sname}/{cmd_tag}/[Order=\"{order}\"]/{field_name}")

    def boolean(self, cname: str, path: str, el: Element) -> bool:
        value = _text(el)
        if value not in _BOOLEANS:  # xs:boolean is case-sensitive
            raise self.invalid(f"Value is invalid. '{value}' is not a boolean (true or false).",
                               component=cname, setting=f"{cname}/{path}")
        return _BOOLEANS[value]

    def tcpip_schema(self, cname: str, interfaces: Element) -> None:
        for iface in _children(interfaces):
            names = [_local(c.tag)[1] for c in _children(iface)]
            unknown = [n for n in names if n not in TCPIP_INTERFACE_ORDER]
            if unknown:
                raise self.invalid(f"Element <{unknown[0]}> is not valid in a TCPIP <Interface>.",
                                   component=cname, setting=f"{cname}/Interfaces/Interface/{unknown[0]}")
            order = [TCPIP_INTERFACE_ORDER.index(n) for n in names]
            if order != sorted(order):
                raise self.invalid(
                    "The children of a TCPIP <Interface> are out of order: found "
                    f"{', '.join(names)}; the schema requires the order "
                    f"{', '.join(TCPIP_INTERFACE_ORDER)}.",
                    component=cname, setting=f"{cname}/Interfaces/Interface")
            if "Identifier" not in names:
                raise self.invalid("A TCPIP <Interface> has no <Identifier>.", component=cname,
                                   setting=f"{cname}/Interfaces/Interface/Identifier")

    # semantic checks (passes Setup runs now) --------------------------------------------------
    def component(self, pass_: str, cname: str, comp: Element) -> None:
        table = COMPONENTS.get(cname)
        if table is None:
            raise self.not_exist(pass_, cname, f"Component {cname} does not exist.")
        seen: set[str] = set()
        for setting in _children(comp):
            sns, sname = _local(setting.tag)
            if sns != UNATTEND_NS:
                raise self.not_exist(pass_, cname, f"Setting <{sname}> is not in the unattend namespace.",
                                     sname)
            valid_passes = table.get(sname)
            if valid_passes is None:
                raise self.not_exist(pass_, cname, f"Setting {sname} does not exist in component {cname}.",
                                     sname)
            if pass_ not in valid_passes:
                raise self.not_exist(
                    pass_, cname,
                    f"Setting {sname} of {cname} does not exist in the {pass_} pass; it is valid in "
                    f"{', '.join(p for p in PASSES if p in valid_passes)}.", sname)
            if sname in seen:
                raise self.duplicate(pass_, cname, f"Setting {sname} of {cname} appears twice.", sname)
            seen.add(sname)
            self.apply(pass_, cname, sname, setting)

    def apply(self, pass_: str, cname: str, sname: str, el: Element) -> None:
        """Record the settings the guest model applies; check what only applying can find."""
        cfg = self.config
        if cname == _SHELL:
            if sname == "ComputerName":
                cfg.computer_name = _text(el)
            elif sname == "TimeZone":
                cfg.time_zone = _text(el)
            elif sname == "RegisteredOwner":
                cfg.registered_owner = _text(el)
            elif sname == "RegisteredOrganization":
                cfg.registered_organization = _text(el)
            elif sname == "UserAccounts":
                self.user_accounts(pass_, cname, el)
            elif sname == "AutoLogon":
                self.auto_logon(pass_, cname, el)
            elif sname == "FirstLogonCommands":
                for cmd in _children(el):
                    line = cmd.find(f"{{{UNATTEND_NS}}}CommandLine")
                    if line is not None and _text(line):
                        cfg.first_logon_commands.append(_text(line))
            elif sname == "OOBE":
                hide = el.find(f"{{{UNATTEND_NS}}}HideEULAPage")
                if hide is not None:
                    cfg.hide_eula = self.boolean(cname, "OOBE/HideEULAPage", hide)
        elif cname == _TCPIP and sname == "Interfaces":
            self.tcpip(pass_, cname, el)
        elif cname == _DNS:
            if sname == "Interfaces":
                self.dns(pass_, cname, el)
            elif sname == "DNSDomain":
                cfg.dns_domain = _text(el)
        elif cname == _LSM and sname == "fDenyTSConnections":
            cfg.rdp_enabled = not self.boolean(cname, sname, el)
        elif cname == "Networking-MPSSVC-Svc" and sname == "FirewallGroups":
            for entry in _children(el):
                group = entry.find(f"{{{UNATTEND_NS}}}Group")
                active = entry.find(f"{{{UNATTEND_NS}}}Active")
                profile = entry.find(f"{{{UNATTEND_NS}}}Profile")
                cfg.firewall_groups.append({
                    "key": entry.get(f"{{{WCM_NS}}}keyValue", ""),
                    "group": _text(group) if group is not None else "",
                    "active": self.boolean(cname, "FirewallGroup/Active", active) if active is not None else True,
                    "profile": _text(profile) if profile is not None else "all",
                })
        elif cname == _INTL:
            attr = _INTL_ATTRS.get(sname)
            if attr:  # UILanguageFallback only matters for partially localized languages
                setattr(cfg, attr, _text(el))

    def password(self, pass_: str, cname: str, el: Element, suffix: str, where: str) -> SecureText:
        """Decode a <Password>-shaped element (Value + PlainText)."""
        value_el = el.find(f"{{{UNATTEND_NS}}}Value")
        plain_el = el.find(f"{{{UNATTEND_NS}}}PlainText")
        value = (value_el.text or "") if value_el is not None else ""
        plain = True
        if plain_el is not None:
            plain = self.boolean(cname, f"{where}/PlainText", plain_el)
        if plain:
            return SecureText(value)
        # Hidden: base64 of UTF-16LE(password + suffix). Setup strips the suffix; a value that does
        # not end with it is not a password Setup can apply (it never says which part is wrong).
        try:
            raw = base64.b64decode(value.strip(), validate=True)
            decoded = raw.decode("utf-16-le")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise self.cannot_apply(pass_, cname, f"{where}/Value is not valid base64 of UTF-16LE text "
                                                  "although PlainText is false.", f"{where}/Value")
        if not decoded.endswith(suffix):
            raise self.cannot_apply(pass_, cname, f"{where}/Value does not decode to a password followed "
                                                  f"by \"{suffix}\" although PlainText is false.",
                                    f"{where}/Value")
        return SecureText(decoded[: -len(suffix)])

    def user_accounts(self, pass_: str, cname: str, el: Element) -> None:
        allowed = {"AdministratorPassword", "LocalAccounts", "DomainAccounts"}
        for child in _children(el):
            name = _local(child.tag)[1]
            if name not in allowed:
                raise self.not_exist(pass_, cname, f"Setting UserAccounts/{name} does not exist.",
                                     f"UserAccounts/{name}")
            if name == "AdministratorPassword":
                self.config.administrator_password = self.password(
                    pass_, cname, child, "AdministratorPassword", "UserAccounts/AdministratorPassword")
            elif name == "LocalAccounts":
                for acct in _children(child):
                    pw_el = acct.find(f"{{{UNATTEND_NS}}}Password")
                    acct_name = _child_text(acct, "Name")
                    if not acct_name:
                        raise self.cannot_apply(pass_, cname, "A LocalAccount has no Name.",
                                                "UserAccounts/LocalAccounts/LocalAccount/Name")
                    if pw_el is not None:
                        self.config.local_accounts[acct_name] = self.password(
                            pass_, cname, pw_el, "Password",
                            "UserAccounts/LocalAccounts/LocalAccount/Password")

    def auto_logon(self, pass_: str, cname: str, el: Element) -> None:
        enabled = el.find(f"{{{UNATTEND_NS}}}Enabled")
        pw = el.find(f"{{{UNATTEND_NS}}}Password")
        if pw is not None:
            self.password(pass_, cname, pw, "Password", "AutoLogon/Password")  # checked, not kept
        if enabled is not None:
            self.config.auto_logon = self.boolean(cname, "AutoLogon/Enabled", enabled)

    def interfaces(self, pass_: str, cname: str, interfaces: Element,
                   no_identifier: str) -> Iterator[tuple[Element, InterfaceConfig]]:
        """Each Interfaces/Interface element and the configuration of the interface its Identifier names; one
        without an Identifier is the component's ``no_identifier`` refusal."""
        for iface_el in _children(interfaces):
            ident = _child_text(iface_el, "Identifier")
            if not ident:
                raise self.cannot_apply(pass_, cname, no_identifier, "Interfaces/Interface/Identifier")
            yield iface_el, self.config.interface(ident)

    def tcpip(self, pass_: str, cname: str, interfaces: Element) -> None:
        for iface_el, iface in self.interfaces(pass_, cname, interfaces, "A TCPIP interface has an empty Identifier."):
            v4 = iface_el.find(f"{{{UNATTEND_NS}}}Ipv4Settings")
            if v4 is not None:
                dhcp = v4.find(f"{{{UNATTEND_NS}}}DhcpEnabled")
                if dhcp is not None:
                    iface.dhcp = self.boolean(cname, "Interfaces/Interface/Ipv4Settings/DhcpEnabled", dhcp)
            addrs = iface_el.find(f"{{{UNATTEND_NS}}}UnicastIpAddresses")
            if addrs is not None:
                for ip_el in _children(addrs):
                    text = _text(ip_el)
                    try:
                        net = ipaddress.ip_interface(text)
                    except ValueError:
                        raise self.cannot_apply(pass_, cname, f"UnicastIpAddresses value '{text}' is not an "
                                                              "IP address with a prefix length "
                                                              "(like 10.0.0.5/24).",
                                                "Interfaces/Interface/UnicastIpAddresses/IpAddress")
                    if "/" not in text:
                        raise self.cannot_apply(pass_, cname, f"UnicastIpAddresses value '{text}' has no "
                                                              "prefix length (like 10.0.0.5/24).",
                                                "Interfaces/Interface/UnicastIpAddresses/IpAddress")
                    if net.ip.is_multicast or net.ip.is_unspecified:
                        raise self.cannot_apply(pass_, cname, f"'{text}' is not a unicast address.",
                                                "Interfaces/Interface/UnicastIpAddresses/IpAddress")
                    iface.addresses.append(str(net))
                if iface.addresses and iface.dhcp is None:
                    iface.dhcp = False
            routes = iface_el.find(f"{{{UNATTEND_NS}}}Routes")
            if routes is not None:
                for route in _children(routes):
                    prefix = _child_text(route, "Prefix")
                    hop = _child_text(route, "NextHopAddress")
                    try:
                        ipaddress.ip_network(prefix, strict=False)
                        ipaddress.ip_address(hop)
                    except ValueError:
                        raise self.cannot_apply(pass_, cname, f"Route {prefix or '(no prefix)'} via "
                                                              f"{hop or '(no next hop)'} is not valid.",
                                                "Interfaces/Interface/Routes/Route")
                    if prefix in ("0.0.0.0/0", "0/0"):
                        iface.gateway = hop

    def dns(self, pass_: str, cname: str, interfaces: Element) -> None:
        for iface_el, iface in self.interfaces(pass_, cname, interfaces, "A DNS-Client interface has no Identifier."):
            order = iface_el.find(f"{{{UNATTEND_NS}}}DNSServerSearchOrder")
            if order is not None:
                for ip_el in _children(order):
                    text = _text(ip_el)
                    try:
                        ipaddress.ip_address(text)
                    except ValueError:
                        raise self.cannot_apply(pass_, cname, f"DNS server '{text}' is not an IP address.",
                                                "Interfaces/Interface/DNSServerSearchOrder/IpAddress")
                    iface.dns_servers.append(text)


def _validate(xml: str | bytes, path: str, passes: tuple[str, ...]) -> UnattendConfig:
    checker = _Checker(path, passes)
    try:
        root = SafeET.fromstring(xml)
    except DefusedXmlException as exc:
        # DTDs and entities are refused by defusedxml; Setup's parser does not expand them either.
        raise checker.invalid(f"The file is not acceptable XML: {type(exc).__name__}.")
    except SafeET.ParseError as exc:
        raise checker.invalid(f"The file is not well-formed XML: {exc}.")
    return checker.document(root)
