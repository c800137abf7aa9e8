"""Connecting to the lab's host: the embedded simulator or a remote Hyper-V host.

Both end as the same PsrpTransport over WinRM; only the endpoint differs. For ``host: sim`` the
simulator is started in this process on loopback with its state in the lab directory (or, when
another labctl process already serves that state, that one is used through its endpoint.json).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl.app.secrets import Prompt, resolve_secret
from labctl.errors import ConnectError
from labctl.fslock import Busy, ExclusiveLock
from labctl.hyperv import ops
from labctl.lab.model import ResolvedLab, ResolvedRemoteHost, ResolvedSimHost
from labctl.secret import Secret
from labctl.transport.base import RetryPolicy, Transport
from labctl.transport.psrp import Endpoint, PsrpTransport

_policy = RetryPolicy()


def set_retry_budget(seconds: float) -> None:
    """How long every host call of this process may retry through transient failures (the CLI's
    ``--retry-budget``)."""
    global _policy
    _policy = RetryPolicy(budget_seconds=max(float(seconds), 0.0))


@dataclass
class HostConnection:
    """An open transport to the host, and what to stop when done."""

    transport: Transport  # the one transport interface; PsrpTransport (WinRM) is today's carrier
    endpoint: Endpoint
    simulated: bool
    simulator: Any = None  # hvsim.server.Simulator when embedded here: started and stopped, nothing more
    control: Any = None  # hvsim.control.ControlClient of the embedded simulator: the clock and shells, over HTTPS
    # Wall seconds per second of host time for labctl's own waits (polls): 1 on a real host; 1/speedup on a
    # simulator whose time runs faster, so that a 2 s poll lags 2 simulated seconds there too.
    time_scale: float = 1.0
    # A simulator's Docker mirror (base URL, TLS fingerprint) when its endpoint URI does not lead there (SSH, local).
    mirror: tuple[str, str | None] | None = None
    _lock: ExclusiveLock | None = field(default=None, repr=False)

    @property
    def description(self) -> str:
        where = self.endpoint.uri
        return f"simulated Hyper-V host at {where}" if self.simulated else f"Hyper-V host {where}"

    def sim_report(self) -> dict[str, Any] | None:
        """The simulator's clock report (how long a real host would have taken), when embedded."""
        if self.control is None:
            return None
        from hvsim.control import ControlError

        try:
            return dict(self.control.clock())
        except ControlError:
            return None  # the report is a courtesy: a run that worked must not fail for it

    def _let_joined_clients_finish(self) -> None:
        if self.control is not None:
            _wait_for_joined(self.control)

    def close(self) -> None:
        self.transport.close()
        if self.simulator is not None:
            if not self.transport.cancel.is_set():  # on Ctrl-C our own workers' shells would look busy
                self._let_joined_clients_finish()
            self.simulator.stop()
        if self._lock is not None:
            self._lock.release()
            self._lock = None


# Another labctl process may have joined the simulator this one serves (`labctl status` while `up` runs):
# keep serving while its shells are in use, so it is not cut off mid-run.
JOINED_IDLE_SECONDS = 10.0
JOINED_MAX_WAIT_SECONDS = 600.0


def _wait_for_joined(control: Any, idle: float = JOINED_IDLE_SECONDS,
                     limit: float = JOINED_MAX_WAIT_SECONDS) -> None:
    from hvsim.control import ControlError

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if control.active_shells(idle) == 0:
                return
        except ControlError:
            return
        time.sleep(0.2)


def connect_endpoint(endpoint: Endpoint, *, workers: int, simulated: bool | None = None) -> HostConnection:
    """A connection to an endpoint already described (a served simulator's endpoint.json, ``--host URI``), with
    this process's retry policy; ``simulated`` None asks the host whether it is a simulator."""
    conn = HostConnection(PsrpTransport(endpoint, size=workers, policy=_policy), endpoint, simulated=bool(simulated))
    if simulated is None:
        try:
            _apply_advert(conn, sim_advert(conn.transport))
        except BaseException:
            conn.close()
            raise
    return conn


def sim_time_scale(info: dict[str, Any]) -> float:
    """Wall seconds per simulated second of the simulator ``info`` (endpoint.json) describes, for labctl's polls."""
    profile = info.get("time_profile") or {}
    try:
        speedup = float(profile.get("speedup") or 1.0)
    except (TypeError, ValueError):
        return 1.0
    return 1.0 / speedup if profile.get("profile") == "realistic" and speedup > 0 else 1.0


def sim_endpoint(info: dict[str, Any]) -> Endpoint:
    """The WinRM endpoint a simulator's endpoint.json describes."""
    return _sim_endpoint(info)


def _sim_endpoint(info: dict[str, Any]) -> Endpoint:
    return Endpoint(
        uri=str(info["https_uri"]), auth="ntlm", username=str(info["username"]),
        password=Secret(str(info["password"])), verify=True, fingerprint=str(info["fingerprint"]),
    )


def connect_sim(state_dir: Path, *, workers: int, profile: str | None = None) -> HostConnection:
    """Serve the simulator state in this process, or join the process that already serves it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = ExclusiveLock(state_dir / "serve.lock", "labctl (embedded simulator)")
    try:
        lock.acquire()
    except Busy:
        endpoint_file = state_dir / "endpoint.json"
        try:
            info = json.loads(endpoint_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConnectError(f"the simulator state {state_dir} is in use but has no readable endpoint.json",
                               endpoint=str(state_dir)) from exc
        endpoint = _sim_endpoint(info)
        return HostConnection(PsrpTransport(endpoint, size=workers, policy=_policy), endpoint, simulated=True,
                              time_scale=sim_time_scale(info))
    from hvsim.control import ControlClient
    from hvsim.server import Simulator  # started in-process; reached only over the wire below

    sim = Simulator(state_dir, profile=profile or os.environ.get("LABCTL_SIM_PROFILE", "instant"),
                    speedup=float(os.environ.get("LABCTL_SIM_SPEEDUP", "1")))
    try:
        sim.start()
    except BaseException:
        lock.release()
        raise
    info = sim.endpoint()
    endpoint = _sim_endpoint(info)
    control = ControlClient(info["control_uri"], info["username"], info["password"], info["certificate"])
    return HostConnection(PsrpTransport(endpoint, size=workers, policy=_policy), endpoint, simulated=True,
                          simulator=sim, control=control, _lock=lock, time_scale=sim_time_scale(info))


def connect(lab: ResolvedLab, *, workers: int = 4, prompt: Prompt | None = None) -> HostConnection:
    """Open the lab's host: the embedded simulator or the remote host it names."""
    return connect_host(lab.host, workers=workers, prompt=prompt)


def connect_host(host: ResolvedSimHost | ResolvedRemoteHost, *, workers: int = 4,
                 prompt: Prompt | None = None) -> HostConnection:
    """Open one host (of a lab, or of a pool): the embedded simulator or a remote host."""
    if isinstance(host, ResolvedSimHost):
        return connect_sim(Path(host.state_dir), workers=workers + 1)
    assert isinstance(host, ResolvedRemoteHost)
    if host.scheme in ("ssh", "local"):
        return _connect_oop(host, workers=workers + 1, prompt=prompt)
    password = None
    # Kerberos without a password source uses the ticket cache (kinit; KRB5CCNAME), as Windows' SSO would.
    if host.auth != "certificate" and not (host.auth == "kerberos" and host.password.kind == "none"):
        password = resolve_secret(host.password.kind, host.password.name, what="host password", prompt=prompt)
    cert_pem = key_pem = None
    if host.auth == "certificate":
        cert_pem = Path(host.cert_path or "").read_text(encoding="utf-8")
        key_pem = Path(host.key_path or "").read_text(encoding="utf-8")
    endpoint = Endpoint(
        uri=host.uri, auth=host.auth, username=host.username, password=password, verify=host.verify,
        ca_path=host.ca_path, fingerprint=host.fingerprint, certificate_pem=cert_pem, certificate_key_pem=key_pem,
    )
    return connect_endpoint(endpoint, workers=workers + 1)


def _connect_oop(host: ResolvedRemoteHost, *, workers: int, prompt: Prompt | None) -> HostConnection:
    """PowerShell's out-of-process server over SSH (``uri: ssh://``) or as a local process (``uri: local``)."""
    transport: Transport
    if host.scheme == "local":
        from labctl.transport.local import local_transport

        transport = local_transport(size=workers, policy=_policy)
    else:
        from labctl.transport.ssh import SshTarget, SshTransport

        password = None
        if host.password.kind != "none":  # password auth only when the lab file asks for it
            password = resolve_secret(host.password.kind, host.password.name, what="host password", prompt=prompt)
        target = SshTarget(hostname=host.hostname, port=host.port, username=host.username or "",
                           key_file=host.key_file, host_key_fingerprint=host.host_key_fingerprint,
                           known_hosts=host.known_hosts, password=password)
        transport = SshTransport(target, size=workers, policy=_policy)
    conn = HostConnection(transport, Endpoint(uri=host.uri, username=host.username), simulated=False)
    try:
        _apply_advert(conn, sim_advert(transport))
    except BaseException:
        conn.close()
        raise
    return conn


def is_simulated(transport: Transport) -> bool:
    """Whether the host says it is a labctl simulator (its Win32_ComputerSystem model)."""
    return sim_advert(transport) is not None


def sim_advert(transport: Transport) -> dict[str, str] | None:
    """What a labctl simulator says of itself in Win32_ComputerSystem (None for a real host): its Model, and in
    OEMStringArray ``labctl-sim-<key>=<value>`` lines (mirror, fingerprint, time), which a client reaching it over
    SSH or a local process cannot read from its URI."""
    res = transport.invoke(ops.computer_system())
    for obj in res.objects():
        if "SIMULATED" not in str(obj.get("Model") or "").upper():
            continue
        strings = obj.get("OEMStringArray") or []
        advert = {"model": str(obj.get("Model"))}
        for line in strings if isinstance(strings, list) else [strings]:
            key, sep, value = str(line).partition("=")
            if sep and key.startswith("labctl-sim-"):
                advert[key.removeprefix("labctl-sim-")] = value
        return advert
    return None


def _apply_advert(conn: HostConnection, advert: dict[str, str] | None) -> None:
    """A simulator reached without its endpoint.json: where its mirror is and how fast its time runs."""
    conn.simulated = advert is not None
    if advert is None:
        return
    if advert.get("mirror"):
        conn.mirror = (advert["mirror"], advert.get("fingerprint") or None)
    profile, _, speedup = advert.get("time", "").partition(":")
    conn.time_scale = sim_time_scale({"time_profile": {"profile": profile, "speedup": speedup or 1}})
