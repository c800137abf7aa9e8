"""PowerShell's out-of-process (OOP) packet codec: one XML element per line, PSRP fragments in base64.

The forms are those of PowerShell's ``OutOfProcessUtils`` (PowerShell/PowerShell,
src/System.Management.Automation/engine/remoting/fanin/OutOfProcTransportManager.cs):

- ``CreateDataPacket``: ``<Data Stream='Default' PSGuid='GUID'>BASE64</Data>`` (Stream is a
  ``DataPriorityType``: ``Default`` or ``PromptResponse``);
- ``CreatePSGuidPacket``: ``<TAG PSGuid='GUID' />`` for DataAck, Command, CommandAck, Signal,
  SignalAck, Close and CloseAck;
- GUIDs as .NET ``Guid.ToString()`` writes them (lower case, "D" form); the runspace pool is
  ``Guid.Empty`` (00000000-0000-0000-0000-000000000000), a pipeline its PowerShell instance id.

``ProcessElement`` there reads each line with an XmlReader (fragment conformance) and requires exactly
two attributes on Data and exactly one on every other element; the texts of its errors are those of
RemotingErrorIdStrings.resx (IPCWrongAttributeCountForDataElement, IPCWrongAttributeCountForElement,
IPCInsufficientDataforElement, IPCOnlyTextExpectedInDataElement, IPCUnknownElementReceived, IPCUnknownNodeType).
This module does no I/O.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

NULL_GUID = uuid.UUID(int=0)

DATA = "Data"
DATA_ACK = "DataAck"
COMMAND = "Command"
COMMAND_ACK = "CommandAck"
SIGNAL = "Signal"
SIGNAL_ACK = "SignalAck"
CLOSE = "Close"
CLOSE_ACK = "CloseAck"
TAGS = (DATA, DATA_ACK, COMMAND, COMMAND_ACK, SIGNAL, SIGNAL_ACK, CLOSE, CLOSE_ACK)
STREAMS = ("Default", "PromptResponse")  # System.Management.Automation.Remoting.DataPriorityType

MAX_LINE = 1 << 20  # a Data line carries one fragment (32 KiB by default); more is not PowerShell talking


class OopProtocolError(Exception):
    """A line PowerShell's OOP server would refuse (PSRemotingTransportException); ``str()`` is its message."""


@dataclass(frozen=True)
class Packet:
    """One OOP packet: its element name, PSGuid and (Data only) stream and decoded payload."""

    tag: str
    guid: uuid.UUID
    data: bytes = b""
    stream: str = "Default"

    @property
    def is_pool(self) -> bool:
        return self.guid == NULL_GUID


def _guid(text: str | None) -> uuid.UUID:
    try:
        return uuid.UUID(str(text))
    except ValueError:
        # .NET's Guid(string) FormatException text (unconfirmed for every runtime version).
        raise OopProtocolError("Unrecognized Guid format.") from None


def parse_packet(line: bytes | str) -> Packet:
    """Parse one line (with or without its newline) as PowerShell's ProcessElement would; OopProtocolError if not."""
    if isinstance(line, bytes):
        if len(line) > MAX_LINE:
            raise OopProtocolError(f"Not enough data is available to process the {DATA} element.")
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise OopProtocolError("Data at the root level is invalid. Line 1, position 1.") from None
    else:
        text = line
    text = text.strip()
    if not text.startswith("<"):
        # XmlReader meets a Text node first: ProcessData throws PSRemotingTransportException(data).
        raise OopProtocolError(text or "An unknown element \"\" was received. This can happen if the remote "
                               "process closed or ended abnormally.")
    try:
        element: Element = ElementTree.fromstring(text)
    except (ParseError, DefusedXmlException) as exc:
        raise OopProtocolError(f"The XML is not well formed: {exc}.") from None  # XmlException (text unconfirmed)
    tag = element.tag
    if tag not in TAGS:
        raise OopProtocolError(f'An unknown element "{tag}" was received. This can happen if the remote process '
                               "closed or ended abnormally.")
    if tag == DATA:
        if len(element.attrib) != 2 or "Stream" not in element.attrib or "PSGuid" not in element.attrib:
            raise OopProtocolError('Expected only two attributes with the names "Stream" and "PSGuid" in the '
                                   "Data element.")
        guid = _guid(element.get("PSGuid"))
        if len(element):
            raise OopProtocolError('Node type "Element" is unknown in the Data element. Only the "Text" node type '
                                   "is expected in the Data element.")
        payload = (element.text or "").strip()
        if not payload:
            raise OopProtocolError("Not enough data is available to process the Data element.")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            # .NET Convert.FromBase64String's FormatException text.
            raise OopProtocolError("The input is not a valid Base-64 string as it is not a Base 64 string, "
                                   "contains a non-base 64 character, more than two padding characters, or an "
                                   "illegal character among the padding characters.") from None
        return Packet(tag, guid, data, str(element.get("Stream")))
    if len(element.attrib) != 1 or "PSGuid" not in element.attrib:
        raise OopProtocolError(f'Expected only one attribute with the name "PSGuid" in the {tag} element.')
    return Packet(tag, _guid(element.get("PSGuid")))


def data_packet(data: bytes, guid: uuid.UUID = NULL_GUID, stream: str = "Default") -> bytes:
    """``<Data Stream='Default' PSGuid='...'>BASE64</Data>`` and its newline."""
    if stream not in STREAMS:
        raise ValueError(f"unknown OOP stream {stream!r}")
    return f"<Data Stream='{stream}' PSGuid='{guid}'>{base64.b64encode(data).decode('ascii')}</Data>\n".encode()


def guid_packet(tag: str, guid: uuid.UUID = NULL_GUID) -> bytes:
    """``<TAG PSGuid='...' />`` and its newline (every packet but Data)."""
    if tag not in TAGS or tag == DATA:
        raise ValueError(f"not a PSGuid-only OOP packet: {tag!r}")
    return f"<{tag} PSGuid='{guid}' />\n".encode()


def data_ack(guid: uuid.UUID = NULL_GUID) -> bytes:
    return guid_packet(DATA_ACK, guid)


def command_ack(guid: uuid.UUID) -> bytes:
    return guid_packet(COMMAND_ACK, guid)


def signal_ack(guid: uuid.UUID) -> bytes:
    return guid_packet(SIGNAL_ACK, guid)


def close_ack(guid: uuid.UUID = NULL_GUID) -> bytes:
    return guid_packet(CLOSE_ACK, guid)
