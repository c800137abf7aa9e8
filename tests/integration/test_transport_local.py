"""The quickstart over the local carrier: ``host: {uri: local}`` with LABCTL_LOCAL_SERVER pointing to the
simulator's out-of-process relay (``python -m hvsim.oop --state DIR``), as powershell.exe -s on a Hyper-V host."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from labharness import ServedSim, quickstart_on, quickstart_round_trip, run


def _relay(state: Path) -> dict[str, str]:
    return {"LABCTL_LOCAL_SERVER": shlex.join([sys.executable, "-m", "hvsim.oop", "--state", str(state)])}


def test_quickstart_up_status_destroy_over_the_local_carrier(tmp_path: Path) -> None:
    lab = quickstart_on(tmp_path, "  uri: local")
    served = ServedSim(tmp_path / "host-state")
    try:
        quickstart_round_trip(lab, served, _relay(tmp_path / "host-state"))
    finally:
        served.close()


def test_a_missing_server_command_is_a_clear_connect_error(tmp_path: Path) -> None:
    lab = quickstart_on(tmp_path, "  uri: local")
    missing = str(tmp_path / "no-such-pwsh")
    res = run("status", str(lab.file), env={"LABCTL_LOCAL_SERVER": f"{missing} -s -NoLogo"})
    assert res.exit_code == 4, res.output
    assert f"cannot start the local PowerShell server: {missing} not found" in res.output
    assert "LABCTL_LOCAL_SERVER" in res.output


def test_no_simulator_behind_the_relay_says_so(tmp_path: Path) -> None:
    lab = quickstart_on(tmp_path, "  uri: local")
    empty = tmp_path / "no-sim"
    empty.mkdir()
    res = run("status", str(lab.file), env=_relay(empty))
    assert res.exit_code == 4, res.output
    assert "cannot open a PowerShell session on local" in res.output
    assert "exited with code 1" in res.output and "hvsim.oop:" in res.output
