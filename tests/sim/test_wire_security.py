"""Transport security and robustness: refusals as a default Windows listener gives them, hostile input."""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import socket
import ssl
import threading
import uuid

import pytest
from pypsrp.exceptions import AuthenticationError, WinRMTransportError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from hvsim.server import Simulator
from hvsim.wsman.soap import WSManFault, parse_request

NS_S = "http://www.w3.org/2003/05/soap-envelope"
NS_A = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_W = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"


def soap(action: str, body: str = "", selectors: str = "", resource: str = "") -> bytes:
    resource = resource or "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
    return (
        f'<s:Envelope xmlns:s="{NS_S}" xmlns:a="{NS_A}" xmlns:w="{NS_W}" xmlns:rsp="{SHELL}"><s:Header>'
        f"<a:Action>{action}</a:Action><a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
        f"<w:ResourceURI>{resource}</w:ResourceURI><w:OperationTimeout>PT1S</w:OperationTimeout>{selectors}"
        f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# ------------------------------------------------------------------------------------------- refusals
def test_basic_over_http_is_refused(sim: Simulator) -> None:
    wsman = WSMan("127.0.0.1", port=sim.http_port, ssl=False, username=sim.username, password=sim.password,
                  auth="basic", encryption="never")
    with pytest.raises(AuthenticationError):
        RunspacePool(wsman).open()


def test_basic_over_http_gets_401_offering_negotiate_only(sim: Simulator) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", sim.http_port, timeout=5)
    conn.request("POST", "/wsman", body=soap(SHELL + "/Receive"),
                 headers={"Authorization": basic(sim.username, sim.password),
                          "Content-Type": "application/soap+xml;charset=UTF-8"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 401
    assert resp.getheader("WWW-Authenticate") == "Negotiate"


def test_unencrypted_soap_over_http_is_refused(sim: Simulator) -> None:
    wsman = WSMan("127.0.0.1", port=sim.http_port, ssl=False, username=sim.username, password=sim.password,
                  auth="ntlm", encryption="never")
    with pytest.raises(WinRMTransportError) as info:
        RunspacePool(wsman).open()
    assert info.value.code == 500
    assert info.value.response_text == ""


@pytest.mark.parametrize("transport", ["https-basic", "https-ntlm", "http-ntlm"])
def test_wrong_password_is_401(sim: Simulator, wsman_for, transport: str) -> None:
    wsman = wsman_for(sim, transport)
    wsman.transport.password = "not-the-password"
    if getattr(wsman.transport, "session", None) is not None:
        wsman.transport.session = None
    with pytest.raises(AuthenticationError):
        RunspacePool(wsman).open()


def test_each_simulator_accepts_only_its_own_account(tmp_path, wsman_for) -> None:
    with Simulator(tmp_path / "a") as a, Simulator(tmp_path / "b") as b:
        assert a.username != b.username
        for sim in (a, b):
            with RunspacePool(wsman_for(sim, "http-ntlm")) as pool:
                assert pool.get_available_runspaces() >= 1
        for transport in ("https-basic", "https-ntlm"):
            wsman = wsman_for(b, transport)
            wsman.transport.username, wsman.transport.password = a.username, a.password
            with pytest.raises(AuthenticationError):
                RunspacePool(wsman).open()


def test_untrusted_certificate_is_rejected_by_the_client(sim: Simulator) -> None:
    import requests

    wsman = WSMan("127.0.0.1", port=sim.https_port, ssl=True, username=sim.username, password=sim.password,
                  auth="basic", cert_validation=True)
    with pytest.raises(requests.exceptions.SSLError):
        RunspacePool(wsman).open()


def test_xml_parser_refuses_entities_and_dtds() -> None:
    laughs = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
              b"<l>&b;</l>")
    xxe = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    for payload in (laughs, xxe, b"<unclosed", b"\xff\xfe garbage", b""):
        with pytest.raises(WSManFault) as info:
            parse_request(payload)
        assert info.value.code in (0x80338043, 0x80338027)


# ------------------------------------------------------------------------------------------- robustness
class _Client:
    """Keep-alive HTTP(S) client that reconnects when the server closes."""

    def __init__(self, port: int, tls: ssl.SSLContext | None) -> None:
        self.port, self.tls = port, tls
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
                ) -> tuple[int, bytes]:
        if self.conn is None:
            if self.tls is not None:
                self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=self.tls)
            else:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            resp = self.conn.getresponse()
            data = resp.read()
        except (ConnectionError, http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = None
            return 0, b""
        if resp.will_close:
            self.conn.close()
            self.conn = None
        return resp.status, data


def test_a_thousand_hostile_requests_then_a_normal_session(sim: Simulator, wsman_for) -> None:
    ctx = ssl.create_default_context(cafile=str(sim.cert_path))
    https, http_ = _Client(sim.https_port, ctx), _Client(sim.http_port, None)
    auth = {"Authorization": basic(sim.username, sim.password), "Content-Type": "application/soap+xml"}
    bad_shell = '<w:SelectorSet><w:Selector Name="ShellId">%s</w:Selector></w:SelectorSet>'
    receive = '<rsp:Receive><rsp:DesiredStream CommandId="%s">stdout</rsp:DesiredStream></rsp:Receive>'
    laughs = b'<!DOCTYPE l [<!ENTITY a "aaaaaaaaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><l>&b;</l>'
    xxe = b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><s:Envelope xmlns:s="%s">&e;</s:Envelope>'

    with RunspacePool(wsman_for(sim, "https-basic")) as victim:
        shell_sel = bad_shell % victim.id.upper()
        cases = [
            # (client, method, path, body, headers, acceptable statuses)
            (https, "POST", "/wsman", soap(SHELL + "/Receive"), {}, {401}),
            (https, "POST", "/wsman", soap(SHELL + "/Receive"), {"Authorization": basic(sim.username, "x")}, {401}),
            (https, "POST", "/wsman", soap(SHELL + "/Receive"), {"Authorization": "Basic !!!"}, {401}),
            (https, "POST", "/wsman", soap(SHELL + "/Receive"), {"Authorization": "Negotiate !!!"}, {401}),
            (https, "POST", "/wsman", b"", {"Authorization": "Negotiate " + base64.b64encode(os.urandom(40)).decode()},
             {401}),
            (https, "POST", "/wsman", b"not xml at all", auth, {500}),
            (https, "POST", "/wsman", laughs, auth, {500}),
            (https, "POST", "/wsman", xxe % NS_S.encode(), auth, {500}),
            (https, "POST", "/wsman", f'<s:Envelope xmlns:s="{NS_S}"/>'.encode(), auth, {500}),
            (https, "POST", "/wsman", soap("http://example.com/NoSuchAction"), auth, {500}),
            (https, "POST", "/wsman", soap(SHELL + "/Receive", receive % uuid.uuid4(),
                                           bad_shell % uuid.uuid4()), auth, {500}),
            (https, "POST", "/wsman", soap(SHELL + "/Receive", receive % "not-a-guid", shell_sel), auth, {500}),
            (https, "POST", "/wsman", soap(SHELL + "/Send", '<rsp:Send><rsp:Stream Name="stdin">@@@</rsp:Stream>'
                                                         "</rsp:Send>", shell_sel), auth, {500}),
            (https, "POST", "/wsman", soap(SHELL + "/Command", "<rsp:CommandLine/>", shell_sel), auth, {500}),
            (https, "POST", "/wsman", soap(SHELL + "/Signal", "", shell_sel), auth, {500}),
            (https, "POST", "/wsman", soap("http://schemas.xmlsoap.org/ws/2004/09/transfer/Create", "<x/>"), auth,
             {500}),
            (https, "POST", "/wsman", b"--Encrypted Boundary\r\n garbage",
             {**auth, "Content-Type": 'multipart/encrypted;boundary="Encrypted Boundary"'}, {401}),
            (https, "POST", "/wsman", b"x", {**auth, "Content-Length": "99999999"}, {0, 500}),
            (https, "GET", "/wsman", b"", auth, {405}),
            (https, "POST", "/elsewhere", b"", auth, {404}),
            (https, "POST", "/labctl-sim/control/nothing", b"{}", auth, {404}),
            (https, "POST", "/labctl-sim/control/faults", b"[1,2", auth, {400}),
            (http_, "POST", "/wsman", soap(SHELL + "/Receive"), {}, {401}),
            (http_, "POST", "/wsman", soap(SHELL + "/Receive"), auth, {401}),
            (http_, "POST", "/labctl-sim/control", b"", auth, {401}),
        ]
        sent = 0
        while sent < 1000:
            for client, method, path, body, headers, ok in cases:
                status, _ = client.request(method, path, body, headers)
                assert status in ok, (method, path, body[-300:], status)
                sent += 1
            # raw garbage on fresh connections: plain bytes to both ports, bytes instead of TLS to HTTPS
            for port in (sim.http_port, sim.https_port):
                with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                    # not a TLS record (0x16) nor an HTTP request line: both listeners give up at once
                    raw.sendall(b"\x00\xff GARBAGE " + bytes(range(32)) + b"\r\n\r\n")
                    raw.settimeout(5)
                    with contextlib.suppress(OSError):
                        raw.recv(1024)
                sent += 1
        assert sent >= 1000

    # the server is still healthy: a normal session over each transport works
    for transport in ("https-basic", "https-ntlm", "http-ntlm"):
        with RunspacePool(wsman_for(sim, transport)) as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("Get-Nothing")
            ps.invoke()
            assert ps.streams.error[0].fq_error == "CommandNotFoundException"
    assert threading.active_count() < 80
