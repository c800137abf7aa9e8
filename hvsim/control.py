"""The simulator's control endpoint (test hooks) and a small client for it.

It lives on the HTTPS listener under ``/labctl-sim/control`` and takes the host's own credentials
(Basic). JSON in, JSON out:

==========  ==================  ==========================================================
GET         /                   status: simulated, host name, shells, profile
POST        /reset              fresh simulated host; also clears faults and counters
GET         /counters           http_requests, pipelines, bytes_in/out, cmdlets, other
POST        /counters/reset     zero the counters
GET         /faults             rules and the log of fired faults
POST        /faults             add a rule: {"kind", "match", "after", "times", "probability", "params"}
DELETE      /faults             clear the rules; optional {"seed": N} reseeds the plan
GET         /clock              modeled time report
GET         /shells             open WinRM shells: id, owner, seconds since last use
==========  ==================  ==========================================================
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Protocol

from hvsim.core.clock import Clock
from hvsim.core.counters import Counters
from hvsim.core.faults import KINDS, FaultPlan, FaultRule
from hvsim.world import World

log = logging.getLogger(__name__)

MAX_CONTROL_BODY = 64 * 1024


class _Sim(Protocol):
    world: World | None
    faults: FaultPlan | None
    counters: Counters | None
    clock: Clock | None
    profile: str
    seed: int

    def endpoint(self) -> dict[str, Any]: ...

    def shells(self) -> list[dict[str, Any]]: ...


class ControlError(Exception):
    """A control request failed (bad request, refused, or the simulator is not reachable)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class ControlService:
    """Serves control requests against a running simulator."""

    def __init__(self, sim: _Sim) -> None:
        self._sim = sim

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        try:
            args = json.loads(body.decode("utf-8")) if body.strip() else {}
        except (ValueError, UnicodeDecodeError):
            return 400, {"error": "the body is not JSON"}
        if not isinstance(args, dict):
            return 400, {"error": "the body must be a JSON object"}
        route = (method.upper(), path.rstrip("/") or "/")
        try:
            return self._dispatch(route, args)
        except (ValueError, TypeError, KeyError) as exc:
            return 400, {"error": str(exc)}

    def _dispatch(self, route: tuple[str, str], args: dict[str, Any]) -> tuple[int, Any]:
        sim = self._sim
        assert sim.world is not None and sim.faults is not None and sim.counters is not None
        assert sim.clock is not None
        if route == ("GET", "/"):
            info = sim.endpoint()
            return 200, {"simulated": True, "hostname": info.get("hostname"), "https_uri": info.get("https_uri"),
                         "http_uri": info.get("http_uri"), "profile": sim.profile, "seed": sim.faults.seed}
        if route == ("POST", "/reset"):
            with sim.world.lock:
                sim.world.reset()
                sim.world.save()
            sim.faults.clear(args.get("seed"))
            sim.counters.reset()
            sim.clock.reset_timeline()
            return 200, {"reset": True}
        if route == ("GET", "/counters"):
            return 200, sim.counters.snapshot()
        if route == ("POST", "/counters/reset"):
            sim.counters.reset()
            return 200, {"reset": True}
        if route == ("GET", "/faults"):
            return 200, {"seed": sim.faults.seed, "rules": sim.faults.rules(), "log": list(sim.faults.log),
                         "holding": sim.faults.holding()}
        if route == ("POST", "/faults"):
            kind = str(args.get("kind", ""))
            if kind not in KINDS:
                return 400, {"error": f"unknown fault kind {kind!r}; choose one of {', '.join(KINDS)}"}
            probability = args.get("probability")
            rule = FaultRule(
                kind=kind,
                match={str(k): str(v) for k, v in dict(args.get("match") or {}).items()},
                after=int(args.get("after", 1)),
                times=int(args.get("times", 1)),
                probability=None if probability is None else float(probability),
                params=dict(args.get("params") or {}),
            )
            sim.faults.add(rule)
            return 201, {"added": {"kind": rule.kind, "match": rule.match, "after": rule.after,
                                   "times": rule.times, "probability": rule.probability, "params": rule.params}}
        if route == ("DELETE", "/faults"):
            seed = args.get("seed")
            sim.faults.clear(None if seed is None else int(seed))
            return 200, {"cleared": True, "seed": sim.faults.seed}
        if route == ("GET", "/clock"):
            return 200, sim.clock.report()
        if route == ("GET", "/shells"):
            return 200, {"shells": sim.shells()}
        return 404, {"error": f"no control operation {route[0]} {route[1]}"}


class ControlClient:
    """Talks to a running simulator's control endpoint (stdlib only)."""

    def __init__(self, control_uri: str, username: str, password: str, cafile: str | Path,
                 timeout: float = 10.0) -> None:
        if not control_uri.startswith("https://"):
            raise ControlError(f"the control endpoint must be https://, not {control_uri!r}")
        self.control_uri = control_uri.rstrip("/")
        self._auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self._ctx = ssl.create_default_context(cafile=str(cafile))
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"ControlClient({self.control_uri!r})"

    @classmethod
    def from_state_dir(cls, state_dir: str | Path, timeout: float = 10.0) -> ControlClient:
        path = Path(state_dir) / "endpoint.json"
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ControlError(f"{path} not found: is a simulator running with --state {state_dir}?") from None
        except ValueError:
            raise ControlError(f"{path} is not valid JSON") from None
        return cls(info["control_uri"], info["username"], info["password"], info["certificate"], timeout)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else b""
        req = urllib.request.Request(self.control_uri + path, data=data, method=method, headers={  # noqa: S310
            "Authorization": self._auth, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self._ctx) as resp:  # noqa: S310
                return json.loads(resp.read(MAX_CONTROL_BODY * 16) or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read(MAX_CONTROL_BODY).decode("utf-8", "replace")
            raise ControlError(f"control {method} {path} failed: HTTP {exc.code} {detail}", exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ControlError(f"cannot reach the simulator at {self.control_uri}: {exc}") from None

    def status(self) -> dict[str, Any]:
        return dict(self._call("GET", "/"))

    def reset(self, seed: int | None = None) -> dict[str, Any]:
        return dict(self._call("POST", "/reset", {} if seed is None else {"seed": seed}))

    def counters(self) -> dict[str, Any]:
        return dict(self._call("GET", "/counters"))

    def reset_counters(self) -> dict[str, Any]:
        return dict(self._call("POST", "/counters/reset", {}))

    def faults(self) -> dict[str, Any]:
        return dict(self._call("GET", "/faults"))

    def add_fault(self, kind: str, match: dict[str, str] | None = None, *, after: int = 1, times: int = 1,
                  probability: float | None = None, **params: Any) -> dict[str, Any]:
        return dict(self._call("POST", "/faults", {"kind": kind, "match": match or {}, "after": after,
                                                   "times": times, "probability": probability,
                                                   "params": params}))

    def clear_faults(self, seed: int | None = None) -> dict[str, Any]:
        return dict(self._call("DELETE", "/faults", {} if seed is None else {"seed": seed}))

    def clock(self) -> dict[str, Any]:
        return dict(self._call("GET", "/clock"))

    def shells(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/shells")["shells"])

    def active_shells(self, idle_seconds: float) -> int:
        """Shells used within the last ``idle_seconds`` (another client still at work)."""
        return sum(1 for shell in self.shells() if float(shell["idle_seconds"]) < idle_seconds)
