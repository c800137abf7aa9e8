"""Pipelines per second through the simulator with the real pypsrp client (not a test).

Runs N small pipelines on one pool, then on 4 pools in parallel threads, over each transport, and
prints the rates and the parallel/serial ratio. The runtime is a trivial fake (one output object per
pipeline) so the figures measure the wire layer: HTTP, TLS or NTLM encryption, SOAP, PSRP.

    python bench/sim_pipelines.py [--pipelines 200] [--pools 4]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from labctl.sim.cmdlets.base import Session
from labctl.sim.errors import command_not_found
from labctl.sim.runtime import RawCommand
from labctl.sim.server import Simulator
from labctl.sim.values import PSEnum, PSObj


class EchoRuntime:
    """One PSObj per Get-VM, like a tiny real answer."""

    def run(self, statements: list[list[RawCommand]], input: list[Any], sink: Any, session: Session) -> None:
        for statement in statements:
            for cmd in statement:
                if cmd.name.lower() != "get-vm":
                    raise command_not_found(cmd.name)
                name = dict(cmd.params).get("Name", "vm")
                sink.output(PSObj(["Microsoft.HyperV.PowerShell.VirtualMachine", "System.Object"],
                                  {"Name": name, "State": PSEnum("Microsoft.HyperV.PowerShell.VMState", "Off", 3)},
                                  f"VirtualMachine (Name = '{name}')"))


def wsman(sim: Simulator, transport: str) -> WSMan:
    if transport == "http-ntlm":
        return WSMan("127.0.0.1", port=sim.http_port, ssl=False, username=sim.username, password=sim.password,
                     auth="ntlm")
    return WSMan("127.0.0.1", port=sim.https_port, ssl=True, username=sim.username, password=sim.password,
                 auth=transport.split("-", 1)[1], cert_validation=str(sim.cert_path))


def run_pool(sim: Simulator, transport: str, count: int, tag: str) -> None:
    with RunspacePool(wsman(sim, transport)) as pool:
        for i in range(count):
            ps = PowerShell(pool)
            ps.add_cmdlet("Get-VM").add_parameter("Name", f"{tag}-{i}")
            out = ps.invoke()
            assert out[0].adapted_properties["Name"] == f"{tag}-{i}", out


def measure(sim: Simulator, transport: str, pools: int, per_pool: int) -> float:
    threads = [threading.Thread(target=run_pool, args=(sim, transport, per_pool, f"p{k}")) for k in range(pools)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return pools * per_pool / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=200, help="pipelines per pool")
    parser.add_argument("--pools", type=int, default=4, help="pools in the parallel run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Simulator(Path(tmp) / "state", runtime=EchoRuntime()) as sim:
        run_pool(sim, "https-basic", 10, "warmup")
        print(f"{'transport':<12} {'1 pool p/s':>11} {f'{args.pools} pools p/s':>12} {'ratio':>6}")
        for transport in ("https-basic", "https-ntlm", "http-ntlm"):
            serial = measure(sim, transport, 1, args.pipelines)
            parallel = measure(sim, transport, args.pools, args.pipelines)
            print(f"{transport:<12} {serial:>11.1f} {parallel:>12.1f} {parallel / serial:>6.2f}")
        counters = sim.counters.snapshot() if sim.counters else {}
        print(f"pipelines run: {counters.get('pipelines')}, HTTP requests: {counters.get('http_requests')}")


if __name__ == "__main__":
    main()
