"""The simulator's acceptance scenario, driven with the unmodified pypsrp client over loopback.

Over HTTPS (certificate verified) and over HTTP (NTLM + WinRM message encryption): build a nested
VM from a differencing disk with an injected answer file, boot it, log on with PowerShell Direct;
then every refusal a real host makes, with its FullyQualifiedErrorId and text.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pypsrp.complex_objects import PSCredential
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import TaggedValue
from simwire import connect

from hvsim.server import Simulator

BASE = r"C:\LabBases\WS2022-Core.vhdx"
DISK = r"C:\Labs\acc\vm1.vhdx"
MAC = "00155D0A0B01"
GUEST_PASSWORD = "Acc3ptance-Pw!"
PROBE = "# labctl-step: probe 1\nparam()\n$env:COMPUTERNAME\n"


def _encoded(password: str) -> str:
    return base64.b64encode((password + "AdministratorPassword").encode("utf-16-le")).decode()


def answer_file(name: str, ip: str, *, computer_name: str | None = None) -> str:
    comp = 'processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" ' \
           'versionScope="nonSxS"'
    return f"""<?xml version="1.0" encoding="utf-8"?>
<unattend xmlns="urn:schemas-microsoft-com:unattend" xmlns:wcm="http://schemas.microsoft.com/WMIConfig/2002/State">
  <settings pass="specialize">
    <component name="Microsoft-Windows-Shell-Setup" {comp}>
      <ComputerName>{computer_name or name}</ComputerName>
      <TimeZone>UTC</TimeZone>
    </component>
    <component name="Microsoft-Windows-TCPIP" {comp}>
      <Interfaces><Interface wcm:action="add">
        <Ipv4Settings><DhcpEnabled>false</DhcpEnabled></Ipv4Settings>
        <Identifier>00-15-5D-0A-0B-01</Identifier>
        <UnicastIpAddresses><IpAddress wcm:action="add" wcm:keyValue="1">{ip}/24</IpAddress></UnicastIpAddresses>
      </Interface></Interfaces>
    </component>
  </settings>
  <settings pass="oobeSystem">
    <component name="Microsoft-Windows-Shell-Setup" {comp}>
      <UserAccounts><AdministratorPassword><Value>{_encoded(GUEST_PASSWORD)}</Value>
        <PlainText>false</PlainText></AdministratorPassword></UserAccounts>
      <OOBE><HideEULAPage>true</HideEULAPage><SkipMachineOOBE>true</SkipMachineOOBE></OOBE>
    </component>
  </settings>
</unattend>
"""


class Host:
    """A pypsrp pool on the simulator with small helpers to run one statement."""

    def __init__(self, pool: RunspacePool) -> None:
        self.pool = pool

    def run(self, cmd: str, *args: Any, **params: Any) -> tuple[list[Any], PowerShell]:
        ps = PowerShell(self.pool)
        ps.add_cmdlet(cmd)
        for a in args:
            ps.add_argument(a)
        for k, v in params.items():
            if v is None:
                ps.add_parameter(k)  # a switch
            else:
                ps.add_parameter(k, v)
        out = ps.invoke()
        return out, ps

    def ok(self, cmd: str, *args: Any, **params: Any) -> list[Any]:
        out, ps = self.run(cmd, *args, **params)
        assert not ps.had_errors and not ps.streams.error, (cmd, [str(e) for e in ps.streams.error])
        return out

    def fails(self, cmd: str, *args: Any, **params: Any) -> Any:
        _, ps = self.run(cmd, *args, **params)
        assert ps.streams.error, f"{cmd} did not fail"
        return ps.streams.error[0]


def _cred(password: str) -> PSCredential:
    return PSCredential(username="Administrator", password=password)


def _build(h: Host, name: str, ip: str, xml: str, memory: int = 4 * 1024**3) -> None:
    disk = DISK.replace("vm1", name)
    h.ok("New-Item", Path=r"C:\Labs\acc", ItemType="Directory", Force=None)  # New-VHD needs the folder
    h.ok("New-VHD", Path=disk, ParentPath=BASE, Differencing=None)
    disk_obj = h.ok("Mount-VHD", Path=disk, Passthru=None)[0]
    number = disk_obj.adapted_properties["DiskNumber"]
    parts = h.ok("Get-Partition", DiskNumber=number)
    letter = next(str(p.adapted_properties["DriveLetter"]) for p in parts
                  if str(p.adapted_properties.get("DriveLetter") or "").strip("\x00 "))
    h.ok("New-Item", Path=f"{letter}:\\Windows\\Panther", ItemType="Directory", Force=None)
    h.ok("Set-Content", Path=f"{letter}:\\Windows\\Panther\\unattend.xml", Value=xml)
    assert h.ok("Test-Path", Path=f"{letter}:\\Windows\\Panther\\unattend.xml") == [True]
    h.ok("Dismount-VHD", Path=disk)
    h.ok("New-VM", Name=name, Generation=2, MemoryStartupBytes=TaggedValue("I64", memory), VHDPath=disk,
         SwitchName="acc-lab")
    h.ok("Set-VMProcessor", VMName=name, ExposeVirtualizationExtensions=True, Count=2)
    h.ok("Set-VMMemory", VMName=name, DynamicMemoryEnabled=False)
    h.ok("Set-VMNetworkAdapter", VMName=name, MacAddressSpoofing="On", StaticMacAddress=MAC)


@pytest.mark.parametrize("transport", ["https-basic", "https-ntlm", "http-ntlm"])
def test_nested_vm_from_differencing_disk_to_powershell_direct(sim: Simulator, transport: str) -> None:
    with RunspacePool(connect(sim, transport)) as pool:
        pool.exchange_keys()
        h = Host(pool)
        h.ok("New-VMSwitch", Name="acc-lab", SwitchType="Internal")
        h.ok("New-NetIPAddress", IPAddress="10.30.0.1", PrefixLength=24, InterfaceAlias="vEthernet (acc-lab)")
        h.ok("New-NetNat", Name="acc-nat", InternalIPInterfaceAddressPrefix="10.30.0.0/24")
        _build(h, "acc-vm1", "10.30.0.10", answer_file("acc-vm1", "10.30.0.10"))
        h.ok("Start-VM", Name="acc-vm1")
        vm = h.ok("Get-VM", Name="acc-vm1")[0]
        assert "Microsoft.HyperV.PowerShell.VirtualMachine" in vm.types[0]
        props = vm.adapted_properties
        assert str(props["State"]) == "Running" and str(props["Heartbeat"]) == "OkApplicationsHealthy"
        assert props["Generation"] == 2 and props["DynamicMemoryEnabled"] is False
        proc = h.ok("Get-VMProcessor", VMName="acc-vm1")[0].adapted_properties
        assert proc["ExposeVirtualizationExtensions"] is True
        nic = h.ok("Get-VMNetworkAdapter", VMName="acc-vm1")[0].adapted_properties
        assert str(nic["MacAddressSpoofing"]) == "On" and "10.30.0.10" in nic["IPAddresses"]
        out = h.ok("Invoke-Command", VMName="acc-vm1", Credential=_cred(GUEST_PASSWORD),
                   ScriptBlock=TaggedValue("SBK", PROBE))
        info = out[0]
        name = info.adapted_properties.get("ComputerName") or info.extended_properties.get("ComputerName")
        assert str(name).lower() == "acc-vm1"


def test_each_refusal_has_the_real_id_and_text(sim: Simulator) -> None:
    with RunspacePool(connect(sim, "https-ntlm")) as pool:
        pool.exchange_keys()
        h = Host(pool)
        h.ok("New-VMSwitch", Name="acc-lab", SwitchType="Internal")

        err = h.fails("Get-VM", Name="acc-vm1", Bogus="x")
        assert err.fq_error == "NamedParameterNotFound,Microsoft.HyperV.PowerShell.Commands.GetVM"
        assert str(err) == "A parameter cannot be found that matches parameter name 'Bogus'."

        err = h.fails("Get-VM", Name="nope")
        assert err.fq_error == "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM"
        assert str(err) == 'Hyper-V was unable to find a virtual machine with name "nope".'

        err = h.fails("Get-Nothing")
        assert err.fq_error == "CommandNotFoundException"

        _build(h, "acc-vm1", "10.30.0.10", answer_file("acc-vm1", "10.30.0.10"))
        h.ok("Start-VM", Name="acc-vm1")
        err = h.fails("Set-VMProcessor", VMName="acc-vm1", ExposeVirtualizationExtensions=False)
        assert err.fq_error.endswith(",Microsoft.HyperV.PowerShell.Commands.SetVMProcessor")
        assert "current state" in str(err) or "Failed to modify device 'Processor'" in str(err)

        err = h.fails("Invoke-Command", VMName="acc-vm1", Credential=_cred("Wrong-Pass1!"),
                      ScriptBlock=TaggedValue("SBK", PROBE))
        assert "PSSessionStateBroken" in err.fq_error and "credential is invalid" in str(err).lower()

        err = h.fails("Remove-Item", Path=BASE)
        assert "being used by another process" in str(err)

        # Not enough memory: a second VM that would exceed the host's memory.
        _build(h, "acc-big", "10.30.0.11", answer_file("acc-big", "10.30.0.11"), memory=62 * 1024**3)
        err = h.fails("Start-VM", Name="acc-big")
        assert err.fq_error.endswith(",Microsoft.HyperV.PowerShell.Commands.StartVM")
        assert "not enough memory" in str(err).lower() or "Not enough memory" in str(err)

        # A broken answer file: setup fails, the heartbeat never turns healthy, PowerShell Direct is refused.
        h.ok("Remove-VM", Name="acc-big", Force=None)
        _build(h, "acc-bad", "10.30.0.12", answer_file("acc-bad", "10.30.0.12", computer_name="bad name"))
        h.ok("Start-VM", Name="acc-bad")
        vm = h.ok("Get-VM", Name="acc-bad")[0].adapted_properties
        assert str(vm["State"]) == "Running" and str(vm["Heartbeat"]) != "OkApplicationsHealthy"
        err = h.fails("Invoke-Command", VMName="acc-bad", Credential=_cred(GUEST_PASSWORD),
                      ScriptBlock=TaggedValue("SBK", PROBE))
        assert "PSSessionStateBroken" in err.fq_error
        h.ok("Stop-VM", Name="acc-bad", TurnOff=None, Force=None)
        disk = DISK.replace("vm1", "acc-bad")
        h.ok("Mount-VHD", Path=disk)
        # The setup log on the guest's disk names the pass and the setting, as on real Windows.
        letter = next(str(p.adapted_properties["DriveLetter"]) for p in h.ok(
            "Get-Partition", DiskNumber=h.ok("Get-VHD", Path=disk)[0].adapted_properties["DiskNumber"])
            if str(p.adapted_properties.get("DriveLetter") or "").strip("\x00 "))
        log = "\n".join(str(x) for x in h.ok("Get-Content", Path=f"{letter}:\\Windows\\Panther\\setuperr.log"))
        assert "Windows could not parse or process unattend answer file" in log
        assert "for pass [specialize]" in log
