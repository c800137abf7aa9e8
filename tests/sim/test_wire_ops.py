"""Operating the simulator: endpoint.json, restarts, fault injection, the control endpoint, the CLI."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from pypsrp.exceptions import WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool

from hvsim.control import ControlClient, ControlError
from hvsim.core.faults import FaultRule
from hvsim.server import Simulator

REPO = Path(__file__).resolve().parents[2]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_endpoint_json_is_private_and_complete(sim: Simulator) -> None:
    path = sim.state_dir / "endpoint.json"
    assert _mode(path) == 0o600
    info = json.loads(path.read_text())
    assert info["simulated"] is True
    assert info["https_uri"] == sim.https_uri and info["https_uri"].startswith("https://127.0.0.1:")
    assert info["http_uri"] == sim.http_uri and info["http_uri"].startswith("http://127.0.0.1:")
    assert info["username"] == sim.username
    assert info["password"] == sim.password and len(sim.password) >= 16
    assert Path(info["certificate"]).is_file()
    assert len(info["sha256_fingerprint"]) == 64
    assert _mode(sim.state_dir / "host.json") == 0o600
    assert _mode(sim.state_dir / "tls" / "key.pem") == 0o600


def test_restart_keeps_certificate_and_credentials(tmp_path: Path, wsman_for) -> None:
    state = tmp_path / "state"
    with Simulator(state) as first:
        before = (first.fingerprint, first.username, first.password)
    with Simulator(state) as second:
        assert (second.fingerprint, second.username, second.password) == before
        with RunspacePool(wsman_for(second, "https-ntlm")) as pool:
            assert pool.get_available_runspaces() >= 1
    with Simulator(tmp_path / "other") as other:
        assert other.fingerprint != before[0] and other.password != before[2]


def test_password_never_in_repr_or_banner(sim: Simulator) -> None:
    assert sim.password not in repr(sim)
    assert sim.password not in repr(sim.credentials)


# ------------------------------------------------------------------------------------------- faults
def test_drop_connection_is_a_connection_error(fake_sim: Simulator, wsman_for) -> None:
    with RunspacePool(wsman_for(fake_sim, "https-basic")) as pool:
        fake_sim.faults.add(FaultRule("drop_connection", match={"action": "Command"}))
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-Thing")
        with pytest.raises(requests.exceptions.ConnectionError):
            ps.invoke()
        ps = PowerShell(pool)  # one-shot: the next call works
        ps.add_cmdlet("Get-Thing")
        assert ps.invoke()[0].adapted_properties["Name"] == "vm1"


def test_http_500_is_a_transport_error(fake_sim: Simulator, wsman_for) -> None:
    with RunspacePool(wsman_for(fake_sim, "http-ntlm")) as pool:
        fake_sim.faults.add(FaultRule("http_500", match={"action": "Command"}))
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-Thing")
        with pytest.raises(WinRMTransportError) as info:
            ps.invoke()
        assert info.value.code == 500


def test_wsman_fault_is_a_wsman_fault_error(fake_sim: Simulator, wsman_for) -> None:
    with RunspacePool(wsman_for(fake_sim, "https-ntlm")) as pool:
        fake_sim.faults.add(FaultRule("wsman_fault", match={"action": "Command"},
                                      params={"code": 0x80338012, "message": "simulated outage"}))
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-Thing")
        with pytest.raises(WSManFaultError) as info:
            ps.invoke()
        assert info.value.code == 0x80338012
        assert info.value.machine == fake_sim.credentials.hostname
        assert "simulated outage" in str(info.value.reason)


def test_slow_receive_delays_the_answer(fake_sim: Simulator, wsman_for) -> None:
    with RunspacePool(wsman_for(fake_sim, "https-basic")) as pool:
        fake_sim.faults.add(FaultRule("slow_receive", match={"action": "Receive"}, params={"seconds": 0.6}))
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-Thing")
        t0 = time.monotonic()
        ps.invoke()
        assert time.monotonic() - t0 >= 0.6
    assert fake_sim.faults.log[0]["kind"] == "slow_receive"


# ------------------------------------------------------------------------------------------- control
def test_control_client_round_trip(fake_sim: Simulator, wsman_for) -> None:
    control = ControlClient.from_state_dir(fake_sim.state_dir)
    assert control.status()["simulated"] is True
    with RunspacePool(wsman_for(fake_sim, "https-basic")) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-Thing")
        ps.invoke()
    counters = control.counters()
    assert counters["pipelines"] == 1 and counters["http_requests"] > 0
    assert control.counters()["http_requests"] == counters["http_requests"]  # control calls are not counted
    added = control.add_fault("slow_receive", {"action": "Receive"}, seconds=0.1)
    assert added["added"]["params"] == {"seconds": 0.1}
    assert len(control.faults()["rules"]) == 1
    control.clear_faults(seed=7)
    assert control.faults() == {"seed": 7, "rules": [], "log": [], "holding": 0}
    assert "estimated_makespan_seconds" in control.clock()
    control.reset()
    assert control.counters()["pipelines"] == 0
    with pytest.raises(ControlError) as info:
        control.add_fault("no_such_kind")
    assert info.value.status == 400


def test_control_refuses_wrong_credentials(sim: Simulator) -> None:
    info = json.loads((sim.state_dir / "endpoint.json").read_text())
    bad = ControlClient(info["control_uri"], info["username"], "wrong", info["certificate"])
    with pytest.raises(ControlError) as err:
        bad.counters()
    assert err.value.status == 401


# ------------------------------------------------------------------------------------------- CLI
def test_cli_serve_then_counters_fault_and_reset(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "labctl.cli.main", "sim"]
    proc = subprocess.Popen([*cmd, "serve", "--state", str(state)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO)
    try:
        deadline = time.monotonic() + 15
        while not (state / "endpoint.json").exists():
            assert proc.poll() is None, "sim serve exited"
            assert time.monotonic() < deadline, "sim serve did not start"
            time.sleep(0.05)

        from clirun import labctl

        def run(*args: str) -> str:
            result = labctl("sim", *args, "--state", str(state))
            assert result.exit_code == 0, result.output
            return result.output

        assert json.loads(run("counters"))["pipelines"] == 0
        run("fault", "add", "http_500", "--match", "action=Command")
        assert json.loads(run("fault", "list"))["rules"][0]["kind"] == "http_500"
        run("fault", "clear")
        assert "reset" in run("reset")
        second = subprocess.run([*cmd, "serve", "--state", str(state)], capture_output=True, text=True, env=env,
                                cwd=REPO, timeout=30)
        assert second.returncode == 4 and "already served" in second.stderr
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert "SIMULATED Hyper-V host" in out
    password = json.loads((state / "endpoint.json").read_text())["password"]
    assert password not in out


def test_cli_without_a_running_simulator_fails_cleanly(tmp_path: Path) -> None:
    from clirun import labctl

    result = labctl("sim", "counters", "--state", str(tmp_path))
    assert result.exit_code == 4
    assert "endpoint.json not found" in result.stderr and "Traceback" not in result.output
