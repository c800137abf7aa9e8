"""Host networking cmdlets: VMSwitch, NetNat (+ static mappings), NetFirewallRule, NetIPAddress, NetAdapter; and
the objects they shape (Microsoft.HyperV.PowerShell.VMSwitch and the CDXML classes MSFT_NetNat, MSFT_NetIPAddress,
MSFT_NetAdapter...) from the networking models."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hvsim.core import paths as P
from hvsim.hyperv.handlers.objects import HV, VO
from hvsim.networking import errors as NE
from hvsim.networking.models import NetAdapter, NetIPAddress, NetNat, VMSwitch
from hvsim.powershell import errors as PE
from hvsim.powershell.cmdlet import BoundCall, CmdletContext, cmdlet
from hvsim.powershell.shaping import as_list, enum, guid, name_of
from hvsim.powershell.values import Byte, PSEnum, PSObj, TimeSpan, UInt32

if TYPE_CHECKING:
    from hvsim.world import World

# --- objects: the networking models as PowerShell shows them --------------------------------------

SWITCH_TYPE = {"Private": 0, "Internal": 1, "External": 2}


def cim(class_name: str, namespace: str = "ROOT/StandardCimv2") -> list[str]:
    return [f"Microsoft.Management.Infrastructure.CimInstance#{namespace}/{class_name}",
            "Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/MSFT_NetObject"
            if namespace == "ROOT/StandardCimv2" else f"Microsoft.Management.Infrastructure.CimInstance#{class_name}",
            "Microsoft.Management.Infrastructure.CimInstance", "System.Object"]


def switch_obj(world: World, sw: VMSwitch) -> PSObj:
    props = {
        "Name": sw.name, "Id": guid(sw.id),
        "SwitchType": enum(f"{HV}.VMSwitchType", SWITCH_TYPE, sw.switch_type),
        "AllowManagementOS": sw.allow_management_os,
        "NetAdapterInterfaceDescription": (next((a.interface_description for a in world.network.adapters
                                                 if sw.net_adapter_name
                                                 and a.name.lower() == sw.net_adapter_name.lower()), None)),
        "Notes": sw.notes,
        "EmbeddedTeamingEnabled": False,
        "BandwidthReservationMode": PSEnum(f"{HV}.VMSwitchBandwidthMode", "Absolute", 1),
        "ComputerName": world.host.computer_name, "IsDeleted": False,
    }
    return PSObj([f"{HV}.VMSwitch", *VO], props)


def netnat_obj(world: World, nat: NetNat) -> PSObj:
    props = {
        "Caption": None, "Description": None, "ElementName": None,
        "InstanceID": "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, nat.name)).upper() + "}",
        "Name": nat.name,
        "ExternalIPInterfaceAddressPrefix": nat.external_prefix,
        "InternalIPInterfaceAddressPrefix": nat.internal_prefix or None,
        "IcmpQueryTimeout": UInt32(30),
        "TcpEstablishedConnectionTimeout": UInt32(1800),
        "TcpTransientConnectionTimeout": UInt32(120),
        "TcpFilteringBehavior": PSEnum("Microsoft.PowerShell.Cmdletization.GeneratedTypes.NetNat.FilteringBehavior",
                                       "AddressDependentFiltering", 1),
        "UdpFilteringBehavior": PSEnum("Microsoft.PowerShell.Cmdletization.GeneratedTypes.NetNat.FilteringBehavior",
                                       "AddressDependentFiltering", 1),
        "UdpIdleSessionTimeout": UInt32(120),
        "UdpInboundRefresh": False,
        "Store": PSEnum("Microsoft.PowerShell.Cmdletization.GeneratedTypes.NetNat.Store", "Local", 0),
        "Active": True,
        "PSComputerName": None,
    }
    return PSObj(cim("MSFT_NetNat"), props)


def netip_obj(world: World, a: NetIPAddress, store: str = "ActiveStore") -> PSObj:
    fam = a.family
    props = {
        "IPAddress": a.ip, "IPv4Address": a.ip if fam == "IPv4" else None,
        "IPv6Address": a.ip if fam == "IPv6" else None,
        "InterfaceIndex": UInt32(a.interface_index), "InterfaceAlias": a.interface_alias,
        "AddressFamily": PSEnum("Microsoft.PowerShell.Cmdletization.GeneratedTypes.NetIPAddress.AddressFamily",
                                fam, 2 if fam == "IPv4" else 23),
        "Type": PSEnum("Microsoft.PowerShell.Cmdletization.GeneratedTypes.NetIPAddress.Type", "Unicast", 1),
        "PrefixLength": Byte(a.prefix_length),
        "PrefixOrigin": PSEnum("Microsoft.PowerShell.Cmdletization.GeneratedTypes.NetIPAddress.PrefixOrigin",
                               a.prefix_origin, {"Other": 0, "Manual": 1, "WellKnown": 2, "Dhcp": 3,
                                                 "RouterAdvertisement": 4}[a.prefix_origin]),
        "SuffixOrigin": PSEnum("Microsoft.PowerShell.Cmdletization.GeneratedTypes.NetIPAddress.SuffixOrigin",
                               a.suffix_origin, {"Other": 0, "Manual": 1, "WellKnown": 2, "Dhcp": 3, "Link": 4,
                                                 "Random": 5}[a.suffix_origin]),
        "AddressState": PSEnum("Microsoft.PowerShell.Cmdletization.GeneratedTypes.NetIPAddress.AddressState",
                               "Preferred", 4),
        "ValidLifetime": TimeSpan(10675199 * 86400.0),
        "PreferredLifetime": TimeSpan(10675199 * 86400.0),
        "SkipAsSource": False,
        "PolicyStore": store,
        "PSComputerName": None,
    }
    return PSObj(cim("MSFT_NetIPAddress"), props, to_string=a.ip)


def netadapter_obj(world: World, ad: NetAdapter) -> PSObj:
    mac = "-".join(ad.mac_address[i:i + 2] for i in range(0, 12, 2))
    props = {
        "Name": ad.name, "InterfaceAlias": ad.name, "ifAlias": ad.name,
        "InterfaceDescription": ad.interface_description, "ifDesc": ad.interface_description,
        "ifIndex": ad.interface_index, "InterfaceIndex": ad.interface_index,
        "Status": ad.status, "MacAddress": mac, "LinkSpeed": ad.link_speed,
        "MediaConnectionState": PSEnum("Microsoft.PowerShell.Cmdletization.GeneratedTypes.NetAdapter."
                                       "MediaConnectState", "Connected", 1),
        "Virtual": ad.switch_id is not None,
        "HardwareInterface": ad.switch_id is None,
        "ConnectorPresent": ad.switch_id is None,
        "DriverDescription": ad.interface_description,
        "MtuSize": UInt32(1500),
        "PSComputerName": None,
    }
    return PSObj(cim("MSFT_NetAdapter"), props, to_string=ad.name)


# --- VMSwitch -------------------------------------------------------------------------------------


def _switches(ctx: CmdletContext, call: BoundCall, key: str = "Name") -> list[VMSwitch]:
    net = ctx.world.network
    if call.has("VMSwitch"):
        ids = {str(o.get("Id")) for o in as_list(call.get("VMSwitch")) if isinstance(o, PSObj)}
        return [s for s in net.switches.values() if s.id in ids]
    if call.has("Id"):
        ids = {str(i) for i in as_list(call.get("Id"))}
        found = [s for s in net.switches.values() if s.id in ids]
        if not found:
            ctx.write_error(NE.switch_id_not_found())
        return found
    if not call.has(key):
        stype = call.get("SwitchType")
        return net.find_switches(switch_type=name_of(stype) if stype is not None else None)
    out: list[VMSwitch] = []
    for name in as_list(call.get(key)):
        found = net.find_switches(str(name))
        if call.has("SwitchType"):
            found = [s for s in found if s.switch_type.lower() == name_of(call.get("SwitchType")).lower()]
        if not found and not P.has_wildcard(str(name)):
            ctx.write_error(NE.switch_not_found(str(name)))
        out.extend(s for s in found if s not in out)
    return out


@cmdlet("Get-VMSwitch")
def get_vm_switch(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    return [switch_obj(ctx.world, s) for s in _switches(ctx, call)]


@cmdlet("New-VMSwitch")
def new_vm_switch(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    stype = call.get("SwitchType")
    sw = w.network.new_switch(str(call.get("Name")), switch_type=name_of(stype) if stype is not None else None,
                              net_adapter_name=call.get("NetAdapterName"),
                              allow_management_os=call.get("AllowManagementOS") if call.has("AllowManagementOS")
                              else None, notes=str(call.get("Notes") or ""))
    w.dirty = True
    ctx.spend("host", "new_vm_switch")
    return [switch_obj(w, sw)]


@cmdlet("Remove-VMSwitch")
def remove_vm_switch(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    for sw in _switches(ctx, call):
        attached = [(vm, ad) for vm in w.vms.values() for ad in vm.network_adapters if ad.switch_id == sw.id]
        # A VM with a worker process (not Off or Saved) holds a port on the switch: Hyper-V refuses
        # (AutomatedLab#164); the adapters of VMs that are off are merely disconnected.
        if any(vm.state not in ("Off", "Saved") for vm, _ in attached):
            ctx.write_error(NE.switch_in_use(sw.name))
            continue
        for _, ad in attached:
            ad.switch_id = None
            ad.switch_name = None
        w.network.remove_switch(sw)
        w.dirty = True
        ctx.spend("host", "remove_vm_switch")
    return []


@cmdlet("Set-VMSwitch")
def set_vm_switch(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    out = []
    for sw in _switches(ctx, call):
        if call.has("Notes"):
            sw.notes = str(call.get("Notes") or "")
        if call.has("SwitchType"):
            sw.switch_type = name_of(call.get("SwitchType"))
        w.dirty = True
        if call.get("Passthru"):
            out.append(switch_obj(w, sw))
    return out


# --- NetNat ----------------------------------------------------------------------------------------------


def _nats_named(ctx: CmdletContext, call: BoundCall) -> list[NetNat]:
    """The NATs -Name matches, each name in turn; a name that matches none (and is no pattern) is the CDXML
    query's not-found error."""
    out: list[NetNat] = []
    for name in as_list(call.get("Name")):
        found = ctx.world.network.find_nats(str(name))
        if not found and not P.has_wildcard(str(name)):
            ctx.write_error(PE.cdxml_not_found(call.spec.name, "MSFT_NetNat", "Name", str(name)))
        out.extend(found)
    return out


@cmdlet("Get-NetNat")
def get_net_nat(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    nats = _nats_named(ctx, call) if call.has("Name") else w.network.nats
    return [netnat_obj(w, n) for n in nats]


@cmdlet("New-NetNat")
def new_net_nat(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    nat = w.network.new_nat(str(call.get("Name")), call.get("InternalIPInterfaceAddressPrefix"),
                            call.get("ExternalIPInterfaceAddressPrefix"))
    w.dirty = True
    ctx.spend("host", "new_net_nat")
    return [netnat_obj(w, nat)]


@cmdlet("Remove-NetNat")
def remove_net_nat(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    targets = []
    if call.has("InputObject"):
        names = {str(o.get("Name")).lower() for o in as_list(call.get("InputObject")) if isinstance(o, PSObj)}
        targets = [n for n in w.network.nats if n.name.lower() in names]
    elif call.has("Name"):
        targets = _nats_named(ctx, call)
    else:
        targets = list(w.network.nats)
    for nat in targets:
        w.network.remove_nat(nat)
        w.dirty = True
    return []


# The CDXML class of the *-NetNatStaticMapping cmdlets (the target of their CIM errors; unconfirmed).
_MAPPING_CLASS = "root/StandardCimv2/MSFT_NetNatStaticMapping"


def _mapping_obj(nat_name: str, m: dict[str, Any]) -> PSObj:
    props = {
        "NatName": nat_name, "StaticMappingID": UInt32(m["id"]),
        "Protocol": _protocol(m["protocol"]),
        "RemoteExternalIPAddressPrefix": "0.0.0.0/0",
        "ExternalIPAddress": m["external_ip"], "ExternalPort": m["external_port"],
        "InternalIPAddress": m["internal_ip"], "InternalPort": m["internal_port"],
        "InternalRoutingDomainId": "{00000000-0000-0000-0000-000000000000}", "Active": True,
    }
    return PSObj(cim("MSFT_NetNatStaticMapping"), props)


def _protocol(name: str) -> PSEnum:
    return PSEnum("Microsoft.PowerShell.Cmdletization.GeneratedTypes.NetNat.Protocol", name.upper(),
                  6 if name.upper() == "TCP" else 17)


@cmdlet("Add-NetNatStaticMapping")
def add_net_nat_static_mapping(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    name = str(call.get("NatName"))
    nat = next((n for n in w.network.nats if n.name.lower() == name.lower()), None)
    if nat is None:
        raise PE.cim_method_failed("The parameter is incorrect.", 87, "Add-NetNatStaticMapping", "InvalidArgument",
                                  _MAPPING_CLASS)
    any_ip = "0.0.0.0"  # noqa: S104 - WinNAT's "any external address", not a socket bind
    m = w.network.add_static_mapping(nat, name_of(call.get("Protocol") or "TCP"),
                                     str(call.get("ExternalIPAddress") or any_ip), int(call.get("ExternalPort")),
                                     str(call.get("InternalIPAddress")), int(call.get("InternalPort")))
    w.dirty = True
    return [_mapping_obj(nat.name, m)]


@cmdlet("Get-NetNatStaticMapping")
def get_net_nat_static_mapping(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    # -NatName is a string[]: each name is one pattern (not the list's str()).
    wants = [str(x) for x in as_list(call.get("NatName"))] if call.has("NatName") else None
    return [_mapping_obj(n.name, m) for n in w.network.nats
            if wants is None or any(P.wildcard_match(x, n.name) for x in wants) for m in n.static_mappings]


@cmdlet("Remove-NetNatStaticMapping")
def remove_net_nat_static_mapping(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    out: list[Any] = []
    if call.has("InputObject"):
        wanted = {(str(o.get("NatName")).lower(), int(o.get("StaticMappingID")))
                  for o in as_list(call.get("InputObject")) if isinstance(o, PSObj)}
    else:
        names = [str(n) for n in as_list(call.get("NatName"))] or ["*"]
        ids = {int(i) for i in as_list(call.get("StaticMappingID"))}
        wanted = {(n.name.lower(), m["id"]) for n in w.network.nats if any(P.wildcard_match(p, n.name) for p in names)
                  for m in n.static_mappings if not ids or m["id"] in ids}
        if not wanted:
            ctx.write_error(PE.cdxml_not_found("Remove-NetNatStaticMapping", "MSFT_NetNatStaticMapping", "NatName",
                                            names[0]))
    for nat in w.network.nats:
        keep = []
        for m in nat.static_mappings:
            if (nat.name.lower(), m["id"]) in wanted:
                w.dirty = True
                if call.get("PassThru"):
                    out.append(_mapping_obj(nat.name, m))
            else:
                keep.append(m)
        nat.static_mappings = keep
    return out


# --- firewall ------------------------------------------------------------------------------------------

_NS = "Microsoft.PowerShell.Cmdletization.GeneratedTypes.NetSecurity"


def _rule_obj(rule: dict[str, Any]) -> PSObj:
    props = {
        "Name": rule["name"], "ID": rule["name"], "DisplayName": rule["display_name"],
        "Description": rule.get("description") or None, "Group": rule.get("group") or None,
        "DisplayGroup": rule.get("group") or None,
        "Enabled": PSEnum(f"{_NS}.Enabled", "True" if rule["enabled"] else "False", 1 if rule["enabled"] else 2),
        "Profile": PSEnum(f"{_NS}.Profile", rule.get("profile", "Any"), 0),
        "Platform": [], "Direction": PSEnum(f"{_NS}.Direction", rule["direction"],
                                            1 if rule["direction"] == "Inbound" else 2),
        "Action": PSEnum(f"{_NS}.Action", rule["action"], 2 if rule["action"] == "Allow" else 4),
        "EdgeTraversalPolicy": PSEnum(f"{_NS}.EdgeTraversal", "Block", 0),
        "LooseSourceMapping": False, "LocalOnlyMapping": False, "Owner": None,
        "PrimaryStatus": PSEnum(f"{_NS}.PrimaryStatus", "OK", 1),
        "Status": "The rule was parsed successfully from the store. (65536)",
        "EnforcementStatus": "NotApplicable", "PolicyStoreSource": "PersistentStore",
        "PolicyStoreSourceType": PSEnum(f"{_NS}.PolicyStoreType", "Local", 1), "PSComputerName": None,
    }
    return PSObj(cim("MSFT_NetFirewallRule"), props, to_string=rule["name"])


@cmdlet("Get-NetFirewallRule")
def get_net_firewall_rule(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    rules = list(ctx.world.network.firewall_rules)
    for key, field in (("Name", "name"), ("DisplayName", "display_name")):
        if call.has(key):
            out: list[dict[str, Any]] = []
            for pat in as_list(call.get(key)):
                found = [r for r in rules if P.wildcard_match(str(pat), r[field])]
                if not found and not P.has_wildcard(str(pat)):
                    ctx.write_error(PE.cdxml_not_found("Get-NetFirewallRule", "MSFT_NetFirewallRule", key, str(pat)))
                out.extend(r for r in found if r not in out)
            rules = out
    if call.has("Group"):
        pats = [str(g) for g in as_list(call.get("Group"))]
        rules = [r for r in rules if r.get("group") and any(P.wildcard_match(p, r["group"]) for p in pats)]
    return [_rule_obj(r) for r in rules]


@cmdlet("New-NetFirewallRule")
def new_net_firewall_rule(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    enabled = call.get("Enabled")
    rule = {
        "name": str(call.get("Name") or "{" + str(uuid.uuid4()) + "}"),
        "display_name": str(call.get("DisplayName") or call.get("Name") or ""),
        "description": str(call.get("Description") or ""), "group": str(call.get("Group") or ""),
        "enabled": enabled is None or name_of(enabled) == "True",
        "direction": name_of(call.get("Direction")) if call.has("Direction") else "Inbound",
        "action": name_of(call.get("Action")) if call.has("Action") else "Allow",
        "protocol": str(call.get("Protocol") or "Any"),
        "local_port": [str(p) for p in as_list(call.get("LocalPort"))],
        "profile": name_of(call.get("Profile")) if call.has("Profile") else "Any", "builtin": False,
    }
    w.network.new_firewall_rule(rule)
    w.dirty = True
    return [_rule_obj(rule)]


# --- NetIPAddress -----------------------------------------------------------------------------------------


@cmdlet("Get-NetIPAddress")
def get_net_ip_address(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    # Filters in the order of the cmdlet's CDXML queryable properties (the WQL lists them so: InterfaceAlias
    # before AddressFamily in PlagueHO/LoopbackAdapter#1). Type and AddressState are constant in the model:
    # every address is a preferred unicast one.
    filters = [
        _Filter("IPAddress", call.get("IPAddress"), lambda a: a.ip),
        _Filter("InterfaceIndex", call.get("InterfaceIndex"), lambda a: a.interface_index, wildcards=False),
        _Filter("InterfaceAlias", call.get("InterfaceAlias"), lambda a: a.interface_alias),
        _Filter("AddressFamily", call.get("AddressFamily"), lambda a: a.family, wildcards=False),
        _Filter("Type", call.get("Type"), lambda a: "Unicast", wildcards=False),
        _Filter("PrefixLength", call.get("PrefixLength"), lambda a: a.prefix_length, wildcards=False),
        _Filter("PrefixOrigin", call.get("PrefixOrigin"), lambda a: a.prefix_origin, wildcards=False),
        _Filter("SuffixOrigin", call.get("SuffixOrigin"), lambda a: a.suffix_origin, wildcards=False),
        _Filter("AddressState", call.get("AddressState"), lambda a: "Preferred", wildcards=False),
    ]
    addrs = _cdxml_query(ctx, "Get-NetIPAddress", NE.NETIP_CLASS, w.network.addresses, filters)
    return [netip_obj(w, a) for a in addrs]


@cmdlet("New-NetIPAddress")
def new_net_ip_address(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    alias = call.get("InterfaceAlias")
    index = call.get("InterfaceIndex")
    rec = w.network.new_ip_address(str(call.get("IPAddress")), int(call.get("PrefixLength") or 32),
                                   alias=str(alias) if alias is not None else None,
                                   index=int(index) if index is not None else None,
                                   default_gateway=call.get("DefaultGateway"))
    w.dirty = True
    # New-NetIPAddress returns the address from both stores (active and persistent).
    return [netip_obj(w, rec, "ActiveStore"), netip_obj(w, rec, "PersistentStore")]


@cmdlet("Remove-NetIPAddress")
def remove_net_ip_address(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    targets = list(w.network.addresses)
    if call.has("InputObject"):
        ips = {str(o.get("IPAddress")) for o in as_list(call.get("InputObject")) if isinstance(o, PSObj)}
        targets = [a for a in targets if a.ip in ips]
    else:
        if call.has("IPAddress"):
            ips = {str(x) for x in as_list(call.get("IPAddress"))}
            targets = [a for a in targets if a.ip in ips]
        if call.has("InterfaceAlias"):
            aliases = {str(x).lower() for x in as_list(call.get("InterfaceAlias"))}
            targets = [a for a in targets if a.interface_alias.lower() in aliases]
        if call.has("InterfaceIndex"):
            idx = {int(x) for x in as_list(call.get("InterfaceIndex"))}
            targets = [a for a in targets if a.interface_index in idx]
    if not targets:
        ctx.write_error(PE.cdxml_not_found("Remove-NetIPAddress", "MSFT_NetIPAddress", "IPAddress",
                                        str(call.get("IPAddress"))))
    for a in targets:
        w.network.remove_ip_address(a)
        w.dirty = True
    return []


# --- NetAdapter -------------------------------------------------------------------------------------------


@cmdlet("Get-NetAdapter")
def get_net_adapter(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    ads = list(w.network.adapters)
    if call.get("Physical"):
        ads = [a for a in ads if a.switch_id is None]
    filters = [
        _Filter("Name", call.get("Name"), lambda a: a.name),
        _Filter("InterfaceDescription", call.get("InterfaceDescription"), lambda a: a.interface_description),
        _Filter("InterfaceIndex", call.get("InterfaceIndex"), lambda a: a.interface_index, wildcards=False),
    ]
    return [netadapter_obj(w, a) for a in _cdxml_query(ctx, "Get-NetAdapter", "ROOT/StandardCimv2/MSFT_NetAdapter",
                                                       ads, filters)]


# --- CDXML queries -------------------------------------------------------------------------------------------


@dataclass
class _Filter:
    """One queryable property of a CDXML Get-* cmdlet and the values the call gave it."""

    prop: str
    values: Any  # the parameter's value (a list, one value, or None when not given)
    get: Callable[[Any], Any]  # the property of a model object
    wildcards: bool = True  # string properties take wildcard patterns (WQL LIKE); numbers and enums do not

    def __post_init__(self) -> None:
        self.values = as_list(self.values)

    def match(self, value: Any, item: Any) -> bool:
        actual = self.get(item)
        if self.wildcards:
            return P.wildcard_match(str(value), str(actual))
        if isinstance(value, PSEnum) or isinstance(actual, str):
            return name_of(value).lower() == str(actual).lower()
        return bool(int(value) == int(actual))

    def reports(self, value: Any) -> bool:
        """A value that matches nothing is an error unless it is a wildcard pattern (BehaviorOnNoMatch.Default)."""
        return not (self.wildcards and P.has_wildcard(str(value)))

    def wql(self) -> str:
        """The WQL condition PowerShell's CimQuery builds: ((P LIKE 'v') OR (P = 2))."""
        parts = []
        for v in self.values:
            if self.wildcards:
                parts.append(f"({self.prop} LIKE {_wql_string(_like_operand(str(v)))})")
            elif isinstance(v, PSEnum):
                parts.append(f"({self.prop} = {v.value})")
            elif isinstance(v, bool):
                parts.append(f"({self.prop} = {'TRUE' if v else 'FALSE'})")
            else:
                parts.append(f"({self.prop} = {v})")
        return " OR ".join(parts)


def _wql_string(text: str) -> str:
    """A WQL string literal (backslash and quote escaped, as CimQuery.ObjectToWqlLiteral)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _like_operand(pattern: str) -> str:
    """A PowerShell wildcard pattern as a WQL LIKE operand (* -> %, ? -> _, literal % and _ bracketed)."""
    out = []
    chars = iter(pattern)
    for c in chars:
        if c == "`":
            c = next(chars, "")
            out.append({"%": "[%]", "_": "[_]", "[": "[[]"}.get(c, c))
        elif c == "*":
            out.append("%")
        elif c == "?":
            out.append("_")
        elif c in "%_":
            out.append(f"[{c}]")
        else:
            out.append(c)
    return "".join(out)


def _cdxml_query(ctx: CmdletContext, cmdlet: str, class_path: str, items: Iterable[Any],
                 filters: list[_Filter]) -> list[Any]:
    """The objects all given filters match, and the not-found errors of PowerShell's cmdletization.

    One filter: each of its values that matched nothing is an error naming that property and value. Several
    filters (one WQL query): when nothing matched at all, one error that quotes the query
    (PowerShell's ClientSideQuery.GenerateNotFoundErrors). Wildcard patterns alone never report.
    """
    items = list(items)
    active = [f for f in filters if f.values]
    out = [it for it in items if all(any(f.match(v, it) for v in f.values) for f in active)]
    if len(active) == 1:
        f = active[0]
        for v in f.values:
            if f.reports(v) and not any(f.match(v, it) for it in items):
                ctx.write_error(PE.cdxml_not_found(cmdlet, class_path.rsplit("/", 1)[-1], f.prop, name_of(v)))
    elif len(active) > 1 and not out and any(f.reports(v) for f in active for v in f.values):
        class_name = class_path.rsplit("/", 1)[-1]
        where = " AND ".join(f"({f.wql()})" for f in active)
        # Only the text of the error message; nothing runs this query.
        wql = f"SELECT * FROM {class_name}  WHERE {where}"  # noqa: S608
        ctx.write_error(PE.cdxml_query_not_found(cmdlet, class_path, wql))
    return out
