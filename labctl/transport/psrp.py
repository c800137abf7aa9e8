"""PSRP over WinRM: the only module in labctl that imports pypsrp.

pypsrp carries WSMan (HTTP, NTLM/Kerberos/CredSSP/certificate authentication, message encryption, the shell's
Create/Command/Send/Receive/Delete); the PSRP messages on it are labctl's own (transport.wire, transport.clixml),
because pypsrp's serializer cost most of a run's controller CPU. One connection holds one runspace pool, opened
once and reused for the whole run. pypsrp's WSMan connection is not safe to share between threads (NTLM
sealing sequence numbers and the HTTP session are per connection), so parallel work gets a small pool of such
connections, one per worker, each opened on first use. Foreign errors are mapped here, once, to labctl errors.
"""

from __future__ import annotations

import base64
import logging
import ssl
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from pypsrp.exceptions import (
    AuthenticationError,
    WinRMError,
    WinRMTransportError,
    WSManFaultError,
)
from pypsrp.shell import WinRS
from pypsrp.wsman import NAMESPACES, OptionSet, WSMan
from requests.adapters import HTTPAdapter

from labctl.secret import Secret
from labctl.transport import clixml, wire
from labctl.transport.base import (
    Cancel,
    Invocation,
    Pipeline,
    Result,
    RetryPolicy,
)
from labctl.transport.common import (
    ConnectionPool,
    Failure,
    check_result,
    count_pipeline,
    invoke_with_retries,
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
    """An HTTPS adapter that accepts exactly one certificate, by its SHA-256 fingerprint; with ``context``, all
    connections share one TLS context (urllib3 otherwise builds one per connection and loads the system's CA
    store into it, about 20 ms of CPU each, for a certificate the fingerprint alone decides on)."""

    def __init__(self, fingerprint: str | None, context: ssl.SSLContext | None = None, **kwargs: Any) -> None:
        self._fingerprint = normalize_fingerprint(fingerprint) if fingerprint else None
        self._context = context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        if self._fingerprint:
            kwargs["assert_fingerprint"] = self._fingerprint
        if self._context is not None:
            kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


def shared_tls_context(endpoint: Endpoint) -> ssl.SSLContext | None:
    """One TLS context for all of a transport's connections, where nothing per connection goes into it: HTTPS
    whose certificate is pinned by fingerprint or not verified, without a client certificate. (CA validation
    keeps requests' own context: it loads the CA file into the context it is given on every connection.)"""
    if urlsplit(endpoint.uri).scheme != "https" or endpoint.auth == "certificate":
        return None
    if not endpoint.fingerprint and endpoint.verify:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # TLS 1.2 and later, the stdlib's secure defaults
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the fingerprint (checked by urllib3 after the handshake) decides
    return context


RESOURCE_URI = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
_OPERATION_TIMEOUT_FAULT = 0x80338029  # a Receive that waited OperationTimeout with nothing to say: ask again
KEY_EXCHANGE_TIMEOUT = 60.0


class _Connection:
    """One WSMan connection (pypsrp: HTTP, authentication, message encryption) and its open runspace pool,
    spoken to with labctl's own PSRP messages (transport.wire) and CLIXML (transport.clixml)."""

    def __init__(self, endpoint: Endpoint, tls_context: ssl.SSLContext | None = None) -> None:
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
        if endpoint.fingerprint or tls_context is not None:
            session.mount("https://", _FingerprintAdapter(endpoint.fingerprint, tls_context))
        # _build_session already applied the environment (HTTP(S)_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE) for this
        # endpoint; with trust_env requests would read os.environ again on every request (about 10% of a
        # pipeline's controller CPU). It would also add ~/.netrc credentials to a request without auth.
        session.trust_env = False
        self.wsman.transport.session = session
        self.rpid = uuid.uuid4()
        self.shell = WinRS(self.wsman, resource_uri=RESOURCE_URI, id=str(self.rpid).upper(),
                           input_streams="stdin pr", output_streams="stdout", idle_time_out=SHELL_IDLE_TIMEOUT)
        self.fragmenter = wire.Fragmenter(self.wsman.max_payload_size)
        self.defragmenter = wire.Defragmenter()
        self.key: wire.SessionKey | None = None
        self._open_pool()

    def _receive(self, command_id: str | None) -> list[wire.Message]:
        while True:
            try:
                data = self.shell.receive("stdout", command_id=command_id)[2].get("stdout", b"")
            except WSManFaultError as exc:
                if exc.code == _OPERATION_TIMEOUT_FAULT:
                    continue  # nothing yet within the operation timeout
                raise
            return self.defragmenter.feed(data)

    def _open_pool(self) -> None:
        """Create the shell with SESSION_CAPABILITY and INIT_RUNSPACEPOOL, then read until the pool is open."""
        blobs = self.fragmenter.pack_many([
            wire.pack_message(wire.SESSION_CAPABILITY, self.rpid, None, clixml.session_capability()),
            wire.pack_message(wire.INIT_RUNSPACEPOOL, self.rpid, None, clixml.init_runspace_pool()),
        ])
        content = ET.Element("creationXml", xmlns="http://schemas.microsoft.com/powershell")
        content.text = base64.b64encode(blobs[0]).decode()
        options = OptionSet()
        options.add_option("protocolversion", "2.3", {"MustComply": "true"})
        self.shell.open(options, content)
        for blob in blobs[1:]:
            self.shell.send("stdin", blob)
        state = None
        while state != wire.POOL_OPENED:
            for msg in self._receive(None):
                if msg.type == wire.SESSION_CAPABILITY:
                    fields = clixml.Reader().record(clixml.parse(msg.data))
                    version = str(fields.get("protocolversion") or "2.0")
                    # Protocol 2.2 and later take 500 KiB envelopes ([MS-PSRP] 3.1.4.1.1), as pypsrp does.
                    if _version(version) >= (2, 2) and self.wsman.max_envelope_size == 153600:
                        self.wsman.update_max_payload_size(512000)
                        self.fragmenter.max_size = self.wsman.max_payload_size
                elif msg.type == wire.RUNSPACEPOOL_STATE:
                    state, reason = clixml.pool_state(msg)
                    if state in (wire.POOL_BROKEN, wire.POOL_CLOSED):
                        raise wire.ProtocolError(f"the host refused to open a runspace pool (state {state})"
                                                 + (f": {reason}" if reason else ""))

    def exchange_keys(self) -> None:
        """PSRP's key exchange, once per connection, before the first SecureString is sent."""
        key = wire.SessionKey()
        message = wire.pack_message(wire.PUBLIC_KEY, self.rpid, None, clixml.public_key(key.public_blob()))
        for fragment in self.fragmenter.fragments(message):
            self.shell.send("stdin", fragment)
        deadline = time.monotonic() + KEY_EXCHANGE_TIMEOUT
        while not key.ready:
            if time.monotonic() > deadline:
                raise wire.ProtocolError("the host sent no session key")
            for msg in self._receive(None):
                if msg.type == wire.ENCRYPTED_SESSION_KEY:
                    key.accept(clixml.session_key(msg))
        self.key = key

    def run(self, pipeline: Pipeline, input: Sequence[Any] | None) -> clixml.Answer:
        if clixml.carries_secrets(pipeline, input) and self.key is None:
            self.exchange_keys()
        encrypt = self.key.encrypt if self.key is not None else None
        pid = uuid.uuid4()
        body = clixml.create_pipeline(pipeline, no_input=input is None, encrypt=encrypt)
        fragments = self.fragmenter.fragments(wire.pack_message(wire.CREATE_PIPELINE, self.rpid, pid, body))
        response = self.shell.command("", arguments=[base64.b64encode(fragments[0]).decode()],
                                      command_id=str(pid).upper())
        found = response.find("rsp:CommandResponse/rsp:CommandId", NAMESPACES)
        command_id = (found.text if found is not None else None) or str(pid).upper()
        for fragment in fragments[1:]:
            self.shell.send("stdin", fragment, command_id=command_id)
        if input is not None:
            for blob in self.fragmenter.pack_many(clixml.input_messages(self.rpid, pid, input, encrypt)):
                self.shell.send("stdin", blob, command_id=command_id)
        answer = clixml.Answer()
        done = False
        while not done:
            for msg in self._receive(command_id):
                done = answer.take(msg) or done
        return answer

    def close(self) -> None:
        try:
            self.shell.close()
        except Exception:  # closing a broken pool must not mask the real error
            log.debug("closing the runspace pool failed", exc_info=True)
        try:
            self.wsman.close()
        except Exception:
            log.debug("closing WSMan failed", exc_info=True)


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split("."))
    except ValueError:
        return (0,)


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
        self._tls_context = shared_tls_context(endpoint)

    # -- connection pool -------------------------------------------------------------------
    def _open(self) -> _Connection:
        try:
            conn = _Connection(self.endpoint_info, self._tls_context)
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
        if isinstance(exc, clixml.SerializeError):
            return Failure("fatal", f"a value could not be sent to {ep.uri}: {exc}")
        if isinstance(exc, (WinRMError, ET.ParseError, wire.ProtocolError)):
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
                answer = conn.run(pipeline, input)
            except Exception as exc:
                raise self._classify(exc) from exc
        count_pipeline(self._lock, self.stats)
        result = Result(output=answer.output, errors=answer.errors, warnings=answer.warnings)
        return check_result(result, had_errors=answer.state == wire.PIPELINE_FAILED, command=pipeline.first_command)

    def close(self) -> None:
        self._pool.close()
