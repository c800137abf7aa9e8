"""Guest steps: the guest-side scripts labctl runs over PowerShell Direct, as the simulator models them.

The simulator cannot run arbitrary PowerShell. A labctl guest script (templates/guest/*.ps1)
declares what it is on its first line, ``# labctl-step: <name> <version>``; the simulator
dispatches that to the handler registered here under that name and version. A script without a
known header is refused by the caller (never a silent success), so a new guest step needs its
model here before the simulator can stand in for a real guest. Each model returns the same
properties as the shipped script.

A handler is ``fn(world, vm, guest, args) -> list[output]``: ``args`` is -ArgumentList, outputs
are PSObj/plain values. It may raise PSError for what the real script would write as an error.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hvsim.model.guest import ANSWER_FILE, Guest, mac_dashed
from hvsim.model.localized import FIREWALL_GROUPS
from hvsim.values import PSObj

if TYPE_CHECKING:
    from hvsim.model.world import World

StepFn = Callable[["World", Any, Guest, list[Any]], list[Any]]

PS_CUSTOM_OBJECT = ["System.Management.Automation.PSCustomObject", "System.Object"]
_HEADER = re.compile(r"^#\s*labctl-step:\s*(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)\s+(?P<version>[0-9]+)\s*$")


@dataclass(frozen=True)
class GuestStep:
    """A registered step: its name, the script versions it models, the handler."""

    name: str
    versions: tuple[str, ...]
    fn: StepFn


GUEST_STEPS: dict[str, GuestStep] = {}  # name -> its first registration
# (name, version) -> model: a step whose behaviour changed gets a second model for its new version, and
# the old version stays modelled as it behaved (a guest may still be configured by an older labctl).
_BY_VERSION: dict[tuple[str, str], GuestStep] = {}


def guest_step(name: str, versions: tuple[str, ...] = ("1",)) -> Callable[[StepFn], StepFn]:
    """Register the model of the guest step ``name`` for the script ``versions``."""

    def deco(fn: StepFn) -> StepFn:
        key = name.lower()
        step = GuestStep(name, versions, fn)
        for version in versions:
            if (key, version) in _BY_VERSION and key in GUEST_STEPS:
                raise ValueError(f"guest step {name} {version} registered twice")
        for version in versions:
            _BY_VERSION[(key, version)] = step
        GUEST_STEPS.setdefault(key, step)
        return fn

    return deco


def parse_header(script: str) -> tuple[str, str] | None:
    """(name, version) from a script's ``# labctl-step:`` header (first non-blank line), or None."""
    for line in script.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        m = _HEADER.match(stripped)
        return (m.group("name"), m.group("version")) if m else None
    return None


def find_step(script: str) -> GuestStep | None:
    """The registered step that models ``script`` (name and version must both match)."""
    header = parse_header(script)
    if header is None:
        return None
    key = header[0].lower()
    if key not in GUEST_STEPS:
        return None
    return _BY_VERSION.get((key, header[1]))


def custom_object(**props: Any) -> PSObj:
    """A [pscustomobject] with ordered properties."""
    return PSObj(list(PS_CUSTOM_OBJECT), dict(props))


# ---------------------------------------------------------------------------------------------
# Modeled steps


@guest_step("probe")
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


@guest_step("probe", versions=("2",))
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


@guest_step("remove-answer-file")
def remove_answer_file(world: World, vm: Any, guest: Guest, args: list[Any]) -> list[Any]:
    """templates/guest/remove-answer-file.ps1: delete the answer file (it holds the encoded
    Administrator password)."""
    changed = bool(world.storage.delete_file(vm.hard_drives[0], ANSWER_FILE))
    return [custom_object(Changed=changed, RebootNeeded=False)]


# The container-host bootstrap steps register themselves on import (model/container_steps.py).
from hvsim.model import container_steps as _container_steps  # noqa: E402,F401
