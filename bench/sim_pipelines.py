"""Pipelines per second through the simulator with the real pypsrp client (not a test).

Runs N small pipelines on one pool, then on 4 pools in parallel threads, over each transport, and
prints the rates and the parallel/serial ratio, twice:

- in-process: the simulator runs in this process with a trivial runtime (one object per pipeline),
  so the figures measure the wire layer (HTTP, TLS or NTLM encryption, SOAP, PSRP); client and
  server share one GIL, so parallel pools cannot scale here;
- subprocess: ``labctl sim serve`` in its own process with the real runtime (Get-VMHost), as labctl
  meets it.

    python bench/sim_pipelines.py [--pipelines 200] [--pools 4] [--skip-subprocess]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from hvsim.powershell.cmdlet import Session
from hvsim.powershell.errors import command_not_found
from hvsim.powershell.runtime import RawCommand
from hvsim.powershell.values import PSEnum, PSObj
from hvsim.server import Simulator


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


class Target:
    """Where to connect: an in-process Simulator or the endpoint.json of a `labctl sim serve`."""

    def __init__(self, https_port: int, http_port: int, username: str, password: str, cert: str,
                 command: str) -> None:
        self.https_port, self.http_port = https_port, http_port
        self.username, self.password, self.cert, self.command = username, password, cert, command

    @classmethod
    def of(cls, sim: Simulator) -> Target:
        return cls(sim.https_port, sim.http_port, sim.username, sim.password, str(sim.cert_path), "Get-VM")

    @classmethod
    def from_endpoint(cls, info: dict[str, Any]) -> Target:
        https_port = int(str(info["https_uri"]).rsplit(":", 1)[1].split("/")[0])
        http_port = int(str(info["http_uri"]).rsplit(":", 1)[1].split("/")[0])
        return cls(https_port, http_port, info["username"], info["password"], info["certificate"], "Get-VMHost")


def wsman(target: Target, transport: str) -> WSMan:
    if transport == "http-ntlm":
        return WSMan("127.0.0.1", port=target.http_port, ssl=False, username=target.username,
                     password=target.password, auth="ntlm")
    return WSMan("127.0.0.1", port=target.https_port, ssl=True, username=target.username, password=target.password,
                 auth=transport.split("-", 1)[1], cert_validation=target.cert)


def run_pool(target: Target, transport: str, count: int, tag: str) -> None:
    with RunspacePool(wsman(target, transport)) as pool:
        for i in range(count):
            ps = PowerShell(pool)
            ps.add_cmdlet(target.command)
            if target.command == "Get-VM":
                ps.add_parameter("Name", f"{tag}-{i}")
            out = ps.invoke()
            assert len(out) == 1 and not ps.had_errors, (out, ps.streams.error)


def measure(target: Target, transport: str, pools: int, per_pool: int) -> float:
    threads = [threading.Thread(target=run_pool, args=(target, transport, per_pool, f"p{k}"))
               for k in range(pools)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return pools * per_pool / (time.perf_counter() - t0)


def report(title: str, target: Target, pipelines: int, pools: int) -> None:
    run_pool(target, "https-basic", 10, "warmup")
    print(title)
    print(f"  {'transport':<12} {'1 pool p/s':>11} {f'{pools} pools p/s':>12} {'ratio':>6}")
    for transport in ("https-basic", "https-ntlm", "http-ntlm"):
        serial = measure(target, transport, 1, pipelines)
        parallel = measure(target, transport, pools, pipelines)
        print(f"  {transport:<12} {serial:>11.1f} {parallel:>12.1f} {parallel / serial:>6.2f}")


def served(state: Path) -> tuple[subprocess.Popen[bytes], Target]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "labctl.cli.main", "sim", "serve", "--state", str(state)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 20
    while not (state / "endpoint.json").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("labctl sim serve did not start")
        time.sleep(0.05)
    return proc, Target.from_endpoint(json.loads((state / "endpoint.json").read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=200, help="pipelines per pool")
    parser.add_argument("--pools", type=int, default=4, help="pools in the parallel run")
    parser.add_argument("--skip-subprocess", action="store_true", help="only the in-process run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with Simulator(Path(tmp) / "inproc", runtime=EchoRuntime()) as sim:
            report("in-process simulator, trivial runtime (wire layer only):", Target.of(sim), args.pipelines,
                   args.pools)
            counters = sim.counters.snapshot() if sim.counters else {}
            print(f"  pipelines: {counters.get('pipelines')}, HTTP requests: {counters.get('http_requests')}")
        if not args.skip_subprocess:
            proc, target = served(Path(tmp) / "served")
            try:
                report("`labctl sim serve` subprocess, real runtime (Get-VMHost):", target, args.pipelines,
                       args.pools)
            finally:
                proc.terminate()
                proc.wait(timeout=15)


if __name__ == "__main__":
    main()
