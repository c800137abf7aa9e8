"""WinNAT as labctl's multi-copy layout uses it (docs/facts.md "WinNAT"): one NetNat whose internal prefix is the
whole copy pool, one Internal switch per copy whose host vNIC is the copy's gateway, RDP published through static
mappings. Driven through the PowerShell runtime with the parameters labctl sends."""

from __future__ import annotations

from typing import Any

import pytest
from model_helpers import FakeSink

import hvsim.hyperv.handlers.host
import hvsim.hyperv.handlers.vm
import hvsim.networking.handlers  # noqa: F401  (registers the handlers)
from hvsim.core.clock import Clock
from hvsim.core.counters import Counters
from hvsim.core.faults import FaultPlan
from hvsim.powershell.cmdlet import Session
from hvsim.powershell.errors import PSError
from hvsim.powershell.runtime import RawCommand, Runtime
from hvsim.world import World

POOL = "10.50.0.0/16"




def run(world: World, name: str, **params: Any) -> FakeSink:
    out = FakeSink()
    try:
        Runtime(world).run([[RawCommand(name, list(params.items()))]], [], out, Session("Administrator"))
    except PSError as err:
        out.errors.append(err)
    return out


def host(build: int = 26100) -> World:
    return World(None, Clock(), FaultPlan(), Counters(), host_config={"os_build": build})


def copies(world: World, n: int) -> None:
    """N lab copies: switch lab-K with its host vNIC at 10.50.K.1/24, then one NAT over the pool."""
    for k in range(1, n + 1):
        assert not run(world, "New-VMSwitch", Name=f"lab-{k}", SwitchType="Internal").errors
        out = run(world, "New-NetIPAddress", IPAddress=f"10.50.{k}.1", PrefixLength=24,
                  InterfaceAlias=f"vEthernet (lab-{k})")
        assert not out.errors
    assert not run(world, "New-NetNat", Name="labctl-pool", InternalIPInterfaceAddressPrefix=POOL).errors


def switch_id(world: World, name: str) -> str:
    return world.network.find_switches(name)[0].id


@pytest.mark.parametrize("build", [14393, 17763, 20348, 26100])
def test_one_nat_over_the_pool_translates_every_copys_switch(build: int) -> None:
    world = host(build)
    copies(world, 3)
    nats = run(world, "Get-NetNat").outputs
    assert [n.get("InternalIPInterfaceAddressPrefix") for n in nats] == [POOL]
    for k in (1, 2, 3):
        nat = world.network.nat_route(f"10.50.{k}.10", switch_id(world, f"lab-{k}"))
        assert nat is not None and nat.name == "labctl-pool"
    # An address of another copy's subnet on this switch has no gateway there: not translated.
    assert world.network.nat_route("10.50.2.10", switch_id(world, "lab-1")) is None
    # A switch whose vNIC is outside the pool is not behind the NAT.
    run(world, "New-VMSwitch", Name="other", SwitchType="Internal")
    run(world, "New-NetIPAddress", IPAddress="10.60.0.1", PrefixLength=24, InterfaceAlias="vEthernet (other)")
    assert world.network.nat_route("10.60.0.10", switch_id(world, "other")) is None
    # A Private switch has no host vNIC: nothing routes it.
    run(world, "New-VMSwitch", Name="iso", SwitchType="Private")
    assert world.network.nat_route("10.50.9.10", switch_id(world, "iso")) is None


def test_overlapping_or_second_nats_are_refused_as_windows_does() -> None:
    world = host(26100)
    copies(world, 1)
    err = run(world, "New-NetNat", Name="overlap", InternalIPInterfaceAddressPrefix="10.50.7.0/24").errors[0]
    assert err.message == "The parameter is incorrect."
    assert err.fqid == "Windows System Error 87,New-NetNat" and err.category == "InvalidArgument"
    assert err.target == "MSFT_NetNat"
    # Disjoint prefixes: accepted on later builds (unsupported per Microsoft's guide; docs/facts.md "WinNAT").
    assert not run(world, "New-NetNat", Name="disjoint", InternalIPInterfaceAddressPrefix="172.31.0.0/24").errors
    ws2016 = host(14393)
    copies(ws2016, 1)
    err = run(ws2016, "New-NetNat", Name="disjoint", InternalIPInterfaceAddressPrefix="172.31.0.0/24").errors[0]
    assert err.fqid == "Windows System Error 87,New-NetNat"
    assert len(run(ws2016, "Get-NetNat").outputs) == 1


def test_rdp_mappings_one_external_port_each_host_wide() -> None:
    world = host()
    copies(world, 2)

    def rdp(port: int, ip: str) -> FakeSink:
        return run(world, "Add-NetNatStaticMapping", NatName="labctl-pool", Protocol="TCP",
                   ExternalIPAddress="0.0.0.0", ExternalPort=port, InternalIPAddress=ip, InternalPort=3389)

    first, second = rdp(33891, "10.50.1.10"), rdp(33892, "10.50.2.10")
    assert not first.errors and not second.errors
    assert [m.get("StaticMappingID") for m in (first.outputs[0], second.outputs[0])] == [0, 1]
    assert second.outputs[0].get("Protocol").name == "TCP" and second.outputs[0].get("InternalPort") == 3389
    err = rdp(33891, "10.50.2.11").errors[0]
    assert err.message == "The object already exists."
    assert err.fqid == "Windows System Error 5010,Add-NetNatStaticMapping"
    assert err.target == "MSFT_NetNatStaticMapping"
    # UDP on the same port number is another mapping.
    udp = run(world, "Add-NetNatStaticMapping", NatName="labctl-pool", Protocol="UDP", ExternalIPAddress="0.0.0.0",
              ExternalPort=33891, InternalIPAddress="10.50.1.10", InternalPort=3389)
    assert not udp.errors
    mapped = run(world, "Get-NetNatStaticMapping", NatName="labctl-pool").outputs
    assert [(m.get("ExternalPort"), m.get("InternalIPAddress")) for m in mapped] == [
        (33891, "10.50.1.10"), (33892, "10.50.2.10"), (33891, "10.50.1.10")]
