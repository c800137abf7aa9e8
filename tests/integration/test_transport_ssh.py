"""The quickstart over PowerShell remoting over SSH: to a real OpenSSH server on loopback whose powershell
subsystem is the simulator's out-of-process server (as sshd runs pwsh -sshs on Windows), and to the simulator's
own SSH server (`labctl sim serve` offers both); a changed host key and a wrong key fail with exit 4."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from labharness import ServedSim, quickstart_on, quickstart_round_trip, run
from sshd import Sshd, sshd  # noqa: F401 - the fixture

pytestmark = pytest.mark.xdist_group("sshd")


def _host(uri: str, key: Path | str, fingerprint: str) -> str:
    return f"  uri: {uri}\n  key_file: {key}\n  host_key_fingerprint: {fingerprint}"


def test_quickstart_over_ssh_to_a_real_sshd(tmp_path: Path, sshd: Callable[..., Sshd]) -> None:  # noqa: F811
    served = ServedSim(tmp_path / "host-state")
    try:
        server = sshd(served.sim.state_dir)
        lab = quickstart_on(tmp_path, _host(server.uri, server.client_key, server.host_fingerprint))
        quickstart_round_trip(lab, served, {})
    finally:
        served.close()


def test_quickstart_over_the_simulators_own_ssh_server(tmp_path: Path) -> None:
    served = ServedSim(tmp_path / "host-state")
    try:
        ep = json.loads((served.sim.state_dir / "endpoint.json").read_text())
        lab = quickstart_on(tmp_path, _host(ep["ssh_uri"], ep["ssh_client_key"], ep["ssh_host_key_fingerprint"]))
        quickstart_round_trip(lab, served, {})
    finally:
        served.close()


def test_a_changed_host_key_and_a_wrong_key_exit_4(tmp_path: Path, sshd: Callable[..., Sshd]) -> None:  # noqa: F811
    served = ServedSim(tmp_path / "host-state")
    try:
        server = sshd(served.sim.state_dir)
        other = tmp_path / "other"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
        from sshd import fingerprint_of

        pinned = fingerprint_of(other.with_suffix(".pub"))  # not the server's host key
        changed = run("status", str(quickstart_on(tmp_path / "a", _host(server.uri, server.client_key,
                                                                         pinned)).file))
        assert changed.exit_code == 4, changed.output
        assert server.host_fingerprint in changed.output and pinned in changed.output
        wrong = run("status", str(quickstart_on(tmp_path / "b", _host(server.uri, other,
                                                                       server.host_fingerprint)).file))
        assert wrong.exit_code == 4, wrong.output
        assert "refused" in wrong.output.lower() or "denied" in wrong.output.lower(), wrong.output
    finally:
        served.close()
