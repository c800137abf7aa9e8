"""Parsing host facts from the objects a host returns."""

from __future__ import annotations

import datetime as dt

from labctl.hyperv.facts import Ownership, parse_adapter, parse_host_facts, parse_vm
from labctl.transport.base import RemoteObject, Result

HV = "Microsoft.HyperV.PowerShell."


def test_parse_host_facts_reads_every_kind() -> None:
    objs = [
        RemoteObject([HV + "VMHost"], {"ComputerName": "HV01", "LogicalProcessorCount": 16,
                                       "MemoryCapacity": 68719476736, "VirtualHardDiskPath": r"C:\VHD"}),
        RemoteObject(["Microsoft.Management.Infrastructure.CimInstance#root/cimv2/Win32_OperatingSystem"],
                     {"Caption": "Microsoft Windows Server 2025 Datacenter", "BuildNumber": "26100",
                      "FreePhysicalMemory": 1048576}),
        RemoteObject(["Microsoft.Management.Infrastructure.CimInstance#root/cimv2/Win32_Processor"],
                     {"Manufacturer": "GenuineIntel"}),
        RemoteObject(["Microsoft.Management.Infrastructure.CimInstance#ROOT/Microsoft/Windows/Storage/MSFT_Volume"],
                     {"DriveLetter": "C", "SizeRemaining": 1000}),
        RemoteObject([HV + "VirtualMachine"], {"Name": "a", "State": "Running", "Notes": Ownership("l", "1").tag(),
                                               "Uptime": dt.timedelta(minutes=2)}),
        RemoteObject([HV + "VMSwitch"], {"Name": "sw", "SwitchType": "Internal", "Notes": ""}),
        RemoteObject(["Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/MSFT_NetNat"],
                     {"Name": "n", "InternalIPInterfaceAddressPrefix": "10.0.0.0/24"}),
    ]
    f = parse_host_facts(Result(output=objs))
    assert (f.computer_name, f.os_build, f.cpu_vendor, f.hyperv_installed) == ("HV01", 26100, "GenuineIntel", True)
    assert f.free_memory == 1024**3 and f.free_disk == {"C": 1000}
    assert f.vms[0].owner == Ownership("l", "1") and f.vms[0].uptime_seconds == 120
    assert f.switch("SW") is not None and f.nats[0].prefix == "10.0.0.0/24"


def test_ownership_tag_round_trip_and_foreign_notes() -> None:
    tag = Ownership("lab", "123").tag()
    assert Ownership.parse("user text\n" + tag) == Ownership("lab", "123")
    assert Ownership.parse("labctl-owned but broken") is None
    assert Ownership.parse(None) is None


def test_parse_vm_and_adapter_timespans_and_ips() -> None:
    vm = parse_vm(RemoteObject([HV + "VirtualMachine"], {"Name": "x", "Uptime": "1.02:03:04"}))
    assert vm.uptime_seconds == 86400 + 2 * 3600 + 3 * 60 + 4
    ad = parse_adapter(RemoteObject([HV + "VMNetworkAdapter"], {
        "VMName": "x", "MacAddress": "00155d000001", "IPAddresses": ["10.0.0.5", "fe80::1"],
        "MacAddressSpoofing": "On"}))
    assert ad.mac == "00155D000001" and ad.ips == ("10.0.0.5", "fe80::1") and ad.spoofing
