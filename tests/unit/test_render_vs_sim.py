"""labctl's answer-file checker and the simulator's Setup model agree on what labctl renders.

labctl/render must not import the simulator (architecture rule); tests may compare the two.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from hvsim.guest.models import unattend as sim_unattend
from labctl.lab import resolve_lab
from labctl.render import check_unattend, render_unattend
from labctl.resources import resource_dir

REPO = Path(__file__).resolve().parents[2]
GOLDEN_FILE = Path(__file__).resolve().parent / "golden" / "quickstart-qs-dc01.xml"
PASSWORD = "Lab-Test-Pa55word!"



def _broken_cases() -> dict[str, tuple[object, str]]:
    spec = importlib.util.spec_from_file_location("_render_cases", Path(__file__).parent / "test_render_unattend.py")
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.BROKEN)


@pytest.mark.parametrize("lab_file", sorted((resource_dir("labs")).glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_vm_is_accepted_by_both(lab_file: Path) -> None:
    lab = resolve_lab(lab_file)
    for vm in lab.vms:
        text = render_unattend(lab, vm, PASSWORD)
        assert check_unattend(text) == []
        report = sim_unattend.validate(text)
        assert report.valid, report.failure
        cfg = report.config
        assert cfg.computer_name == vm.name
        iface = cfg.interface(vm.mac)
        assert iface.addresses == [f"{vm.ip}/{vm.prefix_length}"]
        assert iface.gateway == vm.gateway and iface.dns_servers == vm.dns and iface.dhcp is False
        assert cfg.rdp_enabled is True and cfg.time_zone == vm.vars["timezone"]
        assert cfg.administrator_password is not None


# Mistakes both must refuse. labctl's checker is stricter on a few (wcm:action/keyValue, Order values,
# next hop off the subnet), which the simulator's Setup model tolerates as Windows may.
SHARED = ["bad address", "bad token", "digit name", "duplicate pass", "long name", "missing arch",
          "misspelt component", "name in oobe", "not encoded", "not xml", "password in specialize",
          "plain password", "tcpip order", "unknown pass", "wrong namespace"]


@pytest.mark.parametrize("case", SHARED)
def test_both_refuse(case: str) -> None:
    mutate, _ = _broken_cases()[case]
    text = mutate(GOLDEN_FILE.read_text(encoding="utf-8"))  # type: ignore[operator]
    assert check_unattend(text) != []
    assert not sim_unattend.validate(text).valid


def test_answer_file_asks_reads_rdp_and_firewall_groups_as_written() -> None:
    from labctl.render.check import answer_file_asks

    asks = answer_file_asks(GOLDEN_FILE.read_text(encoding="utf-8"))
    assert asks == {"rdp": True, "firewall_groups": ["@FirewallAPI.dll,-28752", "@FirewallAPI.dll,-30267"]}
