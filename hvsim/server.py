"""The simulator process: a SIMULATED Hyper-V host listening for WinRM on loopback.

``Simulator(state_dir).start()`` assembles the clock, fault plan, counters, the persisted World,
the Runtime and two listeners, like a Windows host configured for remoting:

- HTTPS (Basic or Negotiate/NTLM) with a self-signed certificate kept in ``STATE/tls``;
- HTTP (Negotiate/NTLM with WinRM message encryption only).

At first start it makes the host identity (host name, local administrator and a random password,
``STATE/host.json``, mode 0600) and the certificate; later starts reuse them. ``STATE/endpoint.json``
(mode 0600) tells clients where and how to connect, and says ``"simulated": true``.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from hvsim.control import ControlService
from hvsim.core.clock import Clock
from hvsim.core.counters import Counters
from hvsim.core.faults import FaultPlan
from hvsim.core.files import make_private, replace_private
from hvsim.core.resources import Capacity
from hvsim.docker.api import DockerApiManager
from hvsim.docker.mirror import Mirror
from hvsim.networking.rdp import RdpEndpointManager
from hvsim.oop.framing import OopProtocolError
from hvsim.oop.relay import RelayListener
from hvsim.oop.session import OopSession, Reader, Writer
from hvsim.powershell.cmdlet import Session, StreamSink
from hvsim.powershell.runtime import RawCommand, Runtime
from hvsim.ssh import SshServer, ensure_keys
from hvsim.world import World
from hvsim.wsman.auth import HostCredentials, NtlmUserStore
from hvsim.wsman.kerberos import KerberosConfig, export_keytab
from hvsim.wsman.server import CONTROL_PATH, MIRROR_PATH, WSMAN_PATH, Listener, ListenerConfig, WSManApp
from hvsim.wsman.service import WSManService
from hvsim.wsman.tls import Certificate, ensure_certificate

log = logging.getLogger(__name__)

BANNER = "SIMULATED Hyper-V host (labctl simulator) - not a real Windows machine"


class RuntimeLike(Protocol):
    """Anything with Runtime.run's signature (tests pass fakes)."""

    def run(self, statements: list[list[RawCommand]], input: list[Any], sink: StreamSink,
            session: Session) -> None: ...


def write_private_json(path: Path, value: Any) -> None:
    """Atomic write of a JSON file readable by its owner only (0600, or an owner-only ACL on Windows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_private(path, (json.dumps(value, indent=2) + "\n").encode("utf-8"))


def load_host_identity(state_dir: Path) -> HostCredentials:
    """STATE/host.json: made at first start (random password), reused afterwards."""
    path = state_dir / "host.json"
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        return HostCredentials(str(data["hostname"]), str(data["username"]), str(data["password"]))
    creds = HostCredentials(
        hostname=f"SIMHV-{secrets.token_hex(3).upper()}",
        username="Administrator",
        password=secrets.token_urlsafe(18),
    )
    write_private_json(path, {"hostname": creds.hostname, "username": creds.username,
                              "password": creds.password, "simulated": True})
    return creds


# Every module whose @cmdlet handlers the runtime dispatches to, in registration order.
HANDLER_MODULES = (
    "hvsim.storage.handlers.disks",
    "hvsim.storage.handlers.files",
    "hvsim.hyperv.handlers.host",
    "hvsim.hyperv.handlers.vm",
    "hvsim.networking.handlers",
    "hvsim.guest.handlers.remoting",
    "hvsim.powershell.handlers",
    "hvsim.storage.handlers.vhd",
    "hvsim.storage.handlers.images",
)


def load_handlers() -> list[str]:
    """Import every module of ``HANDLER_MODULES`` so its @cmdlet handlers register.

    A module that fails to import (work in progress) is logged and skipped: its cmdlets then
    answer as not modelled instead of taking the whole simulator down.
    """
    loaded = []
    for name in HANDLER_MODULES:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except Exception as exc:
            log.warning("cmdlet handlers in %s not loaded: %s: %s", name, type(exc).__name__, exc)
    return loaded


class _RuntimeHost:
    """Runs a pipeline through the runtime, then persists the world when it changed."""

    def __init__(self, runtime: RuntimeLike, world: World, after: Callable[[], None] | None = None) -> None:
        self._runtime = runtime
        self._world = world
        self._after = after  # runs after every pipeline (the Docker API and RDP listeners follow NAT mappings)

    def run_pipeline(self, statements: list[list[RawCommand]], input: list[Any], sink: Any,
                     session: Session) -> None:
        try:
            with self._world.clock.call():  # the pipeline's place on the simulated timeline
                self._runtime.run(statements, input, sink, session)
        finally:
            self.persist()
            if self._after is not None:
                self._after()

    def persist(self) -> None:
        if not getattr(self._world, "dirty", False):
            return
        with self._world.lock:
            if self._world.dirty:
                try:
                    self._world.save()
                except Exception as exc:
                    log.error("saving the simulated host state failed: %s", type(exc).__name__)


def host_setting_names() -> list[str]:
    """The names ``host_config`` (``labctl sim serve --host-setting``) accepts."""
    from hvsim.hyperv.models.host import HostConfig

    return sorted(HostConfig.__dataclass_fields__)


class Simulator:
    """A simulated Hyper-V host reachable over WinRM on 127.0.0.1."""

    def __init__(self, state_dir: Path | str, port: int = 0, profile: str = "instant", speedup: float = 1.0,
                 seed: int = 0, *, http_port: int = 0, host: str = "127.0.0.1",
                 runtime: RuntimeLike | None = None, basic_auth: bool = True,
                 host_config: dict[str, Any] | None = None, ssh_port: int = 0,
                 kerberos_keytab: Path | str | None = None, kerberos_realm: str | None = None,
                 credssp: bool = False) -> None:
        self.state_dir = Path(state_dir)
        # Kerberos (a keytab with HTTP/localhost@REALM keys; admits <administrator>@REALM) and CredSSP.
        if (kerberos_keytab is None) != (kerberos_realm is None):
            raise ValueError("Kerberos needs both a keytab and a realm")
        self.kerberos = (KerberosConfig(Path(kerberos_keytab), str(kerberos_realm))
                         if kerberos_keytab is not None and kerberos_realm else None)
        self.credssp = credssp
        self._ssh_port = ssh_port  # the SSH listener (powershell subsystem); 0: any free port
        # Host settings (memory, CPU vendor, build...) for a new state; a saved state keeps its own.
        self.host_config = dict(host_config or {})
        self.host = host
        self._https_port = port
        self._http_port = http_port
        self.profile = profile
        self.speedup = speedup
        self.seed = seed
        self.basic_auth = basic_auth
        self._runtime_override = runtime
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._started = False
        self.clock: Clock | None = None
        self.faults: FaultPlan | None = None
        self.counters: Counters | None = None
        self.world: World | None = None
        self.runtime: RuntimeLike | None = None
        self.service: WSManService | None = None
        self.credentials: HostCredentials | None = None
        self.certificate: Certificate | None = None
        self.docker_api: DockerApiManager | None = None
        self.rdp: RdpEndpointManager | None = None
        self.ssh: SshServer | None = None
        self.oop_relay: RelayListener | None = None  # python -m hvsim.oop --state DIR connects here

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Simulator:
        with self._lock:
            if self._started:
                return self
            self.state_dir.mkdir(parents=True, exist_ok=True)
            make_private(self.state_dir, folder=True)
            self.clock = Clock(profile=self.profile, speedup=self.speedup)
            self.faults = FaultPlan(self.seed)
            self.counters = Counters()
            self.world = World.open(self.state_dir, self.clock, self.faults, self.counters, self.host_config)
            self.clock.set_capacity(Capacity.from_host(self.world.host))
            if self._runtime_override is None:
                load_handlers()
            self.runtime = self._runtime_override or Runtime(self.world)
            self.credentials = load_host_identity(self.state_dir)
            self.certificate = ensure_certificate(self.state_dir / "tls", self.credentials.hostname)
            NtlmUserStore.get().register(self.credentials)
            self.docker_api = DockerApiManager(self.world, self.host)
            self.rdp = RdpEndpointManager(self.world, self.host)
            ssh_keys = ensure_keys(self.state_dir / "ssh", self.credentials.hostname)
            host = _RuntimeHost(self.runtime, self.world, self._reconcile_endpoints)
            self.service = WSManService(host, self.counters, self.faults, machine=self.credentials.hostname)
            control = ControlService(self)
            export_keytab(self.kerberos)  # CredSSP's inner Kerberos reads the default keytab
            app = WSManApp(self.service, self.credentials, self.counters, self.faults, control.handle,
                           Mirror().handle, kerberos=self.kerberos, credssp=self.credssp)
            https = ListenerConfig("https", self.certificate.server_context(), allow_basic=self.basic_auth,
                                   require_encryption=False)
            http = ListenerConfig("http", None, allow_basic=False, require_encryption=True)
            try:
                self._listeners = [Listener(self.host, self._https_port, https, app),
                                   Listener(self.host, self._http_port, http, app)]
                # The powershell subsystem serves PSRP out-of-process over the channel (hvsim.oop).
                self.ssh = SshServer(self.host, self._ssh_port, ssh_keys, self.credentials.accepts_principal,
                                     self.serve_oop)
            except OSError:
                self._teardown()
                raise
            for listener in self._listeners:
                listener.start()
            self.docker_api.start()
            self.rdp.start()
            self.ssh.start()
            self.oop_relay = RelayListener(self.state_dir, self._serve_oop_session, self.host).start()
            self._started = True
            # What a client that reached this host over SSH or a local process cannot read from its URI.
            self.world.oem_strings = [f"labctl-sim-mirror=https://{self.host}:{self.https_port}{MIRROR_PATH}",
                                      f"labctl-sim-fingerprint={self.fingerprint}",
                                      f"labctl-sim-time={self.profile}:{self.speedup}"]
            self.write_endpoint()
            log.info("%s: %s", BANNER, self.https_uri)
            return self

    def _reconcile_endpoints(self) -> None:
        """After every pipeline: the Docker API and RDP listeners follow the NAT mappings and guests."""
        for manager in (self.docker_api, self.rdp):
            if manager is not None:
                manager.reconcile()

    def stop(self) -> None:
        with self._lock:
            if not self._started:
                return
            self._started = False
            self._teardown()

    def _teardown(self) -> None:
        if self.docker_api is not None:
            self.docker_api.stop()
        if self.rdp is not None:
            self.rdp.stop()
        if self.ssh is not None:
            self.ssh.stop()
            self.ssh = None
        if self.oop_relay is not None:
            self.oop_relay.stop()
            self.oop_relay = None
        for listener in self._listeners:
            try:
                listener.stop()
            except Exception as exc:
                log.warning("stopping a listener failed: %s", type(exc).__name__)
        self._listeners = []
        if self.service is not None:
            self.service.close()
        if self.world is not None:
            with self.world.lock:
                if self.world.dirty:
                    self.world.save()
        if self.credentials is not None:
            NtlmUserStore.get().unregister(self.credentials)

    # -- the public API an embedding process uses (labctl.app.connection): start, stop, endpoint, shells -

    def shells(self) -> list[dict[str, Any]]:
        """The open WinRM shells (id, owner, idle seconds); the control endpoint's GET /shells."""
        return self.service.shell_activity() if self.service is not None else []

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------ endpoints
    def _require(self) -> None:
        if not self._started:
            raise RuntimeError("the simulator is not running")

    @property
    def https_port(self) -> int:
        self._require()
        return self._listeners[0].port

    @property
    def http_port(self) -> int:
        self._require()
        return self._listeners[1].port

    @property
    def https_uri(self) -> str:
        return f"https://{self.host}:{self.https_port}{WSMAN_PATH}"

    @property
    def http_uri(self) -> str:
        return f"http://{self.host}:{self.http_port}{WSMAN_PATH}"

    @property
    def control_uri(self) -> str:
        return f"https://{self.host}:{self.https_port}{CONTROL_PATH}"

    @property
    def username(self) -> str:
        self._require()
        assert self.credentials is not None
        return self.credentials.principal

    @property
    def password(self) -> str:
        self._require()
        assert self.credentials is not None
        return self.credentials.password

    @property
    def cert_path(self) -> Path:
        self._require()
        assert self.certificate is not None
        return self.certificate.cert_path

    @property
    def fingerprint(self) -> str:
        self._require()
        assert self.certificate is not None
        return self.certificate.sha256

    @property
    def ssh_port(self) -> int:
        self._require()
        assert self.ssh is not None
        return self.ssh.port

    @property
    def ssh_uri(self) -> str:
        """``ssh://Administrator@127.0.0.1:PORT``: the local account's plain name (HOST\\user and user@HOST
        are accepted too, as Windows' sshd does, but a backslash does not belong in a URI)."""
        self._require()
        assert self.credentials is not None
        return f"ssh://{self.credentials.username}@{self.host}:{self.ssh_port}"

    @property
    def ssh_host_key_fingerprint(self) -> str:
        """OpenSSH's ``SHA256:...`` fingerprint of the host key, as ``ssh-keygen -lf`` prints it."""
        self._require()
        assert self.ssh is not None
        return self.ssh.host_fingerprint

    @property
    def ssh_client_key(self) -> Path:
        """The generated client private key (OpenSSH format, owner-only), the only one the server accepts."""
        self._require()
        assert self.ssh is not None
        return self.ssh.keys.client_key_path

    def serve_oop(self, reader: Reader, writer: Writer, *, username: str | None = None,
                  client_address: str = "127.0.0.1") -> None:
        """Serve PowerShell's out-of-process PSRP protocol (what ``pwsh -s`` speaks) on a byte stream.

        ``reader.readline() -> bytes`` (b"" at EOF), ``writer.write(bytes)`` + ``writer.flush()``. Returns when the
        client closes the runspace pool, at EOF, or after a packet PowerShell would treat as fatal (logged).
        Thread-safe; each call is one runspace pool counted like a WinRM shell (MaxShellsPerUser, pipelines).
        ``username`` is the session's user (default: the host's administrator).
        """
        self._serve_oop_session(reader, writer, username=username, client_address=client_address)

    def _serve_oop_session(self, reader: Reader, writer: Writer, *, username: str | None = None,
                           client_address: str = "127.0.0.1") -> OopProtocolError | None:
        self._require()
        assert self.service is not None
        session = Session(username=username or self.username, client_address=client_address)
        return OopSession(self.service, session, reader, writer).serve()

    @property
    def endpoint_file(self) -> Path:
        return self.state_dir / "endpoint.json"

    def endpoint(self) -> dict[str, Any]:
        """What endpoint.json holds."""
        return {
            "simulated": True,
            "description": BANNER,
            "hostname": self.credentials.hostname if self.credentials else None,
            "https_uri": self.https_uri,
            "http_uri": self.http_uri,
            "control_uri": self.control_uri,
            "username": self.username,
            "password": self.password,
            "certificate": str(self.cert_path),
            "sha256_fingerprint": self.fingerprint,
            "fingerprint": self.fingerprint,  # same value; the name labctl.app.connection reads
            "ssh_uri": self.ssh_uri,
            "ssh_host_key_fingerprint": self.ssh_host_key_fingerprint,
            "ssh_client_key": str(self.ssh_client_key),
            # python -m hvsim.oop --state DIR: the loopback relay port (its token is STATE/oop_relay.token, 0600)
            "oop_relay": {"port": self.oop_relay.port} if self.oop_relay is not None else None,
            "kerberos": ({"realm": self.kerberos.realm, "principal": f"{self.credentials.username}@"
                          f"{self.kerberos.realm}" if self.credentials else None}
                         if self.kerberos is not None else None),
            "credssp": self.credssp,
            "pid": os.getpid(),
            # How fast simulated time runs: a client that polls scales its intervals by it, as it would wait on a
            # real host (a 2 s poll is 2 simulated seconds).
            "time_profile": {"profile": self.profile, "speedup": self.speedup},
        }

    def write_endpoint(self) -> None:
        write_private_json(self.endpoint_file, self.endpoint())

    def __repr__(self) -> str:
        state = f"https={self.https_uri}" if self._started else "stopped"
        return f"Simulator({str(self.state_dir)!r}, {state}, SIMULATED)"
