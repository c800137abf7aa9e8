"""SOAP envelopes of WS-Management: safe parsing of requests, responses and WSMan faults.

Requests are parsed with defusedxml (no DTD, no entity expansion, no external references). Every
problem with a request becomes a :class:`WSManFault` carrying the code and text a Windows WinRM
service uses for it (wsmerror.h), so a client sees the same failure it would see from a real host.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape, quoteattr

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError
from defusedxml.ElementTree import fromstring as _safe_fromstring

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "wsmv": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "wst": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "wsen": "http://schemas.xmlsoap.org/ws/2004/09/enumeration",
    "cfg": "http://schemas.microsoft.com/wbem/wsman/1/config",
    "pwsh": "http://schemas.microsoft.com/powershell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}

XFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
ENUM = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/"
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"

# Action URI -> short name used for dispatch, counters and fault matching.
ACTIONS = {
    XFER + "Create": "Create",
    XFER + "Delete": "Delete",
    XFER + "Get": "Get",
    ENUM + "Enumerate": "Enumerate",
    SHELL + "Command": "Command",
    SHELL + "Send": "Send",
    SHELL + "Receive": "Receive",
    SHELL + "Signal": "Signal",
    SHELL + "Connect": "Connect",
    SHELL + "Disconnect": "Disconnect",
    SHELL + "Reconnect": "Reconnect",
}
RESPONSE_ACTIONS = {
    "Create": XFER + "CreateResponse",
    "Delete": XFER + "DeleteResponse",
    "Get": XFER + "GetResponse",
    "Enumerate": ENUM + "EnumerateResponse",
    "Command": SHELL + "CommandResponse",
    "Send": SHELL + "SendResponse",
    "Receive": SHELL + "ReceiveResponse",
    "Signal": SHELL + "SignalResponse",
}

DEFAULT_OPERATION_TIMEOUT = 60.0
DEFAULT_MAX_ENVELOPE = 153600


class WSManFault(Exception):
    """A WS-Management fault: HRESULT-style code, SOAP subcode and the service's message text."""

    def __init__(self, code: int, reason: str, subcode: str = "w:InternalError", *,
                 sender: bool = False, http_status: int = 500) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.subcode = subcode
        self.sender = sender
        self.http_status = http_status

    def __repr__(self) -> str:
        return f"WSManFault(0x{self.code:08X}, {self.subcode})"


# Codes and texts from wsmerror.h (trailing blanks as Windows sends them are omitted).
def operation_timed_out() -> WSManFault:
    return WSManFault(0x80338029, "The WS-Management service cannot complete the operation within the time "
                      "specified in OperationTimeout.", "w:TimedOut")


def invalid_selectors() -> WSManFault:
    return WSManFault(0x8033805B, "The WS-Management service cannot process the request because the request "
                      "contained invalid selectors for the resource.", "w:InvalidSelectors", sender=True)


def action_not_supported(action: str) -> WSManFault:
    return WSManFault(0x80338013, "The WS-Management service does not support the action specified in the "
                      f"request. Action: {action}", "a:ActionNotSupported", sender=True)


def invalid_xml() -> WSManFault:
    return WSManFault(0x80338043, "The WS-Management service cannot process the request because the XML is "
                      "invalid.", "w:SchemaValidationError", sender=True)


def invalid_soap_body() -> WSManFault:
    return WSManFault(0x80338027, "The WS-Management service cannot process the request because the request "
                      "packet does not have a valid SOAP body.", "w:InvalidBody", sender=True)


def header_required() -> WSManFault:
    return WSManFault(0x80338011, "The WS-Management service cannot process the request. The request does not "
                      "have all the expected SOAP headers.", "a:MessageInformationHeaderRequired", sender=True)


def invalid_header() -> WSManFault:
    return WSManFault(0x8033800F, "The WS-Management service cannot process the request. The request contains "
                      "one or more invalid SOAP headers.", "a:InvalidMessageInformationHeader", sender=True)


def invalid_resource_uri() -> WSManFault:
    return WSManFault(0x8033803B, "The WS-Management service cannot process the request. The resource URI is "
                      "missing or it has an incorrect format.", "w:InvalidResourceURI", sender=True)


def encoding_limit() -> WSManFault:
    return WSManFault(0x80338035, "The WS-Management service cannot process the request because the encoding of "
                      "the request exceeds an internal encoding limit. Reconfigure the client to send messages "
                      "which fit the encoding limits of the service.", "w:EncodingLimit", sender=True)


def invalid_parameter() -> WSManFault:
    return WSManFault(0x8033803A, "The WS-Management service cannot process the request because a parameter for "
                      "the operation is not valid.", "w:InvalidParameter", sender=True)


def internal_error() -> WSManFault:
    return WSManFault(0x80338012, "The client cannot connect to the destination specified in the request. Verify "
                      "that the service on the destination is running and is accepting requests.",
                      "w:InternalError")


@dataclass
class WSManRequest:
    """The parts of a WS-Management request the service acts on."""

    action_uri: str
    action: str  # short name (Create, Receive, ...) or "" when unknown
    message_id: str
    resource_uri: str
    selectors: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    operation_timeout: float = DEFAULT_OPERATION_TIMEOUT
    max_envelope_size: int = DEFAULT_MAX_ENVELOPE
    body: Element | None = None


def parse_xml(data: bytes) -> Element:
    """Parse untrusted XML: no DTD, no entities, no external references."""
    try:
        return _safe_fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException, ValueError, UnicodeError) as exc:
        raise invalid_xml() from exc


_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str | None, default: float) -> float:
    """xs:duration (``PT20S``, ``PT20.000S``, ``P0DT0H1M``) in seconds; ``default`` when absent."""
    if not text:
        return default
    match = _DURATION.match(text.strip())
    if match is None or text.strip() in ("P", "PT"):
        raise WSManFault(0x80338081, "The WS-Management service cannot process the request because the timeout "
                         "header in the request is invalid.", "w:InvalidTimeout", sender=True)
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)


def parse_request(data: bytes) -> WSManRequest:
    """A request envelope -> WSManRequest; WSManFault for anything a WinRM service would reject."""
    root = parse_xml(data)
    if root.tag != f"{{{NS['s']}}}Envelope":
        raise invalid_soap_body()
    header = root.find("s:Header", NS)
    body = root.find("s:Body", NS)
    if header is None or body is None:
        raise header_required()
    action_uri = (header.findtext("wsa:Action", None, NS) or "").strip()
    message_id = (header.findtext("wsa:MessageID", None, NS) or "").strip()
    if not action_uri or not message_id:
        raise header_required()
    if len(message_id) > 256:
        raise invalid_header()
    resource_uri = (header.findtext("wsman:ResourceURI", None, NS) or "").strip()
    selectors = {
        str(sel.get("Name", "")): (sel.text or "").strip()
        for sel in header.findall("wsman:SelectorSet/wsman:Selector", NS)
    }
    options = {
        str(opt.get("Name", "")): (opt.text or "").strip()
        for opt in header.findall("wsman:OptionSet/wsman:Option", NS)
    }
    timeout = parse_duration(header.findtext("wsman:OperationTimeout", None, NS), DEFAULT_OPERATION_TIMEOUT)
    max_env_text = (header.findtext("wsman:MaxEnvelopeSize", None, NS) or "").strip()
    try:
        max_env = int(max_env_text) if max_env_text else DEFAULT_MAX_ENVELOPE
    except ValueError as exc:
        raise invalid_header() from exc
    if max_env < 8192:
        raise WSManFault(0x8033807E, "The WS-Management service cannot process the request because the envelope "
                         "size in the request is too small.", "w:EncodingLimit", sender=True)
    return WSManRequest(
        action_uri=action_uri,
        action=ACTIONS.get(action_uri, ""),
        message_id=message_id,
        resource_uri=resource_uri,
        selectors=selectors,
        options=options,
        operation_timeout=min(max(timeout, 0.0), 3600.0),
        max_envelope_size=max_env,
        body=body,
    )


def message_id_of(data: bytes) -> str:
    """Best-effort MessageID of a request that failed to parse fully (for RelatesTo)."""
    try:
        root = parse_xml(data)
    except WSManFault:
        return ""
    text = root.findtext("s:Header/wsa:MessageID", "", NS) or ""
    return text.strip()[:256]


def x(text: Any) -> str:
    """Escape text for an XML element."""
    return escape(str(text))


def xa(text: Any) -> str:
    """Escape and quote text for an XML attribute."""
    return quoteattr(str(text))


_ENVELOPE_OPEN = (
    '<s:Envelope xml:lang="en-US" xmlns:s="{s}" xmlns:a="{wsa}" xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/'
    'transfer" xmlns:w="{wsman}" xmlns:rsp="{rsp}" xmlns:p="{wsmv}" xmlns:n="{wsen}">'
).format(**NS)


def envelope(action_uri: str, relates_to: str, body_xml: str) -> bytes:
    """A response envelope with the RelatesTo header pypsrp checks."""
    return (
        f"{_ENVELOPE_OPEN}<s:Header><a:Action>{x(action_uri)}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID><a:To>{ANONYMOUS}</a:To>"
        f"<a:RelatesTo>{x(relates_to)}</a:RelatesTo></s:Header><s:Body>{body_xml}</s:Body></s:Envelope>"
    ).encode()


def fault_envelope(fault: WSManFault, relates_to: str, machine: str) -> bytes:
    """The SOAP fault a WinRM service answers with (HTTP 500)."""
    role = "s:Sender" if fault.sender else "s:Receiver"
    body = (
        f"<s:Fault><s:Code><s:Value>{role}</s:Value><s:Subcode><s:Value>{x(fault.subcode)}</s:Value>"
        f'</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{x(fault.reason)} </s:Text></s:Reason>'
        f'<s:Detail><f:WSManFault xmlns:f="{NS["f"]}" Code="{fault.code}" Machine={xa(machine)}>'
        f"<f:Message>{x(fault.reason)} </f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return envelope(FAULT_ACTION, relates_to, body)
