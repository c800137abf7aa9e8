"""The guest OS inside one VM: first-boot setup, boot progress, accounts, network identity.

The VM model calls the hooks (``on_start``, ``on_stop``, ``on_restart``, ``heartbeat``,
``ip_addresses``, ``to_state``/``from_state``); the remoting handlers ask ``ps_direct_refusal``,
``authenticate`` and ``reboot``. Progress is a function of simulated time: a transition stores
the instant it completes (``world.clock.due``), and every question compares with
``world.clock.now()``. In the ``instant`` profile ``due`` returns now, so a started guest is ready
at once, but each modeled duration is still accounted to the VM.

First boot of a generalized (sysprepped) image runs the specialize and oobeSystem passes from
``\\Windows\\Panther\\unattend.xml`` on the system disk (what labctl injects offline):

- valid and complete: after boot_to_heartbeat + first_boot_specialize_oobe the guest is ready
  with the file's computer name, Administrator password, static IPs, DNS, time zone and RDP flag;
- invalid: setup stops at the Windows dialog; the heartbeat never reports, PowerShell Direct is
  refused, and the failure is written to ``\\Windows\\Panther\\setupact.log``/``setuperr.log`` on
  the disk, where a tool that mounts the VHD after stopping the VM can read it;
- valid but without an Administrator password (or no file at all): OOBE waits for someone to
  type one; the heartbeat says the OS runs (OkApplicationsUnknown) but PowerShell Direct fails.

A base that is not generalized boots to its old identity and runs no passes. Setup never reruns
passes it has processed: later boots are plain boots. Passwords are kept only as salted scrypt
hashes.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import ipaddress
import secrets
from typing import TYPE_CHECKING, Any

from hvsim.docker.models.engine import INSTALLED, ContainerHost
from hvsim.guest.models import unattend as _unattend
from hvsim.guest.models.localized import DEFAULT_CULTURE, FIREWALL_GROUPS, check_culture, firewall_group
from hvsim.powershell.errors import PSError
from hvsim.storage.media import OFFLINE_FEATURES
from hvsim.storage.models import NO_UEFI_FS

if TYPE_CHECKING:
    from hvsim.world import World

ANSWER_FILE = "\\Windows\\Panther\\unattend.xml"  # inner path on the system volume (C:\)
SETUPACT_LOG = "\\Windows\\Panther\\setupact.log"
SETUPERR_LOG = "\\Windows\\Panther\\setuperr.log"

# Setup outcomes.
PENDING = "pending"  # never booted: the first boot will run setup
DONE = "done"  # passes processed (or none to run): the guest has its identity
FAILED = "failed"  # setup stopped at an error dialog
OOBE_WAIT = "oobe"  # OOBE waits for user input
LEGACY = "legacy"  # not generalized: booted to its old identity, no passes
NO_OS = "no_os"  # no bootable operating system on the system disk

# Windows' text when first boot is cut short (power off or reset during specialize/OOBE).
MSG_INTERRUPTED = ("The computer restarted unexpectedly or encountered an unexpected error. Windows "
                   "installation cannot proceed. To install Windows, click \"OK\" to restart the "
                   "computer, and then restart the installation.")
# The Generation 2 (UEFI) firmware's boot summary on the VM's console when nothing booted: each boot device with
# what it found, then this line (docs/facts.md "Images"); the heartbeat never answers.
MSG_NO_OS = ("No operating system was loaded. Your virtual machine may be configured incorrectly. Exit and "
             "re-configure your VM or click restart to retry the current boot sequence again.")


def boot_summary(vm: Any, disk_problem: str) -> str:
    """The firmware's "Virtual Machine Boot Summary" for a VM whose disk booted nothing."""
    lines = ["Virtual Machine Boot Summary", f"1. SCSI Disk (0,0)  {disk_problem}"]
    for i, adapter in enumerate(getattr(vm, "network_adapters", []) or [], start=2):
        lines.append(f"{i}. Network Adapter ({str(adapter.mac_address).replace('-', '').upper()})  "
                     "A boot image was not found.")
    return "\n".join([*lines, MSG_NO_OS])


# Windows Setup's defaults when the answer file says nothing.
DEFAULT_TIME_ZONE = "Pacific Standard Time"
CAPTIONS = {
    14393: "Microsoft Windows Server 2016 Datacenter",
    17763: "Microsoft Windows Server 2019 Datacenter",
    20348: "Microsoft Windows Server 2022 Datacenter",
    26100: "Microsoft Windows Server 2025 Datacenter",
}
# scrypt cost: enough to make the stored hash useless to read back, cheap enough for tests.
_SCRYPT = {"n": 2**12, "r": 8, "p": 1, "dklen": 32}


def hash_password(password: str, salt: bytes | None = None) -> dict[str, str]:
    """A salted scrypt hash of ``password`` (what the guest keeps instead of the password)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, **_SCRYPT)
    return {"salt": salt.hex(), "hash": digest.hex()}


def check_password(password: str, stored: dict[str, str]) -> bool:
    """Does ``password`` match a hash from ``hash_password``? Constant-time compare."""
    digest = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(stored["salt"]), **_SCRYPT)
    return hmac.compare_digest(digest.hex(), stored["hash"])


def _stable_hex(*parts: str, length: int = 8) -> str:
    """Deterministic hex from identifying strings (random-looking, reproducible across runs)."""
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:length]


def random_computer_name(seed: str) -> str:
    """What Windows picks for ComputerName "*" or an unattended OOBE: WIN- and 11 characters."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    return "WIN-" + "".join(alphabet[b % len(alphabet)] for b in digest[:11])


def mac_dashed(mac: str) -> str:
    """"00155D010203" -> "00-15-5D-01-02-03" (how Windows writes a MAC)."""
    m = mac.replace("-", "").replace(":", "").upper()
    return "-".join(m[i:i + 2] for i in range(0, 12, 2))


class Guest:
    """Guest OS state of one VM (boot progress, applied answer file, accounts, IPs)."""

    def __init__(self) -> None:
        self.setup = PENDING
        self.setup_error: dict[str, Any] | None = None  # UnattendFailure.to_dict() or similar
        self.running = False
        self.first_boot = False  # this boot runs setup (interrupting it breaks the install)
        self.heartbeat_at: float | None = None  # heartbeat integration service answers from then
        self.ready_at: float | None = None  # logon possible (PowerShell Direct, KVP IPs) from then
        self.saved_remaining: dict[str, float] | None = None  # Stop-VM -Save mid-boot
        self.boot_count = 0  # generation: PowerShell Direct sessions die with their boot
        self.restored = False  # put back from a checkpoint without memory: the next start is a cold boot
        self.last_boot_up_time: float | None = None
        self.computer_name: str | None = None
        self.accounts: dict[str, dict[str, str]] = {}  # lower-case name -> {name, salt, hash}
        self.time_zone = DEFAULT_TIME_ZONE
        self.rdp_enabled = False  # fDenyTSConnections defaults to true on Windows Server
        # The display language of the image (firewall group names are shown, and matched, in it).
        self.ui_culture = DEFAULT_CULTURE
        # The answer file's SystemLocale ("language for non-Unicode programs"), None for the image's default:
        # it sets the OEM code page native programs' output is decoded with (guest/models/codepages.py).
        self.system_locale: str | None = None
        # Firewall rule groups by id -> all rules enabled. A fresh Windows Server enables the WinRM
        # group (Enable-PSRemoting is the default since 2012) and not Remote Desktop.
        self.firewall_groups = {g.group_id: g.group_id == "@FirewallAPI.dll,-30267" for g in FIREWALL_GROUPS}
        self.psremoting_enabled = True  # WinRM listens by default on Windows Server 2012 and later
        self.registered_owner: str | None = None
        self.interfaces: list[dict[str, Any]] = []  # InterfaceConfig.to_dict() entries
        self.dns_domain: str | None = None
        self.os_build: int | None = None
        self.os_caption: str | None = None
        self.applied_passes: list[str] = []
        # The Generation 2 firmware's boot summary when no operating system was loaded (setup == NO_OS).
        self.boot_failure: str | None = None
        # Windows features, Docker engine, images, containers (docker/models/engine.py).
        self.container_host = ContainerHost()

    # ------------------------------------------------------------------------- VM hooks
    def on_start(self, world: World, vm: Any) -> None:
        """The VM went from Off to Running: a fresh boot (a resume from Saved is not a boot)."""
        clock = world.clock
        self.running = True
        self._discard_saved()  # Start-VM resumes a saved VM without this hook: a save left here was discarded
        self.boot_count += 1
        boot = clock.account(vm.name, "boot_after_restore" if self.restored else "boot_to_heartbeat", background=True)
        self.restored = False
        self.last_boot_up_time = clock.now()
        self._boot(world, vm, boot)

    def _boot(self, world: World, vm: Any, seconds: float) -> None:
        """A boot begins that reaches the heartbeat in ``seconds``: the first one runs setup from the answer file;
        the container host comes up with it."""
        self.heartbeat_at = world.clock.due(seconds)
        self.ready_at = self.heartbeat_at
        self.first_boot = False
        if self.setup == PENDING:
            self._first_boot(world, vm, seconds)
        self.container_host.on_boot(world, vm)

    def on_stop(self, world: World, vm: Any, how: str) -> None:
        """The VM stops: ``how`` is "shutdown", "turnoff" or "save"."""
        now = world.clock.now()
        if how == "save":
            # Memory is kept: remember how much of the boot is left; Start-VM resumes it (the VM
            # model does not call on_start for a resume, so _sync picks it up from vm.started_at).
            self.saved_remaining = {
                "heartbeat": max(0.0, (self.heartbeat_at or now) - now),
                "ready": max(0.0, (self.ready_at or now) - now),
            }
        else:
            self._interrupt_setup_if_running(world, vm, now)
            self.saved_remaining = None
            if how == "turnoff" and self.running:
                self.container_host.on_reset(world)  # the power went: nothing in the guest shut down
            else:
                self.container_host.on_shutdown(world)
        self.running = False

    def on_restart(self, world: World, vm: Any) -> None:
        """Restart-VM: a reset ("like powering the computer down"); the guest boots again (setup in progress is
        lost, a pending feature install is rolled back)."""
        now = world.clock.now()
        self._interrupt_setup_if_running(world, vm, now)
        if self.running:
            self.container_host.on_reset(world)
        self.reboot(world, vm)

    def heartbeat(self, world: World, vm: Any) -> str:
        """Microsoft.HyperV.PowerShell.VMHeartbeatStatus member name for Get-VM."""
        self._sync(world, vm)
        services = getattr(vm, "integration_services", None) or {}
        if services.get("Heartbeat") is False:
            return "Disabled"
        if getattr(vm, "state", None) == "Paused" and self.running:
            return "Paused"
        if not self.running or self.heartbeat_at is None:
            return "NoContact"
        now = world.clock.now()
        if now < self.heartbeat_at or self.setup in (FAILED, NO_OS):
            # A setup error dialog stops the first boot before the integration services report.
            return "NoContact"
        if self.is_ready(world, vm):
            return "OkApplicationsHealthy"
        return "OkApplicationsUnknown"

    def os_running(self, world: World, vm: Any) -> bool:
        """The guest OS is up and its integration components answer (what a VSS snapshot or a graceful shutdown
        needs), whether or not the Heartbeat service is offered."""
        self._sync(world, vm)
        if getattr(vm, "state", None) != "Running" or not self.running or self.heartbeat_at is None:
            return False
        return world.clock.now() >= self.heartbeat_at and self.setup not in (FAILED, NO_OS)

    def production_image(self, world: World) -> Guest:
        """The guest as a Production checkpoint keeps it: the volumes as the VSS snapshot froze them, no memory.
        Restored, it boots like a system whose power went at that instant (docs/facts.md "Checkpoints"): nothing
        runs, containers have exited, a feature install waiting for its shutdown phase is rolled back at the next
        boot, and a first boot still in setup does not finish."""
        image = Guest.from_state(self.to_state())
        now = world.clock.now()
        if image.first_boot and image.setup == DONE and image.ready_at is not None and now < image.ready_at:
            image.setup = FAILED
            image.setup_error = self._interrupted_error()
        if image.running:
            image.container_host.on_reset(world)
        image.running = False
        image.saved_remaining = None
        return image

    def ip_addresses(self, world: World, vm: Any, mac: str) -> list[str]:
        """Addresses the guest reports on the adapter with this MAC (via KVP)."""
        services = getattr(vm, "integration_services", None) or {}
        if services.get("Key-Value Pair Exchange") is False or not self.is_ready(world, vm):
            return []
        adapters = list(getattr(vm, "network_adapters", []) or [])
        mac_key = mac.replace("-", "").replace(":", "").upper()
        index = next((i for i, a in enumerate(adapters)
                      if str(a.mac_address).replace("-", "").upper() == mac_key), None)
        if index is None or not getattr(adapters[index], "switch_name", None):
            return []  # a disconnected adapter has no addresses to report
        iface = self.interface_for(mac_key, index) or {}
        statics = [str(ipaddress.ip_interface(a).ip) for a in iface.get("addresses", [])]
        addrs: list[str] = []
        if any(":" not in a for a in statics) and not iface.get("dhcp"):
            addrs.extend(a for a in statics if ":" not in a)
        else:
            # No DHCP server answers on the simulated switches: Windows falls back to APIPA.
            h = bytes.fromhex(_stable_hex(str(vm.id), mac_key, length=4))
            addrs.append(f"169.254.{1 + h[0] % 254}.{1 + h[1] % 254}")
        addrs.extend(a for a in statics if ":" in a)
        addrs.append(self.link_local(vm, mac_key))
        return addrs

    # ------------------------------------------------------------------------- questions
    def _sync(self, world: World, vm: Any) -> None:
        """Catch up with VM transitions that have no hook (resume from Saved, discarded save)."""
        state = getattr(vm, "state", None)
        if state is None:
            return
        if state in ("Running", "Paused") and self.saved_remaining is not None:
            # Start-VM resumed a saved VM: the boot goes on from vm.started_at for what was left.
            clock = world.clock
            now = clock.now()
            base = float(getattr(vm, "started_at", None) or now)
            rem = self.saved_remaining
            self.heartbeat_at = base + (clock.due(rem.get("heartbeat", 0.0)) - now)
            self.ready_at = base + (clock.due(rem.get("ready", 0.0)) - now)
            self.saved_remaining = None
            self.running = True
        elif state == "Off":
            self._discard_saved()
            self.running = False

    def _discard_saved(self) -> None:
        """Stop-VM on a saved VM throws its memory away: during setup, like pulling the plug."""
        if self.saved_remaining is not None and self.first_boot and self.setup == DONE \
                and self.saved_remaining.get("ready", 0.0) > 0:
            self.setup = FAILED
            self.setup_error = self._interrupted_error()
        self.saved_remaining = None

    def is_ready(self, world: World, vm: Any) -> bool:
        """Booted to a logon-capable OS: PowerShell Direct and KVP work."""
        self._sync(world, vm)
        if getattr(vm, "state", "Running") != "Running" or not self.running:
            return False
        if self.ready_at is None or self.setup not in (DONE, LEGACY):
            return False
        return world.clock.now() >= self.ready_at

    def ps_direct_refusal(self, world: World, vm: Any) -> str | None:
        """None when a PowerShell Direct session can open; else why not (for logs)."""
        self._sync(world, vm)
        if getattr(vm, "state", "Running") != "Running" or not self.running:
            return "the virtual machine is not running"
        if self.setup == FAILED:
            return "Windows setup failed: " + str((self.setup_error or {}).get("message", ""))
        if self.setup == OOBE_WAIT:
            return "the guest waits at OOBE for input"
        if self.setup == NO_OS:
            return "there is no operating system on the system disk: " + (self.boot_failure or MSG_NO_OS)
        if not self.is_ready(world, vm):
            return "the guest has not finished booting"
        return None

    def authenticate(self, username: str, password: str) -> bool:
        """Check a guest credential: "user", ".\\user" or "<computername>\\user"."""
        user = username.strip()
        if "\\" in user:
            domain, _, user = user.partition("\\")
            if domain not in (".",) and domain.lower() != (self.computer_name or "").lower():
                return False  # no domain: only local accounts exist
        elif "@" in user:
            return False
        stored = self.accounts.get(user.lower())
        if stored is None:
            return False
        return check_password(password, stored)

    def interface_for(self, mac: str, index: int) -> dict[str, Any] | None:
        """The answer-file interface for an adapter: by MAC, else by alias ("Ethernet 2")."""
        alias = "ethernet" if index == 0 else f"ethernet {index + 1}"
        dashed = mac_dashed(mac)
        for iface in self.interfaces:
            # Windows matches "00-15-5D-..." or the interface alias; "00155D..." matches nothing.
            ident = str(iface.get("identifier", "")).strip()
            if ident.upper() == dashed or ident.lower() == alias:
                return iface
        return None

    def link_local(self, vm: Any, mac: str) -> str:
        """The fe80:: address; Windows randomizes interface identifiers, so derive a stable one."""
        h = _stable_hex(str(vm.id), mac, "ll", length=16)
        return "fe80::" + ":".join(h[i:i + 4].lstrip("0") or "0" for i in range(0, 16, 4))

    # ------------------------------------------------------------------------- transitions
    def reboot(self, world: World, vm: Any) -> None:
        """The guest restarts (Restart-VM, or a reboot during a session): sessions break."""
        if not self.running:
            return
        seconds = world.clock.account(vm.name, "guest_reboot", background=True)
        self.boot_count += 1
        self.saved_remaining = None
        self._boot(world, vm, seconds)
        self.last_boot_up_time = self.heartbeat_at

    def _interrupt_setup_if_running(self, world: World, vm: Any, now: float) -> None:
        if not (self.first_boot and self.setup == DONE and self.ready_at is not None
                and now < self.ready_at):
            return
        self.setup = FAILED
        self.setup_error = self._interrupted_error()
        self._write_logs(world, vm, [("Error", f"[windeploy.exe] {MSG_INTERRUPTED}")], failed=True)

    @staticmethod
    def _interrupted_error() -> dict[str, Any]:
        return {"pass": "specialize", "kind": "interrupted", "message": MSG_INTERRUPTED,
                "reason": "The first boot was interrupted before setup finished.",
                "component": None, "setting": None}

    def _first_boot(self, world: World, vm: Any, boot_seconds: float) -> None:
        """Run setup: read the answer file, validate, apply or fail; schedule readiness."""
        clock = world.clock
        disk: str | None = vm.hard_drives[0] if getattr(vm, "hard_drives", None) else None
        os_info = world.storage.os_info(disk) if disk else None
        problem = world.storage.boot_problem(disk) if disk else NO_UEFI_FS
        if not os_info or disk is None or problem is not None:
            self.setup = NO_OS
            self.boot_failure = boot_summary(vm, problem or NO_UEFI_FS)
            return
        self.os_build = int(os_info.get("build") or 0) or None
        self.os_caption = str(os_info.get("caption") or os_info.get("edition_caption")
                              or CAPTIONS.get(self.os_build or 0, "Microsoft Windows Server"))
        self.ui_culture = check_culture(str(os_info.get("ui_culture") or world.host.ui_culture))
        if not os_info.get("sysprepped"):
            # Not generalized: no passes run, the old identity (and its accounts) boots.
            self.setup = LEGACY
            self.computer_name = str(os_info.get("computer_name") or random_computer_name(str(vm.id)))
            for name, stored in (os_info.get("accounts") or {}).items():
                if isinstance(stored, dict) and "salt" in stored and "hash" in stored:
                    self.accounts[name.lower()] = {"name": name, **stored}
            return
        self.first_boot = True
        extra = self._state_from_image(world, vm, os_info)
        raw = world.storage.read_file(disk, ANSWER_FILE)
        if raw is None:
            # No answer file: specialize picks a random name, OOBE waits for a person.
            self.computer_name = random_computer_name(str(vm.id))
            self.setup = OOBE_WAIT
            clock.account(vm.name, "first_boot_specialize_oobe", 0.5, background=True, lane=vm.name + ":setup")
            self._write_logs(world, vm, [("Info", "[windeploy.exe] No unattend file found; "
                                                  "OOBE will run interactively.")], failed=False)
            return
        report = _unattend.validate(raw, path="C:" + ANSWER_FILE)
        if not report.valid:
            assert report.failure is not None
            # Setup fails during specialize, roughly half way through the first-boot work.
            clock.account(vm.name, "first_boot_specialize_oobe", 0.5, background=True, lane=vm.name + ":setup")
            self.setup = FAILED
            self.setup_error = report.failure.to_dict()
            self._write_logs(world, vm, report.failure.log_lines("C:" + ANSWER_FILE), failed=True)
            return
        self._apply(vm, report.config)
        self._apply_firewall_groups(world, vm, report.config)
        if report.config.administrator_password is None:
            # Specialize ran; the oobeSystem pass has no Administrator password to set.
            clock.account(vm.name, "first_boot_specialize_oobe", 0.5, background=True, lane=vm.name + ":setup")
            self.setup = OOBE_WAIT
            self._write_logs(world, vm, [("Info", "[oobe] The answer file sets no Administrator "
                                                  "password; OOBE waits for input.")], failed=False)
            return
        self._log_unmatched_interfaces(world, vm)
        setup_seconds = clock.account(vm.name, "first_boot_specialize_oobe", background=True)
        self.setup = DONE
        self.ready_at = clock.due(boot_seconds + setup_seconds + extra)
        self._write_logs(world, vm, [("Info", f"[windeploy.exe] Successfully processed unattend "
                                              f"pass [{p}].") for p in self.applied_passes],
                         failed=False)

    def _state_from_image(self, world: World, vm: Any, os_info: dict[str, Any]) -> float:
        """What a generalized image brings to its first boot: a golden image's container host (features, the
        Docker service, its images: hvsim.guest.handlers.imaging_steps records them at sysprep), and the features
        enabled offline in the image (their online phase runs during specialize). Returns the extra seconds."""
        golden = os_info.get("container_host")
        if isinstance(golden, dict):
            self.container_host = ContainerHost.from_state(golden)
        offline = [OFFLINE_FEATURES.get(n) for n, st in (os_info.get("features") or {}).items() if st == "Enabled"]
        named = [n for n in offline if n]
        for name in named:
            self.container_host.features[name] = INSTALLED
        if named and not isinstance(golden, dict):
            return world.clock.account(vm.name, "first_boot_offline_features", background=True)
        return 0.0

    def _apply_firewall_groups(self, world: World, vm: Any, cfg: _unattend.UnattendConfig) -> None:
        """Enable or disable each FirewallGroup the answer file names. Group must be the group's id
        (Microsoft's unattend reference); a display name works only in the image's own language, and
        what names no group is skipped, not fatal (logged; Windows' own log text is unconfirmed)."""
        lines = []
        for entry in cfg.firewall_groups:
            group = firewall_group(str(entry.get("group", "")), self.ui_culture)
            if group is None:
                lines.append(("Warning", f"[Networking-MPSSVC-Svc] Unattend: FirewallGroup "
                                         f"[{entry.get('key', '')}]: no firewall group [{entry.get('group', '')}] "
                                         f"on this {self.ui_culture} system; skipped (simulated)."))
                continue
            self.firewall_groups[group.group_id] = bool(entry.get("active", True))
        if lines:
            self._write_logs(world, vm, lines, failed=False)

    def _log_unmatched_interfaces(self, world: World, vm: Any) -> None:
        """TCPIP settings for an interface the guest does not have are skipped, not fatal."""
        adapters = list(getattr(vm, "network_adapters", []) or [])
        known = {id(self.interface_for(str(a.mac_address).replace("-", "").upper(), i))
                 for i, a in enumerate(adapters)}
        lines = [("Warning", f"[TCPIP] Unattend: no network interface matches Identifier "
                             f"[{iface.get('identifier')}]; its settings were not applied.")
                 for iface in self.interfaces if id(iface) not in known]
        if lines:
            self._write_logs(world, vm, lines, failed=False)

    def _apply(self, vm: Any, cfg: _unattend.UnattendConfig) -> None:
        """Take the identity the answer file describes (passwords become hashes here)."""
        name = cfg.computer_name
        if not name or name == "*":
            name = random_computer_name(str(vm.id))
        self.computer_name = name
        if cfg.administrator_password is not None:
            self.accounts["administrator"] = {"name": "Administrator",
                                              **hash_password(cfg.administrator_password.reveal())}
        for acct, pw in cfg.local_accounts.items():
            self.accounts[acct.lower()] = {"name": acct, **hash_password(pw.reveal())}
        if cfg.time_zone:
            self.time_zone = cfg.time_zone
        self.system_locale = cfg.system_locale
        if cfg.rdp_enabled is not None:
            self.rdp_enabled = cfg.rdp_enabled
        self.registered_owner = cfg.registered_owner
        self.dns_domain = cfg.dns_domain
        self.interfaces = [i.to_dict() for i in cfg.interfaces]
        self.applied_passes = list(cfg.passes)

    def _write_logs(self, world: World, vm: Any, lines: list[tuple[str, str]], *, failed: bool) -> None:
        """Append setup's log lines to Panther\\setupact.log (errors also to setuperr.log)."""
        disk = vm.hard_drives[0] if getattr(vm, "hard_drives", None) else None
        if not disk:
            return
        stamp = _dt.datetime.fromtimestamp(world.clock.now(), tz=_dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        act = "".join(f"{stamp}, {level:<22}{text}\r\n" for level, text in lines)
        errors = [(lvl, t) for lvl, t in lines if lvl == "Error"]
        err = "".join(f"{stamp}, {level:<22}{text}\r\n" for level, text in errors)
        try:
            world.storage.write_file(disk, SETUPACT_LOG, act.encode("utf-8"), append=True)
            if failed and errors:
                world.storage.write_file(disk, SETUPERR_LOG, err.encode("utf-8"), append=True)
        except PSError:
            pass  # a full guest volume loses the log lines, as on a real disk

    # ------------------------------------------------------------------------- persistence
    def to_state(self) -> dict[str, Any]:
        """JSON-able state; accounts carry only salts and hashes."""
        return {
            "setup": self.setup,
            "setup_error": self.setup_error,
            "running": self.running,
            "first_boot": self.first_boot,
            "heartbeat_at": self.heartbeat_at,
            "ready_at": self.ready_at,
            "saved_remaining": self.saved_remaining,
            "boot_count": self.boot_count,
            "restored": self.restored,
            "last_boot_up_time": self.last_boot_up_time,
            "computer_name": self.computer_name,
            "accounts": {k: dict(v) for k, v in self.accounts.items()},
            "time_zone": self.time_zone,
            "rdp_enabled": self.rdp_enabled,
            "ui_culture": self.ui_culture,
            "system_locale": self.system_locale,
            "firewall_groups": dict(self.firewall_groups),
            "psremoting_enabled": self.psremoting_enabled,
            "registered_owner": self.registered_owner,
            "interfaces": [dict(i) for i in self.interfaces],
            "dns_domain": self.dns_domain,
            "os_build": self.os_build,
            "os_caption": self.os_caption,
            "applied_passes": list(self.applied_passes),
            "boot_failure": self.boot_failure,
            "container_host": self.container_host.to_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Guest:
        guest = cls()
        for key, value in state.items():
            if key == "container_host":
                guest.container_host = ContainerHost.from_state(value)
            elif hasattr(guest, key):
                setattr(guest, key, value)
        return guest

