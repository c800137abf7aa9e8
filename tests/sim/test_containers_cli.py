"""The docker CLI in a simulated guest (docker-cli step): the article's walkthrough, docker's texts and exit codes;
and the host file cmdlets labctl uses to stage the Docker zip (Set-Content -Encoding Byte, Get-FileHash) over the
wire."""

from __future__ import annotations

import hashlib
from typing import Any

from container_lab import NANO_2019, NANO_2022, Lab
from pypsrp.powershell import PowerShell, RunspacePool

from hvsim.docker.cli import table
from hvsim.docker.models.engine import simulated_docker_zip
from hvsim.server import Simulator

TTY = "the input device is not a TTY.  If you are using mintty, try prefixing the command with 'winpty'"


def _ok(res: Any) -> list[str]:
    assert res.get("ExitCode") == 0, res.get("Error")
    return list(res.get("Output"))


def test_docker_cli_walkthrough() -> None:
    lab = Lab()
    lab.vm("h1")
    lab.container_host("h1")
    # -it needs a console: PowerShell Direct gives docker a redirected stdin, as the real client says.
    tty = lab.docker("h1", "run", "-it", "--rm", NANO_2022, "cmd")
    assert (tty.get("ExitCode"), tty.get("Error")) == (1, [TTY])
    first = lab.docker("h1", "run", "-i", "--rm", NANO_2022, "cmd", "/c", "ver")
    assert _ok(first) == ["", "Microsoft Windows [Version 10.0.20348.2849]"]  # only the container's output
    assert first.get("Error")[:2] == [f"Unable to find image '{NANO_2022}' locally",
                                      "ltsc2022: Pulling from windows/nanoserver"]  # the pull goes to stderr
    cid = _ok(lab.docker("h1", "run", "-d", "--name", "web", NANO_2022, "ping", "-t", "localhost"))[-1]
    assert len(cid) == 64
    _ok(lab.docker("h1", "run", "--name", "once", NANO_2022, "cmd", "/c", "echo hi"))
    conflict = lab.docker("h1", "run", "-d", "--name", "web", NANO_2022, "cmd")
    assert conflict.get("ExitCode") == 125
    assert conflict.get("Error")[0] == (f"docker: Error response from daemon: Conflict. The container name \"/web\" is "
                                        f"already in use by container \"{cid}\". You have to remove (or rename) that "
                                        f"container to be able to reuse that name.")
    ps = _ok(lab.docker("h1", "ps", "-a"))
    assert ps[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert ps[0].index("IMAGE") == 15  # tabwriter padding 3 after "CONTAINER ID"
    once, web = ps[1], ps[2]
    assert "\"cmd /c echo hi\"" in once and "Exited (0)" in once and once.endswith("once")
    assert web.startswith(cid[:12]) and "\"ping -t localhost\"" in web and "Up " in web and web.endswith("web")
    assert len(_ok(lab.docker("h1", "ps"))) == 2  # running only
    assert _ok(lab.docker("h1", "logs", "once")) == ["hi"]
    assert _ok(lab.docker("h1", "logs", "web"))[0] == "Pinging localhost [::1] with 32 bytes of data:"
    assert _ok(lab.docker("h1", "exec", "web", "cmd", "/c", "ver"))[-1] == "Microsoft Windows [Version 10.0.20348.2849]"
    assert _ok(lab.docker("h1", "exec", "web", "hostname")) == [cid[:12]]
    stopped = lab.docker("h1", "exec", "once", "hostname")
    assert stopped.get("ExitCode") == 1 and "is not running" in stopped.get("Error")[0]
    running = lab.docker("h1", "commit", "web", "myweb:v1")
    assert running.get("Error") == ["Error response from daemon: windows does not support commit of a running "
                                    "container"]
    assert _ok(lab.docker("h1", "stop", "web")) == ["web"]
    new_id = _ok(lab.docker("h1", "commit", "web", "myweb:v1"))[0]
    assert new_id.startswith("sha256:")
    images = _ok(lab.docker("h1", "images"))
    assert images[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(line.startswith("myweb ") and "v1" in line and "301MB" in line for line in images)
    assert any("mcr.microsoft.com/windows/nanoserver" in line and "297MB" in line for line in images)
    in_use = lab.docker("h1", "rmi", NANO_2022)
    assert in_use.get("ExitCode") == 1
    assert "conflict: unable to remove repository reference" in in_use.get("Error")[0]
    rm_running = lab.docker("h1", "start", "web")
    assert _ok(rm_running) == ["web"]
    refused = lab.docker("h1", "rm", "web")
    assert refused.get("Error") == ["Error response from daemon: cannot remove container \"/web\": container is "
                                    "running: stop the container before removing or force remove"]
    assert _ok(lab.docker("h1", "rm", "-f", "web", "once")) == ["web", "once"]
    assert _ok(lab.docker("h1", "rmi", "myweb:v1"))[0] == "Untagged: myweb:v1"
    gone = lab.docker("h1", "rmi", "myweb:v1")
    assert gone.get("Error") == ["Error response from daemon: No such image: myweb:v1"]
    search = _ok(lab.docker("h1", "search", "microsoft/windows"))
    assert search[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
    assert any(line.startswith("microsoft/windows-nanoserver") for line in search)
    nets = _ok(lab.docker("h1", "network", "ls"))
    assert [line.split()[1:] for line in nets[1:]] == [["nat", "nat", "local"], ["none", "null", "local"]]
    inspect = "\n".join(_ok(lab.docker("h1", "network", "inspect", "nat")))
    assert '"Subnet": "172.30.16.0/20"' in inspect and '"Gateway": "172.30.16.1"' in inspect
    info = _ok(lab.docker("h1", "info"))
    assert " Default Isolation: process" in info and " OSType: windows" in info
    unknown = lab.docker("h1", "run", "--bogus", NANO_2019)
    assert (unknown.get("ExitCode"), unknown.get("Error")) == (125, ["unknown flag: --bogus",
                                                                     "See 'docker run --help'."])
    # A flag real docker has but the simulator does not model is said to be that, never "unknown".
    for args in (("ps", "--format", "{{.Names}}"), ("ps", "-s"), ("run", "--mount=type=bind", NANO_2019)):
        real = lab.docker("h1", *args)
        assert real.get("ExitCode") == 1, args
        assert "not modelled by the simulator" in real.get("Error")[0] and "unknown" not in real.get("Error")[0]
    missing = lab.docker("h1", "attach", "nosuch")
    assert missing.get("Error") == ["Error response from daemon: No such container: nosuch"]


def test_default_isolation_follows_daemon_json_exec_opts() -> None:
    lab = Lab()
    lab.vm("h1")
    lab.container_host("h1", daemon_json='{"exec-opts": ["isolation=hyperv"]}')
    out = _ok(lab.docker("h1", "run", "--rm", NANO_2019, "cmd", "/c", "ver"))
    assert out[-1] == "Microsoft Windows [Version 10.0.17763.6532]"  # hyperv by default: the image's kernel


def test_table_layout_matches_dockers_tabwriter() -> None:
    assert table(["A", "LONGER HEADER"], [["x", "y"]]) == ["A         LONGER HEADER", "x         y"]


# --- host files over the wire --------------------------------------------------------------------------------


def _run(pool: RunspacePool, name: str, **params: Any) -> PowerShell:
    ps = PowerShell(pool)
    ps.add_cmdlet(name)
    for k, v in params.items():
        ps.add_parameter(k, v)
    ps.invoke()
    return ps


def test_the_docker_zip_uploads_in_byte_chunks_and_hashes(sim: Simulator, pool: RunspacePool) -> None:
    data = simulated_docker_zip("27.3.1") * 3  # a few chunks' worth
    path = "C:\\Users\\Administrator\\Documents\\docker-27.3.1.zip"
    step = 1000
    for i in range(0, len(data), step):
        cmd = "Set-Content" if i == 0 else "Add-Content"
        ps = _run(pool, cmd, Path=path, Value=data[i:i + step], Encoding="Byte")
        assert not ps.had_errors, [str(e) for e in ps.streams.error]
    ps = _run(pool, "Get-FileHash", Path=path)
    assert not ps.had_errors, [str(e) for e in ps.streams.error]
    (obj,) = ps.output
    assert obj.types[0] == "Microsoft.Powershell.Utility.FileHash"  # pypsrp keeps the wire type names
    props = {**obj.adapted_properties, **obj.extended_properties}
    assert props == {"Algorithm": "SHA256", "Hash": hashlib.sha256(data).hexdigest().upper(), "Path": path}
    md5 = _run(pool, "Get-FileHash", Path=path, Algorithm="MD5").output[0]
    assert md5.extended_properties["Hash"] == hashlib.md5(data).hexdigest().upper()
    missing = _run(pool, "Get-FileHash", Path="C:\\nope.zip")
    err = missing.streams.error[0]
    assert err.exception is not None
    assert err.exception.adapted_properties["Message"] == "Cannot find path 'C:\\nope.zip' because it does not exist."
    assert err.fq_error == "PathNotFound,Microsoft.PowerShell.Commands.ResolvePathCommand"


def test_simulated_docker_zip_is_deterministic_and_says_so() -> None:
    import io
    import zipfile

    a, b = simulated_docker_zip("27.3.1"), simulated_docker_zip("27.3.1")
    assert a == b and a != simulated_docker_zip("27.4.0")
    with zipfile.ZipFile(io.BytesIO(a)) as zf:
        assert sorted(zf.namelist()) == ["docker/docker.exe", "docker/dockerd.exe"]
        assert b"SIMULATED" in zf.read("docker/dockerd.exe") and b"27.3.1" in zf.read("docker/dockerd.exe")


def test_commands_inside_containers_missing_or_not_modelled() -> None:
    lab = Lab()
    lab.vm("h1")
    lab.container_host("h1")
    lab.docker("h1", "pull", NANO_2022)
    nano_ps = lab.docker("h1", "run", "--rm", NANO_2022, "powershell", "-Command", "Get-Date")
    assert nano_ps.get("ExitCode") == 127  # Nano Server has no Windows PowerShell
    # Docker 25+ (hcsshim 0.11) names the command line after the operation (docker/cli#6347).
    assert nano_ps.get("Error")[-1].endswith("encountered an error during hcs::System::CreateProcess: powershell "
                                             "-Command Get-Date: failure in a Windows system call: The system cannot "
                                             "find the file specified. (0x2).")
    other = lab.docker("h1", "run", "--rm", NANO_2022, "netstat", "-an")
    assert other.get("ExitCode") == 125
    assert other.get("Error")[-1].startswith("The simulated container does not model the command: netstat -an.")
    assert _ok(lab.docker("h1", "ps", "-a"))[1:] == []
