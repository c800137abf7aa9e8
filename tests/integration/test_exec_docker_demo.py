"""exec, docker and demo isolation through the CLI on the simulator, in the isolation-demo lab after `up`.

The lab (one Windows Server 2025 container host with isolation: hyperv) is brought up once for the module;
each test then drives the guest the way the original article's walkthrough does, without RDP.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from labharness import Lab, make_lab, run

from labctl.resources import resource_dir

VM = "iso-host01"
IMAGE = "mcr.microsoft.com/windows/nanoserver:ltsc2025"
OLDER = "mcr.microsoft.com/windows/nanoserver:ltsc2019"
# HCS's refusal of an image of another build under process isolation, as Docker 23+ reports it
# (microsoft/Windows-Containers#399: "hcs::CreateComputeSystem <id>: The container operating system does not ...").
MISMATCH = "The container operating system does not match the host operating system."


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    the_lab = make_lab(tmp_path_factory.mktemp("isolation"), "isolation-demo.yaml")
    up = run("up", str(the_lab.file))
    assert up.exit_code == 0, up.output
    yield the_lab
    run("destroy", str(the_lab.file), "--yes")


def _file(lab: Lab) -> str:
    return str(lab.file)


def test_docker_run_prints_the_windows_version_line(lab: Lab) -> None:
    result = run("docker", _file(lab), VM, "--", "run", "--rm", IMAGE, "cmd", "/c", "ver")
    assert result.exit_code == 0, result.output
    assert re.search(r"Microsoft Windows \[Version 10\.0\.26100\.\d+\]", result.stdout), result.stdout
    assert "simulated guest" in result.stderr  # simulated output says so (on stderr: stdout stays docker's)


def test_the_articles_run_it_works_without_a_terminal(lab: Lab) -> None:
    result = run("docker", _file(lab), VM, "--", "run", "-it", "--rm", IMAGE, "cmd", "/c", "echo", "hi")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "hi"
    assert "-t dropped" in result.stderr  # docker itself refuses -it without a terminal


def test_docker_ps_and_images_list_things(lab: Lab) -> None:
    assert run("docker", _file(lab), VM, "--", "run", "--name", "kept", IMAGE, "cmd", "/c", "echo hi").exit_code == 0
    ps = run("docker", _file(lab), VM, "--", "ps", "-a")
    assert ps.exit_code == 0, ps.output
    assert "CONTAINER ID" in ps.stdout and "kept" in ps.stdout
    images = run("docker", _file(lab), VM, "--", "images")
    assert images.exit_code == 0, images.output
    assert "REPOSITORY" in images.stdout and "nanoserver" in images.stdout and "ltsc2025" in images.stdout


def test_docker_failure_exits_with_dockers_code_and_its_error_on_stderr(lab: Lab) -> None:
    assert run("docker", _file(lab), VM, "--", "pull", OLDER).exit_code == 0
    refused = run("docker", _file(lab), VM, "--", "run", "--rm", "--isolation=process", OLDER, "cmd", "/c", "ver")
    assert refused.exit_code != 0
    assert MISMATCH in refused.stderr and MISMATCH not in refused.stdout
    hyperv = run("docker", _file(lab), VM, "--", "run", "--rm", "--isolation=hyperv", OLDER, "cmd", "/c", "ver")
    assert hyperv.exit_code == 0, hyperv.output
    assert "10.0.17763" in hyperv.stdout  # the image's own kernel, in its utility VM


def test_non_ascii_docker_output_arrives_intact_through_docker_and_exec(lab: Lab) -> None:
    # The guest decodes native output with its OEM code page unless the step reads UTF-8 (docker-cli and exec
    # version 2): docker's own text echoing "--café" would otherwise arrive as "--caf├⌐".
    for verb, words in (("docker", ["run", "--rm", "--café", IMAGE]), ("exec", ["docker", "run", "--rm", "--café",
                                                                               IMAGE])):
        result = run(verb, _file(lab), VM, "--", *words)
        assert result.exit_code != 0, result.output
        assert "unknown flag: --café" in result.stderr, result.stderr
        assert "├" not in result.output
    echo = run("docker", _file(lab), VM, "--", "run", "--rm", IMAGE, "cmd", "/c", "echo", "Grüße")
    assert echo.exit_code == 0 and echo.stdout.strip() == "Grüße", echo.output


def test_the_articles_walkthrough_runs_through_labctl_docker(lab: Lab) -> None:
    core = "mcr.microsoft.com/windows/servercore:ltsc2025"

    def docker(*words: str, code: int = 0) -> str:
        result = run("docker", _file(lab), VM, "--", *words)
        assert result.exit_code == code, (words, result.output)
        return result.stdout

    assert docker("images").startswith("REPOSITORY")
    assert "microsoft" in docker("search", "Microsoft").lower()
    first = run("docker", _file(lab), VM, "--", "run", "-it", "--name", "dockerdemo", core, "powershell.exe")
    assert first.exit_code == 0, first.output
    assert "-t dropped" in first.stderr and first.stdout.startswith("Windows PowerShell")
    assert docker("start", "dockerdemo").strip() == "dockerdemo"
    ipconfig = docker("exec", "dockerdemo", "ipconfig")
    ip = re.search(r"IPv4 Address[ .]*: (\S+)", ipconfig)
    gateway = re.search(r"Default Gateway[ .]*: (\S+)", ipconfig)
    assert ip and gateway and ip.group(1) != gateway.group(1), ipconfig
    nat = json.loads(docker("network", "inspect", "nat"))[0]["IPAM"]["Config"][0]
    assert gateway.group(1) == nat["Gateway"]
    assert re.fullmatch(r"[0-9a-f]{12}", docker("exec", "dockerdemo", "hostname").strip())
    assert "CExecSvc" in docker("exec", "dockerdemo", "powershell", "Get-Process")
    once = docker("run", "--rm", core, "ipconfig")
    assert "Windows IP Configuration" in once
    iis = docker("pull", "mcr.microsoft.com/windows/servercore/iis")
    assert "Already exists" in iis  # it is built on servercore: only its own layers are downloaded
    bad = run("docker", _file(lab), VM, "--", "run", "--isolation=bogus", core, "ipconfig")
    assert bad.exit_code != 0 and "Invalid isolation" in bad.stderr, bad.output
    docker("attach", "dockerdemo")
    assert "Exited (0)" in docker("ps", "-a")
    assert docker("commit", "dockerdemo", "demo-image").startswith("sha256:")
    assert docker("run", "--rm", "demo-image").startswith("Windows PowerShell")
    refused = run("docker", _file(lab), VM, "--", "rmi", core)
    assert refused.exit_code == 1 and "(must force)" in refused.stderr
    assert "dockerdemo" in docker("rm", "dockerdemo")
    assert "Untagged: demo-image:latest" in docker("rmi", "demo-image")


def test_exec_hostname_prints_the_vm_name(lab: Lab) -> None:
    result = run("exec", _file(lab), VM, "--", "hostname")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().lower() == VM


def test_exec_prints_objects_as_a_table(lab: Lab) -> None:
    result = run("exec", _file(lab), VM, "--", "Get-Service", "docker")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["Status", "Name", "DisplayName"] and lines[1].startswith("------")
    assert lines[2].split()[:2] == ["Running", "docker"]


def test_exec_of_an_unmodelled_command_is_refused_clearly_with_exit_1(lab: Lab) -> None:
    result = run("exec", _file(lab), VM, "--", "Get-Disk")
    assert result.exit_code == 1, result.output
    assert "not modelled by the simulator" in result.stderr
    assert "FullyQualifiedErrorId:" in result.stderr
    assert result.stdout == ""


def test_exec_and_docker_refuse_a_vm_the_lab_does_not_have(lab: Lab) -> None:
    for verb, words in (("exec", ["hostname"]), ("docker", ["ps"])):
        result = run(verb, _file(lab), "nope", "--", *words)
        assert result.exit_code == 2 and "no VM named 'nope'" in result.stderr


def test_demo_isolation_prints_both_comparisons(lab: Lab) -> None:
    result = run("demo", "isolation", _file(lab))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "process isolation" in out and "Hyper-V isolation" in out
    assert "(a) Same image" in out and IMAGE in out and "(b) Older image" in out and OLDER in out
    assert "time to start" in out and "memory overhead (utility VM)" in out and "process list" in out
    # The table wraps the refusal's words; its operation name stays whole.
    assert "hcs::CreateComputeSystem" in out and "17763 (the image's)" in out
    assert "[SIMULATED]" in out and "SIMULATED: figures modeled by the labctl simulator, not measured" in out


def test_demo_isolation_json_has_the_same_data(lab: Lab) -> None:
    text = run("demo", "isolation", _file(lab)).stdout
    result = run("demo", "isolation", _file(lab), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["simulated"] is True and data["vm"] == VM and data["guest_build"] == 26100
    same, older = data["same_image"], data["older_image"]
    assert same["image"] == IMAGE and older["image"] == OLDER
    assert same["process"]["ok"] and same["hyperv"]["ok"] and older["hyperv"]["ok"]
    assert not older["process"]["ok"] and MISMATCH in older["process"]["error"]
    assert same["process"]["visible_in_guest"] is True and same["hyperv"]["visible_in_guest"] is False
    assert older["hyperv"]["kernel_build"] == 17763
    assert same["hyperv"]["memory_overhead_mb"] > 0
    assert data["surprises"] == []
    # The table shows these very figures.
    assert f"{same['hyperv']['memory_overhead_mb']:.0f} MB" in text


def test_demo_refuses_a_lab_without_a_nested_container_host(tmp_path: Path) -> None:
    text = (resource_dir("labs") / "quickstart.yaml").read_text().replace("  processors: 2\n",
                                                                  "  processors: 2\n  nested: false\n")
    quick = make_lab(tmp_path, "quickstart.yaml", text)  # refused before connecting
    result = run("demo", "isolation", str(quick.file))
    assert result.exit_code == 2, result.output
    assert "nested" in result.stderr and "labs/isolation-demo.yaml" in result.stderr
