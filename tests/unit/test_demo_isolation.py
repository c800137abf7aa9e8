"""The isolation demo's pure parts: choice of VM and images, shaping the step's rows into two comparisons."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from labctl.app import isolation_demo as isolation
from labctl.app.guest import StepRun
from labctl.app.isolation_demo import (
    HYPERV,
    PROCESS,
    choose_vm,
    images_for,
    older_tag,
    parse_build,
    parse_output,
    shape,
)
from labctl.errors import LabUsageError, RemoteCommandError, StageError
from labctl.lab import resolve_lab
from labctl.lab.model import ResolvedLab
from labctl.resources import resource_dir
from labctl.transport.base import RemoteError, RemoteObject

NANO = "mcr.microsoft.com/windows/nanoserver"
MISMATCH = ("container 3f2a encountered an error during hcsshim::System::Start: failure in a Windows system call: "
            "The container operating system does not match the host operating system. (0xc0370101)")
PSCUSTOM = ["Deserialized.System.Management.Automation.PSCustomObject", "Deserialized.System.Object"]
REMOTING = {"PSComputerName": "iso-host01", "RunspaceId": "6f1c7c1e-0000-4000-8000-000000000001",
            "PSShowComputerName": True}


def _row(image: str, iso: str, ok: bool, error: str | None, seconds: float | None, kernel: Any,
         visible: bool | None, memory: float | None) -> RemoteObject:
    return RemoteObject(PSCUSTOM, {"Image": image, "Isolation": iso, "Ok": ok, "Error": error,
                                   "StartSeconds": seconds, "KernelBuild": kernel, "VisibleInGuest": visible,
                                   "MemoryOverheadMB": memory})


def recorded_2025(facts_as_object: bool = True) -> list[Any]:
    """The isolation-demo step's output on a Windows Server 2025 guest, as the transport hands it over."""
    rows = [
        _row(f"{NANO}:ltsc2025", "process", True, None, 1.2, 26100, True, 0),
        _row(f"{NANO}:ltsc2025", "hyperv", True, None, 4.8, "10.0.26100.2033", False, 412.0),
        _row(f"{NANO}:ltsc2019", "process", False, MISMATCH, None, None, None, None),
        _row(f"{NANO}:ltsc2019", "hyperv", True, None, 5.6, 17763, False, 398.5),
    ]
    facts: Any = {"GuestBuild": 26100, "Rows": rows}
    if facts_as_object:
        facts = RemoteObject(PSCUSTOM, facts)
    return [RemoteObject(PSCUSTOM, {"Step": "isolation-demo", "Changed": False, "RebootNeeded": False,
                                    "Facts": facts, **REMOTING})]


LAB = """\
name: demo
host: sim
network: {{subnet: 10.30.0.0/24}}
vms:
{vms}
"""


@pytest.fixture
def lab_of(write_lab: Callable[[str], Path]) -> Callable[[str], ResolvedLab]:
    def make(vms: str) -> ResolvedLab:
        return resolve_lab(str(write_lab(LAB.format(vms=vms))))
    return make


# --- choosing the VM and the images ------------------------------------------------------------------------


def test_default_vm_is_the_first_container_host_with_hyperv_isolation(lab_of: Callable[[str], ResolvedLab]) -> None:
    lab = lab_of("  - {name: plain, image: ws2022-core}\n"
                 "  - {name: iso1, image: ws2025-core, memory: 8GiB, isolation: hyperv}\n"
                 "  - {name: iso2, image: ws2022-core, memory: 8GiB, isolation: hyperv}\n")
    assert choose_vm(lab).name == "iso1"
    assert choose_vm(lab, "ISO2").name == "iso2"  # Windows names are case-insensitive


def test_a_lab_without_a_nested_container_host_is_refused_with_what_to_do(
        lab_of: Callable[[str], ResolvedLab]) -> None:
    lab = lab_of("  - {name: plain, image: ws2022-core, nested: false}\n")
    with pytest.raises(LabUsageError) as exc:
        choose_vm(lab)
    assert "no nested container host" in exc.value.message
    assert exc.value.hint and "labs/isolation-demo.yaml" in exc.value.hint
    with pytest.raises(LabUsageError) as named:
        choose_vm(lab, "plain")
    assert "nested: false" in named.value.message and "labs/isolation-demo.yaml" in str(named.value.hint)


def test_a_nested_container_host_serves_and_hyperv_isolation_is_preferred(
        lab_of: Callable[[str], ResolvedLab]) -> None:
    lab = lab_of("  - {name: proc1, image: ws2022-core}\n  - {name: iso1, image: ws2025-core, memory: 8GiB, "
                 "isolation: hyperv}\n")
    assert choose_vm(lab).name == "iso1"
    assert choose_vm(lab, "proc1").name == "proc1"
    only_process = lab_of("  - {name: proc1, image: ws2022-core}\n")
    assert choose_vm(only_process).name == "proc1"


def test_an_unknown_vm_names_the_lab_vms(lab_of: Callable[[str], ResolvedLab]) -> None:
    lab = lab_of("  - {name: iso1, image: ws2025-core, memory: 8GiB, isolation: hyperv}\n")
    with pytest.raises(LabUsageError, match="no VM named 'nope'; its VMs: iso1"):
        choose_vm(lab, "nope")


def test_the_shipped_demo_lab_fits_the_demo() -> None:
    lab = resolve_lab(str(resource_dir("labs") / "isolation-demo.yaml"))
    vm = choose_vm(lab)
    assert vm.isolation == HYPERV and vm.nested and vm.memory_bytes >= 8 * 1024**3
    assert images_for(vm.image.container_tag) == (f"{NANO}:ltsc2025", f"{NANO}:ltsc2019")


@pytest.mark.parametrize(("tag", "older"), [
    ("ltsc2025", "ltsc2019"),  # ltsc2022 runs process-isolated on 2025: it would not show the refusal
    ("ltsc2022", "ltsc2019"),
])
def test_the_older_image_is_the_previous_ltsc_process_isolation_refuses(tag: str, older: str) -> None:
    assert older_tag(tag) == older
    assert images_for(tag) == (f"{NANO}:{tag}", f"{NANO}:{older}")


def test_a_2019_guest_has_no_older_image() -> None:
    with pytest.raises(LabUsageError, match="no older LTSC nanoserver image"):
        older_tag("ltsc2019")
    with pytest.raises(LabUsageError, match="ltsc2031"):
        older_tag("ltsc2031")


# --- shaping the step's output -------------------------------------------------------------------------


@pytest.mark.parametrize("value", [26100, "26100", "10.0.26100.2033", "Microsoft Windows [Version 10.0.26100.1]"])
def test_builds_are_read_from_numbers_and_version_strings(value: Any) -> None:
    assert parse_build(value) == 26100
    assert parse_build(None) is None and parse_build("unknown") is None


@pytest.mark.parametrize("facts_as_object", [True, False])
def test_rows_are_read_from_the_facts_object_or_hashtable(facts_as_object: bool) -> None:
    build, runs = parse_output(recorded_2025(facts_as_object))
    assert build == 26100
    assert [(r.image.rsplit(":", 1)[1], r.isolation, r.ok) for r in runs] == [
        ("ltsc2025", PROCESS, True), ("ltsc2025", HYPERV, True), ("ltsc2019", PROCESS, False),
        ("ltsc2019", HYPERV, True)]
    assert runs[1].kernel_build == 26100 and runs[1].memory_overhead_mb == 412.0


def test_a_bare_output_object_and_hyphenated_isolation_names_are_read_too() -> None:
    row = RemoteObject(PSCUSTOM, {"Image": "x:1", "Isolation": "Hyper-V", "Ok": "True", "StartSeconds": "2.5",
                                  "KernelBuild": None, "VisibleInGuest": "False", "MemoryOverheadMB": None})
    # A one-element Rows array arrives as the element itself.
    build, runs = parse_output([RemoteObject(PSCUSTOM, {"GuestBuild": "20348", "Rows": row})])
    assert build == 20348
    assert runs[0].isolation == HYPERV and runs[0].ok and runs[0].start_seconds == 2.5
    assert runs[0].visible_in_guest is False


def _run(output: list[Any], errors: list[RemoteError] | None = None, simulated: bool = True) -> StepRun:
    return StepRun("iso-host01", "isolation-demo", output, errors or [], [], "simulated Hyper-V host at x",
                   simulated)


def test_rows_become_the_same_image_and_older_image_comparisons(lab_of: Callable[[str], ResolvedLab]) -> None:
    lab = lab_of("  - {name: iso-host01, image: ws2025-core, memory: 8GiB, isolation: hyperv}\n")
    vm = lab.vms[0]
    demo = shape(_run(recorded_2025()), lab, vm, f"{NANO}:ltsc2025", f"{NANO}:ltsc2019")
    same, older = demo.same_image, demo.older_image
    assert (demo.vm, demo.guest_build, demo.simulated) == ("iso-host01", 26100, True)
    assert same.image.endswith("ltsc2025") and same.build == 26100
    assert same.process.visible_in_guest is True and same.hyperv.visible_in_guest is False
    assert same.process.kernel_build == same.hyperv.kernel_build == 26100
    assert same.hyperv.memory_overhead_mb == 412.0 and not same.process.memory_overhead_mb
    assert older.image.endswith("ltsc2019") and older.build == 17763
    assert not older.process.ok and older.process.error == MISMATCH
    assert older.hyperv.ok and older.hyperv.kernel_build == 17763
    assert demo.surprises == []
    data = demo.to_json()
    assert data["simulated"] is True and data["note"] == isolation.SIMULATED_NOTE
    assert data["older_image"]["process"]["error"].endswith("(0xc0370101)")
    assert data["same_image"]["hyperv"]["memory_overhead_mb"] == 412.0


def test_a_run_against_windows_rules_is_reported_as_a_surprise(lab_of: Callable[[str], ResolvedLab]) -> None:
    lab = lab_of("  - {name: iso-host01, image: ws2025-core, memory: 8GiB, isolation: hyperv}\n")
    output = recorded_2025()
    rows = output[0]["Facts"]["Rows"]
    rows[1] = _row(f"{NANO}:ltsc2025", "hyperv", False, "HCS_E_HYPERV_NOT_INSTALLED (0xc0370102)", None, None,
                   None, None)
    demo = shape(_run(output, simulated=False), lab, lab.vms[0], f"{NANO}:ltsc2025", f"{NANO}:ltsc2019")
    assert demo.surprises == [f"{NANO}:ltsc2025 with hyperv isolation failed: HCS_E_HYPERV_NOT_INSTALLED (0xc0370102)"]
    assert demo.to_json()["note"] is None


def test_a_missing_row_is_a_clear_stage_error(lab_of: Callable[[str], ResolvedLab]) -> None:
    lab = lab_of("  - {name: iso-host01, image: ws2025-core, memory: 8GiB, isolation: hyperv}\n")
    output = recorded_2025()
    del output[0]["Facts"]["Rows"][3]
    with pytest.raises(StageError, match=r"no hyperv isolation run of .*ltsc2019"):
        shape(_run(output), lab, lab.vms[0], f"{NANO}:ltsc2025", f"{NANO}:ltsc2019")


def test_a_step_that_could_not_run_raises_its_error(lab_of: Callable[[str], ResolvedLab]) -> None:
    lab = lab_of("  - {name: iso-host01, image: ws2025-core, memory: 8GiB, isolation: hyperv}\n")
    error = RemoteError("The virtual machine iso-host01 is not in running state.",
                        "InvalidVMState,Microsoft.PowerShell.Commands.InvokeCommandCommand")
    with pytest.raises(RemoteCommandError) as exc:
        shape(_run([], [error]), lab, lab.vms[0], f"{NANO}:ltsc2025", f"{NANO}:ltsc2019")
    assert exc.value.error_id == "InvalidVMState" and "labctl up" in str(exc.value.hint)
