"""The quickstart over WinRM with CredSSP against the simulator (inner NTLM, and inner Kerberos with a real KDC).

CredSSP hands the user's password to the host; the host must refuse credentials that are not its account's,
and a host without CredSSP must be told apart from a wrong password. Each failure is labctl's message, exit 4.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kdc import SPN_HOST, Kdc, SimProcess, kdc_fixture, remote_lab, run_labctl  # noqa: F401  (fixture)

pytestmark = pytest.mark.xdist_group("credssp")

GUEST_PW = "Gu3st-Passw0rd!"
EXIT_CONNECT = 4


@pytest.fixture(scope="module")
def sim(kdc: Kdc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    s = SimProcess(tmp_path_factory.mktemp("credsspsim"), kdc)
    kdc.add_user("Administrator", s.endpoint["password"])
    yield s
    s.stop()


def _lab(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "labs" / "quickstart.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _env(kdc: Kdc, tmp_path: Path, password: str) -> dict[str, str]:
    return kdc.env(tmp_path / "ccache", LABCTL_TEST_HOST_PASSWORD=password, LABCTL_GUEST_PASSWORD=GUEST_PW)


def _refused(lab: Path, env: dict[str, str]) -> str:
    result = run_labctl(["status", str(lab)], env, timeout=120)
    assert result.returncode == EXIT_CONNECT, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return " ".join(result.stderr.split())


@pytest.mark.parametrize("account", ["local", "domain"])
def test_quickstart_over_credssp(kdc: Kdc, sim: SimProcess, tmp_path: Path, account: str) -> None:
    # local: HOST\Administrator, inner NTLM; domain: Administrator@LABCTL.TEST, inner Kerberos.
    user = sim.endpoint["username"] if account == "local" else f"Administrator@{kdc.realm}"
    lab = _lab(tmp_path, remote_lab(sim, auth="credssp", username=user, uri=sim.uri("https"),
                                    name=f"cssp{account}"))
    env = _env(kdc, tmp_path, sim.endpoint["password"])
    up = run_labctl(["up", str(lab)], env)
    assert up.returncode == 0, up.stdout + up.stderr
    # status and destroy over http: every SOAP body sealed by the CredSSP TLS channel (16 KiB parts).
    lab.write_text(lab.read_text().replace(sim.uri("https"), sim.uri("http")))
    status = run_labctl(["status", str(lab), "--json"], env)
    assert status.returncode == 0, status.stderr
    vms = json.loads(status.stdout)["vms"]
    assert vms and all(vm["state"] == "Running" for vm in vms), vms
    gone = run_labctl(["destroy", str(lab), "--yes"], env)
    assert gone.returncode == 0, gone.stdout + gone.stderr


def test_delegating_another_accounts_credentials_is_refused(kdc: Kdc, sim: SimProcess, tmp_path: Path) -> None:
    # trainer@LABCTL.TEST authenticates (Kerberos), but the credentials it delegates are not the host account's.
    kdc.add_user("trainer", "Tr4iner-Passw0rd")
    lab = _lab(tmp_path, remote_lab(sim, auth="credssp", username=f"trainer@{kdc.realm}", uri=sim.uri("https"),
                                    name="csspdeleg"))
    text = _refused(lab, _env(kdc, tmp_path, "Tr4iner-Passw0rd"))
    assert f"{SPN_HOST} refused the credentials that CredSSP delegated for trainer@{kdc.realm}" in text
    assert "administrator account of the host" in text


def test_wrong_password_is_a_logon_failure(kdc: Kdc, sim: SimProcess, tmp_path: Path) -> None:
    lab = _lab(tmp_path, remote_lab(sim, auth="credssp", username=sim.endpoint["username"], uri=sim.uri("https"),
                                    name="csspbadpw"))
    text = _refused(lab, _env(kdc, tmp_path, "not-the-password"))
    assert "refused the credentials of" in text and "CredSSP: logon denied" in text


def test_host_without_credssp_says_so(kdc: Kdc, tmp_path: Path) -> None:
    off = SimProcess(tmp_path / "nocredssp", kdc, credssp=False)  # Windows' default: Service/Auth/CredSSP=false
    try:
        lab = _lab(tmp_path, remote_lab(off, auth="credssp", username=off.endpoint["username"],
                                        uri=off.uri("https"), name="csspoff"))
        text = _refused(lab, _env(kdc, tmp_path, off.endpoint["password"]))
    finally:
        off.stop()
    assert f"{SPN_HOST} does not accept CredSSP" in text and "Enable-WSManCredSSP -Role Server" in text
