"""`labctl sim serve` keeps its host across a restart, and across a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from labctl.secret import Secret
from labctl.transport.base import SWITCH, Invocation, Pipeline
from labctl.transport.psrp import Endpoint, PsrpTransport

REPO = Path(__file__).resolve().parents[2]


def _serve(state: Path) -> subprocess.Popen[str]:
    (state / "endpoint.json").unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "labctl.cli.main", "sim", "serve", "--state", str(state)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 20
    while not (state / "endpoint.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "sim serve did not start"
        time.sleep(0.05)
    return proc


def _transport(state: Path) -> PsrpTransport:
    ep = json.loads((state / "endpoint.json").read_text())
    return PsrpTransport(Endpoint(uri=ep["https_uri"], auth="ntlm", username=ep["username"],
                                  password=Secret(ep["password"]), fingerprint=ep["fingerprint"]), size=1)


def _inventory(t: PsrpTransport) -> tuple[list[str], list[str], list[str]]:
    res = t.invoke(Pipeline.of(Invocation("Get-VMSwitch"), Invocation("Get-VM"),
                               Invocation("Get-VHD", {"Path": r"C:\Labs\keep\disk.vhdx"})))
    switches = sorted(str(o["Name"]) for o in res.objects() if o.is_a("Microsoft.HyperV.PowerShell.VMSwitch"))
    vms = sorted(str(o["Name"]) for o in res.objects() if o.is_a("Microsoft.HyperV.PowerShell.VirtualMachine"))
    disks = sorted(str(o["Path"]) for o in res.objects() if o.is_a("Microsoft.Vhd.PowerShell.VirtualHardDisk"))
    return switches, vms, disks


def test_state_survives_a_restart_and_a_kill(tmp_path: Path) -> None:
    state = tmp_path / "host"
    proc = _serve(state)
    try:
        t = _transport(state)
        t.invoke(Pipeline.of(
            Invocation("New-VMSwitch", {"Name": "keep-sw", "SwitchType": "Internal"}),
            Invocation("New-Item", {"Path": r"C:\Labs\keep", "ItemType": "Directory", "Force": SWITCH}),
            Invocation("New-VHD", {"Path": r"C:\Labs\keep\disk.vhdx", "ParentPath": r"C:\LabBases\WS2022-Core.vhdx",
                                   "Differencing": SWITCH}),
            Invocation("New-VM", {"Name": "keep-vm", "Generation": 2, "MemoryStartupBytes": 2 * 1024**3,
                                  "VHDPath": r"C:\Labs\keep\disk.vhdx", "SwitchName": "keep-sw"}),
        ))
        before = _inventory(t)
        t.close()
        assert before == (["keep-sw"], ["keep-vm"], [r"C:\Labs\keep\disk.vhdx"])
    finally:
        proc.terminate()
        proc.wait(15)
    fingerprint = json.loads((state / "endpoint.json").read_text())["fingerprint"]

    proc = _serve(state)  # a clean restart
    try:
        t = _transport(state)
        assert _inventory(t) == before
        t.invoke(Invocation("Start-VM", {"Name": "keep-vm"}))
        t.close()
    finally:
        proc.send_signal(signal.SIGKILL)  # no chance to save on the way out
        proc.wait(15)

    proc = _serve(state)
    try:
        assert json.loads((state / "endpoint.json").read_text())["fingerprint"] == fingerprint
        t = _transport(state)
        assert _inventory(t) == before
        vm = t.invoke(Invocation("Get-VM", {"Name": "keep-vm"})).objects()[0]
        assert vm["State"] == "Running"  # the write after Start-VM was on disk before the kill
        t.close()
    finally:
        proc.terminate()
        proc.wait(15)
