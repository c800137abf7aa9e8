"""Destroy: remove exactly what this lab created, and nothing else.

Works on a half-built lab (it reads the host, not only the journal) and is idempotent: a second
run finds nothing and says so. A VM, switch or NAT is removed only when it carries this lab's
ownership tag (or, for a VM not yet tagged, lives in this lab's own folder); disks only inside
that folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labctl.engine.apply import Invoker, Progress, remove_vm
from labctl.engine.journal import Journal
from labctl.engine.plan import DesiredLab, disk_root
from labctl.hyperv import ops
from labctl.hyperv.facts import HostFacts, Ownership
from labctl.transport.base import Invocation


@dataclass
class DestroyReport:
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # same names, not ours: left alone

    @property
    def nothing_to_do(self) -> bool:
        return not self.removed


def destroy(t: Invoker, lab: DesiredLab, facts: HostFacts, journal: Journal, owner: Ownership,
            progress: Progress | None = None) -> DestroyReport:
    """Remove the lab's VMs, their disks, the lab folder, the NAT and the switch it created."""
    report = DestroyReport()
    root = disk_root(facts, lab.name, owner.lab_id)
    names = {vm.name for vm in lab.vms} | set(journal.vm_names())
    names |= {v.name for v in facts.vms if v.owner == owner}
    for name in sorted(names):
        for fact in facts.vms_named(name):
            if fact.owner is not None and fact.owner != owner:
                report.kept.append(f"vm {name} (not created by this lab)")
        if remove_vm(t, name, owner, root, journal, progress):
            report.removed.append(f"vm {name}")
    # The lab folder (its name carries the lab id): remove it once the disks are gone.
    exists = t.invoke(ops.test_path(root)).output
    if exists and exists[0] is True:
        t.invoke(Invocation("Remove-Item", {"Path": root, "Recurse": ops.SWITCH, "Force": ops.SWITCH}))
        report.removed.append(f"folder {root}")
    nat = journal.host_resource("nat")
    if nat is not None:
        name = str(nat.get("name"))
        if any(n.name == name for n in facts.nats):
            t.invoke(ops.remove_nat(name))
            report.removed.append(f"nat {name}")
        journal.forget_host("nat")
    journal.forget_host("gateway")  # the address goes with the switch's host adapter
    switch = facts.switch(lab.switch)
    if switch is not None:
        if switch.owner == owner:
            t.invoke(ops.remove_switch(switch.name))
            report.removed.append(f"switch {switch.name}")
        else:
            report.kept.append(f"switch {switch.name} (not created by this lab)")
    journal.forget_host("switch")
    for name in journal.vm_names():
        journal.forget_vm(name)
    journal.delete()
    return report

