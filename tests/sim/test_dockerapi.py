"""The simulated guests' Docker Engine API over TLS, driven by the real docker CLI and by raw TLS/HTTP.

What the docker 28 CLI sends (seen with the server's debug log): ``HEAD /_ping`` (it negotiates the API
version from the ``Api-Version`` header), then ``GET /v1.47/version`` (``docker version``),
``GET /v1.47/info`` (``docker info``), ``GET /v1.47/containers/json[?all=1]`` (``docker ps [-a]``) and
``GET /v1.47/images/json`` (``docker images``).

The guest's engine is a fake implementing the containers model's interface (``docker_engine(world, vm)``),
so these tests pin the listener, not the containers model.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from guest_world import make_vm
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from hvsim.docker import mirror as mirror_mod
from hvsim.server import Simulator
from labctl.docker.pki import CertPair, LabPki, create_ca, issue_client_cert

GUEST_IP = "10.0.0.5"  # the VALID answer file's static address
VM = "CH01"
DOCKER = shutil.which("docker")
needs_docker = pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed")


@dataclass
class FakeEngine:
    """The containers model's DockerEngine interface, with Docker Engine API shapes of a WS2022 daemon."""

    tls: tuple[str, str, str] | None
    version: str = "27.3.1"
    api_version: str = "1.47"
    running: bool = True
    os_build: int = 20348
    tcp_port: int | None = 2376
    containers: list[dict[str, Any]] = field(default_factory=list)

    def version_info(self) -> dict[str, Any]:
        kernel = f"10.0 {self.os_build} ({self.os_build}.1.amd64fre.fe_release.210507-1500)"
        details = {"ApiVersion": self.api_version, "Arch": "amd64", "BuildTime": "2024-09-20T11:41:19.000000000+00:00",
                   "Experimental": "false", "GitCommit": "41ca978", "GoVersion": "go1.22.7",
                   "KernelVersion": kernel, "MinAPIVersion": "1.24", "Os": "windows"}
        return {"Platform": {"Name": "Docker Engine - Community"},
                "Components": [{"Name": "Engine", "Version": self.version, "Details": details}],
                "Version": self.version, "ApiVersion": self.api_version, "MinAPIVersion": "1.24",
                "GitCommit": "41ca978", "GoVersion": "go1.22.7", "Os": "windows", "Arch": "amd64",
                "KernelVersion": kernel, "BuildTime": "2024-09-20T11:41:19.000000000+00:00"}

    def info(self) -> dict[str, Any]:
        running = sum(1 for c in self.containers if c["State"] == "running")
        return {"ID": "4c2f6a0e-0000-4000-8000-000000000001", "Containers": len(self.containers),
                "ContainersRunning": running, "ContainersPaused": 0,
                "ContainersStopped": len(self.containers) - running, "Images": 1, "Driver": "windowsfilter",
                "DriverStatus": [], "Plugins": {"Volume": ["local"], "Network": ["nat", "transparent"],
                                                "Log": ["json-file"]},
                "MemoryLimit": False, "SwapLimit": False, "IPv4Forwarding": True, "Debug": False, "NFd": -1,
                "NGoroutines": 30, "SystemTime": "2026-11-29T12:00:00.0000000Z", "LoggingDriver": "json-file",
                "KernelVersion": f"10.0 {self.os_build} (20348.1.amd64fre.fe_release.210507-1500)",
                "OperatingSystem": "Windows Server 2022 Datacenter Version 2009 (OS Build 20348.2762)",
                "OSVersion": f"10.0.{self.os_build}", "OSType": "windows", "Architecture": "x86_64",
                "IndexServerAddress": "https://index.docker.io/v1/", "NCPU": 2, "MemTotal": 4294967296,
                "DockerRootDir": "C:\\ProgramData\\docker", "Name": VM, "Labels": [], "ExperimentalBuild": False,
                "ServerVersion": self.version, "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                                                         "ControlAvailable": False, "Error": "",
                                                         "RemoteManagers": None},
                "LiveRestoreEnabled": False, "Isolation": "process", "SecurityOptions": None, "Warnings": None}

    def list_containers(self, all: bool) -> list[dict[str, Any]]:
        return [c for c in self.containers if all or c["State"] == "running"]

    def list_images(self) -> list[dict[str, Any]]:
        return [{"Containers": -1, "Created": 1730000000, "Id": "sha256:" + "ab" * 32, "Labels": None,
                 "ParentId": "", "RepoDigests": None, "RepoTags": ["mcr.microsoft.com/windows/servercore:ltsc2022"],
                 "SharedSize": -1, "Size": 5100000000}]


def _container(name: str, state: str) -> dict[str, Any]:
    return {"Id": (name * 64)[:64], "Names": [f"/{name}"], "Image": "mcr.microsoft.com/windows/servercore:ltsc2022",
            "ImageID": "sha256:" + "ab" * 32, "Command": "cmd /c ping -t localhost", "Created": 1764400000,
            "Ports": [], "Labels": {}, "State": state, "Status": "Up 5 minutes" if state == "running" else
            "Exited (0) 2 minutes ago", "HostConfig": {"NetworkMode": "nat"}, "NetworkSettings": {"Networks": {}},
            "Mounts": []}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DockerLab:
    """A simulator with one running guest whose fake engine listens with TLS, and the lab PKI."""

    sim: Simulator
    pki: LabPki
    engine: FakeEngine
    vm: Any
    port: int
    home: Path

    @property
    def client(self) -> Path:
        return self.pki.client_dir()

    def map_port(self, port: int | None = None, internal_port: int = 2376, ip: str = GUEST_IP) -> int:
        port = port or free_port()
        assert self.sim.world is not None
        with self.sim.world.lock:
            nat = self.sim.world.network.nats[0]
            nat.static_mappings.append({"id": len(nat.static_mappings), "protocol": "TCP", "external_ip": "0.0.0.0",
                                        "external_port": port, "internal_ip": ip, "internal_port": internal_port})
        return port

    def unmap(self) -> None:
        assert self.sim.world is not None
        with self.sim.world.lock:
            self.sim.world.network.nats[0].static_mappings.clear()

    def reconcile(self) -> dict[int, str]:
        assert self.sim.docker_api is not None
        self.sim.docker_api.reconcile()
        return self.sim.docker_api.ports

    def docker(self, *args: str, cert_dir: Path | None = None, tls: bool = True,
               timeout: float = 30) -> subprocess.CompletedProcess[str]:
        assert DOCKER is not None
        cmd = [DOCKER, "-H", f"tcp://127.0.0.1:{self.port}"]
        if tls:
            d = cert_dir or self.client
            cmd[1:1] = ["--tlsverify", f"--tlscacert={d / 'ca.pem'}", f"--tlscert={d / 'cert.pem'}",
                        f"--tlskey={d / 'key.pem'}"]
        # A private HOME/DOCKER_CONFIG: no user configuration, context or credential helper takes part.
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.home), "DOCKER_CONFIG": str(self.home / ".docker")}
        return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout, env=env)


def _start_lab(tmp_path: Path) -> Iterator[DockerLab]:
    pki = LabPki(tmp_path / "lab" / "docker", "t")
    server = pki.server(VM, [VM.lower(), "localhost"], ["127.0.0.1", GUEST_IP])
    engine = FakeEngine((pki.ca().cert_pem, server.cert_pem, server.key_pem.reveal()),
                        containers=[_container("web", "running"), _container("old", "exited")])
    with Simulator(tmp_path / "state", profile="instant") as sim:
        assert sim.world is not None and sim.docker_api is not None
        with sim.world.lock:
            vm = make_vm(sim.world, VM)
            sim.world.network.new_nat("LabNat", "10.0.0.0/24")
        sim.docker_api.lookup = lambda world, v: engine if v.name == VM else None
        home = tmp_path / "home"
        home.mkdir()
        lab = DockerLab(sim, pki, engine, vm, 0, home)
        lab.port = lab.map_port()
        assert lab.reconcile() == {lab.port: VM}
        yield lab


@pytest.fixture
def dlab(tmp_path: Path) -> Iterator[DockerLab]:
    yield from _start_lab(tmp_path)


# ------------------------------------------------------------------------------ raw TLS / HTTP
def client_context(lab: DockerLab, pair: CertPair | None = None, tmp: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(lab.pki.ca_path))
    if pair is None:
        ctx.load_cert_chain(str(lab.client / "cert.pem"), str(lab.client / "key.pem"))
    elif tmp is not None:
        (tmp / "c.pem").write_text(pair.cert_pem)
        (tmp / "k.pem").write_text(pair.key_pem.reveal())
        ctx.load_cert_chain(str(tmp / "c.pem"), str(tmp / "k.pem"))
    return ctx


def request(lab: DockerLab, method: str, path: str, ctx: ssl.SSLContext | None = None,
            body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", lab.port, context=ctx or client_context(lab), timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def refused(lab: DockerLab, ctx: ssl.SSLContext) -> bool:
    """True when the server ends the TLS session instead of answering (TLS 1.3 reports it on first read)."""
    try:
        request(lab, "GET", "/_ping", ctx)
    except (ssl.SSLError, ConnectionError, http.client.RemoteDisconnected, OSError):
        return True
    return False


def test_ping_get_and_head_negotiate_the_api_version(dlab: DockerLab) -> None:
    for method in ("GET", "HEAD"):
        status, headers, body = request(dlab, method, "/_ping")
        assert status == 200
        assert headers["api-version"] == "1.47"
        assert headers["ostype"] == "windows"
        assert headers["docker-experimental"] == "false"
        assert "SIMULATED" in headers["server"]
        assert body == (b"OK" if method == "GET" else b"")
    assert request(dlab, "GET", "/v1.47/_ping")[0] == 200


def test_version_info_and_lists_are_marked_simulated(dlab: DockerLab) -> None:
    for path in ("/version", "/v1.47/version", "/v1.24/version"):
        status, _, body = request(dlab, "GET", path)
        assert status == 200
        data = json.loads(body)
        assert data["ApiVersion"] == "1.47" and "SIMULATED by labctl" in data["Platform"]["Name"]
    info = json.loads(request(dlab, "GET", "/v1.47/info")[2])
    assert json.loads(request(dlab, "GET", "/info")[2]) == info  # unversioned: the daemon's own version
    assert info["Name"] == VM
    assert info["OperatingSystem"].endswith("(SIMULATED by labctl)")
    assert "labctl.simulated=true" in info["Labels"]
    running = json.loads(request(dlab, "GET", "/v1.47/containers/json")[2])
    every = json.loads(request(dlab, "GET", "/v1.47/containers/json?all=1")[2])
    assert [c["Names"] for c in running] == [["/web"]]
    assert len(every) == 2 and all(c["Labels"]["labctl.simulated"] == "true" for c in every)
    images = json.loads(request(dlab, "GET", "/v1.47/images/json")[2])
    assert images[0]["RepoTags"] == ["mcr.microsoft.com/windows/servercore:ltsc2022"]


def test_unknown_paths_and_methods_are_404_page_not_found(dlab: DockerLab) -> None:
    for method, path in (("GET", "/nope"), ("GET", "/v1.47/containers/abc/json"), ("POST", "/v1.47/containers/create"),
                         ("DELETE", "/v1.47/images/x"), ("GET", "/v1.47"), ("GET", "/v1.47/")):
        status, headers, body = request(dlab, method, path, body=b"{}" if method == "POST" else None)
        assert status == 404, (method, path)
        assert json.loads(body) == {"message": "page not found"}
        assert headers["content-type"] == "application/json"


def test_api_versions_outside_the_daemon_range_are_refused(dlab: DockerLab) -> None:
    status, _, body = request(dlab, "GET", "/v1.50/version")
    assert status == 400 and "too new. Maximum supported API version is 1.47" in json.loads(body)["message"]
    status, _, body = request(dlab, "GET", "/v1.12/info")
    assert status == 400 and "too old" in json.loads(body)["message"]


def test_bad_input_never_kills_the_listener(dlab: DockerLab) -> None:
    ctx = client_context(dlab)
    for junk in (b"\x00\x01garbage\r\n\r\n", b"GET /_ping HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                 b"GET /_ping HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n",
                 b"POST /v1.47/build HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                 b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", dlab.port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(junk)
            try:
                answer = tls.recv(200)
            except (ssl.SSLError, OSError):
                answer = b""
            assert answer == b"" or answer.startswith(b"HTTP/1."), junk[:40]
    # A client that connects and says nothing does not block others either.
    with socket.create_connection(("127.0.0.1", dlab.port), timeout=5):
        assert request(dlab, "GET", "/_ping")[0] == 200


def test_a_client_without_a_certificate_is_refused_at_the_handshake(dlab: DockerLab) -> None:
    ctx = ssl.create_default_context(cafile=str(dlab.pki.ca_path))  # trusts the daemon, presents nothing
    assert refused(dlab, ctx)


def test_a_client_certificate_of_another_ca_is_refused(dlab: DockerLab, tmp_path: Path) -> None:
    stranger = issue_client_cert(create_ca("someone else's CA"))
    assert refused(dlab, client_context(dlab, stranger, tmp_path))
    # The same CA's client certificate is accepted (the refusal is about the issuer, not the TLS setup).
    own = issue_client_cert(dlab.pki.ca())
    assert not refused(dlab, client_context(dlab, own, tmp_path))


def test_the_server_certificate_names_localhost_and_the_loopback_address(dlab: DockerLab) -> None:
    ctx = client_context(dlab)  # create_default_context checks the host name against the SANs
    for host in ("127.0.0.1", "localhost"):
        conn = http.client.HTTPSConnection(host, dlab.port, context=ctx, timeout=10)
        conn.request("GET", "/_ping")
        assert conn.getresponse().status == 200
        conn.close()


# ------------------------------------------------------------------------------ the real docker CLI
@needs_docker
def test_docker_version_info_ps_and_images_with_the_real_cli(dlab: DockerLab) -> None:
    version = dlab.docker("version")
    assert version.returncode == 0, version.stderr
    assert "Server: Docker Engine - Community (SIMULATED by labctl, guest CH01)" in version.stdout
    assert "1.47 (minimum version 1.24)" in version.stdout
    assert "windows/amd64" in version.stdout

    info = dlab.docker("info")
    assert info.returncode == 0, info.stderr
    assert "Name: CH01" in info.stdout
    assert "(SIMULATED by labctl)" in info.stdout and "labctl.simulated=true" in info.stdout
    assert "OSType: windows" in info.stdout

    ps = dlab.docker("ps")
    assert ps.returncode == 0, ps.stderr
    assert "web" in ps.stdout and "old" not in ps.stdout
    ps_all = dlab.docker("ps", "-a", "--format", "{{.Names}} {{.Label \"labctl.simulated\"}}")
    assert ps_all.returncode == 0, ps_all.stderr
    assert sorted(ps_all.stdout.split("\n")[:2]) == ["old true", "web true"]

    images = dlab.docker("images")
    assert images.returncode == 0, images.stderr
    assert "mcr.microsoft.com/windows/servercore" in images.stdout and "ltsc2022" in images.stdout


@needs_docker
def test_the_real_cli_without_a_client_certificate_is_refused(dlab: DockerLab, tmp_path: Path) -> None:
    only_ca = tmp_path / "only-ca"
    only_ca.mkdir()
    shutil.copy(dlab.client / "ca.pem", only_ca / "ca.pem")
    r = dlab.docker("--tlsverify", f"--tlscacert={only_ca / 'ca.pem'}", "version", tls=False, timeout=30)
    assert r.returncode != 0
    assert "certificate" in r.stderr.lower() or "tls" in r.stderr.lower(), r.stderr

    plain = dlab.docker("version", tls=False, timeout=30)  # no TLS at all: dockerd's TLS port refuses it
    assert plain.returncode != 0 and "Server: Docker Engine" not in plain.stdout


@needs_docker
def test_the_real_cli_with_a_certificate_of_another_ca_is_refused(dlab: DockerLab, tmp_path: Path) -> None:
    other = LabPki(tmp_path / "other" / "docker", "other")
    foreign = other.client_dir()
    mixed = tmp_path / "mixed"
    mixed.mkdir(mode=0o700)
    shutil.copy(dlab.client / "ca.pem", mixed / "ca.pem")  # trusts the right daemon ...
    shutil.copy(foreign / "cert.pem", mixed / "cert.pem")  # ... but presents a stranger's certificate
    shutil.copy(foreign / "key.pem", mixed / "key.pem")
    r = dlab.docker("ps", cert_dir=mixed)
    assert r.returncode != 0
    assert "certificate" in r.stderr.lower() or "tls" in r.stderr.lower(), r.stderr

    wrong_ca = dlab.docker("ps", cert_dir=foreign)  # the daemon's certificate is not signed by that CA
    assert wrong_ca.returncode != 0 and "certificate" in wrong_ca.stderr.lower()


# ------------------------------------------------------------------------------ listeners follow the host
def _port_closed(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except OSError:
        return True


def test_listeners_follow_mappings_engines_and_vm_state(dlab: DockerLab) -> None:
    assert dlab.sim.world is not None
    second = dlab.map_port()
    assert dlab.reconcile() == {dlab.port: VM, second: VM}
    # A mapping to another port of the guest, or to an address no guest has, opens nothing.
    dlab.map_port(internal_port=5985)
    dlab.map_port(ip="10.0.0.99")
    assert set(dlab.reconcile()) == {dlab.port, second}

    dlab.engine.running = False  # the docker service stopped
    assert dlab.reconcile() == {}
    assert _port_closed(dlab.port) and _port_closed(second)
    dlab.engine.running = True
    dlab.engine.tls = None  # daemon.json without tcp/TLS
    assert dlab.reconcile() == {}
    pair = dlab.pki.server(VM, ["localhost"], ["127.0.0.1"])
    dlab.engine.tls = (dlab.pki.ca().cert_pem, pair.cert_pem, pair.key_pem.reveal())
    assert set(dlab.reconcile()) == {dlab.port, second}
    assert request(dlab, "GET", "/_ping")[0] == 200

    with dlab.sim.world.lock:
        dlab.vm.state = "Off"  # as Stop-VM -TurnOff leaves it
    assert dlab.reconcile() == {}
    with dlab.sim.world.lock:
        dlab.vm.state = "Running"
    dlab.unmap()
    assert dlab.reconcile() == {}
    assert _port_closed(dlab.port)


def test_a_request_after_the_engine_stopped_is_not_answered(dlab: DockerLab) -> None:
    ctx = client_context(dlab)
    conn = http.client.HTTPSConnection("127.0.0.1", dlab.port, context=ctx, timeout=10)
    conn.request("GET", "/_ping")
    assert conn.getresponse().read() == b"OK"
    dlab.engine.running = False  # between two requests on one keep-alive connection, before a reconcile
    conn.request("GET", "/v1.47/info")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        conn.getresponse()
    conn.close()


def test_new_daemon_certificates_restart_the_listener(dlab: DockerLab) -> None:
    before = ssl.get_server_certificate(("127.0.0.1", dlab.port))
    pair = dlab.pki.server(VM, ["localhost", "renamed"], ["127.0.0.1", GUEST_IP])
    dlab.engine.tls = (dlab.pki.ca().cert_pem, pair.cert_pem, pair.key_pem.reveal())
    dlab.reconcile()
    after = ssl.get_server_certificate(("127.0.0.1", dlab.port))
    assert before != after and after.strip() == pair.cert_pem.strip()


def test_a_taken_port_is_logged_and_retried(dlab: DockerLab, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        taken = int(blocker.getsockname()[1])
        dlab.map_port(taken)
        assert taken not in dlab.reconcile()
        assert "cannot serve the simulated Docker API" in caplog.text
    assert taken in dlab.reconcile()


def test_the_mapping_made_over_winrm_opens_the_listener_before_the_answer(
        dlab: DockerLab, wsman_for: Callable[..., WSMan]) -> None:
    """The Simulator hook: a pipeline that adds the NAT mapping leaves the port open when it returns."""
    port = free_port()
    pool = RunspacePool(wsman_for(dlab.sim))
    pool.open()
    try:
        ps = PowerShell(pool)
        ps.add_cmdlet("Add-NetNatStaticMapping").add_parameters({
            "NatName": "LabNat", "Protocol": "TCP", "ExternalIPAddress": "0.0.0.0", "ExternalPort": port,
            "InternalIPAddress": GUEST_IP, "InternalPort": 2376})
        added = ps.invoke()
        assert not ps.had_errors, ps.streams.error
        assert dlab.sim.docker_api is not None and port in dlab.sim.docker_api.ports
        ps = PowerShell(pool)
        ps.add_cmdlet("Remove-NetNatStaticMapping").add_parameters({
            "NatName": "LabNat", "StaticMappingID": added[0].adapted_properties["StaticMappingID"],
            "Confirm": False})
        ps.invoke()
        assert not ps.had_errors, ps.streams.error
        assert port not in dlab.sim.docker_api.ports
    finally:
        pool.close()


def test_the_timer_catches_changes_without_a_pipeline(dlab: DockerLab) -> None:
    api = dlab.sim.docker_api
    assert api is not None
    api.stop()  # restarted with a short period (the default is 2 s)
    api.interval = 0.05
    api.start()
    assert dlab.port in api.ports
    dlab.engine.running = False
    deadline = time.monotonic() + 5
    while dlab.port in dlab.sim.docker_api.ports and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dlab.port not in dlab.sim.docker_api.ports


def test_stopping_the_simulator_closes_the_docker_listeners(tmp_path: Path) -> None:
    gen = _start_lab(tmp_path)
    lab = next(gen)
    port = lab.port
    gen.close()  # leaves the Simulator's with-block: stop()
    assert _port_closed(port)
    assert lab.sim.docker_api is not None and lab.sim.docker_api.ports == {}
    lab.sim.docker_api.reconcile()  # a late pipeline's hook does not reopen anything
    assert _port_closed(port)


# ------------------------------------------------------------------------------ the download mirror
ZIP = b"PK\x05\x06" + b"\x00" * 18  # an empty zip: the bytes are the containers model's business


@pytest.fixture
def mirror_sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    asked: list[str] = []

    def fake_zip(version: str) -> bytes:
        asked.append(version)
        return ZIP + version.encode()

    monkeypatch.setattr(mirror_mod, "default_zip_source", fake_zip)
    with Simulator(tmp_path / "state", profile="instant") as sim:
        sim.asked = asked  # type: ignore[attr-defined]
        yield sim


def _get(sim: Simulator, path: str, method: str = "GET") -> tuple[int, str, bytes]:
    ctx = ssl.create_default_context(cafile=str(sim.cert_path))
    req = urllib.request.Request(f"https://127.0.0.1:{sim.https_port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def test_mirror_serves_the_zip_and_its_digest_without_authentication(mirror_sim: Simulator) -> None:
    import hashlib

    assert mirror_sim.counters is not None
    before = mirror_sim.counters.snapshot().get("http_requests", 0)
    status, ctype, body = _get(mirror_sim, "/labctl-sim/mirror/docker/docker-27.3.1.zip")
    assert status == 200 and ctype == "application/zip" and body == ZIP + b"27.3.1"
    status, ctype, digest = _get(mirror_sim, "/labctl-sim/mirror/docker/docker-27.3.1.zip.sha256")
    assert status == 200 and ctype.startswith("text/plain")
    assert digest.decode() == f"{hashlib.sha256(body).hexdigest()}  docker-27.3.1.zip\n"
    assert mirror_sim.asked == ["27.3.1"]  # type: ignore[attr-defined]  # made once, then cached
    assert _get(mirror_sim, "/labctl-sim/mirror/docker/docker-28.0.4.zip")[2] == ZIP + b"28.0.4"
    # Downloads are not WinRM traffic: the counters the tests budget stay as they were.
    assert mirror_sim.counters.snapshot().get("http_requests", 0) == before


def test_mirror_refuses_what_it_does_not_serve(mirror_sim: Simulator) -> None:
    for path in ("/labctl-sim/mirror/docker/docker-latest.zip", "/labctl-sim/mirror/docker/docker-1.2.zip",
                 "/labctl-sim/mirror/other/thing", "/labctl-sim/mirror/docker/../../control"):
        status, ctype, body = _get(mirror_sim, path)
        assert status == 404 and ctype == "application/json", path
        assert "mirror" in json.loads(body)["message"]
    assert _get(mirror_sim, "/labctl-sim/mirror/docker/docker-27.3.1.zip", "POST")[0] == 405
    # The plain-HTTP listener has no mirror (labctl pins the HTTPS certificate for downloads).
    conn = http.client.HTTPConnection("127.0.0.1", mirror_sim.http_port, timeout=10)
    conn.request("GET", "/labctl-sim/mirror/docker/docker-27.3.1.zip")
    assert conn.getresponse().status == 404
    conn.close()


def test_mirror_serves_the_containers_models_zip(sim: Simulator) -> None:
    """With the real model: a zip holding docker\\docker.exe and docker\\dockerd.exe, and a matching digest."""
    import hashlib
    import io
    import zipfile

    status, _, body = _get(sim, "/labctl-sim/mirror/docker/docker-27.3.1.zip")
    assert status == 200
    names = {n.replace("\\", "/") for n in zipfile.ZipFile(io.BytesIO(body)).namelist()}
    assert {"docker/docker.exe", "docker/dockerd.exe"} <= names
    digest = _get(sim, "/labctl-sim/mirror/docker/docker-27.3.1.zip.sha256")[2].decode()
    assert digest == f"{hashlib.sha256(body).hexdigest()}  docker-27.3.1.zip\n"
