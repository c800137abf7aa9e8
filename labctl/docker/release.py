"""Docker's static zip on the controller: fetched once into a cache, verified by SHA-256.

Every container host gets the same ``docker-<version>.zip`` (docker.exe and dockerd.exe). labctl downloads
it once (or copies the lab's local ``docker.path``) into ``~/.cache/labctl/docker`` (``$LABCTL_CACHE_DIR/docker``
when set), checks its SHA-256, and only then sends it to the host. Files appear in the cache atomically
(temporary file + rename), so a killed download never leaves a truncated zip that looks complete.

On a simulated host with no ``docker.path`` labctl takes the zip from the simulator's mirror
(``https://<simulator>/labctl-sim/mirror/docker/docker-<version>.zip`` and its ``.sha256``), reached over TLS
pinned to the simulator's certificate: no network access is needed, and the binaries are the simulator's
placeholders (the simulated guests never run them).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs
import requests
from requests.adapters import HTTPAdapter

from labctl.errors import LabctlError

CHUNK = 1024 * 1024
MIRROR_PATH = "/labctl-sim/mirror/docker"
_HEX64 = re.compile(r"\b[0-9A-Fa-f]{64}\b")


class DockerZipError(LabctlError):
    """The Docker zip could not be fetched, or it is not the expected file."""


@dataclass(frozen=True)
class ZipSource:
    """Where one Docker zip comes from and what it must hash to.

    ``sha256_url`` (the simulator's mirror) publishes the expected hash beside the zip; ``fingerprint``
    pins the TLS certificate of the server (the simulator's self-signed one).
    """

    version: str
    url: str | None = None
    path: Path | None = None
    sha256: str | None = None
    sha256_url: str | None = None
    fingerprint: str | None = None
    placeholder: bool = False

    def describe(self) -> str:
        """Where the zip comes from, for messages."""
        if self.path is not None:
            return str(self.path)
        return str(self.url)


@dataclass(frozen=True)
class DockerZip:
    """A verified zip in the cache."""

    path: Path
    sha256: str
    version: str
    size: int
    source: str
    placeholder: bool = False

    @property
    def file_name(self) -> str:
        """The name the zip keeps on the host and in the guests."""
        return f"docker-{self.version}.zip"


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The controller's Docker zip cache: ``$LABCTL_CACHE_DIR/docker``, else the OS's user cache folder
    (``~/.cache/labctl`` on Linux, ``~/Library/Caches/labctl`` on macOS, ``%LOCALAPPDATA%\\labctl\\Cache`` on
    Windows) ``/docker``."""
    env = os.environ if env is None else env
    root = env.get("LABCTL_CACHE_DIR")
    base = Path(root).expanduser() if root else Path(platformdirs.user_cache_dir("labctl", appauthor=False))
    return base / "docker"


def mirror_source(version: str, https_uri: str, fingerprint: str | None) -> ZipSource:
    """The simulator mirror's copy of ``docker-<version>.zip``, from the simulator's WinRM endpoint URI."""
    parts = urlsplit(https_uri)
    base = f"{parts.scheme}://{parts.netloc}{MIRROR_PATH}/docker-{version}.zip"
    return ZipSource(version=version, url=base, sha256_url=base + ".sha256", fingerprint=fingerprint,
                     placeholder=True)


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, as lower-case hex."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(source: ZipSource, cache: Path | None = None, *, timeout: float = 60.0) -> DockerZip:
    """The zip of ``source`` in the cache, fetched or copied when not there yet, and verified."""
    cache = cache if cache is not None else cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    session = _session(source.fingerprint)
    try:
        expected = source.sha256.lower() if source.sha256 else None
        if expected is None and source.sha256_url:
            expected = _published_sha256(session, source.sha256_url, timeout)
        if expected is not None:
            cached = cache / _cache_name(source.version, expected)
            if cached.is_file() and sha256_of(cached) == expected:
                return DockerZip(cached, expected, source.version, cached.stat().st_size, source.describe(),
                                 source.placeholder)
        fd, tmp_name = tempfile.mkstemp(prefix=f".docker-{source.version}.", suffix=".part", dir=cache)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                actual = _copy_into(out, source, session, timeout)
                out.flush()
                os.fsync(out.fileno())
            if expected is not None and actual != expected:
                raise DockerZipError(
                    f"the Docker zip from {source.describe()} has SHA-256 {actual}, expected {expected}",
                    hint="the download was altered or docker.sha256 names another version; check docker.version, "
                         "docker.url/docker.path and docker.sha256 in the lab file")
            final = cache / _cache_name(source.version, actual)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return DockerZip(final, actual, source.version, final.stat().st_size, source.describe(), source.placeholder)
    finally:
        session.close()


def _cache_name(version: str, sha256: str) -> str:
    # The hash is part of the name: the simulator's placeholder and Docker's real zip share a version.
    return f"docker-{version}-{sha256[:16]}.zip"


def _copy_into(out: Any, source: ZipSource, session: requests.Session, timeout: float) -> str:
    """Write the source's bytes to ``out``; return their SHA-256."""
    digest = hashlib.sha256()
    if source.path is not None:
        try:
            with source.path.open("rb") as fh:
                for block in iter(lambda: fh.read(CHUNK), b""):
                    digest.update(block)
                    out.write(block)
        except OSError as exc:
            raise DockerZipError(f"cannot read the Docker zip {source.path}: {exc.strerror or exc}",
                                 hint="fix docker.path in the lab file") from exc
        return digest.hexdigest()
    if not source.url:
        raise DockerZipError("no Docker zip source: neither docker.url nor docker.path")
    try:
        with session.get(source.url, stream=True, timeout=timeout) as resp:
            if resp.status_code != 200:
                raise DockerZipError(f"downloading {source.url} failed: HTTP {resp.status_code} {resp.reason}",
                                     hint="check docker.version and docker.url in the lab file")
            for block in resp.iter_content(CHUNK):
                digest.update(block)
                out.write(block)
    except requests.RequestException as exc:
        raise DockerZipError(f"downloading {source.url} failed: {exc}",
                             hint="check the controller's network access, or give docker.path "
                                  "(a local copy of the zip)") from exc
    return digest.hexdigest()


def _published_sha256(session: requests.Session, url: str, timeout: float) -> str:
    try:
        resp = session.get(url, timeout=timeout)
    except requests.RequestException as exc:
        raise DockerZipError(f"fetching the checksum {url} failed: {exc}") from exc
    if resp.status_code != 200:
        raise DockerZipError(f"fetching the checksum {url} failed: HTTP {resp.status_code} {resp.reason}",
                             hint="the simulator serving this lab has no Docker zip of this docker.version")
    m = _HEX64.search(resp.text)
    if m is None:
        raise DockerZipError(f"{url} holds no SHA-256 (64 hex digits)")
    return m.group(0).lower()


class _PinnedAdapter(HTTPAdapter):
    """HTTPS that accepts exactly one certificate, by its SHA-256 fingerprint (the simulator's)."""

    def __init__(self, fingerprint: str, **kwargs: Any) -> None:
        value = fingerprint.strip()
        if value.lower().startswith("sha256:"):
            value = value[7:]
        self._fingerprint = value.replace(":", "").lower()
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["assert_fingerprint"] = self._fingerprint
        super().init_poolmanager(*args, **kwargs)


def _session(fingerprint: str | None) -> requests.Session:
    session = requests.Session()
    session.trust_env = fingerprint is None  # never send the simulator's loopback traffic through a proxy
    if fingerprint:
        # The pinned fingerprint replaces CA validation (the simulator's certificate is self-signed).
        session.verify = False
        session.mount("https://", _PinnedAdapter(fingerprint))
    return session

