"""The answer-file validator: what Windows Setup accepts, and how it refuses the rest."""

from __future__ import annotations

import base64
import json

import pytest
from unattend_samples import (
    COMP,
    NS,
    PASSWORD,
    VALID,
    admin_password,
    dns,
    document,
    intl,
    rdp,
    shell_oobe,
    shell_specialize,
    tcpip,
)

from hvsim.guest.models import unattend as U

PATH = r"C:\Windows\Panther\unattend.xml"


def fail(xml: str) -> U.UnattendFailure:
    report = U.validate(xml)
    assert not report.valid, "expected Setup to refuse the answer file"
    assert report.failure is not None
    return report.failure


def test_valid_file_is_accepted_with_its_settings() -> None:
    report = U.validate(VALID)
    assert report.valid and report.failure is None
    cfg = report.config
    assert cfg.computer_name == "LAB-DC01"
    assert cfg.time_zone == "UTC"
    assert cfg.rdp_enabled is True
    assert cfg.administrator_password is not None
    assert cfg.administrator_password.reveal() == PASSWORD
    assert cfg.passes == ["specialize", "oobeSystem"]
    (iface,) = cfg.interfaces
    assert iface.mac == "00155D380100"
    assert iface.addresses == ["10.0.0.5/24"]
    assert iface.gateway == "10.0.0.1"
    assert iface.dns_servers == ["10.0.0.1"]
    assert iface.dhcp is False
    assert cfg.ui_language == "en-US"


def test_report_is_json_and_never_holds_the_password() -> None:
    text = json.dumps(U.validate(VALID).to_dict())
    assert PASSWORD not in text
    assert U.encode_password(PASSWORD) not in text
    assert '"administrator_password_set": true' in text


def test_plaintext_password_and_random_name_are_accepted() -> None:
    xml = document(specialize=shell_specialize("*"), oobe=shell_oobe(admin_password(plain=True)))
    report = U.validate(xml)
    assert report.valid
    assert report.config.computer_name == "*"
    assert report.config.administrator_password is not None
    assert report.config.administrator_password.reveal() == PASSWORD


def test_missing_password_is_valid_but_sets_none() -> None:
    report = U.validate(document(oobe=shell_oobe(password_xml="")))
    assert report.valid
    assert report.config.administrator_password is None


def test_encode_password_matches_windows_sim_format() -> None:
    encoded = U.encode_password("abc")
    assert base64.b64decode(encoded).decode("utf-16-le") == "abcAdministratorPassword"
    assert base64.b64decode(U.encode_password("abc", "Password")).decode("utf-16-le") == "abcPassword"


# --- file-level: "The answer file is invalid." for the first pass Setup runs -----------------------


def test_wrong_namespace_is_invalid_for_specialize() -> None:
    f = fail(document(ns=NS.replace("urn:schemas-microsoft-com:unattend", "urn:schemas-microsoft-com:unattended")))
    assert f.kind == "invalid"
    assert f.pass_name == "specialize"
    assert f.message == (f"Windows could not parse or process unattend answer file [{PATH}] for pass "
                         "[specialize]. The answer file is invalid.")
    assert "namespace" in f.reason


def test_not_xml_is_invalid() -> None:
    f = fail("<unattend><settings>")
    assert f.kind == "invalid" and "not well-formed" in f.reason


def test_entities_are_refused() -> None:
    xml = '<!DOCTYPE x [<!ENTITY a "b">]><unattend xmlns="urn:schemas-microsoft-com:unattend"/>'
    assert fail(xml).kind == "invalid"


def test_unknown_pass_is_invalid() -> None:
    f = fail(document(extra_settings='<settings pass="firstBoot"></settings>'))
    assert f.kind == "invalid" and "firstBoot" in f.reason


@pytest.mark.parametrize("attr", ["processorArchitecture", "publicKeyToken", "language", "versionScope"])
def test_component_missing_an_attribute_is_invalid(attr: str) -> None:
    attrs = " ".join(a for a in COMP.split(" ") if not a.startswith(attr))
    comp = f'<component name="Microsoft-Windows-Shell-Setup" {attrs}><ComputerName>A1</ComputerName></component>'
    f = fail(document(specialize=comp))
    assert f.kind == "invalid"
    assert f.pass_name == "specialize"
    assert f.reason == (f"Component Microsoft-Windows-Shell-Setup in the specialize pass lacks the required "
                        f"attribute {attr}.")


def test_wrong_public_key_token_is_invalid() -> None:
    comp = shell_specialize().replace("31bf3856ad364e35", "0000000000000000")
    f = fail(document(specialize=comp))
    assert f.kind == "invalid" and "publicKeyToken" in f.reason


@pytest.mark.parametrize(("name", "why"), [
    ("LABSERVER-NUMBER1", "longer than 15 characters"),
    ("12345", "consists only of digits"),
    ("LAB DC01", "contains a space"),
    ("LAB_DC.01", "not allowed"),
])
def test_bad_computer_name_is_invalid(name: str, why: str) -> None:
    f = fail(document(specialize=shell_specialize(name)))
    assert f.kind == "invalid"
    assert f.pass_name == "specialize"
    assert why in f.reason
    assert f.setting == "Microsoft-Windows-Shell-Setup/ComputerName"
    assert f.reason.startswith("Value is invalid.")


def test_fifteen_character_name_is_fine() -> None:
    assert U.validate(document(specialize=shell_specialize("ABCDEFGHIJKLMNO"))).valid


def test_tcpip_children_out_of_order_are_invalid() -> None:
    spec = shell_specialize() + tcpip(order=("Identifier", "Ipv4Settings", "UnicastIpAddresses", "Routes"))
    f = fail(document(specialize=spec))
    assert f.kind == "invalid"
    assert f.component == "Microsoft-Windows-TCPIP"
    assert "out of order" in f.reason
    assert "Ipv4Settings, Ipv6Settings, Identifier, UnicastIpAddresses, Routes" in f.reason


def test_boolean_spelling_is_checked() -> None:
    f = fail(document(specialize=shell_specialize() + rdp("False")))
    assert f.kind == "invalid" and "boolean" in f.reason


# --- setting level -------------------------------------------------------------------------------


def test_computer_name_in_oobe_only_does_not_exist_there() -> None:
    oobe = shell_oobe(extra="<ComputerName>LAB-DC01</ComputerName>")
    f = fail(document(specialize=tcpip(), oobe=oobe))
    assert f.kind == "not_exist"
    assert f.pass_name == "oobeSystem"
    assert f.component == "Microsoft-Windows-Shell-Setup"
    assert f.setting == "ComputerName"
    assert f.message == ("Windows could not parse or process the unattend answer file for pass [oobeSystem]. "
                         "A component or setting specified in the answer file does not exist. The error was "
                         "detected while processing settings for component [Microsoft-Windows-Shell-Setup].")
    assert "valid in offlineServicing, specialize" in f.reason


def test_administrator_password_in_specialize_does_not_exist_there() -> None:
    f = fail(document(specialize=shell_specialize(extra=admin_password())))
    assert f.kind == "not_exist" and f.pass_name == "specialize" and f.setting == "UserAccounts"


def test_unknown_component_does_not_exist() -> None:
    comp = f'<component name="Microsoft-Windows-Shell-Setupp" {COMP}><ComputerName>A1</ComputerName></component>'
    f = fail(document(specialize=comp))
    assert f.kind == "not_exist"
    assert f.component == "Microsoft-Windows-Shell-Setupp"
    assert "[Microsoft-Windows-Shell-Setupp]" in f.message


def test_unknown_setting_does_not_exist() -> None:
    f = fail(document(specialize=shell_specialize(extra="<EnableFirewall>true</EnableFirewall>")))
    assert f.kind == "not_exist"
    assert f.reason == "Setting EnableFirewall does not exist in component Microsoft-Windows-Shell-Setup."


def test_dns_client_only_in_specialize() -> None:
    f = fail(document(oobe=intl() + shell_oobe() + dns()))
    assert f.kind == "not_exist" and f.pass_name == "oobeSystem" and f.component == "Microsoft-Windows-DNS-Client"


def test_hidden_password_without_suffix_cannot_be_applied() -> None:
    wrong = base64.b64encode((PASSWORD + "Password").encode("utf-16-le")).decode()
    f = fail(document(oobe=shell_oobe(admin_password(encoded=wrong))))
    assert f.kind == "cannot_apply"
    assert f.pass_name == "oobeSystem"
    assert f.message == ("Windows could not parse or process the unattend answer file for pass [oobeSystem]. "
                         "The settings specified in the answer file cannot be applied. The error was detected "
                         "while processing settings for component [Microsoft-Windows-Shell-Setup].")
    assert 'followed by "AdministratorPassword"' in f.reason
    assert PASSWORD not in json.dumps(f.to_dict())


def test_hidden_password_that_is_not_base64_cannot_be_applied() -> None:
    f = fail(document(oobe=shell_oobe(admin_password(encoded="not base64!"))))
    assert f.kind == "cannot_apply" and "base64" in f.reason


def test_local_account_password_uses_the_password_suffix() -> None:
    acct = ('<UserAccounts><AdministratorPassword><Value>x</Value><PlainText>true</PlainText>'
            '</AdministratorPassword><LocalAccounts><LocalAccount wcm:action="add">'
            f"<Password><Value>{U.encode_password('pw1', 'Password')}</Value><PlainText>false</PlainText>"
            "</Password><Name>labadmin</Name><Group>Administrators</Group></LocalAccount></LocalAccounts>"
            "</UserAccounts>")
    report = U.validate(document(oobe=shell_oobe(acct)))
    assert report.valid
    assert report.config.local_accounts["labadmin"].reveal() == "pw1"


@pytest.mark.parametrize("ip", ["10.0.0.300/24", "10.0.0.5", "fe80::zz/64"])
def test_bad_ip_cannot_be_applied(ip: str) -> None:
    f = fail(document(specialize=shell_specialize() + tcpip(ip=ip)))
    assert f.kind == "cannot_apply" and f.component == "Microsoft-Windows-TCPIP" and ip in f.reason


def test_duplicate_setting_is_refused() -> None:
    spec = shell_specialize(extra="<TimeZone>UTC</TimeZone>")
    f = fail(document(specialize=spec))
    assert f.kind == "duplicate"
    assert f.message == ("Windows could not parse or process the unattend answer file for pass [specialize]. "
                         "A component or non-list setting is specified more than once in the answer file.")


def test_passes_not_run_at_first_boot_are_not_applied() -> None:
    # A windowsPE-only setting does not break first boot; it is simply not processed then.
    extra = (f'<settings pass="windowsPE"><component name="Microsoft-Windows-Setup" {COMP}>'
             "<EnableFirewall>true</EnableFirewall></component></settings>")
    assert U.validate(document(extra_settings=extra)).valid


def test_setupact_lines_for_an_invalid_file() -> None:
    f = fail(document(specialize=shell_specialize("12345")))
    lines = f.log_lines(PATH)
    assert ("Error", "[0x060432] IBS    The provided unattend file is not valid; hrResult = 0x80220005") in lines
    assert lines[-1] == ("Error", f"[windeploy.exe] {f.message}")


def test_identifier_may_be_an_alias() -> None:
    report = U.validate(document(specialize=shell_specialize() + tcpip(mac="Ethernet") + dns(mac="Ethernet")))
    assert report.valid
    (iface,) = report.config.interfaces
    assert iface.identifier == "Ethernet" and iface.mac is None and iface.dns_servers == ["10.0.0.1"]


def test_namespace_constant() -> None:
    assert 'xmlns="urn:schemas-microsoft-com:unattend"' in NS


def test_labctl_rendered_golden_answer_file_is_accepted() -> None:
    # The render engineer's golden unattend must pass the simulator's Setup rules (contract check).
    from pathlib import Path

    golden = Path(__file__).parents[1] / "unit" / "golden" / "quickstart-qs-dc01.xml"
    assert golden.exists(), golden
    report = U.validate(golden.read_bytes())
    assert report.valid, report.failure and report.failure.reason
    assert report.config.administrator_password is not None


def test_overlong_run_synchronous_path_makes_the_file_invalid() -> None:
    long_cmd = "powershell.exe -Command " + "x" * 400
    run = (f'<component name="Microsoft-Windows-Deployment" {COMP}><RunSynchronous>'
           '<RunSynchronousCommand wcm:action="add"><Order>4</Order>'
           f"<Path>{long_cmd}</Path></RunSynchronousCommand></RunSynchronous></component>")
    f = fail(document(specialize=shell_specialize() + run))
    assert f.kind == "invalid" and f.pass_name == "specialize"
    assert f.setting == 'Microsoft-Windows-Deployment/RunSynchronous/RunSynchronousCommand/[Order="4"]/Path'
    assert "maximum is 259" in f.reason
    ok = run.replace(long_cmd, "powershell.exe -Command Enable-PSRemoting -Force")
    assert U.validate(document(specialize=shell_specialize() + ok)).valid
