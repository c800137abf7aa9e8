"""labctl's own check of an answer file against the rules Windows Setup applies (docs/facts.md, "unattend.xml").

Windows rejects an answer file it cannot parse, a component or setting in a pass it does not belong to, or
malformed values, and then stops at "The answer file is invalid." with the VM stuck; this check catches the
same mistakes before a VM is built. It knows the components labctl's templates use (``COMPONENT_PASSES``) and
reports others as unknown, as Setup would for a misspelt one; extend the table when a template adds one.
"""

from __future__ import annotations

import ipaddress
import re
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from labctl.render.password import decode_unattend_password

NS = "urn:schemas-microsoft-com:unattend"
WCM = "http://schemas.microsoft.com/WMIConfig/2002/State"
PASSES = ("windowsPE", "offlineServicing", "generalize", "specialize", "auditSystem", "auditUser", "oobeSystem")
REDACTED = "*** redacted ***"

# Component -> passes it is valid in (Windows ADK unattend reference).
COMPONENT_PASSES: dict[str, tuple[str, ...]] = {
    "Microsoft-Windows-Shell-Setup": ("offlineServicing", "generalize", "specialize", "auditSystem",
                                      "auditUser", "oobeSystem"),
    "Microsoft-Windows-TCPIP": ("windowsPE", "specialize"),
    "Microsoft-Windows-DNS-Client": ("specialize",),
    "Microsoft-Windows-TerminalServices-LocalSessionManager": ("offlineServicing", "generalize", "specialize"),
    "Microsoft-Windows-TerminalServices-RDP-WinStationExtensions": ("generalize", "specialize"),
    "Networking-MPSSVC-Svc": ("specialize",),
    "Microsoft-Windows-Deployment": ("offlineServicing", "generalize", "specialize", "auditSystem",
                                     "auditUser", "oobeSystem"),
    "Microsoft-Windows-International-Core": ("specialize", "oobeSystem"),
    "Microsoft-Windows-International-Core-WinPE": ("windowsPE",),
    "Microsoft-Windows-Setup": ("windowsPE",),
    "Microsoft-Windows-UnattendedJoin": ("specialize",),
    "Microsoft-Windows-ServerManager-SvrMgrNc": ("specialize",),
    "Microsoft-Windows-Security-SPP-UX": ("specialize",),
    "Microsoft-Windows-IE-ESC": ("specialize",),
}

# (component, setting) -> passes, for settings narrower than their component.
SETTING_PASSES: dict[tuple[str, str], tuple[str, ...]] = {
    ("Microsoft-Windows-Shell-Setup", "ComputerName"): ("offlineServicing", "specialize"),
    ("Microsoft-Windows-Shell-Setup", "UserAccounts"): ("auditSystem", "oobeSystem"),
    ("Microsoft-Windows-Shell-Setup", "TimeZone"): ("specialize", "oobeSystem", "auditSystem"),
    ("Microsoft-Windows-Shell-Setup", "AutoLogon"): ("specialize", "oobeSystem", "auditSystem"),
    ("Microsoft-Windows-Shell-Setup", "FirstLogonCommands"): ("oobeSystem",),
    ("Microsoft-Windows-Shell-Setup", "LogonCommands"): ("oobeSystem",),
    ("Microsoft-Windows-Shell-Setup", "OOBE"): ("oobeSystem",),
    ("Microsoft-Windows-Deployment", "RunSynchronous"): ("auditUser", "specialize"),
    ("Microsoft-Windows-Deployment", "RunAsynchronous"): ("auditUser", "specialize"),
}

# List items Setup only accepts with wcm:action (and, for keyed lists, wcm:keyValue).
LIST_ITEMS: dict[str, bool] = {  # element -> needs keyValue
    "Interface": False, "IpAddress": True, "Route": False, "RunSynchronousCommand": False,
    "SynchronousCommand": False, "FirewallGroup": True, "LocalAccount": False,
}
BOOLEAN_SETTINGS = {
    "PlainText", "DhcpEnabled", "fDenyTSConnections", "Active", "HideEULAPage", "HideLocalAccountScreen",
    "HideOEMRegistrationScreen", "HideOnlineAccountScreens", "HideWirelessSetupInOOBE", "RouterDiscoveryEnabled",
    "EnableAdapterDomainNameRegistration", "DisableDynamicUpdate", "SkipMachineOOBE", "SkipUserOOBE", "Enabled",
}
TCPIP_INTERFACE_ORDER = ("Ipv4Settings", "Ipv6Settings", "Identifier", "UnicastIpAddresses", "Routes")
COMPONENT_ATTRS = {"processorArchitecture": ("amd64", "x86", "arm64", "wow64"),
                   "publicKeyToken": ("31bf3856ad364e35",), "language": ("neutral",),
                   "versionScope": ("nonSxS",)}
_MAC_RE = re.compile(r"^[0-9A-Fa-f]{2}(-[0-9A-Fa-f]{2}){5}$")
_COMPUTER_NAME_RE = re.compile(r"^[A-Za-z0-9-]{1,15}$")
# Language tags as Setup takes them ("en-US", "de-DE", "sr-Latn-RS"); InputLocale also takes "0409:00000409".
_LOCALE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{4})?(-([A-Z]{2}|[0-9]{3}))?$")
_INPUT_ID_RE = re.compile(r"^[0-9A-Fa-f]{4}:([0-9A-Fa-f]{8}|\{[0-9A-Fa-f-]{36}\}\{[0-9A-Fa-f-]{36}\})$")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _text(el: Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def _child(el: Element, name: str) -> Element | None:
    return el.find(f"{{{NS}}}{name}")


def check_unattend(xml_text: str, *, allow_redacted: bool = False) -> list[str]:
    """Every rule the answer file breaks (empty when Windows Setup would accept it). Messages never hold a
    password or its encoding."""
    try:
        root = SafeET.fromstring(xml_text)
    except (SafeET.ParseError, DefusedXmlException) as exc:
        return [f"not well-formed XML: {exc}"]
    problems: list[str] = []
    if root.tag != f"{{{NS}}}unattend":
        return [f"root element must be <unattend xmlns=\"{NS}\">, found <{_local(root.tag)}> "
                f"in namespace {_ns(root.tag) or '(none)'!r}"]
    seen_passes: set[str] = set()
    for settings in root:
        if _local(settings.tag) != "settings" or _ns(settings.tag) != NS:
            if _local(settings.tag) not in ("servicing", "cpi:offlineImage", "offlineImage"):
                problems.append(f"unexpected element <{_local(settings.tag)}> under <unattend>")
            continue
        pass_name = settings.get("pass", "")
        if pass_name not in PASSES:
            problems.append(f"settings pass {pass_name!r} is not one of {', '.join(PASSES)}")
            continue
        if pass_name in seen_passes:
            problems.append(f"pass {pass_name} appears twice")
        seen_passes.add(pass_name)
        seen_components: set[tuple[str, str]] = set()
        for comp in settings:
            problems += _check_component(comp, pass_name, seen_components, allow_redacted)
    for el in root.iter():
        problems += _check_list_item(el)
    return problems


def _check_component(comp: Element, pass_name: str, seen: set[tuple[str, str]],
                     allow_redacted: bool) -> list[str]:
    out: list[str] = []
    if _local(comp.tag) != "component" or _ns(comp.tag) != NS:
        return [f"{pass_name}: unexpected element <{_local(comp.tag)}>; only <component> belongs in <settings>"]
    name = comp.get("name", "")
    where = f"{pass_name}/{name or '?'}"
    if not name:
        out.append(f"{pass_name}: a component has no name attribute")
    for attr, allowed in COMPONENT_ATTRS.items():
        value = comp.get(attr)
        if value is None:
            out.append(f"{where}: missing attribute {attr}")
        elif value not in allowed:
            out.append(f"{where}: {attr}={value!r} is not one of {', '.join(allowed)}")
    arch = comp.get("processorArchitecture", "")
    if (name, arch) in seen:
        out.append(f"{where}: component appears twice in the pass")
    seen.add((name, arch))
    passes = COMPONENT_PASSES.get(name)
    if passes is None:
        out.append(f"{where}: component {name!r} is not known (misspelt?); Setup would reject the file")
        return out
    if pass_name not in passes:
        out.append(f"{where}: component is not valid in {pass_name} (valid: {', '.join(passes)})")
    for setting in comp:
        sname = _local(setting.tag)
        sp = SETTING_PASSES.get((name, sname))
        if sp is not None and pass_name not in sp:
            out.append(f"{where}: {sname} is not valid in {pass_name} (valid: {', '.join(sp)})")
    for el in comp.iter():
        if _local(el.tag) in BOOLEAN_SETTINGS and len(el) == 0 and _text(el) not in ("true", "false"):
            out.append(f"{where}: {_local(el.tag)} must be true or false, not {_text(el)!r}")
    if name == "Microsoft-Windows-Shell-Setup":
        out += _check_shell_setup(comp, where, allow_redacted)
    elif name == "Microsoft-Windows-TCPIP":
        out += _check_tcpip(comp, where)
    elif name == "Microsoft-Windows-DNS-Client":
        out += _check_dns(comp, where)
    elif name == "Microsoft-Windows-Deployment":
        out += _check_run_sync(comp, where)
    elif name == "Microsoft-Windows-International-Core":
        out += _check_locales(comp, where)
    return out


def _check_list_item(el: Element) -> list[str]:
    name = _local(el.tag)
    needs_key = LIST_ITEMS.get(name)
    if needs_key is None:
        return []
    # <IpAddress> is a list item only inside UnicastIpAddresses/DNSServerSearchOrder; a caller can't see the
    # parent in ElementTree, so plain-text IpAddress elements are checked by the component checks instead.
    action = el.get(f"{{{WCM}}}action")
    out = []
    if action is None:
        out.append(f"<{name}> needs wcm:action=\"add\" (a list item without it is ignored or rejected)")
    elif action not in ("add", "modify", "remove"):
        out.append(f"<{name}> has wcm:action={action!r}; use add, modify or remove")
    if needs_key and el.get(f"{{{WCM}}}keyValue") is None:
        out.append(f"<{name}> needs a wcm:keyValue")
    return out


def _check_shell_setup(comp: Element, where: str, allow_redacted: bool) -> list[str]:
    out = []
    cn = _child(comp, "ComputerName")
    if cn is not None:
        name = _text(cn)
        if name != "*":
            if not _COMPUTER_NAME_RE.match(name):
                out.append(f"{where}: ComputerName {name!r} must be 1-15 letters, digits or '-' (or *)")
            elif name.isdigit():
                out.append(f"{where}: ComputerName {name!r} cannot be all digits")
    accounts = _child(comp, "UserAccounts")
    admin = _child(accounts, "AdministratorPassword") if accounts is not None else None
    if admin is not None:
        out += _check_password(admin, where, "AdministratorPassword", allow_redacted)
    return out


def _check_password(el: Element, where: str, kind: str, allow_redacted: bool) -> list[str]:
    value_el = _child(el, "Value")
    plain = _text(_child(el, "PlainText")) or "true"
    if value_el is None:
        return [f"{where}: {kind} has no <Value>"]
    value = value_el.text or ""
    if allow_redacted and value == REDACTED:
        return []
    if plain == "false":
        try:
            decode_unattend_password(value, "AdministratorPassword" if kind == "AdministratorPassword"
                                     else "Password")
        except ValueError as exc:
            return [f"{where}: {kind} has PlainText false but its Value is not an encoded {kind} ({exc})"]
    elif not value:
        return [f"{where}: {kind} is empty"]
    return []


def _check_tcpip(comp: Element, where: str) -> list[str]:
    out = []
    interfaces = _child(comp, "Interfaces")
    for iface in interfaces if interfaces is not None else []:
        order = [_local(c.tag) for c in iface if _local(c.tag) in TCPIP_INTERFACE_ORDER]
        expected = sorted(order, key=TCPIP_INTERFACE_ORDER.index)
        if order != expected:
            out.append(f"{where}: Interface children must come in the order {', '.join(TCPIP_INTERFACE_ORDER)}; "
                       f"found {', '.join(order)}")
        ident = _text(_child(iface, "Identifier"))
        if not ident:
            out.append(f"{where}: Interface has no Identifier (the adapter's MAC, like 00-15-5D-01-02-03)")
        elif re.fullmatch(r"[0-9A-Fa-f:-]{17}", ident) and not _MAC_RE.match(ident):
            out.append(f"{where}: Identifier {ident!r} must be written with dashes, like 00-15-5D-01-02-03")
        networks = []
        unicast = _child(iface, "UnicastIpAddresses")
        for ip_el in unicast if unicast is not None else []:
            try:
                networks.append(ipaddress.ip_interface(_text(ip_el)))
            except ValueError:
                out.append(f"{where}: unicast address {_text(ip_el)!r} is not address/prefix like 10.0.0.5/24")
        v4 = _child(iface, "Ipv4Settings")
        if v4 is not None and _text(_child(v4, "DhcpEnabled")) == "false" and not networks:
            out.append(f"{where}: DHCP is off but the Interface has no UnicastIpAddresses")
        routes = _child(iface, "Routes")
        for route in routes if routes is not None else []:
            hop = _text(_child(route, "NextHopAddress"))
            try:
                ipaddress.ip_network(_text(_child(route, "Prefix")), strict=False)
                hop_ip = ipaddress.ip_address(hop)
            except ValueError:
                out.append(f"{where}: Route needs a Prefix (0.0.0.0/0) and a NextHopAddress")
                continue
            if _text(_child(route, "Identifier")) == "":
                out.append(f"{where}: Route has no Identifier")
            v4nets = [n.network for n in networks if n.version == hop_ip.version]
            if v4nets and not any(hop_ip in n for n in v4nets):
                out.append(f"{where}: next hop {hop} is not on the interface's subnet")
    return out


def _check_dns(comp: Element, where: str) -> list[str]:
    out = []
    interfaces = _child(comp, "Interfaces")
    for iface in interfaces if interfaces is not None else []:
        if not _text(_child(iface, "Identifier")):
            out.append(f"{where}: Interface has no Identifier")
        order = _child(iface, "DNSServerSearchOrder")
        for ip_el in order if order is not None else []:
            try:
                ipaddress.ip_address(_text(ip_el))
            except ValueError:
                out.append(f"{where}: DNS server {_text(ip_el)!r} is not an IP address")
    return out


def _check_locales(comp: Element, where: str) -> list[str]:
    out = []
    for setting in ("SystemLocale", "UILanguage", "UserLocale"):
        el = _child(comp, setting)
        if el is not None and not _LOCALE_RE.match(_text(el)):
            out.append(f"{where}: {setting} {_text(el)!r} is not a language tag like en-US")
    el = _child(comp, "InputLocale")
    if el is not None:
        for part in _text(el).split(";"):
            if not (_LOCALE_RE.match(part) or _INPUT_ID_RE.match(part)):
                out.append(f"{where}: InputLocale {part!r} is not a language tag (en-US) or id (0409:00000409)")
    return out


def _check_run_sync(comp: Element, where: str) -> list[str]:
    out = []
    for block in ("RunSynchronous", "RunAsynchronous"):
        container = _child(comp, block)
        orders: list[str] = []
        for cmd in container if container is not None else []:
            order = _text(_child(cmd, "Order"))
            if not order.isdigit() or not 1 <= int(order) <= 500:
                out.append(f"{where}: {block} command Order {order!r} must be a number from 1 to 500")
            elif order in orders:
                out.append(f"{where}: {block} Order {order} is used twice")
            orders.append(order)
            path = _text(_child(cmd, "Path"))
            if not path:
                out.append(f"{where}: {block} command has no Path")
            elif len(path) > 259:
                out.append(f"{where}: {block} Path is {len(path)} characters; Setup allows 259")
    return out


def answer_file_asks(xml_text: str) -> dict[str, object]:
    """What a (checked) answer file asks the guest for that the guest probe can verify: Remote Desktop on
    (fDenyTSConnections false) and the firewall groups it activates, as written (an id or a display name).
    Pure; holds no secret (the password is never read)."""
    root = SafeET.fromstring(xml_text)
    rdp: bool | None = None
    groups: list[str] = []
    for el in root.iter():
        name = _local(el.tag)
        if name == "fDenyTSConnections":
            rdp = _text(el).strip().lower() == "false"
        elif name == "FirewallGroup":
            group, active = _child(el, "Group"), _child(el, "Active")
            if group is not None and _text(active).strip().lower() != "false":
                groups.append(_text(group).strip())
    return {"rdp": rdp, "firewall_groups": groups}
