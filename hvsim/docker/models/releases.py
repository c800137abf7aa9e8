"""What each modelled Docker release is: its Engine API version (and the Go it was built with)."""

from __future__ import annotations

import re

# Engine version -> API version (docs.docker.com/engine/api/ version matrix); go version illustrative.
_API_VERSIONS = {"20.10": "1.41", "23.0": "1.42", "24.0": "1.43", "25.0": "1.44", "26.0": "1.45", "26.1": "1.45",
                 "27.0": "1.46", "27.1": "1.46", "27.2": "1.47", "27.3": "1.47", "27.4": "1.47", "27.5": "1.47",
                 "28.0": "1.48", "28.1": "1.49", "28.2": "1.50", "28.3": "1.51", "28.4": "1.51", "28.5": "1.51"}
_GO_VERSIONS = {"20.10": "go1.18.10", "23.0": "go1.19.10", "24.0": "go1.20.10", "25.0": "go1.21.6",
                "26.0": "go1.21.8", "26.1": "go1.21.9", "27": "go1.22.7", "28": "go1.24.8"}
MIN_API_VERSION = "1.24"


def api_version_for(version: str) -> str:
    """The Engine API version a Docker release speaks ("27.3.1" -> "1.47")."""
    parts = version.split(".")
    return _API_VERSIONS.get(".".join(parts[:2]), "1.47")


def engine_release(version: str) -> tuple[int, int]:
    """"27.3.1" -> (27, 3); an unparsable version counts as the newest modelled one."""
    m = re.match(r"^(\d+)\.(\d+)", version.strip())
    return (int(m.group(1)), int(m.group(2))) if m else (99, 0)


def go_version_for(version: str) -> str:
    parts = version.split(".")
    return _GO_VERSIONS.get(".".join(parts[:2])) or _GO_VERSIONS.get(parts[0], "go1.22.7")
