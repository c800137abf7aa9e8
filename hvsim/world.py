"""The whole simulated host and its lock: host facts, storage, networking and VMs.

Public surface the other parts rely on:
- ``World(state_dir: Path | None, clock: Clock, faults: FaultPlan, counters: Counters, host_config=None)``
- ``world.lock`` (threading.RLock; the runtime holds it while a cmdlet handler runs)
- ``world.clock``, ``world.faults``, ``world.counters``
- ``world.save()`` atomic write of the persistent state to state_dir/state.json (no-op without state_dir)
- ``World.open(state_dir, clock, faults, counters)`` loads state.json if present, else a fresh host
- ``world.reset()`` back to a fresh simulated host (base disks present, nothing else)
- ``world.dirty`` set by mutating handlers; the runtime saves after a pipeline when it is set
- ``world.host`` (HostConfig), ``world.storage`` (Storage), ``world.network`` (Network),
  ``world.vms`` (dict id -> VM), ``world.hv`` (Hypervisor: VM operations),
  ``world.find_vms(name)`` / ``world.find_vm(name)``
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from hvsim.core import paths as P
from hvsim.core.clock import Clock
from hvsim.core.counters import Counters
from hvsim.core.faults import FaultPlan
from hvsim.hyperv.models.host import HostConfig
from hvsim.hyperv.models.vm import HOLDS_DISKS, VM, Hypervisor
from hvsim.networking.models import Network
from hvsim.storage.models import Storage

STATE_FILE = "state.json"
STATE_VERSION = 1


class World:
    """The simulated host."""

    def __init__(self, state_dir: Path | None, clock: Clock, faults: FaultPlan, counters: Counters,
                 host_config: dict[str, Any] | None = None) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.clock = clock
        self.faults = faults
        self.counters = counters
        self.lock = threading.RLock()
        self.dirty = False
        # Win32_ComputerSystem.OEMStringArray: where a simulator says, to a client that reached it over any
        # transport (SSH, a local process), what it is and where its mirror is. Set by the server; not saved.
        self.oem_strings: list[str] = []
        self._host_overrides = dict(host_config or {})
        self.host = HostConfig.from_overrides(self._host_overrides)
        self.hv = Hypervisor(self)
        self._fresh()

    # --- construction --------------------------------------------------------------------------

    def _fresh(self) -> None:
        """A freshly installed host: base disks on C:, one physical NIC, no VMs or switches."""
        self.host = HostConfig.from_overrides(self._host_overrides)
        self.vms: dict[str, VM] = {}
        self.storage = Storage(self.host, self.clock.now)
        self.network = Network(self.host)
        self.next_mac = 0
        self.boot_time = self.clock.now() - 3 * 86400  # the host has been up for three days
        self._wire()
        self.storage.seed()
        self.network.seed()

    def _wire(self) -> None:
        self.storage.open_by_vms = self._vms_holding

    def _vms_holding(self, vhd_key: str) -> list[str]:
        return [v.name for v in self.vms.values()
                if v.state in HOLDS_DISKS and any(P.key(p) == vhd_key for p in v.hard_drives)]

    @classmethod
    def open(cls, state_dir: Path | None, clock: Clock, faults: FaultPlan, counters: Counters,
             host_config: dict[str, Any] | None = None) -> World:
        """Load state_dir/state.json when present (a restarted simulator keeps its host)."""
        world = cls(state_dir, clock, faults, counters, host_config)
        if world.state_dir is not None:
            path = world.state_dir / STATE_FILE
            if path.exists():
                world.load_state(json.loads(path.read_text(encoding="utf-8")))
        return world

    def reset(self, host_config: dict[str, Any] | None = None) -> None:
        """Back to a fresh host (base disks present, nothing else); ``host_config`` replaces the host
        settings it was made with (``labctl sim serve --host-setting``)."""
        with self.lock:
            if host_config is not None:
                HostConfig.from_overrides(host_config)  # reject a bad setting before anything changes
                self._host_overrides = dict(host_config)
            self._fresh()
            self.dirty = True

    # --- the guest model's contract ----------------------------------------------------------------

    def find_vms(self, name: str) -> list[VM]:
        """VMs matching ``name`` (case-insensitive, wildcards * ? as Get-VM)."""
        return self.hv.find_vms(name)

    def find_vm(self, name: str) -> VM | None:
        """The single VM of that name, or None (none or several)."""
        found = self.hv.find_vms(name)
        return found[0] if len(found) == 1 else None

    def allocate_mac(self) -> str:
        """Next dynamic MAC from the host's 00155D pool (upper-case hex, no separators)."""
        value = self.host.mac_pool_start + self.next_mac
        self.next_mac += 1
        return f"{self.host.mac_prefix}{value & 0xFFFFFF:06X}"

    def clock_text(self, t: float) -> str:
        """Checkpoint-VM's default name stamp: M/d/yyyy - h:mm:ss tt (en-US)."""
        d = _dt.datetime.fromtimestamp(t)
        hour = d.hour % 12 or 12
        return f"{d.month}/{d.day}/{d.year} - {hour}:{d.minute:02d}:{d.second:02d} {'AM' if d.hour < 12 else 'PM'}"

    # --- persistence ---------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "host": self.host.to_state(),
            "host_overrides": self._host_overrides,
            "storage": self.storage.to_state(),
            "network": self.network.to_state(),
            "vms": [v.to_state() for v in self.vms.values()],
            "next_mac": self.next_mac,
            "boot_time": self.boot_time,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported simulator state version {state.get('version')!r}")
        self._host_overrides = dict(state.get("host_overrides", {}))
        self.host = HostConfig.from_state(state["host"])
        self.storage = Storage(self.host, self.clock.now)
        self.storage.load_state(state["storage"])
        self.network = Network(self.host)
        self.network.load_state(state["network"])
        self.vms = {}
        for s in state["vms"]:
            vm = VM.from_state(s)
            self.vms[vm.id] = vm
        self.next_mac = state["next_mac"]
        self.boot_time = state["boot_time"]
        self._wire()
        self._complete_transitions()

    def _complete_transitions(self) -> None:
        """A state saved mid-transition (another pipeline saved while Start-VM waited) completes:
        a restarted simulator is the same host still running, not a host that lost power."""
        for vm in self.vms.values():
            if vm.state in ("Starting", "Resuming"):
                self.hv.finish_start(vm)
            elif vm.state == "Stopping":
                self.hv.finish_stop(vm, "shutdown")
            elif vm.state == "Saving":
                self.hv.finish_stop(vm, "save")

    def persist_now(self) -> None:
        """Save now if anything changed (the runtime otherwise saves once a pipeline is done)."""
        with self.lock:
            if self.dirty:
                self.save()

    def save(self) -> None:
        """Atomically write state.json: temp file in the same directory, fsync, os.replace."""
        with self.lock:
            if self.state_dir is None:
                self.dirty = False
                return
            self.state_dir.mkdir(parents=True, exist_ok=True)
            data = json.dumps(self.to_state(), separators=(",", ":"))
            fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=self.state_dir)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.state_dir / STATE_FILE)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
            try:  # make the rename itself durable
                dfd = os.open(self.state_dir, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
            except OSError:
                pass
            self.dirty = False
