"""labctl ls's pure core: labs grouped from ownership tags, the NetNat verdict, CreationTime, journal ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from labctl.app.inventory import find_journals
from labctl.engine.inventory import labs_on_host, orphan_nat, orphans
from labctl.engine.journal import Journal
from labctl.hyperv.facts import HostFacts, NatFact, Ownership, SwitchFact, VmFact, parse_vm
from labctl.transport.base import RemoteObject

GiB = 1024**3
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ROOT = r"D:\VHD\labctl"


def vm(name: str, owner: Ownership | None, state: str = "Running", memory: int = 4 * GiB,
       created: datetime | None = T0) -> VmFact:
    return VmFact(name=name, id=f"id-{name}", state=state, heartbeat=None, status=None,
                  notes=owner.tag() if owner else "someone else's", memory_startup=memory, dynamic_memory=False,
                  processor_count=2, generation=2, uptime_seconds=0.0, created=created)


def facts() -> HostFacts:
    a = Ownership("alpha", "aaaa00000001")
    c1, c2 = Ownership("class", "cccc00000001", 1), Ownership("class", "cccc00000002", 2)
    return HostFacts(vhd_path=r"D:\VHD", vms=[
        vm("a-dc01", a, created=T0 + timedelta(hours=1)), vm("a-node01", a, state="Off", created=T0),
        vm("c1-vm", c1, memory=2 * GiB), vm("c2-vm", c2, memory=2 * GiB, state="Saved"),
        vm("build01", None),
    ], switches=[
        SwitchFact("a-lab", "Internal", a.tag()), SwitchFact("c1-lab", "Internal", c1.tag()),
        SwitchFact("c2-lab", "Internal", c2.tag()), SwitchFact("ops", "Internal", "labctl-owned lab=x"),
        SwitchFact("gone-lab", "Internal", Ownership("gone", "dddd00000001").tag()),
    ], nats=[NatFact("labctl-alpha", "10.10.0.0/24"), NatFact("labctl-class", "10.50.0.0/16")])


def test_labs_are_grouped_by_name_and_lab_id_from_their_tags_only() -> None:
    files = [(ROOT + r"\alpha-aaaa00000001\a-dc01.vhdx", 3 * GiB), (ROOT + r"\alpha-aaaa00000001\docker.zip", 100),
             (ROOT + r"\alpha-aaaa000000019\x.vhdx", 7 * GiB), (ROOT + r"\class-cccc00000002\c2-vm.vhdx", GiB)]
    labs = labs_on_host(facts(), files, {"aaaa00000001": "/labs/.labctl/alpha/journal.json",
                                         "cccc00000001": "/labs/.labctl/class/copy-1/journal.json"})
    by = {lab.lab: lab for lab in labs}
    assert list(by) == ["alpha", "class", "gone"]  # untagged VM and the look-alike switch make no lab
    alpha = by["alpha"]
    assert alpha.lab_ids == ("aaaa00000001",) and alpha.copies == ()
    assert [v.name for v in alpha.vms] == ["a-dc01", "a-node01"] and alpha.states == {"Running": 1, "Off": 1}
    assert alpha.memory_bytes == 8 * GiB and alpha.disk_bytes == 3 * GiB + 100  # not the neighbour folder's file
    assert alpha.created == T0 and alpha.age_seconds(T0 + timedelta(days=2)) == 2 * 86400
    assert alpha.age_seconds(T0 - timedelta(seconds=5)) == 0.0  # host clock ahead: never negative
    assert alpha.journal == "at hand" and alpha.instances[0].switches == ("a-lab",)
    klass = by["class"]
    assert klass.copies == (1, 2) and klass.memory_bytes == 4 * GiB and klass.disk_bytes == GiB
    assert klass.journal == "partly" and [i.orphaned for i in klass.instances] == [False, True]
    gone = by["gone"]
    assert gone.vms == () and gone.instances[0].switches == ("gone-lab",) and gone.created is None
    assert [i.lab_id for i in orphans(labs)] == ["cccc00000002", "dddd00000001"]
    doc = klass.to_json(T0)
    assert doc["copies"] == [1, 2] and doc["instances"][1]["journal"] is None and doc["vm_count"] == 2


def test_no_tag_no_lab() -> None:
    f = HostFacts(vms=[vm("build01", None)], switches=[SwitchFact("ops", "Internal", "")])
    assert labs_on_host(f, [], {}) == []


def test_the_nat_goes_only_when_its_prefix_holds_only_addresses_of_the_switches_removed() -> None:
    f = facts()
    ok = orphan_nat("alpha", f, [("10.10.0.1", "vEthernet (a-lab)"), ("192.168.1.5", "Ethernet")], ["a-lab"])
    assert ok.remove and ok.nat == NatFact("labctl-alpha", "10.10.0.0/24")
    shared = orphan_nat("class", f, [("10.50.1.1", "vEthernet (c1-lab)"), ("10.50.2.1", "vEthernet (c2-lab)")],
                        ["c2-lab"])
    assert not shared.remove and "vEthernet (c1-lab)" in shared.why_kept
    loose = orphan_nat("alpha", f, [("192.168.1.5", "Ethernet")], ["a-lab"])
    assert not loose.remove and "nothing ties it" in loose.why_kept
    assert orphan_nat("beta", f, [], ["b-lab"]).nat is None


def test_creation_time_is_read_as_cli_xml_gives_it() -> None:
    def created(value: object) -> datetime | None:
        return parse_vm(RemoteObject(["Microsoft.HyperV.PowerShell.VirtualMachine"],
                                     {"Name": "v", "CreationTime": value})).created

    assert created("2026-12-01T09:00:00.1234567+01:00") == datetime(2026, 12, 1, 8, 0, 0, 123456, tzinfo=UTC)
    assert created("2026-12-01T08:00:00Z") == T0
    assert created("2026-12-01T08:00:00") == T0  # Unspecified kind: taken as UTC
    assert created(T0) == T0
    assert created(None) is None and created("yesterday") is None


def test_journals_are_found_for_labs_and_copies_by_lab_id(tmp_path: Path) -> None:
    state = tmp_path / ".labctl"
    for rel, lab_id in (("alpha/journal.json", "aaaa00000001"), ("class/copy-1/journal.json", "cccc00000001"),
                        ("class/copy-2/journal.json", "cccc00000002")):
        (state / rel).parent.mkdir(parents=True, exist_ok=True)
        (state / rel).write_text(json.dumps({"lab": "x", "lab_id": lab_id}))
    (state / "broken").mkdir()
    (state / "broken" / "journal.json").write_text("{not json")
    (state / "alpha" / "sim").mkdir()
    (state / "alpha" / "sim" / "journal.json").write_text(json.dumps({"lab_id": "not-a-lab-journal-place"}))
    found = find_journals([tmp_path])
    assert found == {"aaaa00000001": state / "alpha/journal.json",
                     "cccc00000001": state / "class/copy-1/journal.json",
                     "cccc00000002": state / "class/copy-2/journal.json"}
    assert Journal.read_lab_id(state / "broken" / "journal.json") is None
    assert Journal.read_lab_id(tmp_path / "missing.json") is None
