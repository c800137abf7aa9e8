"""Round trips, counted by the simulator: host-side creation of a VM in at most 12 HTTP requests, and `labctl
status` of a lab in at most 3 pipelines whatever its number of VMs (issue 12, section 3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from labharness import Lab, ServedSim, make_lab, run

from labctl.app import up as up_case
from labctl.app.labfile import load
from labctl.app.sim import parse_host_settings

# Host-side creation: disk, answer file, VM, configuration, start (the build stages after render).
CREATION = ("disk", "answer-file", "vm", "configure", "start")


def _lab(tmp_path: Path, count: int) -> Lab:
    return make_lab(tmp_path, "rt.yaml", f"""name: rt
host: sim
network: {{switch: rt-sw, subnet: 10.41.0.0/22, gateway: 10.41.0.1}}
defaults: {{image: ws2022-core, processors: 2, memory: 4GiB, disk: 40GiB, roles: []}}
vms:
  - name: "rt-{{n:02d}}"
    count: {count}
""")


class StageCounters:
    """Progress that charges the simulator's HTTP requests and pipelines to the stage running (one VM at a time:
    ``--max-workers 1``, so every request between a stage's start and its end is that stage's)."""

    def __init__(self, served: ServedSim) -> None:
        self.counters = served.sim.counters
        assert self.counters is not None
        self.requests: dict[str, int] = {}
        self.pipelines: dict[str, int] = {}
        self._open: dict[str, tuple[str, int, int]] = {}

    def _now(self) -> tuple[int, int]:
        assert self.counters is not None
        return self.counters.get("http_requests"), self.counters.get("pipelines")

    def stage(self, vm: str, stage: str, status: str, detail: str = "") -> None:
        requests, pipelines = self._now()
        if vm in self._open:
            name, r0, p0 = self._open.pop(vm)
            self.requests[name] = self.requests.get(name, 0) + requests - r0
            self.pipelines[name] = self.pipelines.get(name, 0) + pipelines - p0
        if status == "start":
            self._open[vm] = (stage, requests, pipelines)


@pytest.fixture
def four(tmp_path: Path) -> Iterator[tuple[Lab, ServedSim]]:
    lab = _lab(tmp_path, 4)
    served = ServedSim(lab.sim_state)
    yield lab, served
    served.close()


@pytest.mark.xdist_group("round-trips")
def test_creating_a_vm_takes_at_most_12_http_requests(four: tuple[Lab, ServedSim]) -> None:
    lab, served = four
    seen = StageCounters(served)
    result = up_case.up(load(str(lab.file)), up_case.UpOptions(max_workers=1), progress=seen)
    assert result.report is not None
    assert {n: o.ok for n, o in result.report.outcomes.items()} == {f"rt-0{i}": True for i in range(1, 5)}
    per_vm = sum(seen.requests.get(s, 0) for s in CREATION) / 4
    pipelines = sum(seen.pipelines.get(s, 0) for s in CREATION) / 4
    assert per_vm <= 12, (per_vm, seen.requests)
    assert pipelines <= 4, (pipelines, seen.pipelines)
    # Fewer round trips, same host: every VM as the lab asks, answer file injected (and removed), disk dismounted.
    status = json.loads(run("status", str(lab.file), "--json").output)
    assert [(v["name"], v["healthy"]) for v in status["vms"]] == [(f"rt-0{i}", True) for i in range(1, 5)]
    assert all(v["checks"]["answer file removed"] and v["checks"]["nested: MAC spoofing"] for v in status["vms"])
    # A second up changes nothing and creates nothing.
    assert served.sim.counters is not None
    made = served.sim.counters.snapshot()["cmdlets"].get("New-VM")
    again = run("up", str(lab.file))
    assert again.exit_code == 0, again.output
    assert served.sim.counters.snapshot()["cmdlets"].get("New-VM") == made == 4


@pytest.mark.xdist_group("round-trips")
def test_a_failed_new_vm_still_fails_the_vm_stage_and_up_again_converges(four: tuple[Lab, ServedSim]) -> None:
    """New-VM travels in the answer-file stage's round trip; its failure is still the vm stage's."""
    from hvsim.core.faults import FaultRule

    lab, served = four
    served.sim.faults.add(FaultRule("cmdlet_fail", match={"cmdlet": "New-VM", "vm": "rt-02"}, times=0,
                                    params={"terminating": True, "error_id": "OperationFailed",
                                            "message": "The operation failed because the file was not found."}))
    first = run("up", str(lab.file))
    assert first.exit_code == 1, first.output
    assert "rt-02 failed at stage vm" in first.output
    # Its disk was dismounted before New-VM (the others' are in use by their running VMs).
    assert not [d for d in served.inventory()["attached_disks"] if d.endswith("rt-02.vhdx")]
    served.sim.faults.clear()
    second = run("up", str(lab.file))
    assert second.exit_code == 0, second.output
    status = json.loads(run("status", str(lab.file), "--json").output)
    assert all(v["healthy"] for v in status["vms"]), status


@pytest.mark.parametrize("count", [3, 12])
@pytest.mark.xdist_group("round-trips")
def test_status_of_a_lab_takes_at_most_3_pipelines_whatever_its_size(tmp_path: Path, count: int) -> None:
    lab = _lab(tmp_path, count)
    served = ServedSim(lab.sim_state, host_config=parse_host_settings(("memory_capacity=512GiB",
                                                                        "logical_processor_count=64")))
    try:
        assert run("up", str(lab.file), "--max-workers", "8").exit_code == 0
        counters = served.sim.counters
        assert counters is not None
        before = counters.get("pipelines")
        result = run("status", str(lab.file), "--json")
        pipelines = counters.get("pipelines") - before
        assert result.exit_code == 0, result.output
        vms = json.loads(result.output)["vms"]
        assert len(vms) == count and all(v["healthy"] for v in vms), vms
        assert all(v["guest"].get("ComputerName", "").lower() == v["name"] for v in vms)  # the guests were asked
        assert pipelines <= 3, pipelines
    finally:
        served.close()


@pytest.mark.xdist_group("round-trips")
def test_status_of_container_hosts_asks_docker_in_the_third_pipeline(quickstart: Lab, served: ServedSim) -> None:
    assert run("up", str(quickstart.file)).exit_code == 0
    counters = served.sim.counters
    assert counters is not None
    before = counters.get("pipelines")
    result = run("status", str(quickstart.file), "--json")
    pipelines = counters.get("pipelines") - before
    assert result.exit_code == 0, result.output
    vms = json.loads(result.output)["vms"]
    assert all(v["healthy"] for v in vms), vms
    assert all(v["containers"]["source"] == "guest" and v["containers"]["docker_version"] for v in vms), vms
    assert all(v["checks"]["container host: image mcr.microsoft.com/windows/nanoserver:ltsc2022"] for v in vms), vms
    assert pipelines <= 3, pipelines


def _readiness_reads(lab: Lab, served: ServedSim) -> tuple[int, int]:
    """`up` with the default options in the realistic profile (the VMs really take time to boot, so labctl waits):
    how many times it read the VMs' adapters (each readiness poll reads them once, for every waiting VM) and
    how many pipelines it sent in all."""
    counters = served.sim.counters
    assert counters is not None
    reads0, pipes0 = counters.get("cmdlet:Get-VMNetworkAdapter"), counters.get("pipelines")
    result = run("up", str(lab.file))
    assert result.exit_code == 0, result.output
    return counters.get("cmdlet:Get-VMNetworkAdapter") - reads0, counters.get("pipelines") - pipes0


@pytest.mark.xdist_group("round-trips")
def test_waiting_vms_share_their_readiness_polls(tmp_path: Path) -> None:
    """Six VMs booting at once are read together, one pipeline per poll (issue 12, section 2): each VM passes three
    host-side waits (running, heartbeat, ip), so polling each VM on its own needs at least 18 reads of the
    adapters; shared polls need fewer. Every VM is up with the default options (all at once)."""
    settings = parse_host_settings(("memory_capacity=512GiB", "logical_processor_count=64"))
    lab = _lab(tmp_path, 6)
    served = ServedSim(lab.sim_state, profile="realistic", speedup=1200.0, host_config=settings)
    try:
        reads, _ = _readiness_reads(lab, served)
        status = json.loads(run("status", str(lab.file), "--json").output)
        assert len(status["vms"]) == 6 and all(v["healthy"] for v in status["vms"]), status
    finally:
        served.close()
    assert 1 <= reads < 6 * 3, reads
