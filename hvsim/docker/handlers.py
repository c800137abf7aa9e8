"""Guest-step models for the container-host bootstrap (docs/guest-steps.md), on docker/models/engine.py.

Every step checks before acting (a second run reports ``Changed = $false``) and fails the way the
shipped script does: its script runs with ``$ErrorActionPreference = 'Stop'``, so a refusal from
Windows or Docker ends the step with that refusal's text. A ``throw "text"`` in a script is an
ErrorRecord whose FullyQualifiedErrorId is the text itself (``script_error``).

The steps that run docker read its output as text. Version 1 of each such script reads it in the guest's OEM
code page (Windows PowerShell 5.1's default ``[Console]::OutputEncoding``), so docker's UTF-8 arrives garbled
past ASCII; version 2 (Invoke-NativeCommand in templates/guest/lib/native.ps1, and exec.ps1) sets UTF-8 first
(guest/models/codepages.py). Both versions stay modelled: ``native_step`` registers a model for each with the
console code page it reads with.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hvsim.docker import cli as D
from hvsim.docker import errors as E
from hvsim.docker.models import engine as C
from hvsim.docker.models.records import Image
from hvsim.guest.handlers import commands as G
from hvsim.guest.handlers.step import StepFn, StepTable, custom_object
from hvsim.guest.models.codepages import UTF8, oem_code_page, read_native_lines, read_native_text
from hvsim.powershell.commandline import split_words
from hvsim.powershell.errors import PSError, command_not_found
from hvsim.powershell.values import PSEnum, PSObj, SecureText

if TYPE_CHECKING:
    from hvsim.world import World

STEPS: StepTable[StepFn] = StepTable()

_RUNTIME_EXC = "System.Management.Automation.RuntimeException"
MSG_EXEC_NOT_MODELLED = ("The simulated guest does not model this PowerShell command: {cmd}. labctl exec on the "
                         "simulator runs docker commands, hostname, Get-Service, Get-WindowsFeature, "
                         "Install-WindowsFeature and cmd /c ver; anything else is not modelled by the simulator.")


def script_error(text: str) -> PSError:
    """``throw "text"`` under $ErrorActionPreference = 'Stop'."""
    return PSError(text, text, "OperationStopped", target=text, exception_type=_RUNTIME_EXC, bare=True,
                   terminating=True)


def _arg(args: list[Any], i: int, default: Any = None) -> Any:
    return args[i] if len(args) > i and args[i] is not None else default


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def _text(value: Any) -> str:
    """A string argument; a SecureString (a key sent as one) is revealed only here, never logged."""
    return value.reveal() if isinstance(value, SecureText) else str(value)


def _step(name: str, changed: bool, reboot: bool, facts: dict[str, Any]) -> list[Any]:
    return [custom_object(Step=name, Changed=changed, RebootNeeded=reboot, Facts=facts)]


NativeStepFn = Callable[["World", Any, Any, list[Any], int], list[Any]]


def native_step(name: str, utf8_versions: tuple[str, ...] = ("2",)) -> Callable[[NativeStepFn], NativeStepFn]:
    """Register a step that reads native output: ``fn(world, vm, guest, args, console_code_page)``.

    Version 1 reads with the guest's OEM code page, version 2 and later (which set [Console]::OutputEncoding
    to UTF-8 before running docker) with UTF-8.
    """

    def deco(fn: NativeStepFn) -> NativeStepFn:
        def v1(world: World, vm: Any, guest: Any, args: list[Any]) -> list[Any]:
            return fn(world, vm, guest, args, oem_code_page(guest))

        def v2(world: World, vm: Any, guest: Any, args: list[Any]) -> list[Any]:
            return fn(world, vm, guest, args, UTF8)

        STEPS.step(name)(v1)
        STEPS.step(name, versions=utf8_versions)(v2)
        return fn

    return deco


# --------------------------------------------------------------------------------------------- features


@STEPS.step("container-features")
def container_features(world: World, vm: Any, guest: Any, args: list[Any]) -> list[Any]:
    """Get-WindowsFeature; Install-WindowsFeature -Name <missing> (no -Restart)."""
    names = _strings(_arg(args, 0, ["Containers"]))
    try:
        result = C.install_features(world, vm, guest, names)
    except PSError as err:
        err.terminating = True
        raise
    ch = C.host_of(guest)
    installed = [n for n in C.FEATURES if ch.feature_state(n) == C.INSTALLED]
    pending = [n for n in C.FEATURES if ch.feature_state(n) == C.PENDING]
    return _step("container-features", bool(result.changed), bool(pending),
                 {"Installed": installed, "Pending": pending})


# --------------------------------------------------------------------------------------------- docker


def _docker_ready_or_throw(world: World, vm: Any, guest: Any) -> C.ContainerHost:
    """The steps below call docker: fail like the script when docker is absent or does not answer; else the
    guest's container state, which the step reads."""
    if not D.docker_installed(guest):
        raise command_not_found("docker")
    if not C.daemon_running(world, vm, guest):
        # docker version's error as the installed client prints it (the text depends on its release).
        raise script_error(E.connect_error(C.engine_version_of(guest), "GET", "version"))
    return C.host_of(guest)


def _cli_or_throw(world: World, vm: Any, guest: Any, argv: list[str], cp: int) -> D.CliResult:
    res = D.docker(world, vm, guest, argv)
    if res.exit_code != 0:
        detail = " ".join(line for line in read_native_lines(res.stderr, cp) if line) or "no error output"
        raise script_error(f"docker {' '.join(argv)} failed with exit code {res.exit_code}: {detail}")
    return res


# Version 3 refuses another installation's docker service and a non-object daemon.json before changing
# anything; a simulated guest has no other installation and labctl sends an object, so both behave as 2.
@native_step("docker-install", utf8_versions=("2", "3"))
def docker_install(world: World, vm: Any, guest: Any, args: list[Any], cp: int) -> list[Any]:
    """Verify the zip, expand it, PATH, daemon.json, register and (re)start the service, wait for docker."""
    zip_path = str(_arg(args, 0, ""))
    sha = str(_arg(args, 1, ""))
    daemon_json = str(_arg(args, 2, "{}"))
    timeout = int(_arg(args, 3, 60))
    try:
        res = C.install_docker(world, vm, guest, zip_path, sha, daemon_json, timeout)
    except C.DockerFailure as exc:
        raise script_error(str(exc)) from None
    except PSError as err:
        err.terminating = True
        raise
    if res.error is not None:
        # The script polls `docker version` until the timeout, then reports what dockerd logged.
        world.clock.account(vm.name, "docker_wait_poll", factor=max(1, timeout))
        hint = (" Install the Containers feature (container-features) and restart the guest first."
                if res.error == E.MSG_NO_CONTAINERS_FEATURE else "")
        raise script_error(f"The docker service did not answer within {timeout} s (service status: "
                           f"{res.service_status}). dockerd: {read_native_text(res.error, cp)}{hint}")
    return _step("docker-install", res.changed, False,
                 {"ClientVersion": res.client_version, "ServerVersion": res.server_version,
                  "ServiceStatus": res.service_status, "NatSubnet": res.nat_subnet})


@STEPS.step("docker-tls")
def docker_tls(world: World, vm: Any, guest: Any, args: list[Any]) -> list[Any]:
    """Server certificates into certs.d and the inbound firewall rule for TCP 2376."""
    ca, cert, key = (_text(_arg(args, i, "")) for i in range(3))
    for label, pem in (("CaPem", ca), ("CertPem", cert), ("KeyPem", key)):
        if "-----BEGIN" not in pem:
            raise script_error(f"{label} is not a PEM block.")  # never echo the value: it may be a key
    changed = C.write_tls(world, vm, guest, ca, cert, key)
    return _step("docker-tls", changed, False, {"CertDir": C.CERT_DIR, "FirewallRule": C.FIREWALL_RULE})


# --------------------------------------------------------------------------------------------- images


def _image_fact(img: Image, name: str) -> dict[str, Any]:
    return {"Name": name, "Id": img.id, "Size": int(img.size), "OsVersion": img.os_version}


@native_step("image-pull")
def image_pull(world: World, vm: Any, guest: Any, args: list[Any], cp: int) -> list[Any]:
    """docker image inspect each image; docker pull the missing ones."""
    ch = _docker_ready_or_throw(world, vm, guest)
    changed = False
    facts = []
    for name in _strings(_arg(args, 0, [])):
        img = C.find_image(ch, name)
        if img is None:
            _cli_or_throw(world, vm, guest, ["pull", name], cp)
            img = C.find_image(ch, name)
            changed = True
        assert img is not None
        facts.append(_image_fact(img, name))
    return _step("image-pull", changed, False, {"Images": facts})


@native_step("image-save")
def image_save(world: World, vm: Any, guest: Any, args: list[Any], cp: int) -> list[Any]:
    """docker save -o $Path $Image unless $Path exists."""
    image = str(_arg(args, 0, ""))
    path = str(_arg(args, 1, ""))
    existing = C._read_guest(world, vm, path)
    if existing is not None:
        try:
            img, _ = C.read_image_archive(existing)
            size = int(img.size)
        except E.DockerError:
            size = len(existing)
        return _step("image-save", False, False, {"Path": path, "Size": size})
    ch = _docker_ready_or_throw(world, vm, guest)
    _cli_or_throw(world, vm, guest, ["save", "-o", path, image], cp)
    saved = C.find_image(ch, image)
    return _step("image-save", True, False, {"Path": path, "Size": int(saved.size) if saved else 0})


@native_step("image-load")
def image_load(world: World, vm: Any, guest: Any, args: list[Any], cp: int) -> list[Any]:
    """docker load -i $Path unless the image is present."""
    image = str(_arg(args, 0, ""))
    path = str(_arg(args, 1, ""))
    ch = _docker_ready_or_throw(world, vm, guest)
    img = C.find_image(ch, image)
    if img is not None:
        return _step("image-load", False, False, {"Id": img.id})
    _cli_or_throw(world, vm, guest, ["load", "-i", path], cp)
    img = C.find_image(ch, image)
    if img is None:
        raise script_error(f"docker load -i {path} did not provide {image}: the archive holds another image.")
    return _step("image-load", True, False, {"Id": img.id})


# --------------------------------------------------------------------------------------------- isolation


def _ver_run(world: World, vm: Any, guest: Any, image: str, isolation: str) -> C.RunOutcome:
    opts = C.RunOptions(image, ["cmd", "/c", "ver"], remove=True, isolation=isolation)
    return C.run_container(world, vm, guest, opts)


def _run_error(out: C.RunOutcome, cp: int) -> str:
    """docker's error lines of a failed run (from "docker: ..." on), without the pull's progress."""
    lines = read_native_lines(list(out.stderr), cp)
    start = next((i for i, line in enumerate(lines) if line.startswith("docker:")), 0)
    return "\n".join(lines[start:])


def _kernel_build(lines: list[str]) -> int | None:
    for line in lines:
        m = re.search(r"\[Version 10\.0\.(\d+)\.\d+\]", line)
        if m:
            return int(m.group(1))
    return None


@native_step("verify-isolation")
def verify_isolation(world: World, vm: Any, guest: Any, args: list[Any], cp: int) -> list[Any]:
    """docker run --rm --isolation=process|hyperv $Image cmd /c ver; failures are reported, not thrown."""
    image = str(_arg(args, 0, ""))
    _docker_ready_or_throw(world, vm, guest)
    facts: dict[str, Any] = {}
    for key, isolation in (("Process", "process"), ("HyperV", "hyperv")):
        out = _ver_run(world, vm, guest, image, isolation)
        ok = out.exit_code == 0
        stdout = read_native_lines(list(out.stdout), cp)
        text = "\n".join(line for line in stdout if line.startswith("Microsoft Windows")) if ok else ""
        facts[key] = {"Ok": ok, "Output": text, "Error": None if ok else _run_error(out, cp),
                      "Seconds": round(out.seconds, 3)}
    return _step("verify-isolation", False, False, facts)


@native_step("isolation-demo")
def isolation_demo(world: World, vm: Any, guest: Any, args: list[Any], cp: int) -> list[Any]:
    """Measure $Image and $OlderImage under process and Hyper-V isolation (labctl demo isolation)."""
    image = str(_arg(args, 0, ""))
    older = str(_arg(args, 1, ""))
    ch = _docker_ready_or_throw(world, vm, guest)
    changed = False
    rows = []
    for name in (image, older):
        if C.find_image(ch, name) is None:
            changed = True  # the run pulls it (counted by the registry)
        for isolation in ("process", "hyperv"):
            out = _ver_run(world, vm, guest, name, isolation)
            ok = out.exit_code == 0
            error = None if ok else _run_error(out, cp)
            overhead = 0
            if ok and out.container is not None:
                overhead = C.uvm_overhead_mb(out.container)
            rows.append(custom_object(
                Image=name, Isolation=isolation, Ok=ok, Error=error, StartSeconds=round(out.seconds, 3),
                KernelBuild=_kernel_build(out.stdout) if ok else None,
                # Process isolation: cmd.exe runs on the guest's kernel, Get-Process in the guest lists it.
                # Hyper-V isolation: the guest only sees the utility VM's vmmem process.
                VisibleInGuest=(isolation == "process") if ok else False,
                MemoryOverheadMB=overhead,
            ))
    return _step("isolation-demo", changed, False, {"GuestBuild": int(guest.os_build or 0), "Rows": rows})


# --------------------------------------------------------------------------------------------- docker-cli / exec


@native_step("docker-cli")
def docker_cli(world: World, vm: Any, guest: Any, args: list[Any], cp: int) -> list[Any]:
    """& docker @Arguments: ExitCode, Output, Error (a failing docker is reported, not thrown)."""
    argv = _strings(_arg(args, 0, []))
    res = D.docker(world, vm, guest, argv)
    return [custom_object(ExitCode=res.exit_code, Output=read_native_lines(list(res.stdout), cp),
                          Error=read_native_lines(list(res.stderr), cp))]


def _has_operator(command: str) -> bool:
    """A |, ; or > outside quotes."""
    quote: str | None = None
    for ch in command:
        if quote:
            quote = None if ch == quote else quote
        elif ch in ("'", '"'):
            quote = ch
        elif ch in "|;>":
            return True
    return False


def native_errors(lines: list[str]) -> list[PSError]:
    """A native command's stderr in a remote 5.1 session: the first line NativeCommandError, the rest
    NativeCommandErrorMessage (RemoteException records)."""
    out = []
    for i, line in enumerate(lines):
        err = PSError(line, "NativeCommandError" if i == 0 else "NativeCommandErrorMessage", "NotSpecified",
                      target=line, exception_type="System.Management.Automation.RemoteException", bare=True)
        out.append(err)
    return out


_SERVICE_STATUS = {"Running": 4, "Stopped": 1}


def _service(name: str, display: str, status: str) -> PSObj:
    return PSObj(["System.ServiceProcess.ServiceController", "System.ComponentModel.Component",
                  "System.MarshalByRefObject", "System.Object"],
                 {"Status": PSEnum("System.ServiceProcess.ServiceControllerStatus", status, _SERVICE_STATUS[status]),
                  "Name": name, "DisplayName": display, "ServiceName": name,
                  "StartType": PSEnum("System.ServiceProcess.ServiceStartMode", "Automatic", 2)},
                 to_string="System.ServiceProcess.ServiceController")


def _services(world: World, vm: Any, guest: Any) -> list[PSObj]:
    ch = C.host_of(guest)
    svcs = [_service("vmicheartbeat", "Hyper-V Heartbeat Service", "Running"),
            _service("WinRM", "Windows Remote Management (WS-Management)", "Running")]
    if ch.installed("Containers"):
        svcs += [_service("hns", "Host Network Service", "Running"),
                 _service("vmcompute", "Hyper-V Host Compute Service", "Running")]
    if ch.installed("Hyper-V"):
        svcs.append(_service("vmms", "Hyper-V Virtual Machine Management", "Running"))
    if ch.docker and ch.docker.registered:
        svcs.append(_service("docker", "Docker Engine", "Running" if C.daemon_running(world, vm, guest)
                             else "Stopped"))
    return sorted(svcs, key=lambda s: str(s.props["Name"]).lower())


_INSTALL_STATE = {"Available": 0, "Installed": 1, "InstallPending": 3}  # enum values unconfirmed


def _feature_obj(row: dict[str, Any]) -> PSObj:
    mark = "[X]" if row["InstallState"] != "Available" else "[ ]"
    return PSObj(["Microsoft.Windows.ServerManager.Commands.Feature", "System.Object"],
                 {"Name": row["Name"], "DisplayName": row["DisplayName"], "Installed": row["Installed"],
                  "InstallState": PSEnum("Microsoft.Windows.ServerManager.Commands.InstallState",
                                         row["InstallState"], _INSTALL_STATE[row["InstallState"]]),
                  "FeatureType": "Feature", "Path": row["DisplayName"], "Depth": 1},
                 to_string=f"{mark} {row['DisplayName']}")


def _named_args(words: list[str], param: str) -> list[str]:
    """-Name a,b | positional a,b for Get-Service / Get-WindowsFeature."""
    vals: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w.startswith("-"):
            if w.lower().lstrip("-") == param.lower() and i + 1 < len(words):
                vals.extend(v for v in words[i + 1].split(",") if v)
                i += 2
                continue
            i += 1
            continue
        vals.extend(v for v in w.split(",") if v)
        i += 1
    return vals


@native_step("exec")
def exec_command(world: World, vm: Any, guest: Any, args: list[Any], cp: int) -> list[Any]:
    """labctl exec: the user's command text, for the commands the simulated guest models."""
    command = str(_arg(args, 0, "")).strip()
    words = [w.text for w in split_words(command, commas=False)]
    if not words:
        return []
    if _has_operator(command):
        # Pipelines, statement separators and redirections need a PowerShell engine the simulator does not have.
        raise PSError(MSG_EXEC_NOT_MODELLED.format(cmd=command), "CommandNotModelled", "NotImplemented",
                      target=command, exception_type="System.NotImplementedException", bare=True, terminating=True)
    head = words[0].lower()
    if head in ("docker", "docker.exe"):
        res = D.docker(world, vm, guest, words[1:])
        outputs: list[Any] = read_native_lines(list(res.stdout), cp)
        outputs.extend(native_errors(read_native_lines(list(res.stderr), cp)))
        return outputs
    if head in ("hostname", "hostname.exe") and len(words) == 1:
        return [guest.computer_name or ""]
    if head == "cmd" and [w.lower() for w in words[1:]] == ["/c", "ver"]:
        build = int(guest.os_build or 0)
        return ["", f"Microsoft Windows [Version 10.0.{build}.{C.guest_revision(build)}]"]
    if head == "get-service":
        wanted = _named_args(words[1:], "Name")
        svcs = _services(world, vm, guest)
        if not wanted:
            return list(svcs)
        out: list[Any] = []
        for w in wanted:
            match = [s for s in svcs if re.fullmatch(re.escape(w).replace(r"\*", ".*"), str(s.props["Name"]),
                                                     re.IGNORECASE)]
            if not match and "*" not in w:
                out.append(PSError(f"Cannot find any service with service name '{w}'.",
                                   "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand",
                                   "ObjectNotFound", target=w,
                                   exception_type="Microsoft.PowerShell.Commands.ServiceCommandException",
                                   bare=True))
            out.extend(match)
        return out
    if head == "get-windowsfeature":
        wanted = _named_args(words[1:], "Name")
        return [_feature_obj(r) for r in C.feature_rows(guest, wanted or None)]
    # Catalog cmdlets with a guest model (Install-WindowsFeature ...), bound with their parameter sets.
    modelled = G.run_command_line(world, vm, guest, command)
    if modelled is not None:
        return modelled
    raise PSError(MSG_EXEC_NOT_MODELLED.format(cmd=command), "CommandNotModelled", "NotImplemented",
                  target=command, exception_type="System.NotImplementedException", bare=True, terminating=True)

