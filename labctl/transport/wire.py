"""PSRP messages and fragments ([MS-PSRP] 2.2.1, 2.2.4) and the session key exchange (3.1.5.4.2, 3.2.5.4.2),
for the WinRM transport. Pure: bytes in, bytes out.

A message is destination (4 bytes LE), type (4 LE), runspace pool id and pipeline id (GUIDs in .NET's byte
order), then UTF-8 CLIXML with a BOM. A fragment is object id (8 BE), fragment id (8 BE), flags (1: start 0x1,
end 0x2), length (4 BE), then its part of the message.
"""

from __future__ import annotations

import base64
import struct
import uuid
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

DESTINATION_SERVER = 0x00000002
SESSION_CAPABILITY = 0x00010002
INIT_RUNSPACEPOOL = 0x00010004
PUBLIC_KEY = 0x00010005
ENCRYPTED_SESSION_KEY = 0x00010006
PUBLIC_KEY_REQUEST = 0x00010007
RUNSPACEPOOL_STATE = 0x00021005
CREATE_PIPELINE = 0x00021006
PIPELINE_INPUT = 0x00041002
END_OF_PIPELINE_INPUT = 0x00041003
PIPELINE_OUTPUT = 0x00041004
ERROR_RECORD = 0x00041005
PIPELINE_STATE = 0x00041006
WARNING_RECORD = 0x00041009
PIPELINE_HOST_CALL = 0x00041100
RUNSPACEPOOL_HOST_CALL = 0x00021100

# RunspacePoolState values ([MS-PSRP] 2.2.3.4) and PSInvocationState ([MS-PSRP] 2.2.3.5).
POOL_OPENED, POOL_CLOSED, POOL_BROKEN = 2, 3, 5
PIPELINE_COMPLETED, PIPELINE_FAILED, PIPELINE_STOPPED = 4, 5, 3
PIPELINE_DONE = (PIPELINE_COMPLETED, PIPELINE_FAILED, PIPELINE_STOPPED)

_BOM = b"\xef\xbb\xbf"
FRAGMENT_HEADER = 21


class ProtocolError(Exception):
    """The host's PSRP messages broke the protocol (a lost fragment, a broken pool): a new connection starts
    clean."""


@dataclass(frozen=True)
class Message:
    """One PSRP message as received."""

    type: int
    rpid: uuid.UUID
    pid: uuid.UUID
    data: bytes


def pack_message(msg_type: int, rpid: uuid.UUID, pid: uuid.UUID | None, xml: str) -> bytes:
    """A client-to-server message; an empty body (END_OF_PIPELINE_INPUT) carries no BOM."""
    pid_bytes = (pid or uuid.UUID(int=0)).bytes_le
    body = _BOM + xml.encode() if xml else b""
    return struct.pack("<II", DESTINATION_SERVER, msg_type) + rpid.bytes_le + pid_bytes + body


def unpack_message(data: bytes) -> Message:
    msg_type = struct.unpack_from("<I", data, 4)[0]
    return Message(msg_type, uuid.UUID(bytes_le=bytes(data[8:24])), uuid.UUID(bytes_le=bytes(data[24:40])),
                   bytes(data[40:]))


@dataclass
class Fragmenter:
    """Messages -> fragments of at most ``max_size`` bytes each (header included), numbered per connection;
    several messages may share one blob (pack_many), as PowerShell's opening does."""

    max_size: int
    _next_object: int = 1

    def fragments(self, message: bytes) -> list[bytes]:
        room = self.max_size - FRAGMENT_HEADER
        obj = self._next_object
        self._next_object += 1
        parts = [message[i:i + room] for i in range(0, len(message), room)] or [b""]
        out = []
        for i, part in enumerate(parts):
            flags = (0x1 if i == 0 else 0) | (0x2 if i == len(parts) - 1 else 0)
            out.append(struct.pack(">QQBI", obj, i, flags, len(part)) + part)
        return out

    def pack_many(self, messages: list[bytes]) -> list[bytes]:
        """Several messages as few blobs as fit ``max_size`` (whole fragments only, in order)."""
        blobs: list[bytes] = []
        current = b""
        for message in messages:
            for frag in self.fragments(message):
                if current and len(current) + len(frag) > self.max_size:
                    blobs.append(current)
                    current = b""
                current += frag
        if current:
            blobs.append(current)
        return blobs


@dataclass
class Defragmenter:
    """Fragments (in any interleaving of objects) -> whole messages, in the order they complete."""

    _partial: dict[int, tuple[int, bytearray]] = field(default_factory=dict)

    def feed(self, data: bytes) -> list[Message]:
        out: list[Message] = []
        pos, end = 0, len(data)
        while pos < end:
            obj, frag_id, flags, length = struct.unpack_from(">QQBI", data, pos)
            pos += FRAGMENT_HEADER
            part = data[pos:pos + length]
            pos += length
            if flags & 0x1:
                if flags & 0x2:
                    out.append(unpack_message(part))
                    continue
                self._partial[obj] = (1, bytearray(part))
                continue
            if obj not in self._partial:
                raise ProtocolError(f"PSRP fragment {frag_id} of object {obj} arrived without its start")
            expected, buf = self._partial[obj]
            if frag_id != expected:
                raise ProtocolError(f"PSRP fragment {frag_id} of object {obj} out of order (expected {expected})")
            buf += part
            if flags & 0x2:
                del self._partial[obj]
                out.append(unpack_message(bytes(buf)))
            else:
                self._partial[obj] = (expected + 1, buf)
        return out


class SessionKey:
    """The client's half of PSRP's key exchange: an RSA-2048 pair, then the host's AES-256 session key."""

    def __init__(self) -> None:
        self._private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._cipher: Cipher[modes.CBC] | None = None

    def public_blob(self) -> str:
        """The public key as a base64 CAPI PUBLICKEYBLOB (RSA1, little-endian modulus), as PUBLIC_KEY wants."""
        numbers = self._private.public_key().public_numbers()
        header = b"\x06\x02\x00\x00\x00\xa4\x00\x00RSA1\x00\x08\x00\x00"
        blob = header + struct.pack("<I", numbers.e) + numbers.n.to_bytes(256, "little")
        return base64.b64encode(blob).decode()

    def accept(self, encrypted_b64: str) -> None:
        """ENCRYPTED_SESSION_KEY: a CAPI SIMPLEBLOB (12-byte header, the key encrypted little-endian)."""
        blob = base64.b64decode(encrypted_b64)
        key = self._private.decrypt(blob[12:][::-1], rsa_padding.PKCS1v15())
        # PSRP uses no IV (all zero), [MS-PSRP] 3.1.5.4.2.
        self._cipher = Cipher(algorithms.AES(key), modes.CBC(b"\x00" * 16))

    @property
    def ready(self) -> bool:
        return self._cipher is not None

    def encrypt(self, text: str) -> str:
        """A SecureString's text -> base64(AES-CBC(PKCS7(UTF-16-LE)))."""
        if self._cipher is None:
            raise ValueError("the session key has not been exchanged")
        padder = padding.PKCS7(128).padder()
        data = padder.update(text.encode("utf-16-le")) + padder.finalize()
        enc = self._cipher.encryptor()
        return base64.b64encode(enc.update(data) + enc.finalize()).decode()
