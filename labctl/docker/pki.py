"""The lab PKI for Docker over TLS: one CA per lab, a server certificate per container host, one client.

Docker's ``tlsverify`` mode is mutual TLS: the daemon presents a certificate for the names clients
use, and accepts only clients whose certificate its ``ca.pem`` signed. labctl makes both sides:

- ``create_ca`` / ``issue_server_cert`` / ``issue_client_cert``: pure functions returning PEM text;
  private keys are wrapped in :class:`~labctl.transport.base.Secret` so they never show in a repr,
  a log line or a journal.
- :class:`LabPki`: the files in ``<lab state_dir>/docker`` (``ca.pem``, ``ca-key.pem``, ``<vm>/``,
  ``client/``), made once and reused; a server certificate is reissued when its names or addresses
  change, and any certificate when the CA changed or it is about to expire.

Keys are ECDSA P-256 (``prime256v1``), not RSA 3072: dockerd and the docker CLI (Go ``crypto/tls``) and
Python's ``ssl`` all accept it, key generation takes about a millisecond instead of hundreds (a lab
issues a certificate per VM, tests issue dozens), and a P-256 key is as strong as RSA 3072 (128-bit
security) with far smaller handshakes.

Private keys exist only in files of mode 0600 inside directories of mode 0700.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from labctl.fsio import atomic_write, is_private, private_dir, protect
from labctl.secret import Secret

log = logging.getLogger(__name__)

CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=825)
# A certificate this close to its end is reissued by LabPki (a lab kept for years keeps working).
RENEW_BEFORE = dt.timedelta(days=30)
# Guests' clocks can lag the host's (a VM restored from a checkpoint): certificates start a bit earlier.
BACKDATE = dt.timedelta(minutes=10)
ORGANIZATION = "labctl lab PKI"
CLIENT_CN = "labctl-client"

_CURVE = ec.SECP256R1()


@dataclass(frozen=True)
class CertPair:
    """A PEM certificate and its private key (the key stays a Secret until written to a 0600 file)."""

    cert_pem: str
    key_pem: Secret

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem.encode("ascii"))

    def __repr__(self) -> str:
        try:
            subject = self.certificate.subject.rfc4514_string()
        except ValueError:
            subject = "<unparsable>"
        return f"CertPair({subject!r}, key=<redacted>)"


# ---------------------------------------------------------------------------------------- issuing
def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(_CURVE)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> Secret:
    return Secret(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode("ascii"))


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _load_key(pair: CertPair) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pair.key_pem.reveal().encode("ascii"), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the lab CA key is not an ECDSA key")
    return key


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION)])


def create_ca(common_name: str) -> CertPair:
    """A self-signed CA, valid ten years, that may sign end-entity certificates only (path length 0)."""
    key = _new_key()
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertPair(_cert_pem(cert), _key_pem(key))


def _issue(ca: CertPair, common_name: str, eku: x509.ObjectIdentifier,
           san: list[x509.GeneralName]) -> CertPair:
    ca_cert = ca.certificate
    ca_key = _load_key(ca)
    key = _new_key()
    now = _now()
    # A leaf never outlives its CA (Go rejects a chain whose CA expired anyway).
    not_after = min(now + LEAF_VALIDITY, ca_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # ECDHE-ECDSA needs digitalSignature only (no keyEncipherment: that is for RSA key transport).
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return CertPair(_cert_pem(builder.sign(ca_key, hashes.SHA256())), _key_pem(key))


def _normalize_names(dns_names: list[str], ip_addresses: list[str]) -> tuple[list[str], list[str]]:
    """Unique DNS names (lower case) and IP addresses (canonical text), in their first order."""
    dns: list[str] = []
    for name in dns_names:
        n = str(name).strip().lower().rstrip(".")
        if n and n not in dns:
            dns.append(n)
    ips: list[str] = []
    for addr in ip_addresses:
        text = str(addr).strip()
        if not text:
            continue
        canonical = str(ipaddress.ip_address(text))  # ValueError for a bad address: the caller's bug
        if canonical not in ips:
            ips.append(canonical)
    return dns, ips


def issue_server_cert(ca: CertPair, common_name: str, dns_names: list[str], ip_addresses: list[str]) -> CertPair:
    """A daemon certificate (serverAuth) for every name and address clients use to reach it.

    Clients verify the address in DOCKER_HOST against the subjectAltName: the guest's name and IP, and the
    address users connect to (127.0.0.1 and localhost for the simulator, the host's FQDN for a real host).
    """
    dns, ips = _normalize_names(dns_names, ip_addresses)
    san: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    san += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    if not san:
        raise ValueError("a server certificate needs at least one DNS name or IP address")
    return _issue(ca, common_name, ExtendedKeyUsageOID.SERVER_AUTH, san)


def issue_client_cert(ca: CertPair, common_name: str = CLIENT_CN) -> CertPair:
    """The docker CLI's certificate (clientAuth): what tlsverify daemons of this lab accept."""
    return _issue(ca, common_name, ExtendedKeyUsageOID.CLIENT_AUTH, [])


# ---------------------------------------------------------------------------------------- checks
def signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """True when ``ca`` issued ``cert`` (issuer name and signature both match)."""
    if cert.issuer != ca.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def certificate_names(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    """(DNS names, IP addresses) of the subjectAltName, normalized as issue_server_cert writes them."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    dns = {n.lower() for n in san.get_values_for_type(x509.DNSName)}
    ips = {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    return dns, ips


def _matches_key(pair: CertPair) -> bool:
    """The key file belongs to the certificate (a crash between two writes could leave a mismatch)."""
    try:
        key = serialization.load_pem_private_key(pair.key_pem.reveal().encode("ascii"), password=None)
        return key.public_key() == pair.certificate.public_key()
    except (ValueError, TypeError):
        return False


def _fresh(cert: x509.Certificate) -> bool:
    return cert.not_valid_after_utc - _now() > RENEW_BEFORE


# ---------------------------------------------------------------------------------------- files
_DIR_LOCKS: dict[Path, threading.Lock] = {}
_DIR_LOCKS_GUARD = threading.Lock()


def _dir_lock(directory: Path) -> threading.Lock:
    """One lock per PKI directory: parallel VM workers may each build a LabPki for the same lab."""
    with _DIR_LOCKS_GUARD:
        return _DIR_LOCKS.setdefault(directory, threading.Lock())


def _private_dir(path: Path) -> Path:
    return private_dir(path)


def _write(path: Path, text: str, mode: int) -> None:
    """Atomic write; the file is private (``mode``) before any byte is written."""
    atomic_write(path, text, mode, encoding="ascii")


def _read_pair(cert_path: Path, key_path: Path) -> CertPair | None:
    """The pair stored in two files, or None when either is missing or unreadable as PEM."""
    if not (cert_path.is_file() and key_path.is_file()):
        return None
    if not is_private(key_path):
        # Someone loosened the mode: tighten it rather than leave a key readable by others.
        log.warning("%s was readable by others; mode set to 0600", key_path)
        protect(key_path)
    pair = CertPair(cert_path.read_text(encoding="ascii"), Secret(key_path.read_text(encoding="ascii")))
    try:
        pair.certificate  # noqa: B018 - parse check
    except ValueError:
        log.warning("%s is not a PEM certificate; it will be replaced", cert_path)
        return None
    return pair if _matches_key(pair) else None


def _write_pair(pair: CertPair, cert_path: Path, key_path: Path) -> None:
    _private_dir(cert_path.parent)
    _write(key_path, pair.key_pem.reveal(), 0o600)
    _write(cert_path, pair.cert_pem, 0o600)


class LabPki:
    """A lab's certificates on disk (``<lab state_dir>/docker``), made on first use and reused.

    Layout: ``ca.pem``, ``ca-key.pem``; ``<vm>/server-cert.pem``, ``<vm>/server-key.pem``;
    ``client/ca.pem``, ``client/cert.pem``, ``client/key.pem`` (the directory DOCKER_CERT_PATH names).
    """

    def __init__(self, directory: Path, lab_name: str | None = None) -> None:
        self.directory = Path(directory)
        # The lab state directory is <lab file dir>/.labctl/<lab>, so its name is the lab's.
        self._lab_name = lab_name or self.directory.resolve().parent.name or "lab"
        self._lock = _dir_lock(self.directory.resolve())

    def __repr__(self) -> str:
        return f"LabPki({str(self.directory)!r})"

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key_path(self) -> Path:
        return self.directory / "ca-key.pem"

    def ca(self, lab_name: str | None = None) -> CertPair:
        """The lab CA: loaded from ca.pem + ca-key.pem, or made once (a new CA invalidates every leaf)."""
        with self._lock:
            return self._ca(lab_name)

    def _ca(self, lab_name: str | None) -> CertPair:
        if lab_name:
            self._lab_name = lab_name
        pair = _read_pair(self.ca_path, self.ca_key_path)
        if pair is not None and _fresh(pair.certificate):
            return pair
        _private_dir(self.directory)
        pair = create_ca(f"labctl {self._lab_name} Docker CA")
        _write_pair(pair, self.ca_path, self.ca_key_path)
        log.info("made the Docker TLS CA of lab %s in %s", self._lab_name, self.directory)
        return pair

    def server(self, vm: str, dns_names: list[str], ip_addresses: list[str]) -> CertPair:
        """The daemon certificate of ``vm``; reissued when the names or addresses differ from the stored one."""
        if not vm or "/" in vm or "\\" in vm or vm in (".", "..", "client"):
            raise ValueError(f"{vm!r} cannot name a certificate directory")
        dns, ips = _normalize_names(dns_names, ip_addresses)
        with self._lock:
            ca = self._ca(None)
            folder = self.directory / vm
            cert_path, key_path = folder / "server-cert.pem", folder / "server-key.pem"
            pair = _read_pair(cert_path, key_path)
            if pair is not None:
                cert = pair.certificate
                if (signed_by(cert, ca.certificate) and _fresh(cert)
                        and certificate_names(cert) == (set(dns), set(ips))):
                    return pair
                log.info("reissuing the Docker TLS certificate of %s (names, CA or validity changed)", vm)
            pair = issue_server_cert(ca, vm, dns, ips)
            _write_pair(pair, cert_path, key_path)
            _write(folder / "ca.pem", ca.cert_pem, 0o600)
            return pair

    def client_dir(self) -> Path:
        """The directory with ca.pem, cert.pem and key.pem (0600) that DOCKER_CERT_PATH points at."""
        with self._lock:
            ca = self._ca(None)
            folder = _private_dir(self.directory / "client")
            cert_path, key_path = folder / "cert.pem", folder / "key.pem"
            pair = _read_pair(cert_path, key_path)
            if pair is None or not signed_by(pair.certificate, ca.certificate) or not _fresh(pair.certificate):
                pair = issue_client_cert(ca)
                _write_pair(pair, cert_path, key_path)
            ca_copy = folder / "ca.pem"
            if not ca_copy.is_file() or ca_copy.read_text(encoding="ascii") != ca.cert_pem:
                _write(ca_copy, ca.cert_pem, 0o600)
            return folder


__all__ = ["CertPair", "LabPki", "certificate_names", "create_ca", "issue_client_cert", "issue_server_cert",
           "signed_by"]
