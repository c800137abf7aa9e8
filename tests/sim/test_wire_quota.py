"""WinRM's per-user shell quota: the 31st concurrent shell of a user is refused, as on Windows."""

from __future__ import annotations

import pytest
from pypsrp.exceptions import WSManFaultError
from pypsrp.powershell import RunspacePool
from simwire import connect

from hvsim.server import Simulator


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


def test_shell_activity_lists_clients_at_work(sim: Simulator) -> None:
    """What the control endpoint's GET /shells serves (labctl counts the shells still in use from it)."""
    assert sim.shells() == []
    with RunspacePool(connect(sim, "https-basic")):
        [shell] = sim.shells()
        assert 0 <= shell["idle_seconds"] < 5.0
    assert sim.shells() == []


def test_control_endpoint_reports_open_shells_over_https(sim: Simulator) -> None:
    from hvsim.control import ControlClient

    control = ControlClient.from_state_dir(sim.state_dir)
    assert control.shells() == [] and control.active_shells(5.0) == 0
    with RunspacePool(connect(sim, "https-basic")):
        [shell] = control.shells()
        assert shell["owner"].lower().endswith(sim.username.lower().split("\\")[-1])
        assert control.active_shells(5.0) == 1 and control.active_shells(0.0) == 0
    assert control.active_shells(5.0) == 0


def test_a_shell_past_its_idle_timeout_is_gone_with_windows_fault(sim: Simulator) -> None:
    import time

    from pypsrp.powershell import PowerShell

    assert sim.service is not None
    pool = RunspacePool(connect(sim, "https-basic"), idle_timeout=60)
    pool.open()
    shells = list(sim.service._shells.values())
    assert [s.idle_timeout for s in shells] == [60.0]  # the client's IdleTimeOut, as WinRM keeps it
    shells[0].idle_timeout = 0.3  # as if the client had asked for that IdleTimeOut
    time.sleep(0.5)
    ps = PowerShell(pool)
    ps.add_cmdlet("Get-VMHost")
    with pytest.raises(WSManFaultError) as err:
        ps.invoke()
    assert err.value.code == 0x8033805B  # 2150858843, as in WinRb/WinRM#253
    assert "failed because the shell was not found on the server" in str(err.value.reason)
    assert sim.service.shell_count() == 0


def test_killed_clients_free_the_quota_when_their_shells_expire(sim: Simulator) -> None:
    import time

    assert sim.service is not None
    orphans = [RunspacePool(connect(sim, "https-basic"), idle_timeout=60) for _ in range(30)]
    for pool in orphans:
        pool.open()  # and never closed: the client "died"
    with pytest.raises(WSManFaultError):
        RunspacePool(connect(sim, "https-basic")).open()
    for shell in sim.service._shells.values():
        shell.idle_timeout = 0.2  # their IdleTimeOut runs out (60 s on a real host)
    time.sleep(0.4)
    with RunspacePool(connect(sim, "https-basic")) as pool:
        assert pool.state is not None
