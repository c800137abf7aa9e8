"""The simulated guests' RDP endpoints: the [MS-RDPBCGR] connection negotiation, and listeners that follow
NAT mappings and guests, driven over real sockets.

The byte strings are the spec's own examples (4.1.1, 4.1.2) and what real clients send: nmap's
TerminalServerCookie probe (nmap-service-probes) and mstsc's request as logged by pyrdp (GoSecure/pyrdp#490).
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from guest_world import make_vm
from unattend_samples import COMP, document, rdp, shell_specialize, tcpip

from hvsim.networking import rdp as R
from hvsim.server import Simulator

GUEST_IP = "10.0.0.5"  # the answer file's static address
VM = "CH01"

# [MS-RDPBCGR] 4.1.1: cookie "mstshash=eltons", RDP_NEG_REQ requesting PROTOCOL_RDP.
SPEC_REQUEST = bytes.fromhex("0300002c27e00000000000436f6f6b69653a206d737473686173683d656c746f6e730d0a0100080000000000")
# nmap's TerminalServerCookie probe: cookie "mstshash=nmap", requesting PROTOCOL_SSL | PROTOCOL_HYBRID.
NMAP_REQUEST = b"\x03\x00\x00*%\xe0\x00\x00\x00\x00\x00Cookie: mstshash=nmap\r\n\x01\x00\x08\x00\x03\x00\x00\x00"
# mstsc (pyrdp#490): cookie "mstshash=Administr", requesting SSL | HYBRID | HYBRID_EX (0x0B).
MSTSC_REQUEST = bytes.fromhex("0300002f2ae00000000000436f6f6b69653a206d737473686173683d41646d696e697374720d0a"
                              "010008000b000000")
# nmap's TerminalServer probe: no negotiation data at all.
LEGACY_REQUEST = b"\x03\x00\x00\x0b\x06\xe0\x00\x00\x00\x00\x00"


def request(protocols: int | None, *, cookie: bytes = b"", flags: int = 0, tail: bytes = b"") -> bytes:
    body = cookie + (struct.pack("<BBHI", 1, flags, 8, protocols) if protocols is not None else b"") + tail
    tpdu = struct.pack(">BBHHB", 6 + len(body), 0xE0, 0, 0, 0) + body
    return struct.pack(">BBH", 3, 0, 4 + len(tpdu)) + tpdu


# ------------------------------------------------------------------------------ codec
def test_the_specs_example_request_parses() -> None:
    req = R.parse_connection_request(SPEC_REQUEST)
    assert req.cookie == b"Cookie: mstshash=eltons"
    assert req.requested_protocols == R.PROTOCOL_RDP


def test_real_clients_requests_parse() -> None:
    assert R.parse_connection_request(NMAP_REQUEST).requested_protocols == 3
    assert R.parse_connection_request(MSTSC_REQUEST).requested_protocols == 0x0B
    legacy = R.parse_connection_request(LEGACY_REQUEST)
    assert legacy.requested_protocols is None and legacy.cookie is None


def test_a_request_with_correlation_info_parses() -> None:
    info = struct.pack("<BBH", 6, 0, 36) + bytes(range(16)) + bytes(16)
    req = R.parse_connection_request(request(3, flags=R.CORRELATION_INFO_PRESENT, tail=info))
    assert req.requested_protocols == 3 and req.flags == R.CORRELATION_INFO_PRESENT


@pytest.mark.parametrize("data", [
    b"", b"\x03\x00\x00\x05\x00",  # too short
    b"\x04" + SPEC_REQUEST[1:],  # not TPKT version 3
    SPEC_REQUEST[:-1],  # TPKT length says one byte more
    SPEC_REQUEST[:4] + b"\x26" + SPEC_REQUEST[5:],  # length indicator off by one
    SPEC_REQUEST[:5] + b"\xd0" + SPEC_REQUEST[6:],  # a Confirm, not a Request
    SPEC_REQUEST[:10] + b"\x20" + SPEC_REQUEST[11:],  # class 2
    request(None, cookie=b"Cookie: mstshash=x"),  # cookie without CR LF
    request(3, tail=b"\x00"),  # data after the negotiation request
    request(3, flags=R.CORRELATION_INFO_PRESENT),  # flag without the structure
    request(None, cookie=b"\x02\x00\x08\x00\x00\x00\x00\x00"),  # a response type in a request
])
def test_malformed_requests_are_refused(data: bytes) -> None:
    with pytest.raises(R.RdpPduError):
        R.parse_connection_request(data)


def test_the_confirm_matches_the_specs_example() -> None:
    # [MS-RDPBCGR] 4.1.2's dump: RDP_NEG_RSP, flags 0, selectedProtocol 1 (its annotation says PROTOCOL_RDP,
    # its bytes say 01 00 00 00).
    spec = bytes.fromhex("030000130ed000001234000200080001000000")
    assert R.Answer(selected=R.PROTOCOL_SSL, flags=0).pdu() == spec
    assert R.connection_confirm(None) == bytes.fromhex("0300000b06d00000123400")


DEFAULT = R.RdpPolicy()  # Windows Server 2022 defaults: negotiate, NLA required


@pytest.mark.parametrize(("requested", "policy", "selected", "failure"), [
    (3, DEFAULT, R.PROTOCOL_HYBRID, None),  # what nmap, FreeRDP and labctl's probe offer
    (0x0B, DEFAULT, R.PROTOCOL_HYBRID_EX, None),  # mstsc
    (R.PROTOCOL_SSL, DEFAULT, None, R.HYBRID_REQUIRED_BY_SERVER),
    (R.PROTOCOL_RDP, DEFAULT, None, R.HYBRID_REQUIRED_BY_SERVER),
    (3, R.RdpPolicy(user_authentication=0), R.PROTOCOL_HYBRID, None),
    (R.PROTOCOL_SSL, R.RdpPolicy(user_authentication=0), R.PROTOCOL_SSL, None),
    (R.PROTOCOL_RDP, R.RdpPolicy(user_authentication=0), R.PROTOCOL_RDP, None),
    (R.PROTOCOL_RDP, R.RdpPolicy(security_layer=2, user_authentication=0), None, R.SSL_REQUIRED_BY_SERVER),
    (3, R.RdpPolicy(security_layer=0, user_authentication=0), None, R.SSL_NOT_ALLOWED_BY_SERVER),
    (R.PROTOCOL_RDP, R.RdpPolicy(security_layer=0, user_authentication=0), R.PROTOCOL_RDP, None),
    (R.PROTOCOL_RDSTLS | R.PROTOCOL_SSL, R.RdpPolicy(user_authentication=0), R.PROTOCOL_SSL, None),
])
def test_negotiate_chooses_as_windows_does(requested: int, policy: R.RdpPolicy, selected: int | None,
                                           failure: int | None) -> None:
    answer = R.negotiate(R.ConnectionRequest(None, requested), policy)
    assert (answer.selected, answer.failure, answer.respond) == (selected, failure, True)
    pdu = answer.pdu()
    kind = 2 if selected is not None else 3
    assert pdu[11] == kind and struct.unpack("<I", pdu[15:19])[0] == (selected if selected is not None else failure)
    assert pdu[12] == (0x1F if selected is not None else 0)


def test_a_legacy_client_gets_no_negotiation_data() -> None:
    legacy = R.ConnectionRequest(None, None)
    assert R.negotiate(legacy, DEFAULT).respond is False  # NLA required: closed without a Confirm
    open_ = R.negotiate(legacy, R.RdpPolicy(user_authentication=0))
    assert open_.respond and open_.pdu() == R.connection_confirm(None)


def test_windows_server_2025_sets_flag_0x20() -> None:
    answer = R.negotiate(R.ConnectionRequest(None, 3), R.RdpPolicy(os_build=26100))
    assert answer.pdu() == bytes.fromhex("030000130ed00000123400023f080002000000")


# ------------------------------------------------------------------------------ listeners on the simulator
FIREWALL = (f'<component name="Networking-MPSSVC-Svc" {COMP}><FirewallGroups>'
            '<FirewallGroup xmlns:wcm="http://schemas.microsoft.com/WMIConfig/2002/State" wcm:action="add" '
            'wcm:keyValue="RemoteDesktop"><Active>true</Active><Group>@FirewallAPI.dll,-28752</Group>'
            "<Profile>all</Profile></FirewallGroup></FirewallGroups></component>")


def answer_file(*, rdp_on: bool = True, firewall: bool = True) -> str:
    return document(specialize=shell_specialize() + tcpip() + rdp("false" if rdp_on else "true")
                    + (FIREWALL if firewall else ""))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RdpLab:
    sim: Simulator
    vm: Any

    @property
    def manager(self) -> R.RdpEndpointManager:
        assert self.sim.rdp is not None
        return self.sim.rdp

    def map_port(self, internal_port: int = 3389, ip: str = GUEST_IP, protocol: str = "TCP") -> int:
        port = free_port()
        assert self.sim.world is not None
        with self.sim.world.lock:
            nat = self.sim.world.network.nats[0]
            nat.static_mappings.append({"id": len(nat.static_mappings), "protocol": protocol,
                                        "external_ip": "0.0.0.0", "external_port": port, "internal_ip": ip,
                                        "internal_port": internal_port})
        return port

    def reconcile(self) -> dict[int, str]:
        self.manager.reconcile()
        return self.manager.ports


def _lab(tmp_path: Path, unattend: str) -> Iterator[RdpLab]:
    with Simulator(tmp_path / "state", profile="instant") as sim:
        assert sim.world is not None
        with sim.world.lock:
            vm = make_vm(sim.world, VM, unattend)
            sim.world.network.new_nat("LabNat", "10.0.0.0/24")
        yield RdpLab(sim, vm)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[RdpLab]:
    yield from _lab(tmp_path, answer_file())


def exchange(port: int, data: bytes, timeout: float = 5) -> bytes:
    """Send ``data``, read until the server closes; b'' when it closed without answering."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        got = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return got
            got += chunk


def test_a_mapping_to_an_rdp_guest_answers_like_windows_server(lab: RdpLab) -> None:
    port = lab.map_port()
    assert lab.reconcile() == {port: VM}
    # A Windows Server 2022 guest, NLA required: CredSSP selected for nmap's probe, then the connection ends.
    assert exchange(port, NMAP_REQUEST) == bytes.fromhex("030000130ed00000123400021f080002000000")
    assert exchange(port, MSTSC_REQUEST)[11:] == bytes.fromhex("021f080008000000")  # HYBRID_EX
    # Standard RDP security only: refused with HYBRID_REQUIRED_BY_SERVER (2.2.1.2.2), flags 0.
    assert exchange(port, SPEC_REQUEST) == bytes.fromhex("030000130ed000001234000300080005000000")


def test_malformed_input_never_kills_the_listener(lab: RdpLab) -> None:
    port = lab.map_port()
    lab.reconcile()
    for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x03\x00\xff\xff" + bytes(64), b"\x16\x03\x01\x02\x00\x01",
                 LEGACY_REQUEST[:-1] + b"\x20"):
        assert exchange(port, junk) == b""  # dropped, no answer
    for cut in (0, 3, 7):  # clients that leave before (or in the middle of) their request
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(NMAP_REQUEST[:cut])
    silent = socket.create_connection(("127.0.0.1", port), timeout=5)  # one that connects and says nothing
    try:
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(exchange(port, NMAP_REQUEST))) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=15)
        assert [a[11] for a in answers] == [2] * 8  # still answering, in parallel, beside the silent one
    finally:
        silent.close()
    assert lab.manager.ports == {port: VM}


def test_a_legacy_client_is_dropped_when_nla_is_required(lab: RdpLab) -> None:
    port = lab.map_port()
    lab.reconcile()
    assert exchange(port, LEGACY_REQUEST) == b""


def test_only_tcp_3389_to_a_known_guest_is_served(lab: RdpLab) -> None:
    lab.map_port(internal_port=2376)
    lab.map_port(protocol="UDP")
    lab.map_port(ip="10.0.0.99")
    assert lab.reconcile() == {}


def test_stopping_the_guest_or_removing_the_mapping_closes_the_listener(lab: RdpLab) -> None:
    port = lab.map_port()
    assert lab.reconcile() == {port: VM}
    world = lab.sim.world
    assert world is not None
    with world.lock:
        world.hv.stop(lab.vm, turn_off=True)
    assert lab.reconcile() == {}
    with pytest.raises(ConnectionRefusedError):
        exchange(port, NMAP_REQUEST)
    with world.lock:
        world.hv.start(lab.vm)
    assert lab.reconcile() == {port: VM}
    assert exchange(port, NMAP_REQUEST)[11] == 2
    with world.lock:
        world.network.nats[0].static_mappings.clear()
    assert lab.reconcile() == {}
    with pytest.raises(ConnectionRefusedError):
        exchange(port, NMAP_REQUEST)


@pytest.mark.parametrize("unattend", [answer_file(rdp_on=False), answer_file(firewall=False)],
                         ids=["fDenyTSConnections=1", "Remote-Desktop-group-off"])
def test_a_guest_that_does_not_accept_rdp_gets_no_listener(tmp_path: Path, unattend: str) -> None:
    for lab in _lab(tmp_path, unattend):
        port = lab.map_port()
        assert lab.reconcile() == {}
        with pytest.raises(ConnectionRefusedError):
            exchange(port, NMAP_REQUEST)


def test_the_simulator_stops_its_rdp_listeners(tmp_path: Path) -> None:
    for lab in _lab(tmp_path, answer_file()):
        port = lab.map_port()
        lab.reconcile()
        lab.sim.stop()
        assert lab.manager.ports == {}
        with pytest.raises(ConnectionRefusedError):
            exchange(port, NMAP_REQUEST)
