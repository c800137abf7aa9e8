"""Convergence through transient faults: fresh quickstart labs come up on the first `up` while the host drops
connections, answers HTTP 500 and WSMan faults (before or after it acted) and slows Receives, on about 5% of
requests; `destroy` then leaves the host as it was. bench/chaos.py runs the long version."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from labharness import ServedSim, make_lab, run

from hvsim.core.faults import FaultRule
from labctl.resources import resource_dir

RATE = 0.05
MIX = {"drop_connection": 0.4, "http_500": 0.3, "wsman_fault": 0.3}
RUNS_PER_SEED = 5


def add_chaos(served: ServedSim, seed: int, rate: float = RATE) -> None:
    faults = served.sim.faults
    faults.clear(seed)
    for kind, share in MIX.items():
        faults.add(FaultRule(kind, probability=rate * share, times=0, params={"when": "any"}))
    faults.add(FaultRule("slow_receive", match={"action": "Receive"}, probability=rate, times=0,
                         params={"seconds": 0.2}))


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_fresh_labs_converge_on_the_first_up_through_transient_faults(seed: int, tmp_path: Path) -> None:
    served = ServedSim(tmp_path / "host")
    env = {"LABCTL_TEST_HOST_PASSWORD": served.password, "LABCTL_GUEST_PASSWORD": "Chaos-Gu3st-Pw!"}
    try:
        empty = served.inventory()
        fired = 0
        for n in range(RUNS_PER_SEED):
            lab = make_lab(tmp_path / f"run{n}", "quickstart.yaml", served.remote_lab(name=f"chaos{seed}x{n}"))
            add_chaos(served, seed * 100 + n)
            up = run("up", str(lab.file), env=env)
            assert up.exit_code == 0, f"run {n} did not converge on its first up:\n{up.output}"
            down = run("destroy", str(lab.file), "--yes", env=env)
            assert down.exit_code == 0, f"run {n}: destroy failed:\n{down.output}"
            fired += len(served.sim.faults.log)
            served.sim.faults.clear()
            assert served.inventory() == empty, f"run {n}: destroy left things on the host"
        assert fired >= RUNS_PER_SEED * 5, f"only {fired} faults fired: the chaos did not happen"
    finally:
        served.close()


def test_a_host_that_cannot_be_reached_fails_fast_with_exit_4(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    text = (resource_dir("labs") / "quickstart.yaml").read_text().replace(
        "host: sim", f"host:\n  uri: https://127.0.0.1:{port}/wsman\n  auth: ntlm\n  username: admin\n"
                     "  password_env: LABCTL_TEST_HOST_PASSWORD\n  verify: false\n")
    text += "guest_password_env: LABCTL_GUEST_PASSWORD\n"
    lab = make_lab(tmp_path, "quickstart.yaml", text)
    start = time.monotonic()
    result = run("up", str(lab.file), env={"LABCTL_TEST_HOST_PASSWORD": "x", "LABCTL_GUEST_PASSWORD": "Gu3st-Pw!x"})
    assert result.exit_code == 4, result.output
    assert time.monotonic() - start < 10
    assert "cannot reach" in result.output


def test_a_transient_failure_beyond_the_budget_says_so_and_exits_75(tmp_path: Path) -> None:
    served = ServedSim(tmp_path / "host")
    try:
        lab = make_lab(tmp_path, "quickstart.yaml", served.remote_lab())
        served.sim.faults.add(FaultRule("http_500", match={"action": "Command"}, times=0))
        env = {"LABCTL_TEST_HOST_PASSWORD": served.password, "LABCTL_GUEST_PASSWORD": "Gu3st-Pw!x"}
        result = run("--retry-budget", "1", "up", str(lab.file), env=env)
        assert result.exit_code == 75, result.output
        assert "TransientError" in result.output and "kept failing" in result.output
        assert "HTTP 500" in result.output
        assert "unreachable" not in result.output and "cannot reach" not in result.output
        assert "listening" not in result.output
    finally:
        served.close()


def test_a_fault_that_is_not_transient_fails_the_vm_at_its_stage_with_the_hosts_error(tmp_path: Path) -> None:
    served = ServedSim(tmp_path / "host")
    try:
        lab = make_lab(tmp_path, "quickstart.yaml", served.remote_lab())
        served.sim.faults.add(FaultRule("cmdlet_fail", match={"cmdlet": "New-VM", "vm": "qs-node01"}, times=0,
                                        params={"terminating": True, "error_id": "OperationFailed",
                                                "message": "The operation failed because the file was not found."}))
        env = {"LABCTL_TEST_HOST_PASSWORD": served.password, "LABCTL_GUEST_PASSWORD": "Gu3st-Pw!x"}
        result = run("up", str(lab.file), env=env)
        assert result.exit_code == 1, result.output
        assert "qs-node01 failed at stage vm" in result.output
        assert "the file was not found" in result.output
        served.sim.faults.clear()
        assert run("destroy", str(lab.file), "--yes", env=env).exit_code == 0
    finally:
        served.close()
