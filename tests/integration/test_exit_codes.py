"""Every error class has its exit code (README: Exit codes); Ctrl-C at any point exits 130 and leaves the lab
resumable; foreign libraries' log lines never reach the user at the default level."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from killpoints import KillPoint, wait_for
from labharness import REPO, Lab, ServedSim, make_lab, run

from hvsim.core.faults import FaultRule
from labctl import errors
from labctl.cli.common import exit_code_for
from labctl.resources import resource_dir

GUEST = "Gu3st-Passw0rd!"


def _labctl(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "labctl.cli.main", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {}), "PYTHONPATH": str(REPO)})


def _every_error_class() -> list[type[errors.LabctlError]]:
    found: list[type[errors.LabctlError]] = []
    todo: list[type[errors.LabctlError]] = [errors.LabctlError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return found


def test_every_error_class_maps_to_a_documented_exit_code() -> None:
    readme = (REPO / "README.md").read_text()
    documented = {0, 1, 2, 3, 4, 5, 6, 75, 130}
    for code in documented - {0}:
        assert f"`{code}`" in readme, f"exit code {code} is not documented in the README"
    samples = {
        errors.LabFileError: 2, errors.LabUsageError: 2, errors.SecretError: 2, errors.TemplateError: 2,
        errors.PlanError: 3, errors.ConnectError: 4, errors.AuthError: 4, errors.LockError: 5,
        errors.RemoteCommandError: 6, errors.TransientError: 75, errors.AnswerLostError: 75,
        errors.StageError: 1, errors.ApplyError: 1, errors.DestroyIncompleteError: 1, errors.Interrupted: 130,
        errors.ImageError: 1,
    }
    for cls in _every_error_class():
        if cls in (errors.LabctlError, errors.TransportError) or cls.__module__ != "labctl.errors":  # bases
            continue
        assert cls in samples, f"{cls.__name__} has no exit code in this test"
    built = {
        errors.LabFileError: errors.LabFileError([]), errors.LabUsageError: errors.LabUsageError("x"),
        errors.SecretError: errors.SecretError("x"), errors.TemplateError: errors.TemplateError("x", template="t"),
        errors.PlanError: errors.PlanError("x", check="c"), errors.ConnectError: errors.ConnectError("x", endpoint="e"),
        errors.AuthError: errors.AuthError("x", endpoint="e", username="u"),
        errors.LockError: errors.LockError("x", lock_path="p"),
        errors.RemoteCommandError: errors.RemoteCommandError("x", command="c", fqid="f"),
        errors.TransientError: errors.TransientError("x", endpoint="e", attempts=1, seconds=1, last="l"),
        errors.AnswerLostError: errors.AnswerLostError("x", endpoint="e", attempts=1, seconds=1, last="l"),
        errors.StageError: errors.StageError("x", vm="v", stage="s"), errors.ApplyError: errors.ApplyError({}),
        errors.DestroyIncompleteError: errors.DestroyIncompleteError(["x"]),
        errors.ImageError: errors.ImageError("x", image="i", stage="apply"),
        errors.Interrupted: errors.Interrupted("x"),
    }
    for cls, code in samples.items():
        assert exit_code_for(built[cls]) == code, cls.__name__


def test_a_missing_password_variable_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    served = ServedSim(tmp_path / "host")
    try:
        lab = make_lab(tmp_path, "quickstart.yaml", served.remote_lab(host_password_env="LABCTL_NOT_SET_HOST_PW"))
        result = run("up", str(lab.file), env={"LABCTL_GUEST_PASSWORD": GUEST, "LABCTL_NOT_SET_HOST_PW": ""})
        assert result.exit_code == 2, result.output
        assert "LABCTL_NOT_SET_HOST_PW" in result.output and "Traceback" not in result.output
        lab.file.write_text(served.remote_lab(guest_password_env="LABCTL_NOT_SET_GUEST_PW"))
        result = run("up", str(lab.file), env={"LABCTL_TEST_HOST_PASSWORD": served.password,
                                                "LABCTL_NOT_SET_GUEST_PW": ""})
        assert result.exit_code == 2, result.output
        assert "LABCTL_NOT_SET_GUEST_PW" in result.output
    finally:
        served.close()


def test_a_host_command_failing_outside_a_vm_stage_exits_6(quickstart: Lab, served: ServedSim) -> None:
    served.sim.faults.add(FaultRule("cmdlet_fail", match={"cmdlet": "New-VMSwitch"}, times=0, params={
        "terminating": True, "message": "Failed while adding virtual Ethernet switch connections.",
        "error_id": "CreateSwitchFailed"}))
    result = run("up", str(quickstart.file))
    assert result.exit_code == 6, result.output
    assert "Failed while adding virtual Ethernet switch connections." in result.output
    served.sim.faults.clear()
    assert run("up", str(quickstart.file)).exit_code == 0
    assert run("destroy", str(quickstart.file), "--yes").exit_code == 0


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a host hanging in the handshake)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


def _interrupt(proc: subprocess.Popen[str], within: float = 15.0) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    start = time.monotonic()
    out, err = proc.communicate(timeout=within + 5)
    assert time.monotonic() - start < within, "Ctrl-C took too long"
    return proc.returncode, out + err


def test_ctrl_c_while_connecting_exits_130_not_unreachable(tmp_path: Path, silent_server: int) -> None:
    text = (resource_dir("labs") / "quickstart.yaml").read_text().replace(
        "host: sim", f"host:\n  uri: https://127.0.0.1:{silent_server}/wsman\n  auth: ntlm\n  username: admin\n"
                     "  password_env: LABCTL_TEST_HOST_PASSWORD\n  verify: false\n")
    lab = make_lab(tmp_path, "quickstart.yaml", text + "guest_password_env: LABCTL_GUEST_PASSWORD\n")
    proc = _labctl("up", str(lab.file), env={"LABCTL_TEST_HOST_PASSWORD": "x", "LABCTL_GUEST_PASSWORD": GUEST})
    time.sleep(2.0)
    assert proc.poll() is None
    code, output = _interrupt(proc)
    assert code == 130, output
    assert "interrupted" in output and "unreachable" not in output and "cannot reach" not in output


@pytest.mark.parametrize("point", [KillPoint("host", "New-VMSwitch"),
                                   KillPoint("readiness", "Invoke-Command", "qs-node01", "probe"),
                                   KillPoint("images", "Invoke-Command", "", "image-pull")],
                         ids=lambda p: p.stage)
def test_ctrl_c_exits_130_and_the_next_up_continues(point: KillPoint, quickstart: Lab, served: ServedSim) -> None:
    served.sim.faults.add(point.rule())
    proc = _labctl("up", str(quickstart.file))
    wait_for(lambda: served.sim.faults.holding() > 0 or proc.poll() is not None, 90, point.stage)
    assert proc.poll() is None, proc.communicate()
    code, output = _interrupt(proc)
    assert code == 130, output
    assert "run the same command again to continue" in output and "Traceback" not in output
    served.sim.faults.clear()
    again = run("up", str(quickstart.file))
    assert again.exit_code == 0, again.output
    assert run("destroy", str(quickstart.file), "--yes").exit_code == 0


def test_ctrl_c_in_destroy_exits_130_and_the_next_destroy_finishes(quickstart: Lab, served: ServedSim) -> None:
    empty = served.inventory()
    assert run("up", str(quickstart.file)).exit_code == 0
    served.sim.faults.add(KillPoint("destroy", "Remove-VM", "qs-node01", when="before").rule())
    proc = _labctl("destroy", str(quickstart.file), "--yes")
    wait_for(lambda: served.sim.faults.holding() > 0 or proc.poll() is not None, 60, "Remove-VM")
    code, output = _interrupt(proc)
    assert code == 130, output
    served.sim.faults.clear()
    wait_for(lambda: served.sim.service.running_pipelines() == 0, 30, "the held call")
    again = run("destroy", str(quickstart.file), "--yes")
    assert again.exit_code == 0, again.output
    assert served.inventory() == empty


def test_foreign_log_lines_stay_hidden_by_default_and_are_scrubbed_when_debugging(tmp_path: Path) -> None:
    served = ServedSim(tmp_path / "host")
    try:
        lab = make_lab(tmp_path, "quickstart.yaml", served.remote_lab())
        env = {"LABCTL_TEST_HOST_PASSWORD": served.password, "LABCTL_GUEST_PASSWORD": GUEST}
        # An HTTP 500 with no body makes pypsrp log its own ERROR line ("Failed to parse WSManFault ...").
        served.sim.faults.add(FaultRule("http_500", match={"action": "Command"}, after=4, times=2))
        proc = _labctl("up", str(lab.file), env=env)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, out + err
        assert len(served.sim.faults.log) == 2
        assert "pypsrp" not in err and "urllib3" not in err and "ERROR" not in err, err
        assert run("destroy", str(lab.file), "--yes", env=env).exit_code == 0
        served.sim.faults.clear()
        served.sim.faults.add(FaultRule("http_500", match={"action": "Command"}, after=4, times=2))
        proc = _labctl("--log-level", "DEBUG", "up", str(lab.file), env=env)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, out + err
        assert " pypsrp." in err, "at DEBUG the foreign lines are shown"
        assert "base64 chars>" in err  # the PSRP fragments of WSMan messages, scrubbed
        for secret in (served.password, GUEST):
            assert secret not in err
    finally:
        served.close()
