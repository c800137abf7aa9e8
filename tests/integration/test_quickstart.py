"""The quickstart round trip: up, status, up again, destroy; the user's own things untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from labharness import REPO, Lab, ServedSim, make_lab, run

from labctl.transport.base import SWITCH, Invocation


def test_up_status_noop_destroy_round_trip(quickstart: Lab, served: ServedSim) -> None:
    # Things the user made by hand before labctl ran: they must survive up and destroy.
    served.invoke(
        Invocation("New-VMSwitch", {"Name": "user-switch", "SwitchType": "Private"}),
        Invocation("New-VHD", {"Path": r"C:\Users\Public\user-disk.vhdx", "SizeBytes": 1024**3, "Dynamic": SWITCH}),
        Invocation("New-VM", {"Name": "user-vm", "MemoryStartupBytes": 1024**3, "Generation": 2}),
    )
    before = served.inventory()

    first = run("up", str(quickstart.file))
    assert first.exit_code == 0, first.output
    assert "2 VM(s) added" in first.output and "SIMULATED" in first.output

    status = run("status", str(quickstart.file), "--json")
    assert status.exit_code == 0, status.output
    data = json.loads(status.output)
    assert data["simulated"] is True
    vms = {v["name"]: v for v in data["vms"]}
    assert set(vms) == {"qs-dc01", "qs-node01"}
    for name, vm in vms.items():
        assert vm["state"] == "Running" and vm["heartbeat"] == "OkApplicationsHealthy", vm
        assert vm["expected_ip"] in vm["ips"]
        assert vm["expose_virtualization_extensions"] is True
        assert vm["dynamic_memory"] is False and vm["memory_bytes"] >= 4 * 1024**3
        assert vm["mac_address_spoofing"] is True
        assert vm["guest"]["ComputerName"].lower() == name
        assert vm["guest"]["AnswerFilePresent"] is False  # the answer file was deleted after first boot
        assert all(vm["checks"].values()), vm["checks"]
    assert vms["qs-dc01"]["ips"][0] == "10.10.0.10"

    new_vm_calls = served.sim.counters.get("cmdlet:New-VM")
    again = run("up", str(quickstart.file))
    assert again.exit_code == 0, again.output
    assert "Nothing to do" in again.output
    assert served.sim.counters.get("cmdlet:New-VM") == new_vm_calls  # nothing created twice

    gone = run("destroy", str(quickstart.file), "--yes")
    assert gone.exit_code == 0, gone.output
    assert "switch qs-lab" in gone.output
    assert served.inventory() == before  # exactly as before up, user's things included

    twice = run("destroy", str(quickstart.file), "--yes")
    assert twice.exit_code == 0 and "Nothing to remove" in twice.output


def test_plan_and_dry_run_change_nothing(quickstart: Lab, served: ServedSim) -> None:
    before = served.inventory()
    plan = run("plan", str(quickstart.file))
    assert plan.exit_code == 0, plan.output
    assert "+ add    switch   qs-lab" in plan.output and "+ add    vm       qs-dc01" in plan.output
    assert "to add" in plan.output
    dry = run("up", str(quickstart.file), "--dry-run")
    assert dry.exit_code == 0 and "qs-node01" in dry.output
    assert served.inventory() == before


def test_embedded_simulator_is_the_default_host(quickstart: Lab) -> None:
    """Without a served simulator, up starts the embedded one and keeps its state in the lab dir."""
    result = run("up", str(quickstart.file))
    assert result.exit_code == 0, result.output
    assert (quickstart.sim_state / "endpoint.json").exists()
    status = run("status", str(quickstart.file), "--json")
    assert status.exit_code == 0, status.output
    assert all(v["healthy"] for v in json.loads(status.output)["vms"])
    assert run("destroy", str(quickstart.file), "--yes").exit_code == 0


def test_sim_serve_reached_as_a_remote_host_is_still_labelled_simulated(tmp_path: Path) -> None:
    """`labctl sim serve` used like a real host (uri, NTLM, pinned certificate): same code, labelled."""
    lab = make_lab(tmp_path)
    served = ServedSim(tmp_path / "rehearsal-host")
    try:
        lab.file.write_text(served.remote_lab())
        env = {"LABCTL_TEST_HOST_PASSWORD": served.password, "LABCTL_GUEST_PASSWORD": "Gu3st-Passw0rd!"}
        up = run("up", str(lab.file), env=env)
        assert up.exit_code == 0, up.output
        assert "SIMULATED" in up.output
        status = json.loads(run("status", str(lab.file), "--json", env=env).output)
        assert status["simulated"] is True and all(v["healthy"] for v in status["vms"])
        assert run("destroy", str(lab.file), "--yes", env=env).exit_code == 0
    finally:
        served.close()


def test_secrets_stay_out_of_logs_output_and_state(quickstart: Lab) -> None:
    import base64

    password = "Zq9-Secret-Gu3st!"
    env = {"LABCTL_GUEST_PASSWORD": password}
    quickstart.file.write_text(quickstart.file.read_text() + "guest_password_env: LABCTL_GUEST_PASSWORD\n")
    # A separate process, so DEBUG logging really goes to the stderr we read.
    proc = subprocess.run([sys.executable, "-m", "labctl.cli.main", "--log-level", "DEBUG", "up",
                           str(quickstart.file)], env={**os.environ, **env, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "DEBUG" in proc.stderr  # the log was really on
    encoded = base64.b64encode((password + "AdministratorPassword").encode("utf-16-le")).decode()
    rendered = run("render", str(quickstart.file), "qs-dc01", env=env).output
    assert "*** redacted ***" in rendered
    host_password = json.loads((quickstart.sim_state / "endpoint.json").read_text())["password"]
    texts = {"output": proc.stdout + proc.stderr + rendered}
    for path in quickstart.state.rglob("*"):
        if path.is_file() and path.name not in ("endpoint.json", "host.json", "guest-password"):
            texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    for where, text in texts.items():
        for secret in (password, encoded, host_password):
            assert secret not in text, f"a secret leaked into {where}"
    assert run("destroy", str(quickstart.file), "--yes", env=env).exit_code == 0
