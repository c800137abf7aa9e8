"""Remote Desktop for students: the text of a .rdp file, and a probe of a published RDP endpoint.

``rdp_file`` is pure. ``probe`` opens one TCP connection and does only the first exchange of RDP
([MS-RDPBCGR] 1.3.1.1 "Connection Initiation"): an X.224 Connection Request with an RDP Negotiation Request
offering TLS and CredSSP, and the server's X.224 Connection Confirm with its Negotiation Response or
Failure. It never authenticates and sends no credential, so it is safe to run against any lab VM.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from labctl.errors import LabUsageError

# [MS-RDPBCGR] 2.2.1.1.1 requestedProtocols / 2.2.1.2.1 selectedProtocol
PROTOCOL_RDP = 0x00000000
PROTOCOL_SSL = 0x00000001
PROTOCOL_HYBRID = 0x00000002
PROTOCOL_RDSTLS = 0x00000004
PROTOCOL_HYBRID_EX = 0x00000008
PROTOCOL_RDSAAD = 0x00000010
PROTOCOLS = {PROTOCOL_RDP: "PROTOCOL_RDP", PROTOCOL_SSL: "PROTOCOL_SSL", PROTOCOL_HYBRID: "PROTOCOL_HYBRID",
             PROTOCOL_RDSTLS: "PROTOCOL_RDSTLS", PROTOCOL_HYBRID_EX: "PROTOCOL_HYBRID_EX",
             PROTOCOL_RDSAAD: "PROTOCOL_RDSAAD"}

# [MS-RDPBCGR] 2.2.1.2.2 failureCode, with what it means for the person connecting.
FAILURES = {
    0x01: ("SSL_REQUIRED_BY_SERVER", "the server requires TLS or CredSSP"),
    0x02: ("SSL_NOT_ALLOWED_BY_SERVER", "the server allows only Standard RDP Security"),
    0x03: ("SSL_CERT_NOT_ON_SERVER", "the server has no certificate for TLS"),
    0x04: ("INCONSISTENT_FLAGS", "the requested protocols do not fit the security already in use"),
    0x05: ("HYBRID_REQUIRED_BY_SERVER", "the server requires Network Level Authentication (CredSSP)"),
    0x06: ("SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER", "the server requires TLS with a client certificate"),
}

_TYPE_NEG_REQ, _TYPE_NEG_RSP, _TYPE_NEG_FAILURE = 0x01, 0x02, 0x03
_X224_CR, _X224_CC = 0xE0, 0xD0
_MAX_CONFIRM = 4 + 255  # TPKT header + a one-byte Length Indicator's worth of TPDU


def _connection_request(requested: int) -> bytes:
    """TPKT ([T123] 8) + X.224 Class 0 Connection Request ([X224] 13.3: DST-REF, SRC-REF, class all 0, as
    [MS-RDPBCGR] 3.2.5.3.1 says) + RDP Negotiation Request (2.2.1.1.1). No cookie: it is optional and the
    server ignores it (3.3.5.3.1)."""
    neg = struct.pack("<BBHI", _TYPE_NEG_REQ, 0, 8, requested)
    tpdu = struct.pack(">BBHHB", 6 + len(neg), _X224_CR, 0, 0, 0) + neg
    return struct.pack(">BBH", 3, 0, 4 + len(tpdu)) + tpdu


REQUEST = _connection_request(PROTOCOL_SSL | PROTOCOL_HYBRID)


@dataclass(frozen=True)
class RdpProbe:
    """What one negotiation with an RDP endpoint showed.

    ``reachable``: an RDP server answered with an X.224 Connection Confirm (a failure answer counts: the
    server is there and said why it refuses). ``selected_protocol`` is set when it chose one,
    ``failure_code`` when it refused; ``error`` says what went wrong otherwise (or why it refused).
    """

    address: str
    port: int
    reachable: bool
    selected_protocol: int | None = None
    failure_code: int | None = None
    flags: int | None = None
    error: str | None = None

    @property
    def protocol_name(self) -> str | None:
        if self.selected_protocol is None:
            return None
        return PROTOCOLS.get(self.selected_protocol, f"0x{self.selected_protocol:08X}")

    @property
    def failure_name(self) -> str | None:
        if self.failure_code is None:
            return None
        return FAILURES.get(self.failure_code, (f"0x{self.failure_code:08X}", ""))[0]

    @property
    def ok(self) -> bool:
        """A student could connect: the server chose TLS or CredSSP."""
        return self.reachable and self.selected_protocol is not None


def parse_connection_confirm(data: bytes) -> tuple[int | None, int | None, int | None]:
    """(selected protocol, failure code, flags) from a Server X.224 Connection Confirm PDU (2.2.1.2).

    A Confirm without rdpNegData means Standard RDP Security (3.3.5.3.2). ValueError for anything else.
    """
    if len(data) < 11 or data[0] != 3:
        raise ValueError("not a TPKT packet")
    (length,) = struct.unpack(">H", data[2:4])
    if length != len(data) or data[4] != len(data) - 5:
        raise ValueError("TPKT and X.224 lengths do not match")
    if data[5] & 0xF0 != _X224_CC:
        raise ValueError("not an X.224 Connection Confirm")
    neg = data[11:]
    if not neg:
        return PROTOCOL_RDP, None, None
    if len(neg) != 8 or struct.unpack("<H", neg[2:4])[0] != 8:
        raise ValueError("malformed RDP negotiation data")
    kind, flags, _length, value = struct.unpack("<BBHI", neg)
    if kind == _TYPE_NEG_RSP:
        return value, None, flags
    if kind == _TYPE_NEG_FAILURE:
        return None, value, None
    raise ValueError(f"unknown RDP negotiation type 0x{kind:02X}")


def _read_confirm(sock: socket.socket) -> bytes:
    data = b""
    while len(data) < 4:
        chunk = sock.recv(4 - len(data))
        if not chunk:
            raise ConnectionError("the server closed the connection without answering")
        data += chunk
    if data[0] != 3:
        raise ValueError("the answer is not a TPKT packet")
    (length,) = struct.unpack(">H", data[2:4])
    if not 11 <= length <= _MAX_CONFIRM:
        raise ValueError(f"TPKT length {length} is not that of a Connection Confirm")
    while len(data) < length:
        chunk = sock.recv(length - len(data))
        if not chunk:
            raise ConnectionError("the server closed the connection mid-answer")
        data += chunk
    return data


def probe(address: str, port: int, timeout: float) -> RdpProbe:
    """Negotiate with the RDP endpoint at ``address:port`` (offering PROTOCOL_SSL | PROTOCOL_HYBRID).

    Never raises for what the network or the server does: the result says it (``reachable`` False and
    ``error`` for a refused connection, a timeout or an answer that is not RDP).
    """
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(REQUEST)
            data = _read_confirm(sock)
    except TimeoutError:
        return RdpProbe(address, port, False, error=f"no answer from {address}:{port} within {timeout:g} s")
    except ConnectionRefusedError:
        return RdpProbe(address, port, False, error=f"connection to {address}:{port} refused (nothing listens)")
    except (OSError, ValueError) as exc:
        return RdpProbe(address, port, False, error=f"{address}:{port}: {exc}")
    try:
        selected, failure, flags = parse_connection_confirm(data)
    except ValueError as exc:
        return RdpProbe(address, port, False, error=f"{address}:{port} answered, but not as RDP: {exc}")
    if failure is not None:
        name, meaning = FAILURES.get(failure, (f"0x{failure:08X}", "unknown failure code"))
        return RdpProbe(address, port, True, failure_code=failure, error=f"RDP negotiation refused: {name}: {meaning}")
    return RdpProbe(address, port, True, selected_protocol=selected, flags=flags)


def _clean(value: str, what: str) -> str:
    if not value.strip() or any(ch in value for ch in "\r\n\0"):
        raise LabUsageError(f"the .rdp file's {what} {value!r} is empty or has a line break",
                            field=what, hint="give a host name or address and a user name on one line")
    return value.strip()


def rdp_file(address: str, port: int, username: str) -> str:
    """The text of a .rdp file that connects to ``address:port`` as ``username`` (CRLF line endings).

    Settings from Microsoft's "Supported RDP properties" list: ``full address:s:host:port`` (an IPv6
    address in brackets), ``username:s:``, ``prompt for credentials:i:1`` (the client asks for the
    password), ``screen mode id:i:2`` (full screen), ``authentication level:i:2`` (warn when the server's
    certificate cannot be verified: lab guests have self-signed ones) and ``enablecredsspsupport:i:1``
    (Network Level Authentication, which Windows Server requires by default).

    There is never a password in it: the .rdp ``password 51:b:`` field holds a blob encrypted with DPAPI
    for one Windows user on one machine (CryptProtectData), so a file made here could not carry one that
    works for a student, and a plain text password would be a leaked secret. Save it as UTF-8 (mstsc reads
    UTF-8 and UTF-16 files).
    """
    host = _clean(address, "address")
    user = _clean(username, "username")
    if not 0 < int(port) < 65536:
        raise LabUsageError(f"the .rdp file's port {port} is not a TCP port (1-65535)", field="port")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal: the port follows the closing bracket
    lines = [
        f"full address:s:{host}:{int(port)}",
        f"username:s:{user}",
        "prompt for credentials:i:1",
        "screen mode id:i:2",
        "authentication level:i:2",
        "enablecredsspsupport:i:1",
    ]
    return "\r\n".join(lines) + "\r\n"
