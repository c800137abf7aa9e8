"""A class spread over a pool of two `labctl sim serve` hosts: placement by free memory, kept on rerun, a
preflight that says how much is missing, and a destroy that empties both hosts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from clirun import labctl
from hostview import inventory

from labctl.secret import Secret
from labctl.transport.psrp import Endpoint, PsrpTransport

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.xdist_group("pool")


@dataclass
class Served:
    """One `labctl sim serve` process and a transport to it."""

    proc: subprocess.Popen[str]
    endpoint: dict[str, str]
    transport: PsrpTransport

    def vms(self) -> list[str]:
        return [v for v in inventory(self.transport)["vms"] if "-" in v and len(v) < 20]


def _serve(state: Path, *settings: str) -> Served:
    args = [sys.executable, "-m", "labctl.cli.main", "sim", "serve", "--state", str(state)]
    for s in settings:
        args += ["--host-setting", s]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 30
    while not (state / "endpoint.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "sim serve did not start"
        time.sleep(0.05)
    ep = json.loads((state / "endpoint.json").read_text())
    t = PsrpTransport(Endpoint(uri=ep["https_uri"], auth="ntlm", username=ep["username"],
                               password=Secret(ep["password"]), fingerprint=ep["fingerprint"]), size=1)
    return Served(proc, ep, t)


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[list[Served]]:
    # Two hosts of 24 GiB: each has 20 GiB free for VMs (the simulator keeps 4), 19 after labctl's reserve.
    hosts = [_serve(tmp_path / f"host{i}", "memory_capacity=24GiB") for i in (1, 2)]
    yield hosts
    for h in hosts:
        h.transport.close()
        h.proc.terminate()
        h.proc.wait(timeout=30)


def _lab(tmp_path: Path, pool: list[Served], copies: int) -> tuple[Path, dict[str, str]]:
    hosts = "".join(
        f"  - uri: {h.endpoint['https_uri']}\n    username: '{h.endpoint['username']}'\n"
        f"    password_env: HOST{i}_PW\n    fingerprint: 'sha256:{h.endpoint['fingerprint']}'\n"
        for i, h in enumerate(pool, 1))
    text = f"""name: pool
hosts:
{hosts}copies: {copies}
network:
  subnet: 10.30.0.0/24
  copy_pool: 10.60.0.0/16
defaults: {{roles: []}}
vms:
  - name: vm{{n}}
    count: 2
    ip: 10.30.0.11
guest_password_env: POOL_GUEST_PW
"""
    path = tmp_path / "labs" / "pool.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    env = {f"HOST{i}_PW": h.endpoint["password"] for i, h in enumerate(pool, 1)}
    env["POOL_GUEST_PW"] = "Classroom-Master-9"
    return path, env


def test_copies_spread_over_the_pool_and_stay_on_rerun(tmp_path: Path, pool: list[Served]) -> None:
    lab, env = _lab(tmp_path, pool, 3)
    up = labctl("up", str(lab), env=env)
    assert up.exit_code == 0, up.output
    record = json.loads((lab.parent / ".labctl" / "pool" / "class.json").read_text())
    keys = [h.endpoint["https_uri"].split("//")[1].split("/")[0] for h in pool]
    # 8 GiB per copy: copy 1 to the first host (tie), copy 2 to the second (more free), copy 3 to the first.
    assert record["placement"] == {"1": keys[0], "2": keys[1], "3": keys[0]}
    assert sorted(pool[0].vms()) == ["s01-vm1", "s01-vm2", "s03-vm1", "s03-vm2"]
    assert sorted(pool[1].vms()) == ["s02-vm1", "s02-vm2"]
    status = labctl("status", str(lab), "--json", "--no-guest", env=env)
    rows = json.loads(status.stdout)["vms"]
    assert {(r["name"], r["host"], r["state"]) for r in rows} >= {("s02-vm1", keys[1], "Running")}

    again = labctl("up", str(lab), env=env)
    assert again.exit_code == 0 and "Nothing to do" in again.stdout, again.output
    assert json.loads((lab.parent / ".labctl" / "pool" / "class.json").read_text()) == record

    # Six copies do not fit: preflight says how much is missing and changes nothing.
    bigger, _ = _lab(tmp_path, pool, 6)
    before = [sorted(h.vms()) for h in pool]
    refused = labctl("up", str(bigger), env=env)
    assert refused.exit_code == 3, refused.output
    assert "the pool cannot hold 2 of the 6 copies: they need 16.0 GiB of memory in all" in refused.output
    assert "copy 5 (2 VMs) fits on no host" in refused.output and "of memory missing" in refused.output
    assert [sorted(h.vms()) for h in pool] == before

    # The trainer's verbs over the pool: roster, snapshot, reset, stop/start, destroy --copy.
    lab, env = _lab(tmp_path, pool, 3)  # back to the class of three (the file was rewritten above)
    roster = json.loads(labctl("roster", str(lab), "--json", env=env).stdout)
    assert {(e["vm"], e["host"]) for e in roster} >= {("s02-vm1", keys[1]), ("s03-vm2", keys[0])}
    assert len({e["ip"] for e in roster}) == 6
    assert labctl("snapshot", "save", str(lab), "baseline", env=env).exit_code == 0
    reset = labctl("reset", str(lab), "--json", env=env)
    assert reset.exit_code == 0, reset.output
    assert len(json.loads(reset.stdout)["vms"]) == 6
    stopped = labctl("stop", str(lab), "--json", env=env)
    assert stopped.exit_code == 0 and {v["state"] for v in json.loads(stopped.stdout)["vms"].values()} == {"Off"}
    started = labctl("start", str(lab), env=env)
    assert started.exit_code == 0, started.output
    one = labctl("destroy", str(lab), "--copy", "2", "--yes", env=env)
    assert one.exit_code == 0, one.output
    assert pool[1].vms() == [] and sorted(pool[0].vms()) == ["s01-vm1", "s01-vm2", "s03-vm1", "s03-vm2"]
    assert inventory(pool[1].transport)["nats"] == []  # the second host's last copy took its NAT along

    gone = labctl("destroy", str(lab), "--yes", env=env)
    assert gone.exit_code == 0, gone.output
    assert pool[0].vms() == [] and pool[1].vms() == []
    for h in pool:
        inv = inventory(h.transport)
        assert inv["nats"] == [] and not [s for s in inv["switches"] if s.startswith("labctl-pool")]
    assert not (lab.parent / ".labctl" / "pool" / "class.json").exists()
