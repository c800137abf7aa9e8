"""The controller's Docker zip cache: download once, verify SHA-256, atomic files, local path, pinned TLS."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from labctl.docker import release
from labctl.docker.release import DockerZipError, ZipSource

ZIP = b"PK\x03\x04" + bytes(range(256)) * 9000  # a bit over 2 MiB: more than one read chunk
SHA = hashlib.sha256(ZIP).hexdigest()


@dataclass
class Served:
    url: str
    hits: list[str] = field(default_factory=list)


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = self.files.get(self.path)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(files: dict[str, bytes], context: ssl.SSLContext | None = None) -> Iterator[Served]:
    handler = type("H", (_Handler,), {"files": files, "hits": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    scheme = "https" if context else "http"
    try:
        yield Served(f"{scheme}://127.0.0.1:{server.server_address[1]}", handler.hits)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def served() -> Iterator[Served]:
    yield from _serve({"/docker-27.3.1.zip": ZIP})


def test_download_verifies_and_caches(served: Served, tmp_path: Path) -> None:
    src = ZipSource(version="27.3.1", url=served.url + "/docker-27.3.1.zip", sha256=SHA.upper())
    first = release.fetch(src, tmp_path)
    assert first.path.read_bytes() == ZIP and first.sha256 == SHA and first.size == len(ZIP)
    assert first.file_name == "docker-27.3.1.zip"
    second = release.fetch(src, tmp_path)
    assert second.path == first.path
    assert served.hits == ["/docker-27.3.1.zip"]  # the second fetch came from the cache
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]  # no temporary file left


def test_checksum_mismatch_names_expected_actual_and_source(served: Served, tmp_path: Path) -> None:
    wrong = "0" * 64
    url = served.url + "/docker-27.3.1.zip"
    with pytest.raises(DockerZipError) as info:
        release.fetch(ZipSource(version="27.3.1", url=url, sha256=wrong), tmp_path)
    message = info.value.message
    assert wrong in message and SHA in message and url in message
    assert list(tmp_path.iterdir()) == []  # nothing half-written stays in the cache


def test_a_tampered_cache_file_is_fetched_again(served: Served, tmp_path: Path) -> None:
    src = ZipSource(version="27.3.1", url=served.url + "/docker-27.3.1.zip", sha256=SHA)
    zipped = release.fetch(src, tmp_path)
    zipped.path.write_bytes(b"truncated")
    again = release.fetch(src, tmp_path)
    assert again.path.read_bytes() == ZIP
    assert len(served.hits) == 2


def test_http_error_is_reported(served: Served, tmp_path: Path) -> None:
    with pytest.raises(DockerZipError, match="HTTP 404"):
        release.fetch(ZipSource(version="9.9.9", url=served.url + "/docker-9.9.9.zip", sha256=SHA), tmp_path)


def test_local_path_is_copied_and_hashed(tmp_path: Path) -> None:
    local = tmp_path / "mine.zip"
    local.write_bytes(ZIP)
    cache = tmp_path / "cache"
    zipped = release.fetch(ZipSource(version="27.3.1", path=local), cache)
    assert zipped.sha256 == SHA and zipped.path.parent == cache and zipped.path.read_bytes() == ZIP
    with pytest.raises(DockerZipError, match="expected " + "1" * 64):
        release.fetch(ZipSource(version="27.3.1", path=local, sha256="1" * 64), cache)
    with pytest.raises(DockerZipError, match="cannot read"):
        release.fetch(ZipSource(version="27.3.1", path=tmp_path / "missing.zip"), cache)


def test_cache_dir_follows_the_environment(tmp_path: Path) -> None:
    assert release.cache_dir({"LABCTL_CACHE_DIR": str(tmp_path)}) == tmp_path / "docker"
    assert release.cache_dir({}) == Path.home() / ".cache" / "labctl" / "docker"


def _self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sim")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "c.pem", tmp_path / "k.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx, cert.fingerprint(hashes.SHA256()).hex()


def test_simulator_mirror_with_a_pinned_certificate(tmp_path: Path) -> None:
    ctx, fingerprint = _self_signed(tmp_path)
    files = {"/labctl-sim/mirror/docker/docker-27.3.1.zip": ZIP,
             "/labctl-sim/mirror/docker/docker-27.3.1.zip.sha256": f"{SHA}  docker-27.3.1.zip\n".encode()}
    gen = _serve(files, ctx)
    served = next(gen)
    try:
        src = release.mirror_source("27.3.1", served.url + "/wsman", fingerprint)
        assert src.placeholder and src.url == served.url + "/labctl-sim/mirror/docker/docker-27.3.1.zip"
        zipped = release.fetch(src, tmp_path / "cache")
        assert zipped.sha256 == SHA and zipped.placeholder
        with pytest.raises(DockerZipError):  # another certificate than the pinned one is refused
            release.fetch(release.mirror_source("27.3.1", served.url, "00" * 32), tmp_path / "other")
    finally:
        next(gen, None)
