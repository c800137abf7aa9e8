"""The classroom as a trainer runs it: labs/classroom.yaml (3 copies of 2 VMs) on the simulator.

up; a snapshot; a change in a guest through `labctl docker` undone by reset; stop (every VM Off) and start (all
healthy); the roster with distinct IPs and RDP endpoints that answer; destroy --copy 2 removes only copy 2;
destroy removes the rest and ls shows nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from clirun import labctl
from labharness import Lab, ServedSim, make_lab

from labctl.rdp import probe

pytestmark = pytest.mark.xdist_group("classroom")

COPY2 = {"s02-node1", "s02-node2"}
ALL = {f"s0{k}-node{n}" for k in (1, 2, 3) for n in (1, 2)}


def _json(*args: str, ok: tuple[int, ...] = (0,)) -> Any:
    res = labctl(*args)
    assert res.exit_code in ok, res.output
    return json.loads(res.stdout)


def _states(lab: Lab) -> dict[str, str]:
    """Each VM's state; status exits 1 while a VM is absent or off (not healthy)."""
    rows = _json("status", str(lab.file), "--json", "--no-guest", ok=(0, 1))["vms"]
    return {r["name"]: r["state"] for r in rows}


def _copies_on_host(lab: Lab) -> list[int]:
    """The copies `labctl ls` finds on the host from the ownership tags."""
    listing = _json("ls", str(lab.file), "--json")
    (host,) = listing["hosts"]
    (found,) = [x for x in host["labs"] if x["lab"] == "classroom"]
    assert found["journal"] == "at hand"
    return list(found["copies"])


def _containers(lab: Lab, vm: str) -> list[str]:
    res = labctl("docker", str(lab.file), vm, "--", "ps", "-a")
    assert res.exit_code == 0, res.output
    lines = [line.split() for line in res.stdout.splitlines()[1:] if line.strip() and "simulated" not in line]
    return [words[-1] for words in lines]  # NAMES, the last column


def test_a_class_from_up_to_destroy(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, "classroom.yaml")
    served = ServedSim(lab.sim_state)  # as `labctl sim serve` keeps the host (and its RDP ports) up for students
    try:
        _class_flow(tmp_path, lab)
    finally:
        served.close()


def _class_flow(tmp_path: Path, lab: Lab) -> None:
    up = labctl("up", str(lab.file))
    assert up.exit_code == 0, up.output
    status = _json("status", str(lab.file), "--json")
    rows = status["vms"]
    assert {r["name"] for r in rows} == ALL and all(r["healthy"] for r in rows)
    assert {r["copy"] for r in rows} == {1, 2, 3}

    # The roster: six VMs, distinct IPs, each copy its own password, RDP endpoints that answer.
    roster = _json("roster", str(lab.file), "--json", "--passwords", "--check")
    assert isinstance(roster, list) and len(roster) == 6
    assert {e["vm"] for e in roster} == ALL and len({e["ip"] for e in roster}) == 6
    assert all({"copy", "host", "vm", "ip", "user", "password", "rdp"} <= set(e) for e in roster)
    by_copy = {e["copy"]: e["password"] for e in roster}
    assert len(set(by_copy.values())) == 3 and all(by_copy.values())
    assert len({e["rdp"] for e in roster}) == 6 and all(e["reachable"] for e in roster)
    host, port = roster[0]["rdp"].rsplit(":", 1)
    assert probe(host, int(port), 3.0).protocol_name in ("PROTOCOL_HYBRID", "PROTOCOL_HYBRID_EX")
    hidden = _json("roster", str(lab.file), "--json", "--copy", "2")
    assert {e["vm"] for e in hidden} == COPY2 and all(e["password"] is None for e in hidden)
    files = tmp_path / "rdp"
    assert labctl("roster", str(lab.file), "--rdp-files", str(files)).exit_code == 0
    assert sorted(p.name for p in files.iterdir()) == sorted(f"{v}.rdp" for v in ALL)
    text = (files / "s01-node1.rdp").read_text()
    assert f"full address:s:{roster[0]['rdp']}" in text and "password" not in text.lower().replace(
        "prompt for credentials", "")

    assert _copies_on_host(lab) == [1, 2, 3]

    # A snapshot of the whole class; a container made in a guest afterwards is gone after reset.
    saved = labctl("snapshot", "save", str(lab.file), "baseline")
    assert saved.exit_code == 0 and "6 ProductionOnly checkpoints" in saved.stdout, saved.output
    made = labctl("docker", str(lab.file), "s02-node1", "--", "create", "--name", "scratch",
                  "mcr.microsoft.com/windows/nanoserver:ltsc2022", "cmd", "/c", "echo", "hi")
    assert made.exit_code == 0, made.output
    assert "scratch" in _containers(lab, "s02-node1")
    reset = _json("reset", str(lab.file), "--json")
    assert reset["snapshot"] == "baseline" and set(reset["vms"]) == ALL
    assert all(v["ok"] for v in reset["vms"].values())
    assert "scratch" not in _containers(lab, "s02-node1")
    assert all(r["healthy"] for r in _json("status", str(lab.file), "--json")["vms"])

    # stop leaves every VM Off (one copy first, then the rest); start brings all back healthy.
    one = _json("stop", str(lab.file), "--copy", "3", "--json")
    assert set(one["vms"]) == {"s03-node1", "s03-node2"}
    assert {n for n, st in _states(lab).items() if st == "Off"} == {"s03-node1", "s03-node2"}
    assert labctl("stop", str(lab.file)).exit_code == 0
    assert set(_states(lab).values()) == {"Off"}
    started = labctl("start", str(lab.file))
    assert started.exit_code == 0, started.output
    assert all(r["healthy"] for r in _json("status", str(lab.file), "--json")["vms"])

    # destroy --copy 2 removes copy 2 only; the others keep running, the shared NAT stays.
    gone = labctl("destroy", str(lab.file), "--copy", "2", "--yes")
    assert gone.exit_code == 0, gone.output
    assert "vm s02-node1" in gone.stdout and "s01-node1" not in gone.stdout
    assert "nat labctl-classroom (shared with copies 1, 3 on this host)" in gone.stdout
    states = _states(lab)
    assert {n for n, s in states.items() if s == "Running"} == ALL - COPY2
    assert {states[n] for n in COPY2} == {"Absent"}
    assert _copies_on_host(lab) == [1, 3]

    rest = labctl("destroy", str(lab.file), "--yes")
    assert rest.exit_code == 0, rest.output
    assert "  - nat labctl-classroom\n" in rest.stdout and "switch labctl-classroom-3" in rest.stdout
    assert "kept nat" not in rest.stdout  # the NAT went with the last copy: no stale "kept" line
    assert set(_states(lab).values()) == {"Absent"}
    listing = _json("ls", str(lab.file), "--json")
    assert [h["labs"] for h in listing["hosts"]] == [[]]
