"""PSRP over WinRM with pypsrp: the only module in labctl that imports pypsrp.

One connection holds one pypsrp RunspacePool, opened once and reused for the whole run. pypsrp's
WSMan connection is not safe to share between threads (NTLM sealing sequence numbers and the
HTTP session are per connection), so parallel work gets a small pool of such connections, one
per worker, each opened on first use. Foreign errors are mapped here, once, to labctl errors.
"""

from __future__ import annotations

import logging
import threading
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from pypsrp.complex_objects import GenericComplexObject, PSCredential
from pypsrp.exceptions import (
    AuthenticationError,
    SerializationError,
    WinRMError,
    WinRMTransportError,
    WSManFaultError,
)
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import TaggedValue
from pypsrp.wsman import WSMan
from requests.adapters import HTTPAdapter

from labctl.secret import Secret, Sensitive
from labctl.transport.base import (
    Cancel,
    Credential,
    Invocation,
    Pipeline,
    RemoteError,
    RemoteObject,
    Result,
    RetryPolicy,
    ScriptBlock,
    Switch,
)
from labctl.transport.common import (
    ConnectionPool,
    Failure,
    check_result,
    count_pipeline,
    invoke_with_retries,
    is_big_int,
    needs_keys,
    new_stats,
    raise_final,
    refused,
    short,
)

log = logging.getLogger(__name__)

# pypsrp, spnego and urllib3 log whole messages at DEBUG (answer files, credentials): the CLI shows foreign
# lines only at --log-level DEBUG and scrubs every line (labctl.cli.logs, labctl.redact); labctl logs its
# own calls (Invocation.describe, redacted) instead.

# WSMan fault codes that mean "try again": operation timeout, shell not found (it expired or the host
# restarted WinRM), service busy.
_TRANSIENT_FAULTS = {0x80338029, 0x8033805B, 0x803381A6, 0x80338012, 0x803381A5}
# 0x803381A5 is the MaxShellsPerUser quota: shells of a client that died (a SIGKILLed run) hold it until their
# IdleTimeOut, which labctl keeps short (SHELL_IDLE_TIMEOUT) so that waiting a minute clears it.
# How long the host keeps a shell of ours that nobody uses: the minimum PowerShell allows (60 s), so the shells
# of a run that was killed go soon. Our own idle ones are reopened on their next use.
SHELL_IDLE_TIMEOUT = 60
SUPPORTED_AUTH = ("ntlm", "negotiate", "kerberos", "credssp", "basic", "certificate")
# Each connection holds one shell; WinRM allows 30 per user by default (MaxShellsPerUser), so stay under.
MAX_CONNECTIONS = 25


@dataclass(frozen=True)
class Endpoint:
    """Where and how to reach a host's WinRM listener."""

    uri: str
    auth: str = "ntlm"
    username: str | None = None
    password: Secret | None = None
    verify: bool = True
    ca_path: str | None = None
    fingerprint: str | None = None  # pinned SHA-256 of the server certificate, hex (colons allowed)
    certificate_pem: str | None = None
    certificate_key_pem: str | None = None
    connect_timeout: int = 15
    read_timeout: int = 60
    operation_timeout: int = 20

    def describe(self) -> str:
        return f"{self.uri} ({self.auth}{', user ' + self.username if self.username else ''})"


def normalize_fingerprint(text: str) -> str:
    """"sha256:AB:CD:..." or "ABCD..." -> "abcd..." (hex, as urllib3 compares it)."""
    value = text.strip()
    if value.lower().startswith("sha256:"):
        value = value[7:]
    return value.replace(":", "").lower()


class _FingerprintAdapter(HTTPAdapter):
    """An HTTPS adapter that accepts exactly one certificate, by its SHA-256 fingerprint."""

    def __init__(self, fingerprint: str, **kwargs: Any) -> None:
        self._fingerprint = normalize_fingerprint(fingerprint)
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["assert_fingerprint"] = self._fingerprint
        super().init_poolmanager(*args, **kwargs)


def _to_wire(value: Any) -> Any:
    """labctl values -> what pypsrp serializes (SecureString, PSCredential, SBK)."""
    if isinstance(value, Secret):
        return TaggedValue("SS", value.reveal())
    if isinstance(value, Credential):
        return PSCredential(username=value.username, password=value.password.reveal())
    if isinstance(value, ScriptBlock):
        return TaggedValue("SBK", value.text)
    if isinstance(value, Sensitive):
        return str.__str__(value)
    if is_big_int(value):
        # pypsrp tags every int as I32; sizes in bytes need I64 or the host cannot read them.
        return TaggedValue("I64", value)
    if isinstance(value, (list, tuple)):
        return [_to_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_wire(v) for k, v in value.items()}
    return value


def _from_wire(value: Any) -> Any:
    """pypsrp objects -> plain values: enums become their names, objects RemoteObject."""
    if isinstance(value, GenericComplexObject):
        types = list(value.types)
        if "System.Enum" in types or "Deserialized.System.Enum" in types:
            return str(value)
        props: dict[str, Any] = {}
        for k, v in value.adapted_properties.items():
            props[k] = _from_wire(v)
        for k, v in value.extended_properties.items():
            props[k] = _from_wire(v)
        if not props and value.property_sets:
            return _from_wire(value.property_sets[0])
        return RemoteObject(types, props, value.to_string)
    if isinstance(value, list):
        return [_from_wire(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _from_wire(v) for k, v in value.items()}
    if hasattr(value, "types") and hasattr(value, "to_string"):  # other pypsrp ComplexObjects
        return str(value)
    return value


def _exception_message(record: Any) -> str | None:
    """The Message of the record's (deserialized) exception, when it carries one."""
    exc = getattr(record, "exception", None)
    props = getattr(exc, "adapted_properties", None)
    if isinstance(props, dict) and props.get("Message"):
        return str(props["Message"])
    return None


def _error_of(record: Any) -> RemoteError:
    # pypsrp's ``message`` is the category line ("InvalidOperation (x:String) [], Exception") when the record
    # has no ErrorDetails: the exception's own Message is what PowerShell shows first, so it comes first.
    message = str(record.details_message or _exception_message(record) or record.message or record.exception or "")
    if not message and getattr(record, "exception", None) is not None:
        message = str(record.exception)
    return RemoteError(
        message=message,
        fqid=str(record.fq_error or ""),
        category=str(record.reason or ""),
        target=str(record.target_name) if record.target_name else None,
    )


class _Connection:
    """One WSMan connection and its open RunspacePool."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        parts = urlsplit(endpoint.uri)
        ssl = parts.scheme == "https"
        cert_validation: bool | str = endpoint.verify
        if endpoint.verify and endpoint.ca_path:
            cert_validation = endpoint.ca_path
        if endpoint.fingerprint:
            cert_validation = False  # the pinned fingerprint replaces CA validation
        kwargs: dict[str, Any] = {}
        auth = endpoint.auth
        if auth == "certificate":
            kwargs.update(certificate_pem=endpoint.certificate_pem,
                          certificate_key_pem=endpoint.certificate_key_pem)
        self.wsman = WSMan(
            parts.hostname or "",
            port=parts.port or (5986 if ssl else 5985),
            path=(parts.path or "/wsman").lstrip("/"),
            ssl=ssl,
            username=endpoint.username,
            password=endpoint.password.reveal() if endpoint.password else None,
            auth=auth,
            # pypsrp types this bool, but passes it to requests' verify, which takes a CA path too.
            cert_validation=cert_validation,  # type: ignore[arg-type]
            connection_timeout=endpoint.connect_timeout,
            read_timeout=endpoint.read_timeout,
            operation_timeout=endpoint.operation_timeout,
            encryption="auto",
            no_proxy=parts.hostname in ("127.0.0.1", "localhost", "::1"),
            **kwargs,
        )
        # pypsrp builds its requests session lazily; build it now (to pin the certificate, and so below).
        session = self.wsman.transport._build_session()
        if endpoint.fingerprint:
            session.mount("https://", _FingerprintAdapter(endpoint.fingerprint))
        # _build_session already applied the environment (HTTP(S)_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE) for this
        # endpoint; with trust_env requests would read os.environ again on every request (about 10% of a
        # pipeline's controller CPU). It would also add ~/.netrc credentials to a request without auth.
        session.trust_env = False
        self.wsman.transport.session = session
        self.pool = RunspacePool(self.wsman, idle_timeout=SHELL_IDLE_TIMEOUT)
        self.pool.open()
        self.keys_exchanged = False

    def run(self, pipeline: Pipeline, input: Sequence[Any] | None) -> tuple[list[Any], Any]:
        ps = PowerShell(self.pool)
        wants_keys = False
        for statement in pipeline.statements:
            for inv in statement:
                ps.add_cmdlet(inv.command)
                for name, value in inv.parameters.items():
                    if isinstance(value, Switch):
                        ps.add_parameter(name)
                    else:
                        wants_keys = wants_keys or needs_keys(value)
                        ps.add_parameter(name, _to_wire(value))
            ps.add_statement()
        if wants_keys and not self.keys_exchanged:
            self.pool.exchange_keys()
            self.keys_exchanged = True
        output = ps.invoke(input=iter(list(input)) if input is not None else None)
        return output, ps

    def close(self) -> None:
        try:
            self.pool.close()
        except Exception:  # closing a broken pool must not mask the real error
            log.debug("closing runspace pool failed", exc_info=True)
        try:
            self.wsman.close()
        except Exception:
            log.debug("closing WSMan failed", exc_info=True)


# Kerberos (MIT/GSSAPI minor texts) and CredSSP (requests-credssp) failures: the text to match, the message and
# what to do. A client-side GSSAPI failure never reaches the host; the host's 401 carries the KRB-ERROR of a skew.
_KERBEROS_FAILURES: tuple[tuple[str, str, str], ...] = (
    ("clock skew too great", "the clocks of this machine and {host} differ by more than Kerberos allows "
     "(5 minutes by default), so {host} refused the Kerberos ticket",
     "synchronise both clocks (on the host: w32tm /resync; here: your NTP client), then run again"),
    ("ticket expired", "the Kerberos ticket for {user} has expired",
     "get a new one (kinit {user}) or give a password source (password_env) so labctl gets its own ticket"),
    ("credentials have expired", "the Kerberos ticket for {user} has expired",
     "get a new one (kinit {user}) or give a password source (password_env) so labctl gets its own ticket"),
    ("cannot find kdc for realm", "no Kerberos KDC is known for the realm of {user}",
     "check the realm in the username (user@REALM, in upper case as in krb5.conf) and the [realms] "
     "section of krb5.conf (or DNS SRV records for _kerberos._udp.REALM)"),
    ("server not found in kerberos database", "the KDC knows no service principal for {host} (unknown SPN)",
     "use the host's name as registered in the domain (its FQDN, not an IP address or alias) in uri; "
     "on a domain controller, 'setspn -L <host>' lists its SPNs"),
    ("client not found in kerberos database", "the KDC knows no user {user}",
     "check the user name and its realm (user@REALM)"),
    ("not found in kerberos database", "the KDC knows no service principal for {host} (unknown SPN)",
     "use the host's name as registered in the domain (its FQDN, not an IP address) in uri"),
    ("can't find client principal", "there is no Kerberos ticket for {user} in the ticket cache",
     "run kinit {user} first (KRB5CCNAME selects the cache), or give a password source (password_env)"),
    ("no kerberos credentials available", "there is no Kerberos ticket in the ticket cache",
     "run kinit user@REALM first (KRB5CCNAME selects the cache), or give the username and a password source"),
    ("password incorrect", "the KDC refused the password of {user}", "check the password source"),
    ("preauthentication failed", "the KDC refused the password of {user}", "check the password source"),
    ("after step credential exchange", "{host} refused the credentials that CredSSP delegated for {user} "
     "(the logon with them failed)",
     "CredSSP hands the username and password to the host: give an administrator account of the host "
     "(HOST\\user or user@REALM) with its own password"),
    ("did not response credssp being an available", "{host} does not accept CredSSP",
     "enable it on the host (Enable-WSManCredSSP -Role Server) or use auth: kerberos"),
    ("0x8009030c", "{host} refused the credentials of {user} (CredSSP: logon denied)",
     "check the username and the password source"),
)


def _kerberos_failure(exc: BaseException, ep: Endpoint) -> Failure | None:
    """A Kerberos or CredSSP failure in ``exc`` or its causes, as labctl states it; None for anything else."""
    seen: set[int] = set()
    texts: list[str] = []
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        texts.append(str(cur).lower())
        cur = cur.__cause__ or cur.__context__
    text = " ".join(texts)
    if not any(k in text for k in ("gss", "kerberos", "krb", "credssp", "spnego", "kdc", "ticket")) \
            and "0x8009030c" not in text:
        return None
    host = urlsplit(ep.uri).hostname or ep.uri
    user = ep.username or "the default principal"
    for needle, message, hint in _KERBEROS_FAILURES:
        if needle in text:
            return Failure("auth", f"{ep.uri}: {message.format(host=host, user=user)} ({ep.auth})",
                           hint.format(host=host, user=user))
    return None


class PsrpTransport:
    """A host connection for the whole run; thread-safe, up to ``size`` parallel pipelines.

    Transient failures (a dropped connection, HTTP 5xx, a busy or timed-out WSMan operation) are retried
    with backoff within ``policy.budget_seconds`` for calls that may run twice; a call sent with
    ``retry=False`` that fails after it left raises AnswerLostError, so its caller reads the host before
    acting again. A host that cannot be reached at all (nothing listening, no such name) fails at once.
    """

    def __init__(self, endpoint: Endpoint, *, size: int = 4, policy: RetryPolicy | None = None,
                 cancel: Cancel | None = None) -> None:
        if endpoint.auth not in SUPPORTED_AUTH:
            raise ValueError(f"unsupported auth {endpoint.auth!r}")
        self.endpoint_info = endpoint
        self.endpoint = endpoint.uri
        self.size = max(1, min(size, MAX_CONNECTIONS))
        self.policy = policy or RetryPolicy()
        self.cancel = cancel or Cancel()
        self._pool: ConnectionPool[_Connection] = ConnectionPool(self.size, self._open)
        self._lock = threading.Lock()
        self._reached = False  # the host answered once: from then on a refused connection may pass
        self.stats = new_stats()

    # -- connection pool -------------------------------------------------------------------
    def _open(self) -> _Connection:
        try:
            conn = _Connection(self.endpoint_info)
        except Exception as exc:  # KeyboardInterrupt is the user's, never a connection failure
            failure = self._classify(exc)
            failure.sent = False
            raise failure from exc
        with self._lock:
            self._reached = True
            self.stats["connections"] += 1
        return conn

    def _classify(self, exc: BaseException) -> Failure:
        """Map a foreign error, once, to what it means for labctl."""
        ep = self.endpoint_info
        krb = _kerberos_failure(exc, ep) if ep.auth in ("kerberos", "credssp", "negotiate") else None
        if krb is not None:
            return krb
        if isinstance(exc, AuthenticationError) or (isinstance(exc, WinRMTransportError) and exc.code == 401):
            return Failure("auth", f"{ep.uri} refused the credentials of {ep.username or '(none)'} ({ep.auth})",
                            "check the username and the password source; for a simulated host see its "
                            "endpoint.json")
        if isinstance(exc, requests.exceptions.SSLError):
            return Failure("tls", f"TLS verification of {ep.uri} failed: {exc}",
                            "give the host's CA (ca_path) or pin its certificate (fingerprint), "
                            "or fix the certificate's names")
        if isinstance(exc, (requests.exceptions.RequestException, ConnectionError)):
            if refused(exc) and not self._reached:
                return Failure("unreachable", f"cannot reach {ep.uri}: {short(exc)}",
                                "is WinRM listening there? (winrm enumerate winrm/config/listener)")
            return Failure("transient", f"connection to {ep.uri} failed: {short(exc)}")
        if isinstance(exc, WinRMTransportError):
            if exc.code >= 500:
                return Failure("transient", f"{ep.uri} answered HTTP {exc.code}")
            return Failure("fatal", f"{ep.uri} answered HTTP {exc.code}: {short(exc)}")
        if isinstance(exc, WSManFaultError):
            text = f"{ep.uri}: WSMan fault {exc.code:#x}: {exc.reason}"
            return Failure("transient" if exc.code in _TRANSIENT_FAULTS else "fatal", text)
        if isinstance(exc, SerializationError):
            return Failure("fatal", f"a value could not be sent to {ep.uri}: {exc}")
        if isinstance(exc, (WinRMError, ET.ParseError)):
            # A protocol state broken by an earlier failure (a lost message, a half-closed pool): a new
            # connection starts clean.
            return Failure("transient", f"{ep.uri}: {type(exc).__name__}: {short(exc)}")
        return Failure("fatal", f"{ep.uri}: {type(exc).__name__}: {short(exc)}")

    def _raise_final(self, failure: Failure, command: str, attempts: int, seconds: float) -> None:
        ep = self.endpoint_info
        raise_final(failure, endpoint=ep.uri, username=ep.username, command=command, attempts=attempts,
                    seconds=seconds, service="its WinRM service")

    # -- the cut ---------------------------------------------------------------------------
    def invoke(self, pipeline: Pipeline | Invocation, *, input: Sequence[Any] | None = None,
               retry: bool = True) -> Result:
        """Run a pipeline. ``retry=False`` for calls that must not run twice (they create things)."""
        if isinstance(pipeline, Invocation):
            pipeline = Pipeline.of(pipeline)
        return invoke_with_retries(lambda: self._invoke_once(pipeline, input), pipeline=pipeline, retry=retry,
                                   policy=self.policy, cancel=self.cancel, stats=self.stats,
                                   final=self._raise_final, endpoint=self.endpoint)

    def _invoke_once(self, pipeline: Pipeline, input: Sequence[Any] | None) -> Result:
        log.debug("%s: %s", self.endpoint, pipeline.describe())  # describe() redacts secrets
        with self._pool.use() as conn:
            try:
                output, ps = conn.run(pipeline, input)
            except Exception as exc:
                raise self._classify(exc) from exc
        count_pipeline(self._lock, self.stats)
        errors = [_error_of(e) for e in ps.streams.error]
        warnings = [str(getattr(w, "message", w)) for w in ps.streams.warning]
        result = Result(output=[_from_wire(o) for o in output], errors=errors, warnings=warnings)
        return check_result(result, had_errors=bool(ps.had_errors), command=pipeline.first_command)

    def close(self) -> None:
        self._pool.close()
