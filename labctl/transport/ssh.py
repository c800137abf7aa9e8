"""The SSH carrier: PSRP out-of-process over an SSH channel to the ``powershell`` subsystem (paramiko).

The only module in labctl that imports paramiko. PowerShell 7 serves remoting over SSH as sshd's subsystem
(``Subsystem powershell c:/progra~1/powershell/7/pwsh.exe -sshs -NoLogo``, Microsoft Learn, "PowerShell
remoting over SSH"); the channel then carries the same out-of-process packets as ``powershell.exe -s``.
One SSH connection per transport, one channel per session. The host key is checked against a pinned
``SHA256:`` fingerprint (OpenSSH's form: base64 of the key's SHA-256, no padding) or a known_hosts file,
never accepted blindly. Keys come from ``key_file`` or the ssh-agent; a password only when the lab asks.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import paramiko

from labctl.secret import Secret
from labctl.transport.base import Cancel, RetryPolicy
from labctl.transport.common import Failure, refused, short
from labctl.transport.oop import OopTransport, Reader, Writer

SUBSYSTEM = "powershell"
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


@dataclass(frozen=True)
class SshTarget:
    """Where and how to reach a host's sshd."""

    hostname: str
    port: int = 22
    username: str = ""
    key_file: str | None = None
    host_key_fingerprint: str | None = None  # "SHA256:<base64, no padding>"
    known_hosts: str | None = None  # default ~/.ssh/known_hosts when no fingerprint is pinned
    password: Secret | None = None  # only when the lab file asks for password auth
    connect_timeout: float = 15.0

    @property
    def uri(self) -> str:
        return f"ssh://{self.username}@{self.hostname}:{self.port}"


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint of a public key (ssh-keygen -lf)."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _known_hosts_name(target: SshTarget) -> str:
    return target.hostname if target.port == 22 else f"[{target.hostname}]:{target.port}"


class _Connection:
    """The transport's one SSH connection, opened on first use and again after it dropped."""

    def __init__(self, target: SshTarget) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._transport: paramiko.Transport | None = None

    def transport(self) -> paramiko.Transport:
        with self._lock:
            if self._transport is None or not self._transport.is_active():
                if self._transport is not None:
                    self._transport.close()
                self._transport = self._connect()
            return self._transport

    def _connect(self) -> paramiko.Transport:
        t = self.target
        try:
            sock = socket.create_connection((t.hostname, t.port), timeout=t.connect_timeout)
        except OSError as exc:
            kind = "unreachable" if refused(exc) or isinstance(exc, socket.timeout) else "transient"
            raise Failure(kind, f"cannot reach {t.uri}: {short(exc)}",
                          "is sshd running there with the powershell subsystem? (see the README's SSH section)",
                          sent=False) from exc
        # PSRP over SSH is small packets each waiting for an answer: without TCP_NODELAY, Nagle holds a
        # packet's second segment until the peer's delayed ACK (40 ms on Linux) on nearly every pipeline.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = paramiko.Transport(sock)
        try:
            transport.start_client(timeout=t.connect_timeout)
            self._check_host_key(transport.get_remote_server_key())
            self._authenticate(transport)
        except Failure:
            transport.close()
            raise
        except paramiko.SSHException as exc:
            transport.close()
            raise Failure("transient", f"SSH to {t.uri} failed: {short(exc)}", sent=False) from exc
        except OSError as exc:
            transport.close()
            raise Failure("transient", f"SSH to {t.uri} failed: {short(exc)}", sent=False) from exc
        return transport

    def _check_host_key(self, key: paramiko.PKey) -> None:
        t = self.target
        seen = fingerprint(key)
        if t.host_key_fingerprint:
            if seen != t.host_key_fingerprint.strip():
                raise Failure("tls", f"the host key of {t.uri} changed: it is {seen}, the lab file pins "
                              f"{t.host_key_fingerprint}", "if the host was reinstalled, check its key "
                              "(ssh-keygen -lf on the host) and update host_key_fingerprint; otherwise do not "
                              "connect", sent=False)
            return
        path = Path(t.known_hosts or DEFAULT_KNOWN_HOSTS).expanduser()
        hosts = paramiko.HostKeys()
        try:
            hosts.load(str(path))
        except FileNotFoundError:
            raise Failure("tls", f"cannot verify the host key of {t.uri}: no known_hosts file {path}",
                          f"pin it with host_key_fingerprint: {seen} (after checking it on the host), or add "
                          "the host to known_hosts (ssh-keyscan)", sent=False) from None
        except OSError as exc:
            raise Failure("tls", f"cannot read known_hosts {path}: {exc.strerror or exc}", sent=False) from exc
        entry = hosts.lookup(_known_hosts_name(t))
        if entry is None:
            raise Failure("tls", f"{t.uri} is not in {path}: its host key {seen} cannot be verified",
                          f"pin it with host_key_fingerprint: {seen} (after checking it on the host), or add "
                          "the host to known_hosts", sent=False)
        known = entry.get(key.get_name())
        if known is None or known.asbytes() != key.asbytes():
            raise Failure("tls", f"the host key of {t.uri} changed: it is {seen}, {path} has another",
                          "if the host was reinstalled, check its key and update known_hosts; otherwise do "
                          "not connect", sent=False)

    def _authenticate(self, transport: paramiko.Transport) -> None:
        t = self.target
        tried: list[str] = []
        try:
            if t.key_file:
                key = _load_key(t.key_file, t.uri)
                tried.append(f"key {t.key_file}")
                transport.auth_publickey(t.username, key)
            elif t.password is None:
                keys = paramiko.Agent().get_keys()
                tried.append(f"{len(keys)} ssh-agent key(s)")
                for agent_key in keys:
                    try:
                        transport.auth_publickey(t.username, agent_key)
                        break
                    except paramiko.AuthenticationException:
                        continue
            if not transport.is_authenticated() and t.password is not None:
                tried.append("password")
                transport.auth_password(t.username, t.password.reveal())
        except paramiko.AuthenticationException:
            pass
        if not transport.is_authenticated():
            raise Failure("auth", f"{t.uri} refused {t.username or '(no user)'} ({', '.join(tried) or 'no key'})",
                          "check key_file (its public key must be in the user's authorized_keys) or the "
                          "ssh-agent (ssh-add -l)", sent=False)


def _load_key(path: str, uri: str) -> paramiko.PKey:
    try:
        return paramiko.PKey.from_path(Path(path).expanduser())
    except FileNotFoundError:
        raise Failure("fatal", f"the SSH key {path} for {uri} does not exist", sent=False) from None
    except (paramiko.SSHException, OSError, ValueError) as exc:
        raise Failure("fatal", f"cannot read the SSH key {path}: {short(exc)}",
                      "give an unencrypted OpenSSH private key, or use the ssh-agent for a protected one",
                      sent=False) from exc


class SshCarrier:
    """One channel of the shared SSH connection, to the ``powershell`` subsystem."""

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self._channel: paramiko.Channel | None = None

    def open(self) -> tuple[Reader, Writer]:
        transport = self._connection.transport()
        uri = self._connection.target.uri
        try:
            channel = transport.open_session(timeout=self._connection.target.connect_timeout)
            channel.invoke_subsystem(SUBSYSTEM)
        except paramiko.SSHException as exc:
            raise Failure("unreachable", f"{uri} has no {SUBSYSTEM} subsystem: {short(exc)}",
                          "add 'Subsystem powershell <pwsh> -sshs -NoLogo' to the host's sshd_config",
                          sent=False) from exc
        self._channel = channel
        return channel.makefile("rb"), channel.makefile("wb")

    def exit_reason(self) -> str | None:
        channel = self._channel
        if channel is None or not channel.exit_status_ready():
            return None
        err = b""
        while channel.recv_stderr_ready():
            err += channel.recv_stderr(4096)
        text = " ".join(err.decode("utf-8", "replace").split())
        return f"the {SUBSYSTEM} subsystem exited with code {channel.recv_exit_status()}" + \
            (f": {text[-400:]}" if text else "")

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None


class SshTransport(OopTransport):
    """An OopTransport over one SSH connection; each session is one channel."""

    def __init__(self, target: SshTarget, *, size: int = 4, policy: RetryPolicy | None = None,
                 cancel: Cancel | None = None) -> None:
        self.target = target
        self._ssh = _Connection(target)
        super().__init__(target.uri, lambda: SshCarrier(self._ssh), username=target.username, size=size,
                         policy=policy, cancel=cancel, service="its sshd or PowerShell")

    def close(self) -> None:
        super().close()
        with self._ssh._lock:
            if self._ssh._transport is not None:
                self._ssh._transport.close()
                self._ssh._transport = None
