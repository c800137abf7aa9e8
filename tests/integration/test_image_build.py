"""Base images built from the ISO on a simulated host that has no bases (host setting base_disks=false).

up of the quickstart builds ws2022-core from the evaluation ISO in C:\\ISO (each step in the output), a second
lab on the same host reuses it, image list shows the disks that depend on it, image rm refuses while they exist;
a wrong edition lists the real ones; a second builder waits for the first; a stale lock is taken over.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from labharness import Lab, ServedSim, make_lab, run

from labctl.app import images as image_case
from labctl.engine.imagebuild import BUILD_STAGES, LockHolder, build_path, lock_path, sidecar_path
from labctl.errors import ImageError
from labctl.lab import resolve_lab
from labctl.transport.base import Invocation

BASE = "C:\\LabBases\\WS2022-Core.vhdx"
ISO = "C:\\ISO\\SERVER_EVAL_x64FRE_en-us.iso"
EDITIONS_2022 = ["1: Windows Server 2022 Standard Evaluation",
                 "2: Windows Server 2022 Standard Evaluation (Desktop Experience)",
                 "3: Windows Server 2022 Datacenter Evaluation",
                 "4: Windows Server 2022 Datacenter Evaluation (Desktop Experience)"]
ENV = {"LABCTL_GUEST_PASSWORD": "Gu3st-Passw0rd!"}






def _iso_attached(sim: ServedSim) -> bool:
    out = sim.invoke(Invocation("Get-DiskImage", {"ImagePath": ISO}))
    return bool(out) and out[0].get("Attached") is True


def _second_lab(tmp_path: Path, sim: ServedSim) -> Path:
    """A second lab on the same host (as a remote host): its own switch, subnet and VM names."""
    text = sim.remote_lab(name="second").replace("qs-lab", "q2-lab").replace("10.10.0.", "10.20.0.")
    text = text.replace("qs-dc01", "q2-dc01").replace("qs-node01", "q2-node01")
    path = tmp_path / "second" / "second.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


def _env(sim: ServedSim) -> dict[str, str]:
    return {**ENV, "LABCTL_TEST_HOST_PASSWORD": sim.password}


def test_up_builds_the_image_once_and_a_second_lab_reuses_it(quickstart: Lab, bare: ServedSim,
                                                             tmp_path: Path) -> None:
    assert not bare.exists(BASE) and bare.exists(ISO)
    plan = run("plan", str(quickstart.file))
    assert plan.exit_code == 0, plan.output
    assert "add    image    ws2022-core" in plan.output and "refused" not in plan.output

    first = run("up", str(quickstart.file))
    assert first.exit_code == 0, first.output
    lines = [line for line in first.output.splitlines() if line.startswith("image ws2022-core")]
    shown = [line.split()[2:4] for line in lines]
    for stage in BUILD_STAGES:
        assert stage.split() in [s[: len(stage.split())] for s in shown], (stage, first.output)
    assert any("Windows Server 2022 Datacenter Evaluation" in line for line in lines), first.output
    assert "2 VM(s) added" in first.output and "image ws2022-core built" not in first.output.split("Plan")[0]
    # The image: read-only, its sidecar, nothing left mounted, no temporary disk, no lock.
    assert bare.exists(BASE) and bare.exists(sidecar_path(BASE))
    assert not bare.exists(build_path(BASE)) and not bare.exists(lock_path(BASE))
    assert not _iso_attached(bare)
    record = json.loads(str(bare.invoke(Invocation("Get-Content", {"Path": sidecar_path(BASE), "Raw": True}))[0])
                        .lstrip("\ufeff"))
    assert record["labctl-owned"] is True and record["image"] == "ws2022-core" and record["lab"] == "quickstart"
    assert record["source"]["iso"] == ISO and record["source"]["index"] == 3
    assert record["source"]["edition"] == "Windows Server 2022 Datacenter Evaluation"
    status = run("status", str(quickstart.file), "--json")
    assert status.exit_code == 0 and all(all(v["checks"].values()) for v in json.loads(status.output)["vms"])

    second = _second_lab(tmp_path, bare)
    expands = bare.sim.counters.get("cmdlet:Expand-WindowsImage")
    other = run("up", str(second), env=_env(bare))
    assert other.exit_code == 0, other.output
    assert "mount iso" not in other.output and "2 VM(s) added" in other.output
    assert bare.sim.counters.get("cmdlet:Expand-WindowsImage") == expands  # reused, not built again

    listing = run("image", "list", str(quickstart.file), "--json")
    assert listing.exit_code == 0, listing.output
    rows = {r["image"]: r for r in json.loads(listing.output)["images"]}
    core = rows["ws2022-core"]
    assert core["present"] and core["labctl_owned"] and core["path"] == BASE and core["os_build"] == 20348
    assert core["edition"] == "Windows Server 2022 Datacenter Evaluation" and core["size_bytes"] > 0
    assert core["parents"] == [] and core["labs"] == ["quickstart", "second"]
    assert sorted(d["vm"] for d in core["dependants"]) == ["q2-dc01", "q2-node01", "qs-dc01", "qs-node01"]
    assert rows["ws2019-core"]["present"] is False and rows["ws2019-core"]["has_recipe"] is True
    table = run("image", "list", str(quickstart.file))
    assert "ws2022-core" in table.output and "labs: quickstart, second" in table.output

    refused = run("image", "rm", str(quickstart.file), "ws2022-core", "--yes")
    assert refused.exit_code == 3, refused.output
    assert "4 differencing disk(s) depend on C:\\LabBases\\WS2022-Core.vhdx" in refused.output
    assert "VM qs-dc01" in refused.output and "lab second" in refused.output
    assert bare.exists(BASE)

    for lab_file, env in ((str(quickstart.file), None), (str(second), _env(bare))):
        gone = run("destroy", lab_file, "--yes", env=env)
        assert gone.exit_code == 0, gone.output
    removed = run("image", "rm", str(quickstart.file), "ws2022-core", "--yes")
    assert removed.exit_code == 0, removed.output
    assert "removed" in removed.output and not bare.exists(BASE) and not bare.exists(sidecar_path(BASE))


def test_image_rm_leaves_a_base_labctl_did_not_build(quickstart: Lab) -> None:
    served = ServedSim(quickstart.sim_state)  # the simulator's own sysprepped bases, no sidecar
    try:
        refused = run("image", "rm", str(quickstart.file), "ws2025-core", "--yes")
        assert refused.exit_code == 3, refused.output
        assert "has no labctl sidecar" in refused.output
        assert served.exists("C:\\LabBases\\WS2025-Core.vhdx")
    finally:
        served.close()


def test_a_wrong_edition_lists_the_real_ones_and_leaves_nothing_behind(quickstart: Lab, bare: ServedSim) -> None:
    images = quickstart.dir / "images"
    images.mkdir()
    text = (Path(__file__).resolve().parents[2] / "labctl" / "resources" / "images" / "ws2022-core.yaml").read_text()
    (images / "ws2022-core.yaml").write_text(text.replace("Datacenter Evaluation", "Datacenter"))
    result = run("image", "build", str(quickstart.file))
    assert result.exit_code == 1, result.output
    assert "image ws2022-core: read editions:" in result.output
    assert "has no edition 'Windows Server 2022 Datacenter'" in result.output
    for edition in EDITIONS_2022:
        assert edition in result.output
    assert "set build.edition to one of these names" in result.output
    assert not bare.exists(BASE) and not bare.exists(build_path(BASE)) and not bare.exists(lock_path(BASE))
    assert not _iso_attached(bare)


def test_a_foreign_iso_is_not_a_windows_medium(quickstart: Lab) -> None:
    bare = ServedSim(quickstart.sim_state, host_config={"base_disks": False, "iso_media": "ws2022-eval,ubuntu-24.04"})
    try:
        _foreign_iso(quickstart, bare)
    finally:
        bare.close()


def _foreign_iso(quickstart: Lab, bare: ServedSim) -> None:
    images = quickstart.dir / "images"
    images.mkdir()
    text = (Path(__file__).resolve().parents[2] / "labctl" / "resources" / "images" / "ws2022-core.yaml").read_text()
    (images / "ws2022-core.yaml").write_text(text.replace("SERVER_EVAL_x64FRE_en-us.iso",
                                                          "ubuntu-24.04.1-live-server-amd64.iso"))
    result = run("image", "build", str(quickstart.file), "--json")
    assert result.exit_code == 1
    assert "is not a Windows installation medium: it has no sources\\install.wim or sources\\install.esd" \
        in result.output
    assert not bare.exists(build_path(BASE)) and not bare.exists(lock_path(BASE))


def test_two_builders_build_once(quickstart: Lab, bare: ServedSim) -> None:
    lab = resolve_lab(quickstart.file)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            result = image_case.build_images(lab, ["ws2022-core"])
            outcomes.extend(b.action for _k, b in result.images)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert errors == []
    assert sorted(outcomes) in (["built", "waited"], ["built", "present"])
    assert bare.sim.counters.get("cmdlet:Expand-WindowsImage") == 1


def test_a_lock_from_another_machine_is_waited_for_then_named(quickstart: Lab, bare: ServedSim) -> None:
    holder = LockHolder("x", "build-box", 1234, "elsewhere", "2026-01-01T00:00:00Z")
    bare.invoke(Invocation("New-Item", {"Path": "C:\\LabBases", "ItemType": "Directory", "Force": True}),
                Invocation("New-Item", {"Path": lock_path(BASE), "ItemType": "File", "Value": holder.to_text()}))
    with pytest.raises(ImageError) as caught:
        image_case.build_images(resolve_lab(quickstart.file), wait_seconds=0.5)
    assert caught.value.stage == "lock" and "lab elsewhere (pid 1234 on build-box" in caught.value.message
    assert caught.value.hint is not None and f"Remove-Item -LiteralPath '{lock_path(BASE)}'" in caught.value.hint
    assert bare.exists(lock_path(BASE)) and not bare.exists(BASE)  # never broken, nothing built


def test_a_stale_lock_of_this_machine_is_taken_over(quickstart: Lab, bare: ServedSim) -> None:
    import socket

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    holder = LockHolder("x", socket.gethostname(), int(dead.stdout), "quickstart", "2026-01-01T00:00:00Z")
    bare.invoke(Invocation("New-Item", {"Path": "C:\\LabBases", "ItemType": "Directory", "Force": True}),
                Invocation("New-Item", {"Path": lock_path(BASE), "ItemType": "File", "Value": holder.to_text()}),
                Invocation("New-VHD", {"Path": build_path(BASE), "SizeBytes": 1024**3, "Dynamic": True}))
    result = image_case.build_images(resolve_lab(quickstart.file), wait_seconds=5)
    assert [b.action for _k, b in result.images] == ["built"]
    assert bare.exists(BASE) and not bare.exists(lock_path(BASE)) and not bare.exists(build_path(BASE))


def test_image_build_json_and_a_rerun(quickstart: Lab, bare: ServedSim) -> None:
    lab = make_lab(quickstart.dir, text=quickstart.file.read_text())
    first = run("image", "build", str(lab.file), "--json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.output)
    assert [(i["image"], i["action"], i["index"]) for i in data["images"]] == [("ws2022-core", "built", 3)]
    again = run("image", "build", str(lab.file), "--json")
    assert [i["action"] for i in json.loads(again.output)["images"]] == ["present"]
