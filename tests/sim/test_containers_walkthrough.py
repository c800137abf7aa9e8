"""The original article's walkthrough in a simulated container host, checked the way its reader checks it.

Through the docker-cli step (what `labctl docker` runs): images, an interactive Server Core container, ipconfig /
hostname / whoami / Get-Process / Get-NetIPAddress inside it, start + attach, ps, rm, run --rm, search, pull of an
image built on Server Core, commit, a run of the committed image, rmi; and docker's refusals on the way.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from container_lab import NANO_2022, Lab

from hvsim.docker.models import registry as R
from labctl.app.guest import without_tty

SC = "mcr.microsoft.com/windows/servercore:ltsc2022"
IIS = "mcr.microsoft.com/windows/servercore/iis"


def _ok(res: Any) -> list[str]:
    assert res.get("ExitCode") == 0, (res.get("Output"), res.get("Error"))
    return list(res.get("Output") or [])


def _nat(lab: Lab, vm: str) -> tuple[ipaddress.IPv4Network, str]:
    """The nat network's subnet and gateway, as `docker network inspect nat` reports them."""
    doc = json.loads("\n".join(_ok(lab.docker(vm, "network", "inspect", "nat"))))
    config = doc[0]["IPAM"]["Config"][0]
    return ipaddress.ip_network(config["Subnet"]), config["Gateway"]


def _field(lines: list[str], label: str) -> str:
    """An ipconfig value: "   IPv4 Address. . . : 172.30.16.2" -> "172.30.16.2"."""
    line = next(x for x in lines if x.strip().startswith(label))
    return line.split(" : ", 1)[1].strip()


def _ids(lab: Lab, vm: str) -> list[str]:
    return _ok(lab.docker(vm, "ps", "-a", "-q", "--no-trunc"))


def test_the_articles_walkthrough_through_labctl_docker() -> None:
    lab = Lab()
    lab.vm("h1")
    lab.container_host("h1")
    assert _ok(lab.docker("h1", "images")) == ["REPOSITORY   TAG       IMAGE ID   CREATED   SIZE"]

    # `labctl docker LAB h1 -- run -it --name dockerdemo ... powershell.exe`: labctl drops -t (no terminal over
    # PowerShell Direct); the shell reads the empty stdin and exits, as powershell.exe does at end of input.
    words, dropped = without_tty(["run", "-it", "--name", "dockerdemo", SC, "powershell.exe"])
    assert dropped and words == ["run", "-i", "--name", "dockerdemo", SC, "powershell.exe"]
    first = lab.docker("h1", *words)
    assert _ok(first)[0] == "Windows PowerShell"
    assert first.get("Error")[0] == f"Unable to find image '{SC}' locally"  # the pull's progress is stderr's
    (cid,) = _ids(lab, "h1")

    # docker start: the container was created with -i, its stdin stays open with no one writing: the shell waits.
    assert _ok(lab.docker("h1", "start", "dockerdemo")) == ["dockerdemo"]
    assert "Up " in _ok(lab.docker("h1", "ps"))[1]

    # Inside the container: its own address on the nat network, the container host as its default gateway.
    subnet, gateway = _nat(lab, "h1")
    ipconfig = _ok(lab.docker("h1", "exec", "dockerdemo", "ipconfig"))
    assert ipconfig[1] == "Windows IP Configuration"
    assert "Ethernet adapter vEthernet (Ethernet):" in ipconfig
    ip = _field(ipconfig, "IPv4 Address")
    assert ipaddress.ip_address(ip) in subnet and ip != gateway
    assert _field(ipconfig, "Subnet Mask") == str(subnet.netmask)
    assert _field(ipconfig, "Default Gateway") == gateway == str(subnet.network_address + 1)
    assert re.fullmatch(r"fe80::[0-9a-f:]+%\d+", _field(ipconfig, "Link-local IPv6 Address"))
    assert _ok(lab.docker("h1", "exec", "dockerdemo", "hostname")) == [cid[:12]]
    assert _ok(lab.docker("h1", "exec", "dockerdemo", "whoami")) == ["user manager\\containeradministrator"]
    assert _ok(lab.docker("h1", "exec", "dockerdemo", "cmd", "/c", "hostname")) == [cid[:12]]

    procs = _ok(lab.docker("h1", "exec", "dockerdemo", "powershell", "Get-Process"))
    assert procs[1] == "Handles  NPM(K)    PM(K)      WS(K)     CPU(s)     Id  SI ProcessName"
    assert procs[2] == "-------  ------    -----      -----     ------     --  -- -----------"
    names = [line.split()[-1] for line in procs[3:] if line.strip()]
    assert names == sorted(names, key=str.lower)
    for name in ("CExecSvc", "csrss", "lsass", "powershell", "services", "smss", "svchost", "wininit"):
        assert name in names, name
    assert names.count("powershell") == 2  # the waiting shell and the one answering exec
    pids = [int(line.split()[5]) for line in procs[3:] if line.strip()]
    assert len(set(pids)) == len(pids) and all(pid % 4 == 0 for pid in pids)

    addresses = _ok(lab.docker("h1", "exec", "dockerdemo", "powershell", "-Command", "Get-NetIPAddress"))
    assert f"IPAddress         : {ip}" in addresses
    assert "InterfaceAlias    : vEthernet (Ethernet)" in addresses
    assert f"PrefixLength      : {subnet.prefixlen}" in addresses
    v4 = _ok(lab.docker("h1", "exec", "dockerdemo", "powershell", "Get-NetIPAddress", "-AddressFamily", "IPv4"))
    assert [x.split(" : ")[1] for x in v4 if x.startswith("IPAddress")] == [ip, "127.0.0.1"]

    # docker attach: the client's stdin (empty) closes the shell's, which exits 0.
    assert _ok(lab.docker("h1", "attach", "dockerdemo")) == []
    assert "Exited (0)" in _ok(lab.docker("h1", "ps", "-a"))[1]
    assert _ok(lab.docker("h1", "rm", "dockerdemo")) == ["dockerdemo"]

    # run --rm: the container is gone afterwards; each container has its own host name.
    once = _ok(lab.docker("h1", "run", "--rm", SC, "hostname"))
    assert re.fullmatch(r"[0-9a-f]{12}", once[0]) and once[0] != cid[:12]
    assert _ids(lab, "h1") == []

    search = _ok(lab.docker("h1", "search", "Microsoft"))
    assert search[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"] and len(search) > 3
    assert all("microsoft" in line.lower() for line in search[1:])


def test_an_image_built_on_servercore_downloads_only_its_own_layers() -> None:
    lab = Lab()
    lab.vm("h1")
    lab.container_host("h1")
    _ok(lab.docker("h1", "pull", SC))
    before = lab.world.counters.get("registry:bytes")
    pulled = _ok(lab.docker("h1", "pull", IIS))
    assert pulled[0] == "Using default tag: latest" and pulled[-1] == f"{IIS}:latest"
    shared = [line for line in pulled if line.endswith(": Already exists")]
    new = [line for line in pulled if line.endswith(": Pulling fs layer")]
    assert len(shared) == 2 and len(new) >= 1  # servercore's base and update layers are on the disk already
    base = R.lookup(R.SERVERCORE, "ltsc2022")
    iis = R.resolve_pull(R.IIS, "latest", 20348)
    assert base is not None and iis.os_build == 20348  # latest lists every release: the host's build is picked
    assert lab.world.counters.get("registry:bytes") - before == iis.size - base.size
    # IIS runs ServiceMonitor watching w3svc: a long-running container.
    _ok(lab.docker("h1", "run", "-d", "--name", "web", IIS))
    assert "Up " in _ok(lab.docker("h1", "ps"))[1]
    procs = _ok(lab.docker("h1", "exec", "web", "powershell", "Get-Process"))
    assert any(line.endswith(" ServiceMonitor") for line in procs)


def test_commit_then_run_the_committed_image_and_the_removal_rules() -> None:
    lab = Lab()
    lab.vm("h1")
    lab.container_host("h1")
    _ok(lab.docker("h1", "run", "-d", "-i", "--name", "demo", SC, "powershell.exe"))
    (cid,) = _ids(lab, "h1")
    # Windows commits stopped containers only; a process-isolated container cannot be paused either.
    running = lab.docker("h1", "commit", "demo", "demo-image")
    assert (running.get("ExitCode"), running.get("Error")) == (
        1, ["Error response from daemon: windows does not support commit of a running container"])
    paused = lab.docker("h1", "pause", "demo")
    assert paused.get("Error") == [f"Error response from daemon: cannot pause container {cid}: not implemented"]
    _ok(lab.docker("h1", "stop", "demo"))
    new_id = _ok(lab.docker("h1", "commit", "demo", "demo-image"))[0]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", new_id)
    inspect = json.loads("\n".join(_ok(lab.docker("h1", "image", "inspect", "demo-image"))))[0]
    assert inspect["Config"]["Cmd"] == ["powershell.exe"]  # the container's command is the image's CMD
    base_id = json.loads("\n".join(_ok(lab.docker("h1", "image", "inspect", SC))))[0]["Id"]
    assert inspect["Parent"] == base_id
    # The committed image runs (its CMD without arguments, any command with them).
    assert _ok(lab.docker("h1", "run", "--rm", "demo-image"))[0] == "Windows PowerShell"
    assert re.fullmatch(r"[0-9a-f]{12}", _ok(lab.docker("h1", "run", "--rm", "demo-image", "hostname"))[0])
    images = _ok(lab.docker("h1", "images"))
    assert any(line.startswith("demo-image ") and " latest " in line for line in images)

    # An image in use is not removed without -f: by its tag, and by its id.
    by_tag = lab.docker("h1", "rmi", SC)
    assert by_tag.get("ExitCode") == 1
    assert by_tag.get("Error") == [f"Error response from daemon: conflict: unable to remove repository reference "
                                   f"\"{SC}\" (must force) - container {cid[:12]} is using its referenced image "
                                   f"{base_id[7:19]}"]
    by_id = lab.docker("h1", "rmi", base_id[7:19])
    # The committed child is the first (hard) conflict: -f does not help.
    assert by_id.get("Error") == [f"Error response from daemon: conflict: unable to delete {base_id[7:19]} (cannot "
                                  f"be forced) - image has dependent child images"]
    assert lab.docker("h1", "rmi", "-f", base_id[7:19]).get("Error") == by_id.get("Error")
    _ok(lab.docker("h1", "rm", "demo"))
    # No container uses it now: removing the tag untags; the image stays as the child's parent, hidden from the
    # default listing (an intermediate image), shown with -a.
    untagged = _ok(lab.docker("h1", "rmi", SC))
    assert untagged[0] == f"Untagged: {SC}" and not any(line.startswith("Deleted:") for line in untagged)
    assert not any(base_id[7:19] in line for line in _ok(lab.docker("h1", "images"))[1:])
    assert any(line.startswith("<none> ") and base_id[7:19] in line for line in _ok(lab.docker("h1", "images", "-a")))
    # Removing the child deletes it and prunes the untagged parent with it.
    removed = _ok(lab.docker("h1", "rmi", "demo-image"))
    assert removed[:2] == ["Untagged: demo-image:latest", f"Deleted: {new_id}"]
    assert f"Deleted: {base_id}" in removed
    assert _ok(lab.docker("h1", "images")) == ["REPOSITORY   TAG       IMAGE ID   CREATED   SIZE"]
    missing = lab.docker("h1", "rmi", "demo-image", "mcr.microsoft.com/windows/nanoserver")
    assert missing.get("Error") == ["Error response from daemon: No such image: demo-image:latest",
                                    "Error response from daemon: No such image: mcr.microsoft.com/windows/"
                                    "nanoserver:latest"]
    assert lab.docker("h1", "rmi", "-f", "demo-image").get("ExitCode") == 0  # -f: a missing image is no error


def test_rmi_force_of_a_tag_a_stopped_container_uses_deletes_the_image() -> None:
    lab = Lab()
    lab.vm("h1")
    lab.container_host("h1")
    _ok(lab.docker("h1", "run", "--name", "old", NANO_2022, "cmd", "/c", "echo", "hi"))
    forced = _ok(lab.docker("h1", "rmi", "-f", NANO_2022))
    assert forced[0] == f"Untagged: {NANO_2022}" and forced[-1].startswith("Deleted: sha256:")
    # The container keeps the image's layers and still starts (docker keeps what a container uses).
    assert _ok(lab.docker("h1", "start", "old")) == ["old"]


def test_docker_refusals_are_dockers_own() -> None:
    lab = Lab()
    lab.vm("h1")
    lab.container_host("h1")
    _ok(lab.docker("h1", "pull", NANO_2022))
    bogus = lab.docker("h1", "run", "--rm", "--isolation=bogus", NANO_2022, "cmd")
    # runconfig/hostconfig_windows.go validateIsolation (Docker 17.06 to 28.x).
    assert (bogus.get("ExitCode"), bogus.get("Error")) == (125, [
        "docker: Error response from daemon: Invalid isolation: \"bogus\". Windows supports 'default', 'process', "
        "or 'hyperv'.", "See 'docker run --help'."])
    upper = lab.docker("h1", "run", "--rm", "Nanoserver")
    assert (upper.get("ExitCode"), upper.get("Error")) == (125, [
        "docker: invalid reference format: repository name (library/Nanoserver) must be lowercase.",
        "See 'docker run --help'."])
    # -d attaches nothing: no TTY check (cli/command/container/run.go); the shell waits on its open stdin.
    detached = _ok(lab.docker("h1", "run", "-dit", "--name", "bg", NANO_2022, "cmd"))
    assert re.fullmatch(r"[0-9a-f]{64}", detached[-1])
    assert "Up " in _ok(lab.docker("h1", "ps"))[1]
    tty = lab.docker("h1", "attach", "bg")
    assert tty.get("Error") == ["the input device is not a TTY.  If you are using mintty, try prefixing the command "
                                "with 'winpty'"]
    # rm -f of a missing container: reported on stderr, not an error (cli/command/container/rm.go).
    rm = lab.docker("h1", "rm", "-f", "nosuch", "bg")
    assert (rm.get("ExitCode"), rm.get("Output"), rm.get("Error")) == (
        0, ["bg"], ["Error response from daemon: No such container: nosuch"])
    rm = lab.docker("h1", "rm", "nosuch")
    assert (rm.get("ExitCode"), rm.get("Error")) == (1, ["Error response from daemon: No such container: nosuch"])


def test_entrypoint_is_honoured() -> None:
    lab = Lab()
    lab.vm("h1")
    lab.container_host("h1")
    ran = _ok(lab.docker("h1", "run", "--rm", "--entrypoint", "cmd.exe", NANO_2022, "/c", "echo", "hi"))
    assert ran == ["hi"]
    missing = lab.docker("h1", "run", "--rm", "--entrypoint", "powershell", NANO_2022, "-Command", "Get-Date")
    assert missing.get("ExitCode") == 127  # runStartContainerErr: "cannot find the file specified"
    line = missing.get("Error")[-1]
    assert re.fullmatch(r"docker: Error response from daemon: container [0-9a-f]{64} encountered an error during "
                        r"hcs::System::CreateProcess: powershell -Command Get-Date: failure in a Windows system "
                        r"call: The system cannot find the file specified\. \(0x2\)\.", line)
    assert _ids(lab, "h1") == []


def test_hcs_texts_follow_the_engine_version_and_the_hypervisor() -> None:
    lab = Lab()
    vm = lab.vm("h1")
    lab.container_host("h1", version="20.10.17")
    _ok(lab.docker("h1", "pull", "mcr.microsoft.com/windows/nanoserver:ltsc2019"))
    old = lab.docker("h1", "run", "--rm", "mcr.microsoft.com/windows/nanoserver:ltsc2019", "cmd")
    # Docker 20.10's hcsshim names the operation hcsshim::CreateComputeSystem (23.0 and later: hcs::...).
    assert re.fullmatch(r"docker: Error response from daemon: hcsshim::CreateComputeSystem [0-9a-f]{64}: The "
                        r"container operating system does not match the host operating system\.",
                        old.get("Error")[-1])
    # Hyper-V installed, no hypervisor running (the VM's extensions turned off): HCS's text and event.
    lab.world.hv.stop(vm, force=True)
    vm.expose_virtualization_extensions = False
    lab.world.hv.start(vm)
    lab.wait_ready(vm)
    refused = lab.docker("h1", "run", "--rm", "--isolation=hyperv", NANO_2022, "cmd", "/c", "ver")
    assert refused.get("ExitCode") == 125
    first, event = refused.get("Error")[-2:]
    m = re.fullmatch(r"docker: Error response from daemon: hcsshim::CreateComputeSystem ([0-9a-f]{64}): No "
                     r"hypervisor is present on this system\.", first)
    assert m, first
    assert event == (f"[Event Detail: Cannot start Hyper-V Container '{m.group(1)}' since the hypervisor is not "
                     f"running in the host. Provider: 17103e3f-3c6e-4677-bb17-3b267eb5be57 EventID: 12001].")


def test_a_hyperv_container_pauses_but_is_not_committed() -> None:
    lab = Lab()
    lab.vm("h1")
    lab.container_host("h1")
    _ok(lab.docker("h1", "run", "-d", "--isolation=hyperv", "--name", "uvm", NANO_2022, "ping", "-t", "localhost"))
    assert _ok(lab.docker("h1", "pause", "uvm")) == ["uvm"]
    assert "(Paused)" in _ok(lab.docker("h1", "ps"))[1]
    refused = lab.docker("h1", "commit", "uvm")
    assert refused.get("Error") == ["Error response from daemon: windows does not support commit of a running "
                                    "container"]
    assert _ok(lab.docker("h1", "unpause", "uvm")) == ["uvm"]
    again = lab.docker("h1", "unpause", "uvm")
    assert again.get("ExitCode") == 1 and again.get("Error")[0].endswith(" is not paused")


def test_connect_errors_as_each_client_prints_them() -> None:
    for version, ps, run in (
            # 26.0+: the client keeps its API version; create insists on the version ping first.
            ("27.3.1", 'this error may indicate that the docker daemon is not running: Get "http://%2F%2F.%2Fpipe'
                       '%2Fdocker_engine/v1.47/containers/json?all=1"',
             'this error may indicate that the docker daemon is not running: Head "http://%2F%2F.%2Fpipe'
             '%2Fdocker_engine/_ping"'),
            # 23.0-25.0: a failed negotiation falls back to API 1.24.
            ("24.0.7", 'this error may indicate that the docker daemon is not running: Get "http://%2F%2F.%2Fpipe'
                       '%2Fdocker_engine/v1.24/containers/json?all=1"',
             'this error may indicate that the docker daemon is not running: Post "http://%2F%2F.%2Fpipe'
             '%2Fdocker_engine/v1.24/containers/create?name=x"'),
            ("20.10.17", 'This error may indicate that the docker daemon is not running.: Get "http://%2F%2F.%2Fpipe'
                         '%2Fdocker_engine/v1.24/containers/json?all=1"',
             'This error may indicate that the docker daemon is not running.: Post "http://%2F%2F.%2Fpipe'
             '%2Fdocker_engine/v1.24/containers/create?name=x"')):
        lab = Lab()
        vm = lab.vm("h1")
        lab.container_host("h1", version=version)
        vm.guest.container_host.docker.status = "Stopped"
        tail = ": open //./pipe/docker_engine: The system cannot find the file specified."
        listed = lab.docker("h1", "ps", "-a")
        assert (listed.get("ExitCode"), listed.get("Error")) == (1, [f"error during connect: {ps}{tail}"]), version
        created = lab.docker("h1", "run", "--name", "x", NANO_2022)
        assert (created.get("ExitCode"), created.get("Error")) == (
            125, [f"docker: error during connect: {run}{tail}", "See 'docker run --help'."]), version
        info = lab.docker("h1", "info")
        assert info.get("Output")[-1] == "Server:" and info.get("Error")[-1] == "errors pretty printing info"


def test_docker_info_reports_the_os_as_windows_does() -> None:
    lab = Lab()
    lab.vm("h1")
    lab.container_host("h1")
    info = _ok(lab.docker("h1", "info"))
    # moby pkg/parsers/operatingsystem: "Microsoft Windows Server Version <DisplayVersion> (OS Build <build>.<UBR>)".
    assert " Operating System: Microsoft Windows Server Version 21H2 (OS Build 20348.2849)" in info
    assert info[info.index(" Storage Driver: windowsfilter") + 1] == "  Windows: "
    assert info[info.index(" Insecure Registries:") + 1:info.index(" Live Restore Enabled: false")] == ["  127.0.0.0/8"]
