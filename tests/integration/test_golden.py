"""Golden container-host images on a simulated host: the build (labctl.app.golden), then a lab on it.

A lab whose VMs use ws2022-container comes up with no feature install, no Docker install and no registry pull
in its guests (the simulator's per-guest counters) and every isolation check passing; a sysprep refusal fails
the build with the guest's words and leaves the host as it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labharness import Lab, ServedSim, make_lab, run

from labctl.app.connection import HostConnection, connect_endpoint
from labctl.app.golden import build_golden_on, build_lab_name
from labctl.errors import StageError
from labctl.lab.files import load_catalog
from labctl.lab.model import ImageEntry, ImageRecipe
from labctl.resources import resource_dir
from labctl.secret import Secret
from labctl.transport.base import Credential, Invocation, ScriptBlock
from labctl.transport.psrp import Endpoint

NANO = "mcr.microsoft.com/windows/nanoserver:ltsc2022"
GOLDEN_LAB = """\
name: gold
host: sim
network: {switch: gold-lab, subnet: 10.41.0.0/24}
defaults: {image: ws2022-container, memory: 4GiB}
vms:
  - name: "gold{n:02d}"
    count: 2
"""
COUNTERS = ("feature_installs", "docker_installs", "registry_pulls")


class Recorder:
    """Progress as the CLI would draw it: every (who, step, status, detail), and a hook before a step starts."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, str, str]] = []
        self.before: dict[str, Any] = {}

    def stage(self, vm: str, stage: str, status: str, detail: str = "") -> None:
        self.lines.append((vm, stage, status, detail))
        hook = self.before.pop(stage, None) if status == "start" else None
        if hook is not None:
            hook()

    def steps(self, who: str) -> list[str]:
        return [s for v, s, status, _ in self.lines if v == who and status == "start"]


def _catalog() -> dict[str, ImageEntry]:
    return dict(load_catalog([resource_dir("images")]).entries)


@pytest.fixture
def gold(tmp_path: Path) -> Lab:
    return make_lab(tmp_path, "gold.yaml", GOLDEN_LAB)


@pytest.fixture
def host(gold: Lab) -> Iterator[ServedSim]:
    s = ServedSim(gold.sim_state)
    yield s
    s.close()


@pytest.fixture
def conn(host: ServedSim) -> Iterator[HostConnection]:
    ep = host.sim.endpoint()
    c = connect_endpoint(Endpoint(uri=ep["https_uri"], auth="ntlm", username=ep["username"],
                                  password=Secret(ep["password"]), fingerprint=ep["fingerprint"]),
                         workers=2, simulated=True)
    yield c
    c.close()


def _work(host: ServedSim, vm: str, what: str) -> int:
    """The simulator's per-guest counter (feature_installs, docker_installs, registry_pulls) for ``vm``."""
    counters = host.sim.counters
    assert counters is not None
    return counters.guest(vm, what)


def _file_text(host: ServedSim, path: str) -> str:
    out = host.invoke(Invocation("Get-Content", {"Path": path, "Raw": True}))
    return "\n".join(str(o) for o in out)


def _item(host: ServedSim, path: str) -> Any:
    found = host.transport.invoke(Invocation("Get-Item", {"Path": path})).objects()
    return found[0] if found else None


def test_golden_build_then_a_lab_on_it_does_no_bootstrap_work(gold: Lab, host: ServedSim,
                                                              conn: HostConnection, tmp_path: Path) -> None:
    images = _catalog()
    golden, parent = images["ws2022-container"], images["ws2022-core"]
    before = host.shape()
    progress = Recorder()
    result = build_golden_on(conn, golden, parent, state_dir=tmp_path / "state", progress=progress)

    # Progress showed each step, under the image's name.
    assert progress.steps("image ws2022-container")[:2] == ["check", "build-vm"]
    assert {"golden-clean", "sysprep", "disk", "sidecar", "cleanup"} <= set(progress.steps("image ws2022-container"))
    # The build VM really bootstrapped (the counters can see the work a golden guest must not repeat).
    build_vm = next(vm for vm, stage, _, _ in progress.lines if stage == "features")
    assert _work(host, build_vm, "feature_installs") >= 1
    assert _work(host, build_vm, "docker_installs") == 1
    assert _work(host, build_vm, "registry_pulls") >= 1

    # The golden disk: standalone, read-only, with its sidecar; nothing of the build lab is left.
    assert result.base_disk == golden.base_disk
    vhd = host.transport.invoke(Invocation("Get-VHD", {"Path": golden.base_disk})).objects()[0]
    assert not vhd.get("ParentPath"), "a standalone disk, not a child of ws2022-core"
    assert _item(host, golden.base_disk).get("IsReadOnly") is True
    record = json.loads(_file_text(host, golden.base_disk + ".labctl.json"))
    assert record["labctl-owned"] is True and record["image"] == "ws2022-container"
    assert record["source"] == {"from": "ws2022-core", "parent": parent.base_disk}
    assert record["recipe"]["from"] == "ws2022-core"
    assert "password" not in json.dumps(record).lower()
    after = host.shape()
    assert after["vms"] == before["vms"] and after["switches"] == before["switches"]
    assert after["nats"] == before["nats"] and after["addresses"] == before["addresses"]
    assert set(after["files"]) - set(before["files"]) == {golden.base_disk, golden.base_disk + ".labctl.json"}
    assert not any(build_lab_name("ws2022-container") in f for f in after["folders"])
    assert not (tmp_path / "state" / build_lab_name("ws2022-container")).joinpath("journal.json").exists()

    # A lab on the golden image: the guests are found to be container hosts and only verified.
    up = run("up", str(gold.file))
    assert up.exit_code == 0, up.output
    for vm in ("gold01", "gold02"):
        assert {what: _work(host, vm, what) for what in COUNTERS} == dict.fromkeys(COUNTERS, 0)
    status = json.loads(run("status", str(gold.file), "--json").output)
    for vm in status["vms"]:
        c = vm["containers"]
        assert vm["healthy"] is True, (vm["name"], vm["checks"], vm["problems"])
        assert {"Containers", "Hyper-V"} <= set(c["features"]) and c["images"] == [NANO]
        assert vm["checks"]["container host: process isolation"] is True
        assert vm["checks"]["container host: hyperv isolation"] is True
        assert "10.0.20348" in c["isolation"]["process"]["output"]


def test_a_sysprep_refusal_fails_the_build_with_the_guests_words_and_leaves_nothing(
        host: ServedSim, conn: HostConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images = _catalog()
    parent = images["ws2022-core"]
    # A golden recipe with Containers only; before golden-clean something installs Hyper-V without the
    # restart Windows asks for, so sysprep finds a reboot pending.
    golden = ImageEntry.model_validate({
        "id": "ws2022-refused", "display_name": "refused", "os_build": 20348,
        "base_disk": "C:\\LabBases\\WS2022-Refused.vhdx", "container_tag": "ltsc2022", "min_memory": "2GiB",
        "build": {"from": "ws2022-core", "bootstrap": {"features": ["Containers"], "docker": True,
                                                       "container_images": ["nanoserver"]}}})
    password = "Build-Pass-1234aZ7!"
    monkeypatch.setattr("labctl.app.golden._password", lambda: password)
    progress = Recorder()

    def install_without_restart() -> None:
        vm = next(v for v, stage, _, _ in progress.lines if stage == "features")
        exec_script = (resource_dir("templates") / "guest" / "exec.ps1").read_text(encoding="utf-8")
        host.invoke(Invocation("Invoke-Command", {
            "VMName": vm, "Credential": Credential("Administrator", Secret(password)),
            "ScriptBlock": ScriptBlock(exec_script), "ArgumentList": ["Install-WindowsFeature -Name Hyper-V"]}))

    progress.before["golden-clean"] = install_without_restart
    before = host.shape()
    with pytest.raises(StageError) as caught:
        build_golden_on(conn, golden, parent, state_dir=tmp_path / "state", progress=progress)
    err = caught.value
    assert host.shape() == before
    assert "left on the host" not in err.message
    assert err.stage == "sysprep" and err.vm == "image ws2022-refused", err.message
    assert "sysprep refused" in err.message and "reboot" in err.message.lower(), err.message
    assert not (tmp_path / "state" / build_lab_name("ws2022-refused") / "journal.json").exists()


def test_the_generalize_answer_file_sets_the_generalize_pass_only_and_holds_no_secret() -> None:
    import xml.etree.ElementTree as ET

    from labctl.app.golden import render_generalize

    images = _catalog()
    text = render_generalize(images["ws2022-container"], images["ws2022-core"])
    root = ET.fromstring(text.encode("utf-8"))
    ns = {"u": "urn:schemas-microsoft-com:unattend"}
    assert [s.get("pass") for s in root.findall("u:settings", ns)] == ["generalize"]
    assert root.find(".//u:PersistAllDeviceInstalls", ns).text == "true"  # type: ignore[union-attr]
    assert root.find(".//u:SkipRearm", ns).text == "1"  # type: ignore[union-attr]
    assert "Password" not in text and "AutoLogon" not in text


def test_the_build_lab_avoids_the_hosts_nats_and_names_its_vm_within_netbios_limits() -> None:
    from labctl.app.golden import _docker_wish, _plan_build
    from labctl.hyperv.facts import HostFacts, NatFact

    images = _catalog()
    facts = HostFacts(nats=[NatFact("someone", "10.255.0.0/23")])
    build = _plan_build(images["ws2022-container"], images["ws2022-core"], facts, _docker_wish(None))
    assert build.lab.subnet == "10.255.2.0/24" and build.lab.name == build_lab_name("ws2022-container")
    assert len(build.vm.name) <= 15 and build.vm.windows_features == ("Containers", "Hyper-V")
    assert build.vm.container_images == (NANO,) and build.vm.base_disk == images["ws2022-core"].base_disk
    base = images["ws2022-container"]

    def with_features(features: list[str]) -> ImageEntry:
        recipe = ImageRecipe.model_validate({"from": "ws2022-core", "bootstrap": {"features": features}})
        return base.model_copy(update={"build": recipe})

    only = with_features(["Containers"])
    assert _plan_build(only, images["ws2022-core"], facts, _docker_wish(None)).vm.windows_features == ("Containers",)
    bad = with_features(["Hyper-V"])
    with pytest.raises(StageError, match="Containers"):
        _plan_build(bad, images["ws2022-core"], facts, _docker_wish(None))
