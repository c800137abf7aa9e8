r"""The simulated guest as a Windows container host: Windows features, the Docker engine, images, containers.

State lives in ``ContainerHost`` (``guest.container_host``), persisted with the guest (JSON-able).
Files the real tools read or write are real files on the guest's system disk (``world.storage``):
the Docker zip labctl copies in, ``C:\Program Files\docker\*.exe``, ``daemon.json``, the TLS
certificates, and ``docker save`` tars (small but real tars whose ``manifest.json`` names the image
and its ``os.version``; sizes are modeled in metadata).

What Windows and Docker refuse, this model refuses with their text (sources in comments):

- Install-WindowsFeature Hyper-V on a VM without ExposeVirtualizationExtensions (prerequisite check);
- a feature is InstallPending until the guest reboots;
- dockerd does not start without the Containers feature (hns/vmcompute missing);
- process isolation needs image build == host build (WS2025 also runs ltsc2022): HCS refuses to create the
  compute system ("The container operating system does not match the host operating system.", 0xc0370101);
- Hyper-V isolation needs the Hyper-V feature and a hypervisor (the VM's virtualization extensions);
  an older image works, a newer one never (and a newer image cannot even be pulled);
- an image in use is not removed (moby's image_delete.go conflicts), a running container is not committed or
  (process isolation) paused.

The HCS texts follow the engine version the guest runs (moby vendors hcsshim: ``hcsshim::`` operation names
through 20.10, ``hcs::`` from 23.0, the command line in CreateProcess errors from 25.0). Container processes
are modeled, not run (hvsim.docker.models.processes): ``cmd /c ver`` prints the kernel build the container
sees (the image's under Hyper-V isolation, the guest's under process isolation), ``ipconfig`` its address on the
nat network, ``hostname`` its id prefix. Durations (container starts, pulls, installs) are accounted on the world
clock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import io
import ipaddress
import json
import re
import tarfile
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hvsim.docker import errors as E
from hvsim.docker.errors import DockerError
from hvsim.docker.models import processes as P
from hvsim.docker.models import registry as R
from hvsim.docker.models.processes import ProcessRun
from hvsim.docker.models.records import Container, DockerService, FirewallRule, Image, ImageConfig, Layer
from hvsim.docker.models.releases import MIN_API_VERSION, api_version_for, engine_release, go_version_for
from hvsim.powershell.errors import PSError

if TYPE_CHECKING:
    from hvsim.world import World

# --------------------------------------------------------------------------------------------- constants

INSTALLED = "Installed"
PENDING = "InstallPending"
# Pending, and the guest was reset or turned off before its shutdown ran: Get-WindowsFeature still says
# InstallPending, the next boot rolls the install back (see ContainerHost.on_reset).
INTERRUPTED = "InstallPending (interrupted)"
CBS_LOG = "Windows\\Logs\\CBS\\CBS.log"
MSG_FEATURES_REVERTED = "Failure configuring Windows features. Reverting changes. Do not turn off your computer."
FEATURES: dict[str, str] = {"Containers": "Containers", "Hyper-V": "Hyper-V"}  # name -> display name

# docs/facts.md "Nested virtualization" (Install-WindowsFeature in a guest without the extensions).
MSG_HYPERV_PREREQ = ("A prerequisite check for the Hyper-V feature failed.\n"
                     "1. Hyper-V cannot be installed: The processor does not have required virtualization "
                     "capabilities.")
HYPERV_PREREQ_ID = "Alteration_PrerequisiteCheck_Failed"
ADD_FEATURE_TYPE = "Microsoft.Windows.ServerManager.Commands.AddWindowsFeatureCommand"

PROGRAM_FILES_DOCKER = "C:\\Program Files\\docker"
DAEMON_JSON = "C:\\ProgramData\\docker\\config\\daemon.json"
CERT_DIR = "C:\\ProgramData\\docker\\certs.d"
DOCKER_ROOT = "C:\\ProgramData\\docker"
FIREWALL_RULE = "labctl Docker TLS"

_KERNEL_TAGS = {17763: "17763.1.amd64fre.rs5_release.180914-1434",
                20348: "20348.1.amd64fre.fe_release.210507-1500",
                26100: "26100.1.amd64fre.ge_release.240331-1435",
                14393: "14393.0.amd64fre.rs1_release.160715-1616"}
_OS_RELEASE_NAMES = {17763: "1809", 20348: "21H2", 26100: "24H2", 14393: "1607"}

# Memory a Hyper-V isolated container costs the guest beyond its processes: the utility VM (vmmem).
# Estimate: an idle utility VM's working set (its configured size is 1 GB, virtual-address backed).
UVM_OVERHEAD_MB = {R.NANOSERVER: 180, R.SERVERCORE: 350}
UVM_OVERHEAD_DEFAULT_MB = 250
# Exit code docker shows for containers stopped by a guest shutdown: STATUS_CONTROL_C_EXIT 0x40010004
# (seen on Windows hosts after a reboot; unconfirmed for every Docker version).
EXIT_SHUTDOWN = 1073807364

KNOWN_DAEMON_KEYS = {
    "hosts", "tls", "tlsverify", "tlscacert", "tlscert", "tlskey", "exec-opts", "fixed-cidr", "bridge", "dns",
    "dns-search", "data-root", "debug", "log-level", "group", "insecure-registries", "registry-mirrors",
    "storage-opts", "storage-driver", "max-concurrent-downloads", "max-concurrent-uploads", "labels",
    "experimental", "features", "log-driver", "log-opts", "mtu", "allow-nondistributable-artifacts",
    "max-download-attempts", "shutdown-timeout", "raw-logs", "live-restore", "default-ulimits",
}

_ADJECTIVES = ["admiring", "bold", "brave", "clever", "eager", "focused", "gallant", "happy", "jolly",
               "keen", "loving", "nifty", "quirky", "serene", "stoic", "vibrant", "wizardly", "zen"]
_SURNAMES = ["babbage", "cerf", "dijkstra", "hopper", "kare", "lamport", "lovelace", "mccarthy", "noether",
             "ritchie", "shannon", "thompson", "torvalds", "turing", "wozniak", "yalow"]


# --------------------------------------------------------------------------------------------- helpers


def _git_commit(version: str, part: str) -> str:
    return hashlib.sha1(f"{part}-{version}".encode()).hexdigest()[:7]  # noqa: S324 - an identifier, not security


def kernel_version(build: int) -> str:
    """What docker reports as KernelVersion on Windows: "10.0 20348 (20348.1.amd64fre...)"."""
    return f"10.0 {build} ({_KERNEL_TAGS.get(build, f'{build}.1.amd64fre.release')})"


def guest_revision(build: int) -> int:
    return R.GUEST_REVISIONS.get(build, 1)


def human_duration(seconds: float) -> str:
    """go-units HumanDuration (docker ps/images CREATED and STATUS)."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def human_size(size: float) -> str:
    """go-units HumanSizeWithPrecision(size, 3): decimal units as docker images shows them."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    value = float(size)
    while value >= 1000 and i < len(units) - 1:
        value /= 1000
        i += 1
    return f"{value:.3g}{units[i]}"


def iso_to_epoch(text: str) -> float:
    return _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def epoch_to_iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, tz=_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def guest_inner(path: str) -> str | None:
    r"""C:\x\y -> \x\y (the system volume's inner path); None for another drive."""
    p = path.strip().strip('"').replace("/", "\\")
    if len(p) >= 2 and p[1] == ":":
        if p[0].upper() != "C":
            return None
        p = p[2:]
    if not p.startswith("\\"):
        # Relative to the session's working directory (the user's Documents folder).
        p = "\\Users\\Administrator\\Documents\\" + p
    return p


def spend(world: World, actor: str, key: str, factor: float = 1.0) -> float:
    """Place a modeled duration for ``actor`` on the timeline; in the realistic profile block for the interval it
    got without the world lock."""
    seconds = world.clock.account(actor, key, factor)
    if world.clock.fanning():  # a branch of a fan-out (Invoke-Command to several VMs): it waits once, at its end
        return seconds
    if world.clock.wall_seconds(seconds) > 0:
        try:
            world.lock.release()
        except RuntimeError:  # not held (direct model calls in tests): just wait
            world.clock.sleep(seconds)
            return seconds
        try:
            world.clock.sleep(seconds)
        finally:
            world.lock.acquire()
    return seconds


# --------------------------------------------------------------------------------------------- the Docker zip


def simulated_docker_zip(version: str) -> bytes:
    """A real zip laid out like download.docker.com's static Windows zip, holding SIMULATED placeholders.

    Deterministic (fixed timestamps), so its SHA-256 is stable for a version.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in ("docker", "dockerd"):
            info = zipfile.ZipInfo(f"docker/{name}.exe", date_time=(2024, 9, 20, 11, 41, 18))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            text = (f"SIMULATED {name}.exe {version} - a placeholder from the labctl Hyper-V host simulator, "
                    f"not the Docker binary. The simulated guest models Docker Engine {version}.\r\n")
            zf.writestr(info, text.encode("ascii"))
    return buf.getvalue()


def zip_version(zip_path: str) -> str | None:
    """"C:\\labctl\\docker-27.3.1.zip" -> "27.3.1"."""
    m = re.search(r"docker-([0-9][0-9A-Za-z.+~-]*)\.zip$", zip_path.strip().replace("/", "\\"), re.IGNORECASE)
    return m.group(1) if m else None


# --------------------------------------------------------------------------------------------- state


@dataclass
class ContainerHost:
    """Everything container-related a guest keeps across calls, boots and simulator restarts."""

    features: dict[str, str] = field(default_factory=dict)  # name -> Installed | InstallPending
    firewall_rules: dict[str, FirewallRule] = field(default_factory=dict)  # display name -> rule
    docker: DockerService | None = None  # the installed engine (see install_docker)
    images: dict[str, Image] = field(default_factory=dict)  # image id -> image
    containers: dict[str, Container] = field(default_factory=dict)  # container id -> container
    seq: int = 0  # container/exec counter (stable ids)
    machine_path: list[str] = field(default_factory=list)  # entries labctl added to the machine PATH

    def to_state(self) -> dict[str, Any]:
        """JSON-able; the keys of every record are those the dict records had (see records.py)."""
        return json.loads(json.dumps({
            "features": self.features,
            "firewall_rules": {name: rule.to_state() for name, rule in self.firewall_rules.items()},
            "docker": self.docker.to_state() if self.docker is not None else None,
            "images": {iid: img.to_state() for iid, img in self.images.items()},
            "containers": {cid: c.to_state() for cid, c in self.containers.items()}, "seq": self.seq,
            "machine_path": self.machine_path,
        }))

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> ContainerHost:
        s = dict(state or {})
        docker = s.get("docker")
        return cls(dict(s.get("features", {})),
                   {name: FirewallRule.from_state(r) for name, r in (s.get("firewall_rules") or {}).items()},
                   DockerService.from_state(docker) if docker is not None else None,
                   {iid: Image.from_state(img) for iid, img in (s.get("images") or {}).items()},
                   {cid: Container.from_state(c) for cid, c in (s.get("containers") or {}).items()},
                   int(s.get("seq", 0)), list(s.get("machine_path", [])))

    # ----------------------------------------------------------------------------- features

    def feature_state(self, name: str) -> str:
        state = self.features.get(_feature_name(name) or name, "Available")
        return PENDING if state == INTERRUPTED else state

    def installed(self, name: str) -> bool:
        return self.features.get(name) == INSTALLED

    # ----------------------------------------------------------------------------- boot hooks

    def on_boot(self, world: World, vm: Any) -> None:
        """The guest boots: pending features finish (or, after a reset, are rolled back), containers are gone,
        dockerd starts (auto)."""
        reverted = [name for name, state in self.features.items() if state == INTERRUPTED]
        for name, state in list(self.features.items()):
            if state == PENDING:
                self.features[name] = INSTALLED
            elif state == INTERRUPTED:
                del self.features[name]  # back to Available
        if reverted:
            _cbs_log(world, vm, [f"Failed to finish the installation of {', '.join(sorted(reverted))}: the "
                                 "system was reset before the shutdown phase of the install ran.",
                                 MSG_FEATURES_REVERTED])
        self._stop_all(world)
        if self.docker and self.docker.registered:
            start_daemon(world, vm, self)

    def on_shutdown(self, world: World) -> None:
        """The guest shuts down: running containers exit, the engine stops (pending features are configured in
        the shutdown phase and finish at the next boot)."""
        self._stop_all(world)
        if self.docker:
            self.docker.status = "Stopped"

    def on_reset(self, world: World) -> None:
        """A reset or power-off (Restart-VM, Stop-VM -TurnOff): nothing in the guest shuts down.

        Windows configures a feature install in two phases, the first while the system shuts down; a reset skips
        it, and the next boot rolls the install back ("Failure configuring Windows features. Reverting changes.").
        Modeled so that a hard reset is never as good as a reboot: the feature must be installed again.
        """
        for name, state in list(self.features.items()):
            if state == PENDING:
                self.features[name] = INTERRUPTED
        self._stop_all(world)
        if self.docker:
            self.docker.status = "Stopped"

    def _stop_all(self, world: World) -> None:
        now = world.clock.now()
        for cid, c in list(self.containers.items()):
            if c.running:
                c.exit(EXIT_SHUTDOWN, now)
                if c.auto_remove:
                    del self.containers[cid]

    # ----------------------------------------------------------------------------- engine

    def daemon_config(self) -> dict[str, Any]:
        return dict(self.docker.config) if self.docker else {}

    def default_isolation(self) -> str:
        for opt in self.daemon_config().get("exec-opts", []) or []:
            k, _, v = str(opt).partition("=")
            if k.strip().lower() == "isolation" and v.strip().lower() in ("hyperv", "process"):
                return v.strip().lower()
        return "process"  # Windows Server's default (docs/facts.md)

    def nat_subnet(self, vm: Any) -> str:
        cidr = self.daemon_config().get("fixed-cidr")
        if cidr:
            return str(ipaddress.ip_network(str(cidr), strict=False))
        # HNS picks a /20 from 172.16.0.0/12 for the default nat network; stable per VM here.
        h = hashlib.sha256(f"nat|{vm.id}".encode()).digest()
        return f"172.{16 + h[0] % 16}.{(h[1] % 16) * 16}.0/20"

    def nat_gateway(self, vm: Any) -> str:
        net = ipaddress.ip_network(self.nat_subnet(vm))
        return str(net.network_address + 1)


def _feature_name(name: str) -> str | None:
    for known in FEATURES:
        if known.lower() == str(name).strip().lower():
            return known
    return None


def host_of(guest: Any) -> ContainerHost:
    """The guest's container state (created on first use)."""
    ch = getattr(guest, "container_host", None)
    if ch is None:
        ch = ContainerHost()
        guest.container_host = ch
    return ch


# --------------------------------------------------------------------------------------------- features


@dataclass
class FeatureResult:
    """What Install-WindowsFeature did: the features it changed (each InstallPending until the next boot)."""

    changed: list[str]


def install_features(world: World, vm: Any, guest: Any, names: list[str]) -> FeatureResult:
    """Install-WindowsFeature -Name <names> (no -Restart): InstallPending until the next boot.

    Hyper-V's prerequisite check fails on a VM whose processor does not expose virtualization
    extensions; the whole call fails then (nothing is installed), as Server Manager does.
    """
    ch = host_of(guest)
    wanted: list[str] = []
    for raw in names:
        name = _feature_name(raw)
        if name is None:
            # Install-WindowsFeature's text for an unknown name (ServerManager; unconfirmed FQID).
            raise PSError(f"ArgumentNotValid: The role, role service, or feature name is not valid: '{raw}'. The "
                          f"name was not found.", "NameDoesNotExist", "InvalidArgument", target=raw,
                          exception_type="System.Exception")
        if ch.features.get(name) is None and name not in wanted:
            wanted.append(name)
    if "Hyper-V" in wanted and not getattr(vm, "expose_virtualization_extensions", False):
        err = PSError(MSG_HYPERV_PREREQ, HYPERV_PREREQ_ID, "InvalidOperation", target="Hyper-V",
                      exception_type="System.Exception", bare=True)
        err.error_id = f"{HYPERV_PREREQ_ID},{ADD_FEATURE_TYPE}"
        raise err
    for name in wanted:
        spend(world, vm.name, "install_feature_hyperv" if name == "Hyper-V" else "install_feature_containers")
        ch.features[name] = PENDING
        world.counters.add_guest(vm.name, "feature_installs")
    return FeatureResult(wanted)


def _cbs_log(world: World, vm: Any, lines: list[str]) -> None:
    """Append servicing lines to the guest's C:\\Windows\\Logs\\CBS\\CBS.log."""
    disk = vm.hard_drives[0] if getattr(vm, "hard_drives", None) else None
    if not disk:
        return
    stamp = _dt.datetime.fromtimestamp(world.clock.now(), tz=_dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    text = "".join(f"{stamp}, Error                 CBS    {line}\r\n" for line in lines)
    with contextlib.suppress(PSError):  # a full guest volume loses the lines, as on a real disk
        world.storage.write_file(disk, CBS_LOG, text.encode("utf-8"), append=True)


def feature_rows(guest: Any, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Get-WindowsFeature rows for the modeled features (Name, DisplayName, InstallState)."""
    ch = host_of(guest)
    picked = list(FEATURES) if not names else [n for n in FEATURES if any(n.lower() == x.lower() for x in names)]
    return [{"Name": n, "DisplayName": FEATURES[n], "InstallState": ch.feature_state(n),
             "Installed": ch.features.get(n) == INSTALLED} for n in picked]


# --------------------------------------------------------------------------------------------- docker install


class DockerFailure(Exception):
    """A failure of the modeled docker-install step (its text says what to do)."""


def parse_daemon_json(text: str) -> dict[str, Any]:
    """daemon.json as dockerd reads it; errors use dockerd's wording."""
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise DockerFailure(E.daemon_json_syntax(DAEMON_JSON, exc.lineno, exc.colno, exc.msg)) from None
    if not isinstance(data, dict):
        raise DockerFailure(E.daemon_json_not_an_object(DAEMON_JSON, type(data).__name__))
    unknown = sorted(k for k in data if k not in KNOWN_DAEMON_KEYS)
    if unknown:
        raise DockerFailure(E.daemon_json_unknown_keys(DAEMON_JSON, unknown))
    return data


def tcp_port_of(config: dict[str, Any]) -> int | None:
    for host in config.get("hosts", []) or []:
        m = re.match(r"^tcp://[^:]*:(\d+)$", str(host).strip())
        if m:
            return int(m.group(1))
    return None


def _tls_paths(config: dict[str, Any]) -> tuple[str, str, str]:
    return (str(config.get("tlscacert") or f"{CERT_DIR}\\ca.pem"),
            str(config.get("tlscert") or f"{CERT_DIR}\\server-cert.pem"),
            str(config.get("tlskey") or f"{CERT_DIR}\\server-key.pem"))


def _read_guest(world: World, vm: Any, path: str) -> bytes | None:
    inner = guest_inner(path)
    if inner is None or not vm.hard_drives:
        return None
    return world.storage.read_file(vm.hard_drives[0], inner)


def _write_guest(world: World, vm: Any, path: str, data: bytes) -> None:
    inner = guest_inner(path)
    if inner is None:
        raise PSError(f"Cannot find drive. A drive with the name '{path[:1]}' does not exist.", "DriveNotFound",
                      "ObjectNotFound", target=path[:1],
                      exception_type="System.Management.Automation.DriveNotFoundException")
    world.storage.write_file(vm.hard_drives[0], inner, data)


def start_daemon(world: World, vm: Any, ch: ContainerHost) -> str | None:
    """Start the docker service: None when dockerd runs, else its fatal error (service Stopped)."""
    d = ch.docker
    if d is None:
        return "the docker service is not installed"
    error: str | None = None
    config: dict[str, Any] = {}
    if not ch.installed("Containers"):
        error = E.MSG_NO_CONTAINERS_FEATURE
    else:
        try:
            config = parse_daemon_json(d.daemon_json)
        except DockerFailure as exc:
            error = str(exc)
        if error is None and config.get("tlsverify") and tcp_port_of(config) is not None:
            for index, path in enumerate(_tls_paths(config)):
                if _read_guest(world, vm, path) is None:
                    error = E.tls_file_missing(path, ca=index == 0)
                    break
    d.status = "Stopped" if error else "Running"
    d.error = error
    d.started_at = world.clock.now() if error is None else None
    if error is None:
        d.config = config
    return error


@dataclass
class InstallResult:
    """What the docker-install step changed and observed."""

    changed: bool
    client_version: str
    server_version: str | None
    service_status: str
    nat_subnet: str | None
    error: str | None


def install_docker(world: World, vm: Any, guest: Any, zip_path: str, sha256: str, daemon_json: str,
                   timeout_seconds: int) -> InstallResult:
    """templates/guest/docker-install.ps1: verify, expand, configure, register, (re)start, wait."""
    ch = host_of(guest)
    data = _read_guest(world, vm, zip_path)
    if data is None:
        # Get-FileHash on a missing path (5.1's function resolves the path first).
        raise PSError(f"Cannot find path '{zip_path}' because it does not exist.", "PathNotFound",
                      "ObjectNotFound", target=zip_path,
                      exception_type="System.Management.Automation.ItemNotFoundException")
    actual = hashlib.sha256(data).hexdigest().upper()
    if sha256 and actual != sha256.strip().upper():
        raise DockerFailure(f"SHA-256 of {zip_path} is {actual}, expected {sha256.strip().upper()}: the file is "
                            f"corrupt or not the expected Docker release. Delete it and run the step again.")
    version = zip_version(zip_path)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = {n.replace("\\", "/").lower(): n for n in zf.namelist()}
            missing = [n for n in ("docker/docker.exe", "docker/dockerd.exe") if n not in names]
            if missing:
                raise DockerFailure(f"{zip_path} does not contain {', '.join(m.replace('/', chr(92)) for m in missing)}"
                                    f": it is not a Docker static zip for Windows.")
            binaries = {n: zf.read(names[n]) for n in ("docker/docker.exe", "docker/dockerd.exe")}
    except zipfile.BadZipFile:
        # Expand-Archive on a file that is not a zip (System.IO.Compression; unconfirmed wording).
        raise DockerFailure(f"Exception calling \"ExtractToFile\": \"{zip_path} is not a valid zip archive: End of "
                            f"Central Directory record could not be found.\"") from None
    if version is None:
        raise DockerFailure(f"Cannot tell the Docker version from {zip_path}: the zip must be named "
                            f"docker-<version>.zip.")
    changed = False
    for inner_name, content in binaries.items():
        target = f"{PROGRAM_FILES_DOCKER}\\{inner_name.split('/')[-1]}"
        if _read_guest(world, vm, target) != content:
            _write_guest(world, vm, target, content)
            changed = True
    if PROGRAM_FILES_DOCKER.lower() not in (p.lower() for p in ch.machine_path):
        ch.machine_path.append(PROGRAM_FILES_DOCKER)
        changed = True
    current = _read_guest(world, vm, DAEMON_JSON)
    wanted = daemon_json.encode("utf-8")  # UTF-8 without BOM
    if current != wanted:
        _write_guest(world, vm, DAEMON_JSON, wanted)
        changed = True
    d = ch.docker
    if d is None or d.version != version or d.zip_sha256 != actual:
        if d is None:
            spend(world, vm.name, "docker_install")
            world.counters.add_guest(vm.name, "docker_installs")
        d = DockerService(version, actual)
        ch.docker = d
        changed = True
    d.daemon_json = daemon_json
    if not d.registered:
        d.registered = True  # dockerd --register-service
        changed = True
    error: str | None = None
    if changed or not d.running:
        was_running = d.running
        error = start_daemon(world, vm, ch)
        changed = changed or (not was_running and error is None)  # the service was started
    running = d.running
    return InstallResult(changed, version, version if running else None, "Running" if running else "Stopped",
                         ch.nat_subnet(vm) if running else None, error)


def write_tls(world: World, vm: Any, guest: Any, ca: str, cert: str, key: str) -> bool:
    """templates/guest/docker-tls.ps1: certificates into certs.d and the firewall rule; True if changed."""
    ch = host_of(guest)
    changed = False
    for name, pem in (("ca.pem", ca), ("server-cert.pem", cert), ("server-key.pem", key)):
        path = f"{CERT_DIR}\\{name}"
        data = pem.encode("ascii", errors="replace")
        if _read_guest(world, vm, path) != data:
            _write_guest(world, vm, path, data)
            changed = True
    if FIREWALL_RULE not in ch.firewall_rules:
        ch.firewall_rules[FIREWALL_RULE] = FirewallRule("Inbound", "TCP", "2376", "Allow", True)
        changed = True
    return changed


# --------------------------------------------------------------------------------------------- engine view


def daemon_running(world: World, vm: Any, guest: Any) -> bool:
    ch = host_of(guest)
    return bool(ch.docker and ch.docker.running and guest.is_ready(world, vm))


@dataclass
class DockerEngine:
    """A guest's Docker engine as the Docker Engine API serves it (for hvsim/docker/api.py)."""

    world: World
    vm: Any
    version: str
    api_version: str
    running: bool
    os_build: int
    tcp_port: int | None
    tls: tuple[str, str, str] | None
    # Windows Firewall blocks inbound TCP by default: a client outside the guest reaches tcp_port only
    # when an inbound allow rule covers it (the docker-tls step adds "labctl Docker TLS").
    firewall_allows_tcp: bool = False

    @property
    def _host(self) -> ContainerHost:
        return host_of(self.vm.guest)

    def version_info(self) -> dict[str, Any]:
        """GET /version."""
        v = self.version
        kernel = kernel_version(self.os_build)
        built = "2024-09-20T11:41:19.000000000+00:00"
        details = {"ApiVersion": self.api_version, "Arch": "amd64", "BuildTime": built, "Experimental": "false",
                   "GitCommit": _git_commit(v, "engine"), "GoVersion": go_version_for(v), "KernelVersion": kernel,
                   "MinAPIVersion": MIN_API_VERSION, "Os": "windows"}
        return {"Platform": {"Name": "Docker Engine - Community"},
                "Components": [{"Name": "Engine", "Version": v, "Details": details}],
                "Version": v, "ApiVersion": self.api_version, "MinAPIVersion": MIN_API_VERSION,
                "GitCommit": details["GitCommit"], "GoVersion": details["GoVersion"], "Os": "windows",
                "Arch": "amd64", "KernelVersion": kernel, "BuildTime": built}

    def info(self) -> dict[str, Any]:
        """GET /info."""
        return engine_info(self.world, self.vm, self._host, self.version)

    def list_containers(self, all: bool = False) -> list[dict[str, Any]]:
        """GET /containers/json[?all=1]."""
        now = self.world.clock.now()
        ch = self._host
        out = []
        for c in sorted(ch.containers.values(), key=lambda c: -float(c.created)):
            if not all and c.state != "running":
                continue
            out.append({
                "Id": c.id, "Names": ["/" + c.name], "Image": c.image_ref, "ImageID": c.image_id,
                "Command": " ".join(c.command), "Created": int(c.created), "Ports": [], "Labels": {},
                "State": "paused" if c.paused else c.state, "Status": container_status(c, now),
                "HostConfig": {"NetworkMode": "nat", "Isolation": c.isolation},
                "NetworkSettings": {"Networks": {"nat": {"IPAddress": c.ip,
                                                         "Gateway": ch.nat_gateway(self.vm),
                                                         "NetworkID": network_id(self.vm)}}},
                "Mounts": [],
            })
        return out

    def list_images(self) -> list[dict[str, Any]]:
        """GET /images/json."""
        out = []
        for img in sorted(self._host.images.values(), key=lambda i: -iso_to_epoch(i.created)):
            out.append({"Containers": -1, "Created": int(iso_to_epoch(img.created)), "Id": img.id,
                        "Labels": None, "ParentId": img.parent, "RepoDigests": list(img.digests),
                        "RepoTags": list(img.tags), "SharedSize": -1, "Size": int(img.size)})
        return out


def docker_engine(world: World, vm: Any) -> DockerEngine | None:
    """The Docker engine of ``vm``'s guest, or None when Docker is not installed there."""
    guest = vm.guest
    ch = host_of(guest)
    d = ch.docker
    if d is None:
        return None
    running = daemon_running(world, vm, guest)
    config = ch.daemon_config()
    tls: tuple[str, str, str] | None = None
    if running and config.get("tlsverify"):
        pems = [_read_guest(world, vm, p) for p in _tls_paths(config)]
        if all(p is not None for p in pems):
            ca, cert, key = (p.decode("ascii", errors="replace") for p in pems if p is not None)
            tls = (ca, cert, key)
    port = tcp_port_of(config)
    allowed = port is not None and any(r.allows_inbound_tcp(port) for r in ch.firewall_rules.values())
    return DockerEngine(world, vm, d.version, api_version_for(d.version), running,
                        int(guest.os_build or 0), port, tls, allowed)


def network_id(vm: Any) -> str:
    return hashlib.sha256(f"nat-network|{vm.id}".encode()).hexdigest()


def operating_system(build: int) -> str:
    """dockerd's OperatingSystem on Windows (moby pkg/parsers/operatingsystem windows_os_string.go): "Microsoft
    Windows Server", " Version " and the registry's DisplayVersion (ReleaseId before 20H2) when there is one,
    " (OS Build <build>.<UBR>)"; e.g. "Microsoft Windows Server Version 21H2 (OS Build 20348.1970)"
    (microsoft/Windows-Containers#374)."""
    release = _OS_RELEASE_NAMES.get(build)
    version = f" Version {release}" if release else ""
    return f"Microsoft Windows Server{version} (OS Build {build}.{guest_revision(build)})"


def insecure_registry_cidrs(version: str) -> list[str]:
    """Loopback registries dockerd trusts without TLS: 127.0.0.0/8, and ::1/128 from 28.0 (moby registry/config.go)."""
    return ["::1/128", "127.0.0.0/8"] if engine_release(version) >= (28, 0) else ["127.0.0.0/8"]


def engine_info(world: World, vm: Any, ch: ContainerHost, version: str) -> dict[str, Any]:
    """The /info document (also what `docker info` prints)."""
    guest = vm.guest
    build = int(guest.os_build or 0)
    states = ["paused" if c.paused else c.state for c in ch.containers.values()]
    return {
        "ID": hashlib.sha256(f"engine|{vm.id}".encode()).hexdigest()[:36],
        "Containers": len(states), "ContainersRunning": states.count("running"),
        "ContainersPaused": states.count("paused"),
        "ContainersStopped": len(states) - states.count("running") - states.count("paused"),
        "Images": len(ch.images),
        "Driver": "windowsfilter", "DriverStatus": [["Windows", ""]],
        "Plugins": {"Volume": ["local"],
                    "Network": ["ics", "internal", "l2bridge", "l2tunnel", "nat", "null", "overlay", "private",
                                "transparent"],
                    "Authorization": None,
                    "Log": ["awslogs", "etwlogs", "fluentd", "gcplogs", "gelf", "json-file", "local", "splunk",
                            "syslog"]},
        "MemoryLimit": False, "SwapLimit": False, "CpuCfsPeriod": False, "CpuCfsQuota": False,
        "IPv4Forwarding": True, "Debug": False, "NFd": -1, "NGoroutines": 30,
        "SystemTime": epoch_to_iso(world.clock.now()), "LoggingDriver": "json-file", "CgroupDriver": "",
        "KernelVersion": kernel_version(build),
        "OperatingSystem": operating_system(build),
        "OSVersion": f"10.0.{build}", "OSType": "windows", "Architecture": "x86_64",
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"InsecureRegistryCIDRs": insecure_registry_cidrs(version), "Mirrors": []},
        "NCPU": int(getattr(vm, "processor_count", 1) or 1), "MemTotal": int(getattr(vm, "memory_startup", 0) or 0),
        "DockerRootDir": DOCKER_ROOT, "Name": guest.computer_name or "", "Labels": [],
        "ExperimentalBuild": False, "ServerVersion": version, "Runtimes": {}, "DefaultRuntime": "",
        "Swarm": {"LocalNodeState": "inactive"}, "LiveRestoreEnabled": False,
        "Isolation": ch.default_isolation(), "InitBinary": "", "SecurityOptions": [],
    }


def container_status(c: Container, now: float) -> str:
    """docker ps STATUS."""
    if c.state == "running":
        up = "Up " + human_duration(now - float(c.started or now))
        return f"{up} (Paused)" if c.paused else up
    if c.state == "created":
        return "Created"
    return f"Exited ({c.exit_code}) {human_duration(now - float(c.finished or now))} ago"


# --------------------------------------------------------------------------------------------- images


def _ref_key(ref: str) -> str | None:
    """The reference store's key for ``ref`` ("repo:tag" or "repo@digest", tag "latest" when absent), None for an
    id or an unparsable reference."""
    try:
        repo, tag, digest = R.parse_reference(ref.strip())
    except R.ReferenceError:
        return None
    if not repo:
        return None
    return f"{repo}@{digest}" if digest and not tag else f"{repo}:{tag or 'latest'}"


def find_image(ch: ContainerHost, ref: str) -> Image | None:
    """A local image as dockerd's GetImage finds it: by reference (repo[:tag], repo@digest), else by image id or a
    unique id prefix (daemon/images/image.go)."""
    text = ref.strip()
    key = _ref_key(text)
    if key is not None:
        for img in ch.images.values():
            if key in img.tags or key in img.digests:
                return img
    hexpart = text[7:] if text.startswith("sha256:") else text
    if re.fullmatch(r"[0-9a-f]{1,64}", hexpart):
        matches = [img for img in ch.images.values() if img.id[7:].startswith(hexpart)]
        if len(matches) == 1:
            return matches[0]
    return None


# Where Windows' docker keeps image layers (data-root\windowsfilter): one placeholder per layer that takes the
# layer's modeled size in the guest volume (shared by every image built on it), so a full disk refuses a pull or a
# load as on a real guest.
LAYER_DIR = "\\ProgramData\\docker\\windowsfilter"


def layer_path(layer_id: str) -> str:
    return f"{LAYER_DIR}\\{layer_id.removeprefix('sha256:')[:64]}\\layer.vhd"


def _layers_in_use(ch: ContainerHost, but: str | None = None) -> set[str]:
    return {layer.id for img in ch.images.values() if img.id != but for layer in img.layers}


def reserve_image_space(world: World, vm: Any, layer_id: str, size: int, *, pulling: bool) -> None:
    """Account a layer on the guest's system disk. A full disk fails the pull in its progress stream
    (RegistryError, like the other pull failures) or the load (DockerError)."""
    try:
        world.storage.write_placeholder(vm.hard_drives[0], layer_path(layer_id), size)
    except PSError:
        if pulling:
            raise R.RegistryError(E.NO_SPACE, before_stream=False) from None
        raise DockerError(E.from_daemon(E.NO_SPACE), E.EXIT_ERROR) from None


def release_image_space(world: World, vm: Any, ch: ContainerHost, img: Image) -> list[str]:
    """An image is deleted: its layers no other image uses are freed (the VHD file does not shrink). Returns their
    ids, top layer first (as dockerd lists what it deleted)."""
    keep = _layers_in_use(ch, but=img.id)
    freed = [layer.id for layer in reversed(img.layers) if layer.id not in keep]
    for layer in freed:
        world.storage.delete_file(vm.hard_drives[0], layer_path(layer))
    return freed





def image_config(img: Image | None) -> ImageConfig:
    """The image's configuration (a copy); no image: the default (cmd.exe)."""
    return dataclasses.replace(img.config) if img is not None else ImageConfig()


def image_family(img: Image | None, ref: str = "") -> str:
    """The base image family (nanoserver / servercore) an image was built on."""
    if img is not None and img.family:
        return img.family
    text = " ".join([ref, *(img.tags if img is not None else [])]).lower()
    return P.NANOSERVER if "nanoserver" in text else P.SERVERCORE


def _store_image(ch: ContainerHost, image_id: str, tag: str | None, os_version: str, size: int, created: str,
                 digest: str | None = None, parent: str = "", *, layers: list[Layer] | None = None,
                 config: ImageConfig | None = None, family: str | None = None,
                 apps: list[str] | None = None) -> Image:
    """Add (or retag) an image; a tag moves from any other image, as in docker."""
    if tag:
        for other in ch.images.values():
            if tag in other.tags and other.id != image_id:
                other.tags.remove(tag)
    img = ch.images.get(image_id)
    if img is None:
        img = Image(image_id, [], [], os_version, size, created, parent, list(layers or []),
                    dataclasses.replace(config) if config is not None else ImageConfig(), family or "",
                    list(apps or []))
        ch.images[image_id] = img
    if tag and tag not in img.tags:
        img.tags.append(tag)
    if digest and digest not in img.digests:
        img.digests.append(digest)
    return img


@dataclass
class PullResult:
    """A pull: the image record, whether bytes came from the registry, its stdout lines."""

    image: Image
    downloaded: bool
    lines: list[str]


def _family_of(repo: str) -> tuple[str, list[str]]:
    if repo == R.NANOSERVER:
        return P.NANOSERVER, []
    if repo == R.IIS:
        return P.SERVERCORE, ["servicemonitor"]
    return P.SERVERCORE, []


def pull_image(world: World, vm: Any, guest: Any, ref: str) -> PullResult:
    """docker pull: resolve through the registry, download the layers the host lacks, store locally. Raises
    R.RegistryError."""
    ch = host_of(guest)
    repo, tag = R.split_reference(ref)
    path = R.familiar(repo).split("/", 1)[-1] if repo.startswith(R.MCR) else \
        (repo[len("docker.io/"):] if repo.startswith("docker.io/") else repo.split("/", 1)[-1])
    manifest = R.resolve_pull(repo, tag, int(guest.os_build or 0))
    shown = f"{R.familiar(repo)}:{tag}"
    lines = [f"{tag}: Pulling from {path}"]
    existing = find_image(ch, shown)
    digest_ref = f"{repo}@{manifest.digest}"
    if existing is not None and existing.id == manifest.image_id:
        lines += [f"Digest: {manifest.digest}", f"Status: Image is up to date for {shown}"]
        return PullResult(existing, False, lines)
    have_image = ch.images.get(manifest.image_id)
    present = _layers_in_use(ch)
    new = [(layer, size) for layer, size in manifest.layers if layer not in present]
    # A layer the host has (the base image's, under an image built on it) is not downloaded again.
    lines += [f"{layer[:12]}: Already exists" for layer, _ in manifest.layers if layer in present]
    lines += [f"{layer[:12]}: Pulling fs layer" for layer, _ in new]
    for layer, _ in new:
        lines += [f"{layer[:12]}: Download complete", f"{layer[:12]}: Pull complete"]
    for layer, size in new:
        reserve_image_space(world, vm, layer, size, pulling=True)
    if new:
        key = "image_pull_servercore" if repo in (R.SERVERCORE, R.IIS) else "image_pull_nanoserver"
        downloaded = sum(size for _, size in new)
        spend(world, vm.name, key, downloaded / manifest.size)
        R.count_pull(world.counters, manifest, downloaded)
        world.counters.add_guest(vm.name, "registry_pulls")
    family, apps = _family_of(repo)
    img = _store_image(ch, manifest.image_id, f"{repo}:{tag}", manifest.os_version, manifest.size,
                       manifest.created, digest_ref, layers=[Layer(layer, size) for layer, size in manifest.layers],
                       config=ImageConfig.from_state(manifest.config), family=family, apps=apps)
    lines += [f"Digest: {manifest.digest}", f"Status: Downloaded newer image for {shown}"]
    return PullResult(img, have_image is None, lines)


def familiar_tag(tag: str) -> str:
    """A stored "repo:tag" reference as docker shows it ("mcr.microsoft.com/windows/nanoserver:ltsc2022")."""
    repo, _, name = tag.rpartition(":")
    return f"{R.familiar(repo)}:{name}"


def image_children(ch: ContainerHost, img: Image) -> list[Image]:
    """Images whose parent is ``img`` (committed from one of its containers)."""
    return [other for other in ch.images.values() if other.parent == img.id]


def save_image(world: World, vm: Any, guest: Any, ref: str, path: str) -> int:
    """docker save -o path ref: a small real tar (manifest.json, config, placeholder layer); returns modeled size."""
    ch = host_of(guest)
    img = find_image(ch, ref)
    if img is None:
        raise DockerError(E.from_daemon(E.no_such_image(ref)), E.EXIT_ERROR)
    data = image_tar(img, [t for t in img.tags] or [])
    _write_guest(world, vm, path, data)
    return int(img.size)


def image_tar(img: Image, tags: list[str]) -> bytes:
    """The docker-save layout (manifest.json, <id>.json, repositories, one layer) with modeled metadata."""
    hex_id = img.id[7:]
    layer_dir = hashlib.sha256(f"layer|{hex_id}".encode()).hexdigest()
    cfg = image_config(img)
    config = {"architecture": "amd64", "os": "windows", "os.version": img.os_version,
              "created": img.created,
              "config": {k: v for k, v in (("Cmd", cfg.cmd), ("Entrypoint", cfg.entrypoint), ("User", cfg.user))
                         if v},
              "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_dir}"]}}
    familiar_tags = []
    for t in tags:
        repo, _, tag = t.rpartition(":")
        familiar_tags.append(f"{R.familiar(repo)}:{tag}")
    manifest = [{"Config": f"{hex_id}.json", "RepoTags": familiar_tags, "Layers": [f"{layer_dir}/layer.tar"]}]
    repositories: dict[str, dict[str, str]] = {}
    for t in familiar_tags:
        repo, _, tag = t.rpartition(":")
        repositories.setdefault(repo, {})[tag] = hex_id
    # Not part of docker's format (docker ignores unknown files): the modeled size of the real tar.
    sim = {"simulated": True, "size": int(img.size), "digests": list(img.digests),
           "layers": [layer.to_state() for layer in img.layers], "family": image_family(img), "apps": list(img.apps),
           "note": "labctl simulator: layer contents are placeholders; sizes are modeled"}
    layer = b"SIMULATED Windows base layer " + img.os_version.encode() + b"\r\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        def add(name: str, content: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = int(iso_to_epoch(img.created))
            tf.addfile(info, io.BytesIO(content))
        add(f"{layer_dir}/layer.tar", layer)
        add(f"{hex_id}.json", json.dumps(config).encode())
        add("manifest.json", json.dumps(manifest).encode())
        add("repositories", json.dumps(repositories).encode())
        add("labctl-simulated.json", json.dumps(sim).encode())
    return buf.getvalue()


def read_image_archive(data: bytes) -> tuple[Image, list[str]]:
    """(image, familiar tags) from a docker-save tar; DockerError when it is not one."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
            members = {m.name: m for m in tf.getmembers()}
            def read(name: str) -> bytes:
                f = tf.extractfile(members[name])
                assert f is not None
                return f.read()
            manifest = json.loads(read("manifest.json"))
            entry = manifest[0]
            config = json.loads(read(entry["Config"]))
            sim = json.loads(read("labctl-simulated.json")) if "labctl-simulated.json" in members else {}
    except (tarfile.TarError, KeyError, ValueError, IndexError, TypeError):
        raise DockerError(E.from_daemon(E.BAD_IMAGE_ARCHIVE), E.EXIT_ERROR) from None
    hex_id = str(entry["Config"]).removesuffix(".json")
    size = int(sim.get("size") or len(data))
    cfg = config.get("config") or {}
    img = Image(f"sha256:{hex_id}", [], [str(d) for d in sim.get("digests", [])], str(config.get("os.version", "")),
                size, str(config.get("created", "1970-01-01T00:00:00Z")), "",
                [Layer.from_state(x) for x in sim.get("layers") or [[hex_id, size]]],
                ImageConfig(cfg.get("Cmd"), cfg.get("Entrypoint"), cfg.get("User", "")),
                str(sim.get("family", "")), list(sim.get("apps", [])))
    return img, [str(t) for t in entry.get("RepoTags") or []]


def load_image(world: World, vm: Any, guest: Any, path: str) -> list[str]:
    """docker load -i path: store the image(s); returns the "Loaded image: ..." lines."""
    ch = host_of(guest)
    data = _read_guest(world, vm, path)
    if data is None:
        raise DockerError(f"open {path}: {E.MSG_FILE_NOT_FOUND}", E.EXIT_ERROR)
    img, tags = read_image_archive(data)
    if img.id not in ch.images:
        present = _layers_in_use(ch)
        for layer in img.layers:
            if layer.id not in present:
                reserve_image_space(world, vm, layer.id, layer.size, pulling=False)
    spend(world, vm.name, "image_extract_per_gb", factor=img.size / 1e9)
    lines = []
    stored = None
    for t in tags or [None]:  # type: ignore[list-item]
        full = None
        if t:
            repo, tag = R.split_reference(t)
            full = f"{repo}:{tag}"
        stored = _store_image(ch, img.id, full, img.os_version, img.size, img.created,
                              layers=img.layers, config=img.config, family=img.family or None,
                              apps=img.apps)
        lines.append(f"Loaded image: {t}" if t else f"Loaded image ID: {img.id}")
    if stored is not None:
        for d in img.digests:
            if d not in stored.digests:
                stored.digests.append(d)
    return lines


# --------------------------------------------------------------------------------------------- containers


@dataclass
class RunOptions:
    """docker run's and docker create's modeled options."""

    image: str
    command: list[str] = field(default_factory=list)
    interactive: bool = False
    tty: bool = False
    detach: bool = False
    remove: bool = False
    name: str | None = None
    isolation: str | None = None
    env: list[str] = field(default_factory=list)
    ports: list[str] = field(default_factory=list)
    entrypoint: str | None = None  # --entrypoint: replaces the image's ENTRYPOINT and drops its CMD
    hostname: str | None = None
    user: str | None = None


@dataclass
class RunOutcome:
    """What a run produced: streams, exit code, the container (None if never created), modeled seconds."""

    exit_code: int
    stdout: list[str]
    stderr: list[str]
    container: Container | None
    seconds: float
    error: str | None = None


def _new_id(vm: Any, ch: ContainerHost, salt: str) -> str:
    ch.seq += 1
    return hashlib.sha256(f"{vm.id}|{ch.seq}|{salt}".encode()).hexdigest()


def _random_name(cid: str, ch: ContainerHost) -> str:
    h = int(cid[:8], 16)
    base = f"{_ADJECTIVES[h % len(_ADJECTIVES)]}_{_SURNAMES[(h // 97) % len(_SURNAMES)]}"
    names = {c.name for c in ch.containers.values()}
    return base if base not in names else f"{base}{h % 10}"


def image_build(img: Image) -> int:
    try:
        return int(str(img.os_version).split(".")[2])
    except (IndexError, ValueError):
        return 0


def _image_revision(img: Image) -> int:
    try:
        return int(str(img.os_version).split(".")[3])
    except (IndexError, ValueError):
        return 1


def process_compatible(image_b: int, host_b: int) -> bool:
    """Process isolation: same build, or WS2025 running an ltsc2022 image (docs/facts.md)."""
    return image_b == host_b or (host_b == 26100 and image_b == 20348)


def engine_version_of(guest: Any) -> str:
    d = host_of(guest).docker
    return d.version if d is not None else ""


def check_start(world: World, vm: Any, guest: Any, c: Container, img: Image) -> str | None:
    """Why HCS refuses to create this container's compute system, or None (dockerd's text for it)."""
    ch = host_of(guest)
    version = engine_version_of(guest)
    host_b = int(guest.os_build or 0)
    img_b = image_build(img)

    def refuse(message: str, events: tuple[str, ...] = ()) -> str:
        return E.hcs_system_error(version, "CreateComputeSystem", c.id, message, events)

    if c.isolation == "process":
        return None if process_compatible(img_b, host_b) else refuse(E.MSG_OS_MISMATCH)
    if not ch.installed("Hyper-V"):
        return refuse(E.MSG_HYPERV_NOT_INSTALLED)
    if not getattr(vm, "expose_virtualization_extensions", False):
        return refuse(E.MSG_NO_HYPERVISOR, (E.EVENT_NO_HYPERVISOR.format(id=c.id),))
    if img_b > host_b:
        return refuse(E.MSG_OS_MISMATCH)  # a newer image never runs, not even in a utility VM
    return None


def kernel_seen(guest: Any, c: Container, img: Image) -> tuple[int, int]:
    """(build, revision) a container's processes see: the image's in a utility VM, the guest's otherwise."""
    if c.isolation == "hyperv":
        return image_build(img), _image_revision(img)
    b = int(guest.os_build or 0)
    return b, guest_revision(b)


def uvm_overhead_mb(c: Container) -> int:
    repo = R.split_reference(c.image_ref)[0]
    return UVM_OVERHEAD_MB.get(repo, UVM_OVERHEAD_DEFAULT_MB) if c.isolation == "hyperv" else 0


def container_view(vm: Any, guest: Any, c: Container, img: Image) -> P.ContainerView:
    """What the container's processes see of it (kernel, name, user, network endpoint, other processes)."""
    ch = host_of(guest)
    build, rev = kernel_seen(guest, c, img)
    return P.ContainerView(
        id=c.id, hostname=c.hostname or c.id[:12],
        user=c.user or image_config(img).user or "ContainerAdministrator",
        family=c.family or image_family(img, c.image_ref), build=build, revision=rev,
        ip=c.ip, prefix_length=ipaddress.ip_network(ch.nat_subnet(vm)).prefixlen,
        gateway=ch.nat_gateway(vm), apps=tuple(c.apps or img.apps or ()),
        processes=tuple(c.processes or ()))


def run_process(vm: Any, guest: Any, c: Container, img: Image, argv: list[str], *,
                stdin_waits: bool) -> ProcessRun:
    """Model a command line inside the container (``stdin_waits``: its stdin stays open with no writer)."""
    return P.run_command(container_view(vm, guest, c, img), argv, stdin_waits=stdin_waits)


def command_line(argv: list[str]) -> str:
    """The CreateProcess command line dockerd builds from the container's arguments (each escaped as
    windows.EscapeArg does: quoted when it holds a space or a tab, backslashes before a quote doubled)."""
    out = []
    for arg in argv:
        if arg and not any(ch in arg for ch in ' \t"'):
            out.append(arg)
            continue
        escaped = re.sub(r'(\\*)"', lambda m: m.group(1) * 2 + '\\"', arg)
        escaped = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, escaped)
        out.append(f'"{escaped}"')
    return " ".join(out)


def create_process_error(c: Container, version: str = "") -> str:
    """HCS CreateProcess failure for an executable missing from the image; in a utility VM HCS adds
    vmcomputeagent's event lines."""
    events = tuple(E.EVENTS_NOT_FOUND_UVM) if c.isolation == "hyperv" else ()
    return E.hcs_container_error(version, c.id, "System::CreateProcess", E.MSG_FILE_NOT_FOUND, 2,
                               command_line(list(c.command)), events)


def _allocate_ip(vm: Any, ch: ContainerHost, c: Container) -> str:
    """HNS gives the endpoint a free address of the nat subnet (.1 is the host's, the gateway)."""
    net = ipaddress.ip_network(ch.nat_subnet(vm))
    used = {o.ip for o in ch.containers.values() if o.state == "running" and o.id != c.id}
    for offset in range(2, net.num_addresses - 1):
        candidate = str(net.network_address + offset)
        if candidate not in used:
            return candidate
    return str(net.network_address + 2)


def image_of(ch: ContainerHost, c: Container) -> Image:
    """The container's image; when it was force-removed (docker keeps the layers while a container uses them), a
    stand-in with what the container recorded of it."""
    img = ch.images.get(c.image_id)
    if img is None:
        img = Image(c.image_id, os_version=c.os_version or "10.0.0.0", created=epoch_to_iso(0), family=c.family,
                    apps=list(c.apps))
    return img


def start_container(world: World, vm: Any, guest: Any, c: Container, *,
                    stdin_attached: bool = False) -> tuple[ProcessRun | None, str | None, float]:
    """Start a created/exited container: (process result, HCS error, modeled seconds).

    ``stdin_attached``: the docker client feeds the process's stdin (run -i, start -ai); over PowerShell Direct that
    stdin is empty, so a shell reading it ends at once. A container created with -i but started without its stdin
    attached keeps a stdin nobody writes to: its shell waits.
    """
    ch = host_of(guest)
    img = image_of(ch, c)
    error = check_start(world, vm, guest, c, img)
    key = "container_start_hyperv" if c.isolation == "hyperv" else "container_start_process"
    # A refused start fails early (HCS validates before the utility VM boots): a fifth of a start.
    seconds = spend(world, vm.name, key, 0.2 if error else 1.0)
    if error:
        return None, error, seconds
    c.ip = _allocate_ip(vm, ch, c)
    run = run_process(vm, guest, c, img, c.command, stdin_waits=bool(c.interactive) and not stdin_attached)
    if run.not_found:
        return run, create_process_error(c, engine_version_of(guest)), seconds
    if run.not_modelled:
        return run, run.output[0], seconds
    now = world.clock.now()
    c.started = now
    c.logs = list(c.logs) + run.output
    if run.long_running:
        c.state, c.exit_code, c.finished, c.paused = "running", 0, None, False
        c.processes = [c.command[0] if c.command else "cmd.exe"]
    else:
        c.exit(run.exit_code, now)
    return run, None, seconds


def effective_command(img: Image | None, opts: RunOptions) -> tuple[list[str], list[str]]:
    """(entrypoint, cmd) of a new container: --entrypoint replaces the image's ENTRYPOINT and drops its CMD
    (docker run reference); arguments after the image replace CMD."""
    cfg = image_config(img)
    if opts.entrypoint is not None:
        return ([opts.entrypoint] if opts.entrypoint else []), list(opts.command)
    return list(cfg.entrypoint or []), list(opts.command) or list(cfg.cmd or [])


@dataclass
class CreateOutcome:
    """What creating a container produced: the container (None when refused), the pull's progress for stderr and
    the refusal (the text the client prints, without docker run's "docker: " decoration)."""

    container: Container | None
    stderr: list[str]
    error: str | None = None


def create_container(world: World, vm: Any, guest: Any, opts: RunOptions, *, quiet: bool = False) -> CreateOutcome:
    """docker create, and docker run's first half (cli/command/container/create.go createContainer): the daemon
    validates, a missing image is pulled (its progress on stderr, none with ``quiet``) and the create retried, the
    name reserved. The order is dockerd's (daemon/create.go): a bad option before the image, the image before the
    name. The new container is "created"; nothing runs."""
    ch = host_of(guest)
    version = engine_version_of(guest)
    stderr: list[str] = []
    try:
        R.parse_reference(opts.image, engine_release(version))
    except R.ReferenceError as exc:  # the client parses the reference before it sends anything
        return CreateOutcome(None, [], exc.text)
    isolation = (opts.isolation or "default").lower()
    if isolation not in ("default", "process", "hyperv"):
        return CreateOutcome(None, [], E.from_daemon(E.invalid_isolation(version, opts.isolation or '')))
    if isolation == "default":
        isolation = ch.default_isolation()
    img = find_image(ch, opts.image)
    if img is None:
        repo, tag = R.split_reference(opts.image)
        if not quiet:
            stderr.append(f"Unable to find image '{R.familiar(repo)}:{tag}' locally")
        try:
            pulled = pull_image(world, vm, guest, opts.image)
        except R.RegistryError as exc:
            if not exc.before_stream and not quiet:
                stderr.append(f"{tag}: Pulling from {repo.split('/', 1)[-1]}")
            return CreateOutcome(None, stderr, E.from_daemon(exc.text) if exc.before_stream else exc.text)
        # The pull's progress goes to stderr (create.go: pullOut is Err()): stdout carries only the id (create) or
        # the container's output (run).
        if not quiet:
            stderr.extend(pulled.lines)
        img = pulled.image
    if opts.name and any(c.name == opts.name for c in ch.containers.values()):
        other = next(c for c in ch.containers.values() if c.name == opts.name)
        return CreateOutcome(None, stderr, E.from_daemon(E.name_in_use(opts.name, other.id)))
    entrypoint, cmd = effective_command(img, opts)
    if not entrypoint and not cmd:
        return CreateOutcome(None, stderr, E.from_daemon(E.NO_COMMAND))
    cid = _new_id(vm, ch, opts.image)
    c = Container(
        cid, opts.name or _random_name(cid, ch), opts.image, img.id, img.os_version, entrypoint + cmd, entrypoint,
        cmd, world.clock.now(), isolation=isolation, interactive=opts.interactive, tty=opts.tty, detach=opts.detach,
        # cli/command/container/opts.go parse: StdinOnce when stdin is open and attached (-i; run -d detaches it):
        # the container's stdin closes when the client lets go.
        stdin_once=opts.interactive and not opts.detach, auto_remove=opts.remove, env=list(opts.env),
        ports=list(opts.ports), hostname=opts.hostname or cid[:12], user=opts.user or "",
        family=image_family(img, opts.image), apps=list(img.apps))
    ch.containers[cid] = c
    return CreateOutcome(c, stderr)


def reap(guest: Any, c: Container) -> None:
    """dockerd's AutoRemove: a --rm container goes once it has exited, or when its start failed
    (daemon/start.go containerStart's deferred cleanup)."""
    if c.auto_remove and c.state != "running":
        host_of(guest).containers.pop(c.id, None)


def run_container(world: World, vm: Any, guest: Any, opts: RunOptions) -> RunOutcome:
    """docker run: create (create_container), start, attach or detach, --rm."""
    ch = host_of(guest)
    stdout: list[str] = []
    if opts.tty and opts.interactive and not opts.detach:
        return RunOutcome(1, [], [E.MSG_NOT_A_TTY], None, 0.0, E.MSG_NOT_A_TTY)
    created = create_container(world, vm, guest, opts)
    stderr = list(created.stderr)
    if created.container is None:
        msg = created.error or ""
        return RunOutcome(125, stdout, [*stderr, *E.run_error_lines(msg, with_help=True)], None, 0.0, msg)
    c = created.container
    cid = c.id
    run, error, seconds = start_container(world, vm, guest, c, stdin_attached=opts.interactive and not opts.detach)
    if error and run is not None and run.not_modelled:
        ch.containers.pop(cid, None)  # the simulator could not run it: leave nothing behind
        return RunOutcome(125, stdout, [*stderr, error], None, seconds, error)
    if error:
        reap(guest, c)
        if opts.detach:
            stdout.append(cid)
        # cli/command/container/run.go runStartContainerErr: 127 when the program is not found.
        code = E.EXIT_NOT_FOUND if E.MSG_FILE_NOT_FOUND.lower() in error.lower() else E.EXIT_RUN_FAILED
        return RunOutcome(code, stdout, [*stderr, *E.run_error_lines(E.from_daemon(error),
                                                                      with_help=False)], c, seconds, error)
    assert run is not None
    if opts.detach:
        stdout.append(cid)
        reap(guest, c)
        return RunOutcome(0, stdout, stderr, c, seconds)
    if run.long_running:
        # A foreground container that never exits would hold the call until someone stops it.
        c.exit(EXIT_SHUTDOWN, world.clock.now())
        reap(guest, c)
        msg = (f"The simulated docker CLI does not model a foreground container that keeps running "
               f"({' '.join(c.command)}): run it with -d and read its output with docker logs.")
        return RunOutcome(125, stdout + run.output, [*stderr, msg], c, seconds, msg)
    stdout.extend(run.output)
    reap(guest, c)
    return RunOutcome(run.exit_code, stdout, stderr, c, seconds)


def find_container(ch: ContainerHost, ref: str) -> Container | None:
    ref = ref.strip().lstrip("/")
    for c in ch.containers.values():
        if c.name == ref or c.id == ref:
            return c
    matches = [c for c in ch.containers.values() if len(ref) >= 1 and c.id.startswith(ref)]
    return matches[0] if len(matches) == 1 else None


def exec_in(world: World, vm: Any, guest: Any, c: Container, argv: list[str], interactive: bool) -> ProcessRun:
    """docker exec: a new process in a running container (same kernel as the container's). Its stdin, when -i
    attaches it, is the docker client's (empty over PowerShell Direct)."""
    return run_process(vm, guest, c, image_of(host_of(guest), c), argv, stdin_waits=False)


def commit_container(world: World, vm: Any, guest: Any, c: Container, ref: str | None) -> str:
    """docker commit: a new image from the container's filesystem and configuration (its command becomes the
    image's CMD/ENTRYPOINT). Windows refuses a running (or paused) container."""
    ch = host_of(guest)
    if c.state == "running":
        raise DockerError(E.from_daemon(E.COMMIT_RUNNING), E.EXIT_ERROR)
    base = ch.images.get(c.image_id)
    os_version = base.os_version if base else c.os_version
    size = int(base.size) if base else 0
    new_id = "sha256:" + hashlib.sha256(f"commit|{c.id}|{world.clock.now()}".encode()).hexdigest()
    tag = None
    if ref:
        repo, t = R.split_reference(ref)
        tag = f"{repo}:{t}"
    # A committed Windows container layer holds the scratch changes: a few MB (estimate).
    own_layer, own_size = hashlib.sha256(f"layer|{new_id}".encode()).hexdigest(), 4_200_000
    layers = [*(base.layers if base else []), Layer(own_layer, own_size)]
    reserve_image_space(world, vm, own_layer, own_size, pulling=False)
    cfg = image_config(base)
    cfg.entrypoint, cfg.cmd = list(c.entrypoint) or None, list(c.cmd) or None
    if c.user:
        cfg.user = c.user
    _store_image(ch, new_id, tag, os_version, size + own_size, epoch_to_iso(world.clock.now()), parent=c.image_id,
                 layers=layers, config=cfg, family=c.family or image_family(base, c.image_ref),
                 apps=list(c.apps or (base.apps if base else [])))
    return new_id


def pause_container(guest: Any, c: Container) -> None:
    """docker pause: only a Hyper-V isolated container can be paused (libcontainerd/local/local_windows.go returns
    containerd's ErrNotImplemented for a process-isolated one; daemon/pause.go wraps it)."""
    if c.state != "running":
        raise DockerError(E.from_daemon(E.not_running(c.id)), E.EXIT_ERROR)
    if c.paused:
        raise DockerError(E.from_daemon(E.already_paused(c.id)), E.EXIT_ERROR)
    if c.isolation != "hyperv":
        raise DockerError(E.from_daemon(E.pause_not_implemented(c.id)), E.EXIT_ERROR)
    c.paused = True


def unpause_container(guest: Any, c: Container) -> None:
    """docker unpause (daemon/unpause.go)."""
    if not c.paused:
        raise DockerError(E.from_daemon(E.not_paused(c.id)), E.EXIT_ERROR)
    c.paused = False


# --------------------------------------------------------------------------------------------- image removal


class _Conflict(Exception):
    def __init__(self, text: str, *, hard: bool = False, used: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.hard = hard
        self.used = used


def _truncate(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def _image_conflict(ch: ContainerHost, img: Image, *, hard: bool, soft: bool,
                    active_reference: bool) -> _Conflict | None:
    """checkImageDeleteConflict (daemon/images/image_delete.go): child images and running containers are hard
    conflicts, stopped containers and remaining references soft ones (-f overrides those)."""

    def conflict(reason: str, is_hard: bool, used: bool) -> _Conflict:
        return _Conflict(E.image_delete_conflict(_truncate(img.id), reason, hard=is_hard), hard=is_hard, used=used)

    users = [c for c in ch.containers.values() if c.image_id == img.id]
    if hard and image_children(ch, img):
        return conflict("image has dependent child images", True, False)
    running = [c for c in users if c.state == "running"]
    if hard and running:
        return conflict(f"image is being used by running container {running[0].id[:12]}", True, True)
    stopped = [c for c in users if c.state != "running"]
    if soft and stopped:
        return conflict(f"image is being used by stopped container {stopped[0].id[:12]}", False, True)
    if active_reference and (img.tags or img.digests):
        return conflict("image is referenced in multiple repositories", False, False)
    return None


def _single_reference(img: Image) -> bool:
    """isSingleReference: at most one tag, and every reference within that tag's repository."""
    refs = [(t.rpartition(":")[0], False) for t in img.tags] + \
           [(d.partition("@")[0], True) for d in img.digests]
    if len(refs) <= 1:
        return len(refs) == 1
    tagged = [repo for repo, digest in refs if not digest]
    if len(tagged) > 1:
        return False
    canonical = {repo for repo, digest in refs if digest}
    single = tagged[0] if tagged else refs[0][0]
    return len(canonical) == 1 and single in canonical


def _untag_all(img: Image, records: list[str]) -> None:
    for t in list(img.tags):
        repo, _, tag = t.rpartition(":")
        img.tags.remove(t)
        records.append(f"Untagged: {R.familiar(repo)}:{tag}")
    for d in list(img.digests):
        repo, _, dg = d.partition("@")
        img.digests.remove(d)
        records.append(f"Untagged: {R.familiar(repo)}@{dg}")


def _delete_helper(world: World, vm: Any, ch: ContainerHost, img: Image, records: list[str], *,
                   force: bool, prune: bool, quiet: bool) -> None:
    """imageDeleteHelper: delete the image (and prune its untagged, unused parents) unless a conflict stops it; a
    quiet deletion (after untagging) stops silently where the image stays useful."""
    conflict = _image_conflict(ch, img, hard=True, soft=not force, active_reference=not force)
    if conflict is not None:
        dangling = not (img.tags or img.digests or image_children(ch, img))
        if quiet and (not dangling or conflict.used):
            return
        raise conflict
    parent = img.parent or ""
    _untag_all(img, records)
    del ch.images[img.id]
    records.append(f"Deleted: {img.id}")
    records.extend(f"Deleted: sha256:{layer}" for layer in release_image_space(world, vm, ch, img))
    if prune and parent and parent in ch.images:
        _delete_helper(world, vm, ch, ch.images[parent], records, force=False, prune=True, quiet=True)


def remove_image(world: World, vm: Any, guest: Any, ref: str, *, force: bool, prune: bool = True) -> list[str]:
    """DELETE /images/<ref> as dockerd answers it (daemon/images/image_delete.go ImageDelete): the "Untagged:" and
    "Deleted:" records, or DockerError with the conflict or not-found text."""
    ch = host_of(guest)
    text = ref.strip()
    try:
        R.parse_reference(text, engine_release(engine_version_of(guest)))
    except R.ReferenceError as exc:
        raise DockerError(E.from_daemon(exc.text), E.EXIT_ERROR) from None
    img = find_image(ch, text)
    if img is None:
        raise DockerError(E.from_daemon(E.no_such_image(text)), E.EXIT_ERROR, not_found=True)
    records: list[str] = []
    hexid = img.id.removeprefix("sha256:")
    by_id = img.id.startswith(text) or hexid.startswith(text)
    try:
        if not by_id:
            key = _ref_key(text)
            assert key is not None
            users = [c for c in ch.containers.values() if c.image_id == img.id]
            if not force and _single_reference(img) and users:
                # Untagging would leave the image dangling under a container: docker wants -f for that.
                raise _Conflict(E.reference_in_use(text, users[0].id[:12], hexid[:12]))
            repo = key.partition("@")[0] if "@" in key else key.rpartition(":")[0]
            if key in img.tags:
                img.tags.remove(key)
                records.append(f"Untagged: {R.familiar(repo)}:{key.rpartition(':')[2]}")
                # The tag was the repository's last: its digest references go too.
                if not any(t.rpartition(":")[0] == repo for t in img.tags):
                    for d in [d for d in img.digests if d.partition("@")[0] == repo]:
                        img.digests.remove(d)
                        records.append(f"Untagged: {R.familiar(repo)}@{d.partition('@')[2]}")
            else:
                img.digests.remove(key)
                records.append(f"Untagged: {R.familiar(repo)}@{key.partition('@')[2]}")
            if img.tags or img.digests:
                return records
            _delete_helper(world, vm, ch, img, records, force=force, prune=prune, quiet=True)
            return records
        if _single_reference(img):
            conflict = _image_conflict(ch, img, hard=True, soft=not force, active_reference=False)
            if conflict is not None:
                raise conflict
            _untag_all(img, records)
        _delete_helper(world, vm, ch, img, records, force=force, prune=prune, quiet=False)
    except _Conflict as exc:
        raise DockerError(E.from_daemon(exc.text), E.EXIT_ERROR) from None
    return records
