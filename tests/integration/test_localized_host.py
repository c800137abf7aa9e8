"""A host and images whose display language is German (`--host-setting ui_culture=de-DE`).

Integration-service and firewall-group names are localized there; labctl selects both by id, so the
quickstart comes up as on an English host. The old answer file (firewall groups by English display name)
leaves Remote Desktop closed on a German guest, which status shows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from labharness import Lab, ServedSim, copy_templates, make_lab, run

from labctl.transport.base import Invocation

RDP = "@FirewallAPI.dll,-28752"
WINRM = "@FirewallAPI.dll,-30267"
GSI = "\\6C09BB55-D683-4DA0-8931-C9BF705F6480"


@pytest.fixture
def german(tmp_path: Path) -> Iterator[tuple[Lab, ServedSim]]:
    lab = make_lab(tmp_path)
    served = ServedSim(lab.sim_state, host_config={"ui_culture": "de-DE"})
    yield lab, served
    served.close()


def _firewall_checks(status_output: str) -> dict[str, dict[str, bool]]:
    data = json.loads(status_output)
    return {v["name"]: {k: ok for k, ok in v["checks"].items() if "firewall group" in k} for v in data["vms"]}


def test_the_quickstart_comes_up_on_a_german_host(german: tuple[Lab, ServedSim]) -> None:
    lab, served = german
    up = run("up", str(lab.file))
    assert up.exit_code == 0, up.output

    # The Guest Service Interface was enabled although its name is "Gastdienstschnittstelle" there
    # (Copy-VMFile of the Docker zip needs it: the docker stage would have failed otherwise).
    for vm in ("qs-dc01", "qs-node01"):
        services = served.invoke(Invocation("Get-VMIntegrationService", {"VMName": vm}))
        gsi = [s for s in services if str(s.get("Id")).endswith(GSI)]
        assert len(gsi) == 1
        assert gsi[0].get("Name") == "Gastdienstschnittstelle"
        assert gsi[0].get("Enabled") is True

    status = run("status", str(lab.file), "--json")
    assert status.exit_code == 0, status.output
    data = json.loads(status.output)
    for vm in data["vms"]:
        assert all(vm["checks"].values()), vm["checks"]
    checks = _firewall_checks(status.output)
    assert checks["qs-dc01"] == {f"answer file applied: firewall group Remotedesktop ({RDP})": True,
                                 f"answer file applied: firewall group Windows-Remoteverwaltung ({WINRM})": True}

    gone = run("destroy", str(lab.file), "--yes")
    assert gone.exit_code == 0, gone.output


def _old_answer_file(lab: Lab) -> None:
    """The answer file as labctl wrote it before: firewall groups by their English display names."""
    templates = copy_templates(lab)
    path = templates / "unattend" / "default.xml.j2"
    text = path.read_text()
    assert f"<Group>{RDP}</Group>" in text
    path.write_text(text.replace(f"<Group>{RDP}</Group>", "<Group>Remote Desktop</Group>")
                    .replace(f"<Group>{WINRM}</Group>", "<Group>Windows Remote Management</Group>"))


def _plain_vms(lab: Lab) -> None:
    """No container-host role: the answer file is what these tests look at."""
    text = lab.file.read_text()
    assert "  roles: [container-host]\n" in text
    lab.file.write_text(text.replace("  roles: [container-host]\n", "  roles: []\n"))


def test_firewall_groups_by_english_name_stay_closed_on_a_german_guest(german: tuple[Lab, ServedSim]) -> None:
    lab, _ = german
    _old_answer_file(lab)
    _plain_vms(lab)
    up = run("up", str(lab.file))
    assert up.exit_code == 0, up.output
    status = run("status", str(lab.file), "--json")
    checks = _firewall_checks(status.output)
    assert checks["qs-dc01"][f"answer file applied: firewall group Remotedesktop ({RDP})"] is False
    assert status.exit_code == 1  # a VM with a failed check is not healthy
    table = run("status", str(lab.file))
    assert "Remotedesktop" in table.output  # the table's checks column names the failed check


def test_firewall_groups_by_english_name_work_on_an_english_guest(tmp_path: Path) -> None:
    # Display names are matched in the guest's own language: the old file was right only in English.
    lab = make_lab(tmp_path)
    _old_answer_file(lab)
    _plain_vms(lab)
    served = ServedSim(lab.sim_state)
    try:
        assert run("up", str(lab.file)).exit_code == 0
        checks = _firewall_checks(run("status", str(lab.file), "--json").output)
        assert checks["qs-dc01"][f"answer file applied: firewall group Remote Desktop ({RDP})"] is True
    finally:
        served.close()


def test_status_checks_only_what_the_answer_file_asked_for(tmp_path: Path) -> None:
    # A user's own template that leaves Remote Desktop off and names no firewall group: nothing to fail.
    lab = make_lab(tmp_path)
    templates = copy_templates(lab)
    path = templates / "unattend" / "default.xml.j2"
    text = path.read_text()
    start, end = text.index("    <component name=\"Networking-MPSSVC-Svc\""), text.index("</FirewallGroups>")
    text = text[:start] + text[text.index("</component>", end) + len("</component>\n"):]
    path.write_text(text.replace("<fDenyTSConnections>false</fDenyTSConnections>",
                                 "<fDenyTSConnections>true</fDenyTSConnections>"))
    _plain_vms(lab)
    served = ServedSim(lab.sim_state)
    try:
        assert run("up", str(lab.file)).exit_code == 0
        status = run("status", str(lab.file), "--json")
        assert status.exit_code == 0, status.output
        for vm in json.loads(status.output)["vms"]:
            assert not [k for k in vm["checks"] if "firewall" in k or "Remote Desktop" in k], vm["checks"]
    finally:
        served.close()
