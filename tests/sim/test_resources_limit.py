"""The limit a host's resources put on a lab's makespan (hvsim.core.resources.host_limit): per resource, the total
use of every operation that ran over the host's capacity; the chain when no resource is tighter."""

from __future__ import annotations

import pytest

from hvsim.core.clock import Duration, load_operations
from hvsim.core.resources import CPU, DISK, IOPS, NET, Capacity, ResourceBook, host_limit


def test_disk_bound_lab_is_limited_by_disk_bandwidth() -> None:
    ops = {"boot": Duration(40, {CPU: 40, DISK: 800, IOPS: 40_000}), "logon": Duration(2)}
    cap = Capacity(cpu=64, disk_mbps=100, disk_iops=400_000)
    limit, bounds = host_limit({"boot": 16, "logon": 32}, ops, cap, chain=42)
    assert bounds[DISK] == pytest.approx(16 * 800 / 100)  # 128 s: 16 boots read 12.8 GB at 100 MB/s
    assert bounds[CPU] == pytest.approx(16 * 40 / 64)
    assert bounds[IOPS] == pytest.approx(16 * 40_000 / 400_000)
    assert bounds[NET] == 0.0
    assert bounds["chain"] == 42
    assert limit == pytest.approx(128)


def test_large_host_is_limited_by_the_chain() -> None:
    ops = {"pull": Duration(60, {NET: 120, CPU: 30})}
    limit, bounds = host_limit({"pull": 4}, ops, Capacity(cpu=64, network_mbps=1000), chain=760)
    assert bounds[NET] == pytest.approx(4 * 120 / 125)  # megabits per second: 1000 Mbit/s is 125 MB/s
    assert limit == 760


def test_fractional_counts_are_factors_of_per_unit_operations() -> None:
    ops = load_operations()
    _, bounds = host_limit({"image_extract_per_gb": 2.5}, ops, Capacity(disk_mbps=1000))
    assert bounds[DISK] == pytest.approx(2.5 * ops["image_extract_per_gb"].uses[DISK] / 1000)


def test_the_limit_is_what_the_resource_book_achieves_for_saturating_work() -> None:
    """N equal operations that each alone would saturate the disk take N times as long together on the timeline;
    the bound says the same."""
    op = Duration(10, {DISK: 1000})
    cap = Capacity(disk_mbps=100)
    book = ResourceBook(cap)
    ends = [book.place(0.0, op.seconds, op.uses) for _ in range(5)]
    limit, _ = host_limit({"copy": 5}, {"copy": op}, cap, chain=10)
    assert max(ends) == pytest.approx(limit)


def test_unknown_operation_is_an_error() -> None:
    with pytest.raises(KeyError, match="unknown operation 'warp'"):
        host_limit({"warp": 1}, load_operations(), Capacity())
