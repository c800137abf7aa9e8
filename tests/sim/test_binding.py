"""Parameter binding against the real cmdlet catalog: sets, positions, conversions, exact error texts."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from hvsim.powershell.binding import _check_null, _is_mandatory_anywhere, bind, convert, parse_type, validate
from hvsim.powershell.catalog import load_catalog
from hvsim.powershell.errors import PSError
from hvsim.powershell.values import PRESENT, Credential, PSEnum, PSObj, ScriptBlock, SecureText, UInt64

CASES_DIR = Path(__file__).parent / "cases" / "binding"
CATALOG = load_catalog()
PBE = "System.Management.Automation.ParameterBindingException"


def convert_and_check(p: Any, value: Any) -> Any:
    """One compiled-cmdlet argument through conversion, validation and the mandatory check."""
    converted = convert(value, p)
    validate(p, converted)
    _check_null(p, converted, _is_mandatory_anywhere(p))
    return converted


def _value(raw: Any) -> Any:
    if isinstance(raw, dict) and raw.get("$switch"):
        return PRESENT
    if isinstance(raw, list):
        return [_value(v) for v in raw]
    return raw


def _plain(value: Any) -> Any:
    if isinstance(value, PSEnum):
        return value.name
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _cases() -> list[Any]:
    out = []
    for path in sorted(CASES_DIR.glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8"))["cases"]:
            out.append(pytest.param(case, id=f"{path.stem}:{case['id']}"))
    return out


def _bind(cmdlet: str, params: list[tuple[str | None, Any]]) -> Any:
    spec = CATALOG.get(cmdlet)
    assert spec is not None, cmdlet
    try:
        return bind(spec, params, invoked_as=cmdlet).finish()  # no pipeline input, as the runtime finishes
    except PSError as err:
        err.command_type = spec.type  # what the runtime does
        raise


@pytest.mark.parametrize("case", _cases())
def test_binding_case(case: dict[str, Any]) -> None:
    params = [(name, _value(value)) for name, value in case["params"]]
    if "fqid" in case:
        with pytest.raises(PSError) as info:
            _bind(case["cmdlet"], params)
        assert info.value.fqid == case["fqid"]
        assert info.value.message == case["message"]
        return
    call = _bind(case["cmdlet"], params)
    assert call.parameter_set == case["set"]
    for key, expected in case.get("values", {}).items():
        assert _plain(call.params[key]) == expected, key


def test_binding_errors_are_parameter_binding_exceptions() -> None:
    with pytest.raises(PSError) as info:
        _bind("Get-VM", [("Nope", 1)])
    err = info.value
    assert err.exception_type == PBE
    assert err.category == "InvalidArgument"
    assert err.terminating


def test_validation_errors_are_invalid_data() -> None:
    with pytest.raises(PSError) as info:
        _bind("New-VM", [("Generation", 3)])
    assert info.value.category == "InvalidData"
    assert info.value.exception_type == "System.Management.Automation.ParameterBindingValidationException"


def test_sized_integers_keep_their_dotnet_type() -> None:
    call = _bind("New-VHD", [("Path", "a.vhdx"), ("SizeBytes", "1GB")])
    assert isinstance(call.params["SizeBytes"], UInt64)
    assert call.params["SizeBytes"] == 1024**3


def test_enum_values_are_psenums_with_real_type() -> None:
    call = _bind("New-VMSwitch", [("Name", "lab"), ("SwitchType", "Internal")])
    assert call.params["SwitchType"] == PSEnum("Microsoft.HyperV.PowerShell.VMSwitchType", "Internal", 1)


def test_scriptblock_and_credential_objects_bind() -> None:
    cred = Credential("Administrator", SecureText("pw"))
    call = _bind("Invoke-Command", [("VMName", "web01"), ("ScriptBlock", ScriptBlock("hostname")),
                                    ("Credential", cred)])
    assert call.parameter_set == "VMName"
    assert call.params["ScriptBlock"] == ScriptBlock("hostname")
    assert call.params["Credential"] is cred
    assert call.params["VMName"] == ["web01"]


def test_credential_given_a_user_name_cannot_prompt_over_remoting() -> None:
    with pytest.raises(PSError) as info:
        _bind("Invoke-Command", [("VMName", "web01"), ("ScriptBlock", ScriptBlock("x")), ("Credential", "admin")])
    err = info.value
    assert err.fqid == "ParameterArgumentTransformationError,Microsoft.PowerShell.Commands.InvokeCommandCommand"
    assert err.category == "InvalidData"
    assert err.message == (
        "Cannot process argument transformation on parameter 'Credential'. A command that prompts the user "
        "failed because the host program or the command type does not support user interaction. The host was "
        "attempting to request confirmation with the following message: Enter your credentials.")


def test_securestring_from_plain_string_fails() -> None:
    spec = CATALOG.get("Invoke-Command")
    assert spec is not None
    from hvsim.powershell.catalog.spec import ParamSpec
    p = ParamSpec("Password", "securestring")
    with pytest.raises(PSError) as info:
        convert("x", p)
    assert info.value.message == ("Cannot bind parameter 'Password'. Cannot convert the \"x\" value of type "
                                  "\"System.String\" to type \"System.Security.SecureString\".")


def test_live_vm_object_binds_deserialized_does_not() -> None:
    live = PSObj(["Microsoft.HyperV.PowerShell.VirtualMachine", "System.Object"], {"Name": "a"},
                 to_string="VirtualMachine (Name = 'a')")
    call = _bind("Stop-VM", [("VM", live)])
    assert call.parameter_set == "VMObject"
    assert call.params["VM"] == [live]
    dead = PSObj(["Deserialized.Microsoft.HyperV.PowerShell.VirtualMachine", "Deserialized.System.Object"],
                 {"Name": "a"}, to_string="VirtualMachine (Name = 'a')")
    with pytest.raises(PSError) as info:
        _bind("Stop-VM", [("VM", dead)])
    assert info.value.message == (
        "Cannot bind parameter 'VM'. Cannot convert the \"VirtualMachine (Name = 'a')\" value of type "
        "\"Deserialized.Microsoft.HyperV.PowerShell.VirtualMachine\" to type "
        "\"Microsoft.HyperV.PowerShell.VirtualMachine\".")


def test_mandatory_parameter_refuses_empty_string() -> None:
    with pytest.raises(PSError) as info:
        _bind("New-NetNat", [("Name", "")])
    assert info.value.fqid == "ParameterArgumentValidationErrorEmptyStringNotAllowed,New-NetNat"
    assert info.value.message == "Cannot bind argument to parameter 'Name' because it is an empty string."


def test_pipeline_by_value_binds_live_object() -> None:
    spec = CATALOG.get("Stop-VM")
    assert spec is not None
    binding = bind(spec, [("Force", PRESENT)], expects_input=True)
    vm = PSObj(["Microsoft.HyperV.PowerShell.VirtualMachine", "System.Object"], {"Name": "a"})
    call = binding.with_input(vm)
    assert call.parameter_set == "VMObject"
    assert call.params["VM"] == [vm]
    assert call.params["Force"] is True


def test_pipeline_by_property_name_uses_aliases() -> None:
    # Get-Disk | New-VHD -Path x -Fixed: SourceDisk (alias Number) binds ByPropertyName.
    spec = CATALOG.get("New-VHD")
    assert spec is not None
    binding = bind(spec, [("Path", "c.vhdx"), ("Fixed", PRESENT)], expects_input=True)
    disk = PSObj(["Microsoft.Management.Infrastructure.CimInstance#ROOT/Microsoft/Windows/Storage/MSFT_Disk"],
                 {"Number": 1, "FriendlyName": "disk"})
    call = binding.with_input(disk)
    assert call.params["SourceDisk"] == 1
    assert call.parameter_set == "FixedWithSource"


def test_pipeline_string_by_value_prefers_default_set() -> None:
    # ClusterObject (PSObject, ByValue) would take anything; the default set (Name) is tried first.
    spec = CATALOG.get("Get-VM")
    assert spec is not None
    call = bind(spec, [], expects_input=True).with_input("web01")
    assert call.params["Name"] == ["web01"]
    assert call.parameter_set == "Name"


def test_pipeline_input_not_bound() -> None:
    spec = CATALOG.get("New-NetNat")
    assert spec is not None
    with pytest.raises(PSError) as info:
        bind(spec, [("Name", "n")], expects_input=True).with_input(42)
    assert info.value.error_id == "InputObjectNotBound"
    assert info.value.message.startswith("The input object cannot be bound to any parameters for the command")


def test_mandatory_pipeline_parameter_is_deferred_when_input_expected() -> None:
    spec = CATALOG.get("Stop-VM")
    assert spec is not None
    binding = bind(spec, [], expects_input=True)  # no MissingMandatoryParameter yet
    vm = PSObj(["Microsoft.HyperV.PowerShell.VirtualMachine", "System.Object"], {"Name": "a"})
    call = binding.with_input(vm)  # the piped VM supplies the mandatory -VM
    assert (call.parameter_set, list(call.params)) == ("VMObject", ["VM"])


def test_missing_non_pipeline_mandatory_is_reported_before_input() -> None:
    spec = CATALOG.get("Copy-VMFile")
    assert spec is not None
    with pytest.raises(PSError) as info:
        bind(spec, [("SourcePath", "a")], expects_input=True)
    assert info.value.error_id == "MissingMandatoryParameter"
    assert "DestinationPath" in info.value.message


def test_guid_parameter_accepts_uuid_and_string() -> None:
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert _bind("Get-VM", [("Id", u)]).params["Id"] == u
    assert _bind("Get-VM", [("Id", str(u))]).params["Id"] == u


@pytest.mark.parametrize(("raw", "expected"), [
    ("int32", ("int", "System.Int32", False)),
    ("string[]", ("string", "System.String", True)),
    ("Microsoft.HyperV.PowerShell.VirtualMachine[]", ("object", "Microsoft.HyperV.PowerShell.VirtualMachine", True)),
    ("enum:X.Y=A|B:5", ("enum", "X.Y", False)),
    ("set:string=a|b", ("string", "System.String", False)),
])
def test_parse_type(raw: str, expected: tuple[str, str, bool]) -> None:
    pt = parse_type(raw)
    assert (pt.kind, pt.net, pt.is_array) == expected


def test_mandatory_parameter_refuses_null_positional() -> None:
    with pytest.raises(PSError) as info:
        _bind("Test-Path", [(None, None)])
    assert info.value.error_id == "ParameterArgumentValidationErrorNullNotAllowed"
    assert info.value.category == "InvalidData"
    assert info.value.message == "Cannot bind argument to parameter 'Path' because it is null."


def test_function_string_parameter_turns_null_into_an_empty_string() -> None:
    # A CDXML cmdlet is a function: its [string] type constraint converts $null to "" before the mandatory check.
    with pytest.raises(PSError) as info:
        _bind("New-NetNat", [(None, None)])
    assert info.value.fqid == "ParameterArgumentValidationErrorEmptyStringNotAllowed,New-NetNat"
    assert info.value.message == "Cannot bind argument to parameter 'Name' because it is an empty string."


def test_validation_attribute_answers_before_the_mandatory_check() -> None:
    spec = CATALOG.get("Test-Path")
    assert spec is not None
    path = spec.parameters["Path"]
    guarded = type(path)(path.name, path.type, path.aliases, path.sets, path.common, ("NotNullOrEmpty",))
    with pytest.raises(PSError) as info:
        convert_and_check(guarded, None)
    assert info.value.error_id == "ParameterArgumentValidationError"
    assert info.value.message == ("Cannot validate argument on parameter 'Path'. The argument is null or empty. "
                                  "Provide an argument that is not null or empty, and then try the command again.")
    with pytest.raises(PSError) as info:
        convert_and_check(guarded, ["a", ""])  # Windows PowerShell 5.1: an empty element is "null or empty"
    assert info.value.message.endswith("The argument is null or empty. Provide an argument that is not null or "
                                       "empty, and then try the command again.")
    with pytest.raises(PSError) as info:
        convert_and_check(guarded, [])
    assert info.value.message.endswith("The argument is null, empty, or an element of the argument collection "
                                       "contains a null value. Supply a collection that does not contain any null "
                                       "values and then try the command again.")


def test_validate_range() -> None:
    spec = CATALOG.get("Set-VMProcessor")
    assert spec is not None
    count = spec.parameters["Count"]
    ranged = type(count)(count.name, count.type, count.aliases, count.sets, count.common, ("Range:1:240",))
    with pytest.raises(PSError) as info:
        convert_and_check(ranged, 300)
    assert info.value.message == ("Cannot validate argument on parameter 'Count'. The 300 argument is greater than "
                                  "the maximum allowed range of 240. Supply an argument that is less than or equal "
                                  "to 240 and then try the command again.")
    with pytest.raises(PSError) as info:
        convert_and_check(ranged, 0)
    assert "The 0 argument is less than the minimum allowed range of 1." in info.value.message


def test_null_for_a_value_type_property_fails_in_its_setter() -> None:
    with pytest.raises(PSError) as info:
        _bind("Set-VMProcessor", [("VMName", "a"), ("Count", None)])
    assert info.value.error_id == "ParameterBindingFailed"
    assert info.value.category == "WriteError"
    assert info.value.message == ("Cannot bind parameter 'Count' to the target. Exception setting \"Count\": "
                                  "\"Cannot convert null to type \"System.Int64\".\"")


def test_null_for_a_bool_parameter_is_refused_at_once() -> None:
    with pytest.raises(PSError) as info:
        _bind("Set-VMProcessor", [("VMName", "a"), ("ExposeVirtualizationExtensions", None)])
    assert info.value.error_id == "ParameterArgumentValidationErrorNullNotAllowed"
    assert info.value.category == "InvalidArgument"


def test_switch_given_null_is_present() -> None:
    assert _bind("Stop-VM", [("Name", "a"), ("Force", None)]).params["Force"] is True


def test_mandatory_array_refuses_empty_element() -> None:
    with pytest.raises(PSError) as info:
        _bind("Stop-VM", [("Name", ["a", ""])])
    assert info.value.error_id == "ParameterArgumentValidationErrorEmptyStringNotAllowed"
