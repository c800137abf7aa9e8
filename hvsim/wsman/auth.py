"""Authentication as a WinRM listener does it: Basic (HTTPS only), Negotiate/NTLM, message encryption.

pyspnego's NTLM acceptor looks passwords up in the file named by the process-wide ``NTLM_USER_FILE``.
Several simulators may live in one process (tests), each with its own credentials, so
:class:`NtlmUserStore` keeps one private file for the process with one hash line per registered
account (``HOST\\user``, NT/LM hashes only: no password in clear), and every acceptor checks after the
handshake that the authenticated principal is its own simulator's account.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import hmac
import logging
import os
import re
import shutil
import struct
import threading
from dataclasses import dataclass
from typing import Any

import spnego
from spnego._ntlm_raw.crypto import lmowfv1, ntowfv1
from spnego.exceptions import SpnegoError

from hvsim.core.files import private_folder, replace_private

log = logging.getLogger(__name__)

SPNEGO_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
KERBEROS_PROTOCOL = "application/HTTP-Kerberos-session-encrypted"
CREDSSP_PROTOCOL = "application/HTTP-CredSSP-session-encrypted"
CREDSSP_CHUNK = 16384  # CredSSP seals at most 16 KiB per part (multipart/x-multi-encrypted)
BOUNDARY = "Encrypted Boundary"


@dataclass(frozen=True)
class HostCredentials:
    """The simulated host's local administrator account. The password never shows in repr."""

    hostname: str
    username: str
    password: str

    @property
    def principal(self) -> str:
        return f"{self.hostname}\\{self.username}"

    def __repr__(self) -> str:
        return f"HostCredentials({self.principal!r}, password=<redacted>)"

    def names(self) -> tuple[str, ...]:
        """Accepted spellings of the user name (lower case)."""
        return (self.username.lower(), self.principal.lower(), f".\\{self.username}".lower(),
                f"{self.username}@{self.hostname}".lower())

    def accepts_principal(self, principal: str | None) -> bool:
        return bool(principal) and str(principal).lower() in self.names()


def check_basic(header: str, creds: HostCredentials) -> str | None:
    """The principal of a valid ``Authorization: Basic`` header, else None (constant-time compare)."""
    if header[:6].lower() != "basic ":
        return None
    try:
        raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = raw.partition(":")
    if not sep:
        return None
    user_ok = user.lower() in creds.names()
    pw_ok = hmac.compare_digest(password.encode("utf-8"), creds.password.encode("utf-8"))
    return creds.principal if (user_ok and pw_ok) else None


class NtlmUserStore:
    """The process-wide NTLM credential file shared by every simulator in this process."""

    _instance: NtlmUserStore | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        self._dir = private_folder("labctl-sim-ntlm-")
        self.path = self._dir / "users"
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[str, int]] = {}  # principal (lower) -> (line, refcount)
        self._write()
        atexit.register(shutil.rmtree, self._dir, True)

    @classmethod
    def get(cls) -> NtlmUserStore:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            inst = cls._instance
        current = os.environ.get("NTLM_USER_FILE")
        if current != str(inst.path):
            if current:
                log.debug("NTLM_USER_FILE pointed elsewhere; the simulator's acceptor needs its own store")
            os.environ["NTLM_USER_FILE"] = str(inst.path)
        return inst

    def register(self, creds: HostCredentials) -> None:
        lm_hash = base64.b16encode(lmowfv1(creds.password)).decode()
        nt_hash = base64.b16encode(ntowfv1(creds.password)).decode()
        line = f"{creds.principal}:0:{lm_hash}:{nt_hash}:[U]:LCT-00000000"  # smbpasswd format
        key = creds.principal.lower()
        with self._lock:
            _, count = self._entries.get(key, ("", 0))
            self._entries[key] = (line, count + 1)
            self._write()

    def unregister(self, creds: HostCredentials) -> None:
        key = creds.principal.lower()
        with self._lock:
            line, count = self._entries.get(key, ("", 0))
            if count <= 1:
                self._entries.pop(key, None)
            else:
                self._entries[key] = (line, count - 1)
            self._write()

    def _write(self) -> None:
        text = "".join(line + "\n" for line, _ in self._entries.values())
        replace_private(self.path, text.encode("utf-8"))


class AuthFailed(Exception):
    """The client's credentials were rejected (answer 401)."""


class WinrmSealing:
    """WinRM message encryption over an established context ``self._ctx`` with MIME protocol ``self.protocol``.

    SPNEGO and Kerberos seal a message in one part; CredSSP in parts of at most 16 KiB
    (``multipart/x-multi-encrypted``), as pypsrp's WinRMEncryption and Windows frame them.
    """

    _ctx: Any
    protocol: str = SPNEGO_PROTOCOL

    def _part(self, chunk: bytes) -> bytes:
        res = self._ctx.wrap_winrm(chunk)
        length = len(chunk) + res.padding_length
        head = (
            f"--{BOUNDARY}\r\n\tContent-Type: {self.protocol}\r\n"
            f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={length}\r\n"
            f"--{BOUNDARY}\r\n\tContent-Type: application/octet-stream\r\n"
        ).encode("ascii")
        return head + struct.pack("<I", len(res.header)) + res.header + res.data

    def wrap(self, soap: bytes) -> tuple[str, bytes]:
        """Encrypt a response; returns (Content-Type, body) in the WinRM MIME framing."""
        kind = "encrypted"
        if self.protocol == CREDSSP_PROTOCOL and len(soap) > CREDSSP_CHUNK:
            kind = "x-multi-encrypted"
            body = b"".join(self._part(soap[i:i + CREDSSP_CHUNK]) for i in range(0, len(soap), CREDSSP_CHUNK))
        else:
            body = self._part(soap)
        body += f"--{BOUNDARY}--\r\n".encode()
        return f'multipart/{kind};protocol="{self.protocol}";boundary="{BOUNDARY}"', body

    def unwrap(self, content_type: str, body: bytes) -> bytes:
        """Decrypt a ``multipart/encrypted`` (or x-multi-encrypted) request body. ValueError when malformed."""
        match = re.search(r'boundary="?([^";]+)"?', content_type)
        ctype = content_type.lower()
        if match is None or not ctype.startswith(("multipart/encrypted", "multipart/x-multi-encrypted")):
            raise ValueError("not an encrypted WinRM message")
        boundary = match.group(1).encode("ascii", "replace")
        trailer = b"--" + boundary + b"--\r\n"
        if not body.endswith(trailer):
            raise ValueError("malformed encrypted message")
        parts = [p for p in re.split(b"--" + re.escape(boundary) + b"\r\n", body[:-len(trailer)]) if p]
        if not parts or len(parts) % 2:
            raise ValueError("malformed encrypted message")
        marker = b"\tContent-Type: application/octet-stream\r\n"
        out = b""
        for i in range(0, len(parts), 2):
            head, payload = parts[i], parts[i + 1]
            length_match = re.search(rb"Length=(\d+)", head)
            if length_match is None or self.protocol.encode() not in head or not payload.startswith(marker):
                raise ValueError("malformed encrypted message header")
            wrapped = payload[len(marker):]
            if len(wrapped) < 4:
                raise ValueError("truncated encrypted message")
            (hlen,) = struct.unpack("<I", wrapped[:4])
            if hlen > 64 or 4 + hlen > len(wrapped):
                raise ValueError("bad signature length")
            try:
                data = self._ctx.unwrap_winrm(wrapped[4:4 + hlen], wrapped[4 + hlen:])
            except Exception as exc:  # bad signature or sequence number
                raise ValueError(f"decryption failed: {type(exc).__name__}") from None
            if len(data) != int(length_match.group(1)):
                raise ValueError("decrypted length mismatch")
            out += data
        return out


class NegotiateAcceptor(WinrmSealing):
    """One Negotiate/NTLM handshake on one TCP connection, then its session for message encryption."""

    def __init__(self, creds: HostCredentials) -> None:
        self._creds = creds
        NtlmUserStore.get()
        self._ctx = spnego.server(protocol="negotiate")
        self.principal: str | None = None

    @property
    def complete(self) -> bool:
        return self.principal is not None

    def step(self, token: bytes) -> bytes | None:
        """Feed a client token; returns the token to send back. Raises AuthFailed."""
        try:
            out = self._ctx.step(token)
        except (SpnegoError, ValueError, struct.error, KeyError, IndexError) as exc:
            raise AuthFailed(type(exc).__name__) from None
        except Exception as exc:  # malformed tokens surface as assorted errors inside pyspnego
            raise AuthFailed(type(exc).__name__) from None
        if self._ctx.complete:
            principal = self._ctx.client_principal
            if not self._creds.accepts_principal(principal):
                raise AuthFailed("principal of another host")
            self.principal = self._creds.principal
        return out
