"""Host-side cmdlet handlers called directly (hand-bound parameters, a fake sink)."""

from __future__ import annotations

import uuid

import pytest
from model_helpers import GB, MB, call, make_world

from hvsim.powershell.errors import PSError
from hvsim.powershell.values import Int64, PSEnum, PSObj, TimeSpan, UInt64

BASE = "C:\\LabBases\\WS2022-Core.vhdx"


def test_get_vm_shape_and_missing() -> None:
    w = make_world()
    (vm,), _ = call(w, "New-VM", Name="web", MemoryStartupBytes=2 * GB, Generation=2)
    assert vm.type_names[0] == "Microsoft.HyperV.PowerShell.VirtualMachine"
    out, sink = call(w, "Get-VM", Name=["web", "nope"])
    assert len(out) == 1
    o = out[0]
    assert o.get("State") == PSEnum("Microsoft.HyperV.PowerShell.VMState", "Off", 3)
    assert o.get("Status") == "Operating normally"
    assert o.get("MemoryAssigned") == 0 and isinstance(o.get("MemoryStartup"), Int64)
    assert o.get("Heartbeat") is None and o.get("Uptime") == TimeSpan(0.0)
    assert isinstance(o.get("Id"), uuid.UUID) and o.get("Generation") == 2
    err = sink.errors[0]
    assert err.message == 'Hyper-V was unable to find a virtual machine with name "nope".'
    assert (err.error_id, err.category) == ("InvalidParameter", "InvalidArgument")
    assert err.exception_type == "Microsoft.HyperV.PowerShell.VirtualizationException"
    out, sink = call(w, "Get-VM", Name=["w*", "x*"])
    assert len(out) == 1 and not sink.errors  # wildcards never error


def test_start_stop_warnings_and_running_object() -> None:
    w = make_world()
    w.storage.mkdirs("C:\\Lab")
    call(w, "New-VHD", Path=["C:\\Lab\\a.vhdx"], ParentPath=BASE, Differencing=True)
    call(w, "New-VM", Name="a", MemoryStartupBytes=GB, Generation=2, VHDPath="C:\\Lab\\a.vhdx")
    call(w, "Start-VM", Name=["a"])
    _, sink = call(w, "Start-VM", Name=["a"])
    assert sink.warnings == ["The virtual machine is already in the specified state."]
    (o,), _ = call(w, "Get-VM", Name=["a"])
    assert o.get("State").name == "Running" and o.get("MemoryAssigned") == GB
    assert isinstance(o.get("Heartbeat"), PSEnum)
    (ad,), _ = call(w, "Get-VMNetworkAdapter", VMName=["a"])
    assert ad.get("MacAddress").startswith("00155D")
    call(w, "Stop-VM", Name=["a"], TurnOff=True)
    _, sink = call(w, "Stop-VM", Name=["a"], TurnOff=True)
    assert sink.warnings == ["The virtual machine is already in the specified state."]
    assert w.dirty


def test_start_vm_memory_error_is_non_terminating_per_vm() -> None:
    w = make_world(memory_capacity=8 * GB, host_reserved_memory=GB)
    call(w, "New-VM", Name="big", MemoryStartupBytes=16 * GB)
    call(w, "New-VM", Name="small", MemoryStartupBytes=GB)
    _, sink = call(w, "Start-VM", Name=["big", "small"])
    assert sink.errors[0].error_id == "OutOfMemory"
    assert w.find_vm("small").state == "Running"  # type: ignore[union-attr]
    with pytest.raises(PSError):
        call(w, "Start-VM", error_action="Stop", Name=["big"])


def test_set_vm_processor_while_running_error() -> None:
    w = make_world()
    call(w, "New-VM", Name="n", MemoryStartupBytes=GB)
    call(w, "Start-VM", Name=["n"])
    _, sink = call(w, "Set-VMProcessor", VMName=["n"], ExposeVirtualizationExtensions=True)
    assert sink.errors and sink.errors[0].category == "InvalidOperation"
    call(w, "Stop-VM", Name=["n"], TurnOff=True)
    (p,), _ = call(w, "Set-VMProcessor", VMName=["n"], ExposeVirtualizationExtensions=True, Count=2,
                   Passthru=True)
    assert p.type_names[0] == "Microsoft.HyperV.PowerShell.VMProcessor"
    assert p.get("ExposeVirtualizationExtensions") is True and p.get("Count") == 2


def test_network_adapter_settings() -> None:
    w = make_world()
    call(w, "New-VMSwitch", Name="LabNat", SwitchType=PSEnum("Microsoft.HyperV.PowerShell.VMSwitchType",
                                                               "Internal", 1))
    call(w, "New-VM", Name="a")
    _, sink = call(w, "Connect-VMNetworkAdapter", VMName=["a"], SwitchName="nope")
    assert 'virtual switch with name "nope"' in sink.errors[0].message
    call(w, "Connect-VMNetworkAdapter", VMName=["a"], SwitchName="LabNat")
    (ad,), _ = call(w, "Set-VMNetworkAdapter", VMName=["a"], MacAddressSpoofing="On",
                    StaticMacAddress="00155D010203", Passthru=True)
    assert ad.get("MacAddressSpoofing").name == "On" and ad.get("MacAddress") == "00155D010203"
    assert ad.get("SwitchName") == "LabNat" and ad.get("DynamicMacAddressEnabled") is False
    vm = w.find_vm("a")
    assert vm is not None and vm.network_adapters[0].mac_address_spoofing


def test_integration_services() -> None:
    w = make_world()
    call(w, "New-VM", Name="a")
    out, _ = call(w, "Get-VMIntegrationService", VMName=["a"])
    assert {o.get("Name"): o.get("Enabled") for o in out}["Guest Service Interface"] is False
    call(w, "Enable-VMIntegrationService", VMName=["a"], Name=["Guest Service Interface"])
    vm = w.find_vm("a")
    assert vm is not None and vm.integration_services["Guest Service Interface"] is True


def test_vhd_cmdlets_and_mount_drive_letter() -> None:
    w = make_world()
    w.storage.mkdirs("C:\\Lab")
    (v,), _ = call(w, "New-VHD", Path=["C:\\Lab\\a.vhdx"], ParentPath=BASE, Differencing=True)
    assert v.type_names[0] == "Microsoft.Vhd.PowerShell.VirtualHardDisk"
    assert v.get("VhdType").name == "Differencing" and v.get("ParentPath") == BASE
    assert v.get("FileSize") == 4 * MB and isinstance(v.get("Size"), UInt64)
    _, sink = call(w, "Get-VHD", Path=["C:\\Lab\\nope.vhdx"])
    assert sink.errors[0].message == "'C:\\Lab\\nope.vhdx' is not an existing virtual hard disk file."
    (m,), _ = call(w, "Mount-VHD", Path=["C:\\Lab\\a.vhdx"], Passthru=True)
    assert m.get("Attached") is True and m.get("DiskNumber") == 1
    parts, _ = call(w, "Get-Partition", DiskNumber=[1])
    letters = [p.get("DriveLetter") for p in parts if p.get("Type") == "Basic"]
    assert letters == ["E"]
    (vol,), _ = call(w, "Get-Volume", DriveLetter=["E"])
    assert vol.get("SizeRemaining") > 100 * GB
    (c,), _ = call(w, "Get-Volume", DriveLetter=["C"])
    assert c.get("SizeRemaining") == w.storage.c_free
    disks, _ = call(w, "Get-Disk")
    assert [d.get("Number") for d in disks] == [0, 1]
    assert disks[1].get("Location") == "C:\\Lab\\a.vhdx"
    call(w, "Dismount-VHD", Path=["C:\\Lab\\a.vhdx"])
    _, sink = call(w, "Get-Volume", DriveLetter=["E"])
    assert sink.errors[0].fqid == "CmdletizationQuery_NotFound_DriveLetter,Get-Volume"


def test_file_cmdlets_on_mounted_vhd() -> None:
    w = make_world()
    w.storage.mkdirs("C:\\Lab")
    call(w, "New-VHD", Path=["C:\\Lab\\a.vhdx"], ParentPath=BASE, Differencing=True)
    call(w, "Mount-VHD", Path=["C:\\Lab\\a.vhdx"])
    assert call(w, "Test-Path", Path=["E:\\Windows\\Panther"])[0] == [True]
    assert call(w, "Test-Path", Path=["E:\\Windows\\Panther\\unattend.xml"])[0] == [False]
    assert call(w, "Test-Path", Path=["Q:\\x"])[0] == [False]
    call(w, "Set-Content", Path=["E:\\Windows\\Panther\\unattend.xml"], Value=["<a>", "</a>"])
    assert w.storage.read_file("C:\\Lab\\a.vhdx", "\\Windows\\Panther\\unattend.xml") == b"<a>\r\n</a>\r\n"
    call(w, "Add-Content", Path=["E:\\Windows\\Panther\\unattend.xml"], Value=["x"])
    lines, _ = call(w, "Get-Content", Path=["E:\\Windows\\Panther\\unattend.xml"])
    assert lines == ["<a>", "</a>", "x"]
    raw, _ = call(w, "Get-Content", Path=["E:\\Windows\\Panther\\unattend.xml"], Raw=True)
    assert raw == ["<a>\r\n</a>\r\nx\r\n"]
    call(w, "Set-Content", Path=["C:\\Lab\\u.txt"], Value=["é"], Encoding="UTF8")
    assert w.storage.read(w.storage.resolve("C:\\Lab\\u.txt")) == b"\xef\xbb\xbf\xc3\xa9\r\n"
    assert call(w, "Get-Content", Path=["C:\\Lab\\u.txt"])[0] == ["é"]
    (item,), _ = call(w, "Copy-Item", Path=["C:\\Lab\\u.txt"], Destination="E:\\Windows\\Panther", PassThru=True)
    assert item.get("FullName") == "E:\\Windows\\Panther\\u.txt" and item.type_names[0] == "System.IO.FileInfo"
    names, _ = call(w, "Get-ChildItem", Path=["E:\\Windows\\Panther"], Name=True)
    assert names == ["u.txt", "unattend.xml"]
    _, sink = call(w, "Get-Item", Path=["E:\\nope.txt"])
    err = sink.errors[0]
    assert err.message == "Cannot find path 'E:\\nope.txt' because it does not exist."
    assert (err.error_id, err.category) == ("PathNotFound", "ObjectNotFound")
    (d,), _ = call(w, "New-Item", Path=["E:\\Setup\\Scripts"], ItemType="Directory")
    assert d.type_names[0] == "System.IO.DirectoryInfo"
    _, sink = call(w, "New-Item", Path=["E:\\Setup\\Scripts"], ItemType="Directory")
    assert sink.errors[0].error_id == "DirectoryExist"
    call(w, "Remove-Item", Path=["E:\\Windows\\Panther\\u.txt"])
    assert call(w, "Test-Path", Path=["E:\\Windows\\Panther\\u.txt"])[0] == [False]
    files, _ = call(w, "Get-ChildItem", Path=["C:\\LabBases\\*.vhdx"])
    assert [f.get("Name") for f in files] == ["WS2019-Core.vhdx", "WS2022-Core.vhdx", "WS2025-Core.vhdx"]
    assert all(f.get("Length") > 8 * GB for f in files)


def test_remove_item_of_parent_in_use() -> None:
    w = make_world()
    w.storage.mkdirs("C:\\Lab")
    call(w, "New-VHD", Path=["C:\\Lab\\a.vhdx"], ParentPath=BASE, Differencing=True)
    call(w, "Mount-VHD", Path=["C:\\Lab\\a.vhdx"])
    _, sink = call(w, "Remove-Item", Path=[BASE])
    err = sink.errors[0]
    assert "because it is being used by another process" in err.message
    assert err.exception_type == "System.IO.IOException"


def test_disk_full_through_set_content() -> None:
    w = make_world(c_volume_free=MB)
    _, sink = call(w, "Set-Content", Path=["C:\\big.txt"], Value=["x" * (2 * MB)])
    assert sink.errors[0].message == "There is not enough space on the disk."


def test_switch_nat_ip_cmdlets() -> None:
    w = make_world()
    (sw,), _ = call(w, "New-VMSwitch", Name="LabNat", SwitchType="Internal")
    assert sw.type_names[0] == "Microsoft.HyperV.PowerShell.VMSwitch" and sw.get("SwitchType").name == "Internal"
    _, sink = call(w, "Get-VMSwitch", Name=["nope"])
    assert sink.errors[0].message == 'Hyper-V was unable to find a virtual switch with name "nope".'
    ips, _ = call(w, "New-NetIPAddress", IPAddress="172.16.0.1", PrefixLength=24, InterfaceAlias="vEthernet (LabNat)")
    assert [o.get("PolicyStore") for o in ips] == ["ActiveStore", "PersistentStore"]
    (nat,), _ = call(w, "New-NetNat", Name="LabNat", InternalIPInterfaceAddressPrefix="172.16.0.0/24")
    assert nat.type_names[0] == "Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/MSFT_NetNat"
    with pytest.raises(PSError) as e:
        call(w, "New-NetNat", Name="Two", InternalIPInterfaceAddressPrefix="172.16.0.0/24")
    assert e.value.fqid == "Windows System Error 87,New-NetNat"
    _, sink = call(w, "Get-NetNat", Name=["nope"])
    assert sink.errors[0].fqid == "CmdletizationQuery_NotFound_Name,Get-NetNat"
    ads, _ = call(w, "Get-NetAdapter")
    assert {a.get("Name") for a in ads} == {"Ethernet", "vEthernet (LabNat)"}


def test_host_facts() -> None:
    w = make_world(cpu_vendor="AuthenticAMD")
    (h,), _ = call(w, "Get-VMHost")
    assert h.get("LogicalProcessorCount") == 16 and h.get("MemoryCapacity") == 64 * GB
    assert "12.0" in h.get("SupportedVmVersions")
    (os_,), _ = call(w, "Get-CimInstance", ClassName="Win32_OperatingSystem")
    assert os_.get("BuildNumber") == "26100" and "2025" in os_.get("Caption")
    (cpu,), _ = call(w, "Get-CimInstance", ClassName="Win32_Processor")
    assert cpu.get("Manufacturer") == "AuthenticAMD"
    (cs,), _ = call(w, "Get-CimInstance", ClassName="Win32_ComputerSystem")
    assert cs.get("TotalPhysicalMemory") == 64 * GB
    with pytest.raises(PSError) as e:
        call(w, "Get-CimInstance", ClassName="Win32_Nope")
    assert e.value.error_id == "HRESULT 0x80041010"
    feats, _ = call(w, "Get-WindowsFeature", Name=["Hyper-V"])
    assert [(f.get("Name"), f.get("Installed")) for f in feats] == [("Hyper-V", True)]


def test_checkpoint_cmdlets() -> None:
    w = make_world()
    call(w, "New-VM", Name="c", NewVHDPath="c.vhdx", NewVHDSizeBytes=10 * GB, Generation=2)
    call(w, "Checkpoint-VM", Name=["c"], SnapshotName="one")
    (s,), _ = call(w, "Get-VMSnapshot", VMName=["c"])
    assert isinstance(s, PSObj) and s.get("Name") == "one"
    assert s.type_names[0] == "Microsoft.HyperV.PowerShell.VMSnapshot"
    _, sink = call(w, "Get-VMSnapshot", VMName=["c"], Name="two")
    assert sink.errors[0].message == "Unable to find a snapshot matching the given criteria."
    call(w, "Restore-VMSnapshot", VMName=["c"], Name="one")
    call(w, "Remove-VMSnapshot", VMName=["c"], Name="one")
    assert call(w, "Get-VMSnapshot", VMName=["c"])[0] == []


def test_remove_vm_keeps_disk_and_reports_object_not_found() -> None:
    w = make_world()
    call(w, "New-VM", Name="r", NewVHDPath="r.vhdx", NewVHDSizeBytes=10 * GB)
    call(w, "Remove-VM", Name=["r"], Force=True)
    assert w.find_vms("r") == []
    assert call(w, "Test-Path", Path=["C:\\ProgramData\\Microsoft\\Windows\\Virtual Hard Disks\\r.vhdx"])[0] == [True]
    _, sink = call(w, "Remove-VM", Name=["r"])
    assert (sink.errors[0].error_id, sink.errors[0].category) == ("ObjectNotFound", "ObjectNotFound")


def test_realistic_profile_shows_transitional_states() -> None:
    import threading
    import time

    from hvsim.core.clock import Clock
    from hvsim.core.counters import Counters
    from hvsim.core.faults import FaultPlan
    from hvsim.world import World

    w = World(None, Clock(profile="realistic", speedup=10.0), FaultPlan(), Counters())
    call(w, "New-VM", Name="slow", MemoryStartupBytes=GB)
    seen: list[str] = []
    t = threading.Thread(target=lambda: call(w, "Start-VM", Name=["slow"]))
    t.start()
    deadline = time.time() + 2
    while t.is_alive() and time.time() < deadline:
        with w.lock:
            vm = w.find_vm("slow")
            assert vm is not None
            seen.append(vm.state)
        time.sleep(0.01)
    t.join()
    assert "Starting" in seen
    assert w.find_vm("slow").state == "Running"  # type: ignore[union-attr]
    # Starting VMs already hold their memory.
    assert w.hv.memory_in_use() == GB


def test_vm_lookup_records_get_vm_versus_other_cmdlets() -> None:
    # Get-VM names the missing VM as target (minikube#8970); every other cmdlet: ObjectNotFound, no target.
    w = make_world()
    _, sink = call(w, "Get-VM", Name=["nope"])
    assert (sink.errors[0].error_id, sink.errors[0].category, sink.errors[0].target) == \
        ("InvalidParameter", "InvalidArgument", "nope")
    for name, params in (("Stop-VM", {"Name": ["nope"]}), ("Get-VMProcessor", {"VMName": ["nope"]}),
                         ("Set-VMMemory", {"VMName": ["nope"], "StartupBytes": GB})):
        _, sink = call(w, name, **params)
        assert sink.errors[0].message == 'Hyper-V was unable to find a virtual machine with name "nope".'
        assert (sink.errors[0].error_id, sink.errors[0].category, sink.errors[0].target) == \
            ("ObjectNotFound", "ObjectNotFound", None), name


def test_adapter_and_snapshot_name_lists_are_patterns_each() -> None:
    w = make_world()
    call(w, "New-VMSwitch", Name="LabNet", SwitchType="Internal")
    call(w, "New-VM", Name="a", Generation=2)
    (ad,), sink = call(w, "Connect-VMNetworkAdapter", VMName=["a"], Name=["Network Adapter"], SwitchName="LabNet",
                       Passthru=True)
    assert not sink.errors and ad.get("SwitchName") == "LabNet"
    _, sink = call(w, "Connect-VMNetworkAdapter", VMName=["a"], Name=["Nope", "Net*"], SwitchName="LabNet")
    assert [e.message for e in sink.errors] == ["No network adapter was found with the given criteria."]
    call(w, "Checkpoint-VM", Name=["a"], SnapshotName="one")
    call(w, "Checkpoint-VM", Name=["a"], SnapshotName="two")
    call(w, "Remove-VMSnapshot", VMName=["a"], Name=["one", "two"])
    assert call(w, "Get-VMSnapshot", VMName=["a"])[0] == []
    _, sink = call(w, "Get-VMSnapshot", VMName=["a"], Name="one")
    assert (sink.errors[0].error_id, sink.errors[0].category) == ("ObjectNotFound", "ObjectNotFound")


def test_remove_vm_switch_refused_while_a_running_vm_uses_it() -> None:
    w = make_world()
    call(w, "New-VMSwitch", Name="Data", SwitchType="Internal")
    call(w, "New-VM", Name="a", SwitchName="Data")
    call(w, "Start-VM", Name=["a"])
    _, sink = call(w, "Remove-VMSwitch", Name=["Data"], Force=True)
    assert (sink.errors[0].error_id, sink.errors[0].category) == ("ObjectInUse", "ResourceBusy")
    assert w.network.find_switches("Data")
    call(w, "Stop-VM", Name=["a"], TurnOff=True)
    _, sink = call(w, "Remove-VMSwitch", Name=["Data"], Force=True)
    assert not sink.errors and not w.network.find_switches("Data")
    vm = w.find_vm("a")
    assert vm is not None and vm.network_adapters[0].switch_name is None


def test_get_net_ip_address_not_found_follows_cmdletization() -> None:
    w = make_world()
    ipv4 = PSEnum("Microsoft.PowerShell.Cmdletization.GeneratedTypes.NetIPAddress.AddressFamily", "IPv4", 2)
    ipv6 = PSEnum("Microsoft.PowerShell.Cmdletization.GeneratedTypes.NetIPAddress.AddressFamily", "IPv6", 23)
    # One filter: an error per value that matched nothing; wildcard patterns are silent.
    out, sink = call(w, "Get-NetIPAddress", IPAddress=["192.168.1.50", "10.9.9.9", "10.*"])
    assert [o.get("IPAddress") for o in out] == ["192.168.1.50"]
    assert [(e.fqid, e.target) for e in sink.errors] == [("CmdletizationQuery_NotFound_IPAddress,Get-NetIPAddress",
                                                          "10.9.9.9")]
    assert sink.errors[0].exception_type == "Microsoft.PowerShell.Cmdletization.Cim.CimJobException"
    # Several filters: one error quoting the WQL query, only when nothing matched.
    out, sink = call(w, "Get-NetIPAddress", InterfaceAlias=["Ethernet"], AddressFamily=[ipv4])
    assert len(out) == 1 and not sink.errors
    _, sink = call(w, "Get-NetIPAddress", InterfaceAlias=["Ethernet"], AddressFamily=[ipv6])
    assert sink.errors[0].fqid == "CmdletizationQuery_NotFound,Get-NetIPAddress" and sink.errors[0].target is None
    assert "SELECT * FROM MSFT_NetIPAddress  WHERE ((InterfaceAlias LIKE 'Ethernet')) AND ((AddressFamily = 23))" \
        in sink.errors[0].message
    _, sink = call(w, "Get-NetIPAddress", InterfaceAlias=["Eth*"], IPAddress=["10.*"])
    assert not sink.errors
