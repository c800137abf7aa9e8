"""Validation reports every problem at once, each as file:line: field: message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from labctl.errors import LabFileError
from labctl.lab import load_lab, validate, validate_text
from labctl.resources import resource_dir

DATA = Path(__file__).resolve().parent / "data"
WriteLab = Callable[..., Path]
REPO = Path(__file__).resolve().parents[2]

BROKEN = DATA / "broken-lab.yaml"

# "line: field" of every mistake planted in broken-lab.yaml.
EXPECTED = [
    "2: name",                       # 29 characters, over 20
    "2: guest_password_env",         # real host without a guest password source
    "3: host.username",              # basic needs a username
    "5: host.auth",                  # basic over http
    "6: host.password",              # literal password
    "10: network.gateway",           # outside the subnet
    "11: network.nat",               # not a boolean
    "13: defaults.image",            # not in the catalog
    "14: defaults.processors",       # 0
    "15: defaults.memory",           # "4 gigs"
    "16: defaults.procesors",        # unknown key (typo)
    "19: groups.small.memory",       # 2GiB < 4GiB for nested
    "21: vms[0].name",               # over 15 characters
    "22: vms[1].name",               # all digits
    "25: vms[3].name",               # duplicate (case-insensitive)
    "26: vms[3].ip",                 # duplicate IP
    "28: vms[4].ip",                 # outside the subnet
    "30: vms[5].ip",                 # network address
    "31: vms[6].name",               # bad placeholder
    "36: vms[8].count",              # count without {n}
    "38: vms[9].group",              # unknown group
    "40: vms[10].processors",        # 65
    "42: vms[11].unattend",          # template not found
    "45: vms[12].isolation",         # hyperv isolation without nesting
    "46: vms[13].name",              # underscore
    "47: guest_password",            # literal password
]


@pytest.fixture(scope="module")
def broken() -> list[str]:
    return [str(p) for p in validate(BROKEN)]


@pytest.mark.parametrize("where", EXPECTED)
def test_broken_lab_reports_each_problem_at_its_line(broken: list[str], where: str) -> None:
    prefix = f"{BROKEN}:{where}:"
    assert any(p.startswith(prefix) for p in broken), f"missing {prefix}\n" + "\n".join(broken)


def test_broken_lab_reports_nothing_unexpected(broken: list[str]) -> None:
    heads = {p.split(": ", 2)[0] + ": " + p.split(": ", 2)[1] for p in broken}
    expected = {f"{BROKEN}:{w}" for w in EXPECTED}
    assert heads == expected


def test_broken_lab_never_repeats_the_secret(broken: list[str]) -> None:
    text = "\n".join(broken)
    assert "hunter2" not in text and "s3cret" not in text


def test_messages_say_what_to_do(broken: list[str]) -> None:
    text = "\n".join(broken)
    assert "password_env: LABCTL_HOST_PASSWORD" in text
    assert "guest_password_env: LABCTL_GUEST_PASSWORD" in text
    assert "did you mean 'processors'" in text
    assert "available: ws2019-core, ws2022-container, ws2022-core, ws2025-core" in text
    assert "VMs: node01, node02" in text                    # a group value names the VMs it breaks
    assert "at most 15" in text


def test_load_lab_raises_with_all_problems() -> None:
    with pytest.raises(LabFileError) as info:
        load_lab(BROKEN)
    assert len(info.value.problems) == len(EXPECTED)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("lab", sorted((resource_dir("labs")).glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_labs_are_valid(lab: Path) -> None:
    assert validate(lab) == []


def _problems(write_lab: WriteLab, text: str) -> list[str]:
    return [f"{p.line}: {p.field}: {p.message}" for p in validate(write_lab(text))]


BASE = """
name: t
network:
  subnet: 10.1.0.0/24
vms:
  - name: a1
"""


def test_minimal_lab_is_valid(write_lab: WriteLab) -> None:
    assert _problems(write_lab, BASE) == []


def test_yaml_syntax_error_has_a_line(write_lab: WriteLab) -> None:
    out = _problems(write_lab, BASE + "  - name: [oops\n")
    assert len(out) == 1 and out[0].startswith("6: ") and "YAML syntax error" in out[0]


def test_duplicate_key(write_lab: WriteLab) -> None:
    out = _problems(write_lab, "name: t\nname: u\nnetwork: {subnet: 10.1.0.0/24}\nvms: [{name: a}]\n")
    assert out == ["2: name: duplicate key (first written on line 1)"]


def test_missing_keys_point_at_the_parent(write_lab: WriteLab) -> None:
    out = _problems(write_lab, "name: t\nnetwork: {}\nvms:\n  - {image: ws2022-core}\n")
    assert "2: network.subnet: required key is missing" in out
    assert "4: vms[0].name: required key is missing" in out


def test_subnet_with_host_bits(write_lab: WriteLab) -> None:
    out = _problems(write_lab, BASE.replace("10.1.0.0/24", "10.1.0.1/24"))
    assert out == ["3: network.subnet: '10.1.0.1/24' has host bits set; did you mean 10.1.0.0/24?"]


def test_subnet_overlapping_container_nat(write_lab: WriteLab) -> None:
    out = _problems(write_lab, BASE.replace("10.1.0.0/24", "172.20.0.0/24"))
    assert len(out) == 1 and out[0].startswith("3: network.subnet: 172.20.0.0/24 overlaps 172.16.0.0/12")
    moved = BASE.replace("10.1.0.0/24", "172.20.0.0/24\n  container_nat: 192.168.240.0/20")
    assert _problems(write_lab, moved) == []


def test_ip_equal_to_gateway_or_broadcast(write_lab: WriteLab) -> None:
    out = _problems(write_lab, BASE + "    ip: 10.1.0.1\n  - name: a2\n    ip: 10.1.0.255\n")
    assert out[0].startswith("6: vms[0].ip: 10.1.0.1 is the gateway")
    assert out[1].startswith("8: vms[1].ip: 10.1.0.255 is the broadcast address")


def test_replica_ips_are_checked_each(write_lab: WriteLab) -> None:
    out = _problems(write_lab, BASE.replace("  - name: a1", "  - name: n{n}\n    count: 3\n    ip: 10.1.0.253"))
    assert out == ["7: vms[0].ip: 10.1.0.255 (for n3) is the broadcast address of 10.1.0.0/24"]


def test_memory_alignment_and_nested(write_lab: WriteLab) -> None:
    out = _problems(write_lab, BASE + "    memory: 4097MiB\n  - name: a2\n    memory: 3GiB\n    nested: false\n")
    assert out == ["6: vms[0].memory: memory 4097MiB is not a multiple of 2 MiB, which Hyper-V requires"]
    out = _problems(write_lab, BASE + "    memory: 1GiB\n    nested: false\n")
    assert out == ["6: vms[0].memory: memory 1GiB is below 2GiB, the minimum for ws2022-core"]


def test_subnet_too_small_for_its_vms(write_lab: WriteLab) -> None:
    text = BASE.replace("10.1.0.0/24", "10.1.0.0/30") + "  - name: a2\n"
    out = _problems(write_lab, text)
    assert out == ["6: vms[1]: no free address left in 10.1.0.0/30 for a2"]


def test_secret_anywhere_is_refused_without_echo(write_lab: WriteLab) -> None:
    out = _problems(write_lab, BASE + "    vars:\n      admin_password: Pa55word!\n")
    assert len(out) == 1 and out[0].startswith("7: vms[0].vars.admin_password: a literal secret")
    assert "Pa55word" not in out[0]


def test_remote_host_rules(write_lab: WriteLab) -> None:
    text = BASE + """guest_password_env: GP
host:
  uri: hv01.example.com
  auth: certificate
  password_env: A
  password_from: prompt
  verify: false
  ca_path: ca.pem
"""
    out = _problems(write_lab, text)
    assert "7: host.certificate: auth: certificate needs certificate: {cert_path, key_path}" in out
    assert "11: host.password_from: give either password_env or password_from, not both" in out
    assert "13: host.ca_path: ca_path has no effect with verify: false; remove one of them" in out


def test_validate_text_uses_the_given_file_name() -> None:
    out = validate_text("name: t\nvms: []\n", "inline.yaml")
    assert [str(p) for p in out] == [
        "inline.yaml:1: network: required key is missing",
        "inline.yaml:2: vms: List should have at least 1 item after validation, not 0",
    ]


def test_empty_and_non_mapping_files(write_lab: WriteLab) -> None:
    assert _problems(write_lab, "") == ["1: : the file is empty"]
    assert _problems(write_lab, "- a\n") == ["1: : a lab file is a mapping with name, network, vms, ..."]


def test_http_needs_an_auth_that_encrypts_messages(write_lab) -> None:  # type: ignore[no-untyped-def]
    from labctl.lab import validate

    base = """
        name: hb
        host:
          uri: http://hv01.example.com:5985/wsman
          auth: {auth}
          username: admin
          password_env: HVPW
        network: {{subnet: 10.70.0.0/24}}
        vms:
          - name: hb1
        guest_password_env: GPW
    """
    for auth in ("ntlm", "credssp"):
        assert validate(write_lab(base.format(auth=auth))) == [], auth
    problems = validate(write_lab(base.format(auth="basic")))
    assert [p.field for p in problems] == ["host.auth"] and "only ntlm, kerberos and credssp" in problems[0].message
