"""Threaded HTTP(S) listeners in front of the WS-Management service, as a Windows WinRM listener behaves.

- HTTPS: Basic or Negotiate/NTLM; TLS protects the SOAP.
- HTTP: Negotiate/NTLM only, and every SOAP body must use WinRM message encryption
  (AllowUnencrypted=false): Basic is answered 401, a plain SOAP body HTTP 500 with no content.
- HTTP/1.1 keep-alive (NTLM authenticates the TCP connection), Nagle disabled, bounded bodies,
  idle connections time out. Bad input never kills the server: it is answered or the
  connection is closed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hvsim.core.counters import Counters
from hvsim.core.faults import FaultPlan
from hvsim.core.httpserver import TrackingHTTPServer, TrackingRequestHandler
from hvsim.wsman.auth import AuthFailed, HostCredentials, NegotiateAcceptor, check_basic
from hvsim.wsman.kerberos import CredSSPAcceptor, KerberosAcceptor, KerberosConfig, wants_kerberos
from hvsim.wsman.service import MAX_ENVELOPE_KB, Caller, WSManService
from hvsim.wsman.soap import (
    WSManFault,
    encoding_limit,
    envelope,
    fault_envelope,
    internal_error,
    message_id_of,
    parse_request,
)

log = logging.getLogger(__name__)

WSMAN_PATH = "/wsman"
CONTROL_PATH = "/labctl-sim/control"
# The largest request body accepted: MaxEnvelopeSizekb plus room for the encryption framing.
MAX_BODY = MAX_ENVELOPE_KB * 1024 + 16 * 1024
IDLE_TIMEOUT = 120.0
MAX_CONNECTIONS = 512  # per listener; more are closed at once

ControlHandler = Callable[[str, str, bytes], tuple[int, Any]]
"""(method, path after CONTROL_PATH, body) -> (HTTP status, JSON value)."""
MIRROR_PATH = "/labctl-sim/mirror"
MirrorHandler = Callable[[str], tuple[int, bytes, str]]
"""(path after MIRROR_PATH) -> (HTTP status, body, Content-Type): the download mirror, no authentication."""


@dataclass(frozen=True)
class ListenerConfig:
    scheme: str  # "https" or "http"
    tls: ssl.SSLContext | None
    allow_basic: bool
    require_encryption: bool


class _Server(TrackingHTTPServer):
    request_queue_size = 128
    max_connections = MAX_CONNECTIONS

    def __init__(self, address: tuple[str, int], listener: ListenerConfig, app: WSManApp) -> None:
        self.listener = listener
        self.app = app
        super().__init__(address, _Handler)


class WSManApp:
    """What the listeners share: credentials, the service, counters, faults, the control hook."""

    def __init__(self, service: WSManService, creds: HostCredentials, counters: Counters, faults: FaultPlan,
                 control: ControlHandler | None = None, mirror: MirrorHandler | None = None, *,
                 kerberos: KerberosConfig | None = None, credssp: bool = False) -> None:
        self.service = service
        self.kerberos = kerberos  # Kerberos accepted (Negotiate and Kerberos schemes) with this keytab/realm
        self.credssp = credssp  # WinRM Service/Auth/CredSSP
        self.creds = creds
        self.counters = counters
        self.faults = faults
        self.control = control
        self.mirror = mirror


class _Handler(TrackingRequestHandler):
    timeout = IDLE_TIMEOUT
    server_version = "Microsoft-HTTPAPI/2.0 (labctl SIMULATED host)"
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(IDLE_TIMEOUT)
        tls = self.server.listener.tls
        if tls is not None:
            sock.settimeout(10.0)  # TLS handshake
            sock = tls.wrap_socket(sock, server_side=True)
        self.track(sock)
        self._counted = True
        self._acceptor: NegotiateAcceptor | KerberosAcceptor | CredSSPAcceptor | None = None
        self._conn_principal: str | None = None
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    # ------------------------------------------------------------------ responses
    def _reply(self, status: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None,
               close: bool = False) -> None:
        self.send_response(status)
        for key, value in headers or []:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if body:
            self.wfile.write(body)
        if self._counted:
            self.server.app.counters.add("bytes_out", len(body))

    def _challenge(self) -> list[tuple[str, str]]:
        # Windows' order: Negotiate, Kerberos, Basic, CredSSP (jborean93/omi#29 shows such a 401).
        app = self.server.app
        headers = [("WWW-Authenticate", "Negotiate")]
        if app.kerberos is not None:
            headers.append(("WWW-Authenticate", "Kerberos"))
        if self.server.listener.allow_basic:
            headers.append(("WWW-Authenticate", 'Basic realm="WSMAN"'))
        if app.credssp:
            headers.append(("WWW-Authenticate", "CredSSP"))
        return headers

    def _unauthorized(self, extra: list[tuple[str, str]] | None = None) -> None:
        self._reply(401, headers=extra or self._challenge())

    def _lose_answer(self, kind: str, headers: list[tuple[str, str]]) -> None:
        if kind == "drop_connection":
            self._drop()
        else:
            self._reply(500, headers=headers)

    def _drop(self) -> None:
        """Close the connection without an answer (a fault injection)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # ------------------------------------------------------------------ methods
    def do_HEAD(self) -> None:
        self._reply(405, close=True)

    def _serve(self, method: str) -> None:
        # Control traffic is not counted: the counters describe what WinRM clients did.
        path = self.path.split("?", 1)[0].rstrip("/").lower() or "/"
        self._counted = not (path == CONTROL_PATH or path.startswith((CONTROL_PATH + "/", MIRROR_PATH + "/")))
        if self._counted:
            self.server.app.counters.add("http_requests")
        try:
            self._serve_inner(method, path)
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError):
            self.close_connection = True
        except Exception as exc:  # never let one request take the listener down
            log.error("unexpected error while serving a request: %s", type(exc).__name__,
                      exc_info=log.isEnabledFor(logging.DEBUG))
            try:
                self._reply(500, close=True)
            except OSError:
                self.close_connection = True

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding"):
            self._reply(411, close=True)
            return None
        length = self.content_length()
        if length < 0:
            self._reply(400, close=True)
            return None
        if length > MAX_BODY:
            body = fault_envelope(encoding_limit(), "", self.server.app.service.machine)
            self._reply(500, body, [("Content-Type", "application/soap+xml;charset=UTF-8")], close=True)
            return None
        data = self.rfile.read(length) if length else b""
        if len(data) != length:
            self.close_connection = True
            return None
        if self._counted:
            self.server.app.counters.add("bytes_in", len(data))
        return data

    def _authenticate(self, data: bytes) -> tuple[str | None, list[tuple[str, str]], bool]:
        """(principal or None if answered already, headers for the response, finished-handshake-only)."""
        listener = self.server.listener
        app = self.server.app
        authz = self.headers.get("Authorization", "").strip()
        scheme, _, token = authz.partition(" ")
        scheme_l = scheme.lower()
        if scheme_l == "basic":
            if not listener.allow_basic:
                self._unauthorized()
                return None, [], False
            principal = check_basic(authz, app.creds)
            if principal is None:
                self._unauthorized()
                return None, [], False
            return principal, [], False
        if scheme_l in ("negotiate", "ntlm", "kerberos", "credssp"):
            try:
                in_token = base64.b64decode(token.strip(), validate=True)
            except (binascii.Error, ValueError):
                in_token = b""
            if not in_token:
                self._unauthorized()
                return None, [], False
            if self._acceptor is None or self._acceptor.complete:
                try:
                    self._acceptor = self._new_acceptor(scheme_l, in_token)
                except AuthFailed as exc:
                    log.info("%s: %s authentication refused (%s)", self.address_string(), scheme, exc)
                    self._acceptor = None
                    self._unauthorized()
                    return None, [], False
                self._conn_principal = None
            try:
                out = self._acceptor.step(in_token)
            except AuthFailed as exc:
                log.info("%s: %s authentication rejected (%s)", self.address_string(), scheme, exc)
                error_token = getattr(self._acceptor, "error_token", None)
                self._acceptor = None
                # A KRB-ERROR (clock skew) goes back to the client in the 401, so it can say what went wrong.
                self._unauthorized([("WWW-Authenticate", f"{scheme} {base64.b64encode(error_token).decode()}")]
                                   if error_token else None)
                return None, [], False
            headers = [("WWW-Authenticate", f"{scheme} {base64.b64encode(out).decode()}")] if out else []
            if not self._acceptor.complete:
                self._unauthorized(headers or None)
                return None, [], False
            self._conn_principal = self._acceptor.principal
            return self._conn_principal, headers, not data
        if authz:
            self._unauthorized()
            return None, [], False
        if self._conn_principal is not None:
            return self._conn_principal, [], False
        self._unauthorized()
        return None, [], False

    def _new_acceptor(self, scheme: str, token: bytes) -> NegotiateAcceptor | KerberosAcceptor | CredSSPAcceptor:
        """The acceptor for a first token: CredSSP, Kerberos (raw or SPNEGO) or Negotiate/NTLM. AuthFailed when off."""
        app = self.server.app
        if scheme == "credssp":
            if not app.credssp:
                raise AuthFailed("CredSSP is disabled on this host (Service/Auth/CredSSP = false)")
            return CredSSPAcceptor(app.creds, app.kerberos.realm if app.kerberos else None)
        if scheme == "kerberos" or wants_kerberos(token):
            if app.kerberos is None:
                raise AuthFailed("Kerberos is not configured on this host (no keytab)")
            return KerberosAcceptor(app.creds, app.kerberos, scheme)
        return NegotiateAcceptor(app.creds)

    def _serve_inner(self, method: str, path: str) -> None:
        data = self._read_body()
        if data is None:
            return
        is_control = path == CONTROL_PATH or path.startswith(CONTROL_PATH + "/")
        if path.startswith(MIRROR_PATH + "/") and self.server.app.mirror is not None \
                and self.server.listener.tls is not None:
            # Downloads are public (like download.docker.com): no authentication, GET only, HTTPS only.
            if method != "GET":
                self._reply(405, headers=[("Allow", "GET")])
                return
            status, body, ctype = self.server.app.mirror(path[len(MIRROR_PATH):])
            self._reply(status, body, [("Content-Type", ctype)])
            return
        if path != WSMAN_PATH and not is_control:
            self._reply(404)
            return
        if method != "POST" and not is_control:
            self._reply(405, headers=[("Allow", "POST")])
            return
        principal, auth_headers, handshake_only = self._authenticate(data)
        if principal is None:
            return
        if handshake_only:
            self._reply(200, headers=auth_headers)
            return
        if is_control:
            self._serve_control(method, path[len(CONTROL_PATH):], data, auth_headers)
            return
        self._serve_wsman(data, principal, auth_headers)

    def _serve_control(self, method: str, subpath: str, data: bytes, headers: list[tuple[str, str]]) -> None:
        app = self.server.app
        if self.server.listener.tls is None or app.control is None:
            self._reply(403, headers=headers)
            return
        status, value = app.control(method, subpath or "/", data)
        body = json.dumps(value, default=str).encode("utf-8")
        self._reply(status, body, [*headers, ("Content-Type", "application/json")])

    def _serve_wsman(self, data: bytes, principal: str, headers: list[tuple[str, str]]) -> None:
        app = self.server.app
        listener = self.server.listener
        content_type = self.headers.get("Content-Type", "")
        encrypted = content_type.lower().startswith("multipart/")
        if encrypted:
            if self._acceptor is None or not self._acceptor.complete:
                self._unauthorized()
                return
            try:
                soap = self._acceptor.unwrap(content_type, data)
            except ValueError as exc:
                log.info("%s: undecryptable message (%s)", self.address_string(), exc)
                self._acceptor = None
                self._conn_principal = None
                self._reply(400, headers=headers, close=True)
                return
        elif listener.require_encryption:
            # AllowUnencrypted=false: WinRM rejects a plain SOAP body on HTTP with a bare 500.
            log.info("%s: unencrypted message refused on the HTTP listener", self.address_string())
            self._reply(500, headers=headers)
            return
        else:
            soap = data

        relates_to = ""
        try:
            request = parse_request(soap)
            relates_to = request.message_id
            key = app.service.event_key(request)
            lost = (app.faults.check("drop_connection", key=key, action=request.action)
                    or app.faults.check("http_500", key=key, action=request.action))
            if lost is not None and lost.when == "before":
                self._lose_answer(lost.rule.kind, headers)
                return
            caller = Caller(principal, self.client_address[0],
                            f"{listener.scheme}://{self.headers.get('Host', '127.0.0.1')}{WSMAN_PATH}")
            action_uri, body_xml = app.service.handle(request, caller)
            if lost is not None:  # "after": the host acted, the answer never reaches the client
                self._lose_answer(lost.rule.kind, headers)
                return
            status, payload = 200, envelope(action_uri, relates_to, body_xml)
        except WSManFault as fault:
            relates_to = relates_to or message_id_of(soap)
            status, payload = fault.http_status, fault_envelope(fault, relates_to, app.service.machine)
        except Exception as exc:
            log.error("WSMan operation failed inside the simulator: %s", type(exc).__name__,
                      exc_info=log.isEnabledFor(logging.DEBUG))
            status, payload = 500, fault_envelope(internal_error(), relates_to, app.service.machine)

        if encrypted or listener.require_encryption:
            assert self._acceptor is not None
            ctype, payload = self._acceptor.wrap(payload)
            self._reply(status, payload, [*headers, ("Content-Type", ctype)])
        else:
            self._reply(status, payload, [*headers, ("Content-Type", "application/soap+xml;charset=UTF-8")])


class Listener:
    """One listening socket served by a background thread."""

    def __init__(self, host: str, port: int, config: ListenerConfig, app: WSManApp) -> None:
        self.config = config
        self._server = _Server((host, port), config, app)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread = self._server.serve_in_thread(f"sim-{self.config.scheme}-{self.port}", 0.02)

    def stop(self) -> None:
        self._server.stop(self._thread)
