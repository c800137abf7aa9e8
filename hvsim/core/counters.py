"""Counters readable by tests and benchmarks: HTTP requests, pipelines, cmdlet calls, bytes, and what each guest did.

Guest counters (``add_guest``) count the expensive container-host work per VM, so a test can prove a guest made
from a golden image did none of it: ``feature_installs`` (a Windows feature installed by Install-WindowsFeature
in the guest), ``docker_installs`` (the Docker engine installed from its zip), ``registry_pulls`` (an image
downloaded from a registry). The snapshot shows them under ``guests`` (VM name -> counter -> n) and their totals
under ``other``.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Counters:
    """Thread-safe named counters; ``cmdlet:<Name>`` keys count calls per cmdlet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._c: Counter[str] = Counter()

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._c[key] += n

    def add_guest(self, vm: str, what: str, n: int = 1) -> None:
        """Count ``what`` (feature_installs, docker_installs, registry_pulls) for the guest of VM ``vm``."""
        with self._lock:
            self._c[f"guest:{vm}:{what}"] += n
            self._c[what] += n

    def guest(self, vm: str, what: str) -> int:
        with self._lock:
            return self._c[f"guest:{vm}:{what}"]

    def get(self, key: str) -> int:
        with self._lock:
            return self._c[key]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            flat = dict(self._c)
        guests: dict[str, dict[str, int]] = {}
        for k, v in sorted(flat.items()):
            if k.startswith("guest:"):
                vm, _, what = k[len("guest:"):].rpartition(":")
                guests.setdefault(vm, {})[what] = v
        return {
            "http_requests": flat.get("http_requests", 0),
            "pipelines": flat.get("pipelines", 0),
            "bytes_in": flat.get("bytes_in", 0),
            "bytes_out": flat.get("bytes_out", 0),
            "cmdlets": {k[7:]: v for k, v in sorted(flat.items()) if k.startswith("cmdlet:")},
            "other": {k: v for k, v in sorted(flat.items())
                      if not k.startswith(("cmdlet:", "guest:"))
                      and k not in ("http_requests", "pipelines", "bytes_in", "bytes_out")},
            "guests": guests,
        }

    def reset(self) -> None:
        with self._lock:
            self._c.clear()
