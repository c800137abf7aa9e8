"""Host networking: Hyper-V virtual switches, host network adapters, IP addresses and WinNAT.

Rules modeled (and their sources):
- Switch names need not be unique (Hyper-V identifies switches by Id); an Internal or External
  switch with AllowManagementOS gives the host a vNIC "vEthernet (<name>)" (a second one with the
  same alias gets " 2"). A new host vNIC autoconfigures a 169.254/16 address until one is set.
- New-NetIPAddress: an address already on the same interface -> "Instance MSFT_NetIPAddress already
  exists" (Virtualization-Documentation#338); the same address on another interface -> "The object
  already exists." 5010 (WgServerforWindows#160). Different addresses of overlapping subnets on
  different interfaces are allowed, as on Windows (multihoming).
- New-NetNat: an internal prefix that overlaps another NAT's prefix or the host's external subnet
  -> "The parameter is incorrect." 87 (Virtualization-Documentation#361). On Windows Server 2016
  (build 14393) WinNAT has one internal prefix per host, so any second NAT is refused the same way
  (WinNAT capabilities and limitations blog, 2016; #361's answer: new NATs go under the one
  prefix). Later builds accept NATs with disjoint prefixes, which Microsoft's guide still calls
  unsupported ("limited to one NAT network per host"): docs/facts.md "WinNAT".
- One NAT may serve several Internal switches: a VM's address is translated when it is inside the
  NAT's internal prefix and its switch's host vNIC has an address of the VM's subnet (its gateway)
  (``nat_route``; the guide's "two internal vSwitches and one NetNat shared between them").
- A static mapping's external port (per protocol) maps to one internal endpoint host-wide.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from hvsim.core import paths as P
from hvsim.hyperv import errors as HE
from hvsim.hyperv.models.host import HostConfig
from hvsim.networking import errors as NE
from hvsim.powershell import errors as PE
from hvsim.powershell.errors import PSError


def _nat_invalid() -> PSError:
    """New-NetNat refused: 'The parameter is incorrect.' (Virtualization-Documentation#361)."""
    return PE.cim_method_failed("The parameter is incorrect.", 87, "New-NetNat", "InvalidArgument", NE.NETNAT_CLASS)


def _netip_failed(message: str, win32_error: int, category: str) -> PSError:
    """New-NetIPAddress refused (Virtualization-Documentation#338, WgServerforWindows#160)."""
    return PE.cim_method_failed(message, win32_error, "New-NetIPAddress", category, NE.NETIP_CLASS)


@dataclass
class VMSwitch:
    """A Hyper-V virtual switch."""

    name: str
    switch_type: str  # Internal | Private | External
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    net_adapter_name: str | None = None  # External only
    allow_management_os: bool = False
    notes: str = ""


@dataclass
class NetAdapter:
    """A host network adapter (physical or a switch's vEthernet)."""

    name: str
    interface_index: int
    mac_address: str
    interface_description: str
    switch_id: str | None = None  # set for vEthernet adapters
    status: str = "Up"
    link_speed: str = "10 Gbps"


@dataclass
class NetIPAddress:
    """An IP address bound to a host interface."""

    ip: str
    prefix_length: int
    interface_alias: str
    interface_index: int
    prefix_origin: str = "Manual"  # Manual | WellKnown | Dhcp | RouterAdvertisement
    suffix_origin: str = "Manual"  # Manual | WellKnown | Dhcp | Link | Random
    default_gateway: str | None = None

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(f"{self.ip}/{self.prefix_length}", strict=False)

    @property
    def family(self) -> str:
        return "IPv6" if ":" in self.ip else "IPv4"


@dataclass
class NetNat:
    """A WinNAT instance."""

    name: str
    internal_prefix: str
    external_prefix: str | None = None
    static_mappings: list[dict[str, Any]] = field(default_factory=list)


class Network:
    """Switches, host adapters, addresses and NATs of the host."""

    def __init__(self, host: HostConfig) -> None:
        self.host = host
        self.switches: dict[str, VMSwitch] = {}  # id -> switch
        self.adapters: list[NetAdapter] = []
        self.addresses: list[NetIPAddress] = []
        self.nats: list[NetNat] = []
        self.firewall_rules: list[dict[str, Any]] = []
        self.next_if_index = 2
        self.next_mac = 1

    def seed(self) -> None:
        """A fresh host: one physical NIC with the configured address, and loopback."""
        phys = self._new_adapter(self.host.physical_adapter, "Intel(R) Ethernet Controller X710 for 10GbE SFP+",
                                 mac="0050569A" + "1C2D")
        self.addresses.append(NetIPAddress(self.host.physical_ip, self.host.physical_prefix_length,
                                           phys.name, phys.interface_index, "Manual", "Manual",
                                           default_gateway=self._gateway_for(self.host.physical_ip,
                                                                             self.host.physical_prefix_length)))
        self.addresses.append(NetIPAddress("127.0.0.1", 8, "Loopback Pseudo-Interface 1", 1, "WellKnown",
                                           "WellKnown"))
        # A few of the built-in rules a Windows Server host carries (the real store has hundreds).
        for name, display, group, port in (
                ("WINRM-HTTP-In-TCP", "Windows Remote Management (HTTP-In)", "Windows Remote Management", "5985"),
                ("WINRM-HTTP-In-TCP-PUBLIC", "Windows Remote Management (HTTP-In)", "Windows Remote Management",
                 "5985"),
                ("FPS-ICMP4-ERQ-In", "File and Printer Sharing (Echo Request - ICMPv4-In)",
                 "File and Printer Sharing", "")):
            self.firewall_rules.append({"name": name, "display_name": display, "description": "", "group": group,
                                        "enabled": name.startswith("WINRM"), "direction": "Inbound",
                                        "action": "Allow", "protocol": "TCP" if port else "ICMPv4",
                                        "local_port": [port] if port else [], "profile": "Any", "builtin": True})

    @staticmethod
    def _gateway_for(ip: str, prefix: int) -> str:
        net = ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
        return str(next(net.hosts()))

    def _new_adapter(self, name: str, description: str, mac: str | None = None,
                     switch_id: str | None = None) -> NetAdapter:
        if mac is None:
            mac = f"{self.host.mac_prefix}{self.host.mac_pool_start + 0x8000 + self.next_mac:06X}"
            self.next_mac += 1
        ad = NetAdapter(name, self.next_if_index, mac, description, switch_id)
        self.next_if_index += 1
        self.adapters.append(ad)
        return ad

    # --- switches ----------------------------------------------------------------------------

    def find_switches(self, name: str | None = None, switch_type: str | None = None) -> list[VMSwitch]:
        out = list(self.switches.values())
        if name is not None:
            out = [s for s in out if P.wildcard_match(name, s.name)]
        if switch_type is not None:
            out = [s for s in out if s.switch_type.lower() == switch_type.lower()]
        return out

    def new_switch(self, name: str, switch_type: str | None = None, net_adapter_name: str | None = None,
                   allow_management_os: bool | None = None, notes: str = "") -> VMSwitch:
        """New-VMSwitch: -SwitchType Internal|Private, or External via -NetAdapterName."""
        if net_adapter_name:
            phys = self.adapter_by_alias(net_adapter_name)
            if phys is None or phys.switch_id is not None:
                raise PSError(f'Hyper-V was unable to find a network adapter with name "{net_adapter_name}".',
                              "InvalidParameter", "InvalidArgument",
                              exception_type=HE.VE)  # unconfirmed text; no target, as Hyper-V's records
            if any(s.net_adapter_name and s.net_adapter_name.lower() == net_adapter_name.lower()
                   for s in self.switches.values()):
                raise PSError("Failed while adding virtual Ethernet switch connections.\nExternal Ethernet "
                              f"adapter '{phys.interface_description}' is already bound to the Microsoft "
                              "Virtual Switch protocol.", "Unspecified", "NotSpecified",
                              exception_type=HE.VE)  # unconfirmed text; no target, as Hyper-V's records
            stype = "External"
            amos = True if allow_management_os is None else allow_management_os
        else:
            stype = (switch_type or "Private").capitalize()
            amos = stype == "Internal"
        sw = VMSwitch(name, stype, net_adapter_name=net_adapter_name, allow_management_os=amos, notes=notes)
        self.switches[sw.id] = sw
        if amos:
            alias = self._unique_alias(f"vEthernet ({name})")
            vnic = self._new_adapter(alias, f"Hyper-V Virtual Ethernet Adapter #{len(self.switches) + 1}",
                                     switch_id=sw.id)
            if stype == "External" and net_adapter_name:
                # The physical NIC's addresses move to the management vNIC.
                for a in self.addresses:
                    if a.interface_alias.lower() == net_adapter_name.lower():
                        a.interface_alias, a.interface_index = vnic.name, vnic.interface_index
            else:
                self.addresses.append(self._apipa(vnic))
        return sw

    def _unique_alias(self, alias: str) -> str:
        names = {a.name.lower() for a in self.adapters}
        if alias.lower() not in names:
            return alias
        n = 2
        while f"{alias} {n}".lower() in names:
            n += 1
        return f"{alias} {n}"

    def _apipa(self, vnic: NetAdapter) -> NetIPAddress:
        # Deterministic link-local address derived from the interface index.
        return NetIPAddress(f"169.254.{(vnic.interface_index * 37) % 254 + 1}.{(vnic.interface_index * 91) % 254 + 1}",
                            16, vnic.name, vnic.interface_index, "WellKnown", "Link")

    def remove_switch(self, sw: VMSwitch) -> None:
        """Remove-VMSwitch: its host vNIC and that vNIC's addresses go too."""
        for ad in [a for a in self.adapters if a.switch_id == sw.id]:
            if sw.switch_type == "External" and sw.net_adapter_name:
                for a in self.addresses:
                    if a.interface_index == ad.interface_index:
                        phys = self.adapter_by_alias(sw.net_adapter_name)
                        if phys:
                            a.interface_alias, a.interface_index = phys.name, phys.interface_index
            self.addresses = [a for a in self.addresses if a.interface_index != ad.interface_index]
            self.adapters.remove(ad)
        del self.switches[sw.id]

    def vnic_for_switch(self, sw: VMSwitch) -> NetAdapter | None:
        return next((a for a in self.adapters if a.switch_id == sw.id), None)

    # --- adapters and addresses ---------------------------------------------------------------

    def adapter_by_alias(self, alias: str) -> NetAdapter | None:
        return next((a for a in self.adapters if a.name.lower() == alias.lower()), None)

    def adapter_by_index(self, index: int) -> NetAdapter | None:
        return next((a for a in self.adapters if a.interface_index == int(index)), None)

    def new_ip_address(self, ip: str, prefix_length: int, alias: str | None = None, index: int | None = None,
                       default_gateway: str | None = None) -> NetIPAddress:
        """New-NetIPAddress on a host interface."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            raise _netip_failed("The parameter is incorrect.", 87, "InvalidArgument") from None
        ad = self.adapter_by_alias(alias) if alias is not None else (
            self.adapter_by_index(index) if index is not None else None)
        if ad is None:
            what, value = ("InterfaceAlias", alias) if alias is not None else ("InterfaceIndex", str(index))
            raise PE.cdxml_not_found("New-NetIPAddress", "MSFT_NetIPInterface", what, str(value))
        max_len = 128 if addr.version == 6 else 32
        if not 0 <= int(prefix_length) <= max_len:
            raise _netip_failed("The parameter is incorrect.", 87, "InvalidArgument")
        for a in self.addresses:
            if ipaddress.ip_address(a.ip) == addr:
                if a.interface_index == ad.interface_index:
                    raise _netip_failed("Instance MSFT_NetIPAddress already exists", 87, "InvalidArgument")
                raise _netip_failed("The object already exists.", 5010, "NotSpecified")
        # A manual address replaces the vNIC's link-local autoconfiguration (as Windows does).
        self.addresses = [a for a in self.addresses
                          if not (a.interface_index == ad.interface_index and a.suffix_origin == "Link")]
        rec = NetIPAddress(str(addr), int(prefix_length), ad.name, ad.interface_index, "Manual", "Manual",
                           default_gateway)
        self.addresses.append(rec)
        return rec

    def remove_ip_address(self, rec: NetIPAddress) -> None:
        self.addresses.remove(rec)

    # --- NAT ------------------------------------------------------------------------------------

    def new_nat(self, name: str, internal_prefix: str | None = None, external_prefix: str | None = None) -> NetNat:
        """New-NetNat: overlapping internal prefixes (with a NAT or the host's external subnet) fail."""
        if self.nats and self.host.os_build <= 14393:
            raise _nat_invalid()  # WS2016: one internal prefix per host (docs/facts.md "WinNAT")
        if internal_prefix is None:
            return self._add_nat(NetNat(name, "", external_prefix))
        try:
            net = ipaddress.ip_network(internal_prefix, strict=False)
        except ValueError:
            raise _nat_invalid() from None
        for nat in self.nats:
            if nat.internal_prefix and ipaddress.ip_network(nat.internal_prefix, strict=False).overlaps(net):
                raise _nat_invalid()
        for a in self.addresses:
            if a.family == "IPv4" and a.prefix_origin != "WellKnown" and a.suffix_origin != "Link":
                ad = self.adapter_by_index(a.interface_index)
                is_external = ad is not None and (ad.switch_id is None or self.switches.get(
                    ad.switch_id, VMSwitch("", "Internal")).switch_type == "External")
                if is_external and a.network.overlaps(net):
                    raise _nat_invalid()
        if any(n.name.lower() == name.lower() for n in self.nats):
            raise _nat_invalid()
        return self._add_nat(NetNat(name, str(internal_prefix), external_prefix))

    def _add_nat(self, nat: NetNat) -> NetNat:
        self.nats.append(nat)
        return nat

    def find_nats(self, name: str | None = None) -> list[NetNat]:
        if name is None:
            return list(self.nats)
        return [n for n in self.nats if P.wildcard_match(name, n.name)]

    def remove_nat(self, nat: NetNat) -> None:
        self.nats.remove(nat)

    def nat_route(self, ip: str, switch_id: str | None) -> NetNat | None:
        """The NAT that translates traffic of ``ip`` on the switch ``switch_id``, if any: the address is inside
        the NAT's internal prefix, the switch is Internal, and the switch's host vNIC has an address whose subnet
        holds ``ip`` (the gateway the guest uses). One NAT serves every switch that meets this."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        sw = self.switches.get(switch_id or "")
        vnic = self.vnic_for_switch(sw) if sw is not None and sw.switch_type == "Internal" else None
        if vnic is None:
            return None
        if not any(a.interface_index == vnic.interface_index and a.family == "IPv4" and a.suffix_origin != "Link"
                   and addr in a.network for a in self.addresses):
            return None
        for nat in self.nats:
            if nat.internal_prefix and addr in ipaddress.ip_network(nat.internal_prefix, strict=False):
                return nat
        return None

    def add_static_mapping(self, nat: NetNat, protocol: str, external_ip: str, external_port: int,
                           internal_ip: str, internal_port: int) -> dict[str, Any]:
        """Add-NetNatStaticMapping: an external port (per protocol) is mapped once on the host, whichever NAT
        holds the mapping (WinNAT blog: "individual external host ports can only be mapped to one internal
        endpoint")."""
        for other in self.nats:
            for m in other.static_mappings:
                if m["protocol"].upper() == protocol.upper() and m["external_port"] == external_port:
                    raise NE.static_mapping_exists()
        m = {"id": max((x["id"] for x in nat.static_mappings), default=-1) + 1, "protocol": protocol.upper(),
             "external_ip": external_ip, "external_port": external_port, "internal_ip": internal_ip,
             "internal_port": internal_port}
        nat.static_mappings.append(m)
        return m

    # --- firewall ----------------------------------------------------------------------------------

    def new_firewall_rule(self, rule: dict[str, Any]) -> dict[str, Any]:
        """New-NetFirewallRule: rule names (ids) are unique in a store."""
        if any(r["name"].lower() == rule["name"].lower() for r in self.firewall_rules):
            # ERROR_ALREADY_EXISTS through CIM (text is Win32's; category unconfirmed).
            raise PE.cim_method_failed("Cannot create a file when that file already exists.", 183,
                                      "New-NetFirewallRule", "NotSpecified",
                                      "ROOT/StandardCimv2/MSFT_NetFirewallRule")
        self.firewall_rules.append(rule)
        return rule

    # --- persistence ----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "switches": [asdict(s) for s in self.switches.values()],
            "adapters": [asdict(a) for a in self.adapters],
            "addresses": [asdict(a) for a in self.addresses],
            "nats": [asdict(n) for n in self.nats],
            "firewall_rules": [dict(r) for r in self.firewall_rules],
            "next_if_index": self.next_if_index, "next_mac": self.next_mac,
        }

    def load_state(self, s: dict[str, Any]) -> None:
        self.switches = {d["id"]: VMSwitch(**d) for d in s["switches"]}
        self.adapters = [NetAdapter(**d) for d in s["adapters"]]
        self.addresses = [NetIPAddress(**d) for d in s["addresses"]]
        self.nats = [NetNat(**d) for d in s["nats"]]
        self.firewall_rules = [dict(r) for r in s.get("firewall_rules", [])]
        self.next_if_index = s["next_if_index"]
        self.next_mac = s["next_mac"]
