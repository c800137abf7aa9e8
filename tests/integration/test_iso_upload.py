r"""A recipe with ``iso_file:`` (a local ISO beside the image file) on a simulated host without bases.

The ISO is a simulator placeholder (hvsim.storage.media.placeholder_iso): `labctl image build` uploads it once to
C:\ISO\labctl, checks it with Get-FileHash and builds from it; another image from the same file, and a rebuild after
`image rm`, find the host copy by its SHA-256 and do not upload again. A wrong sha256 is refused before anything is
built or uploaded; a file that is no disc image gets the host's Mount-DiskImage error.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from labharness import Lab, ServedSim, run

from hvsim.storage.media import placeholder_iso, placeholder_medium
from labctl.engine.imagebuild import build_path, lock_path, sidecar_path
from labctl.transport.base import Invocation

HOST_ISO = "C:\\ISO\\labctl\\ws2022-lab.iso"
CORE = "C:\\LabBases\\WS2022-Core.vhdx"
STANDARD = "C:\\LabBases\\WS2022-Std.vhdx"


def _image(image_id: str, base_disk: str, edition: str, sha256: str, iso_file: str = "media/ws2022-lab.iso") -> str:
    return (f"id: {image_id}\ndisplay_name: Windows Server 2022 ({edition})\nos_build: 20348\ngeneration: 2\n"
            f"base_disk: {base_disk}\ncontainer_tag: ltsc2022\nmin_memory: 2GiB\n"
            f"build:\n  iso_file: {iso_file}\n  sha256: {sha256}\n  edition: {edition}\n  disk_size: 60GiB\n")


def _catalog(lab: Lab, content: bytes, sha256: str | None = None, name: str = "ws2022-lab.iso") -> str:
    """images/ beside the lab with ws2022-core and ws2022-std built from the same local ISO; its SHA-256."""
    images = lab.dir / "images"
    (images / "media").mkdir(parents=True)
    (images / "media" / name).write_bytes(content)
    sha = sha256 or hashlib.sha256(content).hexdigest()
    (images / "ws2022-core.yaml").write_text(
        _image("ws2022-core", CORE, "Windows Server 2022 Datacenter Evaluation", sha, f"media/{name}"))
    (images / "ws2022-std.yaml").write_text(
        _image("ws2022-std", STANDARD, "Windows Server 2022 Standard Evaluation", sha, f"media/{name}"))
    return sha






def _count(sim: ServedSim, name: str) -> int:
    counters = sim.sim.counters
    assert counters is not None
    return counters.get(name)


def _writes(sim: ServedSim) -> tuple[int, int]:
    """(Set-Content, Add-Content) calls so far: an upload is one Set-Content and an Add-Content per further
    chunk; each build also writes its lock and sidecar with Set-Content."""
    return _count(sim, "cmdlet:Set-Content"), _count(sim, "cmdlet:Add-Content")


def _delta(sim: ServedSim, before: tuple[int, int]) -> tuple[int, int]:
    now = _writes(sim)
    return now[0] - before[0], now[1] - before[1]


def _last_write(sim: ServedSim, path: str) -> str:
    return str(sim.invoke(Invocation("Get-Item", {"Path": path}))[0].get("LastWriteTime"))


def _host_hash(sim: ServedSim, path: str) -> str:
    out = sim.invoke(Invocation("Get-FileHash", {"Path": path, "Algorithm": "SHA256"}))
    return str(out[0].get("Hash")).lower()


def _sidecar(sim: ServedSim, base: str) -> dict[str, object]:
    text = sim.invoke(Invocation("Get-Content", {"Path": sidecar_path(base), "Raw": True}))[0]
    return dict(json.loads(str(text).lstrip("\ufeff")))


def test_the_iso_is_uploaded_once_and_built_from(quickstart: Lab, bare: ServedSim) -> None:
    # A placeholder padded with comment lines to three upload chunks (1 MiB each).
    content = placeholder_iso("ws2022-eval") + b"#" * (2 * 1024 * 1024 + 100) + b"\n"
    sha = _catalog(quickstart, content)
    before = _writes(bare)
    assert not bare.exists(HOST_ISO) and not bare.exists(CORE)

    first = run("image", "build", str(quickstart.file), "ws2022-core")
    assert first.exit_code == 0, first.output
    text = " ".join(first.output.split())
    assert f"{HOST_ISO} on E: (uploaded ws2022-lab.iso, {len(content)} bytes, SHA-256 checked on the host)" in text
    first_writes = _delta(bare, before)
    assert first_writes[1] == 2  # the second and third chunk
    assert bare.exists(HOST_ISO) and _host_hash(bare, HOST_ISO) == sha
    assert bare.exists(CORE) and not bare.exists(build_path(CORE)) and not bare.exists(lock_path(CORE))
    source = _sidecar(bare, CORE)["source"]
    assert isinstance(source, dict)
    assert source["iso"] == HOST_ISO and source["sha256"] == sha and source["index"] == 3
    assert source["edition"] == "Windows Server 2022 Datacenter Evaluation"
    assert _count(bare, "cmdlet:Expand-WindowsImage") == 1
    attached = bare.invoke(Invocation("Get-DiskImage", {"ImagePath": HOST_ISO}))
    assert attached and attached[0].get("Attached") is False
    written = _last_write(bare, HOST_ISO)

    # Another image from the same file: the host copy's hash matches, nothing of it is written again.
    before = _writes(bare)
    other = run("image", "build", str(quickstart.file), "ws2022-std")
    assert other.exit_code == 0, other.output
    assert f"{HOST_ISO} on E: (on the host already: SHA-256 matches, not uploaded)" in " ".join(other.output.split())
    assert "uploaded ws2022-lab.iso" not in other.output
    second_writes = _delta(bare, before)
    assert second_writes == (first_writes[0] - 1, 0)  # the same lock and sidecar writes, no chunk
    std = _sidecar(bare, STANDARD)["source"]
    assert isinstance(std, dict) and std["iso"] == HOST_ISO and std["index"] == 1
    assert _count(bare, "cmdlet:Expand-WindowsImage") == 2

    # image rm, then a rebuild: still no upload.
    removed = run("image", "rm", str(quickstart.file), "ws2022-core", "--yes")
    assert removed.exit_code == 0, removed.output
    assert not bare.exists(CORE) and bare.exists(HOST_ISO)
    before = _writes(bare)
    again = run("image", "build", str(quickstart.file), "ws2022-core")
    assert again.exit_code == 0, again.output
    assert "not uploaded" in again.output and _delta(bare, before) == second_writes
    assert bare.exists(CORE) and _count(bare, "cmdlet:Expand-WindowsImage") == 3
    assert _last_write(bare, HOST_ISO) == written and _host_hash(bare, HOST_ISO) == sha


def test_an_esd_placeholder_builds_like_its_medium(quickstart: Lab, bare: ServedSim) -> None:
    _catalog(quickstart, placeholder_iso("ws2022-eval-esd"))
    result = run("image", "build", str(quickstart.file), "ws2022-core", "--json")
    assert result.exit_code == 0, result.output
    built = json.loads(result.output)["images"]
    assert [(i["image"], i["action"], i["index"]) for i in built] == [("ws2022-core", "built", 3)]
    source = _sidecar(bare, CORE)["source"]
    assert isinstance(source, dict) and str(source["edition"]).startswith("Windows Server 2022 Datacenter")


def test_a_wrong_sha256_is_refused_before_anything_is_built(quickstart: Lab, bare: ServedSim) -> None:
    content = placeholder_iso("ws2022-eval")
    actual = hashlib.sha256(content).hexdigest()
    wrong = "f" * 64
    _catalog(quickstart, content, sha256=wrong)
    before = _writes(bare)
    result = run("image", "build", str(quickstart.file), "ws2022-core")
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "image ws2022-core: mount iso:" in text
    assert f"has SHA-256 {actual}, the recipe says {wrong}" in text
    assert _delta(bare, before)[1] == 0 and not bare.exists("C:\\ISO\\labctl")  # nothing uploaded
    assert _count(bare, "cmdlet:Mount-DiskImage") == 0
    assert _count(bare, "cmdlet:New-VHD") == 0
    for path in (HOST_ISO, CORE, build_path(CORE), lock_path(CORE), sidecar_path(CORE)):
        assert not bare.exists(path), path


def test_a_file_that_is_no_iso_gets_the_hosts_error(quickstart: Lab, bare: ServedSim) -> None:
    _catalog(quickstart, b"not a disc image\r\n", name="notes.iso")
    result = run("image", "build", str(quickstart.file), "ws2022-core")
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "image ws2022-core: mount iso: Mount-DiskImage failed: The file or directory is corrupted and " \
           "unreadable." in text
    host_iso = "C:\\ISO\\labctl\\notes.iso"
    assert bare.exists(host_iso)  # uploaded (its hash matched); it is the file that is wrong
    assert _count(bare, "cmdlet:New-VHD") == 0
    assert not bare.exists(CORE) and not bare.exists(lock_path(CORE))
    attached = bare.invoke(Invocation("Get-DiskImage", {"ImagePath": host_iso}))
    assert attached and attached[0].get("Attached") is False


def test_a_placeholder_names_a_modeled_medium() -> None:
    medium = placeholder_medium(placeholder_iso("ws2025-eval"))
    assert medium is not None and medium.media_id == "ws2025-eval"
    assert placeholder_medium(b"HVSIM-PLACEHOLDER-ISO 1\nmedia=ws2016-eval\n") is None
    assert placeholder_medium(b"media=ws2022-eval\n") is None
    with pytest.raises(ValueError, match="unknown installation medium 'ws2016-eval'"):
        placeholder_iso("ws2016-eval")
