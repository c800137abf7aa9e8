"""Virtual machines: configuration, lifecycle, checkpoints. Pure rules, no wire formats.

What Hyper-V refuses, this refuses with the same text (see hvsim/hyperv/errors.py): starting beyond host memory,
starting with a missing, mounted or broken disk, changing the processor while running, exposing
virtualization extensions where the host/VM version cannot. Duplicate VM names are allowed, as in
Hyper-V: VMs are identified by Id.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from hvsim.core import paths as P
from hvsim.guest.models.guest import Guest
from hvsim.hyperv import errors as HE
from hvsim.hyperv.models.host import version_tuple
from hvsim.networking import errors as NE
from hvsim.powershell.errors import PSError
from hvsim.storage import errors as SE
from hvsim.storage.models import VHD_EMPTY_SIZE

if TYPE_CHECKING:
    from hvsim.world import World

MB = 1024**2
GB = 1024**3
DEFAULT_MEMORY = 512 * MB  # New-VM default (docs/facts.md)
DEFAULT_MIN_MEMORY = 512 * MB
DEFAULT_MAX_MEMORY = 1024 * GB  # 1 TB: Hyper-V's default dynamic-memory maximum
DYNAMIC_MAC = "000000000000"
INTEGRATION_SERVICES = {
    # Guest Service Interface is off by default; the rest are on (Enable-VMIntegrationService docs).
    "Guest Service Interface": False,
    "Heartbeat": True,
    "Key-Value Pair Exchange": True,
    "Shutdown": True,
    "Time Synchronization": True,
    "VSS": True,
}
HOLDS_MEMORY = ("Running", "Paused", "Starting", "Stopping", "Saving", "Pausing", "Resuming", "Reset")
HOLDS_DISKS = (*HOLDS_MEMORY, "Saved")  # a saved VM keeps its disks open: its memory image refers to them
GEN2_REFUSED_BOOT = ("IDE", "Floppy", "LegacyNetworkAdapter")


class _SavedAsFields:
    """A record saved as its fields as they stand, and made again from them."""

    def to_state(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> Self:
        return cls(**s)


@dataclass
class VMNetworkAdapter(_SavedAsFields):
    """A VM's network adapter."""

    name: str = "Network Adapter"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    mac_address: str = DYNAMIC_MAC
    dynamic_mac: bool = True
    switch_name: str | None = None
    switch_id: str | None = None
    mac_address_spoofing: bool = False
    is_legacy: bool = False
    vlan_id: int | None = None


@dataclass
class Snapshot(_SavedAsFields):
    """A checkpoint: the configuration, disks and guest state at the time it was taken."""

    id: str
    name: str
    vm_id: str
    created: float
    snapshot_type: str  # Standard | Production
    state: str  # the VM's state when taken
    config: dict[str, Any]
    disks: list[str]  # the VM's disk paths at that time (now read-only parents)
    guest_state: dict[str, Any]
    parent_snapshot_id: str | None = None
    adapters: list[dict[str, Any]] | None = None  # the network adapters (MACs, connections) at that time
    memory_file: str | None = None  # the .vmrs memory image of a Standard checkpoint of a running VM


# Configuration fields a checkpoint captures and a restore puts back.
_CONFIG_FIELDS = ("memory_startup", "memory_minimum", "memory_maximum", "dynamic_memory", "processor_count",
                  "expose_virtualization_extensions", "notes", "secure_boot", "secure_boot_template")


@dataclass
class VM:
    """One virtual machine (the names below are the guest model's contract)."""

    name: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    generation: int = 1
    version: str = "12.0"
    path: str = ""
    config_path: str = ""  # the .vmcx file
    state: str = "Off"
    memory_startup: int = DEFAULT_MEMORY
    memory_minimum: int = DEFAULT_MIN_MEMORY
    memory_maximum: int = DEFAULT_MAX_MEMORY
    memory_buffer: int = 20
    memory_priority: int = 50
    dynamic_memory: bool = False
    memory_assigned: int = 0
    processor_count: int = 1
    expose_virtualization_extensions: bool = False
    network_adapters: list[VMNetworkAdapter] = field(default_factory=list)
    integration_services: dict[str, bool] = field(default_factory=lambda: dict(INTEGRATION_SERVICES))
    hard_drives: list[str] = field(default_factory=list)
    dvd_drives: list[str | None] = field(default_factory=list)
    notes: str = ""
    automatic_checkpoints_enabled: bool = False  # Windows Server default (client SKUs default to True)
    checkpoint_type: str = "Production"
    automatic_start_action: str = "StartIfRunning"
    automatic_stop_action: str = "Save"
    secure_boot: bool = True
    secure_boot_template: str = "MicrosoftWindows"
    first_boot_device: str | None = None
    boot_order: list[str] = field(default_factory=list)
    started_at: float | None = None
    start_from_saved: bool = False  # a Starting VM resumes its saved state (not a boot)
    created: float = 0.0
    snapshots: list[Snapshot] = field(default_factory=list)
    current_snapshot_id: str | None = None
    guest: Guest = field(default_factory=Guest)

    def config_snapshot(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _CONFIG_FIELDS}

    def to_state(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            if k == "guest":
                out[k] = v.to_state()
            elif k == "network_adapters":
                out[k] = [a.to_state() for a in v]
            elif k == "snapshots":
                out[k] = [s.to_state() for s in v]
            else:
                out[k] = copy.deepcopy(v)
        return out

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> VM:
        data = dict(s)
        guest = Guest.from_state(data.pop("guest", {}) or {})
        adapters = [VMNetworkAdapter.from_state(a) for a in data.pop("network_adapters", [])]
        snaps = [Snapshot.from_state(x) for x in data.pop("snapshots", [])]
        known = set(cls.__dataclass_fields__)
        vm = cls(**{k: v for k, v in data.items() if k in known})
        vm.guest, vm.network_adapters, vm.snapshots = guest, adapters, snaps
        return vm


class Hypervisor:
    """VM operations on the World (New-VM, Start-VM, ...)."""

    def __init__(self, world: World) -> None:
        self.world = world

    # --- lookup --------------------------------------------------------------------------------

    def find_vms(self, name: str) -> list[VM]:
        """Get-VM -Name semantics: case-insensitive, wildcards; creation order."""
        vms = sorted(self.world.vms.values(), key=lambda v: (v.created, v.name.lower()))
        if P.has_wildcard(name):
            return [v for v in vms if P.wildcard_match(name, v.name)]
        return [v for v in vms if v.name.lower() == name.lower()]

    def require(self, name: str, error_id: str = "InvalidParameter", category: str = "InvalidArgument") -> list[VM]:
        vms = self.find_vms(name)
        if not vms:
            raise HE.vm_not_found(name, error_id, category)
        return vms

    # --- New-VM / Remove-VM --------------------------------------------------------------------

    def new_vm(self, name: str = "New Virtual Machine", memory_startup: int | None = None, generation: int = 1,
               version: str | None = None, path: str | None = None, switch_name: str | None = None,
               boot_device: str | None = None, new_vhd_path: str | None = None, new_vhd_size: int | None = None,
               vhd_path: str | None = None) -> VM:
        """New-VM in its three parameter sets (NoVHD, NewVHD, ExistingVHD)."""
        world = self.world
        host = world.host
        if generation not in (1, 2):
            raise PSError("Cannot validate argument on parameter 'Generation'. The " f"{generation} argument is "
                          "greater than the maximum allowed range of 2. Supply an argument that is less than or "
                          "equal to 2 and then try the command again.", "ParameterArgumentValidationError",
                          "InvalidData",
                          exception_type="System.Management.Automation.ParameterBindingValidationException")
        if generation == 2 and boot_device and boot_device in GEN2_REFUSED_BOOT:
            raise HE.gen2_boot_device(boot_device)
        version = str(version) if version else host.default_vm_version
        if version not in host.supported_vm_versions:
            raise HE.unsupported_version(version)
        switch_id = None
        if switch_name:
            switches = world.network.find_switches(switch_name)
            if not switches:
                raise NE.switch_argument_not_found(switch_name)
            switch_id = switches[0].id
        if vhd_path is not None:
            vhd_full = P.normalize(vhd_path)
            if world.storage.get_vhd(vhd_full) is None:
                # Hyper-V fails attaching the disk to the new VM, not with Get-VHD's "not an existing
                # virtual hard disk file" (PS-AutoLab-Env#159).
                raise HE.device_add_failed(name)
        vm = VM(name=name, generation=generation, version=version, created=world.clock.now())
        vm.memory_startup = int(memory_startup) if memory_startup else DEFAULT_MEMORY
        if path:
            vm.path = P.normalize(path) + "\\" + name
        else:
            vm.path = host.virtual_machine_path
        vm.config_path = f"{vm.path}\\Virtual Machines\\{vm.id.upper()}.vmcx"
        if generation == 2:
            vm.boot_order = ["File", "Drive", "Network"]
        else:
            vm.boot_order = ["CD", "IDE", "LegacyNetworkAdapter", "Floppy"]
            vm.dvd_drives = [None]
        if boot_device:
            vm.first_boot_device = boot_device
        if new_vhd_path is not None:
            vhd_dir = (vm.path + "\\Virtual Hard Disks") if path else host.virtual_hard_disk_path
            full = P.normalize(new_vhd_path, cwd=vhd_dir)
            world.storage.mkdirs(P.parent(full))
            world.storage.new_vhd(full, "Dynamic", int(new_vhd_size or 127 * GB))
            vm.hard_drives.append(full)
        elif vhd_path is not None:
            vm.hard_drives.append(P.normalize(vhd_path))
        vm.network_adapters.append(VMNetworkAdapter(switch_name=switches[0].name if switch_name else None,
                                                    switch_id=switch_id))
        # The configuration files exist on C: like a real host's (.vmcx/.vmrs).
        world.storage.mkdirs(P.parent(vm.config_path))
        cfg = world.storage.resolve(vm.config_path)
        world.storage.write(cfg, b"vmcx-sim " + vm.id.encode(), error_id="Unspecified")
        world.vms[vm.id] = vm
        return vm

    def remove_vm(self, vm: VM) -> None:
        """Remove-VM: a running VM is turned off first; its virtual hard disks stay on disk.

        Checkpoints are deleted and merged into the virtual hard disk files (Remove-VM docs)."""
        if vm.state != "Off":
            self._go_off(vm, "turnoff")
        self._merge_checkpoints(vm)
        st = self.world.storage
        try:
            loc = st.resolve(vm.config_path)
            if st.stat(loc) is not None:
                st.remove(loc)
        except PSError:
            pass
        del self.world.vms[vm.id]

    def _merge_checkpoints(self, vm: VM) -> None:
        """Fold each disk's .avhdx chain into the first real disk below it (newest data wins)."""
        st = self.world.storage
        for i, path in enumerate(list(vm.hard_drives)):
            vhd = st.get_vhd(path)
            if vhd is None or not path.lower().endswith(".avhdx"):
                continue
            chain = st.chain(vhd)
            base_idx = next((j for j, v in enumerate(chain) if not v.path.lower().endswith(".avhdx")), None)
            if base_idx is None:
                continue
            target = chain[base_idx]
            for layer in reversed(chain[:base_idx]):  # oldest checkpoint first, current state last
                st.merge_layer(layer, target)
            st._sync_vhd_size(target)
            vm.hard_drives[i] = target.path
        for snap in vm.snapshots:
            self._drop_memory_file(snap)
        vm.snapshots = []
        vm.current_snapshot_id = None

    # --- settings ----------------------------------------------------------------------------------

    def set_processor(self, vm: VM, count: int | None = None, expose: bool | None = None) -> None:
        if count is not None and int(count) != vm.processor_count:
            if vm.state != "Off":
                raise HE.invalid_state(vm.name, vm.id, "Processor")
            if int(count) > self.world.host.logical_processor_count or int(count) < 1:
                raise PSError(
                    f"Failed to modify device 'Processor'.\nThe number of virtual processors ({count}) is greater "
                    "than the number of logical processors in the system.\n"
                    f"'{vm.name}' failed to modify device 'Processor'. (Virtual machine ID {vm.id.upper()})",
                    "InvalidParameter", "InvalidArgument", target=vm.name, exception_type=HE.VE)  # unconfirmed
        if expose is not None and bool(expose) != vm.expose_virtualization_extensions:
            if vm.state != "Off":
                raise HE.invalid_state(vm.name, vm.id, "Processor")
            if expose:
                ok, why = self.world.host.nested_supported(vm.version)
                if not ok:
                    raise HE.nested_not_supported(vm.name, vm.id, why)
        if count is not None:
            vm.processor_count = int(count)
        if expose is not None:
            vm.expose_virtualization_extensions = bool(expose)

    def set_memory(self, vm: VM, dynamic: bool | None = None, startup: int | None = None,
                   minimum: int | None = None, maximum: int | None = None, buffer: int | None = None,
                   priority: int | None = None) -> None:
        running = vm.state != "Off"
        if dynamic is not None and bool(dynamic) != vm.dynamic_memory and running:
            raise HE.memory_change_running(vm.name, vm.id)
        # Runtime resize exists for static memory, but not with nested virtualization or dynamic memory.
        if startup is not None and int(startup) != vm.memory_startup and running and (
                vm.expose_virtualization_extensions or vm.dynamic_memory):
            raise HE.memory_change_running(vm.name, vm.id)
        if startup is not None and int(startup) % (2 * MB) != 0:
            raise PSError(f"Failed to modify device 'Memory'.\nInvalid startup memory amount assigned for "
                          f"'{vm.name}'. The amount of memory must be a multiple of 2 MB.",
                          "InvalidParameter", "InvalidArgument", target=vm.name, exception_type=HE.VE)  # unconfirmed
        if dynamic is not None:
            vm.dynamic_memory = bool(dynamic)
        if startup is not None:
            vm.memory_startup = int(startup)
            if running:
                vm.memory_assigned = vm.memory_startup
        if minimum is not None:
            vm.memory_minimum = int(minimum)
        if maximum is not None:
            vm.memory_maximum = int(maximum)
        if buffer is not None:
            vm.memory_buffer = int(buffer)
        if priority is not None:
            vm.memory_priority = int(priority)

    # --- lifecycle ---------------------------------------------------------------------------------

    def memory_in_use(self, exclude: VM | None = None) -> int:
        return sum(v.memory_assigned for v in self.world.vms.values()
                   if v is not exclude and v.state in HOLDS_MEMORY)

    def memory_available(self) -> int:
        host = self.world.host
        return host.memory_capacity - host.host_reserved_memory - self.memory_in_use()

    def _check_disks(self, vm: VM) -> None:
        st = self.world.storage
        for path in vm.hard_drives:
            vhd = st.get_vhd(path)
            if vhd is None:
                raise HE.start_attachment_failed(vm.name, vm.id, path, SE.NOT_FOUND, SE.NOT_FOUND_CODE)
            k = P.key(vhd.path)
            others = [n for n in st.open_by_vms(k) if n != vm.name]
            if st.is_mounted(path) or others:
                raise HE.start_attachment_failed(vm.name, vm.id, vhd.path, SE.IN_USE, SE.IN_USE_CODE)
            try:
                st.check_chain(vhd)
            except PSError as exc:
                raise HE.start_attachment_failed(vm.name, vm.id, vhd.path, exc.message.split(" (0x")[0],
                                                "0xC03A000E") from None

    # Start and graceful stop take time on a real host; the handlers call begin_*, let the modeled
    # duration pass (the world lock released), then finish_*. Meanwhile Get-VM shows the
    # transitional state (Starting / Stopping / Saving), as Hyper-V does.
    TRANSITIONAL = ("Starting", "Stopping", "Saving", "Pausing", "Resuming")

    def start(self, vm: VM) -> bool:
        """Start-VM in one step; False when already running (the caller warns)."""
        if not self.begin_start(vm):
            return False
        self.finish_start(vm)
        return True

    def begin_start(self, vm: VM) -> bool:
        """Checks, memory reservation and MAC assignment; the VM is Starting afterwards."""
        if vm.state == "Running":
            return False
        if vm.state in self.TRANSITIONAL:
            raise HE.invalid_state(vm.name, vm.id)
        if vm.state == "Paused":
            vm.state = "Resuming"
            return True
        self._check_disks(vm)
        if vm.memory_startup > self.memory_available():
            raise HE.start_out_of_memory(vm.name, vm.id, vm.memory_startup // MB)
        for ad in vm.network_adapters:
            if ad.dynamic_mac and ad.mac_address == DYNAMIC_MAC:
                ad.mac_address = self.world.allocate_mac()
        vm.start_from_saved = vm.state == "Saved"
        vm.state = "Starting"
        vm.memory_assigned = vm.memory_startup
        return True

    def finish_start(self, vm: VM) -> None:
        """The worker process runs: Running, and a fresh boot unless it resumed a saved state."""
        if vm.state == "Resuming":
            vm.state = "Running"
            return
        if vm.state != "Starting":
            return  # turned off (or removed) while starting
        vm.state = "Running"
        vm.started_at = self.world.clock.now()
        if not vm.start_from_saved:
            vm.guest.on_start(self.world, vm)
        vm.start_from_saved = False

    def _go_off(self, vm: VM, how: str) -> None:
        vm.guest.on_stop(self.world, vm, how)
        vm.state = "Saved" if how == "save" else "Off"
        vm.memory_assigned = 0
        vm.started_at = None

    def stop(self, vm: VM, turn_off: bool = False, force: bool = False, save: bool = False) -> bool:
        """Stop-VM in one step; False when already in the requested state (the caller warns)."""
        how = self.begin_stop(vm, turn_off=turn_off, force=force, save=save)
        if how is None:
            return False
        self.finish_stop(vm, how)
        return True

    def begin_stop(self, vm: VM, turn_off: bool = False, force: bool = False, save: bool = False) -> str | None:
        """Decide how the VM goes down ("shutdown", "turnoff", "save", "discard"); None if it already is;
        "unanswered" when the guest takes the shutdown request and never acts on it (the ``guest_ignores_shutdown``
        fault): the caller waits ``stop_vm_unanswered`` and fails with "Failed to stop.".

        A graceful shutdown (with -Force too) needs the guest's Shutdown integration service to answer."""
        if save:
            if vm.state == "Saved":
                return None
            if vm.state not in ("Running", "Paused"):
                raise HE.invalid_state(vm.name, vm.id)
            vm.state = "Saving"
            return "save"
        if vm.state == "Off":
            return None
        if vm.state == "Saved":
            return "discard"  # Stop-VM on a saved VM discards the saved state
        if turn_off or vm.state in ("Paused", "Starting", "Stopping", "Resuming"):
            return "turnoff"
        if vm.state in self.TRANSITIONAL:
            raise HE.invalid_state(vm.name, vm.id)
        if not vm.integration_services.get("Shutdown", True) or not vm.guest.os_running(self.world, vm):
            if force:
                return "turnoff"
            raise HE.shutdown_unavailable(vm.name)
        if self.world.faults.check("guest_ignores_shutdown", vm=vm.name) is not None:
            # The guest takes the request and never shuts down (a hung guest, an app blocking shutdown): Stop-VM
            # waits, then fails, and the VM keeps running (docs/facts.md "Checkpoints", stop and start).
            return "unanswered"
        vm.state = "Stopping"
        return "shutdown"

    def finish_stop(self, vm: VM, how: str) -> None:
        if how == "unanswered":
            raise HE.stop_failed()
        if how == "discard":
            vm.state = "Off"
            vm.memory_assigned = 0
            vm.started_at = None
            return
        if vm.state in ("Off", "Saved"):
            return  # already down (turned off meanwhile)
        self._go_off(vm, how)

    def restart(self, vm: VM) -> None:
        if vm.state != "Running":
            raise HE.invalid_state(vm.name, vm.id)
        vm.started_at = self.world.clock.now()
        vm.guest.on_restart(self.world, vm)

    def suspend(self, vm: VM) -> bool:
        return self._pause_state(vm, "Running", "Paused")

    def resume(self, vm: VM) -> bool:
        return self._pause_state(vm, "Paused", "Running")

    def _pause_state(self, vm: VM, source: str, target: str) -> bool:
        """A running VM pauses and a paused one resumes at once: False when it is in ``target`` already, refused
        from any state but ``source``."""
        if vm.state == target:
            return False
        if vm.state != source:
            raise HE.invalid_state(vm.name, vm.id)
        vm.state = target
        return True

    # --- devices -----------------------------------------------------------------------------------

    def connect_adapter(self, vm: VM, adapter: VMNetworkAdapter, switch_name: str) -> None:
        switches = self.world.network.find_switches(switch_name)
        if not switches:
            raise NE.switch_argument_not_found(switch_name)
        adapter.switch_name = switches[0].name
        adapter.switch_id = switches[0].id

    def set_static_mac(self, vm: VM, adapter: VMNetworkAdapter, mac: str) -> None:
        mac = mac.replace("-", "").replace(":", "").upper()
        if vm.state != "Off":
            raise HE.invalid_state(vm.name, vm.id, adapter.name)
        if len(mac) != 12 or any(c not in "0123456789ABCDEF" for c in mac):
            raise PSError(f"Cannot validate argument on parameter 'StaticMacAddress'. '{mac}' is not a valid MAC "
                          "address.", "ParameterArgumentValidationError", "InvalidData",
                          exception_type="System.Management.Automation.ParameterBindingValidationException")
        adapter.mac_address = mac
        adapter.dynamic_mac = False

    def add_hard_drive(self, vm: VM, path: str) -> None:
        full = P.normalize(path, cwd=self.world.host.virtual_hard_disk_path)
        if self.world.storage.get_vhd(full) is None:
            raise SE.not_a_vhd(full)
        vm.hard_drives.append(full)

    # --- checkpoints -------------------------------------------------------------------------------

    def checkpoint(self, vm: VM, name: str | None = None, warn: Callable[[str], None] | None = None) -> Snapshot:
        """Checkpoint-VM: the disks become read-only parents of new .avhdx children (docs/facts.md "Checkpoints").

        Production (CheckpointType Production/ProductionOnly) of a running VM goes through VSS in the guest: it
        needs the guest OS up and the "Backup (volume shadow copy)" integration service (VSS) offered, and keeps
        no memory. Without them Production falls back to Standard with a warning (``warn``) and ProductionOnly
        fails. A Standard checkpoint of a VM that holds memory (Running, Paused, Saved) also writes its memory
        image (.vmrs, the assigned memory) to the VM's Snapshots folder; a volume without room for the new files
        fails the checkpoint before anything changes. Nested virtualization changes none of this on Windows
        Server 2016 and later (VM configuration version 8.0, which nesting needs, made checkpoints and save work)."""
        if vm.checkpoint_type == "Disabled":
            raise HE.checkpoint_disabled(vm.name, vm.id)
        if vm.state in self.TRANSITIONAL:
            raise HE.invalid_state(vm.name, vm.id)
        world = self.world
        guest = vm.guest
        snap_type = "Standard"
        guest_state: dict[str, Any] | None = None
        if vm.checkpoint_type in ("Production", "ProductionOnly"):
            if vm.state == "Off":
                snap_type = "Production"
            elif vm.state == "Running" and vm.integration_services.get("VSS", True) and guest.os_running(world, vm):
                snap_type = "Production"
                guest_state = guest.production_image(world).to_state()
            elif vm.checkpoint_type == "ProductionOnly":
                raise HE.production_checkpoint_failed(vm.name, vm.id)
            elif warn is not None:
                warn(HE.production_fallback_warning(vm.name))
        memory = 0
        if snap_type == "Standard" and vm.state in ("Running", "Paused", "Saved"):
            memory = vm.memory_assigned or vm.memory_startup
        st = world.storage
        if st.c_free < memory + len(vm.hard_drives) * VHD_EMPTY_SIZE:
            raise HE.checkpoint_no_space(vm.name, vm.id)
        if guest_state is None:
            guest_state = guest.to_state()
            if memory and guest.running:
                # The memory image goes on from where it was when restored (as a resumed saved state).
                now = world.clock.now()
                guest_state["saved_remaining"] = {"heartbeat": max(0.0, (guest.heartbeat_at or now) - now),
                                                  "ready": max(0.0, (guest.ready_at or now) - now)}
        now = world.clock.now()
        stamp = world.clock_text(now)
        snap = Snapshot(str(uuid.uuid4()), name or f"{vm.name} - ({stamp})", vm.id, now, snap_type, vm.state,
                        vm.config_snapshot(), list(vm.hard_drives), guest_state, vm.current_snapshot_id,
                        adapters=[a.to_state() for a in vm.network_adapters])
        if memory:
            snap.memory_file = f"{vm.path}\\Snapshots\\{snap.id.upper()}.vmrs"
            st.put_host_placeholder(snap.memory_file, memory)
        vm.hard_drives = [self._new_avhdx(p) for p in vm.hard_drives]
        vm.snapshots.append(snap)
        vm.current_snapshot_id = snap.id
        return snap

    def automatic_checkpoint(self, vm: VM) -> Snapshot | None:
        """Start-VM with AutomaticCheckpointsEnabled (the client SKUs' default) first checkpoints a VM that is
        off: "Automatic Checkpoint - <VM> - (<time>)" (docs/facts.md "Checkpoints"; the name is unconfirmed)."""
        if not vm.automatic_checkpoints_enabled or vm.state != "Off" or vm.checkpoint_type == "Disabled":
            return None
        stamp = self.world.clock_text(self.world.clock.now())
        return self.checkpoint(vm, f"Automatic Checkpoint - {vm.name} - ({stamp})")

    def _drop_memory_file(self, snap: Snapshot) -> None:
        if snap.memory_file:
            self.world.storage.files.pop(P.key(snap.memory_file), None)

    def _new_avhdx(self, parent: str) -> str:
        # Hyper-V names a checkpoint's child <disk>_<GUID>.avhdx next to the parent.
        base = parent.rsplit(".", 1)[0]
        child = f"{base}_{str(uuid.uuid4()).upper()}.avhdx"
        self.world.storage.new_vhd(child, "Differencing", parent_path=parent, checkpoint=True)
        return child

    def find_snapshots(self, vm: VM, name: str | None = None) -> list[Snapshot]:
        if name is None:
            return list(vm.snapshots)
        return [s for s in vm.snapshots if P.wildcard_match(name, s.name)]

    def restore(self, vm: VM, snap: Snapshot) -> None:
        """Restore-VMSnapshot: back to the checkpoint's configuration, network adapters (MACs included) and disks
        (new .avhdx children), and the guest as the checkpoint kept it.

        A Production checkpoint (and any taken while the VM was off) restores to Off, and the next start boots
        the guest; a Standard checkpoint with memory restores to Saved, and the next start resumes it. A VM in a
        transitional state (Starting, Stopping, Saving...) refuses."""
        if vm.state in self.TRANSITIONAL:
            raise HE.invalid_state(vm.name, vm.id)
        if vm.state in HOLDS_MEMORY:
            self._go_off(vm, "turnoff")
        st = self.world.storage
        old = list(vm.hard_drives)
        for k, v in snap.config.items():
            setattr(vm, k, v)
        if snap.adapters is not None:
            switches = self.world.network.switches
            vm.network_adapters = [VMNetworkAdapter.from_state(dict(a)) for a in snap.adapters]
            for ad in vm.network_adapters:
                if ad.switch_id is not None and ad.switch_id not in switches:
                    ad.switch_id = ad.switch_name = None  # the switch it was connected to is gone
        vm.hard_drives = [self._new_avhdx(p) for p in snap.disks]
        referenced = {P.key(p) for s in vm.snapshots for p in s.disks}
        for p in old:
            k = P.key(p)
            if p.lower().endswith(".avhdx") and k not in referenced and not st.children_of(k):
                st.files.pop(k, None)
                st.vhds.pop(k, None)
        vm.guest = Guest.from_state(snap.guest_state)
        vm.guest.restored = snap.memory_file is None
        vm.current_snapshot_id = snap.id
        vm.state = "Saved" if snap.memory_file else "Off"
        vm.memory_assigned = 0
        vm.started_at = None

    def remove_snapshot(self, vm: VM, snap: Snapshot) -> None:
        """Remove-VMSnapshot: the checkpoint goes (its memory image too); its disk data merges into the child when
        it can."""
        vm.snapshots.remove(snap)
        self._drop_memory_file(snap)
        for s in vm.snapshots:
            if s.parent_snapshot_id == snap.id:
                s.parent_snapshot_id = snap.parent_snapshot_id
        if vm.current_snapshot_id == snap.id:
            vm.current_snapshot_id = snap.parent_snapshot_id
        st = self.world.storage
        referenced = {P.key(p) for s in vm.snapshots for p in s.disks}
        for i, cur in enumerate(list(vm.hard_drives)):
            child = st.get_vhd(cur)
            if child is None or not child.parent_path or not cur.lower().endswith(".avhdx"):
                continue
            pk = P.key(child.parent_path)
            parent = st.vhds.get(pk)
            if parent is None or pk in referenced or len(st.children_of(pk)) != 1:
                continue
            # Merge the child's overlay into its parent, then the VM uses the parent again.
            st.merge_layer(child, parent)
            st._sync_vhd_size(parent)
            vm.hard_drives[i] = parent.path

    # --- version -------------------------------------------------------------------------------------

    def update_version(self, vm: VM) -> None:
        if vm.state != "Off":
            raise HE.invalid_state(vm.name, vm.id)
        newest = max(self.world.host.supported_vm_versions, key=version_tuple)
        vm.version = self.world.host.default_vm_version if version_tuple(
            self.world.host.default_vm_version) >= version_tuple(vm.version) else newest
