"""`labctl ls` and `labctl destroy --orphaned` on one simulated host shared by two labs and by things labctl did
not make: ls shows every lab from its tags; destroy --orphaned removes only the lab whose journal is gone."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labharness import Lab, ServedSim, make_lab, run

from labctl.transport.base import Invocation

GUEST_PASSWORD = "Lab-guest-Passw0rd!"


@pytest.fixture
def host(tmp_path: Path) -> Iterator[ServedSim]:
    """A simulated host served as `labctl sim serve` would, with its endpoint.json."""
    s = ServedSim(tmp_path / "host")
    old = {k: os.environ.get(k) for k in ("LABCTL_TEST_HOST_PASSWORD", "LABCTL_GUEST_PASSWORD")}
    os.environ["LABCTL_TEST_HOST_PASSWORD"] = s.password
    os.environ["LABCTL_GUEST_PASSWORD"] = GUEST_PASSWORD
    yield s
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    s.close()


def _second_lab(text: str) -> str:
    """The quickstart as another lab on the same host: its own switch, subnet and VM names."""
    text = text.replace("qs-lab", "qb-lab").replace("10.10.0.", "10.20.0.")
    return re.sub(r"\bqs-", "qb-", text)


def _labs(tmp_path: Path, host: ServedSim) -> tuple[Lab, Lab]:
    alpha = make_lab(tmp_path, "quickstart.yaml", host.remote_lab(name="alpha"))
    beta_dir = tmp_path / "b"
    beta = make_lab(beta_dir, "quickstart.yaml", _second_lab(host.remote_lab(name="beta")))
    return alpha, beta


def _endpoint(host: ServedSim) -> str:
    return str(host.sim.state_dir / "endpoint.json")


def _foreign(host: ServedSim) -> None:
    """A VM and a switch someone else made (one with a look-alike note), and their NAT."""
    host.invoke(Invocation("New-VMSwitch", {"Name": "ops-net", "SwitchType": "Internal",
                                            "Notes": "labctl-owned lab=alpha"}))  # no lab id: not a tag
    host.invoke(Invocation("New-VM", {"Name": "ops-build01", "Generation": 2, "MemoryStartupBytes": 2 * 1024**3,
                                      "NoVHD": True}))
    host.invoke(Invocation("Set-VM", {"Name": "ops-build01", "Notes": "build agent, ask ops"}))


def _ls_json(*args: str) -> Any:
    result = run("ls", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_ls_shows_every_lab_on_the_host_and_destroy_orphaned_removes_only_the_one_without_journal(
        tmp_path: Path, host: ServedSim) -> None:
    alpha, beta = _labs(tmp_path, host)
    empty = host.inventory()
    _foreign(host)
    foreign = host.inventory()
    assert run("up", str(alpha.file)).exit_code == 0
    with_alpha = host.inventory()
    assert run("up", str(beta.file)).exit_code == 0
    both = host.inventory()
    where = ("--labs", str(alpha.file.parent), "--labs", str(beta.file.parent))

    listing = _ls_json("--host", _endpoint(host), *where)
    (h,) = listing["hosts"]
    assert h["simulated"] is True and "simulated" in h["host"]
    labs = {lab["lab"]: lab for lab in h["labs"]}
    assert sorted(labs) == ["alpha", "beta"]  # the look-alike switch and the foreign VM are no lab
    alpha_id = json.loads((alpha.state / "journal.json").read_text())["lab_id"]
    for name, lab in labs.items():
        assert lab["vm_count"] == 2 and lab["states"] == {"Running": 2}, lab
        assert lab["memory_bytes"] == 2 * 4 * 1024**3
        assert lab["disk_bytes"] > 0 and lab["age_seconds"] is not None and lab["age_seconds"] >= 0
        assert lab["journal"] == "at hand" and lab["copies"] == []
        assert all(name in i["folder"] for i in lab["instances"])
    assert labs["alpha"]["lab_ids"] == [alpha_id]

    text = run("ls", str(beta.file), "--host", _endpoint(host), "--labs", str(alpha.file.parent))
    assert text.exit_code == 0, text.output
    assert "[SIMULATED]" in text.output
    beta_row = next(line for line in text.output.splitlines() if " beta " in line)
    assert "*" in beta_row and "2 (2 Running)" in beta_row and "at hand" in beta_row
    assert text.output.count("labs on simulated Hyper-V host") == 1  # the lab's host and --host are one host

    (alpha.state / "journal.json").unlink()  # alpha's journal is gone: alpha is orphaned
    text = run("ls", "--host", _endpoint(host), *where)
    alpha_row = next(line for line in text.output.splitlines() if " alpha " in line)
    assert "gone (orphaned)" in alpha_row

    refused = run("destroy", "--orphaned", "--host", _endpoint(host), *where)
    assert refused.exit_code == 2, refused.output
    assert "pass --yes" in refused.output
    assert f"lab alpha (lab id {alpha_id})" in refused.output and "vm qs-dc01 (Running)" in refused.output
    assert "kept: lab beta" in refused.output
    assert host.inventory() == both  # nothing touched

    done = run("destroy", "--orphaned", "--host", _endpoint(host), *where, "--yes")
    assert done.exit_code == 0, done.output
    removed = [ln.strip()[2:] for ln in done.output.splitlines() if ln.strip().startswith("- ")]
    assert {"vm qs-dc01", "vm qs-node01", "switch qs-lab", "nat labctl-alpha"} <= set(removed), removed
    assert any(r.startswith("folder ") and f"alpha-{alpha_id}" in r for r in removed)
    assert not any("qb-" in r or "beta" in r or "ops-" in r for r in removed)

    after = host.inventory()
    assert not any(n.startswith("qs-") for n in after["vms"] + after["switches"])
    assert "labctl-alpha" not in after["nats"]
    assert not any(f"alpha-{alpha_id}" in f for f in after["files"] + after["folders"])
    for kind, items in both.items():  # exactly alpha's things went; beta's and the foreign ones stay
        alphas = {x for x in set(with_alpha[kind]) - set(foreign[kind]) if not x.lower().endswith("\\labctl")}
        assert sorted(after[kind]) == sorted(set(items) - alphas), kind
    assert {"ops-build01"} <= set(after["vms"]) and "ops-net" in after["switches"]

    again = run("destroy", "--orphaned", "--host", _endpoint(host), *where, "--yes")
    assert again.exit_code == 0 and "Nothing to remove: no orphaned labctl lab on simulated" in again.output

    listing = _ls_json("--host", _endpoint(host), *where)
    assert [lab["lab"] for lab in listing["hosts"][0]["labs"]] == ["beta"]
    assert run("destroy", str(beta.file), "--yes").exit_code == 0
    final = run("ls", "--host", _endpoint(host))
    assert final.exit_code == 0 and "No labctl lab on simulated Hyper-V host" in final.output
    assert "[SIMULATED]" in final.output
    assert host.inventory() == foreign and foreign != empty


def test_a_nat_that_also_serves_another_switch_is_left_and_said_why(tmp_path: Path, host: ServedSim) -> None:
    alpha, _ = _labs(tmp_path, host)
    assert run("up", str(alpha.file)).exit_code == 0
    # Someone else's switch with an address inside alpha's NAT prefix: the NAT is not alpha's alone.
    host.invoke(Invocation("New-VMSwitch", {"Name": "ops-net", "SwitchType": "Internal"}))
    host.invoke(Invocation("New-NetIPAddress", {"IPAddress": "10.10.0.200", "PrefixLength": 24,
                                                "InterfaceAlias": "vEthernet (ops-net)"}))
    (alpha.state / "journal.json").unlink()
    done = run("destroy", "--orphaned", "--host", _endpoint(host), "--yes")
    assert done.exit_code == 0, done.output
    assert "- switch qs-lab" in done.output and "- nat labctl-alpha" not in done.output
    assert "kept nat labctl-alpha (its prefix 10.10.0.0/24 also holds addresses of vEthernet (ops-net))" \
        in done.output
    after = host.inventory()
    assert "labctl-alpha" in after["nats"] and "ops-net" in after["switches"] and "10.10.0.200" in after["addresses"]


def test_ls_and_orphaned_need_a_host(tmp_path: Path) -> None:
    assert run("ls").exit_code == 2
    result = run("destroy", "--orphaned")
    assert result.exit_code == 2 and "--host" in result.output
    missing = run("ls", "--host", str(tmp_path / "nowhere" / "endpoint.json"))
    assert missing.exit_code == 4 and "no readable simulator endpoint.json" in missing.output
