"""Host networking cmdlets: VMSwitch, NetNat (+ static mappings), NetIPAddress, NetAdapter."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from labctl.sim.cmdlets.base import BoundCall, CmdletContext, cmdlet
from labctl.sim.cmdlets.hvobjects import (
    as_list,
    cim,
    name_of,
    netadapter_obj,
    netip_obj,
    netnat_obj,
    switch_obj,
)
from labctl.sim.errors import PSError
from labctl.sim.model import paths as P
from labctl.sim.model import texts as T
from labctl.sim.model.network import VMSwitch
from labctl.sim.values import PSEnum, PSObj, UInt32

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
            # Text, id and category from canonical/multipass#1323 (Get-VMSwitch -Id).
            ctx.write_error(PSError("No Ethernet switch could be found matching the specified criteria.",
                                    "ObjectNotFound", "ObjectNotFound", target=sorted(ids)[0],
                                    exception_type=T.VE))
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
            ctx.write_error(T.switch_not_found(str(name)))
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
        for vm in w.vms.values():
            for ad in vm.network_adapters:
                if ad.switch_id == sw.id:
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


@cmdlet("Get-NetNat")
def get_net_nat(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    if not call.has("Name"):
        return [netnat_obj(w, n) for n in w.network.nats]
    out: list[Any] = []
    for name in as_list(call.get("Name")):
        found = w.network.find_nats(str(name))
        if not found and not P.has_wildcard(str(name)):
            ctx.write_error(T.cim_not_found("Get-NetNat", "MSFT_NetNat", "Name", str(name)))
        out.extend(netnat_obj(w, n) for n in found)
    return out


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
        for name in as_list(call.get("Name")):
            found = w.network.find_nats(str(name))
            if not found and not P.has_wildcard(str(name)):
                ctx.write_error(T.cim_not_found("Remove-NetNat", "MSFT_NetNat", "Name", str(name)))
            targets.extend(found)
    else:
        targets = list(w.network.nats)
    for nat in targets:
        w.network.remove_nat(nat)
        w.dirty = True
    return []


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
        raise T.netnat_invalid("Add-NetNatStaticMapping")
    proto = name_of(call.get("Protocol") or "TCP")
    ext_port = int(call.get("ExternalPort"))
    for m in nat.static_mappings:
        if m["protocol"].upper() == proto.upper() and m["external_port"] == ext_port:
            # Two mappings of one external port: ERROR_ALREADY_EXISTS (unconfirmed id).
            raise PSError("The object already exists.", "Windows System Error 5010,Add-NetNatStaticMapping",
                          "NotSpecified", target="MSFT_NetNatStaticMapping", exception_type=T.CIM, bare=True)
    m = {"id": len(nat.static_mappings), "protocol": proto.upper(),
         "external_ip": str(call.get("ExternalIPAddress") or "0.0.0.0"),  # noqa: S104 - NAT "any" "external_port": ext_port,
         "internal_ip": str(call.get("InternalIPAddress")), "internal_port": int(call.get("InternalPort"))}
    nat.static_mappings.append(m)
    w.dirty = True
    return [_mapping_obj(nat.name, m)]


@cmdlet("Get-NetNatStaticMapping")
def get_net_nat_static_mapping(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    want = str(call.get("NatName")) if call.has("NatName") else None
    return [_mapping_obj(n.name, m) for n in w.network.nats
            if want is None or P.wildcard_match(want, n.name) for m in n.static_mappings]


# --- NetIPAddress -----------------------------------------------------------------------------------------


@cmdlet("Get-NetIPAddress")
def get_net_ip_address(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    addrs = list(w.network.addresses)
    for key, attr in (("InterfaceAlias", "interface_alias"), ("IPAddress", "ip")):
        if call.has(key):
            pats = [str(x) for x in as_list(call.get(key))]
            addrs = [a for a in addrs if any(P.wildcard_match(p, getattr(a, attr)) for p in pats)]
            if not addrs:
                ctx.write_error(T.cim_not_found("Get-NetIPAddress", "MSFT_NetIPAddress", key, pats[0]))
                return []
    if call.has("InterfaceIndex"):
        idx = {int(i) for i in as_list(call.get("InterfaceIndex"))}
        addrs = [a for a in addrs if a.interface_index in idx]
    if call.has("AddressFamily"):
        fams = {name_of(f).lower() for f in as_list(call.get("AddressFamily"))}
        addrs = [a for a in addrs if a.family.lower() in fams]
    if call.has("PrefixLength"):
        lens = {int(x) for x in as_list(call.get("PrefixLength"))}
        addrs = [a for a in addrs if a.prefix_length in lens]
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
        ctx.write_error(T.cim_not_found("Remove-NetIPAddress", "MSFT_NetIPAddress", "IPAddress",
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
    if call.has("Name"):
        out: list[Any] = []
        for name in as_list(call.get("Name")):
            found = [a for a in ads if P.wildcard_match(str(name), a.name)]
            if not found and not P.has_wildcard(str(name)):
                ctx.write_error(T.cim_not_found("Get-NetAdapter", "MSFT_NetAdapter", "Name", str(name)))
            out.extend(a for a in found if a not in out)
        ads = out
    if call.has("InterfaceIndex"):
        idx = {int(i) for i in as_list(call.get("InterfaceIndex"))}
        ads = [a for a in ads if a.interface_index in idx]
    if call.has("InterfaceDescription"):
        pats = [str(x) for x in as_list(call.get("InterfaceDescription"))]
        ads = [a for a in ads if any(P.wildcard_match(p, a.interface_description) for p in pats)]
    return [netadapter_obj(w, a) for a in ads]
