"""A simulated host with lab VMs for the guest-model tests, and a direct handler harness."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from unattend_samples import PASSWORD, VALID

from hvsim.core.clock import Clock
from hvsim.core.counters import Counters
from hvsim.core.faults import FaultPlan
from hvsim.guest.models.guest import ANSWER_FILE
from hvsim.powershell.catalog import CmdletSpec
from hvsim.powershell.cmdlet import REGISTRY, BoundCall, CmdletContext, Session
from hvsim.powershell.errors import PSError
from hvsim.powershell.values import Credential, ScriptBlock, SecureText
from hvsim.world import World

BASE = "C:\\LabBases\\WS2022-Core.vhdx"
MAC = "00155D380100"
TYPES = {
    "Invoke-Command": "Microsoft.PowerShell.Commands.InvokeCommandCommand",
    "New-PSSession": "Microsoft.PowerShell.Commands.NewPSSessionCommand",
    "Get-PSSession": "Microsoft.PowerShell.Commands.GetPSSessionCommand",
    "Remove-PSSession": "Microsoft.PowerShell.Commands.RemovePSSessionCommand",
    "Copy-VMFile": "Microsoft.HyperV.PowerShell.Commands.CopyVMFile",
}


def new_world(profile: str = "instant", speedup: float = 1.0) -> World:
    return World(None, Clock(profile, speedup), FaultPlan(), Counters())


def make_vm(world: World, name: str = "dc01", unattend: str | bytes | None = VALID, *,
            base: str = BASE, switch: str | None = "LabNet", mac: str = MAC, start: bool = True,
            gsi: bool = False) -> Any:
    """A Gen2 VM on a differencing disk of ``base`` with ``unattend`` injected offline."""
    vhd = f"C:\\Labs\\{name}.vhdx"
    world.storage.mkdirs("C:\\Labs")
    world.storage.new_vhd(vhd, "Differencing", parent_path=base)
    if unattend is not None:
        data = unattend.encode("utf-8") if isinstance(unattend, str) else unattend
        world.storage.write_file(vhd, ANSWER_FILE, data)
    if switch and not world.network.find_switches(switch):
        world.network.new_switch(switch, "Internal")
    vm = world.hv.new_vm(name, memory_startup=2 * 1024**3, generation=2, vhd_path=vhd)
    adapter = vm.network_adapters[0]
    if switch:
        world.hv.connect_adapter(vm, adapter, switch)
    else:
        adapter.switch_name = None
        adapter.switch_id = None
    world.hv.set_static_mac(vm, adapter, mac)
    vm.integration_services["Guest Service Interface"] = gsi
    if start:
        world.hv.start(vm)
    return vm


def cred(user: str = "Administrator", password: str = PASSWORD) -> Credential:
    return Credential(user, SecureText(password))


def script(name: str = "probe", version: str = "1", body: str = "Get-Thing") -> ScriptBlock:
    return ScriptBlock(f"# labctl-step: {name} {version}\n{body}\n")


@dataclass
class Sink:
    """Collects what a handler writes to the streams."""

    outputs: list[Any] = field(default_factory=list)
    errors: list[PSError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def output(self, value: Any) -> None:
        self.outputs.append(value)

    def error(self, err: PSError) -> None:
        self.errors.append(err)

    def warning(self, text: str) -> None:
        self.warnings.append(text)

    def verbose(self, text: str) -> None:
        pass


@dataclass
class Harness:
    """Calls registered handlers the way the runtime does (without the wire)."""

    world: World
    session: Session = field(default_factory=lambda: Session("Administrator"))

    def call(self, cmdlet: str, **params: Any) -> tuple[list[Any], list[PSError]]:
        import hvsim.guest.handlers.remoting  # noqa: F401  (registers the handlers)

        spec = CmdletSpec(cmdlet, TYPES[cmdlet], "", None, {})
        sink = Sink()
        ctx = CmdletContext(self.world, self.session, sink)
        bound = BoundCall(spec, "", dict(params), cmdlet)
        try:
            out = REGISTRY[cmdlet.lower()].handler(ctx, bound)
        except PSError as err:
            err.command_type = spec.type
            raise
        for written in sink.errors:
            written.command_type = spec.type
        return list(out or []), sink.errors
