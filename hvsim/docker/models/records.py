"""The records a guest's Docker engine keeps: images, their layers and configuration, containers, the docker
service, the firewall rule the TLS step adds. Pure state, typed; no PowerShell objects, no API documents.

Each record persists with ``to_state()`` / ``from_state()`` (the guest's ``container_host`` in the simulator's
``state.json``). The keys on disk are the ones the simulator wrote when these records were plain dicts, so a
state directory saved by an older simulator loads unchanged; ``from_state`` fills what older records lack the way
the engine used to read them (an image without ``layers`` is one layer of its own size, one without ``config``
starts cmd.exe, a container without ``cmd`` runs its ``command``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_CMD = "c:\\windows\\system32\\cmd.exe"


@dataclass
class Layer:
    """An image layer: its id (hex, without "sha256:") and its modeled size in bytes. On disk: ``[id, size]``."""

    id: str
    size: int

    def to_state(self) -> list[Any]:
        return [self.id, self.size]

    @classmethod
    def from_state(cls, s: list[Any] | tuple[Any, ...]) -> Layer:
        return cls(str(s[0]), int(s[1]))


@dataclass
class ImageConfig:
    """The part of an image's configuration the engine models (docker image inspect .Config)."""

    cmd: list[str] | None = field(default_factory=lambda: [DEFAULT_CMD])
    entrypoint: list[str] | None = None
    user: str = ""
    exposed_ports: list[str] | None = None  # only images that declare ports (IIS) have the key

    def to_state(self) -> dict[str, Any]:
        """Docker's keys, in the order docker image inspect shows them."""
        out: dict[str, Any] = {"Cmd": _copy(self.cmd), "Entrypoint": _copy(self.entrypoint), "User": self.user}
        if self.exposed_ports is not None:
            out["ExposedPorts"] = list(self.exposed_ports)
        return out

    @classmethod
    def from_state(cls, s: dict[str, Any] | None) -> ImageConfig:
        """From docker's keys; None or an empty document is the default configuration (cmd.exe)."""
        if not s:
            return cls()
        ports = s.get("ExposedPorts")
        return cls(_strings(s.get("Cmd")), _strings(s.get("Entrypoint")), str(s.get("User") or ""),
                   None if ports is None else [str(p) for p in ports])


@dataclass
class Image:
    """A local image: references (``repo:tag``, ``repo@digest``, normalized), what it was built for, its layers
    from the bottom up and its configuration."""

    id: str  # "sha256:<hex>"
    tags: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    os_version: str = ""
    size: int = 0
    created: str = ""  # RFC 3339
    parent: str = ""  # the image id a commit was based on
    layers: list[Layer] = field(default_factory=list)
    config: ImageConfig = field(default_factory=ImageConfig)
    family: str = ""  # nanoserver | servercore, "" when not known (derived from the references)
    apps: list[str] = field(default_factory=list)  # programs the image adds to its base

    def __post_init__(self) -> None:
        if not self.layers:  # an image recorded before layers were modeled: one layer of its own
            self.layers = [Layer(self.id.removeprefix("sha256:"), int(self.size))]

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]

    def to_state(self) -> dict[str, Any]:
        return {"id": self.id, "tags": list(self.tags), "digests": list(self.digests), "os_version": self.os_version,
                "size": self.size, "created": self.created, "parent": self.parent,
                "layers": [layer.to_state() for layer in self.layers], "config": self.config.to_state(),
                "family": self.family, "apps": list(self.apps)}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> Image:
        return cls(str(s["id"]), [str(t) for t in s.get("tags") or []], [str(d) for d in s.get("digests") or []],
                   str(s.get("os_version", "")), int(s.get("size", 0)), str(s.get("created", "")),
                   str(s.get("parent") or ""), [Layer.from_state(x) for x in s.get("layers") or []],
                   ImageConfig.from_state(s.get("config")), str(s.get("family") or ""),
                   [str(a) for a in s.get("apps") or []])


@dataclass
class Container:
    """A container: what it runs, how it was created, its lifecycle (created, running, exited; paused while
    running) and what it printed."""

    id: str
    name: str
    image_ref: str  # the reference it was created from, as given
    image_id: str
    os_version: str = ""  # its image's (kept when the image is force-removed)
    command: list[str] = field(default_factory=list)  # entrypoint + cmd
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    state: str = "created"  # created | running | exited
    exit_code: int = 0
    isolation: str = "process"  # process | hyperv
    interactive: bool = False
    tty: bool = False
    detach: bool = False
    stdin_once: bool = False  # stdin attached in the foreground: closed when the client lets go
    auto_remove: bool = False  # --rm
    logs: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    ports: list[str] = field(default_factory=list)  # -p specs as given
    processes: list[str] = field(default_factory=list)  # the programs running in it
    ip: str = ""  # its address on the nat network while it runs
    hostname: str = ""  # "" : its id's first 12 characters
    user: str = ""  # "" : its image's user
    family: str = ""
    apps: list[str] = field(default_factory=list)
    paused: bool = False

    @property
    def running(self) -> bool:
        return self.state == "running"

    def exit(self, code: int, now: float) -> None:
        """The container's main process ended (or was stopped, or the guest went down): no process runs any more.
        (``paused`` is left as it was: only ``docker stop`` clears it.)"""
        self.state, self.exit_code, self.finished, self.processes = "exited", code, now, []

    def to_state(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "image_ref": self.image_ref, "image_id": self.image_id,
                "os_version": self.os_version, "command": list(self.command), "entrypoint": list(self.entrypoint),
                "cmd": list(self.cmd), "created": self.created, "started": self.started, "finished": self.finished,
                "state": self.state, "exit_code": self.exit_code, "isolation": self.isolation,
                "interactive": self.interactive, "tty": self.tty, "detach": self.detach,
                "stdin_once": self.stdin_once, "auto_remove": self.auto_remove, "logs": list(self.logs),
                "env": list(self.env), "ports": list(self.ports), "processes": list(self.processes), "ip": self.ip,
                "hostname": self.hostname, "user": self.user, "family": self.family, "apps": list(self.apps),
                "paused": self.paused}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> Container:
        command = [str(a) for a in s.get("command") or []]
        return cls(
            str(s["id"]), str(s.get("name", "")), str(s.get("image_ref", "")), str(s.get("image_id", "")),
            str(s.get("os_version", "")), command, [str(a) for a in s.get("entrypoint") or []],
            [str(a) for a in s["cmd"]] if s.get("cmd") is not None else list(command),
            float(s.get("created") or 0.0), _float(s.get("started")), _float(s.get("finished")),
            str(s.get("state", "created")), int(s.get("exit_code") or 0), str(s.get("isolation", "process")),
            bool(s.get("interactive")), bool(s.get("tty")), bool(s.get("detach")), bool(s.get("stdin_once")),
            bool(s.get("auto_remove")), [str(x) for x in s.get("logs") or []], [str(x) for x in s.get("env") or []],
            [str(x) for x in s.get("ports") or []], [str(x) for x in s.get("processes") or []],
            str(s.get("ip") or ""), str(s.get("hostname") or ""), str(s.get("user") or ""),
            str(s.get("family") or ""), [str(x) for x in s.get("apps") or []], bool(s.get("paused")))


@dataclass
class DockerService:
    """The installed engine: the release expanded from the zip, the docker service (registered with
    ``dockerd --register-service``, Running or Stopped, its fatal start error) and the daemon.json it runs with."""

    version: str
    zip_sha256: str
    registered: bool = False
    status: str = "Stopped"  # Running | Stopped
    error: str | None = None  # dockerd's fatal start error, when it did not start
    config: dict[str, Any] = field(default_factory=dict)  # daemon.json as dockerd parsed it at its last start
    started_at: float | None = None
    daemon_json: str = ""  # daemon.json as written

    @property
    def running(self) -> bool:
        return self.status == "Running"


    def to_state(self) -> dict[str, Any]:
        return {"version": self.version, "zip_sha256": self.zip_sha256, "registered": self.registered,
                "status": self.status, "error": self.error, "config": dict(self.config),
                "started_at": self.started_at, "daemon_json": self.daemon_json}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> DockerService:
        return cls(str(s.get("version", "")), str(s.get("zip_sha256", "")), bool(s.get("registered")),
                   str(s.get("status", "Stopped")), s.get("error"), dict(s.get("config") or {}),
                   _float(s.get("started_at")), str(s.get("daemon_json", "")))


@dataclass
class FirewallRule:
    """An inbound rule in the guest's Windows Firewall (the docker-tls step's). On disk with the rule's
    PowerShell property names."""

    direction: str
    protocol: str
    local_port: str
    action: str
    enabled: bool

    def allows_inbound_tcp(self, port: int) -> bool:
        return self.enabled and self.direction == "Inbound" and str(self.local_port) == str(port)

    def to_state(self) -> dict[str, Any]:
        return {"Direction": self.direction, "Protocol": self.protocol, "LocalPort": self.local_port,
                "Action": self.action, "Enabled": self.enabled}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> FirewallRule:
        return cls(str(s.get("Direction", "")), str(s.get("Protocol", "")), str(s.get("LocalPort", "")),
                   str(s.get("Action", "")), bool(s.get("Enabled")))


def _copy(value: list[str] | None) -> list[str] | None:
    return None if value is None else list(value)


def _strings(value: Any) -> list[str] | None:
    return None if value is None else [str(v) for v in value]


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
