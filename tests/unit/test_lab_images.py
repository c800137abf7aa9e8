"""Image catalog: the shipped images, search order, and file:line errors in image files."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.lab import catalog_for, format_size, image_search_dirs, load_catalog, parse_size, validate
from labctl.lab.sizes import SizeError
from labctl.resources import resource_dir

REPO = Path(__file__).resolve().parents[2]


def test_shipped_catalog() -> None:
    cat = catalog_for(resource_dir("labs") / "quickstart.yaml")
    assert cat.problems == []
    assert cat.ids() == ["ws2019-core", "ws2022-container", "ws2022-core", "ws2025-core"]
    builds = {i.id: (i.os_build, i.container_tag, i.base_disk, i.generation) for i in cat}
    assert builds == {
        "ws2019-core": (17763, "ltsc2019", "C:\\LabBases\\WS2019-Core.vhdx", 2),
        "ws2022-container": (20348, "ltsc2022", "C:\\LabBases\\WS2022-Container.vhdx", 2),
        "ws2022-core": (20348, "ltsc2022", "C:\\LabBases\\WS2022-Core.vhdx", 2),
        "ws2025-core": (26100, "ltsc2025", "C:\\LabBases\\WS2025-Core.vhdx", 2),
    }
    ws2019 = cat.get("ws2019-core")
    assert ws2019 is not None and ws2019.display_name == "Windows Server 2019 Datacenter (Server Core)"


def test_search_order_lab_dir_first(tmp_path: Path) -> None:
    (tmp_path / "labs").mkdir()
    (tmp_path / "images").mkdir()
    lab = tmp_path / "labs" / "x.yaml"
    dirs = image_search_dirs(lab)
    assert dirs[0] == (tmp_path / "images").resolve() and dirs[-1] == (resource_dir("images")).resolve()
    assert image_search_dirs(lab, [tmp_path]) == [tmp_path.resolve()]


def test_local_image_overrides_and_extends(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    (images / "ws2022-core.yaml").write_text(
        "id: ws2022-core\ndisplay_name: Mine\nbuild: 20348\nbase_disk: D:\\Bases\\Mine.vhdx\n"
        "container_tag: ltsc2022\nmin_memory: 2GiB\n")
    lab = tmp_path / "lab.yaml"
    lab.write_text("name: t\nnetwork: {subnet: 10.1.0.0/24}\nvms: [{name: a, image: ws2019-core}, {name: b}]\n")
    cat = catalog_for(lab)
    mine = cat.get("ws2022-core")
    assert mine is not None and mine.base_disk == "D:\\Bases\\Mine.vhdx"
    assert "ws2019-core" in cat
    assert validate(lab) == []


def test_bad_image_file_reports_lines(tmp_path: Path) -> None:
    (tmp_path / "ws9.yaml").write_text(
        "id: ws9\ndisplay_name: Nine\nbuild: 9\ngeneration: 1\nbase_disk: C:\\x.vhdx\n"
        "container_tag: latest\nmin_memory: lots\ncolour: blue\n")
    (tmp_path / "named-wrong.yaml").write_text(
        "id: other\ndisplay_name: X\nbuild: 20348\nbase_disk: C:\\x.vhdx\ncontainer_tag: ltsc2022\nmin_memory: 1GiB\n")
    cat = load_catalog([tmp_path])
    got = sorted(str(p).replace(str(tmp_path) + "/", "").split(": ", 2)[0] + ": " + str(p).split(": ", 2)[1]
                 for p in cat.problems)
    assert got == ["named-wrong.yaml:1: id", "ws9.yaml:3: build", "ws9.yaml:4: generation",
                   "ws9.yaml:6: container_tag", "ws9.yaml:7: min_memory", "ws9.yaml:8: colour"]
    assert cat.ids() == []


@pytest.mark.parametrize(("text", "size"), [
    ("4GiB", 4 * 1024**3), ("4GB", 4 * 1024**3), ("4096MiB", 4 * 1024**3), ("4096 MB", 4 * 1024**3),
    ("1.5GiB", 1536 * 1024**2), ("60gib", 60 * 1024**3), ("1TB", 1024**4), ("512KiB", 512 * 1024),
])
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["4", 4096, "4 gigs", "GiB", "0GiB", "-1GiB", True, "4GiB extra"])
def test_bad_sizes(bad: object) -> None:
    with pytest.raises(SizeError):
        parse_size(bad)


def test_format_size() -> None:
    assert [format_size(s) for s in (4 * 1024**3, 1536 * 1024**2, 1024**4, 1000)] == [
        "4GiB", "1536MiB", "1TiB", "1000 bytes"]
