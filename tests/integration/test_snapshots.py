"""Lab-wide snapshots through the CLI on the simulator: save, a change in a guest, reset, list, rm.

One quickstart lab (2 container hosts) is brought up for the module and served in-process, so the tests can
read the simulator's counters and change the host by hand between labctl commands, as a trainer's colleague
would. The tests run in order: each leaves the lab healthy for the next.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labharness import Lab, ServedSim, make_lab, run

from labctl.hyperv import ops
from labctl.resources import resource_dir
from labctl.transport.base import Invocation, Pipeline

pytestmark = pytest.mark.xdist_group("snapshots")

VMS = ("qs-dc01", "qs-node01")
IMAGE = "mcr.microsoft.com/windows/nanoserver:ltsc2022"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, ServedSim]]:
    the_lab = make_lab(tmp_path_factory.mktemp("snapshots"))
    served = ServedSim(the_lab.sim_state)
    up = run("up", str(the_lab.file))
    assert up.exit_code == 0, up.output
    yield the_lab, served
    run("destroy", str(the_lab.file), "--yes")
    served.close()


def _json(*args: str, code: int = 0) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def _docker(lab: Lab, *words: str) -> str:
    result = run("docker", str(lab.file), VMS[0], "--", *words)
    assert result.exit_code == 0, (words, result.output)
    return result.stdout


def _healthy(lab: Lab) -> None:
    status = run("status", str(lab.file), "--json")
    assert status.exit_code == 0, status.output
    assert all(vm["healthy"] and vm["state"] == "Running" for vm in json.loads(status.stdout)["vms"])


def test_reset_undoes_a_change_made_in_a_guest(lab: tuple[Lab, ServedSim]) -> None:
    the_lab, served = lab
    saved = _json("snapshot", "save", str(the_lab.file), "baseline")
    [snap] = saved["snapshots"]
    assert snap["name"] == "baseline" and snap["checkpoint_type"] == "ProductionOnly" and snap["usable"]
    assert set(snap["vms"]) == set(VMS) and all(v["present"] for v in snap["vms"].values())
    # Hyper-V was told to take production checkpoints only (no silent fallback to a standard checkpoint).
    for vm in served.invoke(Invocation("Get-VM", {"Name": list(VMS)})):
        assert str(vm.get("CheckpointType")) == "ProductionOnly"

    _docker(the_lab, "run", "--name", "scratch", IMAGE, "cmd", "/c", "echo", "hi")
    assert "scratch" in _docker(the_lab, "ps", "-a")

    before = served.sim.counters.snapshot()
    reset = _json("reset", str(the_lab.file))  # no name: the most recent snapshot
    after = served.sim.counters.snapshot()
    assert reset["snapshot"] == "baseline" and reset["ok"] is True
    assert {n: (v["action"], v["state"]) for n, v in reset["vms"].items()} == \
        {vm: ("restored", "Running") for vm in VMS}
    assert "scratch" not in _docker(the_lab, "ps", "-a")
    _healthy(the_lab)
    # One Restore-VMSnapshot call for the whole lab, one Start-VM, one Invoke-Command per guest check and poll.
    calls = {k: after["cmdlets"].get(k, 0) - before["cmdlets"].get(k, 0) for k in after["cmdlets"]}
    assert calls.get("Restore-VMSnapshot") == 1 and calls.get("Start-VM") == 1, calls


def test_reset_uses_the_same_pipelines_for_four_vms_as_for_two(lab: tuple[Lab, ServedSim],
                                                               tmp_path: Path) -> None:
    the_lab, served = lab
    two = _reset_pipelines(the_lab, served)
    text = (resource_dir("labs") / "quickstart.yaml").read_text()
    text = re.sub(r"^name: .*$", "name: wide", text, count=1, flags=re.MULTILINE)
    text = text.replace("switch: qs-lab", "switch: wide-lab").replace("10.10.0.", "10.11.0.")
    text = text.replace("qs-", "wd-") + "  - name: wd-node02\n  - name: wd-node03\n"
    wide = make_lab(tmp_path, "wide.yaml", text)
    wide_sim = ServedSim(wide.sim_state)
    try:
        assert run("up", str(wide.file)).exit_code == 0
        assert run("snapshot", "save", str(wide.file), "baseline").exit_code == 0
        four = _reset_pipelines(wide, wide_sim)
    finally:
        run("destroy", str(wide.file), "--yes")
        wide_sim.close()
    assert four == two, (two, four)


def _reset_pipelines(lab: Lab, served: ServedSim) -> int:
    before = served.sim.counters.get("pipelines")
    result = run("reset", str(lab.file), "baseline", "--json")
    assert result.exit_code == 0, result.output
    return served.sim.counters.get("pipelines") - before


def test_list_reports_a_checkpoint_removed_by_hand_and_reset_refuses(lab: tuple[Lab, ServedSim]) -> None:
    the_lab, served = lab
    assert run("snapshot", "save", str(the_lab.file), "before-exercise").exit_code == 0
    served.invoke(Invocation("Remove-VMSnapshot", {"VMName": VMS[1], "Name": "before-exercise"}))

    listed = {s["name"]: s for s in _json("snapshot", "list", str(the_lab.file))["snapshots"]}
    assert listed["baseline"]["usable"] is True
    assert listed["before-exercise"]["usable"] is False and listed["before-exercise"]["missing"] == [VMS[1]]
    table = run("snapshot", "list", str(the_lab.file))
    assert "missing on the host: qs-node01" in table.stdout

    refused = run("reset", str(the_lab.file), "before-exercise")
    assert refused.exit_code == 3, refused.output  # refused before anything changed
    assert "qs-node01" in refused.stderr and "missing on the host" in refused.stderr

    removed = _json("snapshot", "rm", str(the_lab.file), "before-exercise")
    [info] = removed["snapshots"]
    assert info["missing"] == [VMS[1]] and info["vms"][VMS[0]]["present"] is True
    left = served.invoke(Invocation("Get-VMSnapshot", {"VMName": list(VMS)}))
    assert {str(c.get("Name")) for c in left} == {"baseline"}
    assert [s["name"] for s in _json("snapshot", "list", str(the_lab.file))["snapshots"]] == ["baseline"]


def test_a_vm_without_vss_fails_the_save_and_no_vm_keeps_a_checkpoint(lab: tuple[Lab, ServedSim]) -> None:
    the_lab, served = lab
    served.invoke(Invocation("Disable-VMIntegrationService", {"VMName": VMS[1], "Name": "VSS"}))
    try:
        result = run("snapshot", "save", str(the_lab.file), "no-vss")
    finally:
        served.invoke(Invocation("Enable-VMIntegrationService", {"VMName": VMS[1], "Name": "VSS"}))
    assert result.exit_code == 1, result.output
    assert f"1 VM(s) failed: {VMS[1]}" in result.stderr, result.stderr
    assert f"{VMS[1]}: snapshot: no production checkpoint was taken" in result.stderr
    assert "Backup (volume shadow copy)" in result.stderr  # the likely cause, with what to check
    left = served.invoke(Invocation("Get-VMSnapshot", {"VMName": list(VMS), "ErrorAction": "SilentlyContinue"}))
    assert "no-vss" not in {str(c.get("Name")) for c in left}  # all or nothing: the other VM's was removed
    assert "no-vss" not in {s["name"] for s in _json("snapshot", "list", str(the_lab.file))["snapshots"]}


def test_unknown_snapshot_names_the_known_ones(lab: tuple[Lab, ServedSim]) -> None:
    the_lab, _ = lab
    result = run("reset", str(the_lab.file), "nope")
    assert result.exit_code == 2
    assert "no snapshot 'nope'" in result.stderr and "known: baseline" in result.stderr
    dup = run("snapshot", "save", str(the_lab.file), "baseline")
    assert dup.exit_code == 2 and "already has a snapshot 'baseline'" in dup.stderr
    bad = run("snapshot", "save", str(the_lab.file), "base*")
    assert bad.exit_code == 2 and "wildcards" in bad.stderr


def test_checkpoints_of_vms_that_are_not_the_labs_are_never_touched(lab: tuple[Lab, ServedSim]) -> None:
    the_lab, served = lab
    # Someone else's VM with the name of a lab VM (Hyper-V allows it), with a checkpoint of its own.
    served.invoke(Invocation("New-VM", {"Name": VMS[1], "MemoryStartupBytes": 1024**3, "Generation": 2}))
    foreign = [vm for vm in served.invoke(Invocation("Get-VM", {"Name": VMS[1]})) if not vm.get("Notes")]
    foreign_id = str(foreign[0].get("Id"))
    served.transport.invoke(Pipeline.piped(Invocation("Get-VM", {"Id": foreign_id}),
                                           Invocation("Checkpoint-VM", {"SnapshotName": "theirs"})))
    try:
        assert run("snapshot", "save", str(the_lab.file), "class-2").exit_code == 0
        mine = {str(c.get("VMId")) for c in served.invoke(Invocation("Get-VMSnapshot", {"VMName": list(VMS)}))
                if str(c.get("Name")) == "class-2"}
        assert foreign_id not in mine and len(mine) == 2
        assert run("snapshot", "rm", str(the_lab.file), "class-2").exit_code == 0
        theirs = [str(c.get("Name")) for c in served.invoke(Invocation("Get-VMSnapshot", {"VMName": VMS[1]}))
                  if str(c.get("VMId")) == foreign_id]
        assert theirs == ["theirs"]
    finally:
        served.transport.invoke(ops.remove_vm_by_id(foreign_id))
    _healthy(the_lab)


def test_snapshot_rm_removes_exactly_its_checkpoints(lab: tuple[Lab, ServedSim]) -> None:
    the_lab, served = lab
    removed = _json("snapshot", "rm", str(the_lab.file), "baseline")
    assert removed["snapshots"][0]["missing"] == []
    left = served.invoke(Invocation("Get-VMSnapshot", {"VMName": list(VMS), "ErrorAction": "SilentlyContinue"}))
    assert [(c.get("VMName"), c.get("Name"), c.get("Notes")) for c in left] == []
    assert _json("snapshot", "list", str(the_lab.file))["snapshots"] == []
    nothing = run("reset", str(the_lab.file))
    assert nothing.exit_code == 2 and "no snapshot to reset to" in nothing.stderr
    _healthy(the_lab)
