"""The cmdlet catalog data: loads, complete, consistent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hvsim.powershell.binding import parse_type
from hvsim.powershell.catalog import load_catalog
from hvsim.powershell.catalog.spec import DATA_DIR
from hvsim.powershell.catalog.spec import load_catalog as load_uncached

CATALOG = load_catalog()
FILES = sorted(DATA_DIR.glob("*.json"))

REQUIRED = [
    "Get-VMHost", "Get-VM", "New-VM", "Set-VM", "Remove-VM", "Start-VM", "Stop-VM", "Restart-VM",
    "Save-VM", "Suspend-VM", "Resume-VM", "Get-VMProcessor", "Set-VMProcessor", "Get-VMMemory",
    "Set-VMMemory", "Get-VMFirmware", "Set-VMFirmware", "Get-VMNetworkAdapter", "Set-VMNetworkAdapter",
    "Connect-VMNetworkAdapter", "Add-VMNetworkAdapter", "Get-VMIntegrationService",
    "Enable-VMIntegrationService", "Disable-VMIntegrationService", "Copy-VMFile", "Checkpoint-VM",
    "Get-VMSnapshot", "Restore-VMSnapshot", "Remove-VMSnapshot", "Get-VMHardDiskDrive",
    "Add-VMHardDiskDrive", "New-VHD", "Get-VHD", "Mount-VHD", "Dismount-VHD", "Resize-VHD",
    "Get-VMSwitch", "New-VMSwitch", "Remove-VMSwitch", "Get-NetNat", "New-NetNat", "Remove-NetNat",
    "Add-NetNatStaticMapping", "Get-NetNatStaticMapping", "Remove-NetNatStaticMapping",
    "New-NetIPAddress", "Get-NetIPAddress", "Remove-NetIPAddress", "Get-NetAdapter", "Get-Disk",
    "Get-Partition", "Get-Volume", "Get-CimInstance", "Get-WindowsFeature", "Install-WindowsFeature",
    "New-NetFirewallRule", "Get-NetFirewallRule", "Invoke-Command", "New-PSSession", "Remove-PSSession",
    "Get-PSSession", "Test-Path", "New-Item", "Set-Content", "Get-Content", "Add-Content", "Copy-Item",
    "Remove-Item", "Get-Item", "Get-ChildItem", "Select-Object", "Restart-Computer", "Get-Service",
    "Start-Service", "Stop-Service", "Expand-Archive", "Get-Command", "Restore-VMCheckpoint",
    "Get-VMCheckpoint", "Remove-VMCheckpoint",
]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_data_file_loads_and_names_its_source(path: Path) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert "$source" in raw and "MicrosoftDocs/" in raw["$source"]
    assert any(not k.startswith("$") for k in raw)


def test_loader_reads_every_file() -> None:
    assert len(load_uncached.__wrapped__(DATA_DIR)) == len(CATALOG)


@pytest.mark.parametrize("name", REQUIRED)
def test_required_cmdlet_present(name: str) -> None:
    assert name in CATALOG


def test_checkpoint_aliases_point_at_snapshot_cmdlets() -> None:
    for alias, real in (("Restore-VMCheckpoint", "Restore-VMSnapshot"), ("Get-VMCheckpoint", "Get-VMSnapshot"),
                        ("Remove-VMCheckpoint", "Remove-VMSnapshot")):
        spec = CATALOG.get(alias)
        assert spec is not None and spec.name == real
    checkpoint = CATALOG.get("Checkpoint-VM")
    assert checkpoint is not None and checkpoint.name == "Checkpoint-VM"


SPECS = sorted(CATALOG.specs.values(), key=lambda s: s.name)


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_spec_is_consistent(spec) -> None:  # type: ignore[no-untyped-def]
    assert spec.type, "implementing .NET type"
    assert spec.module
    assert spec.set_names
    if spec.default_set is not None:
        assert spec.default_set in spec.set_names
    for set_name in spec.set_names:
        positions: dict[int, str] = {}
        for p in spec.parameters.values():
            ps = p.in_set(set_name)
            if ps is None or ps.position is None:
                continue
            assert ps.position not in positions, f"{set_name}: {p.name} and {positions[ps.position]}"
            positions[ps.position] = p.name
    seen: dict[str, str] = {}
    for p in spec.parameters.values():
        for key in (p.name, *p.aliases):
            assert key.lower() not in seen, f"{key} of {p.name} already names {seen.get(key.lower())}"
            seen[key.lower()] = p.name
        parse_type(p.type)  # every type string parses


def test_type_suffixes_follow_the_real_fqids() -> None:
    get_vm = CATALOG.get("Get-VM")
    new_nat = CATALOG.get("New-NetNat")
    invoke = CATALOG.get("Invoke-Command")
    install = CATALOG.get("Install-WindowsFeature")
    assert get_vm and get_vm.type == "Microsoft.HyperV.PowerShell.Commands.GetVM"
    assert new_nat and new_nat.type == "New-NetNat"  # CDXML: "Windows System Error 87,New-NetNat"
    assert invoke and invoke.type == "Microsoft.PowerShell.Commands.InvokeCommandCommand"
    assert install and install.type == "Microsoft.Windows.ServerManager.Commands.AddWindowsFeatureCommand"


def test_should_process_adds_whatif_confirm() -> None:
    stop = CATALOG.get("Stop-VM")
    get = CATALOG.get("Get-VM")
    assert stop and "WhatIf" in stop.parameters and "Confirm" in stop.parameters
    assert get and "WhatIf" not in get.parameters
    assert "ErrorAction" in get.parameters and get.parameters["ErrorAction"].common
