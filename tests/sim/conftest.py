"""Simulator fixtures: a fresh in-process simulator per test, and pypsrp pools connected to it.

- ``sim``: a Simulator in tmp_path (instant profile) with the real Runtime.
- ``pool``: an open pypsrp RunspacePool on ``sim`` over HTTPS (Basic, certificate verified).
- ``http_pool``: the same over HTTP with NTLM and WinRM message encryption.
- ``fake_sim`` / ``fake_pool``: a simulator whose runtime is :class:`FakeRuntime` (wire tests that need
  output without depending on cmdlet handlers).
- ``connect(sim, transport)`` (simwire.py): a WSMan for "https-basic", "https-ntlm" or "http-ntlm".
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pypsrp.powershell import RunspacePool
from pypsrp.wsman import WSMan
from simwire import TRANSPORTS, connect

from hvsim.powershell.cmdlet import Session
from hvsim.powershell.errors import PSError, command_not_found
from hvsim.powershell.runtime import RawCommand
from hvsim.powershell.values import Int64, PSEnum, PSObj, TimeSpan, UInt64
from hvsim.server import Simulator


class Call:
    """What a fake command sees."""

    def __init__(self, cmd: RawCommand, input: list[Any], sink: Any, session: Session) -> None:
        self.cmd = cmd
        self.input = input
        self.sink = sink
        self.session = session

    @property
    def named(self) -> dict[str, Any]:
        return {k: v for k, v in self.cmd.params if k is not None}

    @property
    def positional(self) -> list[Any]:
        return [v for k, v in self.cmd.params if k is None]


FakeCommand = Callable[[Call], Any]


def _get_thing(call: Call) -> list[Any]:
    name = call.named.get("Name", "vm1")
    return [PSObj(
        type_names=["Microsoft.HyperV.PowerShell.VirtualMachine", "Microsoft.HyperV.PowerShell.VirtualizationObject",
                    "System.Object"],
        props={
            "Name": name,
            "State": PSEnum("Microsoft.HyperV.PowerShell.VMState", "Running", 2),
            "MemoryStartup": Int64(2 * 1024**3),
            "SizeBytes": UInt64(127 * 1024**3),
            "ProcessorCount": 2,
            "Uptime": TimeSpan(90.5),
            "Id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
            "DynamicMemoryEnabled": False,
            "Notes": None,
            "Tags": ["a", "b"],
        },
        to_string=f"VirtualMachine (Name = '{name}')",
    )]


def _write_streams(call: Call) -> list[Any]:
    call.sink.warning("The virtual machine is already in the specified state.")
    call.sink.verbose("Performing the operation")
    call.sink.error(PSError('Hyper-V was unable to find a virtual machine with name "nope".', "InvalidParameter",
                            "InvalidArgument", target="nope",
                            exception_type="Microsoft.HyperV.PowerShell.VirtualizationException"))
    return ["after error"]


def _fail_hard(call: Call) -> list[Any]:
    err = PSError("Failed to modify device 'Processor'.", "NotSupported", "InvalidOperation", target="vm1",
                  exception_type="Microsoft.HyperV.PowerShell.VirtualizationException", terminating=True)
    err.command_type = "Microsoft.HyperV.PowerShell.Commands.SetVMProcessor"
    raise err


def _sleep(call: Call) -> list[Any]:
    seconds = float(call.named.get("Seconds", 1))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.02)
        call.sink.verbose("tick")  # raises once the client stopped the pipeline
    return [f"slept {seconds}"]


def _measure(call: Call) -> list[Any]:
    return [len(call.input), sum(int(v) for v in call.input)]


def _big(call: Call) -> list[Any]:
    return [{"i": i, "name": f"obj{i}"} for i in range(int(call.named.get("Count", 10)))]


class FakeRuntime:
    """Same run() signature as hvsim.powershell.runtime.Runtime; dispatches to small Python commands."""

    def __init__(self, extra: dict[str, FakeCommand] | None = None) -> None:
        self.calls: list[RawCommand] = []
        self.sessions: list[Session] = []
        self.statements: list[list[list[RawCommand]]] = []
        self.commands: dict[str, FakeCommand] = {
            "get-thing": _get_thing,
            "write-streams": _write_streams,
            "fail-hard": _fail_hard,
            "sleep-a-bit": _sleep,
            "measure-input": _measure,
            "get-many": _big,
            "echo-args": lambda call: ["ok"],
        }
        self.commands.update({k.lower(): v for k, v in (extra or {}).items()})

    def run(self, statements: list[list[RawCommand]], input: list[Any], sink: Any, session: Session) -> None:
        self.statements.append(statements)
        self.sessions.append(session)
        for index, statement in enumerate(statements):
            data = list(input) if index == 0 else []
            for cmd in statement:
                self.calls.append(cmd)
                fn = self.commands.get(cmd.name.lower())
                if fn is None:
                    raise command_not_found(cmd.name)
                data = list(fn(Call(cmd, data, sink, session)) or [])
            for obj in data:
                sink.output(obj)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    with Simulator(tmp_path / "state", profile="instant") as simulator:
        yield simulator


@pytest.fixture
def fake_runtime() -> FakeRuntime:
    return FakeRuntime()


@pytest.fixture
def fake_sim(tmp_path: Path, fake_runtime: FakeRuntime) -> Iterator[Simulator]:
    with Simulator(tmp_path / "state", profile="instant", runtime=fake_runtime) as simulator:
        yield simulator


def _open(sim: Simulator, transport: str) -> Iterator[RunspacePool]:
    pool = RunspacePool(connect(sim, transport))
    pool.open()
    try:
        yield pool
    finally:
        with contextlib.suppress(Exception):  # a test may have broken the pool on purpose
            pool.close()


@pytest.fixture
def pool(sim: Simulator) -> Iterator[RunspacePool]:
    yield from _open(sim, "https-basic")


@pytest.fixture
def http_pool(sim: Simulator) -> Iterator[RunspacePool]:
    yield from _open(sim, "http-ntlm")


@pytest.fixture(params=TRANSPORTS)
def fake_pool(request: pytest.FixtureRequest, fake_sim: Simulator) -> Iterator[RunspacePool]:
    yield from _open(fake_sim, request.param)


@pytest.fixture
def wsman_for() -> Callable[..., WSMan]:
    """``wsman_for(sim, transport, **kwargs)``: a pypsrp WSMan to a simulator."""
    return connect
