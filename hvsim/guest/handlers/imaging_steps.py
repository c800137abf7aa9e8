r"""Guest steps that turn a configured container host into a golden image: golden-clean and sysprep.

``golden-clean 1`` (templates/guest/golden-clean.ps1, no arguments) stops Docker and removes what belongs to the
lab or to this one machine: the answer file (it holds the encoded Administrator password), Docker's TLS material
and daemon.json's tls/hosts keys (every guest gets its own certificates), containers, the HNS "nat" network (HNS
keeps it per host; dockerd creates it again at its next start), the engine's identity file and labctl's TLS
firewall rule. It keeps the features, the Docker service registration and binaries, and the images.

``sysprep 1`` (templates/guest/sysprep.ps1, param($UnattendXml)) writes the answer file to
C:\Windows\System32\Sysprep\unattend-labctl.xml and runs ``sysprep.exe /generalize /oobe /shutdown /mode:vm
/quiet /unattend:<file>``. Its refusals are what Sysprep writes to C:\Windows\System32\Sysprep\Panther\setuperr.log
(the step returns those lines): a servicing operation waiting for a reboot (a feature installed without its
restart) and the generalize limit (docs/facts.md "Images"). On success the disk holds a generalized image: its
first boot runs specialize and OOBE again (a new identity) and starts with this guest's features, Docker service
and images; sysprep caches the answer file to C:\Windows\Panther\unattend.xml, and the VM shuts itself down.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import TYPE_CHECKING, Any

from hvsim.docker.models import engine as C
from hvsim.guest.handlers.step import StepFn, StepTable, custom_object
from hvsim.guest.models.guest import ANSWER_FILE, Guest
from hvsim.powershell.errors import PSError

if TYPE_CHECKING:
    from hvsim.world import World

STEPS: StepTable[StepFn] = StepTable()

SYSPREP_UNATTEND = "\\Windows\\System32\\Sysprep\\unattend-labctl.xml"
SYSPREP_PANTHER = "\\Windows\\System32\\Sysprep\\Panther"
# Microsoft Learn, "Sysprep (Generalize) a Windows installation": "You can run the Sysprep command up to 1001 times
# on a single Windows image. After running Sysprep 1001 times, you must recreate your Windows image."
GENERALIZE_LIMIT = 1001
# The exit code sysprep.exe /quiet returns when it fails (unconfirmed: Sysprep documents only its logs).
SYSPREP_FAILED = 1
TLS_KEYS = ("tls", "tlsverify", "tlscacert", "tlscert", "tlskey", "hosts")
ENGINE_ID_FILES = ("C:\\ProgramData\\docker\\engine-id", "C:\\ProgramData\\docker\\config\\key.json")
# DISM names of the Server Manager features a golden image records as enabled.
DISM_NAMES = {"Containers": "Containers", "Hyper-V": "Microsoft-Hyper-V"}

# setuperr.log when a servicing operation waits for a reboot: the Opk cleanup validation queries pending CBS
# operations (its failure chain as GoogleCloudPlatform/compute-image-windows#156 logs it; the first line's
# wording is unconfirmed).
_PENDING_REBOOT = [
    ("", "Sysprep_Clean_Validate_Opk: There are one or more Windows updates that require a reboot. To run Sysprep, "
         "reboot the computer and restart the application.[gle=0x000036b7]"),
    ("[0x0f0082] ", "ActionPlatform::LaunchModule: Failure occurred while executing 'Sysprep_Clean_Validate_Opk' "
                    "from C:\\Windows\\System32\\spopk.dll; dwRet = 0x36b7"),
    ("", "SysprepSession::Validate: Error in validating actions from "
         "C:\\Windows\\System32\\Sysprep\\ActionFiles\\Cleanup.xml; dwRet = 0x36b7"),
    ("", "RunPlatformActions:Failed while validating SysprepSession actions; dwRet = 0x36b7"),
    ("[0x0f0070] ", "RunExternalDlls:An error occurred while running registry sysprep DLLs, halting sysprep "
                    "execution. dwRet = 0x36b7"),
    ("[0x0f00d8] ", "WinMain:Hit failure while pre-validate sysprep cleanup internal providers; hr = 0x800736b7"),
]
# setuperr.log when the image was generalized too often: the Security-SPP generalize action (the rearm) fails
# with SL_E_RIGHT_NOT_GRANTED... 0xc004d307 ("The maximum allowed number of re-arms has been exceeded"); the chain
# as actions/runner-images#9659 logs a failed generalize action.
_LIMIT = [
    ("[0x0f0082] ", "ActionPlatform::LaunchModule: Failure occurred while executing 'SLReArmWindows' from "
                    "C:\\Windows\\System32\\slc.dll; dwRet = 0xc004d307"),
    ("", "SysprepSession::ExecuteInternal: Error in executing action for Microsoft-Windows-Security-SPP; dwRet = "
         "0xc004d307"),
    ("", "SysprepSession::Execute: Error in executing actions from "
         "C:\\Windows\\System32\\Sysprep\\ActionFiles\\Generalize.xml; dwRet = 0xc004d307"),
    ("", "RunPlatformActions:Failed while executing Sysprep session actions; dwRet = 0xc004d307"),
    ("[0x0f0070] ", "RunDlls:An error occurred while running registry sysprep DLLs, halting sysprep execution. "
                    "dwRet = 0xc004d307"),
    ("[0x0f00a8] ", "WinMain:Hit failure while processing sysprep generalize internal providers; hr = 0xc004d307"),
]


def _disk(vm: Any) -> str:
    return str(vm.hard_drives[0])


def _exists(world: World, vm: Any, inner: str) -> bool:
    return world.storage.read_file(_disk(vm), inner) is not None


@STEPS.step("golden-clean")
def golden_clean(world: World, vm: Any, guest: Guest, args: list[Any]) -> list[Any]:
    """Stop Docker, remove the lab's and the machine's own state; report what went and what stays."""
    st = world.storage
    disk = _disk(vm)
    ch = C.host_of(guest)
    removed: list[str] = []
    kept: list[str] = []
    if st.delete_file(disk, ANSWER_FILE):
        removed.append("C:" + ANSWER_FILE)
    d = ch.docker
    if d is not None:
        d.status = "Stopped"
        d.started_at = None
    for cid, c in list(ch.containers.items()):
        removed.append(f"container {c.name}")
        del ch.containers[cid]
    if d is not None:
        removed.append("HNS network nat")
    for name in ("ca.pem", "server-cert.pem", "server-key.pem", "cert.pem", "key.pem"):
        path = f"{C.CERT_DIR}\\{name}"
        if st.delete_file(disk, path[2:]):
            removed.append(path)
    for path in ENGINE_ID_FILES:
        if st.delete_file(disk, path[2:]):
            removed.append(path)
    raw = st.read_file(disk, C.DAEMON_JSON[2:])
    if raw is not None:
        try:
            config = json.loads(raw.decode("utf-8-sig") or "{}")
        except (ValueError, UnicodeDecodeError):
            config = None
        if isinstance(config, dict):
            dropped = [k for k in TLS_KEYS if k in config]
            if dropped:
                for k in dropped:
                    del config[k]
                text = json.dumps(config)
                st.write_file(disk, C.DAEMON_JSON[2:], text.encode("utf-8"))
                if d is not None:
                    d.daemon_json = text
                    d.config = dict(config)
                removed.append(f"{C.DAEMON_JSON}: {', '.join(dropped)}")
    if C.FIREWALL_RULE in ch.firewall_rules:
        del ch.firewall_rules[C.FIREWALL_RULE]
        removed.append(f"firewall rule {C.FIREWALL_RULE}")
    kept += [f"feature {n}" for n in C.FEATURES if ch.features.get(n) == C.INSTALLED]
    if d is not None:
        kept.append(f"service docker {d.version} (registered, stopped)")
    kept += sorted({C.familiar_tag(t) for img in ch.images.values() for t in img.tags})
    world.clock.account(vm.name, "golden_clean")
    return [custom_object(Removed=removed, Kept=kept)]


def _log_lines(world: World, lines: list[tuple[str, str]]) -> list[str]:
    stamp = _dt.datetime.fromtimestamp(world.clock.now(), tz=_dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    # "<time>, Error      [0x0f0070] SYSPRP <text>", or without a message id "Error" padded to the same column.
    return [f"{stamp}, Error      {code}SYSPRP {text}" if code else f"{stamp}, Error                 SYSPRP {text}"
            for code, text in lines]


def _refuse(world: World, vm: Any, lines: list[tuple[str, str]]) -> list[Any]:
    errors = _log_lines(world, lines)
    text = "".join(f"{line}\r\n" for line in errors).encode("utf-8")
    try:
        world.storage.write_file(_disk(vm), f"{SYSPREP_PANTHER}\\setuperr.log", text, append=True)
        world.storage.write_file(_disk(vm), f"{SYSPREP_PANTHER}\\setupact.log", text, append=True)
    except PSError:
        pass  # a full volume loses the log, as on a real disk
    return [custom_object(ExitCode=SYSPREP_FAILED, Errors=errors)]


def golden_state(ch: C.ContainerHost) -> dict[str, Any]:
    """The container host as a generalized disk keeps it: features, the Docker service (registered, stopped), its
    images; no containers (they are gone with the machine's state)."""
    state = ch.to_state()
    state["containers"] = {}
    if state.get("docker"):
        state["docker"].update({"status": "Stopped", "error": None, "started_at": None})
    return state


@STEPS.step("sysprep")
def sysprep(world: World, vm: Any, guest: Guest, args: list[Any]) -> list[Any]:
    """Generalize the guest (or refuse as Sysprep does) and shut the VM down."""
    st = world.storage
    disk = _disk(vm)
    unattend = str(args[0]) if args and args[0] is not None else ""
    st.write_file(disk, SYSPREP_UNATTEND, unattend.encode("utf-8"))
    ch = C.host_of(guest)
    if any(state in (C.PENDING, C.INTERRUPTED) for state in ch.features.values()):
        return _refuse(world, vm, _PENDING_REBOOT)
    os_info = st.os_info(disk) or {}
    count = int(os_info.get("generalize_count") or 0)
    if count >= GENERALIZE_LIMIT:
        return _refuse(world, vm, _LIMIT)
    world.clock.account(vm.name, "sysprep_generalize")
    image = {k: v for k, v in os_info.items() if k not in ("computer_name", "accounts")}
    features = dict(image.get("features") or {})
    for name, state in ch.features.items():
        if state == C.INSTALLED and name in DISM_NAMES:
            features[DISM_NAMES[name]] = "Enabled"
    image.update({"sysprepped": True, "generalize_count": count + 1, "features": features,
                  "container_host": golden_state(ch)})
    vhd = st.get_vhd(disk)
    assert vhd is not None
    vhd.os = image
    # Sysprep caches the answer file it was given where the next first boot reads it.
    st.write_file(disk, ANSWER_FILE, unattend.encode("utf-8"))
    world.hv.stop(vm)  # /shutdown: the guest powers off when generalize is done
    return [custom_object(ExitCode=0, Errors=[])]
