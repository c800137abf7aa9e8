"""Destroy proves its work: each removal is read back; what stays is reported with the host's reason, the
journal keeps it, and the next destroy finishes the job. Only what really existed and went is listed."""

from __future__ import annotations

import json

from killpoints import KillPoint, kill_up_at
from labharness import Lab, ServedSim, run

from hvsim.core.faults import FaultRule


def test_a_vm_that_does_not_go_is_reported_with_the_hosts_reason_and_a_rerun_removes_it(
        quickstart: Lab, served: ServedSim) -> None:
    empty = served.inventory()
    assert run("up", str(quickstart.file)).exit_code == 0
    served.sim.faults.add(FaultRule("cmdlet_fail", match={"cmdlet": "Remove-VM", "vm": "qs-node01"}, times=0,
                                    params={"message": "Failed to delete the virtual machine 'qs-node01'.",
                                            "error_id": "OperationFailed", "category": "NotSpecified"}))
    first = run("destroy", str(quickstart.file), "--yes")
    assert first.exit_code == 1, first.output
    assert "- vm qs-dc01" in first.output
    assert "- vm qs-node01" not in first.output  # not claimed
    assert "vm qs-node01: Failed to delete the virtual machine 'qs-node01'." in first.output
    assert "DestroyIncompleteError" in first.output
    names = [str(o.get("Name")) for o in served.transport.invoke(__import__(
        "labctl.transport.base", fromlist=["Invocation"]).Invocation("Get-VM")).objects()]
    assert names == ["qs-node01"]
    journal = json.loads((quickstart.state / "journal.json").read_text())
    assert "qs-node01" in journal["vms"] and "qs-dc01" not in journal["vms"]
    served.sim.faults.clear()
    second = run("destroy", str(quickstart.file), "--yes")
    assert second.exit_code == 0, second.output
    assert "- vm qs-node01" in second.output and "not created by this lab" not in second.output
    assert "qs-dc01" not in second.output  # gone already: not listed twice
    assert served.inventory() == empty
    assert not (quickstart.state / "journal.json").exists()


def test_destroy_after_a_kill_with_the_disk_mounted_dismounts_it_and_lists_only_what_existed(
        quickstart: Lab, served: ServedSim) -> None:
    empty = served.inventory()
    kill_up_at(served.sim, quickstart.file, KillPoint("answer-file", "Set-Content"))
    assert served.inventory()["attached_disks"], "the kill was meant to leave a disk mounted"
    result = run("destroy", str(quickstart.file), "--yes")
    assert result.exit_code == 0, result.output
    assert served.inventory() == empty
    removed = [ln.strip()[2:] for ln in result.output.splitlines() if ln.strip().startswith("- ")]
    assert not any(r.startswith("vm ") for r in removed), removed  # no VM existed yet: none is listed
    assert any(r.startswith("disk ") for r in removed) and any(r.startswith("folder ") for r in removed)


def test_a_folder_the_host_will_not_delete_keeps_the_journal_and_exits_1(quickstart: Lab, served: ServedSim) -> None:
    empty = served.inventory()
    assert run("up", str(quickstart.file)).exit_code == 0
    served.sim.faults.add(FaultRule("cmdlet_fail", match={"cmdlet": "Remove-Item"}, times=0, params={
        "message": "Access to the path is denied.", "error_id": "RemoveItemUnauthorizedAccessError",
        "category": "PermissionDenied"}))
    first = run("destroy", str(quickstart.file), "--yes")
    assert first.exit_code == 1, first.output
    assert "Access to the path is denied." in first.output
    assert "- folder" not in first.output and "- disk" not in first.output
    assert (quickstart.state / "journal.json").exists()
    served.sim.faults.clear()
    assert run("destroy", str(quickstart.file), "--yes").exit_code == 0
    assert served.inventory() == empty
