"""PowerShell Direct, guest steps, sessions, Copy-VMFile and the guest_reboot fault (handlers on the
real host model; the wire is the runtime's business)."""

from __future__ import annotations

import uuid

import pytest
from guest_world import MAC, Harness, cred, make_vm, new_world, script
from unattend_samples import PASSWORD, document, shell_oobe, shell_specialize

from hvsim.core.faults import FaultRule
from hvsim.guest.handlers.step import parse_header
from hvsim.guest.models.guest import ANSWER_FILE
from hvsim.powershell.errors import PSError
from hvsim.powershell.values import PSObj, ScriptBlock
from hvsim.step_registry import GUEST_STEPS, find_step, guest_step

ENDED = "An error has occurred which Windows PowerShell cannot handle. A remote session might have ended."


@pytest.fixture
def lab():  # type: ignore[no-untyped-def]
    world = new_world()
    vm = make_vm(world)
    return world, vm, Harness(world)


# --- Invoke-Command -VMName ------------------------------------------------------------------------


def test_probe_returns_the_guest_identity(lab) -> None:  # type: ignore[no-untyped-def]
    world, _, h = lab
    out, errors = h.call("Invoke-Command", VMName=["dc01"], Credential=cred(), ScriptBlock=script("probe"))
    assert errors == []
    (obj,) = out
    assert isinstance(obj, PSObj)
    assert obj.type_names == ["Deserialized.System.Management.Automation.PSCustomObject",
                              "Deserialized.System.Object"]
    assert obj.get("ComputerName") == "LAB-DC01"
    assert obj.get("Caption") == "Microsoft Windows Server 2022 Datacenter"
    assert obj.get("BuildNumber") == 20348
    assert obj.get("TimeZone") == "UTC"
    assert obj.get("RdpEnabled") is True
    assert obj.get("PSRemoting") is True
    assert obj.get("AnswerFilePresent") is True
    assert obj.get("DnsServers") == ["10.0.0.1"]
    (adapter,) = obj.get("Adapters")
    assert adapter.get("Name") == "Ethernet"
    assert adapter.get("MacAddress") == "00-15-5D-38-01-00"
    assert adapter.get("IPv4") == ["10.0.0.5"]
    assert obj.get("LastBootUpTime") is not None
    # What Invoke-Command adds to remote output.
    assert obj.get("PSComputerName") == "dc01"
    assert isinstance(obj.get("RunspaceId"), uuid.UUID)
    assert obj.get("PSShowComputerName") is True
    assert world.counters.get("guest_step:probe") == 1
    modeled = world.clock.report()["modeled_seconds"]["dc01"]
    d = world.clock.durations
    assert modeled == (d["boot_to_heartbeat"] + d["first_boot_specialize_oobe"] + d["ps_direct_logon"]
                       + d["ps_direct_command"])


def test_hide_computer_name(lab) -> None:  # type: ignore[no-untyped-def]
    _, _, h = lab
    out, _ = h.call("Invoke-Command", VMName=["dc01"], Credential=cred(), ScriptBlock=script(),
                    HideComputerName=True)
    assert out[0].get("PSShowComputerName") is False


@pytest.mark.parametrize("user", ["Administrator", ".\\Administrator", "LAB-DC01\\Administrator"])
def test_credential_forms(lab, user: str) -> None:  # type: ignore[no-untyped-def]
    _, _, h = lab
    out, errors = h.call("Invoke-Command", VMName=["dc01"], Credential=cred(user), ScriptBlock=script())
    assert errors == [] and len(out) == 1


def test_remove_answer_file(lab) -> None:  # type: ignore[no-untyped-def]
    world, vm, h = lab
    out, _ = h.call("Invoke-Command", VMName=["dc01"], Credential=cred(),
                    ScriptBlock=script("remove-answer-file"))
    assert out[0].get("Changed") is True and out[0].get("RebootNeeded") is False
    assert world.storage.read_file(vm.hard_drives[0], ANSWER_FILE) is None
    out, _ = h.call("Invoke-Command", VMName=["dc01"], Credential=cred(),
                    ScriptBlock=script("remove-answer-file"))
    assert out[0].get("Changed") is False
    out, _ = h.call("Invoke-Command", VMName=["dc01"], Credential=cred(), ScriptBlock=script("probe"))
    assert out[0].get("AnswerFilePresent") is False
    assert world.counters.get("guest_step:remove-answer-file") == 2


@pytest.mark.parametrize("text", [
    "Get-Process",
    "# labctl-step: install-docker 1\nInstall-Docker",
    "# labctl-step: probe 99\n",
    "$x = 1\n# labctl-step: probe 1\n",
])
def test_unmodelled_script_is_refused(lab, text: str) -> None:  # type: ignore[no-untyped-def]
    _, _, h = lab
    with pytest.raises(PSError) as exc:
        h.call("Invoke-Command", VMName=["dc01"], Credential=cred(), ScriptBlock=ScriptBlock(text))
    err = exc.value
    assert err.terminating
    assert err.fqid == "ScriptNotModelled,Microsoft.PowerShell.Commands.InvokeCommandCommand"
    assert err.category == "NotImplemented"
    assert err.message.startswith("The simulated guest runs only the labctl guest steps it models; this "
                                  "script is not modelled by the simulator.")


def test_wrong_credential(lab) -> None:  # type: ignore[no-untyped-def]
    _, _, h = lab
    out, (err,) = h.call("Invoke-Command", VMName=["dc01"], Credential=cred(password="nope"),
                         ScriptBlock=script())
    assert out == []
    assert err.message == "The credential is invalid."
    assert err.fqid == "PSSessionStateBroken"
    assert err.category == "OpenError"
    assert err.exception_type.endswith("PSDirectException")
    assert err.target == "dc01"


def test_unknown_vm(lab) -> None:  # type: ignore[no-untyped-def]
    _, _, h = lab
    out, (err,) = h.call("Invoke-Command", VMName=["nosuch"], Credential=cred(), ScriptBlock=script())
    assert out == []
    assert err.message == "The input VMName nosuch does not resolve to a single virtual machine."
    assert err.fqid == "InvalidVMNameNotSingle,Microsoft.PowerShell.Commands.InvokeCommandCommand"
    assert err.category == "InvalidArgument"


def test_unknown_vm_id(lab) -> None:  # type: ignore[no-untyped-def]
    _, _, h = lab
    gid = uuid.uuid4()
    _, (err,) = h.call("Invoke-Command", VMId=[gid], Credential=cred(), ScriptBlock=script())
    assert err.message == f"The input VMId {gid} does not resolve to a single virtual machine."
    assert err.error_id == "InvalidVMIdNotSingle"


def test_vm_id_works(lab) -> None:  # type: ignore[no-untyped-def]
    _, vm, h = lab
    out, errors = h.call("Invoke-Command", VMId=[uuid.UUID(vm.id)], Credential=cred(), ScriptBlock=script())
    assert errors == [] and out[0].get("PSComputerName") == "dc01"


def test_off_vm(lab) -> None:  # type: ignore[no-untyped-def]
    world, vm, h = lab
    world.hv.stop(vm, turn_off=True)
    _, (err,) = h.call("Invoke-Command", VMName=["dc01"], Credential=cred(), ScriptBlock=script())
    assert err.message == "The virtual machine dc01 is not in running state."
    assert err.fqid == "InvalidVMState,Microsoft.PowerShell.Commands.InvokeCommandCommand"


def test_booting_vm_session_might_have_ended() -> None:
    world = new_world("realistic")
    world.clock.durations.update(boot_to_heartbeat=30.0, ps_direct_logon=0.0, ps_direct_command=0.0)
    make_vm(world)
    _, (err,) = Harness(world).call("Invoke-Command", VMName=["dc01"], Credential=cred(), ScriptBlock=script())
    assert err.message == ENDED
    assert err.fqid == "PSSessionStateBroken"
    assert err.exception_type.endswith("PSRemotingDataStructureException")


@pytest.mark.parametrize("xml", [
    document(specialize=shell_specialize("12345")),  # setup failed
    document(oobe=shell_oobe(password_xml="")),  # waits at OOBE
])
def test_guest_without_logon_refuses_ps_direct(xml: str) -> None:
    world = new_world()
    make_vm(world, unattend=xml)
    _, (err,) = Harness(world).call("Invoke-Command", VMName=["dc01"], Credential=cred(), ScriptBlock=script())
    assert err.message == ENDED and err.fqid == "PSSessionStateBroken"


def test_one_bad_vm_does_not_stop_the_others() -> None:
    world = new_world()
    make_vm(world, "dc01")
    make_vm(world, "web01", mac="00155D380101")
    out, errors = Harness(world).call("Invoke-Command", VMName=["dc01", "nosuch", "web01"], Credential=cred(),
                                      ScriptBlock=script())
    assert [o.get("PSComputerName") for o in out] == ["dc01", "web01"]
    assert [e.error_id for e in errors] == ["InvalidVMNameNotSingle"]


def test_argument_list_reaches_the_step(lab) -> None:  # type: ignore[no-untyped-def]
    _, _, h = lab
    seen: list[list[object]] = []

    @guest_step("echo-args-test")
    def _echo(world, vm, guest, args):  # type: ignore[no-untyped-def]
        seen.append(args)
        return [len(args)]

    try:
        out, _ = h.call("Invoke-Command", VMName=["dc01"], Credential=cred(),
                        ScriptBlock=script("echo-args-test"), ArgumentList=["a", 2])
        assert seen == [["a", 2]] and out == [2]
    finally:
        GUEST_STEPS.remove("echo-args-test")


def test_step_errors_are_non_terminating(lab) -> None:  # type: ignore[no-untyped-def]
    _, _, h = lab

    @guest_step("fail-test")
    def _fail(world, vm, guest, args):  # type: ignore[no-untyped-def]
        raise PSError("Access to the path is denied.", "UnauthorizedAccess", "PermissionDenied")

    try:
        out, (err,) = h.call("Invoke-Command", VMName=["dc01"], Credential=cred(), ScriptBlock=script("fail-test"))
        assert out == [] and err.target == "dc01"
    finally:
        GUEST_STEPS.remove("fail-test")


def test_header_parsing() -> None:
    assert parse_header("\n  # labctl-step: probe 1\nrest") == ("probe", "1")
    assert parse_header("#labctl-step:probe 1") == ("probe", "1")
    assert parse_header("# labctl step: probe 1") is None
    assert parse_header("# labctl-step: probe") is None
    assert find_step("# labctl-step: PROBE 1") is not None
    assert find_step("# labctl-step: probe 2") is not None  # both versions are modelled
    assert find_step("# labctl-step: probe 3") is None


# --- guest_reboot fault ------------------------------------------------------------------------------


def test_reboot_fault_breaks_the_call_then_guest_comes_back(lab) -> None:  # type: ignore[no-untyped-def]
    world, vm, h = lab
    world.faults.add(FaultRule("guest_reboot", match={"vm": "dc01"}))
    out, (err,) = h.call("Invoke-Command", VMName=["dc01"], Credential=cred(), ScriptBlock=script())
    assert out == [] and err.fqid == "PSSessionStateBroken" and err.message == ENDED
    assert vm.guest.boot_count == 2
    # instant profile: immediately back
    out, errors = h.call("Invoke-Command", VMName=["dc01"], Credential=cred(), ScriptBlock=script())
    assert errors == [] and len(out) == 1
    assert world.clock.report()["modeled_seconds"]["dc01"] >= world.clock.durations["guest_reboot"]


def test_reboot_fault_makes_guest_unavailable_for_guest_reboot() -> None:
    world = new_world("realistic")
    world.clock.durations.update(boot_to_heartbeat=0.0, first_boot_specialize_oobe=0.0, guest_reboot=60.0,
                                 ps_direct_logon=0.0, ps_direct_command=0.0)
    vm = make_vm(world)
    world.faults.add(FaultRule("guest_reboot", match={"vm": "dc01"}))
    h = Harness(world)
    h.call("Invoke-Command", VMName=["dc01"], Credential=cred(), ScriptBlock=script())
    _, (err,) = h.call("Invoke-Command", VMName=["dc01"], Credential=cred(), ScriptBlock=script())
    assert err.message == ENDED
    assert vm.guest.heartbeat(world, vm) == "NoContact"


# --- sessions ---------------------------------------------------------------------------------------------


def test_session_lifecycle(lab) -> None:  # type: ignore[no-untyped-def]
    world, _, h = lab
    (sess,), errors = h.call("New-PSSession", VMName=["dc01"], Credential=cred())
    assert errors == []
    assert sess.type_names[0] == "System.Management.Automation.Runspaces.PSSession"
    assert sess.get("Id") == 1 and sess.get("Name") == "Session1"
    assert sess.get("ComputerName") == "dc01"
    assert str(sess.get("ComputerType")) == "VirtualMachine"
    assert str(sess.get("State")) == "Opened"
    assert str(sess.get("Availability")) == "Available"
    out, errors = h.call("Invoke-Command", Session=[sess], ScriptBlock=script())
    assert errors == [] and out[0].get("RunspaceId") == sess.get("InstanceId")
    d = world.clock.durations
    before = world.clock.report()["modeled_seconds"]["dc01"]
    h.call("Invoke-Command", Session=[1], ScriptBlock=script())
    assert world.clock.report()["modeled_seconds"]["dc01"] - before == pytest.approx(d["ps_direct_command"])
    listed, _ = h.call("Get-PSSession")
    assert [s.get("Id") for s in listed] == [1]
    h.call("Remove-PSSession", Id=[1])
    assert h.call("Get-PSSession")[0] == []
    _, (err,) = h.call("Get-PSSession", Id=[1])
    assert err.message == "The remote session with the session ID 1 is not available."


def test_session_breaks_when_the_guest_reboots(lab) -> None:  # type: ignore[no-untyped-def]
    world, _, h = lab
    (sess,), _ = h.call("New-PSSession", VMName=["dc01"], Credential=cred(), Name=["lab"])
    assert sess.get("Name") == "lab"
    world.faults.add(FaultRule("guest_reboot", match={"vm": "dc01"}))
    _, (err,) = h.call("Invoke-Command", Session=[sess], ScriptBlock=script())
    assert err.fqid == "PSSessionStateBroken"
    (listed,), _ = h.call("Get-PSSession", Name=["lab"])
    assert str(listed.get("State")) == "Broken"
    _, (err,) = h.call("Invoke-Command", Session=[sess], ScriptBlock=script())
    assert err.error_id == "InvokeCommandCommandInvalidSessionState"
    assert err.message.startswith("Because the session state for session lab, ")
    assert err.message.endswith("The session state is Broken.")


def test_new_pssession_errors(lab) -> None:  # type: ignore[no-untyped-def]
    world, vm, h = lab
    _, (err,) = h.call("New-PSSession", VMName=["dc01"], Credential=cred(password="x"))
    assert err.message == "The credential is invalid." and err.fqid == "PSSessionOpenFailed"
    _, (err,) = h.call("New-PSSession", VMName=["ghost"], Credential=cred())
    assert err.fqid == "InvalidVMNameNotSingle,Microsoft.PowerShell.Commands.NewPSSessionCommand"
    world.hv.stop(vm, turn_off=True)
    _, (err,) = h.call("New-PSSession", VMName=["dc01"], Credential=cred())
    assert err.error_id == "InvalidVMState"
    assert h.session.ps_sessions == {}


def test_sessions_are_per_pool(lab) -> None:  # type: ignore[no-untyped-def]
    world, _, h = lab
    h.call("New-PSSession", VMName=["dc01"], Credential=cred())
    other = Harness(world)
    assert other.call("Get-PSSession")[0] == []
    _, (err,) = other.call("Invoke-Command", Session=[1], ScriptBlock=script())
    assert err.error_id == "RemoteRunspaceNotAvailableForSpecifiedSessionId"


# --- Copy-VMFile ---------------------------------------------------------------------------------------------


def _host_file(world, path: str = "C:\\Staging\\daemon.json", data: bytes = b'{"hosts":[]}') -> str:  # type: ignore[no-untyped-def]
    world.storage.mkdirs("C:\\Staging")
    world.storage.write(world.storage.resolve(path), data)
    return path


def test_copy_vm_file_needs_guest_service_interface(lab) -> None:  # type: ignore[no-untyped-def]
    world, vm, h = lab
    src = _host_file(world)
    _, (err,) = h.call("Copy-VMFile", Name=["dc01"], SourcePath=src, DestinationPath="C:\\Windows\\Temp\\d.json",
                       FileSource="Host")
    assert err.message.startswith("Failed to initiate copying files to the guest.\n")
    assert "The device is not ready for use. (0x800710DF)" in err.message
    assert world.storage.read_file(vm.hard_drives[0], "\\Windows\\Temp\\d.json") is None


def test_copy_vm_file_exists_and_force() -> None:
    world = new_world()
    vm = make_vm(world, gsi=True)
    h = Harness(world)
    src = _host_file(world)
    params = {"Name": ["dc01"], "SourcePath": src, "DestinationPath": "C:\\ProgramData\\docker\\daemon.json",
              "FileSource": "Host"}
    _, (err,) = h.call("Copy-VMFile", **params)
    assert "The system cannot find the path specified. (0x80070003)" in err.message
    out, errors = h.call("Copy-VMFile", CreateFullPath=True, **params)
    assert out == [] and errors == []
    assert world.storage.read_file(vm.hard_drives[0], "\\ProgramData\\docker\\daemon.json") == b'{"hosts":[]}'
    _, (err,) = h.call("Copy-VMFile", CreateFullPath=True, **params)
    assert "failed to initiate copying files to the guest: the file exists. (0x80070050)" in err.message.lower()
    _host_file(world, data=b"v2")
    _, errors = h.call("Copy-VMFile", CreateFullPath=True, Force=True, **params)
    assert errors == []
    assert world.storage.read_file(vm.hard_drives[0], "\\ProgramData\\docker\\daemon.json") == b"v2"


def test_copy_vm_file_into_a_folder_and_missing_source() -> None:
    world = new_world()
    vm = make_vm(world, gsi=True)
    h = Harness(world)
    src = _host_file(world)
    _, errors = h.call("Copy-VMFile", Name=["dc01"], SourcePath=src, DestinationPath="C:\\Windows\\Temp",
                       FileSource="Host")
    assert errors == []
    assert world.storage.read_file(vm.hard_drives[0], "\\Windows\\Temp\\daemon.json") is not None
    _, (err,) = h.call("Copy-VMFile", Name=["dc01"], SourcePath="C:\\nope.bin", DestinationPath="C:\\x.bin",
                       FileSource="Host")
    assert "The system cannot find the file specified. (0x80070002)" in err.message


def test_copy_vm_file_vm_states() -> None:
    world = new_world()
    vm = make_vm(world, gsi=True)
    h = Harness(world)
    src = _host_file(world)
    _, (err,) = h.call("Copy-VMFile", Name=["ghost"], SourcePath=src, DestinationPath="C:\\a", FileSource="Host")
    assert err.message == 'Hyper-V was unable to find a virtual machine with name "ghost".'
    world.hv.stop(vm, turn_off=True)
    _, (err,) = h.call("Copy-VMFile", Name=["dc01"], SourcePath=src, DestinationPath="C:\\a", FileSource="Host")
    assert err.error_id == "InvalidState"


def test_copy_vm_file_guest_not_ready() -> None:
    world = new_world()
    make_vm(world, gsi=True, unattend=document(oobe=shell_oobe(password_xml="")))
    src = _host_file(world)
    _, (err,) = Harness(world).call("Copy-VMFile", Name=["dc01"], SourcePath=src, DestinationPath="C:\\a",
                                    FileSource="Host")
    assert "0x800710DF" in err.message


def test_probe_shows_the_guest_view_of_addresses() -> None:
    world = new_world()
    make_vm(world, switch=None)  # static address configured, link down
    out, _ = Harness(world).call("Invoke-Command", VMName=["dc01"], Credential=cred(), ScriptBlock=script())
    (adapter,) = out[0].get("Adapters")
    assert adapter.get("IPv4") == ["10.0.0.5"]
    world2 = new_world()
    make_vm(world2, mac="00155D380199")  # no static config for this adapter: APIPA
    out, _ = Harness(world2).call("Invoke-Command", VMName=["dc01"], Credential=cred(), ScriptBlock=script())
    (adapter,) = out[0].get("Adapters")
    assert adapter.get("IPv4")[0].startswith("169.254.")


def test_shipped_guest_scripts_are_modelled() -> None:
    # Every script labctl ships (templates/guest) must have a model here, at the same version.
    from pathlib import Path

    guest_dir = Path(__file__).parents[2] / "labctl" / "resources" / "templates" / "guest"
    scripts = sorted(guest_dir.glob("*.ps1"))
    assert scripts, f"no guest scripts in {guest_dir}"
    for path in scripts:
        assert find_step(path.read_text(encoding="utf-8")) is not None, f"{path.name} has no simulator model"


def test_password_never_in_world_state(lab) -> None:  # type: ignore[no-untyped-def]
    import json

    world, _, h = lab
    h.call("New-PSSession", VMName=["dc01"], Credential=cred())
    assert PASSWORD not in json.dumps(world.to_state())
    assert MAC  # the fixture VM uses the sample MAC


def test_reboot_fault_at_session_open(lab) -> None:  # type: ignore[no-untyped-def]
    world, vm, h = lab
    world.faults.add(FaultRule("guest_reboot", match={"vm": "dc01"}))
    out, (err,) = h.call("New-PSSession", VMName=["dc01"], Credential=cred())
    assert out == [] and err.fqid == "PSSessionOpenFailed"
    assert err.message == "[dc01] " + ENDED
    assert vm.guest.boot_count == 2 and h.session.ps_sessions == {}
