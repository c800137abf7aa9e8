"""The simulator as a product (``labctl sim``): serve a SIMULATED Hyper-V host, drive its control endpoint.

labctl reaches hvsim only through its public API: ``hvsim.server.Simulator`` to start and stop one in this
process, ``hvsim.control.ControlClient`` over HTTPS for everything else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from labctl.errors import ConnectError
from labctl.fslock import Busy, ExclusiveLock

T = TypeVar("T")

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB|KIB|MIB|GIB|TIB)$", re.IGNORECASE)
_UNITS = {"KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def parse_host_settings(items: tuple[str, ...]) -> dict[str, Any]:
    """KEY=VALUE pairs: sizes ("256GiB", PowerShell's GB = GiB), integers, true/false, or text.

    ValueError names the pair that is wrong and, for an unknown key, the known ones.
    """
    from hvsim.server import host_setting_names

    known = set(host_setting_names())
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key:
            raise ValueError(f"{item!r}: use KEY=VALUE")
        if key not in known:
            raise ValueError(f"unknown host setting {key!r}; known: {', '.join(sorted(known))}")
        size = _SIZE.match(raw)
        value: Any
        if size:
            value = int(float(size.group(1)) * _UNITS[size.group(2).upper().replace("I", "")])
        elif raw.isdigit():
            value = int(raw)
        elif raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        else:
            value = raw
        result[key] = value
    return result


@dataclass(frozen=True)
class Served:
    """A simulator this process serves: where to reach it (the password stays in endpoint.json)."""

    banner: str
    https_uri: str
    http_uri: str
    username: str
    endpoint_file: Path
    cert_path: Path
    fingerprint: str
    ssh_uri: str = ""  # the powershell subsystem over SSH: ssh://USER@127.0.0.1:PORT
    ssh_host_key_fingerprint: str = ""  # OpenSSH's SHA256:... of the host key
    ssh_client_key: Path | None = None  # the only client key the SSH server accepts (owner-only)


@contextmanager
def serve(state_dir: Path, *, port: int = 0, http_port: int = 0, profile: str = "instant", speedup: float = 1.0,
          seed: int = 0, host_config: dict[str, Any] | None = None, kerberos_keytab: Path | None = None,
          kerberos_realm: str | None = None, credssp: bool = False, ssh_port: int = 0) -> Iterator[Served]:
    """Serve the simulator state ``state_dir`` in this process until the block ends.

    One process serves a state directory at a time (the same lock labctl takes for ``host: sim``):
    ConnectError when another one does, or when the ports cannot be bound.
    """
    from hvsim.server import BANNER, Simulator

    state_dir.mkdir(parents=True, exist_ok=True)
    lock = ExclusiveLock(state_dir / "serve.lock", "labctl sim serve")
    try:
        lock.acquire()
    except Busy:
        raise ConnectError(f"{state_dir} is already served by another process (see its endpoint.json)",
                           endpoint=str(state_dir)) from None
    try:
        sim = Simulator(state_dir, port=port, http_port=http_port, profile=profile, speedup=speedup, seed=seed,
                        host_config=host_config or {}, kerberos_keytab=kerberos_keytab,
                        kerberos_realm=kerberos_realm, credssp=credssp, ssh_port=ssh_port)
        try:
            sim.start()
        except OSError as exc:
            raise ConnectError(f"cannot listen: {exc}", endpoint=f"127.0.0.1:{port}") from exc
        try:
            yield Served(BANNER, sim.https_uri, sim.http_uri, sim.username, sim.endpoint_file, sim.cert_path,
                         sim.fingerprint, sim.ssh_uri, sim.ssh_host_key_fingerprint, sim.ssh_client_key)
        finally:
            sim.stop()
    finally:
        lock.release()


def control(state_dir: Path) -> Any:
    """The control client of the simulator serving ``state_dir`` (ConnectError when none does)."""
    from hvsim.control import ControlClient, ControlError

    try:
        return ControlClient.from_state_dir(state_dir)
    except ControlError as exc:
        raise ConnectError(str(exc), endpoint=str(state_dir)) from None


def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on a control client; an unreachable or refusing simulator is ConnectError."""
    from hvsim.control import ControlError

    try:
        return fn(*args, **kwargs)
    except ControlError as exc:
        raise ConnectError(str(exc), endpoint="simulator control endpoint") from None
