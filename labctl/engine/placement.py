"""Placement of a class's copies on a pool of hosts. Pure: host facts in, an assignment or refusals out.

Each copy goes whole onto one host (its switch, NAT and PowerShell Direct are per host). Copies already
placed (the class record) stay where they are while their host is in the pool; the others go, in copy order,
to the host with the most free memory left after the copies before them, among the hosts that can hold them
(memory for the VMs to start, disk for their first boot, processors for the largest VM). Ties go to the host
listed first, so the same facts always give the same placement.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from labctl.engine.plan import FIRST_BOOT_GROWTH, HOST_RESERVE, GiB
from labctl.hyperv.facts import HostFacts


@dataclass(frozen=True)
class VmNeed:
    """One VM of a copy: its name, startup memory and virtual processors."""

    name: str
    memory: int
    processors: int


@dataclass(frozen=True)
class CopyNeed:
    """What one copy needs from a host: memory for its VMs to start, disk for their first boot, processors."""

    copy: int
    vms: tuple[VmNeed, ...]

    @property
    def memory(self) -> int:
        return sum(v.memory for v in self.vms)

    @property
    def processors(self) -> int:
        """The largest VM's virtual processors (no VM may have more than the host's logical processors)."""
        return max((v.processors for v in self.vms), default=1)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.vms)


@dataclass(frozen=True)
class HostRoom:
    """What a host has free, from its facts."""

    key: str
    free_memory: int
    free_disk: int | None  # on the drive of the lab folders; None when the host did not say
    logical_processors: int


@dataclass
class PlacementResult:
    """Copy -> host key, and why the pool cannot take the rest."""

    assignment: dict[int, str] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)  # copies recorded on a host that left the pool


def room_of(key: str, facts: HostFacts) -> HostRoom:
    """A host's free memory (less what Hyper-V keeps), free disk where labs go, and processors."""
    drive = (facts.vhd_path[:1] or "C").upper()
    return HostRoom(key, max(facts.free_memory - HOST_RESERVE, 0), facts.free_disk.get(drive),
                    facts.logical_processors)


def present_need(need: CopyNeed, facts: HostFacts, lab: str) -> CopyNeed:
    """What a copy still needs on the host it is on: its VMs already running there hold their memory."""
    running = {v.name.lower() for v in facts.vms
               if v.state == "Running" and v.owner is not None and v.owner.lab == lab}
    return CopyNeed(need.copy, tuple(v for v in need.vms if v.name.lower() not in running))


def _gib(n: int) -> str:
    return f"{n / GiB:.1f} GiB"


def place(needs: Sequence[CopyNeed], rooms: Sequence[HostRoom], recorded: Mapping[int, str],
          new_vms_on: Mapping[str, set[str]] | None = None) -> PlacementResult:
    """Assign every copy to a host, keeping recorded placements; refusals say what is missing where.

    ``new_vms_on`` maps a host key to the copies' VM names that do not exist there yet (they need disk);
    by default every VM of a copy not yet placed is new.
    """
    result = PlacementResult()
    memory = {r.key: r.free_memory for r in rooms}
    disk = {r.key: r.free_disk for r in rooms}
    lps = {r.key: r.logical_processors for r in rooms}
    order = [r.key for r in rooms]
    new_vms_on = new_vms_on or {}

    def disk_need(need: CopyNeed, key: str) -> int:
        new = new_vms_on.get(key)
        count = len(need.vms) if new is None else sum(1 for v in need.names if v.lower() in new)
        return count * FIRST_BOOT_GROWTH

    def take(key: str, need: CopyNeed) -> None:
        memory[key] -= need.memory
        free = disk[key]
        if free is not None:
            disk[key] = free - disk_need(need, key)

    def fits(key: str, need: CopyNeed) -> bool:
        free = disk[key]
        return (memory[key] >= need.memory and (free is None or free >= disk_need(need, key))
                and (not lps[key] or lps[key] >= need.processors))

    pending: list[CopyNeed] = []
    for need in needs:
        key = recorded.get(need.copy)
        if key is not None and key in memory:
            result.assignment[need.copy] = key
            take(key, need)
        else:
            if key is not None:
                result.moved.append(f"copy {need.copy} was placed on {key}, which is no longer in hosts:")
            pending.append(need)
    for need in pending:
        candidates = [k for k in order if fits(k, need)]
        if not candidates:
            result.refusals.append(_why_not(need, order, memory, disk, lps, disk_need))
            continue
        best = max(candidates, key=lambda k: (memory[k], -order.index(k)))
        result.assignment[need.copy] = best
        take(best, need)
    if result.refusals:
        unplaced = [n for n in pending if n.copy not in result.assignment]
        total_need = sum(n.memory for n in unplaced)
        largest_free = max((max(v, 0) for v in memory.values()), default=0)
        result.refusals.append(
            f"the pool cannot hold {len(unplaced)} of the {len(needs)} copies: they need {_gib(total_need)} of "
            f"memory in all (at least {_gib(max(n.memory for n in unplaced))} on one host) and the most any host has "
            f"left is {_gib(largest_free)}; add a host to hosts:, free memory on one, or lower copies:")
    return result


def _why_not(need: CopyNeed, order: list[str], memory: Mapping[str, int], disk: Mapping[str, int | None],
             lps: Mapping[str, int], disk_need: Callable[[CopyNeed, str], int]) -> str:
    parts = []
    for k in order:
        missing = []
        if memory[k] < need.memory:
            missing.append(f"{_gib(need.memory - max(memory[k], 0))} of memory missing "
                           f"({_gib(max(memory[k], 0))} free of the {_gib(need.memory)} it needs)")
        want = disk_need(need, k)
        free = disk[k]
        if free is not None and free < want:
            missing.append(f"{_gib(want - max(free, 0))} of disk missing")
        if lps[k] and lps[k] < need.processors:
            missing.append(f"a VM has {need.processors} processors, the host {lps[k]}")
        parts.append(f"{k}: " + "; ".join(missing))
    return f"copy {need.copy} ({len(need.vms)} VMs) fits on no host: " + " | ".join(parts)
