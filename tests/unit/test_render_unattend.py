"""Rendering answer files: golden file, StrictUndefined, redaction, and the checker."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from labctl.errors import TemplateError
from labctl.lab import resolve_lab
from labctl.lab.model import ResolvedLab
from labctl.render import REDACTED, check_lab_templates, check_unattend, encode_unattend_password, render_unattend
from labctl.resources import resource_dir

GOLDEN = Path(__file__).resolve().parent / "golden"
REPO = Path(__file__).resolve().parents[2]

TEST_PASSWORD = "Lab-Test-Pa55word!"
GOLDEN_FILE = GOLDEN / "quickstart-qs-dc01.xml"


@pytest.fixture(scope="module")
def quickstart() -> ResolvedLab:
    return resolve_lab(resource_dir("labs") / "quickstart.yaml")


@pytest.fixture(scope="module")
def rendered(quickstart: ResolvedLab) -> str:
    return render_unattend(quickstart, "qs-dc01", TEST_PASSWORD)


def test_golden(rendered: str) -> None:
    if os.environ.get("LABCTL_UPDATE_GOLDEN"):
        GOLDEN_FILE.write_text(rendered, encoding="utf-8")
    assert rendered == GOLDEN_FILE.read_text(encoding="utf-8"), "set LABCTL_UPDATE_GOLDEN=1 to rewrite"


def test_golden_passes_the_checker() -> None:
    assert check_unattend(GOLDEN_FILE.read_text(encoding="utf-8")) == []


def test_rendered_values(rendered: str, quickstart: ResolvedLab) -> None:
    vm = quickstart.vm("qs-dc01")
    assert f"<ComputerName>{vm.name}</ComputerName>" in rendered
    assert rendered.count(f"<Identifier>{vm.mac}</Identifier>") == 2       # TCPIP and DNS-Client
    assert f">{vm.ip}/24</IpAddress>" in rendered
    assert f"<NextHopAddress>{vm.gateway}</NextHopAddress>" in rendered
    assert encode_unattend_password(TEST_PASSWORD) in rendered
    assert TEST_PASSWORD not in rendered
    assert "<fDenyTSConnections>false</fDenyTSConnections>" in rendered
    assert "Enable-PSRemoting -Force" in rendered


def test_redacted_has_no_password(quickstart: ResolvedLab) -> None:
    text = render_unattend(quickstart, "qs-dc01", TEST_PASSWORD, redacted=True)
    assert REDACTED in text
    assert TEST_PASSWORD not in text and encode_unattend_password(TEST_PASSWORD) not in text
    assert render_unattend(quickstart, "qs-dc01", redacted=True) == text     # no password needed
    assert check_unattend(text) != [] and check_unattend(text, allow_redacted=True) == []


def test_password_required_unless_redacted(quickstart: ResolvedLab) -> None:
    with pytest.raises(TemplateError, match="needs the guest Administrator password"):
        render_unattend(quickstart, "qs-dc01")


def test_vars_are_escaped(tmp_path: Path, quickstart: ResolvedLab) -> None:
    vm = quickstart.vm("qs-dc01").model_copy(update={"vars": {"timezone": "R&D <Time>", "locale": "en-US"}})
    text = render_unattend(quickstart, vm, TEST_PASSWORD)
    assert "<TimeZone>R&amp;D &lt;Time&gt;</TimeZone>" in text


def _lab_with_template(tmp_path: Path, body: str) -> ResolvedLab:
    (tmp_path / "templates" / "unattend").mkdir(parents=True)
    (tmp_path / "templates" / "unattend" / "custom.xml.j2").write_text(body)
    lab = tmp_path / "lab.yaml"
    lab.write_text("name: t\nnetwork: {subnet: 10.1.0.0/24}\ndefaults: {unattend: custom}\nvms: [{name: web01}]\n")
    return resolve_lab(lab)


def test_undefined_variable_is_a_template_error(tmp_path: Path) -> None:
    lab = _lab_with_template(tmp_path, "<x>{{ vars.product_key }}</x>\n")
    with pytest.raises(TemplateError) as info:
        render_unattend(lab, "web01", TEST_PASSWORD)
    err = info.value
    assert err.template == "unattend/custom.xml.j2" and err.vm == "web01"
    assert "product_key" in err.message and "web01" in err.message and "unattend/custom.xml.j2" in err.message
    assert TEST_PASSWORD not in str(err)


def test_template_syntax_error(tmp_path: Path) -> None:
    lab = _lab_with_template(tmp_path, "line one\n{% if %}\n")
    with pytest.raises(TemplateError, match=r"custom.xml.j2:2: template syntax error"):
        render_unattend(lab, "web01", TEST_PASSWORD)


def test_invalid_output_is_refused(tmp_path: Path) -> None:
    lab = _lab_with_template(tmp_path, "<unattend><settings/></unattend>\n")
    with pytest.raises(TemplateError, match="invalid answer file for VM web01"):
        render_unattend(lab, "web01", TEST_PASSWORD)


# --- the checker rejects what Windows Setup rejects ------------------------------------------------------

def _mutate(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


IDENT_LINE = re.compile(r"\s*<Identifier>00-15-5D[^<]*</Identifier>\n")

BROKEN = {
    "not xml": (lambda t: t.replace("</unattend>", ""), "not well-formed XML"),
    "wrong namespace": (lambda t: _mutate(t, 'xmlns="urn:schemas-microsoft-com:unattend"', 'xmlns="urn:x"'),
                        "root element must be"),
    "unknown pass": (lambda t: _mutate(t, 'pass="specialize"', 'pass="specialise"'), "is not one of"),
    "long name": (lambda t: _mutate(t, "<ComputerName>qs-dc01<", "<ComputerName>qs-domaincontroller01<"),
                  "must be 1-15"),
    "digit name": (lambda t: _mutate(t, "<ComputerName>qs-dc01<", "<ComputerName>12345<"), "all digits"),
    "name in oobe": (lambda t: _mutate(t, "<OOBE>", "<ComputerName>x</ComputerName><OOBE>"),
                     "ComputerName is not valid in oobeSystem"),
    "password in specialize": (
        lambda t: _mutate(t, "<TimeZone>", "<UserAccounts/><TimeZone>"), "UserAccounts is not valid in specialize"),
    "bad token": (lambda t: _mutate(t, 'publicKeyToken="31bf3856ad364e35"', 'publicKeyToken="0000"'),
                  "publicKeyToken='0000'"),
    "missing arch": (lambda t: _mutate(t, ' processorArchitecture="amd64"', ""),
                     "missing attribute processorArchitecture"),
    "misspelt component": (lambda t: _mutate(t, "Microsoft-Windows-DNS-Client", "Microsoft-Windows-DNS-Clients"),
                           "is not known"),
    "plain password": (lambda t: _mutate(t, "<PlainText>false</PlainText>", "<PlainText>False</PlainText>"),
                       "PlainText must be true or false"),
    "not encoded": (lambda t: re.sub(r"<Value>[^<]*</Value>", "<Value>hunter2</Value>", t),
                    "not an encoded AdministratorPassword"),
    "tcpip order": (lambda t: IDENT_LINE.sub("", t, count=1).replace(
        "<Ipv4Settings>", "<Identifier>00-15-5D-00-00-01</Identifier><Ipv4Settings>", 1), "in the order"),
    "colon mac": (lambda t: re.sub(r"00-15-5D-([0-9A-F-]+)", lambda m: "00:15:5D:" + m.group(1).replace("-", ":"), t),
                  "with dashes"),
    "no wcm:action": (lambda t: _mutate(t, '<Route wcm:action="add">', "<Route>"), "<Route> needs wcm:action"),
    "no keyValue": (lambda t: _mutate(t, 'wcm:keyValue="RemoteDesktop"', ""), "needs a wcm:keyValue"),
    "bad address": (lambda t: _mutate(t, "10.10.0.10/24<", "10.10.0.300/24<"), "not address/prefix"),
    "gateway off subnet": (lambda t: _mutate(t, "<NextHopAddress>10.10.0.1<", "<NextHopAddress>10.99.0.1<"),
                           "not on the interface's subnet"),
    "duplicate pass": (lambda t: _mutate(t, 'pass="oobeSystem"', 'pass="specialize"'), "appears twice"),
    "bad locale": (lambda t: _mutate(t, "<UserLocale>en-US<", "<UserLocale>en_US<"), "not a language tag"),
    "bad order": (lambda t: _mutate(t, "<Order>1</Order>", "<Order>first</Order>"), "Order 'first'"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_checker_rejects(case: str) -> None:
    mutate, expected = BROKEN[case]
    problems = check_unattend(mutate(GOLDEN_FILE.read_text(encoding="utf-8")))
    assert any(expected in p for p in problems), problems


def test_checker_never_echoes_the_encoded_password() -> None:
    text = GOLDEN_FILE.read_text(encoding="utf-8").replace("<PlainText>false<", "<PlainText>bogus<")
    problems = check_unattend(text)
    assert problems and not any(encode_unattend_password(TEST_PASSWORD) in p for p in problems)


def test_check_lab_templates(tmp_path: Path, quickstart: ResolvedLab) -> None:
    assert check_lab_templates(quickstart) == []
    lab = _lab_with_template(tmp_path, "<x>{{ vars.product_key }}</x>\n")
    (err,) = check_lab_templates(lab)
    assert err.vm == "web01" and "product_key" in err.message
