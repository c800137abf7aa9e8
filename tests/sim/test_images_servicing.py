r"""From ISO to a bootable Generation 2 base through the runtime, as labctl's image build sends it: New-VHD,
Mount-VHD, Initialize-Disk, New-Partition (EFI, MSR, Windows), Format-Volume, Add-PartitionAccessPath,
Expand-WindowsImage, the bcdboot host step, offline features and packages, Dismount-VHD, Move-Item, IsReadOnly;
then a VM on a child of the result boots like today's bases. And each refusal on the way.
"""

from __future__ import annotations

from typing import Any

import pytest
from guest_world import cred
from test_images_iso import DATACENTER_2022, ISO_2022, ISO_ESD, ImageHost
from unattend_samples import VALID

from hvsim.guest.models import guest as G
from hvsim.guest.models.guest import ANSWER_FILE
from hvsim.powershell.values import ScriptBlock

GB = 1024**3
MB = 1024**2
ESP = "{c12a7328-f81f-11d2-ba4b-00a0c93ec93b}"
MSR = "{e3c9e316-0b5c-4db8-817d-f92df00215ae}"
BASIC = "{ebd0a0a2-b9e5-4433-87c0-68b6b72699c7}"
TMP = "C:\\LabBases\\ws2022-core.building.vhdx"
FINAL = "C:\\LabBases\\ws2022-core.vhdx"
# templates/host/bcdboot.ps1 as the contract fixes its header (labctl ships the script).
BCDBOOT = "# labctl-host-step: bcdboot 1\nparam($WindowsPath, $SystemPartition)\n"


def bcdboot(h: ImageHost, windows: str, system: str) -> Any:
    (out,) = h.ok(("Invoke-Command", {"ScriptBlock": ScriptBlock(BCDBOOT), "ArgumentList": [windows, system]}))
    return out


def partition_letter(h: ImageHost, disk: int, number: int) -> str:
    (p,) = h.ok(("Get-Partition", {"DiskNumber": disk, "PartitionNumber": number}))
    return str(p.get("DriveLetter"))


def new_disk(h: ImageHost, size: int = 60 * GB, path: str = TMP) -> int:
    h.ok(("New-VHD", {"Path": path, "SizeBytes": size, "Dynamic": True}))
    (disk,) = h.ok(("Mount-VHD", {"Path": path, "Passthru": True}), ("Get-Disk", {}))
    return int(disk.get("Number"))


def layout(h: ImageHost, disk: int) -> tuple[int, int]:
    """Initialize + partition + format as public image builders do it (Convert-WindowsImage): the ESP made as basic
    data, formatted FAT32, then typed ESP. Returns (ESP number, Windows number)."""
    h.ok(("Initialize-Disk", {"Number": disk, "PartitionStyle": "GPT"}))
    (esp,) = h.ok(("New-Partition", {"DiskNumber": disk, "Size": 100 * MB, "GptType": BASIC}))
    h.ok(("Format-Volume", {"Partition": esp, "FileSystem": "FAT32", "Force": True, "Confirm": False}))
    h.ok(("Set-Partition", {"InputObject": esp, "GptType": ESP}))
    h.ok(("New-Partition", {"DiskNumber": disk, "Size": 16 * MB, "GptType": MSR}))
    (win,) = h.ok(("New-Partition", {"DiskNumber": disk, "UseMaximumSize": True, "GptType": BASIC}))
    (vol,) = h.ok(("Format-Volume", {"Partition": win, "FileSystem": "NTFS", "NewFileSystemLabel": "Windows",
                                     "Confirm": False}))
    assert (vol.get("FileSystem"), vol.get("FileSystemLabel")) == ("NTFS", "Windows")
    for p in (esp, win):
        h.ok(("Add-PartitionAccessPath", {"DiskNumber": disk, "PartitionNumber": int(p.get("PartitionNumber")),
                                          "AssignDriveLetter": True}))
    return int(esp.get("PartitionNumber")), int(win.get("PartitionNumber"))


def build_base(h: ImageHost, iso: str = ISO_2022, features: tuple[str, ...] = (), boot: bool = True,
               image_file: str = "install.wim") -> str:
    """The whole build of the contract; returns the finished, read-only base disk's path."""
    iso_letter = h.mount_iso(iso)
    wim = f"{iso_letter}:\\sources\\{image_file}"
    (img,) = h.ok(("Get-WindowsImage", {"ImagePath": wim, "Name": DATACENTER_2022}))
    disk = new_disk(h)
    esp, win = layout(h, disk)
    s, w = partition_letter(h, disk, esp), partition_letter(h, disk, win)
    h.ok(("Expand-WindowsImage", {"ImagePath": wim, "Index": int(img.get("ImageIndex")), "ApplyPath": f"{w}:\\"}))
    if boot:
        out = bcdboot(h, f"{w}:\\Windows", f"{s}:")
        assert (out.get("ExitCode"), out.get("Output")) == (0, ["Boot files successfully created."])
    for f in features:
        h.ok(("Enable-WindowsOptionalFeature", {"Path": f"{w}:\\", "FeatureName": f}))
    h.ok(("Dismount-VHD", {"Path": TMP}))
    h.ok(("Dismount-DiskImage", {"ImagePath": iso}))
    h.ok(("Move-Item", {"Path": TMP, "Destination": FINAL}))
    h.ok(("Set-ItemProperty", {"Path": FINAL, "Name": "IsReadOnly", "Value": True}))
    return FINAL


def boot_child(h: ImageHost, base: str, name: str = "dc01") -> Any:
    """A differencing child with the answer file, a VM on it, started (what labctl's build stage does)."""
    child = f"C:\\Labs\\{name}.vhdx"
    h.ok(("New-Item", {"Path": "C:\\Labs", "ItemType": "Directory", "Force": True}))
    h.ok(("New-VHD", {"Path": child, "ParentPath": base, "Differencing": True}))
    h.world.storage.write_file(child, ANSWER_FILE, VALID.encode("utf-8"))
    h.ok(("New-VM", {"Name": name, "Generation": 2, "MemoryStartupBytes": 2 * GB, "VHDPath": child}))
    h.ok(("Start-VM", {"Name": name}))
    return h.get_vm(name)


# --------------------------------------------------------------------------------------------- the build


def test_from_iso_to_a_base_that_boots_like_todays() -> None:
    h = ImageHost()
    base = build_base(h, features=("Containers",))
    (item,) = h.ok(("Get-Item", {"Path": base}))
    assert item.get("IsReadOnly") is True and str(item.get("Attributes")) == "ReadOnly, Archive"
    assert h.ok(("Test-Path", {"Path": TMP})) == [False]
    (vhd,) = h.ok(("Get-VHD", {"Path": base}))
    assert str(vhd.get("VhdType")) == "Dynamic" and int(vhd.get("Size")) == 60 * GB
    assert int(vhd.get("FileSize")) > 8_351_903_100  # the applied image grew the dynamic file
    vm = boot_child(h, base)
    g = vm.guest
    assert g.setup == G.DONE and g.heartbeat(h.world, vm) == "OkApplicationsHealthy"
    (probe,) = h.step("dc01", "probe").outputs
    assert (probe.get("ComputerName"), probe.get("BuildNumber")) == ("LAB-DC01", 20348)
    assert probe.get("Caption") == "Microsoft Windows Server 2022 Datacenter Evaluation"
    # The Containers feature enabled offline is installed in the guest: the bootstrap has nothing to do.
    (feat,) = h.step("dc01", "container-features", ["Containers"]).outputs
    assert (feat.get("Changed"), feat.get("RebootNeeded")) == (False, False)
    assert feat.get("Facts")["Installed"] == ["Containers"]
    assert h.world.counters.guest("dc01", "feature_installs") == 0
    # First boot ran specialize + OOBE from the answer file, and the offline features' online phase with it.
    plain = ImageHost()
    boot_child(plain, build_base(plain))
    plain.step("dc01", "probe")
    plain.step("dc01", "container-features", [])
    modeled = h.world.clock.report()["modeled_seconds"]["dc01"]
    assert modeled - plain.world.clock.report()["modeled_seconds"]["dc01"] == pytest.approx(
        h.world.clock.durations["first_boot_offline_features"])


def test_the_partition_layout_is_the_gen2_one() -> None:
    h = ImageHost()
    disk = new_disk(h)
    (raw,) = h.ok(("Get-Disk", {"Number": disk}))
    assert (raw.get("PartitionStyle"), int(raw.get("LargestFreeExtent"))) == ("RAW", 60 * GB)
    layout(h, disk)
    parts = h.ok(("Get-Partition", {"DiskNumber": disk}))
    assert [(p.get("Type"), p.get("GptType")) for p in parts] == [("System", ESP), ("Reserved", MSR),
                                                                  ("Basic", BASIC)]
    assert [int(p.get("Offset")) for p in parts] == [MB, 101 * MB, 117 * MB]
    assert int(parts[2].get("Size")) == 60 * GB - 117 * MB - MB  # -UseMaximumSize: the rest but GPT's backup
    assert parts[0].get("AccessPaths")[0] == "E:\\" and parts[2].get("AccessPaths")[0] == "F:\\"
    (gpt,) = h.ok(("Get-Disk", {"Number": disk}))
    assert (gpt.get("PartitionStyle"), int(gpt.get("NumberOfPartitions"))) == ("GPT", 3)
    (vol,) = h.ok(("Get-Partition", {"DiskNumber": disk, "PartitionNumber": 3}), ("Get-Volume", {}))
    assert vol.get("DriveLetter") == "F" and int(vol.get("Size")) == int(parts[2].get("Size"))


def test_apply_time_follows_the_image_size_and_esd_is_slower() -> None:
    d = ImageHost().world.clock.durations
    spent = {}
    for iso, media, image_file in ((ISO_2022, "ws2022-eval", "install.wim"),
                                   (ISO_ESD, "ws2022-eval-esd", "install.esd")):
        h = ImageHost(iso_media=media)
        iso_letter = h.mount_iso(iso)
        disk = new_disk(h)
        _esp, win = layout(h, disk)
        before = h.host_modeled()
        h.ok(("Expand-WindowsImage", {"ImagePath": f"{iso_letter}:\\sources\\{image_file}", "Index": 3,
                                      "ApplyPath": f"{partition_letter(h, disk, win)}:\\"}))
        spent[image_file] = h.host_modeled() - before
    assert spent["install.wim"] == pytest.approx(d["apply_image_wim_per_gb"] * 8_351_903_100 / GB)
    assert spent["install.esd"] == pytest.approx(d["apply_image_esd_per_gb"] * 8_351_903_100 / GB)
    assert spent["install.esd"] > spent["install.wim"]


def test_an_esd_image_applies_and_boots() -> None:
    h = ImageHost(iso_media="ws2022-eval-esd")
    vm = boot_child(h, build_base(h, iso=ISO_ESD, image_file="install.esd"))
    assert vm.guest.is_ready(h.world, vm) and vm.guest.os_build == 20348


# --------------------------------------------------------------------------------------------- refusals


def test_a_disk_without_boot_files_starts_but_never_boots() -> None:
    h = ImageHost()
    vm = boot_child(h, build_base(h, boot=False))
    assert str(vm.state) == "Running"
    g = vm.guest
    assert g.setup == G.NO_OS and g.heartbeat(h.world, vm) == "NoContact"
    assert g.boot_failure is not None
    lines = g.boot_failure.splitlines()
    assert lines[0] == "Virtual Machine Boot Summary"
    assert lines[1] == "1. SCSI Disk (0,0)  The boot loader did not load an operating system."
    assert lines[-1].startswith("No operating system was loaded.")
    res = h.step("dc01", "probe")
    assert res.errors and not res.outputs  # PowerShell Direct never opens


def test_a_blank_disk_has_no_uefi_file_system() -> None:
    h = ImageHost()
    h.ok(("New-VHD", {"Path": "C:\\LabBases\\blank.vhdx", "SizeBytes": 20 * GB, "Dynamic": True}))
    h.ok(("New-VM", {"Name": "blank", "Generation": 2, "MemoryStartupBytes": GB,
                     "VHDPath": "C:\\LabBases\\blank.vhdx"}))
    h.ok(("Start-VM", {"Name": "blank"}))
    vm = h.get_vm("blank")
    assert "1. SCSI Disk (0,0)  No UEFI-compatible file system was found." in (vm.guest.boot_failure or "")


def test_bcdboot_needs_a_windows_and_a_fat32_system_partition() -> None:
    h = ImageHost()
    disk = new_disk(h)
    esp, win = layout(h, disk)
    s, w = partition_letter(h, disk, esp), partition_letter(h, disk, win)
    out = bcdboot(h, f"{w}:\\Windows", f"{s}:")  # nothing applied yet
    assert (out.get("ExitCode"), out.get("Output")) == (1, ["Failure when attempting to copy boot files."])
    out = bcdboot(h, f"{w}:\\Windows", f"{w}:")  # the NTFS Windows volume is no UEFI system partition
    assert out.get("ExitCode") == 1


def test_a_full_disk_refuses_the_apply_and_a_too_big_partition() -> None:
    h = ImageHost()
    iso_letter = h.mount_iso(ISO_2022)
    disk = new_disk(h, size=6 * GB)
    _esp, win = layout(h, disk)
    err = h.error(("Expand-WindowsImage", {"ImagePath": f"{iso_letter}:\\sources\\install.wim", "Index": 3,
                                           "ApplyPath": f"{partition_letter(h, disk, win)}:\\"}))
    assert (err.message, err.fqid) == ("There is not enough space on the disk.",
                                       "Microsoft.Dism.Commands.ExpandWindowsImageCommand")
    err = h.error(("New-Partition", {"DiskNumber": disk, "Size": GB}))
    assert (err.message, err.fqid, err.category) == ("Not enough available capacity", "StorageWMI 40000,New-Partition",
                                                     "NotSpecified")
    assert (err.target, err.target_type) == ("StorageWMI", "ROOT/Microsoft/Windows/Storage/MSFT_Disk")


def test_a_full_host_volume_refuses_the_apply() -> None:
    h = ImageHost(c_volume_free=8 * 1000**3)  # less than the 8.35 GB the dynamic disk grows by
    iso_letter = h.mount_iso(ISO_2022)
    disk = new_disk(h)
    _esp, win = layout(h, disk)
    err = h.error(("Expand-WindowsImage", {"ImagePath": f"{iso_letter}:\\sources\\install.wim", "Index": 3,
                                           "ApplyPath": f"{partition_letter(h, disk, win)}:\\"}))
    assert err.message == "There is not enough space on the disk."


def test_initialize_and_format_refusals() -> None:
    h = ImageHost()
    disk = new_disk(h)
    err = h.error(("New-Partition", {"DiskNumber": disk, "Size": GB}))
    assert err.message == "The disk has not been initialized."
    h.ok(("Initialize-Disk", {"Number": disk}))
    err = h.error(("Initialize-Disk", {"Number": disk, "PartitionStyle": "GPT"}))
    assert (err.message, err.fqid) == ("The disk has already been initialized.", "StorageWMI 41001,Initialize-Disk")
    err = h.error(("Initialize-Disk", {"Number": 7}))
    assert err.fqid == "CmdletizationQuery_NotFound_Number,Initialize-Disk"
    # An ESP created with its GPT type is not formatted by Format-Volume (builders format it as basic data first).
    (esp,) = h.ok(("New-Partition", {"DiskNumber": disk, "Size": 100 * MB, "GptType": ESP}))
    err = h.error(("Format-Volume", {"Partition": esp, "FileSystem": "FAT32"}))
    assert err.fqid == "StorageWMI 5,Format-Volume"


def test_offline_servicing_refusals_and_a_package() -> None:
    h = ImageHost()
    iso_letter = h.mount_iso(ISO_2022)
    disk = new_disk(h)
    _esp, win = layout(h, disk)
    w = partition_letter(h, disk, win)
    err = h.error(("Enable-WindowsOptionalFeature", {"Path": f"{w}:\\", "FeatureName": "Containers"}))
    assert err.message == "The system cannot find the path specified."  # nothing applied: no image there
    h.ok(("Expand-WindowsImage", {"ImagePath": f"{iso_letter}:\\sources\\install.wim", "Index": 3,
                                  "ApplyPath": f"{w}:\\"}))
    # Server Manager's name is not DISM's: the Hyper-V role is Microsoft-Hyper-V offline.
    err = h.error(("Enable-WindowsOptionalFeature", {"Path": f"{w}:\\", "FeatureName": "Hyper-V"}))
    assert (err.message, err.fqid) == ("Feature name Hyper-V is unknown.",
                                       "Microsoft.Dism.Commands.EnableWindowsOptionalFeatureCommand")
    err = h.error(("Enable-WindowsOptionalFeature", {"Path": f"{w}:\\",
                                                     "FeatureName": "Microsoft-Hyper-V-Management-PowerShell"}))
    assert err.message == "One or several parent features are disabled so current feature can not be enabled."
    (obj,) = h.ok(("Enable-WindowsOptionalFeature", {"Path": f"{w}:\\", "All": True,
                                                     "FeatureName": "Microsoft-Hyper-V-Management-PowerShell"}))
    assert (obj.get("Online"), obj.get("RestartNeeded")) == (False, False)
    h.ok(("New-Item", {"Path": "C:\\Updates", "ItemType": "Directory"}))
    h.world.storage.files["c:\\updates\\windows10.0-kb5041160-x64.msu"] = _file(
        "C:\\Updates\\windows10.0-kb5041160-x64.msu", b"MSCF\x00build=17763")
    err = h.error(("Add-WindowsPackage", {"Path": f"{w}:\\",
                                          "PackagePath": "C:\\Updates\\windows10.0-kb5041160-x64.msu"}))
    assert (err.message, err.fqid) == ("The specified package is not applicable to this image.",
                                       "Microsoft.Dism.Commands.AddWindowsPackageCommand")
    h.world.storage.files["c:\\updates\\windows10.0-kb5041160-x64-2022.msu"] = _file(
        "C:\\Updates\\windows10.0-kb5041160-x64-2022.msu", b"MSCF\x00build=20348 revision=2655")
    h.ok(("Add-WindowsPackage", {"Path": f"{w}:\\",
                                 "PackagePath": "C:\\Updates\\windows10.0-kb5041160-x64-2022.msu"}))
    vhd = h.world.storage.get_vhd(TMP)
    assert vhd is not None and vhd.os is not None
    assert vhd.os["revision"] == 2655 and vhd.os["features"]["Microsoft-Hyper-V"] == "Enabled"


def test_a_read_only_base_is_not_mounted_read_write_and_a_mounted_disk_not_moved() -> None:
    h = ImageHost()
    new_disk(h)
    err = h.error(("Move-Item", {"Path": TMP, "Destination": FINAL}))
    assert "being used by another process" in err.message
    assert err.fqid == "MoveFileInfoItemIOError,Microsoft.PowerShell.Commands.MoveItemCommand"
    h.ok(("Dismount-VHD", {"Path": TMP}))
    h.ok(("Move-Item", {"Path": TMP, "Destination": FINAL}))
    h.ok(("Set-ItemProperty", {"Path": FINAL, "Name": "IsReadOnly", "Value": True}))
    err = h.error(("Mount-VHD", {"Path": FINAL}))
    assert "Access is denied. (0x80070005)" in err.message
    h.ok(("Mount-VHD", {"Path": FINAL, "ReadOnly": True}))


def _file(path: str, data: bytes) -> Any:
    from hvsim.storage.models import FileEntry

    return FileEntry(path, data, 0.0, 0.0)


def test_credential_helper_is_the_guest_one() -> None:
    assert cred().username == "Administrator"
