"""labctl stop and start through the CLI on the simulator, on one quickstart lab served in-process.

The tests run in order and each leaves the lab running and healthy for the next.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from labharness import Lab, ServedSim, make_lab, run

from labctl.transport.base import Invocation

pytestmark = pytest.mark.xdist_group("power")

VMS = ("qs-dc01", "qs-node01")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, ServedSim]]:
    the_lab = make_lab(tmp_path_factory.mktemp("power"))
    served = ServedSim(the_lab.sim_state)
    up = run("up", str(the_lab.file))
    assert up.exit_code == 0, up.output
    yield the_lab, served
    run("destroy", str(the_lab.file), "--yes")
    served.close()


def _status(lab: Lab) -> tuple[int, dict[str, Any]]:
    result = run("status", str(lab.file), "--json")
    return result.exit_code, {v["name"]: v for v in json.loads(result.stdout)["vms"]}


def _start(lab: Lab, served: ServedSim) -> dict[str, Any]:
    before = served.sim.counters.get("cmdlet:Start-VM")
    result = run("start", str(lab.file), "--json")
    assert result.exit_code == 0, result.output
    assert served.sim.counters.get("cmdlet:Start-VM") - before == 1  # one Start-VM for the whole lab
    code, vms = _status(lab)
    assert code == 0 and all(v["healthy"] for v in vms.values()), vms
    return dict(json.loads(result.stdout))


def test_stop_shuts_every_guest_down_and_status_shows_them_off(lab: tuple[Lab, ServedSim]) -> None:
    the_lab, served = lab
    result = run("stop", str(the_lab.file), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {n: (v["action"], v["state"]) for n, v in data["vms"].items()} == \
        {vm: ("shut down", "Off") for vm in VMS}
    assert served.sim.counters.get("cmdlet:Stop-VM") >= 1
    code, vms = _status(the_lab)
    assert code == 1  # not healthy: the VMs are off, and status says so
    for vm in vms.values():
        assert vm["state"] == "Off" and not vm["healthy"]
        assert vm["checks"]["container host: Docker service running"] is False  # nothing runs in an off VM
    again = json.loads(run("stop", str(the_lab.file), "--json").stdout)
    assert {v["action"] for v in again["vms"].values()} == {"already off"}

    started = _start(the_lab, served)
    assert {n: (v["action"], v["state"]) for n, v in started["vms"].items()} == \
        {vm: ("started", "Running") for vm in VMS}


def test_a_guest_that_will_not_shut_down_is_turned_off_and_the_output_says_so(lab: tuple[Lab, ServedSim]) -> None:
    the_lab, served = lab
    served.invoke(Invocation("Disable-VMIntegrationService", {"VMName": VMS[1], "Name": "Shutdown"}))
    try:
        result = run("stop", str(the_lab.file), "--timeout", "0.2")
        assert result.exit_code == 0, result.output
        assert f"note: {VMS[1]} was turned off (power cut, not a shutdown)" in result.stdout
        data = json.loads(run("status", str(the_lab.file), "--json", "--no-guest").stdout)
        assert {v["name"]: v["state"] for v in data["vms"]} == {vm: "Off" for vm in VMS}
    finally:
        served.invoke(Invocation("Enable-VMIntegrationService", {"VMName": VMS[1], "Name": "Shutdown"}))
    _start(the_lab, served)


def test_stop_json_names_the_turned_off_vm_with_its_reason(lab: tuple[Lab, ServedSim]) -> None:
    the_lab, served = lab
    served.invoke(Invocation("Disable-VMIntegrationService", {"VMName": VMS[0], "Name": "Shutdown"}))
    try:
        data = json.loads(run("stop", str(the_lab.file), "--timeout", "0", "--json").stdout)
    finally:
        served.invoke(Invocation("Enable-VMIntegrationService", {"VMName": VMS[0], "Name": "Shutdown"}))
    assert data["ok"] is True and data["timeout_seconds"] == 0
    turned = data["vms"][VMS[0]]
    assert turned["action"] == "turned off" and turned["state"] == "Off"
    assert "shut down" in turned["detail"]  # the host's reason (the shutdown integration service)
    assert data["vms"][VMS[1]]["action"] == "shut down"
    _start(the_lab, served)


def test_a_guest_that_ignores_the_shutdown_is_turned_off(lab: tuple[Lab, ServedSim]) -> None:
    from hvsim.core.faults import FaultRule

    the_lab, served = lab
    served.sim.faults.add(FaultRule("guest_ignores_shutdown", match={"vm": VMS[1]}, times=0))
    try:
        data = json.loads(run("stop", str(the_lab.file), "--timeout", "0.5", "--json").stdout)
    finally:
        served.sim.faults.clear()
    assert data["vms"][VMS[0]]["action"] == "shut down"
    ignored = data["vms"][VMS[1]]
    assert ignored["action"] == "turned off" and ignored["state"] == "Off" and ignored["ok"] is True
    assert ignored["detail"], ignored  # why: the host's refusal, or "still running after 0.5 s"
    _start(the_lab, served)
