"""Cmdlets typed into `labctl exec` (bound against the catalog in the guest) and Enter-PSSession / Get-PSSession
-InstanceId / New-PSSession failures on the host, through the runtime's binding."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from container_lab import Lab
from guest_world import cred
from hypothesis import given, settings
from hypothesis import strategies as st

from hvsim.guest.handlers.commands import split_words
from hvsim.powershell.errors import PSError

ADD = "Microsoft.Windows.ServerManager.Commands.AddWindowsFeatureCommand"
ENTER = "Microsoft.PowerShell.Commands.EnterPSSessionCommand"


@pytest.fixture
def lab() -> Lab:
    the_lab = Lab()
    the_lab.vm("h1")
    return the_lab


def _exec(lab: Lab, command: str, vm: str = "h1") -> tuple[list[Any], list[PSError]]:
    res = lab.step(vm, "exec", command)
    return res.outputs, res.errors


def test_install_windowsfeature_installs_pending_and_reports_the_result(lab: Lab) -> None:
    out, errors = _exec(lab, "Install-WindowsFeature -Name Containers")
    assert errors == []
    (result,) = out
    assert result.get("Success") is True and str(result.get("RestartNeeded")) == "Yes"
    assert str(result.get("ExitCode")) == "SuccessRestartRequired"
    assert [f.get("Name") for f in result.get("FeatureResult")] == ["Containers"]
    (row,) = _exec(lab, "Get-WindowsFeature Containers")[0]
    assert str(row.get("InstallState")) == "InstallPending"
    (again,) = _exec(lab, "Install-WindowsFeature Containers")[0]
    assert str(again.get("ExitCode")) == "NoChangeNeeded" and str(again.get("RestartNeeded")) == "No"
    # The colon form and an en dash (which PowerShell reads as a dash) bind the same way.
    for command in ("Install-WindowsFeature -Name:containers", "Install-WindowsFeature \u2013Name Containers"):
        (same,) = _exec(lab, command)[0]
        assert str(same.get("ExitCode")) == "NoChangeNeeded", command


def test_hyperv_with_management_tools_adds_the_tools(lab: Lab) -> None:
    (result,) = _exec(lab, "Install-WindowsFeature Hyper-V -IncludeManagementTools")[0]
    names = [f.get("Name") for f in result.get("FeatureResult")]
    assert names == ["Hyper-V", "RSAT-Hyper-V-Tools", "Hyper-V-Tools", "Hyper-V-PowerShell"]
    (tools_only,) = _exec(lab, "Install-WindowsFeature -Name Hyper-V-PowerShell")[0]
    assert str(tools_only.get("ExitCode")) == "NoChangeNeeded"


def test_an_unknown_name_fails_the_whole_call_before_anything_changes(lab: Lab) -> None:
    out, (err,) = _exec(lab, "Install-WindowsFeature Containers,Application-Server")
    assert err.message == ("ArgumentNotValid: The role, role service, or feature name is not valid: "
                           "'Application-Server'. The name was not found.")
    assert err.fqid == f"NameDoesNotExist,{ADD}" and err.activity == "Install-WindowsFeature"
    assert err.target == "Application-Server"
    (result,) = out
    assert result.get("Success") is False and str(result.get("ExitCode")) == "InvalidArgs"
    (row,) = _exec(lab, "Get-WindowsFeature Containers")[0]
    assert str(row.get("InstallState")) == "Available"


def test_binding_errors_are_install_windowsfeatures_own(lab: Lab) -> None:
    for command in ("Install-WindowsFeature -Name $null", "Install-WindowsFeature $null",
                    "Install-WindowsFeature -Name ''"):
        _, (err,) = _exec(lab, command)
        assert err.fqid == f"ParameterArgumentValidationError,{ADD}", command
        assert err.message.startswith("Cannot validate argument on parameter 'Name'. The argument is null or empty.")
        assert err.category == "InvalidData" and err.target is None
    _, (err,) = _exec(lab, "Install-WindowsFeature -Nmae Containers")
    assert err.fqid == f"NamedParameterNotFound,{ADD}" and err.activity == "Install-WindowsFeature"
    for command in ("Add-WindowsFeature -Name", "Install-WindowsFeature -Name -IncludeAllSubFeature"):
        _, (err,) = _exec(lab, command)  # (the alias) a parameter without its argument
        assert err.fqid == f"MissingArgument,{ADD}", command
    out, errors = _exec(lab, "Install-WindowsFeature -Name Nope -ErrorAction SilentlyContinue")
    assert errors == [] and str(out[0].get("ExitCode")) == "InvalidArgs"


def test_what_the_guest_does_not_model_is_refused(lab: Lab) -> None:
    for command in ("Install-WindowsFeature Web-Server", "Install-WindowsFeature Containers -Restart",
                    "Install-WindowsFeature -Name $features"):
        _, (err,) = _exec(lab, command)
        assert "not modelled by the simulator" in err.message and err.fqid == "CommandNotModelled", command
    (row,) = _exec(lab, "Get-WindowsFeature Containers")[0]
    assert str(row.get("InstallState")) == "Available"


def test_the_command_line_is_split_as_argument_mode_does() -> None:
    words = split_words("Install-WindowsFeature -Name 'Hyper-V', \"a b\",c -Flag:$true")
    assert [(w.text, w.quoted, w.comma) for w in words] == [
        ("Install-WindowsFeature", "", False), ("-Name", "", False), ("Hyper-V", "'", False), (",", "", True),
        ("a b", '"', False), (",", "", True), ("c", "", False), ("-Flag:$true", "", False)]


def _words_before(command: str) -> list[str]:
    """How `labctl exec` split its command line before it used split_words (hvsim/docker/handlers.py tokenize):
    the oracle the property below checks split_words(commas=False) against."""
    words: list[str] = []
    cur = ""
    quote: str | None = None
    has = False
    for ch in command.strip():
        if quote:
            if ch == quote:
                quote = None
            else:
                cur += ch
            continue
        if ch in ("'", '"'):
            quote = ch
            has = True
        elif ch.isspace():
            if cur or has:
                words.append(cur)
            cur, has = "", False
        else:
            cur += ch
    if cur or has:
        words.append(cur)
    return words


_COMMAND_CHARS = st.sampled_from([*"ab-$:,|;", " ", "\t", "\n", "\u00a0", "'", '"'])


@settings(max_examples=500, deadline=None)
@given(st.text(_COMMAND_CHARS, max_size=30) | st.text(max_size=30))
def test_without_commas_the_exec_words_are_those_of_the_old_tokenizer(command: str) -> None:
    assert [w.text for w in split_words(command, commas=False)] == _words_before(command)


def test_without_commas_empty_quoted_words_stay_and_commas_belong_to_their_word() -> None:
    assert [w.text for w in split_words(" docker  ps '' \"a,b\"x,y ", commas=False)] == \
        ["docker", "ps", "", "a,bx,y"]


# --- Enter-PSSession, Get-PSSession -InstanceId, New-PSSession ------------------------------------------------


def test_enter_pssession_vm_failures(lab: Lab) -> None:
    (err,) = lab.run("Enter-PSSession", [("VMName", "ghost"), ("Credential", cred())]).errors
    assert err.message == "The input VMName parameter does not resolve to any virtual machine."
    assert err.fqid == f"InvalidVMNameNoVM,{ENTER}" and not err.terminating
    (err,) = lab.run("Enter-PSSession", [("VMId", str(uuid.uuid4())), ("Credential", cred())]).errors
    assert err.fqid == f"InvalidVMId,{ENTER}"
    (err,) = lab.run("Enter-PSSession", [("VMName", "h1"), ("Credential", cred(password="nope"))]).errors
    assert (err.message, err.category) == ("The credential is invalid.", "InvalidArgument")
    assert err.fqid == f"CreateRemoteRunspaceForVMFailed,{ENTER}" and err.exception_type.endswith("PSDirectException")
    # Opened: an interactive session is not modelled (never a silent success). Credential is positional (1) here.
    (err,) = lab.run("Enter-PSSession", [("VMName", "h1"), (None, cred())]).errors
    assert err.fqid == f"InteractiveSessionNotModelled,{ENTER}" and err.terminating
    # A lone positional name is -ComputerName (the default set), as in PowerShell.
    (err,) = lab.run("Enter-PSSession", [(None, "h1")]).errors
    assert err.fqid == f"RemoteHostDoesNotSupportPushRunspace,{ENTER}"
    vm = lab.get_vm("h1")
    lab.world.hv.stop(vm, turn_off=True)
    (err,) = lab.run("Enter-PSSession", [("VMName", "h1"), ("Credential", cred())]).errors
    assert err.message == "The virtual machine h1 is not in running state."


def test_enter_pssession_other_sets_are_refused_inside_a_remote_session(lab: Lab) -> None:
    (err,) = lab.run("Enter-PSSession", [("ComputerName", "server01")]).errors
    assert err.message == ("You are currently in a Windows PowerShell PSSession and cannot use the Enter-PSSession "
                           "cmdlet to enter another PSSession.")
    assert err.fqid == f"RemoteHostDoesNotSupportPushRunspace,{ENTER}"


def test_get_pssession_by_instance_id(lab: Lab) -> None:
    (sess,) = lab.run("New-PSSession", [("VMName", ["h1"]), ("Credential", cred())]).outputs
    inst = str(sess.get("InstanceId"))
    (found,) = lab.run("Get-PSSession", [("InstanceId", [inst])]).outputs
    assert str(found.get("InstanceId")) == inst
    gone = str(uuid.uuid4())
    res = lab.run("Get-PSSession", [("InstanceId", [inst, gone])])
    assert len(res.outputs) == 1
    (err,) = res.errors
    assert err.message == f"Remote session is not available for {gone}."
    assert err.target_type == "Guid" and err.category == "InvalidArgument"


def test_new_pssession_failure_names_the_remote_runspace(lab: Lab) -> None:
    (err,) = lab.run("New-PSSession", [("VMName", ["h1"]), ("Credential", cred(password="nope"))]).errors
    assert err.fqid == "PSSessionOpenFailed" and err.target == "System.Management.Automation.RemoteRunspace"
    assert err.target_type == "RemoteRunspace"
