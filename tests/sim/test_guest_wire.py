"""PowerShell Direct through the real client: pypsrp -> WinRM -> runtime -> remoting handlers."""

from __future__ import annotations

from guest_world import make_vm
from pypsrp.complex_objects import PSCredential
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import TaggedValue
from unattend_samples import PASSWORD

import hvsim.guest.handlers.remoting  # noqa: F401  (registers the handlers the runtime dispatches to)
from hvsim.server import Simulator

PROBE = "# labctl-step: probe 1\n$os = Get-CimInstance Win32_OperatingSystem\n"


def _invoke(pool: RunspacePool, script: str, password: str = PASSWORD) -> PowerShell:
    ps = PowerShell(pool)
    ps.add_cmdlet("Invoke-Command").add_parameter("VMName", "dc01")
    ps.add_parameter("Credential", PSCredential(username="Administrator", password=password))
    ps.add_parameter("ScriptBlock", TaggedValue("SBK", script))
    ps.invoke()
    return ps


def test_probe_over_the_wire(sim: Simulator, pool: RunspacePool) -> None:
    assert sim.world is not None
    with sim.world.lock:
        make_vm(sim.world)
    pool.exchange_keys()
    ps = _invoke(pool, PROBE)
    assert not ps.had_errors, [str(e) for e in ps.streams.error]
    (obj,) = ps.output
    assert "Deserialized.System.Management.Automation.PSCustomObject" in obj.types
    props = {**obj.adapted_properties, **obj.extended_properties}
    assert props["ComputerName"] == "LAB-DC01"
    assert props["PSComputerName"] == "dc01"
    assert props["BuildNumber"] == 20348


def test_errors_over_the_wire(sim: Simulator, pool: RunspacePool) -> None:
    assert sim.world is not None
    with sim.world.lock:
        make_vm(sim.world)
    pool.exchange_keys()
    ps = _invoke(pool, PROBE, password="wrong")
    (err,) = ps.streams.error
    assert str(err) == "The credential is invalid."
    assert err.fq_error == "PSSessionStateBroken"
    ps = _invoke(pool, "Get-Process")
    assert ps.had_errors
    assert "is not modelled by the simulator" in str(ps.streams.error[0])
    assert ps.streams.error[0].fq_error == "ScriptNotModelled,Microsoft.PowerShell.Commands.InvokeCommandCommand"
