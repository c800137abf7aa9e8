"""Copies of a lab (a class) and pools of hosts: expansion, validation with lines, passwords, placement."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from labctl.app.classes import select
from labctl.engine.placement import CopyNeed, HostRoom, VmNeed, place
from labctl.errors import LabUsageError
from labctl.lab import password_problems, resolve_lab, validate_text
from labctl.lab.secrets import copy_password

WriteLab = Callable[..., Path]
GiB = 1024**3

CLASS = """name: cls
host: sim
copies: 3
network:
  subnet: 10.30.0.0/24
  copy_pool: 10.50.0.0/16
  dns: [10.30.0.10, 1.1.1.1]
vms:
  - name: dc
    ip: 10.30.0.10
    nested: false
  - name: node{n}
    count: 2
    ip: 10.30.0.11
"""


def test_copies_expand_into_isolated_units(write_lab: WriteLab) -> None:
    lab = resolve_lab(write_lab(CLASS))
    assert lab.is_class and [u.copy_number for u in lab.units] == [1, 2, 3]
    u2 = lab.unit(2)
    assert [v.name for v in u2.vms] == ["s02-dc", "s02-node1", "s02-node2"]
    assert u2.network.subnet == "10.50.1.0/24" and u2.network.gateway == "10.50.1.1"
    assert u2.network.switch == "labctl-cls-2" and u2.network.nat_prefix == "10.50.0.0/16"
    # Addresses keep their place in the subnet; a DNS server inside the lab moves with its copy.
    assert [v.ip for v in u2.vms] == ["10.50.1.10", "10.50.1.11", "10.50.1.12"]
    assert u2.vms[1].dns == ["10.50.1.10", "1.1.1.1"]
    # Every VM of the class: distinct names, IPs, MACs, and host-port indexes.
    assert len({v.name for v in lab.vms}) == len({v.ip for v in lab.vms}) == len({v.mac for v in lab.vms}) == 9
    assert [v.index for v in lab.vms] == list(range(9))
    assert Path(u2.state_dir).name == "copy-2" and Path(u2.state_dir).parent == Path(lab.state_dir)


def test_select_one_copy_and_refuse_unknown(write_lab: WriteLab) -> None:
    lab = resolve_lab(write_lab(CLASS))
    one = select(lab, 3)
    assert [v.name for v in one.vms] == ["s03-dc", "s03-node1", "s03-node2"] and len(one.units) == 1
    with pytest.raises(LabUsageError, match="there is no copy 4"):
        select(lab, 4)
    plain = resolve_lab(write_lab(CLASS.replace("copies: 3\n", "").replace("  copy_pool: 10.50.0.0/16\n", "")))
    with pytest.raises(LabUsageError, match="has no copies"):
        select(plain, 1)


@pytest.mark.parametrize(("change", "line", "text"), [
    (("copies: 3", "copies: 3\ncopy_names: \"{name}-student{copy:03d}\""), 4,
     "'node1-student001' is 16 characters; Windows computer names allow at most 15"),
    (("copies: 3", "copies: 3\ncopy_names: \"s-{name}\""), 4, "needs both {name} and {copy}"),
    (("copy_pool: 10.50.0.0/16", "copy_pool: 10.50.0.0/23"), 6, "holds 2 subnets of /24; copies: 3 needs 3"),
    (("copy_pool: 10.50.0.0/16", "copy_pool: 10.50.0.0/25"), 6, "smaller than one copy's subnet"),
    (("copy_pool: 10.50.0.0/16", "copy_pool: 172.16.0.0/16"), 6, "overlaps 172.16.0.0/12"),
    (("  copy_pool: 10.50.0.0/16\n", ""), 3, "copies needs network.copy_pool"),
    (("copies: 3", "copies: 0"), 3, "greater than or equal to 1"),
])
def test_bad_copies_are_reported_with_their_line(change: tuple[str, str], line: int, text: str) -> None:
    problems = validate_text(CLASS.replace(*change), "cls.yaml")
    assert any(p.line == line and text in p.message for p in problems), [str(p) for p in problems]


def test_pool_of_hosts_validation() -> None:
    pool = CLASS.replace("host: sim\n", "hosts:\n  - sim\n  - {uri: hv01, username: a, password_env: P}\n"
                         ) + "guest_password_env: GP\n"
    assert validate_text(pool, "p.yaml") == []
    both = pool.replace("hosts:", "host: sim\nhosts:")
    assert any("either host: (one host) or hosts:" in p.message for p in validate_text(both, "p.yaml"))
    twice = pool.replace("  - sim\n", "  - {uri: hv01, username: b, password_env: P}\n")
    assert any("hv01:5986 is already hosts[0]" in p.message for p in validate_text(twice, "p.yaml"))
    no_copies = pool.replace("copies: 3\n", "")
    assert any(p.line == 2 and "add copies: N" in p.message for p in validate_text(no_copies, "p.yaml"))


def test_pool_hosts_have_keys_and_their_own_sim_state(write_lab: WriteLab) -> None:
    lab = resolve_lab(write_lab(CLASS.replace("host: sim\n", "hosts: [sim, sim]\n")))
    assert lab.host_keys == ["sim-1", "sim-2"]
    dirs = [h.state_dir for h in lab.hosts if h.kind == "sim"]
    assert len(set(dirs)) == 2 and all(Path(d).parent == Path(lab.state_dir) for d in dirs)


def test_copy_passwords_differ_are_stable_and_meet_windows_rules() -> None:
    pw = [copy_password("Master-Passw0rd", "cls", k) for k in (1, 2, 3)]
    assert len(set(pw)) == 3 and pw[0] == copy_password("Master-Passw0rd", "cls", 1)
    assert all(not password_problems(p) and "Master" not in p for p in pw)
    assert copy_password("Other-Passw0rd", "cls", 1) != pw[0]


def _need(copy: int, *gib: int, procs: int = 2) -> CopyNeed:
    return CopyNeed(copy, tuple(VmNeed(f"s{copy}-vm{i}", g * GiB, procs) for i, g in enumerate(gib)))


def test_placement_spreads_by_free_memory_and_keeps_recorded() -> None:
    rooms = [HostRoom("a", 20 * GiB, 500 * GiB, 16), HostRoom("b", 16 * GiB, 500 * GiB, 16)]
    needs = [_need(k, 4, 4) for k in (1, 2, 3, 4)]
    first = place(needs, rooms, {})
    assert first.assignment == {1: "a", 2: "b", 3: "a", 4: "b"} and not first.refusals
    # Recorded copies stay, even where a fresh placement would choose otherwise.
    again = place(needs, rooms, {1: "b", 2: "b"})
    assert again.assignment[1] == again.assignment[2] == "b" and again.assignment[3] == "a"


def test_placement_refusal_says_what_is_missing() -> None:
    rooms = [HostRoom("a", 10 * GiB, 500 * GiB, 16), HostRoom("b", 6 * GiB, 500 * GiB, 16)]
    result = place([_need(1, 4, 4), _need(2, 4, 4)], rooms, {})
    assert result.assignment == {1: "a"}
    text = "\n".join(result.refusals)
    assert "copy 2 (2 VMs) fits on no host" in text
    assert "a: 6.0 GiB of memory missing (2.0 GiB free of the 8.0 GiB it needs)" in text
    assert "b: 2.0 GiB of memory missing" in text
    assert "they need 8.0 GiB of memory in all" in text


def test_placement_checks_disk_and_processors() -> None:
    rooms = [HostRoom("a", 64 * GiB, 5 * GiB, 16), HostRoom("b", 64 * GiB, 500 * GiB, 2)]
    result = place([_need(1, 4, 4, procs=4)], rooms, {})
    text = "\n".join(result.refusals)
    assert "a: 3.0 GiB of disk missing" in text and "b: a VM has 4 processors, the host 2" in text
