"""The quickstart over WinRM with Kerberos against the simulator, with a real MIT KDC on loopback.

labctl and the simulator run as subprocesses with the realm's environment (tests/kdc.py). The failures a
user meets (wrong realm, expired ticket, skewed clock, unknown SPN) end with labctl's message and exit 4.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kdc import SPN_HOST, Kdc, SimProcess, kdc_fixture, remote_lab, run_labctl  # noqa: F401  (fixture)

pytestmark = pytest.mark.xdist_group("kerberos")

GUEST_PW = "Gu3st-Passw0rd!"
EXIT_CONNECT = 4


@pytest.fixture(scope="module")
def sim(kdc: Kdc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    """A simulated host that accepts Kerberos; its administrator is Administrator@LABCTL.TEST in the KDC."""
    s = SimProcess(tmp_path_factory.mktemp("krbsim"), kdc)
    kdc.add_user("Administrator", s.endpoint["password"])
    yield s
    s.stop()


def _lab(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "labs" / "quickstart.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _round_trip(lab: Path, env: dict[str, str], then_uri: tuple[str, str] | None = None) -> None:
    """up, status, destroy; ``then_uri`` (old, new) re-aims the lab file after up (same host, other listener)."""
    up = run_labctl(["up", str(lab)], env)
    assert up.returncode == 0, up.stdout + up.stderr
    if then_uri is not None:
        lab.write_text(lab.read_text().replace(*then_uri))
    status = run_labctl(["status", str(lab), "--json"], env)
    assert status.returncode == 0, status.stderr
    vms = json.loads(status.stdout)["vms"]
    assert {vm["name"] for vm in vms} and all(vm["state"] == "Running" for vm in vms), vms
    gone = run_labctl(["destroy", str(lab), "--yes"], env)
    assert gone.returncode == 0, gone.stdout + gone.stderr


def _refused(lab: Path, env: dict[str, str]) -> str:
    result = run_labctl(["status", str(lab)], env, timeout=120)
    assert result.returncode == EXIT_CONNECT, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return " ".join(result.stderr.split())


def test_quickstart_over_kerberos_with_password_and_message_encryption(kdc: Kdc, sim: SimProcess,
                                                                        tmp_path: Path) -> None:
    # up over https (the Docker mirror is served there), then status and destroy over http, where every SOAP
    # body is sealed with the Kerberos session key (AllowUnencrypted=false).
    lab = _lab(tmp_path, remote_lab(sim, auth="kerberos", username=f"Administrator@{kdc.realm}",
                                    uri=sim.uri("https"), name="krbpw"))
    env = kdc.env(tmp_path / "ccache", LABCTL_TEST_HOST_PASSWORD=sim.endpoint["password"],
                  LABCTL_GUEST_PASSWORD=GUEST_PW)
    _round_trip(lab, env, then_uri=(sim.uri("https"), sim.uri("http")))


def test_quickstart_over_kerberos_from_the_ticket_cache(kdc: Kdc, sim: SimProcess, tmp_path: Path) -> None:
    ccache = tmp_path / "ccache"
    got = kdc.kinit(f"Administrator@{kdc.realm}", sim.endpoint["password"], ccache)
    assert got.returncode == 0, got.stderr
    lab = _lab(tmp_path, remote_lab(sim, auth="kerberos", username=None, password_env=None, uri=sim.uri("https"),
                                    name="krbcc"))
    _round_trip(lab, kdc.env(ccache, LABCTL_GUEST_PASSWORD=GUEST_PW))


def test_wrong_realm_is_a_clear_connect_error(kdc: Kdc, sim: SimProcess, tmp_path: Path) -> None:
    lab = _lab(tmp_path, remote_lab(sim, auth="kerberos", username="Administrator@WRONG.TEST",
                                    uri=sim.uri("https"), name="krbrealm"))
    text = _refused(lab, kdc.env(tmp_path / "ccache", LABCTL_TEST_HOST_PASSWORD=sim.endpoint["password"],
                                 LABCTL_GUEST_PASSWORD=GUEST_PW))
    assert "no Kerberos KDC is known for the realm of Administrator@WRONG.TEST" in text
    assert "user@REALM" in text and "krb5.conf" in text


def test_expired_ticket_is_a_clear_connect_error(kdc: Kdc, sim: SimProcess, tmp_path: Path) -> None:
    from kdc import faketime_lib

    ccache = tmp_path / "ccache"
    # A real ticket, issued an hour ago (kinit's clock moved back) for five minutes: it expired 55 minutes ago.
    past = dict(kdc.env(ccache), LD_PRELOAD=faketime_lib(), FAKETIME="-1h")
    got = kdc.kinit(f"Administrator@{kdc.realm}", sim.endpoint["password"], ccache, lifetime="5m", env=past)
    assert got.returncode == 0, got.stderr
    lab = _lab(tmp_path, remote_lab(sim, auth="kerberos", username=None, password_env=None, uri=sim.uri("https"),
                                    name="krbexp"))
    text = _refused(lab, kdc.env(ccache, LABCTL_GUEST_PASSWORD=GUEST_PW))
    assert "Kerberos ticket" in text and "has expired" in text
    assert "kinit" in text


def test_skewed_host_clock_is_a_clear_connect_error(kdc: Kdc, sim: SimProcess, tmp_path: Path) -> None:
    ccache = tmp_path / "ccache"
    assert kdc.kinit(f"Administrator@{kdc.realm}", sim.endpoint["password"], ccache).returncode == 0
    skewed = SimProcess(tmp_path / "skewed", kdc, faketime="+15m")  # the host's clock runs 15 minutes ahead
    try:
        lab = _lab(tmp_path, remote_lab(skewed, auth="kerberos", username=None, password_env=None,
                                        uri=skewed.uri("https"), name="krbskew"))
        text = _refused(lab, kdc.env(ccache, LABCTL_GUEST_PASSWORD=GUEST_PW))
    finally:
        skewed.stop()
    assert f"the clocks of this machine and {SPN_HOST} differ by more than Kerberos allows" in text
    assert "synchronise both clocks" in text


def test_unknown_spn_is_a_clear_connect_error(kdc: Kdc, sim: SimProcess, tmp_path: Path) -> None:
    # An IP address is no service name: the KDC has no host/127.0.0.1.
    lab = _lab(tmp_path, remote_lab(sim, auth="kerberos", username=f"Administrator@{kdc.realm}",
                                    uri=sim.uri("https", host="127.0.0.1"), name="krbspn"))
    text = _refused(lab, kdc.env(tmp_path / "ccache", LABCTL_TEST_HOST_PASSWORD=sim.endpoint["password"],
                                 LABCTL_GUEST_PASSWORD=GUEST_PW))
    assert "the KDC knows no service principal for 127.0.0.1 (unknown SPN)" in text
    assert "FQDN, not an IP address" in text
