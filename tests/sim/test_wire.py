"""The simulator's wire layer driven by the unmodified pypsrp client: transports, pipelines, values."""

from __future__ import annotations

import time
import uuid

import pytest
from pypsrp.complex_objects import GenericComplexObject, PSCredential, PSInvocationState
from pypsrp.powershell import PowerShell, RunspacePool

from hvsim.powershell.values import Credential, Int64, PSObj, SecureText


def test_output_objects_keep_type_names_and_properties(fake_pool: RunspacePool) -> None:
    ps = PowerShell(fake_pool)
    ps.add_cmdlet("Get-Thing").add_parameter("Name", "web01")
    out = ps.invoke()
    assert not ps.had_errors
    assert len(out) == 1
    vm = out[0]
    assert isinstance(vm, GenericComplexObject)
    assert vm.types[0] == "Microsoft.HyperV.PowerShell.VirtualMachine"
    assert "System.Object" in vm.types
    props = vm.adapted_properties
    assert props["Name"] == "web01"
    assert props["MemoryStartup"] == 2 * 1024**3
    assert props["SizeBytes"] == 127 * 1024**3
    assert props["ProcessorCount"] == 2
    assert props["DynamicMemoryEnabled"] is False
    assert props["Tags"] == ["a", "b"]
    assert props["Id"] == uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert str(vm) == "VirtualMachine (Name = 'web01')"
    state = props["State"]
    assert state.types[:2] == ["Microsoft.HyperV.PowerShell.VMState", "System.Enum"]
    assert str(state) == "Running"


def test_enum_and_sized_ints_serialize_as_dotnet_types() -> None:
    from psrpcore.types import PSCryptoProvider
    from psrpcore.types._serializer import serialize

    from hvsim.powershell.values import Byte, PSEnum, UInt32, UInt64
    from hvsim.wsman.convert import to_ps

    class _Plain(PSCryptoProvider):
        def decrypt(self, value: str) -> str:
            return value

        def encrypt(self, value: str) -> str:
            return value

        def register_key(self, key: bytes) -> None:
            pass

    import xml.etree.ElementTree as ET

    def xml(value: object) -> str:
        return ET.tostring(serialize(to_ps(value), _Plain())).decode()

    enum_xml = xml(PSEnum("Microsoft.HyperV.PowerShell.VMState", "Off", 3))
    assert "<T>Microsoft.HyperV.PowerShell.VMState</T><T>System.Enum</T><T>System.ValueType</T>" in enum_xml
    assert "<ToString>Off</ToString>" in enum_xml and "<I32>3</I32>" in enum_xml
    assert xml(Int64(5)) == "<I64>5</I64>"
    assert xml(UInt64(5)) == "<U64>5</U64>"
    assert xml(UInt32(5)) == "<U32>5</U32>"
    assert xml(Byte(24)) == "<By>24</By>"
    assert xml(7) == "<I32>7</I32>"
    assert xml(2**40) == "<I64>1099511627776</I64>"
    obj_xml = xml(PSObj(["X.Y", "System.Object"], {"A": 1}, "x-y"))
    assert "<T>X.Y</T>" in obj_xml and '<I32 N="A">1</I32>' in obj_xml and "<ToString>x-y</ToString>" in obj_xml


def test_parameters_arrive_as_neutral_values_and_statements_split(fake_pool: RunspacePool, fake_runtime) -> None:
    ps = PowerShell(fake_pool)
    ps.add_cmdlet("Echo-Args").add_argument("pos1").add_parameter("Force").add_parameter("Count", 3) \
        .add_parameter("Enabled", True).add_parameter("Names", ["a", "b"]).add_parameter("Table", {"k": 1})
    ps.add_statement()
    ps.add_cmdlet("Get-Thing").add_parameter("Name", "x").add_cmdlet("Echo-Args")
    out = ps.invoke()
    assert not ps.had_errors, ps.streams.error
    assert out == ["ok", "ok"]
    statements = fake_runtime.statements[-1]
    assert [[c.name for c in s] for s in statements] == [["Echo-Args"], ["Get-Thing", "Echo-Args"]]
    first = statements[0][0]
    assert first.is_script is False
    # A switch travels as a named parameter with a $null value; the binder makes it present.
    assert first.params == [(None, "pos1"), ("Force", None), ("Count", 3), ("Enabled", True),
                            ("Names", ["a", "b"]), ("Table", {"k": 1})]
    session = fake_runtime.sessions[-1]
    assert session.username.endswith("\\Administrator")
    assert session.client_address == "127.0.0.1"


def test_script_is_flagged(fake_pool: RunspacePool, fake_runtime) -> None:
    ps = PowerShell(fake_pool)
    ps.add_script("Get-Date")
    ps.invoke()
    assert fake_runtime.calls[-1].is_script is True
    assert ps.had_errors  # the fake runtime knows no script; CommandNotFound fails the pipeline


def test_credential_arrives_as_credential_with_secure_text(fake_pool: RunspacePool, fake_runtime) -> None:
    fake_pool.exchange_keys()
    ps = PowerShell(fake_pool)
    ps.add_cmdlet("Echo-Args").add_parameter(
        "Credential", PSCredential(username="guest\\admin", password="Pa$$w0rd!"))
    ps.invoke()
    assert not ps.had_errors, ps.streams.error
    name, cred = fake_runtime.calls[-1].params[0]
    assert name == "Credential"
    assert isinstance(cred, Credential)
    assert cred.username == "guest\\admin"
    assert isinstance(cred.password, SecureText)
    assert cred.password.reveal() == "Pa$$w0rd!"
    assert "Pa$$w0rd!" not in repr(cred)


def test_streams_and_non_terminating_error(fake_pool: RunspacePool) -> None:
    ps = PowerShell(fake_pool)
    ps.add_cmdlet("Write-Streams")
    out = ps.invoke()
    assert out == ["after error"]
    assert ps.had_errors is False  # pypsrp: only a Failed pipeline sets had_errors
    assert [w.message for w in ps.streams.warning] == ["The virtual machine is already in the specified state."]
    assert [v.message for v in ps.streams.verbose] == ["Performing the operation"]
    err = ps.streams.error[0]
    assert err.fq_error == "InvalidParameter"
    assert str(err) == 'Hyper-V was unable to find a virtual machine with name "nope".'
    assert err.reason == "VirtualizationException"
    assert err.target_name == "nope"
    assert err.category == 5  # InvalidArgument


def test_terminating_error_fails_the_pipeline(fake_pool: RunspacePool) -> None:
    ps = PowerShell(fake_pool)
    ps.add_cmdlet("Fail-Hard")
    ps.invoke()
    assert ps.had_errors is True
    assert ps.state == PSInvocationState.FAILED
    err = ps.streams.error[0]
    assert err.fq_error == "NotSupported,Microsoft.HyperV.PowerShell.Commands.SetVMProcessor"
    assert str(err) == "Failed to modify device 'Processor'."
    assert err.exception.types[0] == "Microsoft.HyperV.PowerShell.VirtualizationException"


def test_unknown_command_is_command_not_found_from_real_runtime(pool: RunspacePool) -> None:
    ps = PowerShell(pool)
    ps.add_cmdlet("Get-Nothing").add_parameter("Name", "x")
    out = ps.invoke()
    assert out == []
    assert ps.had_errors is True
    err = ps.streams.error[0]
    assert err.fq_error == "CommandNotFoundException"
    assert str(err).startswith("The term 'Get-Nothing' is not recognized as the name of a cmdlet")
    assert err.category == 13  # ObjectNotFound
    assert err.target_name == "Get-Nothing"


def test_http_pool_with_message_encryption(http_pool: RunspacePool) -> None:
    ps = PowerShell(http_pool)
    ps.add_cmdlet("Get-Nothing")
    ps.invoke()
    assert ps.streams.error[0].fq_error == "CommandNotFoundException"


def test_pipeline_input(fake_pool: RunspacePool) -> None:
    ps = PowerShell(fake_pool)
    ps.add_cmdlet("Measure-Input")
    assert ps.invoke(input=[1, 2, 3, 4]) == [4, 10]


def test_large_output_is_split_over_receives(fake_pool: RunspacePool) -> None:
    ps = PowerShell(fake_pool)
    ps.add_cmdlet("Get-Many").add_parameter("Count", 1500)
    out = ps.invoke()
    assert len(out) == 1500
    assert out[-1] == {"i": 1499, "name": "obj1499"}


def test_large_parameter_travels_through_send(fake_pool: RunspacePool, fake_runtime) -> None:
    ps = PowerShell(fake_pool)
    ps.add_cmdlet("Echo-Args").add_parameter("Data", "y" * 400_000)
    assert ps.invoke() == ["ok"]
    assert fake_runtime.calls[-1].params[0][1] == "y" * 400_000


def test_stop_signal_stops_a_running_pipeline(fake_pool: RunspacePool) -> None:
    ps = PowerShell(fake_pool)
    ps.add_cmdlet("Sleep-A-Bit").add_parameter("Seconds", 10)
    ps.begin_invoke()
    time.sleep(0.2)
    t0 = time.monotonic()
    ps.stop()
    assert ps.state == PSInvocationState.STOPPED
    assert time.monotonic() - t0 < 5
    ps = PowerShell(fake_pool)
    ps.add_cmdlet("Get-Thing")
    assert ps.invoke()[0].adapted_properties["Name"] == "vm1"


def test_long_poll_receive_times_out_and_pypsrp_retries(fake_sim, wsman_for) -> None:
    with RunspacePool(wsman_for(fake_sim, "https-basic", operation_timeout=1)) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Sleep-A-Bit").add_parameter("Seconds", 1.6)
        t0 = time.monotonic()
        assert ps.invoke() == ["slept 1.6"]
        assert 1.5 < time.monotonic() - t0 < 6


def test_shell_get_enumerate_and_config(fake_sim, wsman_for) -> None:
    wsman = wsman_for(fake_sim, "https-ntlm")
    wsman.update_max_payload_size()
    assert wsman.max_envelope_size == 500 * 1024
    with RunspacePool(wsman) as pool:
        assert pool.is_alive() if hasattr(pool, "is_alive") else True
        assert pool.get_available_runspaces() >= 1
        pools = RunspacePool.get_runspace_pools(wsman_for(fake_sim, "https-basic"))
        assert [p.id.upper() for p in pools] == [pool.id.upper()]


def test_pipelines_are_dropped_after_completion(fake_sim, wsman_for) -> None:
    with RunspacePool(wsman_for(fake_sim, "https-basic")) as pool:
        for i in range(20):
            ps = PowerShell(pool)
            ps.add_cmdlet("Get-Thing").add_parameter("Name", f"vm{i}")
            assert ps.invoke()[0].adapted_properties["Name"] == f"vm{i}"
        assert fake_sim.service is not None
        shells = list(fake_sim.service._shells.values())
        assert len(shells) == 1 and shells[0].runs == {}
    assert fake_sim.service.shell_count() == 0


def test_counters(fake_pool: RunspacePool, fake_sim) -> None:
    before = fake_sim.counters.snapshot()
    ps = PowerShell(fake_pool)
    ps.add_cmdlet("Get-Thing")
    ps.invoke()
    after = fake_sim.counters.snapshot()
    assert after["pipelines"] == before["pipelines"] + 1
    assert after["http_requests"] > before["http_requests"]
    assert after["bytes_in"] > before["bytes_in"] and after["bytes_out"] > before["bytes_out"]


def test_world_saved_after_a_pipeline_that_changed_it(fake_sim, fake_runtime, wsman_for, monkeypatch) -> None:
    saves: list[bool] = []
    monkeypatch.setattr(fake_sim.world, "save", lambda: saves.append(True))

    def mutate(call) -> list[object]:
        fake_sim.world.dirty = True
        return []

    fake_runtime.commands["set-something"] = mutate
    with RunspacePool(wsman_for(fake_sim, "https-basic")) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-Thing")
        ps.invoke()
        assert saves == []
        ps = PowerShell(pool)
        ps.add_cmdlet("Set-Something")
        ps.invoke()
        assert saves == [True]


@pytest.mark.parametrize("value", [3, "text", 1.5, True])
def test_roundtrip_of_pipeline_input_values(fake_pool: RunspacePool, fake_runtime, value: object) -> None:
    captured: list[object] = []

    def capture(call) -> list[object]:
        captured.extend(call.input)
        return call.input

    fake_runtime.commands["capture"] = capture
    ps = PowerShell(fake_pool)
    ps.add_cmdlet("Capture")
    assert ps.invoke(input=[value]) == [value]
    assert captured == [value]


def test_psobject_input_becomes_psobj(fake_pool: RunspacePool, fake_runtime) -> None:
    captured: list[object] = []

    def capture(call) -> list[object]:
        captured.extend(call.input)
        return []

    fake_runtime.commands["capture"] = capture
    ps = PowerShell(fake_pool)
    ps.add_cmdlet("Get-Thing").add_parameter("Name", "piped").add_cmdlet("Capture")
    ps.invoke()
    assert isinstance(captured[0], PSObj)
    assert captured[0].get("name") == "piped"


def test_inward_conversion_of_psrp_values() -> None:
    import psrpcore.types as pst

    from hvsim.powershell.values import UInt32, UInt64
    from hvsim.wsman.convert import argument, to_neutral

    assert argument("Force", None) is None  # $null as sent: a switch's present, any other parameter's $null
    assert argument(None, None) is None
    assert to_neutral(pst.PSScriptBlock("Get-Date")).text == "Get-Date"
    assert isinstance(to_neutral(pst.PSInt64(5)), Int64)
    assert isinstance(to_neutral(pst.PSUInt64(5)), UInt64)
    assert isinstance(to_neutral(pst.PSUInt(5)), UInt32)
    enum = to_neutral(pst.ErrorCategory.ObjectNotFound)
    assert (enum.type_name, enum.name, enum.value) == ("System.Management.Automation.ErrorCategory",
                                                        "ObjectNotFound", 13)
    obj = pst.PSObject()
    obj.PSObject.type_names = ["Deserialized.Microsoft.HyperV.PowerShell.VirtualMachine", "Deserialized.System.Object"]
    obj.PSObject.adapted_properties.append(pst.PSNoteProperty("Name", "web01"))
    obj.PSObject.to_string = "web01"
    neutral = to_neutral(obj)
    assert isinstance(neutral, PSObj)
    assert neutral.type_names[0] == "Deserialized.Microsoft.HyperV.PowerShell.VirtualMachine"
    assert neutral.get("name") == "web01" and neutral.to_string == "web01"
    assert to_neutral({"a": [pst.PSString("x"), pst.PSInt(1)]}) == {"a": ["x", 1]}


def test_custom_objects_carry_note_properties(fake_pool: RunspacePool, fake_runtime) -> None:
    fake_runtime.commands["select-thing"] = lambda call: [PSObj(
        ["Selected.Microsoft.HyperV.PowerShell.VirtualMachine", "System.Management.Automation.PSCustomObject",
         "System.Object"], {"Name": "web01", "State": "Running"})]
    ps = PowerShell(fake_pool)
    ps.add_cmdlet("Select-Thing")
    obj = ps.invoke()[0]
    assert obj.extended_properties == {"Name": "web01", "State": "Running"}
    assert str(obj) == "@{Name=web01; State=Running}"


def test_terminate_signal_drops_a_running_pipeline(fake_pool: RunspacePool, fake_sim) -> None:
    ps = PowerShell(fake_pool)
    ps.add_cmdlet("Sleep-A-Bit").add_parameter("Seconds", 10)
    ps.begin_invoke()
    time.sleep(0.1)
    from pypsrp.shell import SignalCode

    fake_pool.shell.signal(SignalCode.TERMINATE, str(ps.id).upper())  # pypsrp's close() wants it finished
    shell = next(iter(fake_sim.service._shells.values()))
    assert shell.runs == {}
    ps = PowerShell(fake_pool)
    ps.add_cmdlet("Get-Thing")
    assert ps.invoke()[0].adapted_properties["Name"] == "vm1"


def test_idle_shells_are_reaped(fake_sim, wsman_for) -> None:
    abandoned = RunspacePool(wsman_for(fake_sim, "https-basic"))
    abandoned.open()  # never closed: the client vanished
    for shell in fake_sim.service._shells.values():
        shell.idle_timeout = 0.05  # as if it had asked WinRM for that IdleTimeOut
    time.sleep(0.1)
    with RunspacePool(wsman_for(fake_sim, "https-basic")) as pool:
        assert fake_sim.service.shell_count() == 1
        assert [p.id.upper() for p in RunspacePool.get_runspace_pools(wsman_for(fake_sim, "https-basic"))] == [
            pool.id.upper()]
