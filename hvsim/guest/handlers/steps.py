"""Guest steps of the guest OS itself: probe and remove-answer-file, as the shipped scripts behave.

hvsim.guest.handlers.step says what a guest step is; hvsim.step_registry registers this table.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

from hvsim.guest.handlers.step import StepFn, StepTable, custom_object
from hvsim.guest.models.guest import ANSWER_FILE, Guest, mac_dashed
from hvsim.guest.models.localized import FIREWALL_GROUPS
from hvsim.powershell.values import PSObj

if TYPE_CHECKING:
    from hvsim.world import World

STEPS: StepTable[StepFn] = StepTable()


# ---------------------------------------------------------------------------------------------
# Modeled steps


@STEPS.step("probe")
def probe(world: World, vm: Any, guest: Guest, args: list[Any]) -> list[Any]:
    """templates/guest/probe.ps1: the guest's identity and configuration, the same properties.

    Values are what the guest itself sees (Get-NetAdapter / Get-NetIPAddress), not what KVP
    reports to the host: a static address is configured even on an adapter without a switch.
    """
    adapters: list[PSObj] = []
    all_dns: list[str] = []
    for index, adapter in enumerate(getattr(vm, "network_adapters", []) or []):
        mac = str(adapter.mac_address).replace("-", "").upper()
        iface = guest.interface_for(mac, index) or {}
        statics = [a.split("/")[0] for a in iface.get("addresses", []) if ":" not in a]
        if statics and not iface.get("dhcp"):
            v4 = statics
        else:
            # DHCP without a server: APIPA while the link is up, nothing while it is down.
            v4 = [a for a in guest.ip_addresses(world, vm, mac) if ":" not in a]
        all_dns.extend(d for d in iface.get("dns_servers", []) if d not in all_dns)
        adapters.append(custom_object(
            Name="Ethernet" if index == 0 else f"Ethernet {index + 1}",
            MacAddress=mac_dashed(mac),
            IPv4=v4,
        ))
    disk = vm.hard_drives[0]
    boot = guest.last_boot_up_time
    return [custom_object(
        ComputerName=guest.computer_name,
        Caption=guest.os_caption,
        BuildNumber=int(guest.os_build or 0),
        LastBootUpTime=_dt.datetime.fromtimestamp(boot, tz=_dt.UTC) if boot is not None else None,
        TimeZone=guest.time_zone,
        Adapters=adapters,
        DnsServers=all_dns,
        RdpEnabled=guest.rdp_enabled,
        PSRemoting=guest.psremoting_enabled,
        AnswerFilePresent=world.storage.read_file(disk, ANSWER_FILE) is not None,
    )]


@STEPS.step("probe", versions=("2",))
def probe_v2(world: World, vm: Any, guest: Guest, args: list[Any]) -> list[Any]:
    """templates/guest/probe.ps1 version 2: version 1's properties and FirewallGroups (by group id)."""
    (out,) = probe(world, vm, guest, args)
    groups = []
    for group_id in ("@FirewallAPI.dll,-28752", "@FirewallAPI.dll,-30267"):
        group = next(g for g in FIREWALL_GROUPS if g.group_id == group_id)
        groups.append(custom_object(Group=group_id, DisplayGroup=[group.name(guest.ui_culture)],
                                    Enabled=bool(guest.firewall_groups.get(group_id, False))))
    props = dict(out.props)
    ordered = {}
    for key, value in props.items():
        ordered[key] = value
        if key == "RdpEnabled":
            ordered["FirewallGroups"] = groups
    return [custom_object(**ordered)]


@STEPS.step("remove-answer-file")
def remove_answer_file(world: World, vm: Any, guest: Guest, args: list[Any]) -> list[Any]:
    """templates/guest/remove-answer-file.ps1: delete the answer file (it holds the encoded
    Administrator password)."""
    changed = bool(world.storage.delete_file(vm.hard_drives[0], ANSWER_FILE))
    return [custom_object(Changed=changed, RebootNeeded=False)]

