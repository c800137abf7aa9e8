"""The lab file's container-host settings: container_images, docker_tls, docker, container_nat's fixed CIDR."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from labctl.lab import resolve_lab, validate
from labctl.lab.model import DEFAULT_DOCKER_VERSION, container_cidr, container_image_ref
from labctl.resources import resource_dir

WriteLab = Callable[..., Path]

LAB = """
name: ct
network:
  subnet: 10.5.0.0/24
defaults:
  image: ws2022-core
groups:
  big:
    container_images: [nanoserver, servercore]
vms:
  - name: ct-a
  - name: ct-b
    group: big
  - name: ct-c
    group: big
    image: ws2019-core
    container_images: [servercore]
    docker_tls: true
"""


def _problems(path: Path) -> list[str]:
    return [str(p) for p in validate(path)]


def test_defaults_group_and_vm_precedence(write_lab: WriteLab) -> None:
    lab = resolve_lab(write_lab(LAB))
    a, b, c = lab.vms
    assert a.container_images == ["nanoserver"] and a.docker_tls is False
    assert b.container_images == ["nanoserver", "servercore"]
    assert c.container_images == ["servercore"] and c.docker_tls is True
    # The tag follows each VM's image: a ws2019 guest gets ltsc2019, so its build matches.
    assert a.container_image_refs == ["mcr.microsoft.com/windows/nanoserver:ltsc2022"]
    assert c.container_image_refs == ["mcr.microsoft.com/windows/servercore:ltsc2019"]
    assert [v.index for v in lab.vms] == [0, 1, 2]
    assert all(v.container_host for v in lab.vms)


def test_docker_defaults(write_lab: WriteLab) -> None:
    lab = resolve_lab(write_lab(LAB))
    assert lab.docker.version == DEFAULT_DOCKER_VERSION
    assert lab.docker.url == f"https://download.docker.com/win/static/stable/x86_64/docker-{DEFAULT_DOCKER_VERSION}.zip"
    assert lab.docker.path is None and lab.docker.sha256 is None
    assert lab.network.container_cidr == "172.20.0.0/16"


def test_docker_section(write_lab: WriteLab, tmp_path: Path) -> None:
    (tmp_path / "docker-26.1.4.zip").write_bytes(b"PK")
    digest = "AB" * 32
    lab = resolve_lab(write_lab(LAB + f"docker:\n  version: 26.1.4\n  path: docker-26.1.4.zip\n  sha256: {digest}\n"))
    assert lab.docker.version == "26.1.4"
    assert lab.docker.path == str(tmp_path / "docker-26.1.4.zip")
    assert lab.docker.sha256 == digest.lower()


@pytest.mark.parametrize(("extra", "where", "text"), [
    ("docker:\n  version: latest\n", "docker.version", "x.y.z"),
    ("docker:\n  sha256: abc\n", "docker.sha256", "64 hex digits"),
    ("docker:\n  url: ftp://x/docker.zip\n", "docker.url", "http(s) URL"),
    ("docker:\n  path: missing.zip\n", "docker.path", "does not exist"),
    ("docker:\n  url: https://x/d.zip\n  path: missing.zip\n", "docker.path", "either docker.url or docker.path"),
    ("docker:\n  mirror: x\n", "docker.mirror", ""),
])
def test_docker_section_problems(write_lab: WriteLab, extra: str, where: str, text: str) -> None:
    problems = _problems(write_lab(LAB + extra))
    hits = [p for p in problems if f": {where}: " in p]
    assert hits, problems
    assert text.lower() in hits[0].lower()
    assert hits[0].split(":")[1].isdigit()  # file:line


def test_container_images_problems_carry_their_line(write_lab: WriteLab) -> None:
    path = write_lab(LAB.replace("[nanoserver, servercore]", "[nanoserver, windowsservercore]")
                     .replace("    container_images: [servercore]\n", "    container_images: []\n"))
    problems = _problems(path)
    assert any(":8: groups.big.container_images[1]" in p for p in problems), problems
    assert any(":16: vms[2].container_images" in p and "at least 1" in p for p in problems), problems


def test_container_images_listed_twice(write_lab: WriteLab) -> None:
    problems = _problems(write_lab(LAB.replace("[servercore]", "[servercore, servercore]")))
    assert any("vms[2].container_images" in p and "twice" in p for p in problems), problems


def test_docker_tls_needs_the_lab_nat(write_lab: WriteLab) -> None:
    problems = _problems(write_lab(LAB.replace("  subnet: 10.5.0.0/24\n", "  subnet: 10.5.0.0/24\n  nat: false\n")))
    assert any(":18: vms[2].docker_tls" in p and "network.nat" in p for p in problems), problems


def test_docker_tls_fine_without_the_container_host_role(write_lab: WriteLab) -> None:
    text = LAB.replace("  subnet: 10.5.0.0/24\n", "  subnet: 10.5.0.0/24\n  nat: false\n") \
        .replace("    docker_tls: true\n", "    docker_tls: true\n    roles: []\n")
    assert _problems(write_lab(text)) == []


@pytest.mark.parametrize(("nat", "cidr"), [
    ("172.16.0.0/12", "172.20.0.0/16"),
    ("192.168.0.0/16", "192.168.0.0/16"),
    ("192.168.240.0/20", "192.168.240.0/20"),
    ("100.64.0.0/10", "100.64.0.0/16"),
])
def test_container_cidr_is_a_16_inside_container_nat(nat: str, cidr: str) -> None:
    assert container_cidr(nat) == cidr


def test_container_nat_moves_the_fixed_cidr_and_must_not_overlap_the_subnet(write_lab: WriteLab) -> None:
    moved = resolve_lab(write_lab(LAB.replace("  subnet: 10.5.0.0/24\n",
                                              "  subnet: 10.5.0.0/24\n  container_nat: 192.168.0.0/16\n")))
    assert moved.network.container_cidr == "192.168.0.0/16"
    clash = _problems(write_lab(LAB.replace("  subnet: 10.5.0.0/24\n",
                                            "  subnet: 10.5.0.0/24\n  container_nat: 10.0.0.0/8\n")))
    assert any("network.subnet" in p and "overlaps 10.0.0.0/8" in p for p in clash), clash


def test_image_reference() -> None:
    assert container_image_ref("servercore", "ltsc2025") == "mcr.microsoft.com/windows/servercore:ltsc2025"


def test_shipped_labs_are_container_hosts() -> None:
    for name in ("quickstart", "isolation-demo"):
        lab = resolve_lab(resource_dir("labs") / f"{name}.yaml")
        assert all(vm.container_host and vm.container_images for vm in lab.vms), name
