"""Host-side handlers through Runtime.run with RawCommands (what the PSRP glue hands over)."""

from __future__ import annotations

from typing import Any

import pytest
from model_helpers import GB, FakeSink, make_world

import hvsim.hyperv.handlers.host
import hvsim.hyperv.handlers.vm
import hvsim.networking.handlers
import hvsim.storage.handlers.disks
import hvsim.storage.handlers.files
import hvsim.storage.handlers.vhd  # noqa: F401  (registers the handlers)
from hvsim.powershell.cmdlet import Session
from hvsim.powershell.errors import PSError
from hvsim.powershell.runtime import RawCommand, Runtime
from hvsim.powershell.values import PRESENT, Int64

BASE = "C:\\LabBases\\WS2022-Core.vhdx"


def run(rt: Runtime, *pipeline: RawCommand, input: list[Any] | None = None) -> FakeSink:
    sink = FakeSink()
    rt.run([list(pipeline)], input or [], sink, Session(username="Administrator"))
    return sink


def cmd(name: str, *positional: Any, **named: Any) -> RawCommand:
    params: list[tuple[str | None, Any]] = [(None, p) for p in positional]
    params += [(k, v) for k, v in named.items()]
    return RawCommand(name, params)


@pytest.fixture
def rt() -> Runtime:
    return Runtime(make_world())


def test_new_vm_and_pipeline_start(rt: Runtime) -> None:
    run(rt, cmd("New-Item", "C:\\Lab", ItemType="Directory"))
    run(rt, cmd("New-VHD", "C:\\Lab\\a.vhdx", ParentPath=BASE, Differencing=PRESENT))
    sink = run(rt, cmd("New-VM", "a", MemoryStartupBytes=Int64(2 * GB), Generation=2, VHDPath="C:\\Lab\\a.vhdx"))
    assert sink.outputs[0].get("Name") == "a"
    run(rt, cmd("Get-VM", "a"), cmd("Start-VM"))
    sink = run(rt, cmd("Get-VM", "a"))
    assert sink.outputs[0].get("State").name == "Running"
    sink = run(rt, cmd("Start-VM", "a"))
    assert sink.warnings == ["The virtual machine is already in the specified state."]


def test_missing_vm_fqid(rt: Runtime) -> None:
    sink = run(rt, cmd("Get-VM", "nope"))
    assert sink.errors[0].fqid == "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM"
    with pytest.raises(PSError) as e:
        run(rt, cmd("Get-VM", "nope", ErrorAction="Stop"))
    assert e.value.fqid == "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM"


def test_set_vmprocessor_running_then_off(rt: Runtime) -> None:
    run(rt, cmd("New-VM", "n", MemoryStartupBytes=Int64(GB)))
    run(rt, cmd("Start-VM", "n"))
    sink = run(rt, cmd("Set-VMProcessor", "n", ExposeVirtualizationExtensions=True))
    assert sink.errors and sink.errors[0].fqid.startswith("InvalidState,")
    run(rt, cmd("Stop-VM", "n", TurnOff=PRESENT))
    sink = run(rt, cmd("Set-VMProcessor", "n", ExposeVirtualizationExtensions=True, Count=2))
    assert not sink.errors
    sink = run(rt, cmd("Get-VMProcessor", "n"))
    assert sink.outputs[0].get("ExposeVirtualizationExtensions") is True


def test_mount_write_unattend_dismount(rt: Runtime) -> None:
    run(rt, cmd("New-Item", "C:\\Lab", ItemType="Directory"))
    run(rt, cmd("New-VHD", "C:\\Lab\\a.vhdx", ParentPath=BASE, Differencing=PRESENT))
    sink = run(rt, cmd("Mount-VHD", "C:\\Lab\\a.vhdx", Passthru=PRESENT), cmd("Get-Disk"))
    assert [d.get("Number") for d in sink.outputs] == [1]
    # Get-Disk | Get-Partition binds -UniqueId while the catalog's default set is ByUniqueId (reported);
    # -DiskNumber is what labctl uses.
    sink = run(rt, cmd("Get-Partition", DiskNumber=1), cmd("Get-Volume"))
    letters = [v.get("DriveLetter") for v in sink.outputs]
    assert letters == ["E"]
    run(rt, cmd("Set-Content", "E:\\Windows\\Panther\\unattend.xml", "<unattend/>"))
    sink = run(rt, cmd("Get-Content", "E:\\Windows\\Panther\\unattend.xml", Raw=PRESENT))
    assert sink.outputs == ["<unattend/>\r\n"]
    run(rt, cmd("Dismount-VHD", "C:\\Lab\\a.vhdx"))
    sink = run(rt, cmd("Test-Path", "E:\\Windows"))
    assert sink.outputs == [False]
    assert rt.world.storage.read_file("C:\\Lab\\a.vhdx", "\\Windows\\Panther\\unattend.xml") == b"<unattend/>\r\n"


def test_volume_c_size_remaining(rt: Runtime) -> None:
    sink = run(rt, cmd("Get-Volume", DriveLetter="C"))
    assert sink.outputs[0].get("SizeRemaining") == 200 * 1000**3


def test_switch_nat_ip(rt: Runtime) -> None:
    run(rt, cmd("New-VMSwitch", "LabNat", SwitchType="Internal"))
    run(rt, cmd("New-NetIPAddress", IPAddress="172.16.0.1", PrefixLength=24, InterfaceAlias="vEthernet (LabNat)"))
    run(rt, cmd("New-NetNat", "LabNat", InternalIPInterfaceAddressPrefix="172.16.0.0/24"))
    with pytest.raises(PSError) as e:
        run(rt, cmd("New-NetNat", "Other", InternalIPInterfaceAddressPrefix="172.16.0.0/20"))
    assert e.value.fqid == "Windows System Error 87,New-NetNat"
    assert e.value.message == "The parameter is incorrect."
    sink = run(rt, cmd("Get-NetNat"))
    assert [o.get("InternalIPInterfaceAddressPrefix") for o in sink.outputs] == ["172.16.0.0/24"]


def test_state_is_saved_after_mutation(tmp_path: Any) -> None:
    rt = Runtime(make_world(tmp_path))
    run(rt, cmd("New-VMSwitch", "LabNat", SwitchType="Internal"))
    assert (tmp_path / "state.json").exists()
    assert rt.world.dirty is False


def test_firewall_and_static_mappings(rt: Runtime) -> None:
    sink = run(rt, cmd("New-NetFirewallRule", Name="docker-tls", DisplayName="Docker TLS", Direction="Inbound",
                       Protocol="TCP", LocalPort=["2376"], Action="Allow"))
    assert sink.outputs[0].get("Enabled").name == "True"
    with pytest.raises(PSError) as e:
        run(rt, cmd("New-NetFirewallRule", Name="docker-tls", DisplayName="again"))
    assert e.value.fqid == "Windows System Error 183,New-NetFirewallRule"
    sink = run(rt, cmd("Get-NetFirewallRule", Name="nope"))
    assert sink.errors[0].fqid == "CmdletizationQuery_NotFound_Name,Get-NetFirewallRule"
    run(rt, cmd("New-NetNat", "LabNat", InternalIPInterfaceAddressPrefix="172.16.0.0/24"))
    sink = run(rt, cmd("Add-NetNatStaticMapping", NatName="LabNat", Protocol="TCP", ExternalIPAddress="0.0.0.0",
                       ExternalPort=2376, InternalIPAddress="172.16.0.10", InternalPort=2376))
    assert sink.outputs[0].get("InternalIPAddress") == "172.16.0.10"
    run(rt, cmd("Remove-NetNatStaticMapping", NatName="LabNat"))
    assert rt.world.network.nats[0].static_mappings == []
