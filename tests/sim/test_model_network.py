"""Host networking model: switches and vNICs, host IP addresses, NAT rules."""

from __future__ import annotations

import pytest
from model_helpers import make_world

from hvsim.powershell.errors import PSError


def test_internal_switch_gets_host_vnic_with_link_local_address() -> None:
    w = make_world()
    sw = w.network.new_switch("LabNat", "Internal")
    assert sw.switch_type == "Internal" and sw.allow_management_os
    vnic = w.network.adapter_by_alias("vEthernet (LabNat)")
    assert vnic is not None and vnic.mac_address.startswith("00155D")
    addrs = [a for a in w.network.addresses if a.interface_alias == "vEthernet (LabNat)"]
    assert len(addrs) == 1 and addrs[0].ip.startswith("169.254.")


def test_private_switch_has_no_vnic_and_duplicates_are_allowed() -> None:
    w = make_world()
    w.network.new_switch("iso", "Private")
    assert w.network.adapter_by_alias("vEthernet (iso)") is None
    a = w.network.new_switch("dup", "Internal")
    b = w.network.new_switch("dup", "Internal")
    assert a.id != b.id and len(w.network.find_switches("dup")) == 2
    assert w.network.adapter_by_alias("vEthernet (dup) 2") is not None


def test_external_switch_moves_host_address() -> None:
    w = make_world()
    w.network.new_switch("ext", net_adapter_name="Ethernet")
    vnic = w.network.adapter_by_alias("vEthernet (ext)")
    assert vnic is not None
    assert any(a.ip == "192.168.1.50" and a.interface_alias == "vEthernet (ext)" for a in w.network.addresses)
    with pytest.raises(PSError):
        w.network.new_switch("ext2", net_adapter_name="Ethernet")
    with pytest.raises(PSError):
        w.network.new_switch("x", net_adapter_name="NoSuchNic")
    w.network.remove_switch(w.network.find_switches("ext")[0])
    assert any(a.ip == "192.168.1.50" and a.interface_alias == "Ethernet" for a in w.network.addresses)


def test_new_ip_address_rules() -> None:
    w = make_world()
    w.network.new_switch("LabNat", "Internal")
    rec = w.network.new_ip_address("172.16.0.1", 24, alias="vEthernet (LabNat)")
    assert rec.prefix_length == 24
    # The manual address replaces the link-local one.
    assert [a.ip for a in w.network.addresses if a.interface_alias == "vEthernet (LabNat)"] == ["172.16.0.1"]
    with pytest.raises(PSError) as e:
        w.network.new_ip_address("172.16.0.1", 24, alias="vEthernet (LabNat)")
    assert e.value.message == "Instance MSFT_NetIPAddress already exists"
    assert e.value.fqid == "Windows System Error 87,New-NetIPAddress" and e.value.category == "InvalidArgument"
    w.network.new_switch("Other", "Internal")
    with pytest.raises(PSError) as e:
        w.network.new_ip_address("172.16.0.1", 24, alias="vEthernet (Other)")
    assert e.value.fqid == "Windows System Error 5010,New-NetIPAddress"
    with pytest.raises(PSError) as e:
        w.network.new_ip_address("10.0.0.1", 24, alias="vEthernet (Nope)")
    assert e.value.category == "ObjectNotFound"


def test_nat_rules() -> None:
    w = make_world()
    nat = w.network.new_nat("LabNat", "172.16.0.0/24")
    assert nat.internal_prefix == "172.16.0.0/24"
    with pytest.raises(PSError) as e:
        w.network.new_nat("Second", "172.16.0.0/16")  # overlaps the first NAT
    assert e.value.message == "The parameter is incorrect."
    assert e.value.fqid == "Windows System Error 87,New-NetNat" and e.value.category == "InvalidArgument"
    with pytest.raises(PSError):
        w.network.new_nat("Host", "192.168.1.0/24")  # overlaps the host's external subnet
    other = w.network.new_nat("Disjoint", "10.10.0.0/24")
    assert other in w.network.nats
    assert [n.name for n in w.network.find_nats("*")] == ["LabNat", "Disjoint"]
    w.network.remove_nat(nat)
    w.network.new_nat("Again", "172.16.0.0/24")
