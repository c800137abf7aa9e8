"""WinRM's per-user shell quota: the 31st concurrent shell of a user is refused, as on Windows."""

from __future__ import annotations

import pytest
from conftest import connect
from pypsrp.exceptions import WSManFaultError
from pypsrp.powershell import RunspacePool

from labctl.sim.server import Simulator


def test_max_shells_per_user(sim: Simulator) -> None:
    pools = [RunspacePool(connect(sim, "https-basic")) for _ in range(30)]
    try:
        for pool in pools:
            pool.open()
        with pytest.raises(WSManFaultError) as err:
            RunspacePool(connect(sim, "https-basic")).open()
        assert err.value.code == 0x803381A5
        assert "maximum number of 30 concurrent shells" in str(err.value.reason)
    finally:
        for pool in pools:
            pool.close()
    with RunspacePool(connect(sim, "https-basic")) as pool:  # closing shells frees the quota
        assert pool.state is not None


def test_active_shells_counts_clients_at_work(sim: Simulator) -> None:
    assert sim.service is not None and sim.service.active_shells(5.0) == 0
    with RunspacePool(connect(sim, "https-basic")):
        assert sim.service.active_shells(5.0) == 1
        assert sim.service.active_shells(0.0) == 0
    assert sim.service.active_shells(5.0) == 0
