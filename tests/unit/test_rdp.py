"""labctl.rdp: the .rdp file's text, and the probe against scripted servers answering real Windows bytes.

The answers are [MS-RDPBCGR] 4.1.2's example, what a Windows server sent FreeRDP (FreeRDP/FreeRDP#9125:
flags 0x1F, PROTOCOL_HYBRID), and the Negotiation Failure an NLA-only server sends (2.2.1.2.2).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from labctl.errors import LabUsageError
from labctl.rdp import (
    PROTOCOL_HYBRID,
    PROTOCOL_RDP,
    PROTOCOL_SSL,
    REQUEST,
    parse_connection_confirm,
    probe,
    rdp_file,
)

HYBRID_1F = bytes.fromhex("030000130ed00000123400021f080002000000")
SPEC_412 = bytes.fromhex("030000130ed000001234000200080001000000")
HYBRID_REQUIRED = bytes.fromhex("030000130ed000001234000300080005000000")
NO_NEG_DATA = bytes.fromhex("0300000b06d00000123400")


# ------------------------------------------------------------------------------ rdp_file
def test_rdp_file_has_the_documented_settings_and_no_password() -> None:
    text = rdp_file("203.0.113.7", 33891, "Administrator")
    assert text == ("full address:s:203.0.113.7:33891\r\n"
                    "username:s:Administrator\r\n"
                    "prompt for credentials:i:1\r\n"
                    "screen mode id:i:2\r\n"
                    "authentication level:i:2\r\n"
                    "enablecredsspsupport:i:1\r\n")
    assert "password" not in text.lower()


def test_rdp_file_brackets_an_ipv6_address_and_keeps_a_domain_user() -> None:
    text = rdp_file("2001:db8::10", 3390, "LAB\\student01")
    assert "full address:s:[2001:db8::10]:3390\r\n" in text
    assert "username:s:LAB\\student01\r\n" in text
    assert "full address:s:[::1]:3389\r\n" in rdp_file("[::1]", 3389, "u")


@pytest.mark.parametrize(("address", "port", "user", "field_"), [
    ("host\r\npassword 51:b:00", 3389, "u", "address"),  # no injected setting
    ("", 3389, "u", "address"),
    ("host", 3389, "u\nscreen mode id:i:1", "username"),
    ("host", 0, "u", "port"),
    ("host", 65536, "u", "port"),
])
def test_rdp_file_refuses_what_would_break_the_file(address: str, port: int, user: str, field_: str) -> None:
    with pytest.raises(LabUsageError) as err:
        rdp_file(address, port, user)
    assert err.value.field == field_


# ------------------------------------------------------------------------------ parse
def test_parse_reads_responses_failures_and_a_bare_confirm() -> None:
    assert parse_connection_confirm(HYBRID_1F) == (PROTOCOL_HYBRID, None, 0x1F)
    assert parse_connection_confirm(SPEC_412) == (PROTOCOL_SSL, None, 0)
    assert parse_connection_confirm(HYBRID_REQUIRED) == (None, 5, None)
    assert parse_connection_confirm(NO_NEG_DATA) == (PROTOCOL_RDP, None, None)


@pytest.mark.parametrize("data", [
    b"HTTP/1.1 400 Bad Request\r\n\r\n", HYBRID_1F[:-1], HYBRID_1F[:5] + b"\xe0" + HYBRID_1F[6:],
    HYBRID_1F[:11] + b"\x07" + HYBRID_1F[12:],
])
def test_parse_refuses_what_is_not_a_confirm(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_connection_confirm(data)


# ------------------------------------------------------------------------------ probe
@dataclass
class Scripted:
    """A one-connection TCP server: records what the client sent, answers ``reply`` (or nothing), closes."""

    reply: bytes | None
    hold: float = 0.0
    received: list[bytes] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(5)
            self.received.append(conn.recv(4096))
            if self.reply is not None:
                conn.sendall(self.reply)
            else:
                self.done.wait(self.hold)

    def close(self) -> None:
        self.done.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def scripted() -> Iterator[list[Scripted]]:
    servers: list[Scripted] = []
    yield servers
    for s in servers:
        s.close()


def serve(servers: list[Scripted], reply: bytes | None, hold: float = 0.0) -> Scripted:
    server = Scripted(reply, hold)
    servers.append(server)
    return server


def test_probe_sends_a_connection_request_offering_tls_and_credssp(scripted: list[Scripted]) -> None:
    server = serve(scripted, HYBRID_1F)
    result = probe("127.0.0.1", server.port, 5)
    # TPKT (length 19), X.224 CR (LI 14, 0xE0, refs and class 0), RDP_NEG_REQ requesting SSL|HYBRID.
    assert server.received == [bytes.fromhex("030000130ee000000000000100080003000000")] == [REQUEST]
    assert result.reachable and result.ok
    assert (result.selected_protocol, result.protocol_name, result.flags) == (PROTOCOL_HYBRID, "PROTOCOL_HYBRID", 0x1F)
    assert result.error is None


def test_probe_reports_a_negotiation_failure_as_reachable_with_the_reason(scripted: list[Scripted]) -> None:
    server = serve(scripted, HYBRID_REQUIRED)
    result = probe("127.0.0.1", server.port, 5)
    assert result.reachable and not result.ok
    assert (result.failure_code, result.failure_name) == (5, "HYBRID_REQUIRED_BY_SERVER")
    assert result.error is not None and "Network Level Authentication" in result.error


def test_probe_of_a_closed_port_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        result = probe("127.0.0.1", port, 2)
    assert not result.reachable and result.selected_protocol is None
    assert result.error is not None and "refused" in result.error


def test_probe_of_a_server_that_closes_or_stays_silent(scripted: list[Scripted]) -> None:
    closes = serve(scripted, b"")
    result = probe("127.0.0.1", closes.port, 5)
    assert not result.reachable and result.error is not None and "without answering" in result.error
    silent = serve(scripted, None, hold=5)
    result = probe("127.0.0.1", silent.port, 0.3)
    assert not result.reachable and result.error is not None and "no answer" in result.error


def test_probe_of_something_that_is_not_rdp(scripted: list[Scripted]) -> None:
    web = serve(scripted, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    result = probe("127.0.0.1", web.port, 5)
    assert not result.reachable and result.error is not None and "TPKT" in result.error
