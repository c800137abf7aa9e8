"""An SSH server on loopback that serves PowerShell remoting as Windows' sshd does: the ``powershell`` subsystem.

On a Windows host, ``sshd_config`` has ``Subsystem powershell c:/progra~1/powershell/7/pwsh.exe -sshs -NoLogo``
and the client (``Enter-PSSession -HostName``, labctl's SSH transport) opens a session channel and asks for
that subsystem; the channel then carries PowerShell's out-of-process packets. Here the subsystem runs the
simulator's ``serve_oop(reader, writer)`` over the channel instead of starting pwsh.

What mirrors OpenSSH (openssh-portable auth2.c, session.c, servconf.c; RFC 4252/4254):

- public-key authentication only (``PasswordAuthentication no``): a failed or unknown method gets
  SSH_MSG_USERAUTH_FAILURE listing ``publickey``; the same answer for an unknown user and a wrong key (no
  user enumeration); at MaxAuthTries (6, the default) failures the connection is cut, as
  auth_maxtries_exceeded does ("Too many authentication failures");
- user names compare case-insensitively, and ``HOST\\user`` / ``user@HOST`` name the same local account, as
  on Windows (Win32-OpenSSH; unconfirmed beyond Microsoft's "ssh domain\\username@servername" docs);
- only ``session`` channels open (port forwarding: administratively prohibited, as with
  ``DisableForwarding yes``); a subsystem other than ``powershell``, ``exec``, ``shell``, ``pty-req`` and
  ``env`` get SSH_MSG_CHANNEL_FAILURE (session.c answers "subsystem request for X by user Y failed,
  subsystem not found" with a failure);
- when the subsystem ends, the channel gets ``exit-status`` and is closed, as sshd does when pwsh exits.

The version string says ``OpenSSH_for_Windows_8.1`` (what Windows Server 2022's OpenSSH reports;
unconfirmed for later builds) with a comment saying the host is SIMULATED.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any, Protocol

import paramiko

from hvsim.ssh.keys import SshKeys

log = logging.getLogger(__name__)

SUBSYSTEM = "powershell"
MAX_AUTH_TRIES = 6  # sshd_config(5) MaxAuthTries default
MAX_CONNECTIONS = 100  # sshd_config(5) MaxStartups 10:30:100: never more than 100 unauthenticated
VERSION = "SSH-2.0-OpenSSH_for_Windows_8.1 labctl-SIMULATED-host"


class Reader(Protocol):
    def readline(self) -> bytes: ...


class Writer(Protocol):
    def write(self, data: bytes) -> Any: ...

    def flush(self) -> None: ...


class ServeFn(Protocol):
    """``Simulator.serve_oop``: one PSRP out-of-process session over ``reader``/``writer``."""

    def __call__(self, reader: Reader, writer: Writer, *, client_address: str = ...) -> None: ...


class _Connection(paramiko.ServerInterface):
    """One client connection's answers to authentication and channel requests."""

    def __init__(self, server: SshServer, transport: paramiko.Transport) -> None:
        self._server = server
        self._transport = transport
        self._failures = 0

    # -- authentication
    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def _failed(self) -> int:
        self._failures += 1
        if self._failures >= MAX_AUTH_TRIES:
            log.info("SSH: too many authentication failures from %s", self._transport.getpeername())
            self._transport.close()
        return paramiko.AUTH_FAILED

    def check_auth_none(self, username: str) -> int:
        return paramiko.AUTH_FAILED  # the first "none" probe costs no try (auth2.c)

    def check_auth_password(self, username: str, password: str) -> int:
        return self._failed()

    def check_auth_interactive(self, username: str, submethods: str) -> int:
        return self._failed()

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        wanted = self._server.keys.authorized_key
        if (self._server.accepts_user(username) and key.get_name() == wanted.get_name()
                and key.asbytes() == wanted.asbytes()):
            return paramiko.AUTH_SUCCESSFUL
        return self._failed()

    # -- channels
    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_subsystem_request(self, channel: paramiko.Channel, name: str) -> bool:
        serve = self._server.serve
        if name != SUBSYSTEM or serve is None:
            log.info("SSH: subsystem request for %s failed, subsystem not found", name)
            return False
        peer = self._transport.getpeername()
        address = str(peer[0]) if isinstance(peer, tuple) else "127.0.0.1"
        thread = threading.Thread(target=self._server.run_subsystem, args=(channel, serve, address),
                                  name=f"sim-ssh-{SUBSYSTEM}-{channel.get_id()}", daemon=True)
        thread.start()
        return True

    # exec, shell, pty-req, env, x11, agent forwarding: paramiko's defaults refuse them (channel failure).


class SshServer:
    """A listening socket on ``host:port`` (0: any free port), one paramiko Transport per connection."""

    def __init__(self, host: str, port: int, keys: SshKeys, accepts_user: Callable[[str], bool],
                 serve: ServeFn | None) -> None:
        self.keys = keys
        self.accepts_user = accepts_user
        self.serve = serve
        self._sock = socket.create_server((host, port), reuse_port=False)
        self._sock.settimeout(0.2)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._transports: set[paramiko.Transport] = set()

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    @property
    def host_fingerprint(self) -> str:
        return self.keys.host_fingerprint

    def start(self) -> None:
        self._thread = threading.Thread(target=self._accept_loop, name=f"sim-ssh-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and cut every open connection (their subsystems see end of input)."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes accept() at once on Linux
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            self._sock.close()
        with self._lock:
            transports = list(self._transports)
            self._transports.clear()
        for transport in transports:
            with contextlib.suppress(Exception):
                transport.close()

    def connections(self) -> int:
        """How many client connections are open."""
        with self._lock:
            self._transports = {t for t in self._transports if t.is_active()}
            return len(self._transports)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                continue
            if self.connections() >= MAX_CONNECTIONS:
                with contextlib.suppress(OSError):
                    conn.close()
                continue
            try:
                self._start_transport(conn)
            except Exception as exc:  # a client that breaks off during the handshake
                log.debug("SSH connection ended: %s", type(exc).__name__)
                with contextlib.suppress(OSError):
                    conn.close()

    def _start_transport(self, conn: socket.socket) -> None:
        conn.settimeout(None)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small request/answer packets: no Nagle
        transport = paramiko.Transport(conn)
        transport.local_version = VERSION
        transport.add_server_key(self.keys.host_key)
        with self._lock:
            self._transports.add(transport)
        transport.start_server(server=_Connection(self, transport))

    def run_subsystem(self, channel: paramiko.Channel, serve: ServeFn, client_address: str) -> None:
        """The ``powershell`` subsystem: ``serve`` over the channel, then exit-status and close."""
        status = 0
        reader = channel.makefile("rb")
        writer = channel.makefile("wb")
        try:
            serve(reader, writer, client_address=client_address)
            writer.flush()
        except Exception as exc:
            status = 1
            log.warning("SSH %s subsystem ended with %s", SUBSYSTEM, type(exc).__name__)
        finally:
            with contextlib.suppress(Exception):
                channel.send_exit_status(status)
            with contextlib.suppress(Exception):
                channel.close()
