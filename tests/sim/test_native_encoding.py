"""Native program output over PowerShell Direct: decoded in the guest's OEM code page unless the step reads UTF-8.

docker.exe writes UTF-8; Windows PowerShell 5.1 reads a native program's output with [Console]::OutputEncoding,
the OEM code page of the guest (437 for en-US, 850 for de-DE). Version 1 of the docker steps read it so, and
non-ASCII text arrived garbled; version 2 sets [Console]::OutputEncoding to UTF-8 first (lib/native.ps1,
exec.ps1). Both versions are modelled.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from container_lab import NANO_2022, Lab

from hvsim.guest.models.codepages import oem_code_page, read_native_text
from hvsim.step_registry import find_step
from labctl.guest.steps import load_step

NATIVE_STEPS = ("docker-cli", "docker-install", "image-pull", "image-save", "image-load", "verify-isolation",
                "isolation-demo", "exec")
WORD = "café"  # docker echoes an unknown flag back in its own (UTF-8) error text


def _as_windows_reads(text: str, code_page: int) -> str:
    """What Windows PowerShell makes of UTF-8 bytes read in a single-byte OEM code page."""
    return text.encode("utf-8").decode(f"cp{code_page}")


@pytest.fixture(scope="module")
def lab() -> Lab:
    the_lab = Lab()
    the_lab.vm("h1")
    the_lab.container_host("h1")
    return the_lab


def test_the_garbling_is_a_cp437_decode_of_the_utf8_bytes() -> None:
    assert read_native_text("é", 437) == "├⌐" == _as_windows_reads("é", 437)
    assert read_native_text("é", 850) == "├®"
    assert read_native_text("é", 65001) == "é"
    assert read_native_text("plain ASCII", 437) == "plain ASCII"


def test_old_docker_cli_garbles_non_ascii_and_the_new_one_does_not(lab: Lab) -> None:
    old = lab.docker("h1", "run", "--rm", f"--{WORD}", NANO_2022, version=1)
    assert old.get("ExitCode") == 125
    assert old.get("Error")[0] == f"unknown flag: --{_as_windows_reads(WORD, 437)}" == "unknown flag: --caf├⌐"
    new = lab.docker("h1", "run", "--rm", f"--{WORD}", NANO_2022, version=2)
    assert new.get("Error")[0] == f"unknown flag: --{WORD}"
    # A container's output goes through docker the same way.
    echo_old = lab.docker("h1", "run", "--rm", NANO_2022, "cmd", "/c", "echo", "Grüße", version=1)
    echo_new = lab.docker("h1", "run", "--rm", NANO_2022, "cmd", "/c", "echo", "Grüße", version=2)
    assert echo_old.get("Output") == [_as_windows_reads("Grüße", 437)] and echo_new.get("Output") == ["Grüße"]


def test_old_exec_garbles_docker_output_and_the_new_one_does_not(lab: Lab) -> None:
    old = lab.step("h1", "exec", f"docker run --rm --{WORD} {NANO_2022}", version=1)
    assert old.errors[0].message == f"unknown flag: --{_as_windows_reads(WORD, 437)}"
    assert old.errors[0].fqid == "NativeCommandError"
    new = lab.step("h1", "exec", f"docker run --rm --{WORD} {NANO_2022}", version=2)
    assert new.errors[0].message == f"unknown flag: --{WORD}"
    assert lab.step("h1", "exec", "hostname", version=2).outputs == lab.step("h1", "exec", "hostname").outputs


def test_the_code_page_follows_the_guests_locale(lab: Lab) -> None:
    guest = lab.get_vm("h1").guest
    assert guest.system_locale == "en-US"  # the lab's answer file sets SystemLocale en-US
    try:
        # A German image whose answer file leaves the system locale alone: de-DE, OEM code page 850.
        guest.ui_culture, guest.system_locale = "de-DE", None
        res = lab.docker("h1", "run", "--rm", f"--{WORD}", NANO_2022, version=1)
        assert res.get("Error")[0] == "unknown flag: --caf├®"
        guest.system_locale = "ru-RU"  # the answer file's SystemLocale wins over the display language
        assert oem_code_page(guest) == 866
        res = lab.docker("h1", "run", "--rm", f"--{WORD}", NANO_2022, version=2)
        assert res.get("Error")[0] == f"unknown flag: --{WORD}"
    finally:
        guest.ui_culture, guest.system_locale = "en-US", "en-US"
    assert oem_code_page(SimpleNamespace(system_locale=None, ui_culture="xx-XX")) == 437  # unknown: en-US's


def test_both_versions_of_every_native_step_are_modelled_and_labctl_ships_the_utf8_one() -> None:
    for name in NATIVE_STEPS:
        assert find_step(f"# labctl-step: {name} 1\n") is not None, name
        assert find_step(f"# labctl-step: {name} 2\n") is not None, name
        step = load_step(name)
        # docker-install 3 changed when it refuses another installation, not how it reads docker's output.
        assert step.version == (3 if name == "docker-install" else 2), name
        assert find_step(f"# labctl-step: {name} {step.version}\n") is not None, name
        # The idiom: the encoding PowerShell decodes native output with ($OutputEncoding is for piping TO a
        # program), UTF-8 without a BOM, restored afterwards.
        assert "[Console]::OutputEncoding = [System.Text.UTF8Encoding]::new($false)" in step.script, name
        assert "[Console]::OutputEncoding = $consoleEncoding" in step.script, name
