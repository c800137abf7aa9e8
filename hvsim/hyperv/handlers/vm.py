"""Hyper-V VM cmdlets: New/Get/Set/Remove-VM, lifecycle, processor, memory, firmware, adapters,
integration services, hard disk drives and checkpoints. Handlers translate; the model decides."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from hvsim.core import paths as P
from hvsim.guest.models.localized import component, component_by_id
from hvsim.hyperv import errors as HE
from hvsim.hyperv.handlers.objects import (
    firmware_obj,
    hdd_obj,
    integration_obj,
    memory_obj,
    processor_obj,
    resolve_vms,
    snapshot_obj,
    to_bool_flag,
    vm_adapter_obj,
    vm_obj,
    vm_objects,
)
from hvsim.hyperv.models.vm import VM, Snapshot, VMNetworkAdapter
from hvsim.powershell.cmdlet import BoundCall, CmdletContext, cmdlet
from hvsim.powershell.errors import PSError
from hvsim.powershell.shaping import as_list, name_of
from hvsim.powershell.values import PSObj

ALREADY = "The virtual machine is already in the specified state."


def _apply(ctx: CmdletContext, call: BoundCall, targets: Iterable[tuple[Any, ...]], act: Callable[..., Any],
           shape: Callable[..., Any], *, duration: str | None = None, on_host: bool = False,
           marks: bool = True) -> list[Any]:
    """The Hyper-V cmdlets that change each of their targets: ``act(*target)`` per (VM, device...) target, a
    PSError for one target non-terminating; then the host is marked changed (unless ``act`` does so itself,
    ``marks=False``) and ``duration`` accounted to the VM (to the host, ``on_host``). With -Passthru the target
    goes out as ``shape(world, *target)``, or ``shape(world, *target, made)`` when ``act`` returned what it
    made (an adapter, a drive's index, a checkpoint)."""
    w = ctx.world

    def one(target: tuple[Any, ...]) -> Any:
        made = act(*target)
        if marks:
            w.dirty = True
        if duration:
            ctx.spend("host" if on_host else target[0].name, duration)
        if not call.get("Passthru"):
            return None
        return shape(w, *target) if made is None else shape(w, *target, made)

    return ctx.each(targets, one)


def _per_vm(ctx: CmdletContext, call: BoundCall, act: Callable[[VM], Any], *, vms: list[VM] | None = None,
            shape: Callable[..., Any] = vm_obj, **how: Any) -> list[Any]:
    """``_apply`` over VMs: ``vms``, or those the call names (-VM, -Id, -Name/-VMName)."""
    return _apply(ctx, call, [(vm,) for vm in (resolve_vms(ctx, call) if vms is None else vms)], act, shape,
                  **how)


def _warn_unless(ctx: CmdletContext, done: bool) -> None:
    if not done:
        ctx.write_warning(ALREADY)


# --- VM ------------------------------------------------------------------------------------------


@cmdlet("Get-VM")
def get_vm(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    return [vm_obj(ctx.world, vm) for vm in resolve_vms(ctx, call, get_vm=True)]


@cmdlet("New-VM")
def new_vm(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    boot = call.get("BootDevice")
    vm = w.hv.new_vm(
        name=str(call.get("Name") or "New Virtual Machine"),
        memory_startup=call.get("MemoryStartupBytes"),
        generation=int(call.get("Generation") or 1),
        version=str(call.get("Version")) if call.get("Version") else None,
        path=call.get("Path"),
        switch_name=call.get("SwitchName"),
        boot_device=name_of(boot) if boot is not None else None,
        new_vhd_path=call.get("NewVHDPath"),
        new_vhd_size=call.get("NewVHDSizeBytes"),
        vhd_path=call.get("VHDPath"),
    )
    w.dirty = True
    if call.get("VHDPath"):
        w.clock.touch(str(call.get("VHDPath")))  # the VM's disk: its creation (and answer file) came first
    ctx.spend("host", "new_vm", lane=vm.name)
    return [vm_obj(w, vm)]


@cmdlet("Set-VM")
def set_vm(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world

    def one(vm: VM) -> None:
        if call.get("DynamicMemory") or call.get("StaticMemory") or call.has("MemoryStartupBytes") or \
                call.has("MemoryMinimumBytes") or call.has("MemoryMaximumBytes"):
            dyn = True if call.get("DynamicMemory") else (False if call.get("StaticMemory") else None)
            w.hv.set_memory(vm, dynamic=dyn, startup=call.get("MemoryStartupBytes"),
                            minimum=call.get("MemoryMinimumBytes"), maximum=call.get("MemoryMaximumBytes"))
        if call.has("ProcessorCount"):
            w.hv.set_processor(vm, count=int(call.get("ProcessorCount")))
        if call.has("Notes"):
            vm.notes = str(call.get("Notes") or "")
        if call.has("AutomaticCheckpointsEnabled"):
            vm.automatic_checkpoints_enabled = bool(call.get("AutomaticCheckpointsEnabled"))
        if call.has("CheckpointType"):
            vm.checkpoint_type = name_of(call.get("CheckpointType"))
        if call.has("AutomaticStartAction"):
            vm.automatic_start_action = name_of(call.get("AutomaticStartAction"))
        if call.has("AutomaticStopAction"):
            vm.automatic_stop_action = name_of(call.get("AutomaticStopAction"))
        if call.get("NewVMName"):
            vm.name = str(call.get("NewVMName"))

    return _per_vm(ctx, call, one, duration="set_vm")


@cmdlet("Remove-VM")
def remove_vm(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    return _per_vm(ctx, call, ctx.world.hv.remove_vm, duration="remove_vm", on_host=True)


# Modeled durations of the state changes Get-VM shows in progress (Starting, Stopping, Saving).
_TRANSITION_DURATION = {"start": "start_vm", "shutdown": "stop_vm", "save": "save_vm", "turnoff": "turn_off_vm",
                        "discard": "turn_off_vm", "unanswered": "stop_vm_unanswered"}


def _transition(ctx: CmdletContext, vm: VM, how: str | None, finish: Callable[[], None]) -> None:
    """A state change begun as ``how`` (None: the VM is already in that state, a warning): Get-VM shows the VM
    in its transitional state while the modeled duration passes, then ``finish`` ends it."""
    if how is None:
        ctx.write_warning(ALREADY)
        return
    ctx.world.dirty = True
    ctx.spend(vm.name, _TRANSITION_DURATION[how])
    finish()


@cmdlet("Start-VM")
def start_vm(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    hv = ctx.world.hv

    def one(vm: VM) -> None:
        if hv.automatic_checkpoint(vm) is not None:
            ctx.world.dirty = True
            ctx.spend(vm.name, "checkpoint_vm")
        _transition(ctx, vm, "start" if hv.begin_start(vm) else None, lambda: hv.finish_start(vm))

    return _per_vm(ctx, call, one, marks=False)


def _stop(ctx: CmdletContext, vm: VM, turn_off: bool = False, force: bool = False, save: bool = False) -> None:
    hv = ctx.world.hv
    how = hv.begin_stop(vm, turn_off=turn_off, force=force, save=save)
    _transition(ctx, vm, how, lambda: hv.finish_stop(vm, how or ""))


@cmdlet("Stop-VM")
def stop_vm(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    """Stop-VM of several VMs: every VM's stop begins first, then they go down together, so the call takes as
    long as the slowest one (each VM is accounted its own duration), not the sum (docs/facts.md "Checkpoints")."""
    w = ctx.world
    hv = w.hv
    begun: list[tuple[VM, str | None]] = []

    def begin(vm: VM) -> None:
        how = hv.begin_stop(vm, turn_off=bool(call.get("TurnOff")), force=bool(call.get("Force")),
                            save=bool(call.get("Save")))
        if how is None:
            ctx.write_warning(ALREADY)
        begun.append((vm, how))

    ctx.each(resolve_vms(ctx, call), begin)
    going = [(vm.name, _TRANSITION_DURATION[how]) for vm, how in begun if how is not None]
    if going:
        w.dirty = True
        wait = w.clock.account_parallel(going)
        if w.clock.wall_seconds(wait) > 0:
            with ctx.unlocked():
                w.clock.sleep(wait)

    def finish(item: tuple[VM, str | None]) -> Any:
        vm, how = item
        if how is not None:
            hv.finish_stop(vm, how)
        return vm_obj(w, vm) if call.get("Passthru") else None

    return ctx.each(begun, finish)


@cmdlet("Save-VM")
def save_vm(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    return _per_vm(ctx, call, lambda vm: _stop(ctx, vm, save=True), marks=False)


@cmdlet("Restart-VM")
def restart_vm(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    return _per_vm(ctx, call, ctx.world.hv.restart, duration="turn_off_vm")


@cmdlet("Suspend-VM")
def suspend_vm(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    return _per_vm(ctx, call, lambda vm: _warn_unless(ctx, ctx.world.hv.suspend(vm)))


@cmdlet("Resume-VM")
def resume_vm(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    return _per_vm(ctx, call, lambda vm: _warn_unless(ctx, ctx.world.hv.resume(vm)))


# --- processor / memory / firmware -----------------------------------------------------------------


@cmdlet("Get-VMProcessor")
def get_vm_processor(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    return [processor_obj(ctx.world, vm) for vm in resolve_vms(ctx, call, ("VMName",))]


def _vms_or_devices(ctx: CmdletContext, call: BoundCall, device_key: str) -> list[VM]:
    if call.has(device_key):
        return [vm for _, vm in vm_objects(ctx.world, call.get(device_key))]
    return resolve_vms(ctx, call, ("VMName",))


@cmdlet("Set-VMProcessor")
def set_vm_processor(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    def one(vm: VM) -> None:
        expose = call.get("ExposeVirtualizationExtensions") if call.has("ExposeVirtualizationExtensions") else None
        ctx.world.hv.set_processor(vm, count=call.get("Count"), expose=expose)

    return _per_vm(ctx, call, one, vms=_vms_or_devices(ctx, call, "VMProcessor"), shape=processor_obj,
                   duration="set_vm")


@cmdlet("Get-VMMemory")
def get_vm_memory(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    return [memory_obj(ctx.world, vm) for vm in resolve_vms(ctx, call, ("VMName",))]


@cmdlet("Set-VMMemory")
def set_vm_memory(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    def one(vm: VM) -> None:
        ctx.world.hv.set_memory(vm, dynamic=call.get("DynamicMemoryEnabled") if call.has("DynamicMemoryEnabled")
                                else None, startup=call.get("StartupBytes"), minimum=call.get("MinimumBytes"),
                                maximum=call.get("MaximumBytes"), buffer=call.get("Buffer"),
                                priority=call.get("Priority"))

    return _per_vm(ctx, call, one, vms=_vms_or_devices(ctx, call, "VMMemory"), shape=memory_obj, duration="set_vm")


def _gen2_only(vm: VM) -> None:
    """The VMFirmware cmdlets refuse generation 1 VMs (whose firmware is a BIOS: Get-/Set-VMBios)."""
    if vm.generation != 2:
        raise HE.firmware_generation1(vm.name)


@cmdlet("Get-VMFirmware")
def get_vm_firmware(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    def one(vm: VM) -> Any:
        _gen2_only(vm)
        return firmware_obj(ctx.world, vm)

    return ctx.each(resolve_vms(ctx, call, ("VMName",)), one)


@cmdlet("Set-VMFirmware")
def set_vm_firmware(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    def one(vm: VM) -> None:
        _gen2_only(vm)
        if vm.state != "Off" and (call.has("EnableSecureBoot") or call.has("SecureBootTemplate")):
            raise HE.invalid_state(vm.name, vm.id, "Firmware")
        if call.has("EnableSecureBoot"):
            vm.secure_boot = to_bool_flag(call.get("EnableSecureBoot"))
        if call.has("SecureBootTemplate"):
            vm.secure_boot_template = str(call.get("SecureBootTemplate"))
        if call.has("FirstBootDevice"):
            dev = call.get("FirstBootDevice")
            vm.first_boot_device = str(dev.get("Path") or dev.get("Name")) if isinstance(dev, PSObj) else str(dev)

    return _per_vm(ctx, call, one, vms=_vms_or_devices(ctx, call, "VMFirmware"), shape=firmware_obj)


# --- network adapters ------------------------------------------------------------------------------


def _adapters(ctx: CmdletContext, call: BoundCall) -> list[tuple[VM, VMNetworkAdapter]]:
    """(VM, adapter) pairs from -VMNetworkAdapter objects or -VMName/-VM (+ optional -Name)."""
    pairs: list[tuple[VM, VMNetworkAdapter]] = []
    if call.has("VMNetworkAdapter"):
        for obj, vm in vm_objects(ctx.world, call.get("VMNetworkAdapter")):
            ident = str(obj.get("Id") or "")
            for ad in vm.network_adapters:
                if ad.id.upper() in ident.upper() or (not ident and ad.name == obj.get("Name")):
                    pairs.append((vm, ad))
        return pairs
    # -Name is a string on some adapter cmdlets and a string[] on others (Connect-/Disconnect-): each name
    # is one pattern, so a list is never matched as its str() (which reads as a wildcard and matched nothing).
    names = [str(n) for n in as_list(call.get("Name"))] if call.has("Name") else None
    for vm in resolve_vms(ctx, call, ("VMName",)):
        if names is None:
            pairs.extend((vm, a) for a in vm.network_adapters)
            continue
        for n in names:
            matched = [a for a in vm.network_adapters if P.wildcard_match(n, a.name)]
            if not matched and not P.has_wildcard(n):
                ctx.write_error(HE.vm_adapter_not_found())
            pairs.extend((vm, a) for a in matched if (vm, a) not in pairs)
    return pairs


@cmdlet("Get-VMNetworkAdapter")
def get_vm_network_adapter(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    if call.get("ManagementOS"):
        out = []
        for sw in w.network.switches.values():
            vnic = w.network.vnic_for_switch(sw)
            if vnic is None:
                continue
            ad = VMNetworkAdapter(name=sw.name, id=sw.id, mac_address=vnic.mac_address, dynamic_mac=True,
                                  switch_name=sw.name, switch_id=sw.id)
            out.append(vm_adapter_obj(w, None, ad, management_os=True))
        return out
    if call.get("All"):
        return [vm_adapter_obj(w, vm, a) for vm in resolve_vms(ctx, call, ()) for a in vm.network_adapters]
    pairs = _adapters(ctx, call)
    if call.has("SwitchName"):
        pairs = [(vm, a) for vm, a in pairs if a.switch_name and P.wildcard_match(str(call.get("SwitchName")),
                                                                                  a.switch_name)]
    return [vm_adapter_obj(w, vm, a) for vm, a in pairs]


@cmdlet("Set-VMNetworkAdapter")
def set_vm_network_adapter(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    hv = ctx.world.hv

    def one(vm: VM, ad: VMNetworkAdapter) -> None:
        if call.has("StaticMacAddress"):
            hv.set_static_mac(vm, ad, str(call.get("StaticMacAddress")))
        if call.get("DynamicMacAddress"):
            if vm.state != "Off":
                raise HE.invalid_state(vm.name, vm.id, ad.name)
            ad.dynamic_mac = True
            ad.mac_address = "000000000000"
        if call.has("MacAddressSpoofing"):
            ad.mac_address_spoofing = to_bool_flag(call.get("MacAddressSpoofing"))

    return _apply(ctx, call, _adapters(ctx, call), one, vm_adapter_obj)


@cmdlet("Connect-VMNetworkAdapter")
def connect_vm_network_adapter(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    hv = ctx.world.hv

    def one(vm: VM, ad: VMNetworkAdapter) -> None:
        if call.has("SwitchName"):
            hv.connect_adapter(vm, ad, str(call.get("SwitchName")))
        elif call.has("VMSwitch"):
            sw = as_list(call.get("VMSwitch"))[0]
            hv.connect_adapter(vm, ad, str(sw.get("Name")))

    return _apply(ctx, call, _adapters(ctx, call), one, vm_adapter_obj)


@cmdlet("Disconnect-VMNetworkAdapter")
def disconnect_vm_network_adapter(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    def one(vm: VM, ad: VMNetworkAdapter) -> None:
        ad.switch_name = None
        ad.switch_id = None

    return _apply(ctx, call, _adapters(ctx, call), one, vm_adapter_obj)


@cmdlet("Add-VMNetworkAdapter")
def add_vm_network_adapter(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    def one(vm: VM) -> VMNetworkAdapter:
        if vm.state != "Off" and (call.get("IsLegacy") or vm.generation == 1):
            raise HE.invalid_state(vm.name, vm.id, "Network Adapter")
        if call.get("IsLegacy") and vm.generation == 2:
            raise PSError("Legacy network adapters are not supported for generation 2 virtual machines.",
                          "InvalidParameter", "InvalidArgument",
                          exception_type=HE.VE)  # unconfirmed text; no target, as Hyper-V's records
        ad = VMNetworkAdapter(name=str(call.get("Name") or ("Legacy Network Adapter" if call.get("IsLegacy")
                                                            else "Network Adapter")),
                              is_legacy=bool(call.get("IsLegacy")))
        if call.has("SwitchName"):
            ctx.world.hv.connect_adapter(vm, ad, str(call.get("SwitchName")))
        if call.has("StaticMacAddress"):
            ad.mac_address = str(call.get("StaticMacAddress")).replace("-", "").upper()
            ad.dynamic_mac = False
        vm.network_adapters.append(ad)
        return ad

    return _per_vm(ctx, call, one, vms=resolve_vms(ctx, call, ("VMName",)), shape=vm_adapter_obj)


@cmdlet("Remove-VMNetworkAdapter")
def remove_vm_network_adapter(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    for vm, ad in _adapters(ctx, call):
        if vm.state != "Off" and vm.generation == 1:
            ctx.write_error(HE.invalid_state(vm.name, vm.id, ad.name))
            continue
        vm.network_adapters.remove(ad)
        w.dirty = True
    return []


# --- integration services --------------------------------------------------------------------------


def _services(ctx: CmdletContext, call: BoundCall) -> list[tuple[VM, str]]:
    """(VM, state key) pairs a call names: -Name matches the display names in the host's language."""
    w = ctx.world
    culture = w.host.ui_culture
    if call.has("VMIntegrationService"):
        pairs = []
        for obj, vm in vm_objects(w, call.get("VMIntegrationService")):
            comp = component_by_id(str(obj.get("Id") or ""))
            if comp is not None and comp.key in vm.integration_services:
                pairs.append((vm, comp.key))
        return pairs
    names = [str(n) for n in as_list(call.get("Name"))] or None
    pairs = []
    for vm in resolve_vms(ctx, call, ("VMName",)):
        if names is None:
            pairs.extend((vm, s) for s in vm.integration_services)
            continue
        for n in names:
            matched = [s for s in vm.integration_services if P.wildcard_match(n, component(s).name(culture))]
            if not matched and not P.has_wildcard(n):
                ctx.write_error(HE.integration_service_not_found(culture, w.host.os_build))
            pairs.extend((vm, s) for s in matched)
    return pairs


@cmdlet("Get-VMIntegrationService")
def get_vm_integration_service(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    return [integration_obj(ctx.world, vm, s, vm.integration_services[s]) for vm, s in _services(ctx, call)]


def _set_service(ctx: CmdletContext, call: BoundCall, enabled: bool) -> Iterable[Any]:
    def one(vm: VM, s: str) -> None:
        vm.integration_services[s] = enabled

    return _apply(ctx, call, _services(ctx, call), one, lambda w, vm, s: integration_obj(w, vm, s, enabled))


@cmdlet("Enable-VMIntegrationService")
def enable_vm_integration_service(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    return _set_service(ctx, call, True)


@cmdlet("Disable-VMIntegrationService")
def disable_vm_integration_service(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    return _set_service(ctx, call, False)


# --- hard disk drives --------------------------------------------------------------------------------


def _drives(ctx: CmdletContext, call: BoundCall) -> list[tuple[VM, int, PSObj]]:
    """(VM, index, HardDiskDrive object) of each drive of the VMs -VMName/-VM names that -ControllerType,
    -ControllerNumber and -ControllerLocation (those given) match."""
    out = []
    for vm in resolve_vms(ctx, call, ("VMName",)):
        for i in range(len(vm.hard_drives)):
            obj = hdd_obj(ctx.world, vm, i)
            if call.has("ControllerType") and name_of(call.get("ControllerType")).upper() != \
                    obj.get("ControllerType").name.upper():
                continue
            if call.has("ControllerNumber") and int(call.get("ControllerNumber")) != obj.get("ControllerNumber"):
                continue
            if call.has("ControllerLocation") and int(call.get("ControllerLocation")) != \
                    obj.get("ControllerLocation"):
                continue
            out.append((vm, i, obj))
    return out


@cmdlet("Get-VMHardDiskDrive")
def get_vm_hard_disk_drive(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    return [obj for _, _, obj in _drives(ctx, call)]


@cmdlet("Add-VMHardDiskDrive")
def add_vm_hard_disk_drive(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    def one(vm: VM) -> int:
        if vm.generation == 1 and vm.state != "Off" and len(vm.hard_drives) < 2:
            raise HE.invalid_state(vm.name, vm.id, "Hard Drive")  # IDE is not hot-pluggable
        ctx.world.hv.add_hard_drive(vm, str(call.get("Path")))
        return len(vm.hard_drives) - 1

    return _per_vm(ctx, call, one, vms=resolve_vms(ctx, call, ("VMName",)), shape=hdd_obj)


@cmdlet("Remove-VMHardDiskDrive")
def remove_vm_hard_disk_drive(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    if call.has("VMHardDiskDrive"):
        targets = [(vm, str(obj.get("Path"))) for obj, vm in vm_objects(w, call.get("VMHardDiskDrive"))]
    else:
        targets = [(vm, vm.hard_drives[i]) for vm, i, _ in _drives(ctx, call)]
    for vm, path in targets:
        if vm.state != "Off" and vm.generation == 1:
            ctx.write_error(HE.invalid_state(vm.name, vm.id, "Hard Drive"))
            continue
        for i, p in enumerate(vm.hard_drives):
            if p.lower() == path.lower():
                del vm.hard_drives[i]
                w.dirty = True
                break
    return []


# --- checkpoints ------------------------------------------------------------------------------------------


@cmdlet("Checkpoint-VM")
def checkpoint_vm(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    def one(vm: VM) -> Snapshot:
        return ctx.world.hv.checkpoint(vm, call.get("SnapshotName"), warn=ctx.write_warning)

    return _per_vm(ctx, call, one, shape=snapshot_obj, duration="checkpoint_vm")


def _snapshots(ctx: CmdletContext, call: BoundCall, vm_keys: tuple[str, ...], name_key: str = "Name",
               required: bool = True) -> list[tuple[VM, Snapshot]]:
    w = ctx.world
    pairs: list[tuple[VM, Snapshot]] = []
    if call.has("VMSnapshot"):
        for obj, vm in vm_objects(w, call.get("VMSnapshot")):
            for s in vm.snapshots:
                if s.id == str(obj.get("Id")):
                    pairs.append((vm, s))
        return pairs
    # -Name is a string[] on Remove-VMSnapshot: each name is one pattern (not the list's str()).
    names: list[str | None] = [str(n) for n in as_list(call.get(name_key))] if call.has(name_key) else [None]
    for vm in resolve_vms(ctx, call, vm_keys):
        for name in names:
            found = w.hv.find_snapshots(vm, name)
            if call.has("Id"):
                found = [s for s in found if s.id == str(call.get("Id"))]
            pairs.extend((vm, s) for s in found if (vm, s) not in pairs)
    exact = [n for n in names if n is not None and not P.has_wildcard(n)]
    if not pairs and required and exact:
        ctx.write_error(HE.snapshot_not_matched())
    return pairs


@cmdlet("Get-VMSnapshot")
def get_vm_snapshot(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    return [snapshot_obj(ctx.world, vm, s) for vm, s in _snapshots(ctx, call, ("VMName",))]


@cmdlet("Restore-VMSnapshot")
def restore_vm_snapshot(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world

    def one(pair: tuple[VM, Snapshot]) -> Any:
        vm, snap = pair
        w.hv.restore(vm, snap)
        w.dirty = True
        ctx.spend(vm.name, "restore_checkpoint")
        return snapshot_obj(w, vm, snap) if call.get("Passthru") else None

    return ctx.each(_snapshots(ctx, call, ("VMName",)), one)


@cmdlet("Remove-VMSnapshot")
def remove_vm_snapshot(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    pairs = _snapshots(ctx, call, ("VMName",))
    if call.get("IncludeAllChildSnapshots"):
        extra = []
        for vm, snap in pairs:
            stack = [snap.id]
            while stack:
                sid = stack.pop()
                for s in vm.snapshots:
                    if s.parent_snapshot_id == sid and (vm, s) not in pairs and (vm, s) not in extra:
                        extra.append((vm, s))
                        stack.append(s.id)
        pairs += extra
    for vm, snap in pairs:
        if snap in vm.snapshots:
            w.hv.remove_snapshot(vm, snap)
            w.dirty = True
    return []


@cmdlet("Update-VMVersion")
def update_vm_version(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    return _per_vm(ctx, call, ctx.world.hv.update_version)
