"""The simulated guests' Docker Engine API over TLS, reachable on the host's NAT-mapped ports.

On a real lab, a guest's dockerd listens on ``tcp://0.0.0.0:2376`` with ``tlsverify`` and the host's WinNAT
forwards ``<host>:<ExternalPort>`` to ``<guest IP>:2376`` (Add-NetNatStaticMapping). The simulator plays
both: :class:`DockerApiManager` keeps one TLS listener on the simulator's bind address (127.0.0.1) per
NetNat static mapping whose InternalPort is 2376 and whose InternalIPAddress is reported by a running
guest whose Docker engine runs with TLS on 2376. It reconciles after every pipeline (Simulator hook) and
every few seconds (guests boot and stop as simulated time passes, without a pipeline).

The listener is ``tlsverify``: the daemon's certificate and key, and CERT_REQUIRED against the daemon's
``ca.pem``, all read from the guest's ``certs.d`` by the containers model. A client without a certificate
that CA signed is refused at the handshake, as dockerd refuses it.

It serves the subset of the Engine API the real ``docker`` CLI needs for ``version``, ``info``, ``ps`` and
``images``: ``/_ping`` (GET, HEAD), ``/v{api}/version``, ``/v{api}/info``, ``/v{api}/containers/json``
(``?all=1``), ``/v{api}/images/json``, and each without ``/v{api}`` (the daemon's own version), as dockerd
does. The docker 28 CLI sends ``HEAD /_ping`` (it negotiates the version from ``Api-Version``), then e.g.
``GET /v1.47/version``. Anything else is ``404 {"message": "page not found"}``, as dockerd answers an
unknown route; an API version outside 1.24..the daemon's is a 400 with dockerd's text. Every answer says
it is simulated where a person sees it. Bad input never kills a listener: it is answered or its
connection closed.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import re
import socket
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from hvsim.core.httpserver import TrackingHTTPServer, TrackingRequestHandler
from hvsim.core.portmap import RECONCILE_INTERVAL, MappedPortManager, guest_mappings
from hvsim.world import World

log = logging.getLogger(__name__)

DOCKER_TLS_PORT = 2376
SIMULATED = "SIMULATED by labctl"
SIM_LABEL = "labctl.simulated=true"
MIN_API_VERSION = "1.24"  # dockerd's minimum (the oldest API a Windows daemon serves)
HANDSHAKE_TIMEOUT = 10.0
IDLE_TIMEOUT = 60.0
MAX_BODY = 1024 * 1024  # nothing served takes a body; a bigger one is refused
MAX_CONNECTIONS = 128

_API_PREFIX = re.compile(r"^/v(\d+(?:\.\d+)?)(/.*)$")


class DockerEngineLike(Protocol):
    """What the containers model (hvsim.docker.models.engine.DockerEngine) offers this module."""

    @property
    def version(self) -> str: ...
    @property
    def api_version(self) -> str: ...
    @property
    def running(self) -> bool: ...
    @property
    def os_build(self) -> int: ...
    @property
    def tcp_port(self) -> int | None: ...
    @property
    def tls(self) -> tuple[str, str, str] | None: ...

    def version_info(self) -> dict[str, Any]: ...
    def info(self) -> dict[str, Any]: ...
    def list_containers(self, all: bool) -> list[dict[str, Any]]: ...
    def list_images(self) -> list[dict[str, Any]]: ...


EngineLookup = Callable[[World, Any], "DockerEngineLike | None"]
"""(world, vm) -> the VM's Docker engine, or None when Docker is not installed."""


def default_lookup(world: World, vm: Any) -> DockerEngineLike | None:
    """The containers model's ``docker_engine``; None while that model is not there (nothing to serve)."""
    try:
        module = importlib.import_module("hvsim.docker.models.engine")
    except ImportError:
        return None
    lookup = getattr(module, "docker_engine", None)
    if lookup is None:
        return None
    engine: DockerEngineLike | None = lookup(world, vm)
    return engine


def _api_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in str(version).split("."))
    except ValueError:
        return (0,)


# ---------------------------------------------------------------------------------------- answers
def mark_version(data: dict[str, Any], vm_name: str) -> dict[str, Any]:
    """/version: the platform name says SIMULATED (``docker version`` prints it as "Server: ...")."""
    out = dict(data)
    platform = dict(out.get("Platform") or {})
    name = str(platform.get("Name") or "Docker Engine - Community")
    if SIMULATED not in name:
        platform["Name"] = f"{name} ({SIMULATED}, guest {vm_name})"
    out["Platform"] = platform
    return out


def mark_info(data: dict[str, Any], vm_name: str) -> dict[str, Any]:
    """/info: Name is the guest, OperatingSystem says SIMULATED, Labels carry labctl.simulated=true."""
    out = dict(data)
    out.setdefault("Name", vm_name)
    os_name = str(out.get("OperatingSystem") or "Windows Server")
    if SIMULATED not in os_name:
        out["OperatingSystem"] = f"{os_name} ({SIMULATED})"
    labels = [str(label) for label in (out.get("Labels") or [])]
    if SIM_LABEL not in labels:
        labels.append(SIM_LABEL)
    out["Labels"] = labels
    return out


def _mark_labels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Containers and images carry the simulated label (``docker ps --format '{{.Labels}}'`` shows it)."""
    marked = []
    for item in items:
        entry = dict(item)
        labels = dict(entry.get("Labels") or {})
        labels.setdefault("labctl.simulated", "true")
        entry["Labels"] = labels
        marked.append(entry)
    return marked


def _truthy(values: list[str]) -> bool:
    return bool(values) and values[-1].strip().lower() in ("1", "true", "yes")


# ---------------------------------------------------------------------------------------- listeners
@dataclass(frozen=True)
class _Target:
    """What one mapped port leads to; a change of any field restarts the listener."""

    port: int
    vm_id: str
    vm_name: str
    internal_ip: str
    tls: tuple[str, str, str]


def _server_context(tls: tuple[str, str, str]) -> ssl.SSLContext:
    """The daemon's tlsverify context: its certificate, and client certificates its CA signed only."""
    ca_pem, cert_pem, key_pem = tls
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # dockerd's default minimum
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=ca_pem)
    # load_cert_chain reads files only: a private temporary directory, removed at once.
    with tempfile.TemporaryDirectory(prefix="labctl-sim-dockerd-") as tmp:
        os.chmod(tmp, 0o700)
        cert_file, key_file = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        for path, text in ((cert_file, cert_pem), (key_file, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


class _Server(TrackingHTTPServer):
    request_queue_size = 64
    max_connections = MAX_CONNECTIONS

    def __init__(self, address: tuple[str, int], target: _Target, ctx: ssl.SSLContext,
                 manager: DockerApiManager) -> None:
        self.target = target
        self.tls_context = ctx
        self.manager = manager
        super().__init__(address, _Handler)


class _Handler(TrackingRequestHandler):
    timeout = IDLE_TIMEOUT
    server: _Server

    def setup(self) -> None:
        sock: socket.socket = self.request
        # The handshake runs in this connection's thread, so a silent client cannot stall accept().
        sock.settimeout(HANDSHAKE_TIMEOUT)
        tls_sock = self.server.tls_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        try:
            tls_sock.do_handshake()
        except (ssl.SSLError, OSError):
            self._refuse(tls_sock)
            raise
        tls_sock.settimeout(IDLE_TIMEOUT)
        self.track(tls_sock)
        self._engine_headers: list[tuple[str, str]] = []
        super().setup()

    @staticmethod
    def _refuse(tls_sock: ssl.SSLSocket) -> None:
        """End a refused handshake so the client reads the TLS alert ("certificate required").

        With TLS 1.3 the client sends its request right after its Finished; closing with that data unread
        makes the kernel send a reset that can overtake the alert. Half-close and drain first, as Go does.
        """
        with contextlib.suppress(OSError, ValueError):
            tls_sock.shutdown(socket.SHUT_WR)  # drops the TLS layer too: recv below reads raw bytes
            tls_sock.settimeout(1.0)
            budget = 64 * 1024  # a client that keeps sending is cut off
            while budget > 0:
                chunk = tls_sock.recv(4096)
                if not chunk:
                    break
                budget -= len(chunk)
        with contextlib.suppress(OSError):
            tls_sock.close()

    def version_string(self) -> str:
        return "Docker (windows; labctl SIMULATED)"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("docker API %s %s", self.address_string(), format % args)

    # ------------------------------------------------------------------ responses
    def _reply(self, status: int, body: bytes = b"", content_type: str = "application/json",
               extra: list[tuple[str, str]] | None = None, head: bool = False) -> None:
        self.send_response(status)
        for key, value in [*self._engine_headers, *(extra or [])]:
            self.send_header(key, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed requests (http.server's own checks): a JSON error and an HTTP/1.1 status line, as Go's
        net/http answers, instead of http.server's HTML page (and no bare HTTP/0.9 body for a junk line)."""
        self.request_version = "HTTP/1.1"
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.send_response(code)
            body = json.dumps({"message": message or HTTPStatus(code).phrase}).encode("utf-8") + b"\n"
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._reply(status, json.dumps(value, default=str).encode("utf-8") + b"\n")

    def _message(self, status: int, message: str) -> None:
        self._json(status, {"message": message})

    # ------------------------------------------------------------------ methods
    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def _serve(self, method: str) -> None:
        try:
            if not self._drain_body():
                return
            self._route(method)
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError):
            self.close_connection = True
        except Exception as exc:  # one bad request must not take the listener down
            log.error("the simulated Docker API failed on %s %s: %s", method, self.path[:200],
                      type(exc).__name__, exc_info=log.isEnabledFor(logging.DEBUG))
            with contextlib.suppress(OSError):
                self._message(500, f"internal error of the simulated Docker engine ({SIMULATED})")
            self.close_connection = True

    def _drain_body(self) -> bool:
        """Read (and ignore) a request body so the connection stays in step; refuse what cannot be read."""
        if self.headers.get("Transfer-Encoding"):
            # Nothing served takes a body; answer and close instead of parsing chunks.
            self.close_connection = True
            self._message(404, "page not found")
            return False
        length = self.content_length()
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self._message(400 if length < 0 else 413, "bad request body")
            return False
        if length:
            data = self.rfile.read(length)
            if len(data) != length:
                self.close_connection = True
                return False
        return True

    def _route(self, method: str) -> None:
        manager = self.server.manager
        target = self.server.target
        found = manager.engine_for(target)
        if found is None:
            # The guest stopped or dockerd went away since the last reconcile: refuse like a closed port.
            self.close_connection = True
            return
        engine, _vm_name = found
        api = str(engine.api_version)
        self._engine_headers = [("Api-Version", api), ("Docker-Experimental", "false"), ("Ostype", "windows"),
                                ("Server", f"Docker/{engine.version} (windows) [{SIMULATED}]")]
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        query = parse_qs(parts.query, keep_blank_values=True)

        version = None
        m = _API_PREFIX.match(path)
        if m:
            version, path = m.group(1), m.group(2).rstrip("/") or "/"
        if path == "/_ping" and method in ("GET", "HEAD"):
            no_cache = [("Cache-Control", "no-cache, no-store, must-revalidate"), ("Pragma", "no-cache")]
            self._reply(200, b"OK", "text/plain; charset=utf-8", no_cache, head=method == "HEAD")
            return
        if method != "GET" or path not in ("/version", "/info", "/containers/json", "/images/json"):
            self._message(404, "page not found")
            return
        if version is not None:  # unversioned paths get the daemon's own version, as dockerd serves them
            if _api_tuple(version) > _api_tuple(api):
                self._message(400, f"client version {version} is too new. Maximum supported API version is {api}")
                return
            if _api_tuple(version) < _api_tuple(MIN_API_VERSION):
                self._message(400, f"client version {version} is too old. Minimum supported API version is "
                                   f"{MIN_API_VERSION}, please upgrade your client to a newer version")
                return
        value = manager.answer(target, path, _truthy(query.get("all", [])))
        if value is None:
            self.close_connection = True
            return
        self._json(200, value)


class _Listener:
    def __init__(self, host: str, target: _Target, manager: DockerApiManager) -> None:
        self.target = target
        self.server = _Server((host, target.port), target, _server_context(target.tls), manager)
        self.thread = self.server.serve_in_thread(f"sim-dockerd-{target.port}", 0.05)

    def stop(self) -> None:
        self.server.stop(self.thread)


class DockerApiManager(MappedPortManager[_Target]):
    """One TLS listener per NAT mapping of a running guest's TLS Docker engine (see the module doc)."""

    label = "Docker API"
    bind_errors = (OSError, ssl.SSLError, ValueError)  # port taken, or bad certificates in the guest

    def __init__(self, world: World, host: str = "127.0.0.1", lookup: EngineLookup | None = None,
                 interval: float = RECONCILE_INTERVAL) -> None:
        super().__init__(world, host, interval)
        self.lookup: EngineLookup = lookup or default_lookup

    def open(self, target: _Target) -> _Listener:
        return _Listener(self.host, target, self)

    def wanted(self) -> dict[int, _Target]:
        world = self.world
        wanted: dict[int, _Target] = {}
        with world.lock:
            for m in guest_mappings(world, DOCKER_TLS_PORT):
                engine = self.lookup(world, m.vm)
                if engine is None or not engine.running or engine.tcp_port != DOCKER_TLS_PORT:
                    continue
                tls = engine.tls
                if tls is None:
                    continue
                wanted[m.external_port] = _Target(m.external_port, str(m.vm.id), str(m.vm.name), m.internal_ip,
                                                  (str(tls[0]), str(tls[1]), str(tls[2])))
        return wanted

    # ------------------------------------------------------------------ requests
    def engine_for(self, target: _Target) -> tuple[DockerEngineLike, str] | None:
        """The engine behind a listener now, or None when it no longer runs."""
        world = self.world
        with world.lock:
            vm = world.vms.get(target.vm_id)
            if vm is None or getattr(vm, "state", None) != "Running":
                return None
            engine = self.lookup(world, vm)
            if engine is None or not engine.running:
                return None
            return engine, str(vm.name)

    def answer(self, target: _Target, path: str, all_containers: bool) -> Any:
        """The JSON value of one Engine API GET, marked as simulated; None when the engine went away."""
        world = self.world
        with world.lock:
            found = self.engine_for(target)
            if found is None:
                return None
            engine, vm_name = found
            if path == "/version":
                return mark_version(engine.version_info(), vm_name)
            if path == "/info":
                return mark_info(engine.info(), vm_name)
            if path == "/containers/json":
                return _mark_labels(engine.list_containers(all_containers))
            if path == "/images/json":
                return _mark_labels(engine.list_images())
        return None
