"""exec, docker and demo on recorded guest-step outputs: output shaping, and what the CLI prints and exits with.

The guest is replaced by a recorded StepRun (``run_step`` patched), so these run without a host; the same
verbs against the simulator are in tests/integration/test_exec_docker_demo.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from clirun import labctl
from test_demo_isolation import MISMATCH, REMOTING, recorded_2025

from labctl.app import guest as guestops
from labctl.app.guest import StepRun, parse_docker
from labctl.cli.psformat import RecordBlock, TableBlock, TextBlock, block_lines, shape_output
from labctl.errors import RemoteCommandError
from labctl.lab.model import ResolvedLab, ResolvedVm
from labctl.transport.base import RemoteError, RemoteObject

SERVICE = ["Deserialized.System.ServiceProcess.ServiceController", "Deserialized.System.ComponentModel.Component",
           "Deserialized.System.Object"]
PSCUSTOM = ["Deserialized.System.Management.Automation.PSCustomObject", "Deserialized.System.Object"]
NOT_MODELLED = ("The simulated guest runs only the PowerShell commands it models; 'Get-Disk' is not modelled by "
                "the simulator.")


def test_strings_are_lines_even_when_remoting_tagged_them() -> None:
    tagged = RemoteObject(["Deserialized.System.String"], dict(REMOTING), "iso-host01")
    assert shape_output(["a", "b\nc", 42, True, tagged]) == [TextBlock(["a", "b", "c", "42", "True", "iso-host01"])]


def test_objects_of_one_kind_make_a_table_without_the_remoting_properties() -> None:
    objs = [RemoteObject(PSCUSTOM, {"Name": n, "Status": s, **REMOTING}) for n, s in (("docker", "Running"),
                                                                                      ("vmms", "Stopped"))]
    assert shape_output(objs) == [TableBlock(["Name", "Status"], [["docker", "Running"], ["vmms", "Stopped"]])]


def test_known_types_use_powershells_default_columns() -> None:
    svc = RemoteObject(SERVICE, {"Name": "docker", "DisplayName": "Docker Engine", "Status": "Running",
                                 "ServiceName": "docker", "CanStop": True, "CanPauseAndContinue": False,
                                 "MachineName": ".", "ServiceType": "Win32OwnProcess", **REMOTING})
    assert shape_output([svc]) == [TableBlock(["Status", "Name", "DisplayName"], [["Running", "docker",
                                                                                    "Docker Engine"]])]


def test_wide_objects_are_name_value_records_and_kinds_are_not_mixed() -> None:
    wide = RemoteObject(PSCUSTOM, {f"P{i}": i for i in range(8)})
    other = {"Key": [1, 2], "Nested": {"a": None}}
    blocks = shape_output([wide, "text", other])
    assert isinstance(blocks[0], RecordBlock) and blocks[0].pairs[0] == ("P0", "0") and len(blocks[0].pairs) == 8
    assert blocks[1] == TextBlock(["text"])
    assert blocks[2] == TableBlock(["Key", "Nested"], [["{1, 2}", "@{a=}"]])


def test_blocks_print_like_format_table_and_format_list() -> None:
    table = TableBlock(["Status", "Name", "DisplayName"],
                       [["Running", "docker", "Docker Engine"], ["Stopped", "x", ""]])
    assert block_lines(table) == ["Status  Name   DisplayName", "------  ----   -----------",
                                  "Running docker Docker Engine", "Stopped x"]
    assert block_lines(RecordBlock([("Name", "docker"), ("CanStop", "True"), ("Empty", "")])) == [
        "Name    : docker", "CanStop : True", "Empty   :"]


def test_docker_step_output_is_read_with_powershells_single_element_arrays() -> None:
    obj = RemoteObject(PSCUSTOM, {"ExitCode": 125, "Output": None, "Error": "docker: bad\nsecond", **REMOTING})
    run = parse_docker([obj])
    assert run is not None and (run.exit_code, run.output, run.error) == (125, [], ["docker: bad", "second"])
    assert parse_docker([]) is None


@pytest.mark.parametrize(("given", "sent"), [
    ("run -it --rm img cmd /c echo -t", "run -i --rm img cmd /c echo -t"),  # the container's own -t stays
    ("run -dit img", "run -di img"),
    ("run -t -i img", "run -i img"),
    ("run --interactive --tty img", "run --interactive img"),
    ("run -ti --name -t img", "run -i --name -t img"),  # a value is not a flag
    ("run -i -e T -t img", "run -i -e T img"),
    ("run -it -eTZ=UTC img", "run -i -eTZ=UTC img"),
    ("exec -it web cmd", "exec -i web cmd"),
])
def test_docker_it_loses_its_t_since_powershell_direct_has_no_terminal(given: str, sent: str) -> None:
    assert guestops.without_tty(given.split()) == (sent.split(), True)


@pytest.mark.parametrize("given", ["run -t img", "run -i img", "ps -a", "images", "run img cmd -it", "logs -t web"])
def test_docker_arguments_without_both_i_and_t_are_sent_as_given(given: str) -> None:
    assert guestops.without_tty(given.split()) == (given.split(), False)


# --- the CLI on recorded runs ------------------------------------------------------------------------------


@pytest.fixture
def demo_lab(write_lab: Callable[[str], Path]) -> Path:
    return write_lab("""
        name: demo
        network: {subnet: 10.30.0.0/24}
        vms:
          - {name: iso-host01, image: ws2025-core, memory: 8GiB, isolation: hyperv}
          - {name: plain01, nested: false}
    """)


class Recorder:
    """Stands in for the guest: records the steps run, answers with a recorded run or raises.

    ``image-pull`` (the demo's first step) answers with nothing and no error, as a guest that has the images.
    """

    def __init__(self, output: list[Any] | Exception, errors: list[RemoteError] | None = None,
                 simulated: bool = True) -> None:
        self.answer, self.errors, self.simulated = output, errors or [], simulated
        self.calls: list[tuple[str, str, list[object]]] = []

    def run(self, vm: ResolvedVm, step: str, arguments: list[object]) -> StepRun:
        self.calls.append((vm.name, step, arguments))
        if step == "image-pull":
            return StepRun(vm.name, step, [], [], [], "simulated Hyper-V host at x", self.simulated)
        if isinstance(self.answer, Exception):
            raise self.answer
        return StepRun(vm.name, step, self.answer, self.errors, [], "simulated Hyper-V host at x", self.simulated)

    def __call__(self, lab: ResolvedLab, vm: ResolvedVm, step: str, arguments: list[object], **_: Any) -> StepRun:
        return self.run(vm, step, arguments)

    @contextmanager
    def session(self, lab: ResolvedLab, **_: Any) -> Iterator[Recorder]:
        yield self


def _cli(monkeypatch: pytest.MonkeyPatch, recorder: Recorder, *args: str) -> Result:
    monkeypatch.setattr(guestops, "run_step", recorder)
    monkeypatch.setattr("labctl.app.isolation_demo.guest_session", recorder.session)
    return labctl(*args)


def test_exec_joins_the_words_into_one_command_argument(monkeypatch: pytest.MonkeyPatch, demo_lab: Path) -> None:
    rec = Recorder(["iso-host01"])
    result = _cli(monkeypatch, rec, "exec", str(demo_lab), "iso-host01", "--", "Get-Service", "-Name", "docker")
    assert result.exit_code == 0, result.output
    assert rec.calls == [("iso-host01", "exec", ["Get-Service -Name docker"])]
    assert result.stdout == "iso-host01\n"
    assert "simulated guest" in result.stderr


def test_exec_errors_go_to_stderr_with_their_id_and_exit_1(monkeypatch: pytest.MonkeyPatch, demo_lab: Path) -> None:
    refused = RemoteCommandError(NOT_MODELLED, command="Invoke-Command",
                                 fqid="CommandNotModelled,labctl.Simulator")
    result = _cli(monkeypatch, Recorder(refused), "exec", str(demo_lab), "iso-host01", "--", "Get-Disk")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert NOT_MODELLED in result.stderr and "FullyQualifiedErrorId: CommandNotModelled" in result.stderr
    written = RemoteError("Cannot find any service with service name 'nope'.",
                          "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand")
    partial = _cli(monkeypatch, Recorder(["some output"], [written]), "exec", str(demo_lab), "iso-host01", "--",
                   "Get-Service nope; 'some output'")
    assert partial.exit_code == 1 and partial.stdout == "some output\n"
    assert "NoServiceFoundForGivenName" in partial.stderr


def test_exec_refuses_a_vm_the_lab_does_not_have(monkeypatch: pytest.MonkeyPatch, demo_lab: Path) -> None:
    rec = Recorder([])
    result = _cli(monkeypatch, rec, "exec", str(demo_lab), "nope", "--", "hostname")
    assert result.exit_code == 2 and "no VM named 'nope'" in result.stderr and rec.calls == []


def test_docker_passes_arguments_as_a_list_and_exits_with_dockers_code(monkeypatch: pytest.MonkeyPatch,
                                                                     demo_lab: Path) -> None:
    obj = RemoteObject(PSCUSTOM, {"ExitCode": 3, "Output": ["hi", "there"], "Error": ["oops"], **REMOTING})
    rec = Recorder([obj])
    result = _cli(monkeypatch, rec, "docker", str(demo_lab), "iso-host01", "--", "run", "-it", "--rm", "img",
                  "cmd", "/c", "echo hi")
    # One argument, the whole list ([string[]] $Arguments); -t dropped since PowerShell Direct has no terminal.
    assert rec.calls == [("iso-host01", "docker-cli", [["run", "-i", "--rm", "img", "cmd", "/c", "echo hi"]])]
    assert result.exit_code == 3 and result.stdout == "hi\nthere\n" and "oops" in result.stderr
    assert "-t dropped" in result.stderr
    huge = RemoteObject(PSCUSTOM, {"ExitCode": -1073741510, "Output": [], "Error": []})
    assert _cli(monkeypatch, Recorder([huge]), "docker", str(demo_lab), "iso-host01", "--", "ps").exit_code == 1


def test_demo_prints_both_tables_labelled_simulated(monkeypatch: pytest.MonkeyPatch, demo_lab: Path) -> None:
    rec = Recorder(recorded_2025())
    result = _cli(monkeypatch, rec, "demo", "isolation", str(demo_lab))
    assert result.exit_code == 0, result.output
    images = ["mcr.microsoft.com/windows/nanoserver:ltsc2025", "mcr.microsoft.com/windows/nanoserver:ltsc2019"]
    # The older image is pulled first (up gives a guest only its own build's images), then the demo runs.
    assert rec.calls == [("iso-host01", "image-pull", [images]), ("iso-host01", "isolation-demo", images)]
    out = result.stdout
    assert "process isolation" in out and "Hyper-V isolation" in out and "[SIMULATED]" in out
    for label in ("time to start", "kernel build seen inside", "process list", "memory overhead (utility VM)"):
        assert label in out
    assert "412 MB" in out and "none (no utility VM)" in out and "1.2 s" in out
    assert "(0xc0370101)" in out and "17763 (the image's)" in out
    assert out.rstrip().endswith("SIMULATED: figures modeled by the labctl simulator, not measured")


def test_demo_json_has_the_same_data(monkeypatch: pytest.MonkeyPatch, demo_lab: Path) -> None:
    result = _cli(monkeypatch, Recorder(recorded_2025(), simulated=False), "demo", "isolation", str(demo_lab),
                  "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["simulated"] is False and data["vm"] == "iso-host01" and data["guest_build"] == 26100
    assert data["older_image"]["process"]["error"] == MISMATCH
    assert data["same_image"]["process"]["visible_in_guest"] is True


def test_demo_refuses_a_vm_that_cannot_run_hyperv_isolation(monkeypatch: pytest.MonkeyPatch,
                                                              demo_lab: Path) -> None:
    rec = Recorder([])
    result = _cli(monkeypatch, rec, "demo", "isolation", str(demo_lab), "--vm", "plain01")
    assert result.exit_code == 2 and rec.calls == []
    assert "nested: false" in result.stderr and "labs/isolation-demo.yaml" in result.stderr


def test_demo_stops_when_the_older_image_cannot_be_pulled(monkeypatch: pytest.MonkeyPatch, demo_lab: Path) -> None:
    class NoRegistry(Recorder):
        def run(self, vm: ResolvedVm, step: str, arguments: list[object]) -> StepRun:
            if step == "image-pull":
                self.calls.append((vm.name, step, arguments))
                error = RemoteError("docker pull mcr.microsoft.com/windows/nanoserver:ltsc2019 failed (exit code 1): "
                                    "dial tcp: lookup mcr.microsoft.com: no such host.", "RuntimeException")
                return StepRun(vm.name, step, [], [error], [], "x", True)
            return super().run(vm, step, arguments)

    rec = NoRegistry(recorded_2025())
    result = _cli(monkeypatch, rec, "demo", "isolation", str(demo_lab))
    assert result.exit_code == 6  # a host command failed
    assert "no such host" in result.stderr and [c[1] for c in rec.calls] == ["image-pull"]
