"""Failures a user meets: a broken answer file, faults mid-run, a killed run, bad input, a wrong password."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from labharness import REPO, Lab, ServedSim, copy_templates, make_lab, run

from hvsim.core.faults import FaultRule
from labctl.resources import resource_dir

TWO_VMS = """\
name: twovm
host: sim
network: {switch: tv-lab, subnet: 10.20.0.0/24, gateway: 10.20.0.1}
defaults: {image: ws2022-core, processors: 2, memory: 4GiB, disk: 40GiB}
vms:
  - name: tv-good
  - name: tv-bad
    unattend: broken
"""


def _vm_names(served: ServedSim) -> list[str]:
    return sorted(str(o.get("Name")) for o in served.transport.invoke(
        __import__("labctl.transport.base", fromlist=["Invocation"]).Invocation("Get-VM")).objects())


def test_broken_answer_file_fails_its_vm_at_its_stage_while_the_other_comes_up(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, "twovm.yaml", TWO_VMS)
    templates = copy_templates(lab)
    good = (templates / "unattend" / "default.xml.j2").read_text()
    # A computer name with a space: Windows' rules refuse it (labctl checks before injecting).
    bad = good.replace("<ComputerName>{{ vm.name }}</ComputerName>", "<ComputerName>{{ vm.name }} x</ComputerName>")
    assert bad != good
    (templates / "unattend" / "broken.xml.j2").write_text(bad)
    result = run("up", str(lab.file))
    assert result.exit_code == 1, result.output
    assert "tv-bad failed at stage render" in result.output
    assert "ComputerName" in result.output
    status = json.loads(run("status", str(lab.file), "--json").output)
    vms = {v["name"]: v for v in status["vms"]}
    assert vms["tv-good"]["healthy"] is True
    assert vms["tv-bad"]["exists"] is False  # nothing was created for the broken VM
    assert run("destroy", str(lab.file), "--yes").exit_code == 0


def test_fault_mid_run_then_up_again_converges_without_duplicates(quickstart: Lab, served: ServedSim) -> None:
    served.sim.faults.add(FaultRule("cmdlet_fail", match={"cmdlet": "Start-VM", "vm": "qs-node01"},
                                    params={"terminating": True, "message": "'qs-node01' failed to start."}))
    first = run("up", str(quickstart.file))
    assert first.exit_code == 1, first.output
    assert "qs-node01 failed at stage start" in first.output
    assert "qs-dc01" in first.output
    # A dropped connection in the middle of the second run: retried or adopted, never duplicated.
    served.sim.faults.clear()
    served.sim.faults.add(FaultRule("drop_connection", match={"action": "Command"}, after=3, times=2))
    second = run("up", str(quickstart.file))
    assert second.exit_code == 0, second.output
    assert _vm_names(served) == ["qs-dc01", "qs-node01"]
    status = json.loads(run("status", str(quickstart.file), "--json").output)
    assert all(v["healthy"] for v in status["vms"]), status
    assert [f["kind"] for f in served.sim.faults.log] == ["drop_connection", "drop_connection"]


def test_validate_lists_every_problem_with_its_line() -> None:
    broken = REPO / "tests" / "unit" / "data" / "broken-lab.yaml"
    result = run("validate", str(broken))
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.startswith(str(broken) + ":")]
    assert len(lines) >= 10, result.output
    assert all(ln.split(":")[1].isdigit() for ln in lines), lines
    as_json = json.loads(run("validate", str(broken), "--json").output)
    assert as_json["valid"] is False and len(as_json["problems"]) == len(lines)


def test_validate_accepts_the_shipped_labs() -> None:
    for lab in sorted((resource_dir("labs")).glob("*.yaml")):
        result = run("validate", str(lab))
        assert result.exit_code == 0, (lab, result.output)


def test_wrong_host_password_fails_fast_with_an_auth_error_and_creates_nothing(tmp_path: Path) -> None:
    lab = make_lab(tmp_path)
    served = ServedSim(tmp_path / "remote-host")
    try:
        before = served.inventory()
        lab.file.write_text(served.remote_lab(host_password_env="LABCTL_TEST_WRONG_PASSWORD"))
        start = time.monotonic()
        result = run("up", str(lab.file), env={"LABCTL_TEST_WRONG_PASSWORD": "not-the-password",
                                               "LABCTL_GUEST_PASSWORD": "Gu3st-Passw0rd!"})
        assert result.exit_code == 4, result.output
        assert time.monotonic() - start < 10
        assert "AuthError" in result.output and "refused the credentials" in result.output
        assert "refused" in result.output and "Traceback" not in result.output
        assert "not-the-password" not in result.output
        assert served.inventory() == before
    finally:
        served.close()


@pytest.mark.parametrize("verb", ["up", "plan", "status", "destroy", "validate", "render", "sim"])
def test_every_verb_has_help(verb: str) -> None:
    result = run(verb, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output


def test_preflight_refuses_a_host_that_cannot_nest_and_changes_nothing(quickstart: Lab) -> None:
    # An AMD host on Windows Server 2019 cannot expose virtualization extensions to guests.
    served = ServedSim(quickstart.sim_state, host_config={"cpu_vendor": "AuthenticAMD", "os_build": 17763})
    try:
        before = served.inventory()
        result = run("up", str(quickstart.file))
        assert result.exit_code == 3, result.output
        assert "AuthenticAMD needs host build 20348" in result.output
        assert "nothing was changed" in result.output
        assert served.inventory() == before
    finally:
        served.close()


def test_host_settings_of_sim_serve_are_parsed_with_units() -> None:
    from labctl.app.sim import parse_host_settings

    assert parse_host_settings(("memory_capacity=256GiB", "cpu_vendor=AuthenticAMD", "os_build=20348")) == {
        "memory_capacity": 256 * 1024**3, "cpu_vendor": "AuthenticAMD", "os_build": 20348}
    with pytest.raises(ValueError, match="unknown host setting 'memory'"):
        parse_host_settings(("memory=4GiB",))


def test_a_second_up_or_destroy_on_the_same_lab_is_refused_by_the_lock(quickstart: Lab) -> None:
    from labctl.engine.lock import LabLock

    with LabLock(quickstart.state / "lock", "up"):
        for verb in (("up",), ("destroy", "--yes")):
            result = run(*verb, str(quickstart.file))
            assert result.exit_code == 5, result.output
            assert "another labctl run holds the lab lock" in result.output
            assert f"pid={os.getpid()}" in result.output
