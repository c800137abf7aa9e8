"""The container-host bootstrap through the CLI on the simulator: features, Docker, shared images, isolation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from labharness import REPO, Lab, ServedSim, make_lab, run

from labctl.engine.journal import Journal
from labctl.resources import resource_dir
from labctl.transport.base import SWITCH, Invocation

NANO = "mcr.microsoft.com/windows/nanoserver:ltsc2022"
CORE = "mcr.microsoft.com/windows/servercore:ltsc2022"

FOUR = """\
name: four
host: sim
network: {switch: four-lab, subnet: 10.40.0.0/24}
defaults: {image: ws2022-core, memory: 4GiB, container_images: [nanoserver, servercore]}
vms:
  - name: "four{n:02d}"
    count: 4
"""


def _status(lab: Lab) -> dict[str, dict[str, Any]]:
    result = run("status", str(lab.file), "--json")
    data = json.loads(result.output)
    return {v["name"]: v for v in data["vms"]}


def _steps(served: ServedSim, *names: str) -> dict[str, int]:
    return {n: served.sim.counters.get(f"guest_step:{n}") for n in names}


def test_quickstart_guests_become_container_hosts(quickstart: Lab, served: ServedSim) -> None:
    first = run("up", str(quickstart.file))
    assert first.exit_code == 0, first.output
    assert "placeholder" in first.output  # the simulator's Docker binaries are said to be placeholders
    vms = _status(quickstart)
    assert set(vms) == {"qs-dc01", "qs-node01"}
    for name, vm in vms.items():
        c = vm["containers"]
        assert vm["healthy"] is True, (name, vm["checks"], vm["problems"])
        assert {"Containers", "Hyper-V"} <= set(c["features"])
        assert c["source"] == "guest" and c["docker_running"] is True and c["docker_version"] == "27.3.1"
        assert c["images"] == [NANO]  # ltsc2022: the guest's own build (20348)
        assert c["isolation"]["process"]["ok"] is True and c["isolation"]["hyperv"]["ok"] is True
        assert "10.0.20348" in c["isolation"]["process"]["output"]
        assert vm["checks"]["container host: process isolation"] is True
        assert vm["checks"]["container host: hyperv isolation"] is True
        assert vm["checks"][f"container host: image {NANO}"] is True
    # Containers (+ Hyper-V) asked a reboot: each guest was shut down through the guest (Stop-VM, not
    # Restart-VM, which is a reset that rolls a pending feature install back) and started again, and the
    # step confirmed after it.
    assert served.sim.counters.get("cmdlet:Restart-VM") == 0
    # One Stop-VM -Name for both guests when they reach it together (labctl.engine.batch), else one each; the
    # same for the second Start-VM (the first is in each VM's creation pipeline).
    assert served.sim.counters.get("cmdlet:Stop-VM") in (1, 2)
    assert served.sim.counters.get("cmdlet:Start-VM") - 2 == served.sim.counters.get("cmdlet:Stop-VM")
    assert served.sim.counters.get("guest_step:container-features") == 4
    # The zip went to the host once (one Set-Content beside the two answer files; it is under 1 MiB), and
    # into each guest by Copy-VMFile.
    assert served.sim.counters.get("cmdlet:Set-Content") == 3
    assert served.sim.counters.get("cmdlet:Copy-VMFile") >= 2

    # Converged: the plan keeps both VMs and no guest step runs again.
    before = dict(served.sim.counters.snapshot())
    again = run("up", str(quickstart.file))
    assert again.exit_code == 0 and "Nothing to do" in again.output, again.output
    after = served.sim.counters.snapshot()
    assert {k: v for k, v in after.items() if k.startswith("guest_step:")} == \
        {k: v for k, v in before.items() if k.startswith("guest_step:")}

    table = run("status", str(quickstart.file))
    assert table.exit_code == 0, table.output
    assert "docker 27.3.1, 1/1 images, process ok, hyperv ok" in table.output


def test_four_guests_download_each_base_image_once(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, "four.yaml", FOUR)
    served = ServedSim(lab.sim_state, host_config={"memory_capacity": 64 * 1024**3})
    try:
        result = run("up", str(lab.file))
        assert result.exit_code == 0, result.output
        counters = served.sim.counters
        assert counters.get(f"registry:pulls:{NANO}") == 1
        assert counters.get(f"registry:pulls:{CORE}") == 1
        # One guest pulled each image; the three others loaded the tar the host kept.
        assert counters.get("guest_step:image-load") == 6
        assert counters.get("host_step:copy-from-guest") == 2
        vms = _status(lab)
        assert all(vm["healthy"] for vm in vms.values()), {n: v["checks"] for n, v in vms.items()}
        assert all(sorted(vm["containers"]["images"]) == sorted([NANO, CORE]) for vm in vms.values())
    finally:
        served.close()


def test_killed_during_the_bootstrap_resumes_without_repeating_steps(quickstart: Lab) -> None:
    # Realistic durations, sped up: the kill lands between the lab's image pull and the last verify.
    served = ServedSim(quickstart.sim_state, profile="realistic", speedup=120)
    try:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen([sys.executable, "-m", "labctl.cli.main", "up", str(quickstart.file)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        journal = quickstart.state / "journal.json"
        deadline = time.monotonic() + 90
        killed: dict[str, Any] | None = None
        while time.monotonic() < deadline and proc.poll() is None:
            if journal.exists():
                try:
                    data = json.loads(journal.read_text())
                except ValueError:
                    continue
                stages = {n: set(v.get("stages", [])) for n, v in data["vms"].items()}
                # Kill once the lab's base image is pulled and kept on the host, before every guest verified.
                if (data["host"].get("images") or {}).get(NANO) and len(stages) == 2:
                    proc.send_signal(signal.SIGKILL)
                    killed = {"stages": stages, "counters": dict(served.sim.counters.snapshot())}
                    break
            time.sleep(0.01)
        proc.wait(10)
        assert killed is not None, "up finished before it could be killed"
        assert not all("verify" in s for s in killed["stages"].values())
        # Steps counted right after the kill (a step in flight may still land: read again once it has).
        time.sleep(0.5)
        before = dict(served.sim.counters.snapshot())

        again = run("up", str(quickstart.file))
        assert again.exit_code == 0, again.output
        after = served.sim.counters.snapshot()

        def delta(key: str) -> int:
            return int(after.get(key, 0)) - int(before.get(key, 0))

        assert delta(f"registry:pulls:{NANO}") == 0  # pulled once for the lab, before the kill
        done_by_all = set.intersection(*killed["stages"].values())
        for stage, step in (("features", "container-features"), ("docker", "docker-install"),
                            ("images", "image-pull")):
            if stage in done_by_all:
                assert delta(f"guest_step:{step}") == 0, (stage, killed["stages"])
        finished = Journal.open(quickstart.state / "journal.json", quickstart.name)
        for name in ("qs-dc01", "qs-node01"):
            assert all(finished.has_stage(name, s) for s in ("ready", "features", "docker", "images", "verify"))
            # Each stage is recorded once, in order: nothing was redone and recorded twice.
            stages = finished.vm(name)["stages"]
            assert len(stages) == len(set(stages))
    finally:
        served.close()


def test_hyperv_isolation_without_virtualization_extensions_fails_at_features(tmp_path: Path) -> None:
    text = (resource_dir("labs") / "isolation-demo.yaml").read_text()
    lab = make_lab(tmp_path, "isolation-demo.yaml", text.replace("roles: [container-host]", "roles: []"))
    served = ServedSim(lab.sim_state)
    try:
        plain = run("up", str(lab.file))  # a plain VM first: no bootstrap
        assert plain.exit_code == 0, plain.output
        assert served.sim.counters.get("guest_step:container-features") == 0
        # Someone turns the VM's virtualization extensions off (possible only while it is off).
        served.invoke(Invocation("Stop-VM", {"Name": "iso-host01", "Force": SWITCH}))
        served.invoke(Invocation("Set-VMProcessor", {"VMName": "iso-host01", "ExposeVirtualizationExtensions": False}))
        served.invoke(Invocation("Start-VM", {"Name": "iso-host01"}))
        lab.file.write_text(text)  # now a container host with isolation: hyperv
        plan = run("plan", str(lab.file))
        assert "finish bring-up (container host: features, docker, images, verify)" in plan.output, plan.output
        result = run("up", str(lab.file))
        assert result.exit_code == 1, result.output
        assert "iso-host01 failed at stage features" in result.output
        assert "A prerequisite check for the Hyper-V feature failed" in result.output
        assert "The processor does not have required virtualization capabilities" in result.output
        assert "does not expose virtualization extensions" in result.output
        vm = _status(lab)["iso-host01"]
        assert vm["healthy"] is False
        assert vm["checks"]["container host: Hyper-V feature installed"] is False
        assert vm["checks"]["nested: ExposeVirtualizationExtensions"] is False
    finally:
        served.close()


def test_isolation_demo_lab_comes_up_with_hyperv_isolation_by_default(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, "isolation-demo.yaml")
    result = run("up", str(lab.file))
    assert result.exit_code == 0, result.output
    vm = _status(lab)["iso-host01"]
    assert vm["healthy"] is True, vm["checks"]
    assert vm["containers"]["images"] == ["mcr.microsoft.com/windows/nanoserver:ltsc2025"]
    assert vm["containers"]["isolation_default"] == "hyperv"
    assert run("destroy", str(lab.file), "--yes").exit_code == 0
