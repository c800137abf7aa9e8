"""Unit tests of the lab-wide snapshot and power verbs: ownership in the host view, error attribution, names,
the journal's snapshot records, the host calls' shape, and host round trips that do not grow with the VMs."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from labctl.engine.journal import Journal
from labctl.engine.plan import DesiredLab, DesiredVm
from labctl.engine.power import LabHost, parse_view, start_lab, stop_lab, vm_of_error
from labctl.engine.snapshots import check_name, recorded
from labctl.errors import LabUsageError
from labctl.hyperv import ops
from labctl.hyperv.facts import Ownership
from labctl.secret import Secret
from labctl.transport.base import Credential, Invocation, Pipeline, RemoteError, RemoteObject, Result, Switch

OWNER = Ownership("lab", "abc123def456")
HV = "Microsoft.HyperV.PowerShell."


def _lab(n: int) -> DesiredLab:
    vms = tuple(DesiredVm(name=f"vm{i}", image="ws2022", base_disk="C:\\b.vhdx", build=20348, processors=2,
                          memory=4 << 30, mac=f"00-15-5D-00-00-{i:02X}", ip=f"10.0.0.{10 + i}", prefix_length=24,
                          roles=("container-host",), container_images=("nano:ltsc2022",), index=i)
                for i in range(n))
    return DesiredLab(name="lab", switch="s", subnet="10.0.0.0/24", gateway="10.0.0.1", nat=False, nat_name="n",
                      vms=vms)


def _vm(name: str, vm_id: str, owner: Ownership | None, state: str = "Running") -> RemoteObject:
    return RemoteObject([HV + "VirtualMachine"], {"Name": name, "Id": vm_id, "State": state,
                                                  "Heartbeat": "OkApplicationsHealthy",
                                                  "Notes": owner.tag() if owner else ""})


def test_the_view_keeps_only_the_labs_own_vms_and_tells_their_checkpoints_apart() -> None:
    lab = _lab(2)
    res = Result(output=[
        _vm("vm0", "id-0", OWNER), _vm("VM1", "id-1", OWNER),
        _vm("vm1", "id-x", Ownership("lab", "otherlabid00")),  # same name, another lab's: not ours
        _vm("unrelated", "id-u", OWNER),
        RemoteObject([HV + "VMSnapshot"], {"VMName": "vm1", "VMId": "id-x", "Id": "c-x", "Name": "base"}),
        RemoteObject([HV + "VMSnapshot"], {"VMName": "vm1", "VMId": "id-1", "Id": "c-1", "Name": "base"}),
    ])
    view = parse_view(lab, OWNER, res)
    assert {n: f.id for n, f in view.vms.items()} == {"vm0": "id-0", "vm1": "id-1"}
    assert view.foreign == {"vm1": 1}
    assert [c.id for c in view.ours()] == ["c-1"]


@pytest.mark.parametrize(("target", "message", "vm"), [
    ("vm1", "whatever", "vm1"),
    (None, "'vm10' failed to shut down", None),  # vm10 is not vm1
    (None, "Checkpoint operation for 'vm1' failed. (Virtual machine ID 1234)", "vm1"),
    (None, "The operation failed.", None),
])
def test_an_error_is_attributed_to_the_vm_it_names(target: str | None, message: str, vm: str | None) -> None:
    assert vm_of_error(RemoteError(message, "X", target=target), ["vm0", "vm1"]) == vm


@pytest.mark.parametrize("name", ["base*", "a?b", "[x]", "-rf", "", "x" * 101])
def test_snapshot_names_with_wildcards_or_a_leading_dash_are_refused(name: str) -> None:
    with pytest.raises(LabUsageError):
        check_name(name)


def test_journal_snapshots_are_an_optional_key_old_journals_still_load(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    path.write_text(json.dumps({"version": 1, "lab": "lab", "lab_id": "abc123def456", "host": {}, "vms": {}}))
    journal = Journal.open(path, "lab")
    assert journal.lab_snapshots() == {}
    journal.record_lab_snapshot("a", {"created": "2026-01-01T00:00:00Z", "state": "complete", "vms": {}})
    journal.record_lab_snapshot("b", {"created": "2026-01-02T00:00:00Z", "state": "complete", "vms": {}})
    journal.record_lab_snapshot("c", {"created": "2026-01-03T00:00:00Z", "state": "pending"})
    again = Journal.open(path, "lab")
    assert sorted(again.lab_snapshots()) == ["a", "b", "c"] and again.vm_names() == []
    h = LabHost(_NoHost(), _lab(1), again, OWNER)  # type: ignore[arg-type]
    assert recorded(h, None)[0] == "b"  # the most recent complete one
    with pytest.raises(LabUsageError, match="known: a, b, c"):
        recorded(h, "zzz")
    again.forget_lab_snapshot("a")
    assert sorted(Journal.open(path, "lab").lab_snapshots()) == ["b", "c"]


def test_lab_wide_calls_select_the_labs_vms_by_id_with_values_as_parameters() -> None:
    pipe = ops.checkpoint_lab(["vm0", "vm1"], ["ID-0", "ID-1"], "it's; Remove-Item C:\\")
    set_vm, checkpoint, readback = pipe.statements
    assert [i.command for i in set_vm] == ["Get-VM", "Where-Object", "Set-VM"]
    assert set_vm[1].parameters["Value"] == ["id-0", "id-1"] and isinstance(set_vm[1].parameters["In"], Switch)
    assert set_vm[2].parameters == {"CheckpointType": "ProductionOnly", "ErrorAction": "Stop"}
    assert checkpoint[-1].parameters["SnapshotName"] == "it's; Remove-Item C:\\"  # a value, never script text
    assert readback[0].command == "Get-VMSnapshot"
    restore = ops.restore_checkpoints(["vm0"], ["ID-0"], ["C-0"])
    assert [i.command for i in restore.statements[1]] == ["Get-VMSnapshot", "Where-Object", "Restore-VMSnapshot"]
    assert restore.statements[1][1].parameters["Value"] == ["c-0"]


class _NoHost:
    """A transport that must not be called."""

    cancel = threading.Event()

    def invoke(self, pipeline: Any, **_: Any) -> Result:
        raise AssertionError("no host call expected")


class _FakeHost:
    """A host where every lab VM boots at once: counts the round trips the verbs make."""

    def __init__(self, lab: DesiredLab) -> None:
        self.lab = lab
        self.state = {vm.name: "Off" for vm in lab.vms}
        self.calls = 0
        self.cancel = threading.Event()

    def invoke(self, pipeline: Pipeline | Invocation, **_: Any) -> Result:
        self.calls += 1
        if isinstance(pipeline, Invocation):
            pipeline = Pipeline.of(pipeline)
        out: list[Any] = []
        for statement in pipeline.statements:
            # `Get-VM ... | Select-Object <properties>`: the objects of the source (all properties, a superset)
            last = statement[0] if statement[-1].command == "Select-Object" else statement[-1]
            if last.command == "Start-VM":
                self.state = {n: "Running" for n in self.state}
            elif last.command == "Stop-VM":
                self.state = {n: "Off" for n in self.state}
            elif last.command == "Get-VM":
                out += [_vm(vm.name, f"id-{vm.index}", OWNER, self.state[vm.name]) for vm in self.lab.vms]
            elif last.command == "Get-VMNetworkAdapter":
                out += [RemoteObject([HV + "VMNetworkAdapter"], {"VMName": vm.name, "VMId": f"id-{vm.index}",
                                                                 "IPAddresses": [vm.ip]}) for vm in self.lab.vms]
            elif last.command == "Invoke-Command":
                out += [self._step(name, str(last.parameters["ScriptBlock"].text))
                        for name in last.parameters["VMName"]]
        return Result(output=out)

    @staticmethod
    def _step(vm: str, script: str) -> RemoteObject:
        step = script.split()[2]
        props: dict[str, Any] = {"PSComputerName": vm}
        if step == "probe":
            props["ComputerName"] = vm
        elif step == "docker-cli":
            props.update(ExitCode=0, Output=["Client:", " Version: 27.3.1", "Server:", " Version: 27.3.1"])
        else:
            ok = RemoteObject(["System.Management.Automation.PSCustomObject"], {"Ok": True, "Output": "ver"})
            props["Facts"] = RemoteObject(["System.Management.Automation.PSCustomObject"],
                                          {"Process": ok, "HyperV": ok})
        return RemoteObject(["System.Management.Automation.PSCustomObject"], props)


def _round_trips(n: int, tmp_path: Path) -> tuple[int, int]:
    lab = _lab(n)
    host = _FakeHost(lab)
    journal = Journal.open(tmp_path / f"j{n}.json", "lab")
    h = LabHost(host, lab, journal, OWNER, credential=Credential("Administrator", Secret("x")))  # type: ignore[arg-type]
    started = start_lab(h)
    assert all(v.ok and v.action == "started" for v in started.values()), started
    starts = host.calls
    stopped = stop_lab(h, timeout=5)
    assert all(v.ok and v.action == "shut down" for v in stopped.values()), stopped
    return starts, host.calls - starts


def test_start_and_stop_make_as_many_host_round_trips_for_13_vms_as_for_2(tmp_path: Path) -> None:
    assert _round_trips(13, tmp_path) == _round_trips(2, tmp_path)
