"""The lab PKI (labctl.docker.pki): chains, names, key usages, file modes, reissue, and keys kept out of sight."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from labctl.docker import pki as tls
from labctl.docker.pki import CertPair, LabPki, create_ca, issue_client_cert, issue_server_cert, signed_by


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _eku(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def _san(cert: x509.Certificate) -> x509.SubjectAlternativeName:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


@pytest.fixture(scope="module")
def ca() -> CertPair:
    return create_ca("labctl test Docker CA")


def test_the_ca_is_a_ten_year_p256_ca_that_signs_leaves_only(ca: CertPair) -> None:
    cert = ca.certificate
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=3649) < life < dt.timedelta(days=3652)
    assert signed_by(cert, cert)  # self-signed


def test_server_certificate_chain_sans_and_server_auth(ca: CertPair) -> None:
    pair = issue_server_cert(ca, "ch01", ["CH01", "localhost", "hv01.lab.example"], ["10.0.0.5", "127.0.0.1"])
    cert = pair.certificate
    cert.verify_directly_issued_by(ca.certificate)  # raises if the signature or issuer is wrong
    assert signed_by(cert, ca.certificate)
    san = _san(cert)
    assert san.get_values_for_type(x509.DNSName) == ["ch01", "localhost", "hv01.lab.example"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5"),
                                                        ipaddress.ip_address("127.0.0.1")]
    assert _eku(cert) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_after_utc <= ca.certificate.not_valid_after_utc
    assert cert.not_valid_before_utc < dt.datetime.now(dt.UTC)  # backdated for guests whose clock lags


def test_client_certificate_is_client_auth_only(ca: CertPair) -> None:
    cert = issue_client_cert(ca).certificate
    assert signed_by(cert, ca.certificate)
    assert _eku(cert) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert "CN=labctl-client" in cert.subject.rfc4514_string()


def test_a_certificate_of_another_ca_is_not_signed_by_this_one(ca: CertPair) -> None:
    other = create_ca("labctl test Docker CA")  # same name, other key: the signature decides
    assert not signed_by(issue_client_cert(other).certificate, ca.certificate)


def test_bad_server_names_are_refused(ca: CertPair) -> None:
    with pytest.raises(ValueError):
        issue_server_cert(ca, "x", [], [])
    with pytest.raises(ValueError):
        issue_server_cert(ca, "x", ["x"], ["10.0.0.300"])


def test_keys_never_show_in_repr_str_or_logs(ca: CertPair, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    pki = LabPki(tmp_path / "docker", "lab")
    pair = pki.server("ch01", ["ch01"], ["10.0.0.5"])
    pki.server("ch01", ["ch01"], ["10.0.0.6"])  # reissue: logged
    pki.client_dir()
    key = pair.key_pem.reveal()
    assert "PRIVATE KEY" in key
    body = key.splitlines()[1]
    for text in (repr(pair), str(pair), repr(pair.key_pem), str(pair.key_pem), repr(ca), repr(pki), caplog.text):
        assert "PRIVATE KEY" not in text and body not in text
    assert "key=<redacted>" in repr(pair)


def test_lab_pki_files_and_modes(tmp_path: Path) -> None:
    pki = LabPki(tmp_path / "state" / "docker", "lab")
    ca = pki.ca("lab")
    server = pki.server("ch01", ["ch01", "localhost"], ["10.0.0.5", "127.0.0.1"])
    client = pki.client_dir()
    d = pki.directory
    assert client == d / "client"
    for folder in (d, d / "ch01", client):
        assert _mode(folder) == 0o700, folder
    for path in (d / "ca.pem", d / "ca-key.pem", d / "ch01" / "server-cert.pem", d / "ch01" / "server-key.pem",
                 d / "ch01" / "ca.pem", client / "ca.pem", client / "cert.pem", client / "key.pem"):
        assert _mode(path) == 0o600, path
    assert (client / "ca.pem").read_text() == ca.cert_pem
    assert (d / "ch01" / "server-key.pem").read_text() == server.key_pem.reveal()
    assert signed_by(x509.load_pem_x509_certificate((client / "cert.pem").read_bytes()), ca.certificate)
    assert "labctl lab Docker CA" in ca.certificate.subject.rfc4514_string()
    assert not list(d.rglob(".*"))  # no temporary files left behind


def test_lab_pki_reuses_what_it_made(tmp_path: Path) -> None:
    pki = LabPki(tmp_path / "docker", "lab")
    ca = pki.ca()
    server = pki.server("ch01", ["ch01"], ["10.0.0.5"])
    cert = (pki.client_dir() / "cert.pem").read_text()
    again = LabPki(tmp_path / "docker", "lab")  # a later labctl run
    assert again.ca() == ca
    assert again.server("ch01", ["CH01", "ch01."], ["10.0.0.5"]) == server  # same names, normalized: kept
    assert (again.client_dir() / "cert.pem").read_text() == cert


def test_server_is_reissued_when_its_addresses_change(tmp_path: Path) -> None:
    pki = LabPki(tmp_path / "docker", "lab")
    first = pki.server("ch01", ["ch01"], ["10.0.0.5", "127.0.0.1"])
    moved = pki.server("ch01", ["ch01"], ["10.0.0.7", "127.0.0.1"])
    assert moved != first
    assert tls.certificate_names(moved.certificate) == ({"ch01"}, {"10.0.0.7", "127.0.0.1"})
    assert pki.server("ch01", ["ch01", "hv01.example"], ["10.0.0.7", "127.0.0.1"]) != moved  # a name added


def test_a_new_ca_reissues_leaves_and_the_client(tmp_path: Path) -> None:
    pki = LabPki(tmp_path / "docker", "lab")
    server = pki.server("ch01", ["ch01"], ["10.0.0.5"])
    client_cert = (pki.client_dir() / "cert.pem").read_text()
    (pki.directory / "ca.pem").unlink()  # someone removed the CA: a new one is made
    new_ca = pki.ca()
    again = pki.server("ch01", ["ch01"], ["10.0.0.5"])
    assert again != server and signed_by(again.certificate, new_ca.certificate)
    client = pki.client_dir()
    assert (client / "cert.pem").read_text() != client_cert
    assert (client / "ca.pem").read_text() == new_ca.cert_pem


def test_a_torn_pair_or_a_loose_key_mode_is_repaired(tmp_path: Path) -> None:
    pki = LabPki(tmp_path / "docker", "lab")
    first = pki.server("ch01", ["ch01"], ["10.0.0.5"])
    folder = pki.directory / "ch01"
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (folder / "server-key.pem").write_bytes(other)  # a crash between the two writes
    assert pki.server("ch01", ["ch01"], ["10.0.0.5"]) != first
    os.chmod(pki.ca_key_path, 0o644)
    pki.ca()
    assert _mode(pki.ca_key_path) == 0o600


def test_an_expiring_certificate_is_renewed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pki = LabPki(tmp_path / "docker", "lab")
    first = pki.server("ch01", ["ch01"], ["10.0.0.5"])
    later = dt.datetime.now(dt.UTC) + tls.LEAF_VALIDITY - dt.timedelta(days=5)
    monkeypatch.setattr(tls, "_now", lambda: later)
    assert pki.server("ch01", ["ch01"], ["10.0.0.5"]) != first


def test_parallel_workers_share_one_ca(tmp_path: Path) -> None:
    results: list[str] = []

    def work(i: int) -> None:
        pki = LabPki(tmp_path / "docker", "lab")
        results.append(pki.ca().cert_pem)
        pki.server(f"vm{i}", [f"vm{i}"], [f"10.0.0.{10 + i}"])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1


def test_a_vm_name_cannot_escape_the_directory(tmp_path: Path) -> None:
    pki = LabPki(tmp_path / "docker", "lab")
    for bad in ("../x", "a/b", "..", "client", ""):
        with pytest.raises(ValueError):
            pki.server(bad, ["x"], [])
