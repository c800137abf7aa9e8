"""The real-OpenSSH fixture (tests/sshd.py): Debian's sshd on loopback whose powershell subsystem is the
simulator's out-of-process relay, as Windows' sshd runs ``pwsh -sshs``."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest
from psrpcore.types import RunspacePoolState
from sshd import Sshd, close_psrp_pool, open_psrp_pool, running_sshd, sshd  # noqa: F401  (fixture)

from hvsim.server import Simulator
from hvsim.ssh import fingerprint

pytestmark = pytest.mark.xdist_group("sshd")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    with Simulator(tmp_path / "state") as simulator:
        yield simulator


def _other_key(tmp_path: Path) -> Path:
    path = tmp_path / "other_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def test_openssh_client_opens_a_psrp_pool_through_the_powershell_subsystem(
        sim: Simulator, sshd: Callable[..., Sshd]) -> None:  # noqa: F811
    server = sshd(sim.state_dir)
    proc = subprocess.Popen(server.ssh_command("-s", f"{server.user}@127.0.0.1", "powershell"),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        pool, _kinds = open_psrp_pool(proc.stdout, proc.stdin)
        assert pool.state == RunspacePoolState.Opened
        assert close_psrp_pool(proc.stdout, proc.stdin)[-1] == "CloseAck"
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
    assert f"Accepted publickey for {server.user}" in server.log()
    assert "Starting session: subsystem 'powershell'" in server.log()


def test_paramiko_verifies_the_host_key_and_reaches_the_relay(sim: Simulator, sshd: Callable[..., Sshd]) -> None:  # noqa: F811
    server = sshd(sim.state_dir)
    transport = paramiko.Transport(("127.0.0.1", server.port))
    try:
        transport.connect()
        assert fingerprint(transport.get_remote_server_key()) == server.host_fingerprint
        transport.auth_publickey(server.user, paramiko.Ed25519Key(filename=str(server.client_key)))
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


def test_wrong_key_is_refused(sim: Simulator, sshd: Callable[..., Sshd], tmp_path: Path) -> None:  # noqa: F811
    server = sshd(sim.state_dir)
    result = subprocess.run(server.ssh_command("-s", f"{server.user}@127.0.0.1", "powershell",
                                               key=_other_key(tmp_path)),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 255
    assert "Permission denied (publickey)" in result.stderr


def test_relay_without_a_running_simulator_says_so(tmp_path: Path, sshd: Callable[..., Sshd]) -> None:  # noqa: F811
    server = sshd(tmp_path / "no-simulator-here")
    result = subprocess.run(server.ssh_command("-s", f"{server.user}@127.0.0.1", "powershell"),
                            input="", capture_output=True, text=True, timeout=60, check=False)
    # The relay ran and failed (exit 1: no simulator); sshd passes the exit status on but drops a
    # subsystem's stderr (session.c: session_set_fds(..., ignore_fderr = s->is_subsystem) -> CHAN_EXTENDED_IGNORE).
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Starting session: subsystem 'powershell'" in server.log()


def test_server_stops_after_the_block(tmp_path: Path) -> None:
    with running_sshd(tmp_path / "sshd", tmp_path / "state") as server:
        port = server.port
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            assert sock.recv(64).startswith(b"SSH-2.0-OpenSSH")
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_missing_sshd_fails_with_the_install_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sshd as fixture

    monkeypatch.setattr(fixture, "SSHD", str(tmp_path / "no-such-sshd"))
    with pytest.raises(fixture.SshdMissing, match="apt-get install -y openssh-server"):
        fixture.start_sshd(tmp_path / "sshd", tmp_path / "state")
