"""labctl init: the example labs (and on request the image catalog and answer-file templates) to start from."""

from __future__ import annotations

from pathlib import Path

from clirun import labctl

from labctl.lab import resolve_lab
from labctl.resources import resource_dir


def test_init_writes_the_three_example_labs_that_validate(tmp_path: Path) -> None:
    result = labctl("init", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "labs").iterdir()) == [
        "classroom.yaml", "isolation-demo.yaml", "quickstart.yaml"]
    assert result.stdout.count("created") == 3 and "next: labctl up" in result.stdout
    for lab in (tmp_path / "labs").iterdir():
        assert labctl("validate", str(lab)).exit_code == 0, lab


def test_a_second_init_changes_nothing_and_keeps_your_edits(tmp_path: Path) -> None:
    labctl("init", str(tmp_path))
    mine = tmp_path / "labs" / "classroom.yaml"
    mine.write_text(mine.read_text() + "# my class\n")
    again = labctl("init", str(tmp_path))
    assert again.exit_code == 0
    assert again.stdout.count("unchanged") == 2 and "kept" in again.stdout and "--force" in again.stdout
    assert mine.read_text().endswith("# my class\n")
    forced = labctl("init", str(tmp_path), "--force")
    assert "overwritten" in forced.stdout
    assert mine.read_text() == (resource_dir("labs") / "classroom.yaml").read_text()


def test_init_images_gives_a_catalog_the_labs_beside_it_use(tmp_path: Path) -> None:
    result = labctl("init", str(tmp_path), "--images", "--templates")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "templates" / "unattend" / "default.xml.j2").is_file()
    catalog = tmp_path / "images" / "ws2022-core.yaml"
    catalog.write_text(catalog.read_text().replace("C:\\LabBases\\WS2022-Core.vhdx", "D:\\Bases\\ws22.vhdx"))
    lab = resolve_lab(tmp_path / "labs" / "quickstart.yaml")
    assert {vm.image.base_disk for vm in lab.vms} == {"D:\\Bases\\ws22.vhdx"}
    assert lab.template_dirs[0] == str((tmp_path / "templates").resolve())


def test_init_into_a_file_is_a_clear_usage_error(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("x")
    result = labctl("init", str(target))
    assert result.exit_code == 2 and "Traceback" not in result.output
