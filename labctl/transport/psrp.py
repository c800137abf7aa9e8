"""PSRP over WinRM with pypsrp: the only module in labctl that imports pypsrp.

One connection holds one pypsrp RunspacePool, opened once and reused for the whole run. pypsrp's
WSMan connection is not safe to share between threads (NTLM sealing sequence numbers and the
HTTP session are per connection), so parallel work gets a small pool of such connections, one
per worker, each opened on first use. Foreign errors are mapped here, once, to labctl errors.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from pypsrp.complex_objects import GenericComplexObject, PSCredential
from pypsrp.exceptions import (
    AuthenticationError,
    WinRMError,
    WinRMTransportError,
    WSManFaultError,
)
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import TaggedValue
from pypsrp.wsman import WSMan
from requests.adapters import HTTPAdapter

from labctl.errors import AuthError, ConnectError, RemoteCommandError
from labctl.transport.base import (
    Credential,
    Invocation,
    Pipeline,
    RemoteError,
    RemoteObject,
    Result,
    ScriptBlock,
    Secret,
    Sensitive,
    Switch,
)

log = logging.getLogger(__name__)

# pypsrp, spnego and urllib3 log whole messages at DEBUG: answer files (with encoded passwords)
# and credentials would reach the log. They log warnings only, whatever level labctl runs at;
# labctl logs its own calls (Invocation.describe, redacted) instead.
for _name in ("pypsrp", "psrpcore", "spnego", "requests_credssp", "urllib3"):
    logging.getLogger(_name).setLevel(logging.WARNING)

# WSMan fault codes that mean "try again": operation timeout, shell not found after a
# reconnect, service busy.
_TRANSIENT_FAULTS = {0x80338029, 0x8033805B, 0x803381A6, 0x80338012}
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

    @property
    def is_https(self) -> bool:
        return urlsplit(self.uri).scheme == "https"

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
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**31) <= value < 2**31:
        # pypsrp tags every int as I32; sizes in bytes need I64 or the host cannot read them.
        return TaggedValue("I64", value)
    if isinstance(value, (list, tuple)):
        return [_to_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_wire(v) for k, v in value.items()}
    return value


def _needs_keys(value: Any) -> bool:
    if isinstance(value, (Secret, Credential)):
        return True
    if isinstance(value, (list, tuple)):
        return any(_needs_keys(v) for v in value)
    if isinstance(value, dict):
        return any(_needs_keys(v) for v in value.values())
    return False


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
        if endpoint.fingerprint:
            # pypsrp builds its requests session lazily; build it now and pin the certificate.
            session = self.wsman.transport._build_session()
            session.mount("https://", _FingerprintAdapter(endpoint.fingerprint))
            self.wsman.transport.session = session
        self.pool = RunspacePool(self.wsman)
        self.pool.open()
        self.keys_exchanged = False

    def run(self, pipeline: Pipeline, input: Sequence[Any] | None) -> tuple[list[Any], Any]:
        ps = PowerShell(self.pool)
        needs_keys = False
        for statement in pipeline.statements:
            for inv in statement:
                ps.add_cmdlet(inv.command)
                for name, value in inv.parameters.items():
                    if isinstance(value, Switch):
                        ps.add_parameter(name)
                    else:
                        needs_keys = needs_keys or _needs_keys(value)
                        ps.add_parameter(name, _to_wire(value))
            ps.add_statement()
        if needs_keys and not self.keys_exchanged:
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


class PsrpTransport:
    """A host connection for the whole run; thread-safe, up to ``size`` parallel pipelines."""

    def __init__(self, endpoint: Endpoint, *, size: int = 4, retries: int = 3, backoff: float = 0.5) -> None:
        if endpoint.auth not in SUPPORTED_AUTH:
            raise ValueError(f"unsupported auth {endpoint.auth!r}")
        self.endpoint_info = endpoint
        self.endpoint = endpoint.uri
        self.size = max(1, min(size, MAX_CONNECTIONS))
        self.retries = retries
        self.backoff = backoff
        self._idle: queue.LifoQueue[_Connection] = queue.LifoQueue()
        self._opened = 0
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.size)
        self._closed = False
        self.stats = {"pipelines": 0, "retries": 0, "connections": 0}

    # -- connection pool -------------------------------------------------------------------
    @contextmanager
    def _connection(self) -> Iterator[_Connection]:
        self._slots.acquire()
        conn: _Connection | None = None
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._open()
            yield conn
        except BaseException:
            if conn is not None:  # a failed connection may be broken: drop it
                conn.close()
                conn = None
            raise
        finally:
            if conn is not None:
                self._idle.put(conn)
            self._slots.release()

    def _open(self) -> _Connection:
        try:
            conn = _Connection(self.endpoint_info)
        except BaseException as exc:
            raise self._map_connect(exc) from exc
        with self._lock:
            self._opened += 1
            self.stats["connections"] += 1
        return conn

    def _map_connect(self, exc: BaseException) -> Exception:
        ep = self.endpoint_info
        if isinstance(exc, AuthenticationError) or (
            isinstance(exc, WinRMTransportError) and exc.code == 401
        ):
            return AuthError(
                f"{ep.uri} refused the credentials of {ep.username or '(none)'} ({ep.auth})",
                endpoint=ep.uri, username=ep.username or "",
                hint="check the username and the password source; for a simulated host see its endpoint.json",
            )
        if isinstance(exc, requests.exceptions.SSLError):
            return ConnectError(
                f"TLS verification of {ep.uri} failed: {exc}", endpoint=ep.uri, transient=False,
                hint="give the host's CA (ca_path) or pin its certificate (fingerprint), "
                "or fix the certificate's names",
            )
        if isinstance(exc, requests.exceptions.RequestException):
            return ConnectError(f"cannot reach {ep.uri}: {exc}", endpoint=ep.uri, transient=True,
                                hint="is WinRM listening there? (winrm enumerate winrm/config/listener)")
        if isinstance(exc, WinRMTransportError):
            return ConnectError(f"{ep.uri}: {exc}", endpoint=ep.uri, transient=exc.code >= 500)
        if isinstance(exc, WSManFaultError):
            return ConnectError(f"{ep.uri}: WSMan fault {exc.code:#x}: {exc.reason}", endpoint=ep.uri,
                                transient=exc.code in _TRANSIENT_FAULTS)
        if isinstance(exc, WinRMError):
            return ConnectError(f"{ep.uri}: {exc}", endpoint=ep.uri, transient=False)
        return ConnectError(f"{ep.uri}: {type(exc).__name__}: {exc}", endpoint=ep.uri, transient=False)

    # -- the cut ---------------------------------------------------------------------------
    def invoke(self, pipeline: Pipeline | Invocation, *, input: Sequence[Any] | None = None,
               retry: bool = True) -> Result:
        """Run a pipeline. ``retry=False`` for calls that must not run twice (they create things)."""
        if isinstance(pipeline, Invocation):
            pipeline = Pipeline.of(pipeline)
        attempts = 1 + (self.retries if retry else 0)
        delay = self.backoff
        for attempt in range(1, attempts + 1):
            try:
                return self._invoke_once(pipeline, input)
            except ConnectError as err:
                if not err.transient or attempt == attempts:
                    raise
                log.info("transient failure on %s (attempt %d/%d): %s", pipeline.first_command,
                         attempt, attempts, err.message)
                self.stats["retries"] += 1
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _invoke_once(self, pipeline: Pipeline, input: Sequence[Any] | None) -> Result:
        log.debug("%s: %s", self.endpoint, pipeline.describe())  # describe() redacts secrets
        with self._connection() as conn:
            try:
                output, ps = conn.run(pipeline, input)
            except (WinRMError, requests.exceptions.RequestException, ConnectionError) as exc:
                raise self._map_connect(exc) from exc
        self.stats["pipelines"] += 1
        errors = [_error_of(e) for e in ps.streams.error]
        warnings = [str(getattr(w, "message", w)) for w in ps.streams.warning]
        result = Result(output=[_from_wire(o) for o in output], errors=errors, warnings=warnings)
        if ps.had_errors and errors:
            first = errors[-1]
            raise RemoteCommandError(
                first.message, command=pipeline.first_command, fqid=first.fqid,
                category=first.category, target=first.target,
            )
        if ps.had_errors:
            raise RemoteCommandError(f"{pipeline.first_command} failed without an error record",
                                     command=pipeline.first_command, fqid="")
        return result

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                break
