"""The same up / status / up again / destroy round trip as tests/integration, on a real host."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from clirun import labctl

pytestmark = pytest.mark.live


def _lab_text(name: str) -> str:
    host = os.environ["LABCTL_TEST_HOST"]
    lines = [
        f"name: {name}",
        "host:",
        f"  uri: {host}",
        f"  auth: {os.environ.get('LABCTL_TEST_AUTH', 'ntlm')}",
        f"  username: '{os.environ['LABCTL_TEST_USER']}'",
        "  password_env: LABCTL_TEST_PASSWORD",
    ]
    if os.environ.get("LABCTL_TEST_CA"):
        lines.append(f"  ca_path: {os.environ['LABCTL_TEST_CA']}")
    if os.environ.get("LABCTL_TEST_FINGERPRINT"):
        lines.append(f"  fingerprint: '{os.environ['LABCTL_TEST_FINGERPRINT']}'")
    octet = 100 + uuid.uuid4().int % 100
    lines += [
        "network:",
        f"  switch: {name}-sw",
        f"  subnet: 10.{octet}.0.0/24",
        f"  gateway: 10.{octet}.0.1",
        "defaults:",
        f"  image: {os.environ.get('LABCTL_TEST_IMAGE', 'ws2022-core')}",
        "  processors: 2",
        "  memory: 4GiB",
        "vms:",
        f"  - name: {name}-a",
        f"  - name: {name}-b",
        "guest_password_env: LABCTL_GUEST_PASSWORD",
    ]
    # The container-host bootstrap needs Docker's static zip: a local copy, or its SHA-256 to fetch it.
    if os.environ.get("LABCTL_TEST_DOCKER_ZIP"):
        lines.append(f"docker: {{path: '{os.environ['LABCTL_TEST_DOCKER_ZIP']}'}}")
    elif os.environ.get("LABCTL_TEST_DOCKER_SHA256"):
        lines.append(f"docker: {{sha256: '{os.environ['LABCTL_TEST_DOCKER_SHA256']}'}}")
    else:
        lines.insert(lines.index("vms:"), "  roles: []   # no Docker zip given: VMs only")
    return "\n".join(lines) + "\n"


def test_round_trip_on_a_real_host(tmp_path: Path) -> None:
    name = "lt" + uuid.uuid4().hex[:6]
    labs = tmp_path / "labs"
    labs.mkdir()
    lab = labs / f"{name}.yaml"
    lab.write_text(_lab_text(name))
    try:
        up = labctl("up", str(lab))
        assert up.exit_code == 0, up.output
        status = labctl("status", str(lab), "--json")
        data = json.loads(status.output)
        assert data["simulated"] is False
        for vm in data["vms"]:
            assert vm["healthy"], vm  # includes the container checks when the bootstrap ran
            assert vm["expose_virtualization_extensions"] and vm["mac_address_spoofing"]
            assert vm["expected_ip"] in vm["ips"]
        again = labctl("up", str(lab))
        assert again.exit_code == 0 and "Nothing to do" in again.output
    finally:
        gone = labctl("destroy", str(lab), "--yes")
        assert gone.exit_code == 0, gone.output
