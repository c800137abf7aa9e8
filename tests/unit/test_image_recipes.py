"""Image recipes in the catalog (build:), their rules with file:line problems, and the pure parts of a build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labctl.engine.imagebuild import (
    DiskFact,
    HostDisks,
    LockHolder,
    build_path,
    is_stale,
    lock_path,
    parse_sidecar,
    sidecar,
    sidecar_path,
    update_packages,
)
from labctl.engine.plan import DesiredLab, DesiredVm, plan, preflight
from labctl.hyperv.facts import HostFacts, Ownership
from labctl.lab import catalog_for, load_catalog, validate
from labctl.resources import resource_dir

HEAD = ("display_name: X\nos_build: 20348\nbase_disk: C:\\LabBases\\{id}.vhdx\ncontainer_tag: ltsc2022\n"
        "min_memory: 2GiB\n")


def _catalog(tmp_path: Path, **files: str) -> tuple[list[str], list[str]]:
    """Write image files (name -> body after id/head), load them; (ids, problems as 'file:line: field: msg')."""
    for name, body in files.items():
        (tmp_path / f"{name}.yaml").write_text(f"id: {name}\n" + HEAD.format(id=name) + body)
    cat = load_catalog([tmp_path])
    return cat.ids(), [str(p).replace(str(tmp_path) + "/", "") for p in cat.problems]


def test_shipped_recipes() -> None:
    cat = catalog_for(resource_dir("labs") / "quickstart.yaml")
    assert cat.problems == []
    core = cat.get("ws2022-core")
    assert core is not None and core.build is not None and core.os_build == 20348
    assert core.build.iso == "C:\\ISO\\SERVER_EVAL_x64FRE_en-us.iso"
    assert core.build.edition == "Windows Server 2022 Datacenter Evaluation" and core.build.index is None
    assert core.build.disk_size == 60 * 1024**3 and not core.build.golden
    for image_id, build in (("ws2019-core", 17763), ("ws2025-core", 26100)):
        entry = cat.get(image_id)
        assert entry is not None and entry.build is not None and entry.os_build == build
        assert entry.build.edition == f"Windows Server {image_id[2:6]} Datacenter Evaluation"
        assert entry.build.iso is not None and entry.build.iso.startswith(f"C:\\ISO\\{build}.")
    golden = cat.get("ws2022-container")
    assert golden is not None and golden.build is not None and golden.build.from_ == "ws2022-core"
    assert golden.build.bootstrap is not None
    assert golden.build.bootstrap.features == ["Containers", "Hyper-V"] and golden.build.bootstrap.docker
    assert golden.build.bootstrap.container_images == ["nanoserver"]
    assert [p.id for p in cat.parents("ws2022-container")] == ["ws2022-core"]


def test_build_as_an_int_is_still_the_os_build(tmp_path: Path) -> None:
    (tmp_path / "old.yaml").write_text("id: old\ndisplay_name: Old\nbuild: 17763\nbase_disk: C:\\x.vhdx\n"
                                       "container_tag: ltsc2019\nmin_memory: 2GiB\n")
    (tmp_path / "bad.yaml").write_text("id: bad\ndisplay_name: Bad\nbuild: '17763'\nbase_disk: C:\\x.vhdx\n"
                                       "container_tag: ltsc2019\nmin_memory: 2GiB\n")
    cat = load_catalog([tmp_path])
    old = cat.get("old")
    assert old is not None and old.os_build == 17763 and old.build is None
    # An error in the shorthand is reported where the file wrote it.
    assert [str(p).replace(str(tmp_path) + "/", "").split(": ")[:2] for p in cat.problems] == [["bad.yaml:3", "build"]]


def test_a_valid_iso_file_recipe_is_relative_to_the_image_file(tmp_path: Path) -> None:
    ids, problems = _catalog(tmp_path, mine=f"build:\n  iso_file: media/x.iso\n  sha256: {'ab' * 32}\n"
                                             "  index: 3\n  features: [Containers]\n  updates: C:\\Updates\n")
    assert problems == [] and ids == ["mine"]
    recipe = load_catalog([tmp_path]).entries["mine"].build
    assert recipe is not None and recipe.iso_file == str(tmp_path / "media" / "x.iso")
    assert recipe.index == 3 and recipe.features == ["Containers"] and recipe.updates == "C:\\Updates"


@pytest.mark.parametrize(("body", "expected"), [
    ("build:\n  edition: E\n",
     "a.yaml:7: build: give the source ISO once: iso: (a path on the host) or iso_file: (a local file uploaded to "
     "the host)"),
    ("build:\n  iso: C:\\ISO\\a.iso\n  iso_file: a.iso\n  sha256: " + "a" * 64 + "\n  edition: E\n",
     "a.yaml:8: build.iso: give the source ISO once"),
    ("build:\n  iso_file: a.iso\n  edition: E\n",
     "a.yaml:8: build.iso_file: iso_file: needs sha256: (the ISO's SHA-256, checked before and after the upload)"),
    ("build:\n  iso: C:\\ISO\\a.iso\n",
     "a.yaml:7: build: name the image in install.wim/esd once: edition: (its name) or index: (its number)"),
    ("build:\n  iso: C:\\ISO\\a.iso\n  edition: E\n  index: 2\n",
     "a.yaml:9: build.edition: name the image in install.wim/esd once"),
    ("build:\n  iso: C:\\ISO\\a.iso\n  edition: E\n  bootstrap: {docker: true}\n",
     "a.yaml:10: build.bootstrap: bootstrap: belongs to a golden image; add from: <the image it starts from>"),
    ("build:\n  iso: D:/a.img\n  edition: E\n",
     "a.yaml:8: build.iso: not a valid value: An ISO on the host, like C:\\ISO\\x.iso"),
    ("build:\n  iso: C:\\ISO\\a.iso\n  edition: E\n  index: 0\n", "a.yaml:10: build.index: "),
    ("build:\n  iso: C:\\ISO\\a.iso\n  edition: E\n  colour: red\n", "a.yaml:10: build.colour: unknown key"),
])
def test_recipe_rules_with_lines(tmp_path: Path, body: str, expected: str) -> None:
    ids, problems = _catalog(tmp_path, a=body)
    assert ids == []
    assert any(p.startswith(expected) for p in problems), problems


def test_a_golden_recipe_has_no_iso_and_names_a_known_image(tmp_path: Path) -> None:
    base = "build:\n  iso: C:\\ISO\\a.iso\n  edition: E\n"
    ids, problems = _catalog(
        tmp_path, base=base,
        gold="build:\n  from: base\n  iso: C:\\ISO\\a.iso\n  features: [Containers]\n",
        lost="build:\n  from: nowhere\n")
    assert "gold" not in ids
    assert "gold.yaml:9: build.iso: a golden image (from: base) starts from its parent's disk and has no iso; " \
           "give it in the parent image's recipe" in problems
    assert "gold.yaml:10: build.features: a golden image (from: base) starts from its parent's disk and has no " \
           "features; give it in bootstrap.features" in problems
    assert any(p.startswith("lost.yaml:8: build.from: from: 'nowhere' is not an image of the catalog; known: base")
               for p in problems), problems


def test_from_cycles_are_refused(tmp_path: Path) -> None:
    _ids, problems = _catalog(tmp_path, one="build:\n  from: two\n", two="build:\n  from: one\n",
                              me="build:\n  from: me\n")
    assert "me.yaml:8: build.from: from: makes a cycle: me -> me" in problems
    assert "one.yaml:8: build.from: from: makes a cycle: one -> two -> one" in problems
    assert "two.yaml:8: build.from: from: makes a cycle: two -> one -> two" in problems


def test_a_lab_sees_catalog_problems(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "x.yaml").write_text("id: x\n" + HEAD.format(id="x") + "build:\n  from: y\n")
    lab = tmp_path / "lab.yaml"
    lab.write_text("name: t\nnetwork: {subnet: 10.1.0.0/24}\nvms: [{name: a}]\n")
    assert [p.field for p in validate(lab)] == ["build.from"]


def test_preflight_builds_instead_of_refusing_a_missing_base_with_a_recipe() -> None:
    def vm(name: str, buildable: bool) -> DesiredVm:
        return DesiredVm(name=name, image="ws2022-core", base_disk="C:\\LabBases\\WS2022-Core.vhdx", build=20348,
                         processors=2, memory=4 * 1024**3, mac="00-15-5D-00-00-01", ip="10.1.0.10", prefix_length=24,
                         buildable=buildable)

    facts = HostFacts(computer_name="HV01", os_build=26100, cpu_vendor="GenuineIntel", logical_processors=16,
                      memory_capacity=64 * 1024**3, free_memory=60 * 1024**3, vhd_path="C:\\VHDs",
                      hyperv_installed=True, free_disk={"C": 200 * 1024**3})
    lab = DesiredLab(name="t", switch="s", subnet="10.1.0.0/24", gateway="10.1.0.1", nat=False, nat_name="n",
                     vms=(vm("a", False), vm("b", True)))
    problems = preflight(lab, facts, Ownership("t", "id"), {})
    assert [p.split(":")[0] for p in problems if "base disk" in p] == ["VM a"]
    changes = plan(lab, facts, Ownership("t", "id"), {}, base_present={}).changes
    assert [(c.action, c.kind, c.name) for c in changes if c.kind == "image"] == [("add", "image", "ws2022-core")]


def test_paths_next_to_the_target() -> None:
    base = "C:\\LabBases\\WS2022-Core.vhdx"
    assert sidecar_path(base) == "C:\\LabBases\\WS2022-Core.vhdx.labctl.json"
    assert lock_path(base) == "C:\\LabBases\\WS2022-Core.vhdx.labctl.lock"
    assert build_path(base) == "C:\\LabBases\\WS2022-Core.labctl-build.vhdx"


def test_the_stale_lock_rule() -> None:
    mine = LockHolder("t", "ctl01", 4242, "quickstart", "2026-01-01T00:00:00Z")
    assert is_stale(mine, machine="CTL01", alive=lambda _pid: False)  # this machine, process gone
    assert not is_stale(mine, machine="ctl01", alive=lambda _pid: True)  # still running: wait
    assert not is_stale(mine, machine="other", alive=lambda _pid: False)  # another machine: never broken
    assert not is_stale(None, machine="ctl01", alive=lambda _pid: False)  # unreadable: wait
    assert LockHolder.parse(mine.to_text()) == mine and LockHolder.parse("garbage") is None


def test_sidecar_records_ownership_and_how(tmp_path: Path) -> None:
    cat = catalog_for(resource_dir("labs") / "quickstart.yaml")
    image = cat.get("ws2022-core")
    assert image is not None and image.build is not None
    text = sidecar(image, image.build, {"iso": image.build.iso, "sha256": None, "edition": "E", "index": 3},
                   lab="quickstart", built="2026-01-01T00:00:00Z")
    data = json.loads(text)
    assert data["labctl-owned"] is True and data["image"] == "ws2022-core" and data["lab"] == "quickstart"
    assert data["recipe"]["edition"] == "Windows Server 2022 Datacenter Evaluation"
    assert data["source"]["index"] == 3 and data["built"] == "2026-01-01T00:00:00Z"
    assert parse_sidecar("\ufeff" + text) == data  # Set-Content -Encoding UTF8 writes a BOM
    assert parse_sidecar(json.dumps({"image": "x"})) is None and parse_sidecar("not json") is None


def test_updates_apply_in_name_order() -> None:
    files = ["C:\\U\\b.msu", "C:\\U\\readme.txt", "C:\\U\\A.cab", "C:\\U\\c.MSU"]
    assert update_packages(files) == ["C:\\U\\A.cab", "C:\\U\\b.msu", "C:\\U\\c.MSU"]


def test_dependants_follow_parent_chains() -> None:
    base = "C:\\LabBases\\WS2022-Core.vhdx"
    gold = "C:\\LabBases\\Gold.vhdx"
    disks = HostDisks()
    for fact in (DiskFact(base), DiskFact(gold, base), DiskFact("C:\\L\\a.vhdx", base),
                 DiskFact("C:\\L\\b.vhdx", gold), DiskFact("C:\\L\\b_1.avhdx", "C:\\L\\b.vhdx"),
                 DiskFact("C:\\L\\other.vhdx", "C:\\LabBases\\Other.vhdx")):
        disks.disks[fact.path.lower()] = fact
    disks.users["c:\\l\\a.vhdx"] = ("vm-a", "quickstart")
    disks.users["c:\\l\\b_1.avhdx"] = ("vm-b", "second")
    assert disks.chain("C:\\L\\b_1.avhdx") == ["C:\\L\\b.vhdx", gold, base]
    got = [(d.path, d.vm, d.lab) for d in disks.dependants(base)]
    assert got == [("C:\\L\\a.vhdx", "vm-a", "quickstart"), ("C:\\L\\b.vhdx", "", ""),
                   ("C:\\L\\b_1.avhdx", "vm-b", "second"), (gold, "", "")]
    assert disks.dependants("C:\\L\\a.vhdx") == []
