"""A real OpenSSH server on loopback for tests: Debian's /usr/sbin/sshd with its own config, keys and port.

Its ``powershell`` subsystem runs the simulator's out-of-process PSRP relay (``python -m hvsim.oop --state
DIR``) over stdio, as Windows' sshd runs ``pwsh -sshs``. Nothing of the machine's own sshd setup is used:
host key, client key (``ssh-keygen``), ``authorized_keys``, ``sshd_config`` and pid file live in one folder.

- ``start_sshd(folder, state_dir)`` -> :class:`Sshd` (call ``stop()``), or ``running_sshd(...)`` as a
  context manager;
- the ``sshd`` pytest fixture (import it into a test module): a factory ``sshd(state_dir) -> Sshd``,
  every server stopped after the test.

Missing openssh-server makes the fixture FAIL with the install line: these tests are part of the suite.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import hashlib
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from psrpcore import ClientRunspacePool, PSRPPayload, RunspacePoolStateEvent, StreamType
from psrpcore.types import RunspacePoolState

SSHD = "/usr/sbin/sshd"  # sshd re-executes itself and refuses a relative path ("sshd re-exec requires
#                          execution with an absolute path")
INSTALL = "apt-get install -y openssh-server openssh-client"


class SshdMissing(RuntimeError):
    """openssh-server (or ssh-keygen) is not installed."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True)
    path.chmod(0o600)


def fingerprint_of(pub_file: Path) -> str:
    """``SHA256:...`` of a ``.pub`` file, computed from its key blob (the form ``ssh-keygen -lf`` prints)."""
    blob = base64.b64decode(pub_file.read_text().split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def relay_command(state_dir: Path) -> list[str]:
    """The subsystem command: the simulator's OOP relay for ``state_dir``, with this interpreter."""
    return [sys.executable, "-m", "hvsim.oop", "--state", str(Path(state_dir).resolve())]


@dataclass
class Sshd:
    """A running sshd: where it listens, the client key it accepts, its host key's fingerprint."""

    folder: Path
    port: int
    user: str
    client_key: Path
    host_key: Path
    host_fingerprint: str
    known_hosts: Path
    log_file: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def uri(self) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}"

    def log(self) -> str:
        """What sshd wrote (``-e``: its log on stderr)."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def ssh_command(self, *args: str, key: Path | None = None) -> list[str]:
        """An OpenSSH client command line for this server (batch mode, its known_hosts only)."""
        return ["ssh", "-F", "none", "-i", str(key or self.client_key), "-p", str(self.port),
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                "-o", "ConnectTimeout=10", *args]

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


def _config(folder: Path, port: int, user: str, subsystem: Sequence[str]) -> str:
    lines = [
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {folder / 'ssh_host_ed25519_key'}",
        f"PidFile {folder / 'sshd.pid'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        # The folder sits under /tmp (mode 1777) and pytest's tmp folders may be group-writable: StrictModes
        # would refuse the authorized_keys file ("bad ownership or modes for directory").
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        f"AllowUsers {user}",
        "DisableForwarding yes",
        "PermitTTY no",
        "LogLevel VERBOSE",
        # sshd runs it through the user's shell (sh -c): one quoted command line.
        f"Subsystem powershell {shlex.join(subsystem)}",
    ]
    return "\n".join(lines) + "\n"


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log_file: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}:\n{log_file.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.settimeout(2)
            if sock.recv(64).startswith(b"SSH-2.0-"):
                return
        time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port}:\n{log_file.read_text(errors='replace')}")


def start_sshd(folder: Path, state_dir: Path, *, subsystem: Sequence[str] | None = None) -> Sshd:
    """Make keys and config in ``folder`` and start sshd serving ``state_dir``'s simulator as ``powershell``."""
    for tool in (SSHD, "ssh-keygen"):
        if shutil.which(tool) is None:
            raise SshdMissing(f"{tool} not found: install OpenSSH with `{INSTALL}`")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    user = getpass.getuser()
    host_key, client_key = folder / "ssh_host_ed25519_key", folder / "client_ed25519"
    _keygen(host_key, "sshd-fixture-host")
    _keygen(client_key, "labctl-test-client")
    (folder / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    (folder / "authorized_keys").chmod(0o600)
    port = _free_port()
    known_hosts = folder / "known_hosts"
    host_pub = host_key.with_name(host_key.name + ".pub").read_text().split()
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    config = folder / "sshd_config"
    config.write_text(_config(folder, port, user, subsystem or relay_command(state_dir)))
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory, root only
    subprocess.run([SSHD, "-t", "-f", str(config)], check=True, capture_output=True)
    log_file = folder / "sshd.log"
    with log_file.open("wb") as log:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)
    server = Sshd(folder, port, user, client_key, host_key,
                  fingerprint_of(host_key.with_name(host_key.name + ".pub")), known_hosts, log_file, proc)
    try:
        _wait_listening(proc, port, log_file)
    except BaseException:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def running_sshd(folder: Path, state_dir: Path, *, subsystem: Sequence[str] | None = None) -> Iterator[Sshd]:
    server = start_sshd(folder, state_dir, subsystem=subsystem)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Sshd]]:
    """``sshd(state_dir, subsystem=None) -> Sshd``: a real sshd for the simulator of ``state_dir``."""
    started: list[Sshd] = []

    def _start(state_dir: Path, subsystem: Sequence[str] | None = None) -> Sshd:
        try:
            server = start_sshd(tmp_path_factory.mktemp("sshd"), state_dir, subsystem=subsystem)
        except SshdMissing as exc:
            pytest.fail(str(exc), pytrace=False)
        started.append(server)
        return server

    yield _start
    for server in started:
        server.stop()


# -- a PSRP client over PowerShell's out-of-process packets (the test's view of the powershell subsystem)

EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
_PACKET = re.compile(r"^<(?P<kind>\w+)(?: Stream='(?P<stream>\w+)')? PSGuid='(?P<guid>[0-9a-fA-F-]*)'"
                     r"\s*(?:/>|>(?P<data>[A-Za-z0-9+/=]*)</Data>)$")


def oop_packets(reader: Any) -> Iterator[tuple[str, str, bytes]]:
    """(kind, PSGuid, data) of each server packet until end of input."""
    while True:
        line = reader.readline()
        if not line:
            return
        match = _PACKET.match(line.decode("utf-8").strip())
        if match is None:
            raise AssertionError(f"not an out-of-process packet: {line[:200]!r}")
        yield match["kind"], match["guid"].lower(), base64.b64decode(match["data"] or "")


def open_psrp_pool(reader: Any, writer: Any) -> tuple[ClientRunspacePool, list[str]]:
    """Open a runspace pool with psrpcore's client over the OOP packets; (pool, server packet kinds seen)."""
    pool = ClientRunspacePool()
    pool.open()
    while (payload := pool.data_to_send()) is not None:
        stream = "PromptResponse" if payload.stream_type == StreamType.prompt_response else "Default"
        body = base64.b64encode(payload.data).decode()
        writer.write(f"<Data Stream='{stream}' PSGuid='{EMPTY_GUID}'>{body}</Data>\n".encode())
        writer.flush()
    kinds: list[str] = []
    for kind, guid, data in oop_packets(reader):
        kinds.append(kind)
        if kind == "Data":
            pool.receive_data(PSRPPayload(data, StreamType.default, None if guid == EMPTY_GUID else uuid.UUID(guid)))
            while (event := pool.next_event()) is not None:
                if isinstance(event, RunspacePoolStateEvent) and pool.state != RunspacePoolState.Opening:
                    return pool, kinds
    raise AssertionError(f"the server closed before the pool opened; packets seen: {kinds}")


def close_psrp_pool(reader: Any, writer: Any) -> list[str]:
    """Send the pool's Close packet; the packet kinds the server answers with until CloseAck or end of input."""
    writer.write(f"<Close PSGuid='{EMPTY_GUID}' />\n".encode())
    writer.flush()
    kinds = []
    for kind, _guid, _data in oop_packets(reader):
        kinds.append(kind)
        if kind == "CloseAck":
            break
    return kinds
