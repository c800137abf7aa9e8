r"""Installation media on a host without base disks, through the runtime: the evaluation ISOs in C:\ISO,
Mount-DiskImage / Get-DiskImage / Dismount-DiskImage, Get-WindowsImage, and each medium's refusals.

``ImageHost`` (used by test_images_servicing.py and test_sysprep_golden.py too) runs pipelines of cmdlets through
the real Runtime (binding, catalog, handlers), as labctl's parameterized invocations arrive.
"""

from __future__ import annotations

from typing import Any

import pytest
from container_lab import Lab, Result
from guest_world import new_world

from hvsim.core.clock import Clock
from hvsim.core.counters import Counters
from hvsim.core.faults import FaultPlan
from hvsim.powershell.errors import PSError
from hvsim.powershell.runtime import RawCommand
from hvsim.server import load_handlers
from hvsim.world import World

load_handlers()

ISO_2019 = "C:\\ISO\\17763.3650.221105-1748.rs5_release_svc_refresh_SERVER_EVAL_x64FRE_en-us.iso"
ISO_2022 = "C:\\ISO\\SERVER_EVAL_x64FRE_en-us.iso"
ISO_2025 = "C:\\ISO\\26100.1742.240906-0331.ge_release_svc_refresh_SERVER_EVAL_x64FRE_en-us.iso"
ISO_ESD = "C:\\ISO\\SERVER_EVAL_x64FRE_en-us-esd.iso"
ISO_UBUNTU = "C:\\ISO\\ubuntu-24.04.1-live-server-amd64.iso"
ISO_PARTIAL = "C:\\ISO\\SERVER_EVAL_x64FRE_en-us (1).iso"
DATACENTER_2022 = "Windows Server 2022 Datacenter Evaluation"
Cmd = tuple[str, dict[str, Any]]


class ImageHost(Lab):
    """A simulated host (no base disks unless asked) driven through the Runtime."""

    def __init__(self, **host: Any) -> None:
        settings = {"base_disks": False, **host}
        super().__init__(World(None, Clock("instant"), FaultPlan(), Counters(), settings))

    def pipe(self, *cmds: Cmd) -> Result:
        """One pipeline: ("Cmdlet", {param: value}) ...; a switch is given as True."""
        sink = Result()
        raw = [RawCommand(name, [(k, v) for k, v in params.items()]) for name, params in cmds]
        try:
            self.runtime.run([raw], [], sink, self.session)
        except PSError as err:
            sink.errors.append(err)
        return sink

    def ok(self, *cmds: Cmd) -> list[Any]:
        res = self.pipe(*cmds)
        assert res.errors == [], [f"{e.fqid}: {e.message}" for e in res.errors]
        return res.outputs

    def error(self, *cmds: Cmd) -> PSError:
        res = self.pipe(*cmds)
        assert res.errors, res.outputs
        return res.errors[0]

    def mount_iso(self, iso: str) -> str:
        """Mount-DiskImage -ImagePath <iso> -PassThru | Get-Volume -> the ISO's drive letter (the contract's)."""
        (vol,) = self.ok(("Mount-DiskImage", {"ImagePath": iso, "PassThru": True}), ("Get-Volume", {}))
        return str(vol.get("DriveLetter"))

    def host_modeled(self) -> float:
        return float(self.world.clock.report()["modeled_seconds"].get("host", 0.0))


def names(items: list[Any]) -> list[str]:
    return [str(i.get("Name")) for i in items]


# --------------------------------------------------------------------------------------------- the media


def test_host_without_bases_has_the_three_evaluation_isos() -> None:
    h = ImageHost()
    assert h.ok(("Get-ChildItem", {"Path": "C:\\LabBases"})) == []
    isos = h.ok(("Get-ChildItem", {"Path": "C:\\ISO"}))
    assert sorted(names(isos)) == sorted(p.split("\\")[-1] for p in (ISO_2019, ISO_2022, ISO_2025))
    sizes = {str(i.get("Name")): int(i.get("Length")) for i in isos}
    assert sizes[ISO_2019.split("\\")[-1]] == 5_652_088_832
    (digest,) = h.ok(("Get-FileHash", {"Path": ISO_2022}))
    assert digest.get("Hash") == "3E4FA6D8507B554856FC9CA6079CC402DF11A8B79344871669F0251535255325"
    # The media take their size on C: (the host's free space is what was configured, after them).
    (c,) = h.ok(("Get-Volume", {"DriveLetter": "C"}))
    assert int(c.get("SizeRemaining")) == 200 * 1000**3


def test_a_host_with_base_disks_is_unchanged() -> None:
    h = ImageHost(base_disks=True)  # today's default
    assert sorted(names(h.ok(("Get-ChildItem", {"Path": "C:\\LabBases"})))) == [
        "WS2019-Core.vhdx", "WS2022-Core.vhdx", "WS2025-Core.vhdx"]
    assert h.error(("Get-ChildItem", {"Path": "C:\\ISO"})).fqid.startswith("PathNotFound")
    assert new_world().host.base_disks is True


def test_unknown_medium_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown installation medium 'ws2016'"):
        ImageHost(iso_media="ws2016")


# --------------------------------------------------------------------------------------------- mounting


def test_mount_get_and_dismount_an_iso() -> None:
    h = ImageHost()
    letter = h.mount_iso(ISO_2022)
    assert letter == "E"  # C: the system volume, D: the host's DVD drive
    (img,) = h.ok(("Get-DiskImage", {"ImagePath": ISO_2022}))
    assert img.get("Attached") is True and img.get("DevicePath") == "\\\\.\\CDROM0"
    assert str(img.get("StorageType")) == "ISO" and int(img.get("Size")) == 5_044_094_976
    (vol,) = h.ok(("Get-Volume", {"DriveLetter": "E"}))
    assert (vol.get("DriveType"), vol.get("FileSystem"), int(vol.get("SizeRemaining"))) == ("CD-ROM", "UDF", 0)
    assert h.ok(("Test-Path", {"Path": "E:\\sources\\install.wim"})) == [True]
    assert h.ok(("Test-Path", {"Path": "E:\\sources\\install.esd"})) == [False]
    err = h.error(("Set-Content", {"Path": "E:\\x.txt", "Value": "x"}))
    assert err.message == "The media is write protected."
    # Mounting it again answers with the mount it has (PowerShell/PowerShell#15249), no second letter.
    assert h.mount_iso(ISO_2022) == "E"
    # An attached ISO cannot be deleted.
    assert "being used by another process" in h.error(("Remove-Item", {"Path": ISO_2022})).message
    h.ok(("Dismount-DiskImage", {"ImagePath": ISO_2022}))
    (img,) = h.ok(("Get-DiskImage", {"ImagePath": ISO_2022}))
    assert img.get("Attached") is False and img.get("DevicePath") is None
    err = h.error(("Get-Volume", {"DriveLetter": "E"}))
    assert err.fqid == "CmdletizationQuery_NotFound_DriveLetter,Get-Volume"
    h.ok(("Dismount-DiskImage", {"ImagePath": ISO_2022}))  # dismounting again (a cleanup after a failure) is quiet


def test_mount_refusals_carry_the_storage_module_records() -> None:
    h = ImageHost()
    err = h.error(("Mount-DiskImage", {"ImagePath": "C:\\ISO\\missing.iso"}))
    assert (err.message, err.fqid, err.category) == ("The system cannot find the file specified.",
                                                     "HRESULT 0x80070002,Mount-DiskImage", "ObjectNotFound")
    assert (err.target, err.target_type) == ("MSFT_DiskImage", "ROOT/Microsoft/Windows/Storage/MSFT_DiskImage")
    h.ok(("Set-Content", {"Path": "C:\\ISO\\notes.txt", "Value": "not an image"}))
    err = h.error(("Mount-DiskImage", {"ImagePath": "C:\\ISO\\notes.txt"}))
    assert err.message == "A virtual disk support provider for the specified file was not found."
    assert err.fqid == "HRESULT 0xc03a0014,Mount-DiskImage"
    # A file named .iso that is no disc image (a failed download saved as text).
    h.ok(("Set-Content", {"Path": "C:\\ISO\\broken.iso", "Value": "<html>404</html>"}))
    err = h.error(("Mount-DiskImage", {"ImagePath": "C:\\ISO\\broken.iso"}))
    assert (err.message, err.fqid) == ("The file or directory is corrupted and unreadable.",
                                       "HRESULT 0x80070570,Mount-DiskImage")
    assert h.world.storage.disk_images == {}


# --------------------------------------------------------------------------------------------- Get-WindowsImage


@pytest.mark.parametrize(("iso", "year", "build"), [(ISO_2019, 2019, 17763), (ISO_2022, 2022, 20348),
                                                      (ISO_2025, 2025, 26100)])
def test_install_wim_lists_the_four_evaluation_images(iso: str, year: int, build: int) -> None:
    h = ImageHost()
    letter = h.mount_iso(iso)
    images = h.ok(("Get-WindowsImage", {"ImagePath": f"{letter}:\\sources\\install.wim"}))
    assert [(int(i.get("ImageIndex")), i.get("ImageName")) for i in images] == [
        (1, f"Windows Server {year} Standard Evaluation"),
        (2, f"Windows Server {year} Standard Evaluation (Desktop Experience)"),
        (3, f"Windows Server {year} Datacenter Evaluation"),
        (4, f"Windows Server {year} Datacenter Evaluation (Desktop Experience)")]
    assert images[0].type_names[0] == "Microsoft.Dism.Commands.BasicImageInfoObject"
    (dc,) = h.ok(("Get-WindowsImage", {"ImagePath": f"{letter}:\\sources\\install.wim", "Index": 3}))
    assert dc.get("Version") == f"10.0.{build}"
    assert (dc.get("EditionId"), dc.get("InstallationType")) == ("ServerDatacenterEvalCor", "Server Core")
    (by_name,) = h.ok(("Get-WindowsImage", {"ImagePath": f"{letter}:\\sources\\install.wim",
                                            "Name": f"windows server {year} datacenter evaluation"}))
    assert int(by_name.get("ImageIndex")) == 3


def test_2022_image_sizes_and_descriptions_are_the_published_ones() -> None:
    h = ImageHost()
    images = h.ok(("Get-WindowsImage", {"ImagePath": f"{h.mount_iso(ISO_2022)}:\\sources\\install.wim"}))
    assert [int(i.get("ImageSize")) for i in images] == [8_351_119_400, 14_387_114_687, 8_351_903_100,
                                                         14_385_600_817]
    assert str(images[2].get("ImageDescription")).startswith("(Recommended) This option omits most of the Windows")


def test_a_wrong_edition_name_or_index_is_dism_s_parameter_error() -> None:
    h = ImageHost()
    wim = f"{h.mount_iso(ISO_2022)}:\\sources\\install.wim"
    for params in ({"Name": "Windows Server 2022 Datacenter"}, {"Index": 5}):
        err = h.error(("Get-WindowsImage", {"ImagePath": wim, **params}))
        assert (err.message, err.fqid, err.category) == ("The parameter is incorrect.",
                                                         "Microsoft.Dism.Commands.GetWindowsImageCommand",
                                                         "NotSpecified")
        assert err.target is None and err.exception_type == "System.Runtime.InteropServices.COMException"


def test_a_foreign_iso_has_no_windows_image() -> None:
    h = ImageHost(iso_media="ws2022-eval,ubuntu-24.04")
    letter = h.mount_iso(ISO_UBUNTU)
    assert h.ok(("Test-Path", {"Path": f"{letter}:\\sources\\install.wim"})) == [False]
    assert h.ok(("Test-Path", {"Path": f"{letter}:\\casper\\vmlinuz"})) == [True]
    err = h.error(("Get-WindowsImage", {"ImagePath": f"{letter}:\\sources\\install.wim"}))
    assert (err.message, err.fqid) == ("The system cannot find the file specified.",
                                       "Microsoft.Dism.Commands.GetWindowsImageCommand")


def test_a_partial_download_mounts_but_its_image_cannot_be_read() -> None:
    h = ImageHost(iso_media="ws2022-eval-partial")
    letter = h.mount_iso(ISO_PARTIAL)
    err = h.error(("Get-WindowsImage", {"ImagePath": f"{letter}:\\sources\\install.wim"}))
    assert err.message == "Get-WindowsImage failed. Error code = 0x80070570"


def test_an_esd_medium_lists_its_images_from_install_esd() -> None:
    h = ImageHost(iso_media="ws2022-eval-esd")
    letter = h.mount_iso(ISO_ESD)
    assert h.ok(("Test-Path", {"Path": f"{letter}:\\sources\\install.wim"})) == [False]
    images = h.ok(("Get-WindowsImage", {"ImagePath": f"{letter}:\\sources\\install.esd"}))
    assert [i.get("ImageName") for i in images][2] == DATACENTER_2022
    assert h.host_modeled() == pytest.approx(h.world.clock.durations["mount_disk_image"]
                                             + h.world.clock.durations["get_windows_image"])
