"""Counters readable by tests and benchmarks: HTTP requests, pipelines, cmdlet calls, bytes."""

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

    def get(self, key: str) -> int:
        with self._lock:
            return self._c[key]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            flat = dict(self._c)
        return {
            "http_requests": flat.get("http_requests", 0),
            "pipelines": flat.get("pipelines", 0),
            "bytes_in": flat.get("bytes_in", 0),
            "bytes_out": flat.get("bytes_out", 0),
            "cmdlets": {k[7:]: v for k, v in sorted(flat.items()) if k.startswith("cmdlet:")},
            "other": {k: v for k, v in sorted(flat.items())
                      if not k.startswith("cmdlet:")
                      and k not in ("http_requests", "pipelines", "bytes_in", "bytes_out")},
        }

    def reset(self) -> None:
        with self._lock:
            self._c.clear()
