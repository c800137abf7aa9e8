"""Kerberos (raw or inside SPNEGO) and CredSSP acceptors, as a domain-joined WinRM listener has them.

- :class:`KerberosAcceptor` accepts with MIT GSSAPI from the simulator's own keytab (``HTTP/<name>@REALM``)
  and admits the principal ``<administrator>@REALM`` (the host's administrator as a domain account).
  A failed AP-REQ that MIT answers with a KRB-ERROR (clock skew) is sent back in the 401, so the client
  reports what went wrong, as it does against Windows (see docs/facts.md, "Kerberos").
- :class:`CredSSPAcceptor` runs pyspnego's CredSSP acceptor (TLS, inner Negotiate: NTLM from the process'
  NTLM user file, Kerberos from ``KRB5_KTNAME``) and checks the delegated TSPasswordCreds: they must be the
  host account's (user name and password), else the logon is refused with a 401.

Both keep the message-encryption framing of :class:`hvsim.wsman.auth.NegotiateAcceptor`.
"""

from __future__ import annotations

import hmac
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import spnego
from spnego.exceptions import SpnegoError

from hvsim.wsman.auth import (
    CREDSSP_PROTOCOL,
    KERBEROS_PROTOCOL,
    SPNEGO_PROTOCOL,
    AuthFailed,
    HostCredentials,
    WinrmSealing,
)

log = logging.getLogger(__name__)

KRB5_OID = "1.2.840.113554.1.2.2"
MS_KRB5_OID = "1.2.840.48018.1.2.2"
SPNEGO_OID = "1.3.6.1.5.5.2"
_KRB5_DER = bytes.fromhex("06092a864886f712010202")  # OID 1.2.840.113554.1.2.2
_MS_KRB5_DER = bytes.fromhex("06092a864882f712010202")  # OID 1.2.840.48018.1.2.2


@dataclass(frozen=True)
class KerberosConfig:
    """The listener's Kerberos identity: a keytab with ``HTTP/<host>@realm`` keys, and the realm it admits."""

    keytab: Path
    realm: str

    def admits(self, principal: str, creds: HostCredentials) -> bool:
        """Is the client principal the host's administrator in this realm? (the realm as the KDC spells it)"""
        name, sep, realm = str(principal).rpartition("@")
        return bool(sep) and realm == self.realm and name.lower() == creds.username.lower()


def wants_kerberos(token: bytes) -> bool:
    """A raw Kerberos GSS token, or a SPNEGO NegTokenInit whose preferred mechanism is Kerberos."""
    if token.startswith(b"NTLMSSP\x00"):
        return False
    head = token[:48]
    if token[:1] == b"\x60" and (_KRB5_DER in token[:24] or _MS_KRB5_DER in token[:24]) \
            and bytes.fromhex("06062b0601050502") not in token[:24]:
        return True  # [APPLICATION 0] with the krb5 mechanism OID: a raw AP-REQ
    if token[:1] == b"\x60" and bytes.fromhex("06062b0601050502") in head:
        # SPNEGO NegTokenInit: mechTypes follow; Kerberos first means the client sent a Kerberos token.
        idx = token.find(b"\x06", token.find(bytes.fromhex("06062b0601050502")) + 8)
        return idx >= 0 and token[idx:idx + 11] in (_KRB5_DER, _MS_KRB5_DER)
    return False


class _GssWinrm:
    """WinRM wrap/unwrap over a completed gssapi acceptor context (header | data | padding IOVs, as MIT needs)."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx

    def wrap_winrm(self, data: bytes) -> Any:
        import gssapi.raw as gr
        from gssapi.raw import IOV, IOVBufferType

        iov = IOV(IOVBufferType.header, data, IOVBufferType.padding, std_layout=False)
        gr.wrap_iov(self._ctx, iov, confidential=True)
        header, enc, padding = (iov[0].value or b""), (iov[1].value or b""), (iov[2].value or b"")
        return spnego.WinRMWrapResult(header=header, data=enc + padding, padding_length=len(padding))

    def unwrap_winrm(self, header: bytes, data: bytes) -> bytes:
        import gssapi.raw as gr
        from gssapi.raw import IOV, IOVBufferType

        iov = IOV((IOVBufferType.header, False, header), data, IOVBufferType.data, std_layout=False)
        gr.unwrap_iov(self._ctx, iov)
        return bytes(iov[1].value or b"")


class KerberosAcceptor(WinrmSealing):
    """One Kerberos (or SPNEGO-Kerberos) handshake on one TCP connection, then its encryption session."""

    def __init__(self, creds: HostCredentials, config: KerberosConfig, scheme: str) -> None:
        import gssapi
        from gssapi.raw.misc import GSSError

        self._creds = creds
        self._config = config
        oids = [gssapi.OID.from_int_seq(KRB5_OID), gssapi.OID.from_int_seq(SPNEGO_OID)]
        try:
            acceptor = gssapi.Credentials(usage="accept", store={"keytab": str(config.keytab)}, mechs=oids)
        except GSSError as exc:
            log.error("the simulator's keytab %s cannot be used: %s", config.keytab, exc)
            raise AuthFailed("keytab unusable") from None
        self._gss = gssapi.SecurityContext(creds=acceptor, usage="accept")
        self._ctx = _GssWinrm(self._gss)
        # "Kerberos" scheme: WinRM expects the HTTP-Kerberos-session-encrypted protocol; Negotiate: SPNEGO's.
        self.protocol = KERBEROS_PROTOCOL if scheme.lower() == "kerberos" else SPNEGO_PROTOCOL
        self.principal: str | None = None
        self.error_token: bytes | None = None

    @property
    def complete(self) -> bool:
        return self.principal is not None

    def step(self, token: bytes) -> bytes | None:
        from gssapi.raw.misc import GSSError  # what SecurityContext.step raises (gssapi.exceptions has subclasses)

        try:
            out = self._gss.step(token)
        except GSSError as exc:
            self.error_token = getattr(exc, "token", None)
            raise AuthFailed(f"Kerberos: {exc.gen_message()}") from None
        except Exception as exc:  # malformed tokens
            raise AuthFailed(type(exc).__name__) from None
        try:
            # python-gssapi returns the KRB-ERROR token of a failed AP-REQ (clock skew) from step() and raises
            # the failure on the next use of the context.
            complete = self._gss.complete
        except GSSError as exc:
            self.error_token = out
            raise AuthFailed(f"Kerberos: {exc.gen_message()}") from None
        if not complete:
            # MIT answers a clock skew of a raw krb5 token with a KRB-ERROR and "continue": the client cannot go on.
            self.error_token = out
            raise AuthFailed("Kerberos: the AP-REQ was answered with a KRB-ERROR")
        client = str(self._gss.initiator_name)
        if not self._config.admits(client, self._creds):
            raise AuthFailed(f"Kerberos principal {client} is not this host's administrator")
        self.principal = self._creds.principal
        return out


def _split_user(domain: str, username: str) -> tuple[str, str]:
    if not domain and "\\" in username:
        domain, username = username.split("\\", 1)
    if not domain and "@" in username:
        username, domain = username.rsplit("@", 1)
    return domain, username


class CredSSPAcceptor(WinrmSealing):
    """A CredSSP exchange (TLS, inner Negotiate, public key binding, delegated credentials)."""

    protocol = CREDSSP_PROTOCOL

    def __init__(self, creds: HostCredentials, realm: str | None) -> None:
        self._creds = creds
        self._realm = realm
        self._ctx = spnego.server(protocol="credssp")
        self.principal: str | None = None

    @property
    def complete(self) -> bool:
        return self.principal is not None

    def step(self, token: bytes) -> bytes | None:
        try:
            out = self._ctx.step(token)
        except SpnegoError as exc:
            raise AuthFailed(f"CredSSP: {exc.message}") from None
        except Exception as exc:  # malformed TLS records and ASN.1 surface as assorted errors
            raise AuthFailed(f"CredSSP: {type(exc).__name__}") from None
        if not self._ctx.complete:
            return out
        delegated = self._ctx.get_extra_info("client_credential")
        if not self._delegated_ok(delegated):
            raise AuthFailed("CredSSP: the delegated credentials are not the host account's (logon failure)")
        self.principal = self._creds.principal
        return out

    def _delegated_ok(self, delegated: Any) -> bool:
        domain = str(getattr(delegated, "domain_name", "") or "")
        user = str(getattr(delegated, "username", "") or "")
        password = str(getattr(delegated, "password", "") or "")
        domain, user = _split_user(domain, user)
        domains = {"", ".", self._creds.hostname.lower()}
        if self._realm:
            domains |= {self._realm.lower(), self._realm.split(".")[0].lower()}
        return (domain.lower() in domains and user.lower() == self._creds.username.lower()
                and hmac.compare_digest(password.encode("utf-8"), self._creds.password.encode("utf-8")))


def export_keytab(config: KerberosConfig | None) -> None:
    """CredSSP's inner Negotiate accepts Kerberos with the default keytab: point it at the simulator's."""
    if config is not None:
        os.environ["KRB5_KTNAME"] = f"FILE:{config.keytab}"
