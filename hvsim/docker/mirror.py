"""The simulator's download mirror: what download.docker.com serves, for a simulated lab.

Routes on the HTTPS listener, without authentication (like the real site), under ``/labctl-sim/mirror``:

- ``GET /docker/docker-<x.y.z>.zip``: the simulated Docker zip (``docker\\docker.exe``, ``docker\\dockerd.exe``);
- ``GET /docker/docker-<x.y.z>.zip.sha256``: ``<hex digest>  <file name>\\n`` (sha256sum's format).

The bytes come from the containers model's ``simulated_docker_zip(version)``; labctl's engine downloads
from here when its host is simulated (it pins the simulator's certificate).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import re
import threading
from collections.abc import Callable

from hvsim.wsman.server import MIRROR_PATH

log = logging.getLogger(__name__)

_ZIP = re.compile(r"^/docker/(docker-(\d{1,4}\.\d{1,4}\.\d{1,4})\.zip)(\.sha256)?$")
_CACHE_SIZE = 4  # versions kept in memory: a lab uses one or two

ZipSource = Callable[[str], bytes]
MirrorAnswer = tuple[int, bytes, str]
"""(HTTP status, body, Content-Type)."""


def default_zip_source(version: str) -> bytes:
    """The containers model's simulated zip (imported late: the model may not be loaded yet)."""
    module = importlib.import_module("hvsim.docker.models.engine")
    data: bytes = module.simulated_docker_zip(version)
    return data


def _not_found(message: str) -> MirrorAnswer:
    return 404, json.dumps({"message": message}).encode("utf-8"), "application/json"


class Mirror:
    """Answers mirror GETs; keeps the last few zips (and their digests) in memory."""

    def __init__(self, source: ZipSource | None = None) -> None:
        self._source = source or default_zip_source
        self._cache: dict[str, tuple[bytes, str]] = {}
        self._lock = threading.Lock()

    def _zip(self, version: str) -> tuple[bytes, str]:
        with self._lock:
            hit = self._cache.get(version)
            if hit is not None:
                return hit
        data = self._source(version)
        entry = (data, hashlib.sha256(data).hexdigest())
        with self._lock:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[version] = entry
        return entry

    def handle(self, subpath: str) -> MirrorAnswer:
        """The answer to ``GET /labctl-sim/mirror<subpath>``."""
        m = _ZIP.match(subpath)
        if m is None:
            return _not_found(f"{MIRROR_PATH}{subpath[:200]}: not on the simulated download mirror; it serves "
                              f"{MIRROR_PATH}/docker/docker-<x.y.z>.zip[.sha256]")
        name, version, digest_only = m.group(1), m.group(2), m.group(3)
        try:
            data, digest = self._zip(version)
        except (ImportError, AttributeError):
            return 503, json.dumps({"message": "the simulator's containers model is not available"}).encode(), \
                "application/json"
        except ValueError as exc:
            return _not_found(f"{name}: {exc}")
        if digest_only:
            return 200, f"{digest}  {name}\n".encode("ascii"), "text/plain; charset=utf-8"
        return 200, data, "application/zip"
