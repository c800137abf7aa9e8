"""The SSH carrier against a real OpenSSH server (tests/sshd.py) whose powershell subsystem is the simulator's
out-of-process relay; and the lab file's ssh/local host keys."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sshd import Sshd, sshd  # noqa: F401 - the fixture

from hvsim.server import Simulator
from labctl.errors import AuthError, ConnectError
from labctl.hyperv import ops
from labctl.lab import validate
from labctl.transport.ssh import SshTarget, SshTransport

pytestmark = pytest.mark.xdist_group("sshd")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    s = Simulator(tmp_path / "host", profile="instant").start()
    yield s
    s.stop()


@pytest.fixture
def server(sim: Simulator, sshd: Callable[..., Sshd]) -> Sshd:  # noqa: F811
    return sshd(sim.state_dir)


def _target(server: Sshd, **kw: object) -> SshTarget:
    base: dict[str, object] = dict(hostname="127.0.0.1", port=server.port, username=server.user,
                                   key_file=str(server.client_key), host_key_fingerprint=server.host_fingerprint)
    base.update(kw)
    return SshTarget(**base)  # type: ignore[arg-type]


def test_pinned_fingerprint_and_known_hosts_both_reach_the_simulated_host(server: Sshd) -> None:
    for target in (_target(server), _target(server, host_key_fingerprint=None, known_hosts=str(server.known_hosts))):
        transport = SshTransport(target, size=2)
        try:
            res = transport.invoke(ops.computer_system())
            assert "SIMULATED" in str(res.objects()[0]["Model"])
            assert transport.stats["connections"] == 1
        finally:
            transport.close()


def test_a_changed_host_key_is_refused_with_both_fingerprints(server: Sshd, tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    from sshd import fingerprint_of

    pinned = fingerprint_of(other.with_suffix(".pub"))
    transport = SshTransport(_target(server, host_key_fingerprint=pinned))
    with pytest.raises(ConnectError) as info:
        transport.invoke(ops.computer_system())
    assert f"it is {server.host_fingerprint}, the lab file pins {pinned}" in str(info.value)
    assert "host key" in str(info.value) and "changed" in str(info.value)
    # known_hosts that names another key for this host: the same refusal.
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{server.port} " + " ".join(other.with_suffix(".pub").read_text().split()[:2]))
    with pytest.raises(ConnectError, match="changed"):
        SshTransport(_target(server, host_key_fingerprint=None, known_hosts=str(known))).invoke(ops.computer_system())
    # a host known_hosts does not list is never accepted blindly
    known.write_text("")
    with pytest.raises(ConnectError, match="is not in") as unknown:
        SshTransport(_target(server, host_key_fingerprint=None, known_hosts=str(known))).invoke(ops.computer_system())
    assert server.host_fingerprint in (unknown.value.hint or "")


def test_a_wrong_client_key_is_an_auth_error(server: Sshd, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    with pytest.raises(AuthError) as info:
        SshTransport(_target(server, key_file=str(wrong))).invoke(ops.computer_system())
    assert f"refused {server.user} (key {wrong})" in str(info.value)


def test_nothing_listening_is_a_connect_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectError, match=f"cannot reach ssh://me@127.0.0.1:{port}"):
        SshTransport(SshTarget("127.0.0.1", port, "me", host_key_fingerprint="SHA256:" + "A" * 43)).invoke(
            ops.computer_system())


LAB = """name: t
network: {{subnet: 10.70.0.0/24}}
vms:
  - name: v1
guest_password_env: GPW
host:
{host}"""


def _problems(write_lab: Callable[[str], Path], host: str) -> list[str]:
    return [f"{p.line}: {p.field}: {p.message}" for p in validate(write_lab(LAB.format(host=host)))]


def test_lab_file_ssh_and_local_hosts(write_lab: Callable[[str], Path]) -> None:
    fp = "SHA256:" + "a" * 43
    assert _problems(write_lab, f"  uri: ssh://admin@hv01:2222\n  key_file: id_ed25519\n"
                                f"  host_key_fingerprint: {fp}\n") == []
    assert _problems(write_lab, "  uri: local\n") == []
    out = _problems(write_lab, "  uri: ssh://hv01\n  host_key_fingerprint: SHA256:short\n"
                               "  fingerprint: 'sha256:" + "AB:" * 31 + "AB'\n  auth: kerberos\n")
    assert any(o.startswith("8: host.host_key_fingerprint: not a valid value") for o in out), out
    out = _problems(write_lab, "  uri: ssh://hv01\n  known_hosts: kh\n"
                               "  fingerprint: 'sha256:" + "AB:" * 31 + "AB'\n  auth: kerberos\n")
    assert "9: host.fingerprint: fingerprint has no effect with uri: ssh; pin the SSH host key with " \
           "host_key_fingerprint: SHA256:..." in out
    assert "7: host.uri: no user; write it like ssh://admin@hv01.example.com" in out
    assert "10: host.auth: auth has no effect with uri: ssh" in out
    out = _problems(write_lab, "  uri: https://hv01:5986/wsman\n  username: a\n  password_env: P\n"
                               "  key_file: k\n")
    assert out == ["10: host.key_file: key_file is for uri: ssh://user@host; WinRM over https does not use it"]
    out = _problems(write_lab, "  uri: local\n  username: a\n")
    assert out == ["8: host.username: username has no effect with uri: local"]
    out = _problems(write_lab, f"  uri: ssh://a@hv01\n  host_key_fingerprint: {fp}\n  known_hosts: kh\n")
    assert out == ["9: host.known_hosts: give either host_key_fingerprint or known_hosts, not both"]


def test_cli_status_over_ssh_and_a_changed_host_key_exits_4(server: Sshd, tmp_path: Path) -> None:
    from clirun import labctl

    lab = tmp_path / "lab.yaml"
    body = LAB.format(host=f"  uri: ssh://{server.user}@127.0.0.1:{server.port}\n  key_file: {server.client_key}\n"
                           "  host_key_fingerprint: {fp}\n")
    lab.write_text(body.replace("{fp}", server.host_fingerprint))
    ok = labctl("status", str(lab), env={"GPW": "Gu3st-Passw0rd!"})
    assert ok.exit_code == 1, ok.output  # reached: the lab is not up, so v1 is Absent
    assert f"lab t on simulated Hyper-V host at ssh://{server.user}@127.0.0.1:{server.port} [SIMULATED]" in ok.output
    assert "Absent" in ok.output
    lab.write_text(body.replace("{fp}", "SHA256:" + "B" * 43))
    bad = labctl("status", str(lab), env={"GPW": "Gu3st-Passw0rd!"})
    assert bad.exit_code == 4, bad.output
    assert "the host key of" in bad.output and "changed" in bad.output
