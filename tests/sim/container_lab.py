"""A simulated host with container-host guests, driven through the Runtime with Invoke-Command -VMName.

The step scripts are built from their docs/guest-steps.md headers (the shipped templates are not
needed: the simulator dispatches on the header).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from guest_world import cred, make_vm, new_world

import hvsim.guest.handlers.remoting  # noqa: F401  (registers Invoke-Command, which the Lab dispatches to)
from hvsim.docker.models.engine import simulated_docker_zip
from hvsim.powershell.cmdlet import Session
from hvsim.powershell.errors import PSError
from hvsim.powershell.runtime import RawCommand, Runtime
from hvsim.powershell.values import ScriptBlock
from hvsim.world import World

DOCKER_VERSION = "27.3.1"
ZIP_PATH = f"C:\\labctl\\docker-{DOCKER_VERSION}.zip"


def zip_path(version: str) -> str:
    return f"C:\\labctl\\docker-{version}.zip"

NANO_2022 = "mcr.microsoft.com/windows/nanoserver:ltsc2022"
NANO_2019 = "mcr.microsoft.com/windows/nanoserver:ltsc2019"
NANO_2025 = "mcr.microsoft.com/windows/nanoserver:ltsc2025"
DAEMON_JSON = '{"exec-opts": [], "fixed-cidr": "172.30.16.0/20"}'
BASE_2019 = "C:\\LabBases\\WS2019-Core.vhdx"
BASE_2025 = "C:\\LabBases\\WS2025-Core.vhdx"


@dataclass
class Result:
    """One pipeline's streams."""

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

    @property
    def one(self) -> Any:
        assert self.errors == [], [e.message for e in self.errors]
        assert len(self.outputs) == 1, self.outputs
        return self.outputs[0]

    @property
    def error_text(self) -> str:
        assert self.errors, self.outputs
        return "\n".join(e.message for e in self.errors)


class Lab:
    """A world with VMs and a Runtime; ``step`` runs a guest step over PowerShell Direct."""

    def __init__(self, world: World | None = None) -> None:
        self.world = world or new_world()
        self.runtime = Runtime(self.world)
        self.session = Session("Administrator")

    def vm(self, name: str, *, base: str | None = None, expose: bool = True, index: int = 0) -> Any:
        kwargs: dict[str, Any] = {"mac": f"00155D3801{index:02X}", "start": False}
        if base:
            kwargs["base"] = base
        vm = make_vm(self.world, name, **kwargs)
        vm.expose_virtualization_extensions = expose
        self.world.hv.start(vm)
        self.wait_ready(vm)
        return vm

    def wait_ready(self, vm: Any, timeout: float = 10.0) -> None:
        """In the realistic profile a boot takes (scaled) time: wait for PowerShell Direct."""
        import time

        deadline = time.monotonic() + timeout
        while not vm.guest.is_ready(self.world, vm):
            assert time.monotonic() < deadline, f"{vm.name} did not become ready"
            time.sleep(0.005)

    def run(self, name: str, params: list[tuple[str | None, Any]]) -> Result:
        sink = Result()
        try:
            self.runtime.run([[RawCommand(name, params)]], [], sink, self.session)
        except PSError as err:
            sink.errors.append(err)
        return sink

    def step(self, vm: str, step: str, *args: Any, credential: Any = None, version: int = 1) -> Result:
        text = f"# labctl-step: {step} {version}\nparam()\n$ErrorActionPreference = 'Stop'\n"
        return self.run("Invoke-Command", [("VMName", vm), ("Credential", credential or cred()),
                                           ("ScriptBlock", ScriptBlock(text)), ("ArgumentList", list(args))])

    def host_step(self, step: str, *args: Any) -> Result:
        text = f"# labctl-host-step: {step} 1\nparam()\n"
        return self.run("Invoke-Command", [("ScriptBlock", ScriptBlock(text)), ("ArgumentList", list(args))])

    def docker(self, vm: str, *argv: str, version: int = 1) -> Any:
        return self.step(vm, "docker-cli", list(argv), version=version).one

    def get_vm(self, name: str) -> Any:
        vm = self.world.find_vm(name)
        assert vm is not None, name
        return vm

    def reboot(self, name: str) -> None:
        """A graceful restart (Stop-VM, then Start-VM): the guest boots again and pending features finish."""
        vm = self.get_vm(name)
        self.world.hv.stop(vm, force=True)
        self.world.hv.start(vm)
        self.wait_ready(vm)

    def reset(self, name: str) -> None:
        """Restart-VM: a reset; the guest boots again without having shut down."""
        vm = self.get_vm(name)
        self.world.hv.restart(vm)
        self.wait_ready(vm)

    def put_zip(self, name: str, data: bytes | None = None, version: str = DOCKER_VERSION) -> bytes:
        """Copy-VMFile's effect: the Docker zip on the guest disk."""
        vm = self.get_vm(name)
        data = simulated_docker_zip(version) if data is None else data
        self.world.storage.write_file(vm.hard_drives[0], zip_path(version)[2:], data)
        return data

    def container_host(self, name: str, *, hyperv: bool = True, daemon_json: str = DAEMON_JSON,
                       version: str = DOCKER_VERSION) -> Any:
        """Features, reboot, docker ``version`` installed: a ready container host."""
        import hashlib

        feats = ["Containers", "Hyper-V"] if hyperv else ["Containers"]
        assert self.step(name, "container-features", feats).one.get("Changed") is True
        self.reboot(name)
        data = self.put_zip(name, version=version)
        sha = hashlib.sha256(data).hexdigest().upper()
        return self.step(name, "docker-install", zip_path(version), sha, daemon_json, 60).one
