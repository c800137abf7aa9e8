"""The container-host bootstrap: after a VM is ready, make it a Windows container host.

Four stages follow "cleanup" in the VM's chain (labctl.engine.apply), each recorded in the journal when
done, so a rerun after a kill resumes at the first incomplete one and never repeats a completed one:

- ``features``: the container-features guest step installs Containers (and Hyper-V where Hyper-V isolated
  containers can run); when Windows asks for a reboot, the host restarts the VM, the readiness stages
  (heartbeat, ip, logon) run again, and the step runs once more to confirm.
- ``docker``: Docker's static zip reaches the host once per lab (labctl.docker.release, then 1 MiB chunks,
  SHA-256 checked), each guest gets it by Copy-VMFile; with ``docker_tls`` the guest gets a server
  certificate from the lab PKI and the host publishes its port 2376 through the lab NAT; then
  docker-install with a daemon.json built here.
- ``images``: each base image is pulled from the registry once per lab. The first guest that needs it pulls
  and saves it; the host copies the tar out (host step copy-from-guest) into the lab folder, and every
  other guest gets it by Copy-VMFile + image-load. Lab-level journal entries make this survive a kill.
- ``verify``: verify-isolation runs a container with process and with Hyper-V isolation; the facts go to
  the journal for ``labctl status``.

Decisions: Hyper-V is installed on every nested container host (the default), not only where
``isolation: hyperv``, so ``docker run --isolation=hyperv`` works on every nested guest; ``isolation`` picks
Docker's default (daemon.json ``exec-opts: ["isolation=hyperv"]`` only for ``isolation: hyperv``; Windows
Server's default, process, otherwise) and which isolation check is fatal.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labctl.docker import release
from labctl.engine.plan import DesiredVm
from labctl.errors import LabctlError, RemoteCommandError, StageError, TransientError
from labctl.guest.steps import load_host_step
from labctl.hyperv import ops
from labctl.secret import Sensitive
from labctl.transport.base import RemoteObject

if TYPE_CHECKING:
    from labctl.engine.context import StageContext

log = logging.getLogger(__name__)

GUEST_DIR = "C:\\labctl"
GUEST_IMAGES = GUEST_DIR + "\\images"
DOCKER_DATA_ROOT = "C:\\ProgramData\\docker"
DOCKER_CERTS = DOCKER_DATA_ROOT + "\\certs.d"
DOCKER_TLS_PORT = 2376
# Host ports publishing the guests' Docker API: 23760 + the VM's index in the lab (stable across runs).
DOCKER_TLS_HOST_PORT_BASE = 23760

CAUSE_NO_VIRTUALIZATION = (
    "the VM does not expose virtualization extensions, so the Hyper-V feature cannot be installed in it: "
    "turn the VM off and run Set-VMProcessor -VMName <vm> -ExposeVirtualizationExtensions $true "
    "(labctl does this for nested: true), or use isolation: process")
CAUSE_PROCESS_ISOLATION = ("a process-isolated container must have the guest's own Windows build: the base image "
                           "tag does not match the VM image's build (container_tag in images/<id>.yaml)")
CAUSE_HYPERV_ISOLATION = ("Hyper-V isolation needs the Hyper-V feature and virtualization extensions in the guest "
                          "(nested: true); the container's build may not be newer than the guest's")

# Copy-VMFile needs the Guest Service Interface (its display name is localized; labctl enables it by id).
_GSI_CAUSE = ("the Guest Service Interface is off or the guest is not running (see Get-VMIntegrationService "
              "-VMName <vm>: its Id ends in 6C09BB55-D683-4DA0-8931-C9BF705F6480)")


def daemon_json(*, fixed_cidr: str, tls: bool, isolation: str = "process") -> str:
    """The guest's daemon.json: the named pipe (and TLS on 2376), the container NAT's fixed CIDR, data root."""
    config: dict[str, Any] = {"hosts": ["npipe://"]}
    if tls:
        config["hosts"].append(f"tcp://0.0.0.0:{DOCKER_TLS_PORT}")
        config.update({
            "tlsverify": True,
            "tlscacert": DOCKER_CERTS + "\\ca.pem",
            "tlscert": DOCKER_CERTS + "\\server-cert.pem",
            "tlskey": DOCKER_CERTS + "\\server-key.pem",
        })
    config["fixed-cidr"] = fixed_cidr
    config["data-root"] = DOCKER_DATA_ROOT
    if isolation == "hyperv":
        # Windows Server's default is process isolation; the lab asked Hyper-V isolation as the default.
        config["exec-opts"] = ["isolation=hyperv"]
    return json.dumps(config, indent=2)


def image_tar_name(ref: str) -> str:
    """``mcr.microsoft.com/windows/nanoserver:ltsc2022`` -> ``nanoserver-ltsc2022.tar``."""
    repo, _, tag = ref.rpartition(":")
    if not repo or "/" in tag:
        repo, tag = ref, "latest"
    return f"{repo.rsplit('/', 1)[-1]}-{tag}.tar"


def tls_host_port(vm: DesiredVm) -> int:
    """The host port that publishes ``vm``'s Docker API (TLS)."""
    return DOCKER_TLS_HOST_PORT_BASE + vm.index


@dataclass(frozen=True)
class BootstrapContext:
    """What the bootstrap needs beyond the lab: where Docker comes from and how users reach the host."""

    zip_source: release.ZipSource
    pki_dir: Path
    simulated: bool
    # The names users connect to the host by (certificates name them; the first is recorded for clients).
    host_addresses: tuple[str, ...] = ("127.0.0.1", "localhost")
    cache_dir: Path | None = None


@dataclass
class _HostZip:
    path: str
    sha256: str
    placeholder: bool


@dataclass
class _ImageShare:
    """Per-image locks across the VM threads: one guest pulls, the others wait and then load its tar."""

    guard: threading.Lock = field(default_factory=threading.Lock)
    locks: dict[str, threading.Lock] = field(default_factory=dict)

    def lock(self, ref: str) -> threading.Lock:
        with self.guard:
            return self.locks.setdefault(ref, threading.Lock())


def _get(obj: Any, name: str, default: Any = None) -> Any:
    """A property of a deserialized object or hashtable, by case-insensitive name."""
    if isinstance(obj, RemoteObject):
        return obj.get(name, default)
    if isinstance(obj, dict):
        for key, value in obj.items():
            if str(key).lower() == name.lower():
                return value
    return default


def _as_list(value: Any) -> list[Any]:
    # PowerShell sends a one-element array from a pipeline as the element itself, and $null as None.
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _text(value: Any) -> str:
    items = _as_list(value)
    return "\n".join(str(v) for v in items if v is not None)


def _plain(value: Any) -> Any:
    """Facts as JSON-able values for the journal."""
    if isinstance(value, RemoteObject):
        return {k: _plain(v) for k, v in value.props.items() if k.lower() not in ("pscomputername", "runspaceid",
                                                                                 "psshowcomputername")}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


class Bootstrapper:
    """The bootstrap stages of every container host of one ``up`` run, and their lab-level shared state."""

    def __init__(self, stage: StageContext, ctx: BootstrapContext,
                 boot_waits: Sequence[tuple[str, Callable[[DesiredVm], bool]]]) -> None:
        """``boot_waits``: the readiness waits (name, function) a guest goes through again after a restart,
        from the stage table."""
        self.s = stage
        self.ctx = ctx
        self.boot_waits = tuple(boot_waits)
        self._zip_lock = threading.Lock()
        self._zip: _HostZip | None = None
        self._zip_error: LabctlError | None = None
        self._images = _ImageShare()

    # -- helpers ---------------------------------------------------------------------------------------
    def _step(self, vm: DesiredVm, stage: str, name: str, arguments: list[object], *,
              alone: bool = False) -> RemoteObject:
        """Run guest step ``name``; its one result object (a missing one is a StageError). ``alone``: not
        gathered with other VMs (a step made under a lock the others wait for)."""
        try:
            res = self.s.guest(vm, name, arguments, alone=alone)
        except RemoteCommandError as err:
            raise self._step_error(vm, stage, name, err) from err
        obj = next(iter(res.objects()), None)
        if obj is None and res.errors:
            # A script's terminating error reaches the caller of Invoke-Command as a non-terminating one.
            first = res.errors[-1]
            raise self._step_error(vm, stage, name, RemoteCommandError(
                first.message, command="Invoke-Command", fqid=first.fqid, category=first.category,
                target=first.target))
        if obj is None:
            raise StageError(f"{vm.name}: the {name} step returned no result", vm=vm.name, stage=stage,
                             cause=f"the guest step {name} did not complete")
        return obj

    def _step_error(self, vm: DesiredVm, stage: str, name: str, err: RemoteCommandError) -> StageError:
        text = err.message
        lowered = text.lower()
        if "virtualization capabilit" in lowered or ("prerequisitecheck" in err.fqid.lower() and "hyper-v" in lowered):
            return StageError(f"{vm.name}: {stage}: installing Hyper-V failed: {text}", vm=vm.name, stage=stage,
                              cause=CAUSE_NO_VIRTUALIZATION)
        return StageError(f"{vm.name}: {stage}: the {name} step failed: {text}", vm=vm.name, stage=stage,
                          cause=f"the guest step {name} failed ({err.fqid or 'no error id'})", hint=err.hint)

    def _progress(self, vm: DesiredVm, stage: str, detail: str) -> None:
        self.s.progress.stage(vm.name, stage, "start", detail)

    # -- features --------------------------------------------------------------------------------------
    def features(self, vm: DesiredVm) -> bool:
        """Containers (+ Hyper-V) installed, with the reboot Windows asks for; True when anything changed."""
        j = self.s.journal
        if j.has_stage(vm.name, "features"):
            return False
        wanted = list(vm.windows_features)
        self._progress(vm, "features", ", ".join(wanted))
        if self.s.vm_state(vm) == "Off":
            # A run killed (or an answer lost) between the shutdown and the start of the restart below.
            self._boot_again(vm)
        obj = self._step(vm, "features", "container-features", [wanted])
        facts = _get(obj, "Facts")
        installed = {str(f) for f in _as_list(_get(facts, "Installed"))}
        pending = [str(f) for f in _as_list(_get(facts, "Pending"))]
        changed = _as_bool(_get(obj, "Changed"))
        if _as_bool(_get(obj, "RebootNeeded")) or pending:
            self._progress(vm, "features", "restarting the VM to finish installing " + ", ".join(pending or wanted))
            self._restart_gracefully(vm)
            obj = self._step(vm, "features", "container-features", [wanted])
            facts = _get(obj, "Facts")
            installed = {str(f) for f in _as_list(_get(facts, "Installed"))}
            pending = [str(f) for f in _as_list(_get(facts, "Pending"))]
            changed = True
        missing = [f for f in wanted if f not in installed]
        if missing:
            raise StageError(
                f"{vm.name}: features: {', '.join(missing)} not installed after the restart "
                f"(pending: {', '.join(pending) or 'none'})", vm=vm.name, stage="features",
                cause="Install-WindowsFeature did not complete; look at C:\\Windows\\Logs\\CBS\\CBS.log in the guest")
        j.record_vm(vm.name, features=sorted(installed))
        j.stage_done(vm.name, "features")
        return changed

    def _restart_gracefully(self, vm: DesiredVm) -> None:
        """Shut the guest down through its Shutdown integration service, then start it.

        Not Restart-VM: that is a reset ("like powering the computer down"), which skips the shutdown phase of
        Windows' feature servicing, so a pending feature install is rolled back at the next boot.
        Stop-VM -Force is still a guest shutdown: it only closes applications that hold unsaved data.
        """
        self._progress(vm, "features", "shutting the guest down (Windows finishes configuring the features)")
        # Not retried: a lost answer resumes the stage, which finds the VM Off and starts it.
        self.s.host_batch(vm, ("shutdown",), ops.shutdown_vms, retry=False, command="Stop-VM")
        self.s.wait_state(vm, "Off", "features")
        self._boot_again(vm)

    def _boot_again(self, vm: DesiredVm) -> None:
        """Start-VM, then the same readiness waits as the first boot (without setup this time)."""
        self._progress(vm, "features", "starting the VM again")
        self.s.host_batch(vm, ("start",), ops.start_vms, retry=False, command="Start-VM")
        for name, wait in self.boot_waits:
            self._progress(vm, "features", f"after the restart: {name}")
            wait(vm)

    # -- docker ----------------------------------------------------------------------------------------
    def _host_zip(self) -> _HostZip:
        """Docker's zip in the lab folder on the host, once per lab (the VM threads share it)."""
        with self._zip_lock:
            if self._zip is not None:
                return self._zip
            if self._zip_error is not None:
                raise self._zip_error
            try:
                self._zip = self._send_zip()
            except TransientError:
                raise  # the next VM (or this one's resumed stage) tries again
            except LabctlError as err:
                self._zip_error = err
                raise
            return self._zip

    def _send_zip(self) -> _HostZip:
        src = self.ctx.zip_source
        progress = self.s.progress
        progress.stage("host", "docker", "start", f"docker-{src.version}.zip from {src.describe()}")
        local = release.fetch(src, self.ctx.cache_dir)
        host_path = f"{self.s.root}\\{local.file_name}"
        t = self.s.t
        current = self._host_hash(host_path)
        if current != local.sha256:
            progress.stage("host", "docker", "start", f"uploading {local.file_name} ({local.size // 1024} KiB)")
            with local.path.open("rb") as fh:
                offset = 0
                while True:
                    piece = fh.read(ops.UPLOAD_CHUNK)
                    if offset and not piece:
                        break
                    # Not retried: a repeated Add-Content would append twice; the hash check below catches
                    # any loss, and the next run uploads again from the first chunk.
                    t.invoke(ops.upload_chunk(host_path, piece, first=offset == 0), retry=False)
                    offset += len(piece)
                    if not piece:
                        break
            current = self._host_hash(host_path)
            if current != local.sha256:
                raise LabctlError(f"the Docker zip on the host ({host_path}) has SHA-256 {current or 'none'}, "
                                  f"expected {local.sha256} (from {local.source})",
                                  hint="the upload was cut or altered; run up again to upload it again")
        note = f"docker {src.version} on the host"
        if local.placeholder:
            note += " (the simulator's placeholder Docker binaries, from its mirror)"
        progress.stage("host", "docker", "done", note)
        self.s.note(f"Docker {src.version}: " + ("the simulator's placeholder binaries (from its mirror); a real "
                                                "host gets Docker's static zip" if local.placeholder
                                                else f"{local.source} (SHA-256 {local.sha256[:16]}...)"))
        return _HostZip(host_path, local.sha256, local.placeholder)

    def _host_hash(self, path: str) -> str | None:
        exists = self.s.t.invoke(ops.test_path(path)).output
        if not (exists and exists[0] is True):
            return None
        res = self.s.t.invoke(ops.file_hash(path))
        obj = next(iter(res.objects()), None)
        value = obj.get("Hash") if obj is not None else None
        return str(value).lower() if value else None

    def _copy_to_guest(self, vm: DesiredVm, stage: str, source: str, destination: str) -> None:
        try:
            res = self.s.host_batch(vm, ("copy", source, destination),
                                    lambda names: ops.copy_vm_files(names, source, destination), command="Copy-VMFile")
        except RemoteCommandError as err:
            raise StageError(f"{vm.name}: {stage}: Copy-VMFile {source} failed: {err.message}", vm=vm.name,
                             stage=stage, cause=_GSI_CAUSE) from err
        if res.errors:
            raise StageError(f"{vm.name}: {stage}: Copy-VMFile {source} failed: {res.errors[0].message}",
                             vm=vm.name, stage=stage, cause=_GSI_CAUSE)

    def docker(self, vm: DesiredVm) -> bool:
        """Docker installed and running in the guest (with TLS and its host port when asked)."""
        j = self.s.journal
        if j.has_stage(vm.name, "docker"):
            return False
        zip_on_host = self._host_zip()
        version = self.ctx.zip_source.version
        guest_zip = f"{GUEST_DIR}\\docker-{version}.zip"
        self._progress(vm, "docker", f"copying docker-{version}.zip into the guest")
        self._copy_to_guest(vm, "docker", zip_on_host.path, guest_zip)
        if vm.docker_tls:
            self._docker_tls(vm)
        self._progress(vm, "docker", f"installing Docker {version}")
        config = daemon_json(fixed_cidr=self.s.lab.container_cidr, tls=vm.docker_tls, isolation=vm.isolation)
        wait = max(60, int(self.s.timeout_of("docker")))
        obj = self._step(vm, "docker", "docker-install", [guest_zip, zip_on_host.sha256, config, wait])
        facts = _get(obj, "Facts")
        status = str(_get(facts, "ServiceStatus") or "")
        if status.lower() != "running":
            raise StageError(f"{vm.name}: docker: the docker service is {status or 'missing'} after the install",
                             vm=vm.name, stage="docker",
                             cause="dockerd did not start: look at the Application event log (source docker) and "
                                   "C:\\ProgramData\\docker\\config\\daemon.json in the guest")
        info: dict[str, Any] = {"client_version": _plain(_get(facts, "ClientVersion")),
                                "server_version": _plain(_get(facts, "ServerVersion")),
                                "nat_subnet": _plain(_get(facts, "NatSubnet")),
                                "placeholder": zip_on_host.placeholder}
        j.record_vm(vm.name, docker=info)
        if vm.docker_tls:
            self._publish_tls(vm)
        j.stage_done(vm.name, "docker")
        return True

    def _docker_tls(self, vm: DesiredVm) -> None:
        from labctl.docker.pki import LabPki

        self._progress(vm, "docker", "TLS certificates for the Docker API")
        pki = LabPki(self.ctx.pki_dir, self.s.lab.name)
        ca = pki.ca(self.s.lab.name)
        names = [vm.name, vm.ip, *self.ctx.host_addresses]
        ips = [n for n in names if _is_ip(n)]
        dns = [n for n in names if not _is_ip(n)]
        pair = pki.server(vm.name, dns, ips)
        # The key travels as an argument only, wrapped so no log line or journal ever shows it.
        self._step(vm, "docker", "docker-tls", [ca.cert_pem, pair.cert_pem, Sensitive(pair.key_pem.reveal())])

    def _publish_tls(self, vm: DesiredVm) -> None:
        from labctl.docker.pki import LabPki

        lab = self.s.lab
        if not lab.nat:
            raise StageError(f"{vm.name}: docker: docker_tls needs the lab NAT (network.nat: true) to publish "
                             "the Docker API on the host", vm=vm.name, stage="docker", cause="network.nat is false")
        port = tls_host_port(vm)
        t = self.s.t
        res = t.invoke(ops.nat_static_mappings(lab.nat_name))
        mine = [o for o in res.objects() if int(o.get("ExternalPort") or 0) == port
                and str(o.get("Protocol") or "TCP").upper() == "TCP"]
        if mine and not any(str(o.get("InternalIPAddress")) == vm.ip
                            and int(o.get("InternalPort") or 0) == DOCKER_TLS_PORT for o in mine):
            found = mine[0]
            raise StageError(f"{vm.name}: docker: host port {port} of NAT {lab.nat_name} already maps to "
                             f"{found.get('InternalIPAddress')}:{found.get('InternalPort')}", vm=vm.name,
                             stage="docker", cause="a static mapping labctl did not make uses the port; remove "
                             f"it with Remove-NetNatStaticMapping -NatName {lab.nat_name}")
        if not mine:
            self._progress(vm, "docker", f"publishing the Docker API on host port {port}")
            t.invoke(ops.add_nat_static_mapping(lab.nat_name, port, vm.ip, DOCKER_TLS_PORT), retry=False)
        pki = LabPki(self.ctx.pki_dir, lab.name)
        self.s.journal.record_vm(vm.name, docker_tls={"host": self.ctx.host_addresses[0], "port": port,
                                                      "cert_path": str(pki.client_dir())})

    # -- images ----------------------------------------------------------------------------------------
    def images(self, vm: DesiredVm) -> bool:
        """The VM's base images present, each pulled from the registry once per lab."""
        j = self.s.journal
        have = [str(r) for r in j.vm(vm.name).get("images") or []]
        if j.has_stage(vm.name, "images") and set(vm.container_images) <= set(have):
            return False  # (an image added to the lab file later is pulled by the next up)
        for ref in vm.container_images:
            if ref in have:
                continue
            self._image(vm, ref)
            have.append(ref)
            j.record_vm(vm.name, images=list(have))
        j.stage_done(vm.name, "images")
        return True

    def _sharers(self, ref: str) -> list[DesiredVm]:
        return [v for v in self.s.lab.vms if v.container_host and ref in v.container_images]

    def _image(self, vm: DesiredVm, ref: str) -> None:
        """Pull ``ref`` in this guest (first to need it: also keep a copy on the host) or load the host's copy."""
        tar = image_tar_name(ref)
        guest_tar = f"{GUEST_IMAGES}\\{tar}"
        host_dir = f"{self.s.root}\\images"
        host_tar = f"{host_dir}\\{tar}"
        with self._images.lock(ref):
            shared = (self.s.journal.host_resource("images") or {}).get(ref)
            exported = bool(shared) and self._host_has(host_tar)
            if not exported:
                # image-pull reads the guest first: a guest that has the image (one made from a golden
                # image) pulls nothing and reports Changed = false.
                self._progress(vm, "images", f"pulling {ref} (unless the guest has it)")
                obj = self._step(vm, "images", "image-pull", [[ref]], alone=True)
                self._check_build(vm, ref, _get(obj, "Facts"))
                if _as_bool(_get(obj, "Changed")) and len(self._sharers(ref)) > 1:
                    # Pulled, and other guests need it too: keep a copy on the host so they load it instead
                    # of pulling. A guest that already had it saves nothing: the others check their own first.
                    self._progress(vm, "images", f"saving {ref} for the other guests")
                    self._step(vm, "images", "image-save", [ref, guest_tar], alone=True)
                    self.s.t.invoke(ops.new_directory(host_dir))
                    self._copy_from_guest(vm, guest_tar, host_tar)
                    self.s.journal.merge_host("images", ref, {"path": host_tar, "pulled_by": vm.name})
                return
        self._progress(vm, "images", f"loading {ref} (pulled once for the lab)")
        self._copy_to_guest(vm, "images", host_tar, guest_tar)
        self._step(vm, "images", "image-load", [ref, guest_tar])

    def _host_has(self, path: str) -> bool:
        out = self.s.t.invoke(ops.test_path(path)).output
        return bool(out) and out[0] is True

    def _copy_from_guest(self, vm: DesiredVm, guest_path: str, host_path: str) -> None:
        script = load_host_step("copy-from-guest").script
        cause = "PowerShell Direct copy (Copy-Item -FromSession) failed; is there room in the lab folder on the host?"
        try:
            res = self.s.t.invoke(ops.host_invoke(script, [vm.name, self.s.credential(vm), guest_path, host_path]))
        except RemoteCommandError as err:
            raise StageError(f"{vm.name}: images: copying {guest_path} to the host failed: {err.message}",
                             vm=vm.name, stage="images", cause=cause) from err
        if res.errors:
            raise StageError(f"{vm.name}: images: copying {guest_path} to the host failed: {res.errors[-1].message}",
                             vm=vm.name, stage="images", cause=cause)

    @staticmethod
    def _check_build(vm: DesiredVm, ref: str, facts: Any) -> None:
        """A process-isolated container needs the guest's build: refuse an image of another build early."""
        for image in _as_list(_get(facts, "Images")):
            if str(_get(image, "Name") or ref) != ref:
                continue
            version = str(_get(image, "OsVersion") or "")
            parts = version.split(".")
            if len(parts) >= 3 and parts[2].isdigit() and vm.build and int(parts[2]) != vm.build:
                raise StageError(f"{vm.name}: images: {ref} is built for Windows {version}, the guest runs build "
                                 f"{vm.build}", vm=vm.name, stage="images", cause=CAUSE_PROCESS_ISOLATION)

    # -- verify ----------------------------------------------------------------------------------------
    def verify(self, vm: DesiredVm) -> bool:
        """A container runs with process isolation (and Hyper-V isolation, judged for isolation: hyperv)."""
        j = self.s.journal
        if j.has_stage(vm.name, "verify"):
            return False
        if not vm.container_images:
            j.stage_done(vm.name, "verify")
            return False
        ref = vm.container_images[0]
        self._progress(vm, "verify", f"running {ref} with process and Hyper-V isolation")
        obj = self._step(vm, "verify", "verify-isolation", [ref])
        facts = _get(obj, "Facts")
        result: dict[str, Any] = {"image": ref}
        for key, name in (("process", "Process"), ("hyperv", "HyperV")):
            run = _get(facts, name)
            result[key] = {"ok": _as_bool(_get(run, "Ok")), "output": _text(_get(run, "Output")),
                           "error": _text(_get(run, "Error")), "seconds": _plain(_get(run, "Seconds"))}
        j.record_vm(vm.name, verify=result)
        if not result["process"]["ok"]:
            raise StageError(f"{vm.name}: verify: a process-isolated {ref} container failed: "
                             f"{result['process']['error'] or 'no error text'}", vm=vm.name, stage="verify",
                             cause=CAUSE_PROCESS_ISOLATION)
        if vm.isolation == "hyperv" and not result["hyperv"]["ok"]:
            raise StageError(f"{vm.name}: verify: a Hyper-V isolated {ref} container failed: "
                             f"{result['hyperv']['error'] or 'no error text'}", vm=vm.name, stage="verify",
                             cause=CAUSE_HYPERV_ISOLATION)
        j.stage_done(vm.name, "verify")
        return True


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
