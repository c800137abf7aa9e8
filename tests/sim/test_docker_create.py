"""docker create in a simulated guest (docker-cli step): the container is created, not started, as docker/cli's
cli/command/container/create.go (27.x) does it: the full id on stdout, a missing image pulled first (its progress on
stderr), STATUS "Created" in docker ps -a until docker start runs it; its errors printed as createContainer returns
them (no "docker: " prefix, no help line, exit 1), unlike docker run's."""

from __future__ import annotations

import re
from typing import Any

import pytest
from container_lab import NANO_2022, Lab

HEX64 = re.compile(r"^[0-9a-f]{64}$")
SERVERCORE_2022 = "mcr.microsoft.com/windows/servercore:ltsc2022"
TTY = "the input device is not a TTY.  If you are using mintty, try prefixing the command with 'winpty'"


@pytest.fixture
def lab() -> Lab:
    lab = Lab()
    lab.vm("h1")
    lab.container_host("h1")
    return lab


def _ok(res: Any) -> list[str]:
    assert res.get("ExitCode") == 0, res.get("Error")
    return list(res.get("Output"))


def _row(lab: Lab, name: str) -> str | None:
    """The docker ps -a line of the container ``name``, or None."""
    return next((line for line in _ok(lab.docker("h1", "ps", "-a"))[1:] if line.endswith(f"   {name}")), None)


def test_create_pulls_then_ps_start_logs_rm(lab: Lab) -> None:
    made = lab.docker("h1", "create", "--name", "once", NANO_2022, "cmd", "/c", "echo hi")
    out = _ok(made)
    assert len(out) == 1 and HEX64.match(out[0])  # only the full id on stdout
    cid = out[0]
    assert made.get("Error")[:2] == [f"Unable to find image '{NANO_2022}' locally",
                                     "ltsc2022: Pulling from windows/nanoserver"]  # the pull goes to stderr
    assert made.get("Error")[-1] == f"Status: Downloaded newer image for {NANO_2022}"
    row = _row(lab, "once")
    assert row is not None and row.startswith(cid[:12]) and '"cmd /c echo hi"' in row
    assert re.search(r"\s{3}Created\s{3}", row)
    assert len(_ok(lab.docker("h1", "ps"))) == 1  # not running: only the header
    assert _ok(lab.docker("h1", "logs", "once")) == []  # nothing ran yet
    assert _ok(lab.docker("h1", "start", "once")) == ["once"]
    assert _ok(lab.docker("h1", "logs", cid[:12])) == ["hi"]
    row = _row(lab, "once")
    assert row is not None and "Exited (0)" in row
    assert _ok(lab.docker("h1", "rm", "once")) == ["once"]  # a created or exited container needs no -f
    assert _row(lab, "once") is None


def test_created_container_is_removed_without_force(lab: Lab) -> None:
    cid = _ok(lab.docker("h1", "create", NANO_2022, "cmd"))[0]
    assert _ok(lab.docker("h1", "rm", cid[:12])) == [cid[:12]]
    assert _ok(lab.docker("h1", "ps", "-a", "-q")) == []


def test_started_long_running_container_shows_up_and_refuses_rm(lab: Lab) -> None:
    _ok(lab.docker("h1", "create", "--name", "web", NANO_2022, "ping", "-t", "localhost"))
    assert _ok(lab.docker("h1", "start", "web")) == ["web"]
    running = _ok(lab.docker("h1", "ps"))
    assert len(running) == 2 and "Up " in running[1] and running[1].endswith("web")
    refused = lab.docker("h1", "rm", "web")
    assert (refused.get("ExitCode"), refused.get("Error")) == (1, [
        "Error response from daemon: cannot remove container \"/web\": container is running: stop the container "
        "before removing or force remove"])


def test_create_of_a_local_image_prints_only_the_id(lab: Lab) -> None:
    _ok(lab.docker("h1", "pull", NANO_2022))
    made = lab.docker("h1", "create", NANO_2022, "cmd")
    assert HEX64.match(_ok(made)[0]) and made.get("Error") == []


def test_quiet_create_pulls_without_progress(lab: Lab) -> None:
    made = lab.docker("h1", "create", "-q", SERVERCORE_2022, "cmd")
    assert HEX64.match(_ok(made)[0]) and made.get("Error") == []
    assert any(line.startswith("mcr.microsoft.com/windows/servercore ") for line in _ok(lab.docker("h1", "images")))


def test_name_in_use_is_the_daemons_conflict_as_create_prints_it(lab: Lab) -> None:
    first = _ok(lab.docker("h1", "create", "--name", "c1", NANO_2022, "cmd"))[0]
    again = lab.docker("h1", "create", "--name", "c1", NANO_2022, "cmd")
    assert (again.get("ExitCode"), list(again.get("Output")), again.get("Error")) == (1, [], [
        f"Error response from daemon: Conflict. The container name \"/c1\" is already in use by container "
        f"\"{first}\". You have to remove (or rename) that container to be able to reuse that name."])
    assert _ok(lab.docker("h1", "ps", "-a", "-q")) == [first[:12]]
    # docker run's wording of the same conflict keeps its own prefix, period and help line.
    run = lab.docker("h1", "run", "--name", "c1", NANO_2022, "cmd")
    assert run.get("ExitCode") == 125
    assert run.get("Error") == [f"docker: {again.get('Error')[0]}", "See 'docker run --help'."]


def test_bad_reference_is_refused_before_the_daemon(lab: Lab) -> None:
    bad = lab.docker("h1", "create", "Nano:1")
    assert (bad.get("ExitCode"), list(bad.get("Output")), bad.get("Error")) == (
        1, [], ["invalid reference format: repository name (library/Nano) must be lowercase"])
    assert _ok(lab.docker("h1", "ps", "-a", "-q")) == []


def test_unknown_image_pull_error(lab: Lab) -> None:
    missing = lab.docker("h1", "create", "mcr.microsoft.com/windows/nosuchimage:ltsc2022")
    assert missing.get("ExitCode") == 1 and list(missing.get("Output")) == []
    assert missing.get("Error") == [
        "Unable to find image 'mcr.microsoft.com/windows/nosuchimage:ltsc2022' locally",
        "Error response from daemon: manifest for mcr.microsoft.com/windows/nosuchimage:ltsc2022 not found: manifest "
        "unknown: manifest tagged by \"ltsc2022\" is not found"]
    assert _ok(lab.docker("h1", "ps", "-a", "-q")) == []


def test_invalid_isolation_is_the_daemons_answer(lab: Lab) -> None:
    bad = lab.docker("h1", "create", "--isolation", "vm", NANO_2022, "cmd")
    assert (bad.get("ExitCode"), bad.get("Error")) == (1, [
        "Error response from daemon: Invalid isolation: \"vm\". Windows supports 'default', 'process', or 'hyperv'"])


def test_usage_errors_are_creates(lab: Lab) -> None:
    none = lab.docker("h1", "create")
    assert (none.get("ExitCode"), none.get("Error")) == (1, [
        "\"docker create\" requires at least 1 argument.", "See 'docker create --help'.", "",
        "Usage:  docker create [OPTIONS] IMAGE [COMMAND] [ARG...]", "", "Create a new container"])
    detach = lab.docker("h1", "create", "-d", NANO_2022)  # create has no -d: it never attaches
    assert (detach.get("ExitCode"), detach.get("Error")) == (125, ["unknown shorthand flag: 'd' in -d",
                                                                   "See 'docker create --help'."])
    restart = lab.docker("h1", "create", "--restart", "always", NANO_2022)
    assert restart.get("ExitCode") == 1 and "not modelled" in restart.get("Error")[0]


def test_container_create_alias(lab: Lab) -> None:
    cid = _ok(lab.docker("h1", "container", "create", "--name", "aliased", NANO_2022, "cmd", "/c", "ver"))[0]
    assert HEX64.match(cid)
    row = _row(lab, "aliased")
    assert row is not None and re.search(r"\s{3}Created\s{3}", row)


def test_rm_flag_removes_it_after_it_ran_once(lab: Lab) -> None:
    _ok(lab.docker("h1", "create", "--rm", "--name", "tmp", NANO_2022, "cmd", "/c", "ver"))
    assert _row(lab, "tmp") is not None  # created: kept until it has run
    assert _ok(lab.docker("h1", "start", "tmp")) == ["tmp"]
    assert _row(lab, "tmp") is None


def test_interactive_and_tty_are_recorded_for_start(lab: Lab) -> None:
    # -i keeps the container's stdin open: started without attaching, its shell waits on it and keeps running.
    _ok(lab.docker("h1", "create", "-i", "--name", "shell", NANO_2022, "cmd"))
    assert _ok(lab.docker("h1", "start", "shell")) == ["shell"]
    row = _row(lab, "shell")
    assert row is not None and "Up " in row
    # -it is accepted by create (nothing is attached); attaching it later needs the console PowerShell Direct lacks.
    _ok(lab.docker("h1", "create", "-it", "--name", "tty", NANO_2022, "cmd"))
    attached = lab.docker("h1", "start", "-ai", "tty")
    assert (attached.get("ExitCode"), attached.get("Error")) == (1, [TTY])


def test_daemon_down_is_the_connect_error_as_create_prints_it(lab: Lab) -> None:
    lab.get_vm("h1").guest.container_host.docker.status = "Stopped"
    down = lab.docker("h1", "create", "--name", "x", NANO_2022)
    assert (down.get("ExitCode"), down.get("Error")) == (1, [
        "error during connect: this error may indicate that the docker daemon is not running: Head "
        "\"http://%2F%2F.%2Fpipe%2Fdocker_engine/_ping\": open //./pipe/docker_engine: The system cannot find the "
        "file specified."])
