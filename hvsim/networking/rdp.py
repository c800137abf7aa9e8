"""The simulated guests' Remote Desktop endpoints, reachable on the host's NAT-mapped ports.

On a real lab a guest's Remote Desktop Services listen on TCP 3389 once RDP is allowed
(``fDenyTSConnections`` = 0) and the "Remote Desktop" firewall group (``@FirewallAPI.dll,-28752``) is
enabled, both of which labctl's answer file sets; the host's WinNAT forwards ``<host>:<ExternalPort>`` to
``<guest IP>:3389`` (Add-NetNatStaticMapping). :class:`RdpEndpointManager` plays both: one TCP listener on
the simulator's bind address (127.0.0.1) per NetNat static mapping whose InternalPort is 3389 and whose
InternalIPAddress a running, booted guest that accepts RDP reports. It reconciles after every pipeline
(Simulator hook, beside the Docker API's) and every few seconds (guests boot as simulated time passes).

The simulator serves only the connection negotiation, the first exchange of [MS-RDPBCGR] (1.3.1.1
"Connection Initiation"): it reads the client's X.224 Connection Request with its RDP Negotiation Request
(2.2.1.1, 2.2.1.1.1) and answers an X.224 Connection Confirm with an RDP Negotiation Response (2.2.1.2,
2.2.1.2.1) or Failure (2.2.1.2.2), as the guest's settings decide (:func:`negotiate`), then closes the
connection. There is no TLS, no CredSSP and no desktop behind it: a real client (mstsc, FreeRDP) gets past
negotiation and then sees the connection close. Malformed input is dropped as 3.3.5.3.1 says ("the
connection SHOULD be dropped"); it never stops the listener.

Known gaps: a guest whose firewall blocks 3389 or whose RDP is off has no listener here, so a client is
refused at once (a real host drops the SYN and the client times out, or gets a reset); a Paused VM is
treated as stopped. Addresses are the ones the guest reports over KVP, as for the Docker API.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hvsim.core.portmap import RECONCILE_INTERVAL, MappedPortManager, guest_mappings

if TYPE_CHECKING:
    from hvsim.world import World

log = logging.getLogger(__name__)

RDP_PORT = 3389
# The "Remote Desktop" firewall rule group (Microsoft's unattend reference, Networking-MPSSVC-Svc |
# FirewallGroups; hvsim/guest/models/localized.py).
REMOTE_DESKTOP_GROUP = "@FirewallAPI.dll,-28752"
READ_TIMEOUT = 10.0  # a client that connects and sends nothing is dropped after this
DRAIN_TIMEOUT = 1.0
MAX_CONNECTIONS = 128

# ---------------------------------------------------------------------------------- [MS-RDPBCGR] constants
TPKT_VERSION = 3  # [T123] section 8: version 3, reserved 0, length (big-endian, the whole packet)
TPKT_HEADER = 4
X224_CR = 0xE0  # [X224] 13.3: Connection Request, CDT (credit) 0
X224_CC = 0xD0  # [X224] 13.4: Connection Confirm
X224_FIXED = 7  # LI, CR/CC+CDT, DST-REF (2), SRC-REF (2), class and options
MIN_REQUEST = TPKT_HEADER + X224_FIXED  # 3.3.5.3.1: shorter than 11 bytes -> drop
MAX_REQUEST = TPKT_HEADER + 255  # LI is one byte: a Connection Request cannot be longer
SERVER_SRC_REF = 0x1234  # 3.3.5.3.2: "the Source reference is set to 0x1234"

TYPE_RDP_NEG_REQ = 0x01  # 2.2.1.1.1
TYPE_RDP_NEG_RSP = 0x02  # 2.2.1.2.1
TYPE_RDP_NEG_FAILURE = 0x03  # 2.2.1.2.2
TYPE_RDP_CORRELATION_INFO = 0x06  # 2.2.1.1.2
NEG_LENGTH = 8
CORRELATION_INFO_PRESENT = 0x08  # RDP_NEG_REQ flags (2.2.1.1.1)
CORRELATION_LENGTH = 36  # 2.2.1.1.2

# requestedProtocols / selectedProtocol (2.2.1.1.1, 2.2.1.2.1)
PROTOCOL_RDP = 0x00000000
PROTOCOL_SSL = 0x00000001
PROTOCOL_HYBRID = 0x00000002
PROTOCOL_RDSTLS = 0x00000004
PROTOCOL_HYBRID_EX = 0x00000008
PROTOCOL_RDSAAD = 0x00000010

# failureCode (2.2.1.2.2)
SSL_REQUIRED_BY_SERVER = 0x00000001
SSL_NOT_ALLOWED_BY_SERVER = 0x00000002
SSL_CERT_NOT_ON_SERVER = 0x00000003
INCONSISTENT_FLAGS = 0x00000004
HYBRID_REQUIRED_BY_SERVER = 0x00000005
SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER = 0x00000006

# RDP_NEG_RSP flags (2.2.1.2.1): EXTENDED_CLIENT_DATA_SUPPORTED 0x01, DYNVC_GFX_PROTOCOL_SUPPORTED 0x02,
# NEGRSP_FLAG_RESERVED 0x04, RESTRICTED_ADMIN_MODE_SUPPORTED 0x08, REDIRECTED_AUTHENTICATION_MODE_SUPPORTED 0x10.
# What Windows sends: 0x1F from a Windows server in FreeRDP's debug log (FreeRDP/FreeRDP#9125, requested 3);
# 0x3F in nmap fingerprints of a Windows Server 2025 domain controller (its TerminalServerCookie probe,
# requested 3). 0x20 is not defined in the spec versions read; the per-build split is unconfirmed.
NEG_RSP_FLAGS = 0x1F
NEG_RSP_FLAGS_2025 = 0x3F
BUILD_2025 = 26100


class RdpPduError(ValueError):
    """The bytes are not an X.224 Connection Request of [MS-RDPBCGR] 2.2.1.1 (the connection is dropped)."""


@dataclass(frozen=True)
class ConnectionRequest:
    """What the server reads from a Client X.224 Connection Request PDU (2.2.1.1)."""

    cookie: bytes | None  # routingToken or cookie, without its CR LF (ignored, 3.3.5.3.1)
    requested_protocols: int | None  # None: no rdpNegReq (a client without Enhanced RDP Security)
    flags: int = 0


@dataclass(frozen=True)
class RdpPolicy:
    """The guest's Remote Desktop security settings (HKLM\\...\\WinStations\\RDP-Tcp).

    ``security_layer``: 0 Standard RDP Security only, 1 negotiate (the default), 2 TLS required
    (unattend reference, Microsoft-Windows-TerminalServices-RDP-WinStationExtensions | SecurityLayer).
    ``user_authentication``: 1 Network Level Authentication (CredSSP) required, the default since Windows
    Server 2012 ("On Windows Server 2012 and Windows 8, Network Level Authentication is enforced by
    default", Group Policy TS_USER_AUTHENTICATION_POLICY); the unattend setting's own default is 0.
    """

    security_layer: int = 1
    user_authentication: int = 1
    os_build: int = 20348

    @property
    def response_flags(self) -> int:
        return NEG_RSP_FLAGS_2025 if self.os_build >= BUILD_2025 else NEG_RSP_FLAGS


@dataclass(frozen=True)
class Answer:
    """The server's decision: a selected protocol, a failure code, or (legacy client) neither."""

    selected: int | None = None
    failure: int | None = None
    flags: int = 0
    respond: bool = True  # False: close without a Connection Confirm

    def pdu(self) -> bytes:
        """The Server X.224 Connection Confirm PDU (2.2.1.2) carrying this answer."""
        if self.selected is not None:
            return connection_confirm(struct.pack("<BBHI", TYPE_RDP_NEG_RSP, self.flags, NEG_LENGTH, self.selected))
        if self.failure is not None:
            # 2.2.1.2.2: flags "MUST be set to 0x00".
            return connection_confirm(struct.pack("<BBHI", TYPE_RDP_NEG_FAILURE, 0, NEG_LENGTH, self.failure))
        return connection_confirm(None)


# ---------------------------------------------------------------------------------- codec (no I/O)
def tpkt_length(header: bytes) -> int:
    """The packet length a TPKT header ([T123] section 8) announces; RdpPduError for what is no TPKT."""
    if len(header) != TPKT_HEADER or header[0] != TPKT_VERSION:
        raise RdpPduError("not a TPKT header (version 3)")
    (length,) = struct.unpack(">H", header[2:4])
    if not MIN_REQUEST <= length <= MAX_REQUEST:
        raise RdpPduError(f"TPKT length {length} out of range for a Connection Request")
    return length


def parse_connection_request(data: bytes) -> ConnectionRequest:
    """Decode a whole Client X.224 Connection Request PDU (2.2.1.1), checked as 3.3.5.3.1 says."""
    length = tpkt_length(data[:TPKT_HEADER])
    if length != len(data):
        raise RdpPduError("TPKT length does not match the data")
    li = data[4]
    if li != len(data) - TPKT_HEADER - 1:  # the Length Indicator counts the TPDU without itself
        raise RdpPduError("X.224 length indicator does not match the TPKT length")
    if data[5] & 0xF0 != X224_CR:
        raise RdpPduError("not an X.224 Connection Request TPDU")
    if data[10] >> 4 != 0:  # class in the high nibble ([X224] 13.3.3); 3.3.5.3.1: not Class 0 -> drop
        raise RdpPduError("not an X.224 Class 0 Connection Request")
    rest = data[MIN_REQUEST:]
    cookie: bytes | None = None
    if rest.startswith(b"Cookie:"):  # routingToken ("Cookie: msts=...") or cookie ("Cookie: mstshash=...")
        end = rest.find(b"\r\n")
        if end < 0:
            raise RdpPduError("cookie without its CR LF terminator")
        cookie, rest = rest[:end], rest[end + 2:]
    if not rest:
        return ConnectionRequest(cookie, None)
    if len(rest) < NEG_LENGTH or rest[0] != TYPE_RDP_NEG_REQ:
        raise RdpPduError("trailing data is not an RDP Negotiation Request")
    _type, flags, neg_length, requested = struct.unpack("<BBHI", rest[:NEG_LENGTH])
    if neg_length != NEG_LENGTH:
        raise RdpPduError("RDP Negotiation Request length is not 8")
    rest = rest[NEG_LENGTH:]
    if flags & CORRELATION_INFO_PRESENT:
        # 2.2.1.1.2: type 0x06, flags 0, length 0x0024, correlationId (16), reserved (16).
        if len(rest) != CORRELATION_LENGTH or rest[0] != TYPE_RDP_CORRELATION_INFO or \
                struct.unpack("<H", rest[2:4])[0] != CORRELATION_LENGTH:
            raise RdpPduError("CORRELATION_INFO_PRESENT without an RDP Correlation Info structure")
        rest = b""
    if rest:
        raise RdpPduError("data after the RDP Negotiation Request")
    return ConnectionRequest(cookie, requested, flags)


def connection_confirm(neg_data: bytes | None) -> bytes:
    """TPKT + X.224 Class 0 Connection Confirm (DST-REF 0, SRC-REF 0x1234, class 0) + optional rdpNegData.

    [MS-RDPBCGR] 4.1.2 shows it: ``03 00 00 13 0e d0 00 00 12 34 00 02 ...``.
    """
    body = neg_data or b""
    li = X224_FIXED - 1 + len(body)
    tpdu = struct.pack(">BBHHB", li, X224_CC, 0, SERVER_SRC_REF, 0) + body
    return struct.pack(">BBH", TPKT_VERSION, 0, TPKT_HEADER + len(tpdu)) + tpdu


def negotiate(request: ConnectionRequest, policy: RdpPolicy) -> Answer:
    """Windows' choice of security protocol for a Connection Request (3.3.5.3.2, 5.4.2.1).

    With NLA required (the default) only CredSSP is accepted: HYBRID_EX when offered, else HYBRID, and
    HYBRID_REQUIRED_BY_SERVER for a client that offers neither (what FreeRDP and mstsc report as "The
    remote computer requires Network Level Authentication": FreeRDP/FreeRDP#13185, Remmina#1195). Without
    NLA the strongest offered of HYBRID_EX, HYBRID, SSL is selected; standard RDP security alone is refused
    with SSL_REQUIRED_BY_SERVER when TLS is required (SecurityLayer 2) and selected otherwise. SecurityLayer
    0 refuses a client that offers enhanced security with SSL_NOT_ALLOWED_BY_SERVER. RDSTLS and RDSAAD are
    never selected (no redirection, no Entra ID in a lab). Preferring HYBRID_EX and the SecurityLayer 0
    answer are unconfirmed.

    No rdpNegReq at all (a pre-RDP 5.2 client): 3.3.5.3.1 says the Confirm then carries no negotiation
    data; when the server requires enhanced security it closes instead (unconfirmed: nmap's
    nmap-service-probes notes that NLA listeners answer only its probe with a negotiation request).
    """
    requested = request.requested_protocols
    nla = policy.user_authentication == 1 and policy.security_layer != 0
    if requested is None:
        return Answer(respond=not nla and policy.security_layer != 2)
    flags = policy.response_flags
    if policy.security_layer == 0:
        if requested & (PROTOCOL_SSL | PROTOCOL_HYBRID | PROTOCOL_HYBRID_EX):
            return Answer(failure=SSL_NOT_ALLOWED_BY_SERVER)
        return Answer(selected=PROTOCOL_RDP, flags=flags)
    if requested & PROTOCOL_HYBRID_EX:
        return Answer(selected=PROTOCOL_HYBRID_EX, flags=flags)
    if requested & PROTOCOL_HYBRID:
        return Answer(selected=PROTOCOL_HYBRID, flags=flags)
    if nla:
        return Answer(failure=HYBRID_REQUIRED_BY_SERVER)
    if requested & PROTOCOL_SSL:
        return Answer(selected=PROTOCOL_SSL, flags=flags)
    if policy.security_layer == 2:
        return Answer(failure=SSL_REQUIRED_BY_SERVER)
    return Answer(selected=PROTOCOL_RDP, flags=flags)


# ---------------------------------------------------------------------------------- the guest's side
PolicyLookup = Callable[["World", Any], "RdpPolicy | None"]
"""(world, vm) -> the guest's RDP settings when it accepts Remote Desktop connections, else None."""


def default_policy(world: World, vm: Any) -> RdpPolicy | None:
    """The guest model's RDP state (what probe.ps1 reports as RdpEnabled and FirewallGroups).

    The guest model does not keep SecurityLayer/UserAuthentication (the answer file's
    TerminalServices-RDP-WinStationExtensions values are validated, not applied): Windows' defaults apply.
    """
    guest = getattr(vm, "guest", None)
    if guest is None or not guest.is_ready(world, vm):
        return None  # still booting (or never booted): TermService is not listening yet
    if not guest.rdp_enabled or not guest.firewall_groups.get(REMOTE_DESKTOP_GROUP, False):
        return None
    return RdpPolicy(os_build=int(guest.os_build or 20348))


# ---------------------------------------------------------------------------------- listeners
@dataclass(frozen=True)
class _Target:
    """What one mapped port leads to; a change of any field replaces the listener."""

    port: int
    vm_id: str
    vm_name: str
    internal_ip: str
    policy: RdpPolicy


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], target: _Target, manager: RdpEndpointManager) -> None:
        self.target = target
        self.manager = manager
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        with self.conn_lock:
            return len(self.connections) < MAX_CONNECTIONS

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("RDP connection from %s ended with an error", client_address, exc_info=True)

    def stop(self, thread: threading.Thread) -> None:
        self.shutdown()
        self.server_close()
        with self.conn_lock:
            conns = list(self.connections)
            self.connections.clear()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        thread.join(timeout=5)


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise RdpPduError("connection closed mid-PDU")
        data += chunk
    return data


class _Handler(socketserver.BaseRequestHandler):
    server: _Server
    request: socket.socket

    def setup(self) -> None:
        with self.server.conn_lock:
            self.server.connections.add(self.request)

    def finish(self) -> None:
        with self.server.conn_lock:
            self.server.connections.discard(self.request)

    def handle(self) -> None:
        sock = self.request
        try:
            sock.settimeout(READ_TIMEOUT)
            header = _read_exactly(sock, TPKT_HEADER)
            length = tpkt_length(header)
            request = parse_connection_request(header + _read_exactly(sock, length - TPKT_HEADER))
            policy = self.server.manager.policy_for(self.server.target)
            if policy is None:
                return  # the guest stopped or RDP went off since the last reconcile: as a closed port
            answer = negotiate(request, policy)
            if answer.respond:
                sock.sendall(answer.pdu())
            log.debug("simulated RDP of %s: requested %s -> selected %s failure %s [SIMULATED]",
                      self.server.target.vm_name, request.requested_protocols, answer.selected, answer.failure)
            self._close_gracefully(sock)
        except (RdpPduError, OSError) as exc:
            log.debug("simulated RDP of %s dropped a connection: %s", self.server.target.vm_name, exc)
        except Exception as exc:  # one bad connection must not take the listener down
            log.error("the simulated RDP endpoint of %s failed: %s", self.server.target.vm_name,
                      type(exc).__name__, exc_info=log.isEnabledFor(logging.DEBUG))

    @staticmethod
    def _close_gracefully(sock: socket.socket) -> None:
        """Half-close, then drain what the client sends next (its TLS ClientHello) so the close is a FIN,
        not a reset that could overtake the Confirm. This is where the simulator stops: no TLS, no desktop."""
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(DRAIN_TIMEOUT)
            budget = 64 * 1024
            while budget > 0:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                budget -= len(chunk)


class _Listener:
    def __init__(self, host: str, target: _Target, manager: RdpEndpointManager) -> None:
        self.target = target
        self.server = _Server((host, target.port), target, manager)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name=f"sim-rdp-{target.port}", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.stop(self.thread)


class RdpEndpointManager(MappedPortManager[_Target]):
    """One RDP negotiation listener per NAT mapping to a running guest's 3389 (see the module doc)."""

    label = "RDP endpoint"

    def __init__(self, world: World, host: str = "127.0.0.1", lookup: PolicyLookup | None = None,
                 interval: float = RECONCILE_INTERVAL) -> None:
        super().__init__(world, host, interval)
        self.lookup: PolicyLookup = lookup or default_policy

    def open(self, target: _Target) -> _Listener:
        return _Listener(self.host, target, self)

    def wanted(self) -> dict[int, _Target]:
        world = self.world
        wanted: dict[int, _Target] = {}
        with world.lock:
            for m in guest_mappings(world, RDP_PORT):
                policy = self.lookup(world, m.vm)
                if policy is not None:
                    wanted[m.external_port] = _Target(m.external_port, str(m.vm.id), str(m.vm.name), m.internal_ip,
                                                      policy)
        return wanted

    def policy_for(self, target: _Target) -> RdpPolicy | None:
        """The guest's RDP settings behind a listener now, or None when it no longer accepts RDP."""
        world = self.world
        with world.lock:
            vm = world.vms.get(target.vm_id)
            if vm is None or getattr(vm, "state", None) != "Running":
                return None
            return self.lookup(world, vm)
