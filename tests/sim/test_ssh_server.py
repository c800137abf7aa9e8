"""The simulator's embedded SSH server: what OpenSSH's own tools and paramiko see of it."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import paramiko
import pytest
from psrpcore.types import RunspacePoolState
from sshd import close_psrp_pool, open_psrp_pool

from hvsim.server import Simulator

REPO = Path(__file__).resolve().parents[2]
SSH_OPTS = ["-F", "none", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10"]


def _endpoint(sim: Simulator) -> dict[str, Any]:
    return dict(json.loads(sim.endpoint_file.read_text(encoding="utf-8")))


def _ssh(sim: Simulator, *options: str, command: str, key: str | None = None,
         user: str = "Administrator") -> subprocess.CompletedProcess[str]:
    """OpenSSH's client: ``ssh OPTIONS user@127.0.0.1 COMMAND`` (with -s, COMMAND is the subsystem)."""
    key = key or _endpoint(sim)["ssh_client_key"]
    return subprocess.run(["ssh", *SSH_OPTS, "-i", key, "-p", str(sim.ssh_port), *options, f"{user}@127.0.0.1",
                           command], capture_output=True, text=True, timeout=60, check=False)


def _client(sim: Simulator, username: str = "Administrator", key: paramiko.PKey | None = None) -> paramiko.Transport:
    transport = paramiko.Transport(("127.0.0.1", sim.ssh_port))
    transport.connect()
    pkey = key or paramiko.Ed25519Key(filename=_endpoint(sim)["ssh_client_key"])
    transport.auth_publickey(username, pkey)
    return transport


def _other_key(tmp_path: Path) -> Path:
    path = tmp_path / "other_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def test_endpoint_lists_ssh_uri_fingerprint_and_private_client_key(sim: Simulator) -> None:
    ep = _endpoint(sim)
    assert ep["ssh_uri"] == f"ssh://Administrator@127.0.0.1:{sim.ssh_port}"
    key = Path(ep["ssh_client_key"])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    # The fingerprint of the key the server presents, as OpenSSH computes it.
    scan = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(sim.ssh_port), "127.0.0.1"],
                          capture_output=True, text=True, timeout=30, check=True).stdout
    printed = subprocess.run(["ssh-keygen", "-lf", "-"], input=scan, capture_output=True, text=True,
                             check=True).stdout.split()
    assert printed[1] == ep["ssh_host_key_fingerprint"]
    assert re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", ep["ssh_host_key_fingerprint"])
    # ssh-keygen reads the client key: it is a valid OpenSSH private key.
    subprocess.run(["ssh-keygen", "-y", "-f", str(key)], capture_output=True, check=True)


def test_host_key_is_kept_across_restarts_and_the_port_can_be_fixed(tmp_path: Path) -> None:
    with Simulator(tmp_path / "state") as first:
        fingerprint = first.ssh_host_key_fingerprint
        client_key = Path(first.ssh_client_key).read_bytes()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with Simulator(tmp_path / "state", ssh_port=port) as second:
        assert second.ssh_host_key_fingerprint == fingerprint
        assert Path(second.ssh_client_key).read_bytes() == client_key
        assert _endpoint(second)["ssh_uri"] == f"ssh://Administrator@127.0.0.1:{port}"


def test_client_key_authenticates_with_every_spelling_of_the_account(sim: Simulator) -> None:
    assert sim.credentials is not None
    for user in ("Administrator", "administrator", f"{sim.credentials.hostname}\\Administrator"):
        transport = _client(sim, user)
        try:
            assert transport.is_authenticated()
            assert transport.remote_version.startswith("SSH-2.0-OpenSSH_for_Windows")
        finally:
            transport.close()


def test_wrong_key_is_refused_like_openssh(sim: Simulator, tmp_path: Path) -> None:
    result = _ssh(sim, "-s", command="powershell", key=str(_other_key(tmp_path)))
    assert result.returncode == 255
    assert "Permission denied (publickey)" in result.stderr
    # The right key for an unknown user: the same answer (no user enumeration).
    result = _ssh(sim, "-s", command="powershell", user="nobody")
    assert result.returncode == 255
    assert "Permission denied (publickey)" in result.stderr


def test_password_is_not_offered(sim: Simulator) -> None:
    transport = paramiko.Transport(("127.0.0.1", sim.ssh_port))
    try:
        transport.connect()
        with pytest.raises(paramiko.BadAuthenticationType) as caught:
            transport.auth_password("Administrator", sim.password)
        assert caught.value.allowed_types == ["publickey"]
    finally:
        transport.close()


def test_max_auth_tries_cuts_the_connection(sim: Simulator, tmp_path: Path) -> None:
    wrong = paramiko.Ed25519Key(filename=str(_other_key(tmp_path)))
    transport = paramiko.Transport(("127.0.0.1", sim.ssh_port))
    transport.connect()
    refused = 0
    try:
        for _ in range(10):
            try:
                transport.auth_publickey("Administrator", wrong)
            except paramiko.AuthenticationException:
                refused += 1
            except (paramiko.SSHException, EOFError, OSError):
                break
            if not transport.is_active():
                break
    finally:
        transport.close()
    assert refused == 6  # MaxAuthTries 6: the sixth failure ends the connection
    assert not transport.is_active()


def test_unknown_subsystem_exec_and_shell_are_refused(sim: Simulator) -> None:
    result = _ssh(sim, "-s", command="sftp")
    assert "subsystem request failed on channel 0" in result.stderr
    assert result.returncode != 0
    result = _ssh(sim, "-T", command="whoami")
    assert "exec request failed on channel 0" in result.stderr
    transport = _client(sim)
    try:
        channel = transport.open_session()
        with pytest.raises(paramiko.SSHException):
            channel.invoke_shell()
        with pytest.raises(paramiko.ChannelException):
            transport.open_channel("direct-tcpip", ("127.0.0.1", sim.https_port), ("127.0.0.1", 0))
    finally:
        transport.close()


def test_powershell_subsystem_serves_psrp(sim: Simulator) -> None:
    if not hasattr(sim, "serve_oop"):
        pytest.fail("Simulator.serve_oop is missing: the powershell subsystem has nothing to serve")
    transport = _client(sim)
    try:
        channel = transport.open_session()
        channel.invoke_subsystem("powershell")
        reader, writer = channel.makefile("rb"), channel.makefile("wb")
        pool, _kinds = open_psrp_pool(reader, writer)
        assert pool.state == RunspacePoolState.Opened
        assert close_psrp_pool(reader, writer)[-1] == "CloseAck"
        channel.shutdown_write()
        assert channel.recv_exit_status() == 0
    finally:
        transport.close()


def test_sim_serve_offers_ssh_on_the_port_asked_for(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    state = tmp_path / "host"
    proc = subprocess.Popen([sys.executable, "-m", "labctl.cli.main", "sim", "serve", "--state", str(state),
                             "--ssh-port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout is not None
        printed = []
        for line in proc.stdout:
            printed.append(line.rstrip())
            if line.startswith("Press Ctrl-C"):
                break
        ep = json.loads((state / "endpoint.json").read_text(encoding="utf-8"))
        assert ep["ssh_uri"] == f"ssh://Administrator@127.0.0.1:{port}"
        assert f"  SSH (powershell subsystem):     ssh://Administrator@127.0.0.1:{port}" in printed
        assert f"  SSH host key:                   {ep['ssh_host_key_fingerprint']}" in printed
        # OpenSSH's client, pinned to the printed fingerprint through a known_hosts line, gets the subsystem.
        scan = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(port), "127.0.0.1"], capture_output=True,
                              text=True, timeout=30, check=True).stdout
        known = tmp_path / "known_hosts"
        known.write_text(scan)
        seen = subprocess.run(["ssh-keygen", "-lf", str(known)], capture_output=True, text=True, check=True)
        assert seen.stdout.split()[1] == ep["ssh_host_key_fingerprint"]
        client = subprocess.Popen(["ssh", "-F", "none", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                                   "-o", "IdentityAgent=none", "-o", f"UserKnownHostsFile={known}",
                                   "-o", "StrictHostKeyChecking=yes", "-i", ep["ssh_client_key"], "-p", str(port),
                                   "-s", "Administrator@127.0.0.1", "powershell"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            pool, _kinds = open_psrp_pool(client.stdout, client.stdin)
            assert pool.state == RunspacePoolState.Opened
            assert close_psrp_pool(client.stdout, client.stdin)[-1] == "CloseAck"
            assert client.stdin is not None
            client.stdin.close()
            assert client.wait(timeout=30) == 0
        finally:
            if client.poll() is None:
                client.kill()
            client.wait(timeout=10)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
