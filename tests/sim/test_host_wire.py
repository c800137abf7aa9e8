"""Host cmdlets through the real client: pypsrp -> WinRM -> runtime -> host handlers -> model."""

from __future__ import annotations

from typing import Any

from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import TaggedValue

import hvsim.hyperv.handlers.host
import hvsim.hyperv.handlers.vm
import hvsim.networking.handlers
import hvsim.storage.handlers.disks
import hvsim.storage.handlers.files
import hvsim.storage.handlers.vhd  # noqa: F401  (registers the handlers the runtime dispatches to)
from hvsim.server import Simulator

GB = 1024**3
BASE = "C:\\LabBases\\WS2022-Core.vhdx"
SW = object()  # a switch given without a value


def _run(pool: RunspacePool, name: str, **params: Any) -> PowerShell:
    ps = PowerShell(pool)
    ps.add_cmdlet(name)
    for k, v in params.items():
        if isinstance(v, int) and not isinstance(v, bool) and v > 2**31 - 1:
            v = TaggedValue("I64", v)  # pypsrp tags every int as I32 (labctl's transport does the same)
        if v is SW:
            ps.add_parameter(k)
        else:
            ps.add_parameter(k, v)
    ps.invoke()
    return ps


def _props(obj: Any) -> dict[str, Any]:
    return {**obj.adapted_properties, **obj.extended_properties}


def test_lab_flow_over_the_wire(sim: Simulator, pool: RunspacePool) -> None:
    ps = _run(pool, "New-VMSwitch", Name="LabNat", SwitchType="Internal")
    assert not ps.had_errors, [str(e) for e in ps.streams.error]
    assert ps.output[0].types[0] == "Microsoft.HyperV.PowerShell.VMSwitch"  # the client adds "Deserialized."
    ps = _run(pool, "New-NetIPAddress", IPAddress="172.16.0.1", PrefixLength=24, InterfaceAlias="vEthernet (LabNat)")
    assert not ps.had_errors, [str(e) for e in ps.streams.error]
    assert len(ps.output) == 2
    ps = _run(pool, "New-NetNat", Name="LabNat", InternalIPInterfaceAddressPrefix="172.16.0.0/24")
    assert not ps.had_errors
    ps = _run(pool, "New-NetNat", Name="Again", InternalIPInterfaceAddressPrefix="172.16.0.0/24")
    assert ps.had_errors
    assert str(ps.streams.error[0]) == "The parameter is incorrect."
    assert ps.streams.error[0].fq_error == "Windows System Error 87,New-NetNat"

    _run(pool, "New-Item", Path="C:\\Lab", ItemType="Directory")
    ps = _run(pool, "New-VHD", Path="C:\\Lab\\a.vhdx", ParentPath=BASE, Differencing=SW)
    assert not ps.had_errors, [str(e) for e in ps.streams.error]
    ps = _run(pool, "Mount-VHD", Path="C:\\Lab\\a.vhdx", Passthru=SW)
    disk = _props(ps.output[0])["DiskNumber"]
    ps = _run(pool, "Get-Partition", DiskNumber=disk)
    letters = [_props(p)["DriveLetter"] for p in ps.output if _props(p)["Type"] == "Basic"]
    assert letters == ["E"]
    ps = _run(pool, "Set-Content", Path="E:\\Windows\\Panther\\unattend.xml", Value="<unattend/>", Encoding="UTF8")
    assert not ps.had_errors, [str(e) for e in ps.streams.error]
    _run(pool, "Dismount-VHD", Path="C:\\Lab\\a.vhdx")

    ps = _run(pool, "New-VM", Name="web", Generation=2, MemoryStartupBytes=2 * GB, VHDPath="C:\\Lab\\a.vhdx",
              SwitchName="LabNat")
    assert not ps.had_errors, [str(e) for e in ps.streams.error]
    ps = _run(pool, "Set-VMProcessor", VMName="web", ExposeVirtualizationExtensions=True, Count=2)
    assert not ps.had_errors, [str(e) for e in ps.streams.error]
    ps = _run(pool, "Start-VM", Name="web")
    assert not ps.had_errors, [str(e) for e in ps.streams.error]
    ps = _run(pool, "Start-VM", Name="web")
    assert [w.message for w in ps.streams.warning] == ["The virtual machine is already in the specified state."]
    ps = _run(pool, "Get-VM", Name="web")
    (vm,) = ps.output
    assert vm.types[0] == "Microsoft.HyperV.PowerShell.VirtualMachine"
    props = _props(vm)
    assert str(props["State"]) == "Running"
    assert props["MemoryAssigned"] == 2 * GB and props["ProcessorCount"] == 2
    ps = _run(pool, "Set-VMProcessor", VMName="web", ExposeVirtualizationExtensions=False)
    assert ps.streams.error  # non-terminating: pypsrp's had_errors stays False
    assert ps.streams.error[0].fq_error == "InvalidState,Microsoft.HyperV.PowerShell.Commands.SetVMProcessor"

    ps = _run(pool, "Get-VM", Name="nope")
    assert str(ps.streams.error[0]) == 'Hyper-V was unable to find a virtual machine with name "nope".'
    assert ps.streams.error[0].fq_error == "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM"
    ps = _run(pool, "Remove-Item", Path=BASE)
    assert "because it is being used by another process" in str(ps.streams.error[0])
    ps = _run(pool, "Get-Volume", DriveLetter="C")
    assert _props(ps.output[0])["SizeRemaining"] > 100 * 1000**3


def test_out_of_memory_over_the_wire(sim: Simulator, pool: RunspacePool) -> None:
    ps = _run(pool, "New-VM", Name="huge", MemoryStartupBytes=128 * GB)
    assert not ps.had_errors, [str(e) for e in ps.streams.error]
    ps = _run(pool, "Start-VM", Name="huge")
    err = ps.streams.error[0]
    assert err.fq_error == "OutOfMemory,Microsoft.HyperV.PowerShell.Commands.StartVM"
    assert "Not enough memory in the system to start the virtual machine huge." in str(err)
