"""expand(): precedence, name patterns, IP assignment, MACs, hosts, secrets sources. All pure."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from random import Random

import pytest

from labctl.errors import LabctlError
from labctl.lab import (
    expand,
    expand_names,
    guest_password_source,
    load_lab,
    overlapping_prefixes,
    password_problems,
    resolve_lab,
    sim_guest_password,
    static_mac,
)
from labctl.lab.model import ResolvedLab
from labctl.resources import resource_dir

WriteLab = Callable[..., Path]
REPO = Path(__file__).resolve().parents[2]

LAB = """
name: prec
network:
  subnet: 10.5.0.0/24
  dns: [10.5.0.10]
defaults:
  image: ws2022-core
  processors: 2
  memory: 4GiB
  vars: {timezone: UTC, locale: en-US, nested: {a: 1, b: 2}}
groups:
  big:
    memory: 8GiB
    processors: 4
    vars: {locale: de-DE, nested: {b: 3}}
vms:
  - name: dc01
    ip: 10.5.0.10
  - name: "w{n:02d}"
    count: 3
    group: big
    processors: 6
    vars: {nested: {c: 4}}
  - name: solo
    group: big
    image: ws2025-core
    memory: 4GB
"""


@pytest.fixture
def lab(write_lab: WriteLab) -> ResolvedLab:
    return resolve_lab(write_lab(LAB))


def test_precedence_vm_over_group_over_defaults(lab: ResolvedLab) -> None:
    dc, w1, solo = lab.vm("dc01"), lab.vm("w01"), lab.vm("solo")
    assert (dc.processors, dc.memory_bytes, dc.image.id) == (2, 4 * 1024**3, "ws2022-core")
    assert (w1.processors, w1.memory_bytes, w1.group) == (6, 8 * 1024**3, "big")
    assert (solo.processors, solo.memory_bytes, solo.image.id) == (4, 4 * 1024**3, "ws2025-core")


def test_vars_deep_merge(lab: ResolvedLab) -> None:
    assert lab.vm("dc01").vars == {"timezone": "UTC", "locale": "en-US", "nested": {"a": 1, "b": 2}}
    assert lab.vm("w02").vars == {"timezone": "UTC", "locale": "de-DE", "nested": {"a": 1, "b": 3, "c": 4}}


def test_builtin_defaults(write_lab: WriteLab) -> None:
    r = resolve_lab(write_lab("name: b\nnetwork: {subnet: 10.9.0.0/24}\nvms: [{name: x}]\n"))
    vm = r.vms[0]
    assert (vm.image.id, vm.processors, vm.memory, vm.disk_bytes) == ("ws2022-core", 2, "4GiB", 60 * 1024**3)
    assert (vm.template, vm.roles, vm.nested, vm.isolation) == ("default", ["container-host"], True, "process")
    assert vm.vars == {"timezone": "UTC", "locale": "en-US"}
    assert r.network.switch == "labctl-b" and r.network.gateway == "10.9.0.1" and r.network.nat
    assert r.network.dns == ["1.1.1.1", "8.8.8.8"] and vm.dns == ["1.1.1.1", "8.8.8.8"]
    assert r.host.kind == "sim" and r.host.state_dir.endswith(".labctl/b/sim")
    assert r.guest_password.kind == "generated"


def test_pattern_expansion(lab: ResolvedLab) -> None:
    assert [v.name for v in lab.vms] == ["dc01", "w01", "w02", "w03", "solo"]
    assert expand_names("n{n}", 3, start=9) == ["n9", "n10", "n11"]
    assert expand_names("lab-{n:03d}-x", 2) == ["lab-001-x", "lab-002-x"]
    assert expand_names("plain", None) == ["plain"]
    with pytest.raises(ValueError, match="placeholder"):
        expand_names("n{i}", 2)
    with pytest.raises(ValueError, match="count: 2 needs"):
        expand_names("plain", 2)


def test_ip_assignment_skips_gateway_and_used(lab: ResolvedLab) -> None:
    # .1 gateway; .10 taken by dc01 (explicit addresses are reserved before automatic ones are handed out)
    assert [v.ip for v in lab.vms] == ["10.5.0.10", "10.5.0.2", "10.5.0.3", "10.5.0.4", "10.5.0.5"]
    assert {v.prefix_length for v in lab.vms} == {24}
    assert {v.gateway for v in lab.vms} == {"10.5.0.1"}


def test_explicit_ips_are_reserved_even_when_later(write_lab: WriteLab) -> None:
    text = ("name: r\nnetwork: {subnet: 10.6.0.0/29, gateway: 10.6.0.6}\n"
            "vms:\n  - {name: a}\n  - {name: b, ip: 10.6.0.1}\n")
    r = resolve_lab(write_lab(text))
    assert [(v.name, v.ip) for v in r.vms] == [("a", "10.6.0.2"), ("b", "10.6.0.1")]


def test_macs_are_deterministic_unique_and_microsoft(write_lab: WriteLab, lab: ResolvedLab) -> None:
    macs = [v.mac for v in lab.vms]
    assert len(set(macs)) == len(macs)
    assert all(re.fullmatch(r"00-15-5D(-[0-9A-F]{2}){3}", m) for m in macs)
    again = resolve_lab(write_lab(LAB, "again.yaml"))
    assert [v.mac for v in again.vms] == macs                       # stable across runs and paths
    assert static_mac("prec", "dc01") == lab.vm("dc01").mac
    assert static_mac("other", "dc01") != lab.vm("dc01").mac          # the lab name is part of it


def test_expand_of_loaded_lab_equals_resolve(write_lab: WriteLab) -> None:
    path = write_lab(LAB)
    assert expand(load_lab(path)) == resolve_lab(path)


def test_quickstart() -> None:
    r = resolve_lab(resource_dir("labs") / "quickstart.yaml")
    assert [v.name for v in r.vms] == ["qs-dc01", "qs-node01"]
    assert {(v.image.id, v.memory, v.processors) for v in r.vms} == {("ws2022-core", "4GiB", 2)}
    assert r.network.subnet == "10.10.0.0/24" and r.host.kind == "sim"
    assert r.vms[0].image.base_disk == "C:\\LabBases\\WS2022-Core.vhdx"


def test_classroom_and_isolation_demo() -> None:
    cls = resolve_lab(resource_dir("labs") / "classroom.yaml")
    assert [v.name for v in cls.vms] == ["s01-node1", "s01-node2", "s02-node1", "s02-node2", "s03-node1",
                                         "s03-node2"]
    assert [v.ip for v in cls.vms][::2] == ["10.50.0.11", "10.50.1.11", "10.50.2.11"]
    assert [u.network.switch for u in cls.units] == ["labctl-classroom-1", "labctl-classroom-2",
                                                     "labctl-classroom-3"]
    assert cls.rdp and {u.network.nat_prefix for u in cls.units} == {"10.50.0.0/16"}
    demo = resolve_lab(resource_dir("labs") / "isolation-demo.yaml")
    (vm,) = demo.vms
    assert (vm.image.id, vm.memory, vm.isolation, vm.nested) == ("ws2025-core", "8GiB", "hyperv", True)
    assert vm.image.os_build == 26100 and vm.image.container_tag == "ltsc2025"


def test_remote_host_is_normalized(write_lab: WriteLab) -> None:
    text = LAB + """guest_password_env: GP
host:
  uri: hv01.example.com
  username: LAB\\admin
  password_env: HVPW
  fingerprint: "sha256:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89"
"""
    r = resolve_lab(write_lab(text))
    h = r.host
    assert h.kind == "remote"
    assert (h.uri, h.port, h.scheme, h.auth) == ("https://hv01.example.com:5986/wsman", 5986, "https", "ntlm")
    assert h.password.kind == "env" and h.password.name == "HVPW"
    assert h.fingerprint is not None and h.fingerprint.startswith("sha256:AB:CD")


def test_http_allowed_with_ntlm(write_lab: WriteLab) -> None:
    text = LAB + "guest_password_env: GP\nhost: {uri: 'http://hv01:5985/wsman', username: u, password_from: prompt}\n"
    h = resolve_lab(write_lab(text)).host
    assert h.kind == "remote" and h.scheme == "http" and h.port == 5985


def test_overlapping_prefixes() -> None:
    assert overlapping_prefixes("10.10.0.0/24", ["10.10.0.0/16", "192.168.0.0/24", "junk", "10.10.0.128/25"]) == [
        "10.10.0.0/16", "10.10.0.128/25"]


def test_guest_password_sources(write_lab: WriteLab, lab: ResolvedLab) -> None:
    assert guest_password_source(lab, {}).kind == "generated"                # sim, nothing set
    r = resolve_lab(write_lab(LAB + "guest_password_env: GP\n", "env.yaml"))
    assert guest_password_source(r, {"GP": "x"}).name == "GP"
    assert guest_password_source(r, {}).kind == "generated"                  # sim fallback
    remote = resolve_lab(write_lab(LAB + "guest_password_env: GP\nhost: {uri: h, username: u}\n", "r.yaml"))
    with pytest.raises(LabctlError, match="GP is not set"):
        guest_password_source(remote, {})


def test_sim_guest_password_keeps_or_generates() -> None:
    kept, new = sim_guest_password("Existing-Pa55word")
    assert kept.get_secret_value() == "Existing-Pa55word" and not new
    made, new = sim_guest_password(None, Random(7))
    assert new and password_problems(made.get_secret_value()) == []
    assert "Pa55" not in repr(kept) and made.get_secret_value() not in repr(made)
    again, _ = sim_guest_password(None, Random(7))
    assert again.get_secret_value() == made.get_secret_value()               # deterministic with a seed
    _, new = sim_guest_password("weak")                                      # unusable -> regenerate
    assert new
