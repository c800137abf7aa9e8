"""CONTRACT SKELETON (the guest-model owner replaces the body): the guest OS inside one VM.

The VM model calls these hooks; the guest model reads the VM and its disks through the World.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labctl.sim.model.world import World


class Guest:
    """Guest OS state of one VM (boot progress, applied answer file, accounts, IPs)."""

    def on_start(self, world: World, vm: Any) -> None:
        """The VM went from Off/Saved to Running."""

    def on_stop(self, world: World, vm: Any, how: str) -> None:
        """The VM stops: ``how`` is "shutdown", "turnoff" or "save"."""

    def on_restart(self, world: World, vm: Any) -> None:
        """Restart-VM."""

    def heartbeat(self, world: World, vm: Any) -> str:
        """Microsoft.HyperV.PowerShell.VMHeartbeatStatus member name for Get-VM."""
        return "NoContact"

    def ip_addresses(self, world: World, vm: Any, mac: str) -> list[str]:
        """Addresses the guest reports on the adapter with this MAC (via KVP)."""
        return []

    def to_state(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Guest:
        return cls()
