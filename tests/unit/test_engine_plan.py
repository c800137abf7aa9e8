"""Plan and preflight: the lab compared with host facts (pure)."""

from __future__ import annotations

from labctl.engine.plan import DesiredLab, DesiredVm, GiB, disk_root, plan, preflight
from labctl.hyperv.facts import HostFacts, NatFact, Ownership, SwitchFact, VmFact

OWNER = Ownership("qs", "abc123")
BASE = r"C:\LabBases\WS2022-Core.vhdx"


def _vm(name: str, ip: str, memory: int = 4 * GiB) -> DesiredVm:
    return DesiredVm(name=name, image="ws2022-core", base_disk=BASE, build=20348, processors=2,
                     memory=memory, mac="00-15-5D-00-00-01", ip=ip, prefix_length=24)


LAB = DesiredLab(name="qs", switch="qs-lab", subnet="10.10.0.0/24", gateway="10.10.0.1", nat=True,
                 nat_name="qs-nat", vms=(_vm("qs-dc01", "10.10.0.10"), _vm("qs-node01", "10.10.0.11")))


def _facts(**kw: object) -> HostFacts:
    facts = HostFacts(computer_name="HV01", os_build=26100, cpu_vendor="GenuineIntel", logical_processors=16,
                      memory_capacity=64 * GiB, free_memory=60 * GiB, vhd_path=r"C:\VHDs", hyperv_installed=True,
                      free_disk={"C": 200 * GiB})
    for k, v in kw.items():
        setattr(facts, k, v)
    return facts


def _fact(name: str, notes: str = "", state: str = "Running", memory: int = 4 * GiB) -> VmFact:
    return VmFact(name=name, id=name + "-id", state=state, heartbeat="OkApplicationsHealthy", status=None,
                  notes=notes, memory_startup=memory, dynamic_memory=False, processor_count=2, generation=2,
                  uptime_seconds=10)


def test_empty_host_plans_everything_as_added() -> None:
    p = plan(LAB, _facts(), OWNER, {}, base_present={BASE: True})
    assert p.refusals == []
    assert [(c.action, c.kind, c.name) for c in p.changes] == [
        ("add", "switch", "qs-lab"), ("add", "gateway", "10.10.0.1"), ("add", "nat", "qs-nat"),
        ("add", "vm", "qs-dc01"), ("add", "vm", "qs-node01")]
    assert p.disk_root == r"C:\VHDs\labctl\qs-abc123"


def test_converged_lab_is_a_noop() -> None:
    tag = OWNER.tag()
    facts = _facts(switches=[SwitchFact("qs-lab", "Internal", tag)], nats=[NatFact("qs-nat", "10.10.0.0/24")],
                   vms=[_fact("qs-dc01", tag), _fact("qs-node01", tag)])
    journal = {"vms": {"qs-dc01": {"stages": ["ready"]}, "qs-node01": {"stages": ["ready"]}}}
    p = plan(LAB, facts, OWNER, journal, base_present={BASE: True})
    assert all(c.action == "keep" for c in p.changes), p.changes


def test_foreign_switch_vm_and_overlapping_nat_are_refused() -> None:
    facts = _facts(switches=[SwitchFact("qs-lab", "Internal", "")], nats=[NatFact("other", "10.10.0.0/16")],
                   vms=[_fact("qs-dc01", "made by hand")])
    problems = preflight(LAB, facts, OWNER, {BASE: True})
    text = "\n".join(problems)
    assert "switch named 'qs-lab' exists" in text
    assert "NetNat 'other' (10.10.0.0/16) overlaps" in text
    assert "VM named 'qs-dc01' exists" in text


def test_vm_of_another_lab_is_not_ours() -> None:
    other = Ownership("qs", "zzz999").tag()
    problems = preflight(LAB, _facts(vms=[_fact("qs-dc01", other)]), OWNER, {BASE: True})
    assert any("qs-dc01" in p for p in problems)


def test_memory_disk_base_and_nested_rules() -> None:
    facts = _facts(free_memory=6 * GiB, free_disk={"C": 2 * GiB}, cpu_vendor="AuthenticAMD", os_build=17763)
    text = "\n".join(preflight(LAB, facts, OWNER, {BASE: False}))
    assert "needs 8.0 GiB of static memory" in text
    assert "GiB on C: but" in text
    assert "base disk C:\\LabBases\\WS2022-Core.vhdx (ws2022-core) is missing" in text
    assert "AuthenticAMD needs host build 20348" in text


def test_hyperv_missing_is_refused() -> None:
    assert any("Hyper-V is not installed" in p
               for p in preflight(LAB, _facts(hyperv_installed=False), OWNER, {BASE: True}))


def test_changed_sizes_and_stopped_vms_and_removed_vms() -> None:
    tag = OWNER.tag()
    facts = _facts(switches=[SwitchFact("qs-lab", "Internal", tag)], nats=[NatFact("qs-nat", "10.10.0.0/24")],
                   vms=[_fact("qs-dc01", tag, memory=8 * GiB), _fact("qs-node01", tag, state="Off"),
                        _fact("qs-old", tag), _fact("someone-else", "")])
    p = plan(LAB, facts, OWNER, {"vms": {}}, base_present={BASE: True})
    by_name = {c.name: c for c in p.changes if c.kind == "vm"}
    assert by_name["qs-dc01"].action == "change" and "memory 8 -> 4 GiB" in by_name["qs-dc01"].detail
    assert by_name["qs-node01"].action == "start"
    assert by_name["qs-old"].action == "remove"
    assert "someone-else" not in by_name


def test_disk_root_carries_the_lab_id() -> None:
    assert disk_root(_facts(vhd_path=""), "qs", "id1").endswith(r"\labctl\qs-id1")


def test_container_host_is_kept_only_when_fully_bootstrapped() -> None:
    from dataclasses import replace

    tag = OWNER.tag()
    hosts = tuple(replace(v, roles=("container-host",)) for v in LAB.vms)
    lab = replace(LAB, vms=hosts)
    facts = _facts(switches=[SwitchFact("qs-lab", "Internal", tag)], nats=[NatFact("qs-nat", "10.10.0.0/24")],
                   vms=[_fact("qs-dc01", tag), _fact("qs-node01", tag)])
    journal = {"vms": {"qs-dc01": {"stages": ["ready", "features", "docker", "images", "verify"]},
                       "qs-node01": {"stages": ["ready", "features", "docker"]}}}
    p = plan(lab, facts, OWNER, journal, base_present={BASE: True})
    vms = {c.name: c for c in p.changes if c.kind == "vm"}
    assert vms["qs-dc01"].action == "keep"
    assert vms["qs-node01"].action == "change"
    assert vms["qs-node01"].detail == "finish bring-up (container host: images, verify)"


def test_ws2016_host_with_another_nat_is_refused_later_builds_are_not() -> None:
    other = [NatFact("someone-else", "192.168.50.0/24")]
    old = plan(LAB, _facts(os_build=14393, nats=other), OWNER, {}, base_present={BASE: True})
    assert any("one NAT network per host" in r and "someone-else" in r for r in old.refusals)
    new = plan(LAB, _facts(os_build=20348, nats=other), OWNER, {}, base_present={BASE: True})
    assert not any("one NAT network" in r for r in new.refusals)
    # Its own NAT (a rerun) is no reason to refuse.
    again = plan(LAB, _facts(os_build=14393, nats=[NatFact(LAB.nat_name, LAB.subnet)]), OWNER, {},
                 base_present={BASE: True})
    assert not any("one NAT network" in r for r in again.refusals)
