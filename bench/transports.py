"""Pipelines per second per transport, side by side, against one simulator on this machine (not a test).

One `labctl sim serve` (its own process, instant profile, 6 VMs added) and, against it, labctl's own
transports as labctl/app/connection.py builds them:

- WinRM HTTPS (NTLM, certificate pinned by fingerprint): the baseline every ratio is taken to;
- WinRM HTTP + NTLM message encryption (pypsrp's encryption="auto" on http);
- WinRM HTTP + Kerberos message encryption, with a real MIT KDC on loopback (tests/kdc.py), when its
  packages are installed (else the row says why it is missing);
- SSH to a real OpenSSH sshd on loopback (tests/sshd.py), its powershell subsystem `python -m hvsim.oop`;
- SSH to the simulator's own SSH server (paramiko, endpoint.json ssh_uri);
- local: LABCTL_LOCAL_SERVER=`python -m hvsim.oop --state DIR` (one child process per session).

For each: the first call (SSH/TLS handshake, authentication, runspace pool open, one Get-VM), then
pipelines per second for a small answer (Get-VM -Name: one VM) and a bigger one (Get-VM: all 6 VMs;
a VM object is larger than a Get-VHD or Win32_OperatingSystem answer), sequential on one session and
from 4 threads on 4 sessions, and the bench process's own CPU per sequential 1-VM Get-VM.
Ratios are each figure over WinRM HTTPS's.

    .venv/bin/python bench/transports.py [--pipelines 400] [--threads 4] [--no-kerberos]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simhost import Served

from labctl.hyperv import ops
from labctl.secret import Secret
from labctl.transport.base import Invocation, Transport
from labctl.transport.local import ENV_SERVER, local_transport
from labctl.transport.psrp import Endpoint, PsrpTransport
from labctl.transport.ssh import SshTarget, SshTransport

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from kdc import SPN_HOST, Kdc  # the tests' KDC and sshd helpers
from sshd import Sshd, relay_command, start_sshd

BASES = ("C:\\LabBases\\WS2019-Core.vhdx", "C:\\LabBases\\WS2022-Core.vhdx", "C:\\LabBases\\WS2025-Core.vhdx")
VMS = tuple(f"bench-vm{k}" for k in range(1, 7))
SMALL = ops.find_vm(VMS[0])  # Get-VM -Name bench-vm1: one VM
BIG = ops.list_vms()  # Get-VM: every VM
EXPECTED = {SMALL.describe(): 1, BIG.describe(): len(VMS)}
METRICS = ("first call ms", "1 VM seq/s", "1 VM x{t}/s", "6 VMs seq/s", "6 VMs x{t}/s", "CPU ms/call")


@dataclass
class Row:
    """One transport to measure: how to build it, and what it measured (or why it could not)."""

    name: str
    make: Callable[[int], Transport] | None
    missing: str = ""
    figures: dict[str, float] = field(default_factory=dict)
    sessions: int = 0


def check(result: Any, what: Invocation) -> None:
    """A pipeline's answer is the full one, so every rate counts real answers."""
    got, want = len(result.output), EXPECTED[what.describe()]
    if got != want:
        raise RuntimeError(f"{what.describe()} answered {got} objects, expected {want}")


def sequential(t: Transport, inv: Invocation, n: int) -> tuple[float, float]:
    """Pipelines per second on one thread (one session), and this process's CPU ms per pipeline."""
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        check(t.invoke(inv), inv)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return n / wall, 1000 * cpu / n


def parallel(t: Transport, inv: Invocation, n: int, threads: int) -> float:
    """Pipelines per second from ``threads`` threads sharing the transport (one session each)."""
    per = max(1, n // threads)
    ready = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(3):  # warm up: with all threads calling at once, each has its session open
                check(t.invoke(inv), inv)
        except BaseException as exc:
            errors.append(exc)
        ready.wait()
        if errors:
            return
        try:
            for _ in range(per):
                check(t.invoke(inv), inv)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, name=f"bench-{k}") for k in range(threads)]
    for w in workers:
        w.start()
    ready.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return per * threads / wall


def measure(row: Row, n: int, threads: int) -> None:
    assert row.make is not None
    t0 = time.perf_counter()
    transport = row.make(threads)
    try:
        check(transport.invoke(SMALL), SMALL)
        row.figures["first call ms"] = 1000 * (time.perf_counter() - t0)
        for _ in range(20):  # warm the one session (and the server's caches) before timing
            transport.invoke(SMALL)
        row.figures["1 VM seq/s"], row.figures["CPU ms/call"] = sequential(transport, SMALL, n)
        row.figures["6 VMs seq/s"], _ = sequential(transport, BIG, n)
        row.figures["1 VM x{t}/s"] = parallel(transport, SMALL, n, threads)
        row.figures["6 VMs x{t}/s"] = parallel(transport, BIG, n, threads)
        row.sessions = int(getattr(transport, "stats", {}).get("connections", 0))
    finally:
        transport.close()


def populate(t: Transport) -> None:
    """Six VMs on differencing disks of a base, as a small lab leaves them."""
    t.invoke(ops.new_directory("C:\\LabBench"))
    t.invoke(ops.create_switch("bench-switch", "labctl bench"), retry=False)
    for name in VMS:
        disk = f"C:\\LabBench\\{name}.vhdx"
        t.invoke(ops.create_differencing_disk(disk, BASES[1]), retry=False)
        t.invoke(ops.create_vm(name, memory=1 << 30, vhd_path=disk, switch="bench-switch"), retry=False)


def answer_size(served: Served, inv: Invocation) -> str:
    """What a pipeline answers: objects and the characters of their decoded form (a size to compare)."""
    out = served.transport().invoke(inv).output
    return f"{inv.describe()} ({len(out)} objects, {len(repr(out)) / 1000:.1f} k chars decoded)"


def winrm(uri: str, info: dict[str, Any], *, auth: str = "ntlm",
          username: str | None = None) -> Callable[[int], Transport]:
    endpoint = Endpoint(uri=uri, auth=auth, username=username or str(info["username"]),
                        password=Secret(str(info["password"])), fingerprint=str(info["fingerprint"]))
    return lambda size: PsrpTransport(endpoint, size=size)


def ssh(target: SshTarget) -> Callable[[int], Transport]:
    return lambda size: SshTransport(target, size=size)


def openssh_target(server: Sshd) -> SshTarget:
    return SshTarget(hostname="127.0.0.1", port=server.port, username=server.user, key_file=str(server.client_key),
                     host_key_fingerprint=server.host_fingerprint)


def sim_ssh_target(info: dict[str, Any]) -> SshTarget:
    rest = str(info["ssh_uri"]).removeprefix("ssh://")
    user, _, hostport = rest.rpartition("@")
    host, _, port = hostport.rpartition(":")
    return SshTarget(hostname=host, port=int(port), username=user, key_file=str(info["ssh_client_key"]),
                     host_key_fingerprint=str(info["ssh_host_key_fingerprint"]))


def start_kdc(root: Path) -> tuple[Kdc | None, str]:
    """A KDC on loopback, its realm's environment applied to this process (gssapi reads it once, at first use)."""
    try:
        kdc = Kdc.start(root / "kdc")
    except (AssertionError, OSError) as exc:
        return None, f"no KDC: {exc}"
    os.environ.update(kdc.env(root / "kdc" / "ccache"))
    return kdc, ""


def table(rows: list[Row], threads: int) -> str:
    base = rows[0].figures
    names = [m.format(t=threads) for m in METRICS]
    width = max(len(r.name) for r in rows) + 2
    lines = [f"{'transport':<{width}}" + "".join(f"{n:>15}" for n in names) + f"{'sessions':>10}"]
    for row in rows:
        if not row.figures:
            lines.append(f"{row.name:<{width}}  not measured: {row.missing}")
            continue
        cells = "".join(f"{row.figures[m]:>15.1f}" for m in METRICS)
        lines.append(f"{row.name:<{width}}{cells}{row.sessions:>10}")
    lines.append("")
    lines.append(f"{'ratio to WinRM HTTPS':<{width}}" + "".join(f"{n:>15}" for n in names))
    for row in rows:
        if row.figures:
            lines.append(f"{row.name:<{width}}" + "".join(f"{row.figures[m] / base[m]:>14.2f}x" for m in METRICS))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipelines", type=int, default=400, help="pipelines per figure (default 400)")
    parser.add_argument("--threads", type=int, default=4, help="parallel threads (default 4)")
    parser.add_argument("--no-kerberos", action="store_true", help="leave out the WinRM HTTP + Kerberos row")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="labctl-bench-transports-"))
    kdc, krb_missing = (None, "--no-kerberos") if args.no_kerberos else start_kdc(root)
    state = root / "sim"
    extra = ("--kerberos-keytab", str(kdc.keytab), "--kerberos-realm", kdc.realm) if kdc else ()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    served = Served(state, extra_args=extra, env=env)
    server: Sshd | None = None
    try:
        info = json.loads((state / "endpoint.json").read_text())
        if kdc is not None:
            kdc.add_user("Administrator", str(info["password"]))
        populate(served.transport())
        server = start_sshd(root / "sshd", state)
        local_env = {ENV_SERVER: shlex.join(relay_command(state))}
        rows = [
            Row("WinRM HTTPS (NTLM)", winrm(str(info["https_uri"]), info)),
            Row("WinRM HTTP + NTLM encryption", winrm(str(info["http_uri"]), info)),
            Row("WinRM HTTP + Kerberos encryption",
                winrm(str(info["http_uri"]).replace("127.0.0.1", SPN_HOST), info, auth="kerberos",
                      username=f"Administrator@{kdc.realm}") if kdc else None, krb_missing),
            Row("SSH, OpenSSH sshd + hvsim.oop", ssh(openssh_target(server))),
            Row("SSH, simulator's own server", ssh(sim_ssh_target(info))),
            Row("local (hvsim.oop process)", lambda size: local_transport(size=size, env=local_env)),
        ]
        print(f"one simulator (labctl sim serve, instant profile, pid {info['pid']}), {args.pipelines} pipelines "
              f"per figure; small answer: {answer_size(served, SMALL)}; bigger: {answer_size(served, BIG)}",
              flush=True)
        for row in rows:
            if row.make is None:
                continue
            t0 = time.perf_counter()
            measure(row, args.pipelines, args.threads)
            print(f"  measured {row.name} in {time.perf_counter() - t0:.1f} s", flush=True)
        print()
        print(table(rows, args.threads))
        print(f"\nfirst call: new transport to the first answer (connect, authenticate, open the runspace pool, "
              f"one Get-VM); x{args.threads}: {args.threads} threads on one transport of {args.threads} sessions; "
              "CPU ms/call: this process's CPU per sequential 1-VM Get-VM (the server's CPU is not in it); "
              "sessions: sessions the transport opened (1 for the first call and the sequential runs). Ratios: "
              "figure / WinRM HTTPS figure (for first call ms lower is better, for the rest higher).")
    finally:
        if server is not None:
            server.stop()
        served.close()
        if kdc is not None:
            kdc.stop()


if __name__ == "__main__":
    main()
