"""CLIXML, the serialization of PSRP ([MS-PSRP] 2.2.5), for the WinRM transport: labctl's values and pipelines
to the host's text, the host's objects straight to labctl's plain values.

Why labctl has its own: pypsrp re-serializes every nested element it reads (ET.tostring per element) and
deep-copies every command twice per message it writes; for the few shapes labctl exchanges that was most of a
run's controller CPU. Writing is string building (values are escaped here, never pasted into script text);
reading is one C-accelerated parse and one walk. The forms follow what PowerShell writes and reads: the
element names and type names of [MS-PSRP] 2.2.5, RefId/TNRef reuse, _xHHHH_ escaping of characters XML cannot
carry (and of an ``_x`` that would read as one), SecureStrings as AES-256-CBC of UTF-16-LE with the session
key, PKCS7 padded.
"""

from __future__ import annotations

import base64
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from labctl.secret import Secret, Sensitive
from labctl.transport import wire
from labctl.transport.base import Credential, Pipeline, RemoteError, RemoteObject, ScriptBlock, Switch
from labctl.transport.common import needs_keys

# --- writing --------------------------------------------------------------------------------------------

# Characters CLIXML escapes as _xHHHH_: the C0 and C1 controls (XML cannot carry most of them, and PowerShell
# escapes all of them) and anything outside the BMP (as its UTF-16 surrogate pair).
_NEEDS_ESCAPE = re.compile("[\u0000-\u001f\u007f-\u009f\U00010000-\U0010ffff]")
_UNDERSCORE_X = re.compile("(?i)_(x)")
_XML_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_XML_ATTR = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})


def _escape_char(match: re.Match[str]) -> str:
    data = match.group(0).encode("utf-16-be")
    return "".join(f"_x{data[i:i + 2].hex().upper()}_" for i in range(0, len(data), 2))


def escape(text: str) -> str:
    """A string as CLIXML text: ``_x`` protected, controls and astral characters as _xHHHH_, XML-escaped."""
    if "_" in text:
        text = _UNDERSCORE_X.sub(r"_x005F_\1", text)
    text = _NEEDS_ESCAPE.sub(_escape_char, text)
    return text.translate(_XML_TEXT)


class SerializeError(ValueError):
    """A value labctl cannot send to the host (a type CLIXML has no form for, a SecureString without a key)."""


Encrypt = Callable[[str], str]  # a SecureString's plain text -> its base64 cipher text (the session key)

ARRAY_TYPES = ("System.Object[]", "System.Array", "System.Object")
HASHTABLE_TYPES = ("System.Collections.Hashtable", "System.Object")
CREDENTIAL_TYPES = ("System.Management.Automation.PSCredential", "System.Object")
PSOBJECT_LIST_TYPES = ("System.Collections.Generic.List`1[[System.Management.Automation.PSObject, "
                       "System.Management.Automation, Version=1.0.0.0, Culture=neutral, "
                       "PublicKeyToken=31bf3856ad364e35]]", "System.Object")
_ENUM_BASES = ("System.Enum", "System.ValueType", "System.Object")


class Writer:
    """One message's CLIXML: object RefIds and type-name RefIds numbered in order, type names written once."""

    def __init__(self, encrypt: Encrypt | None = None) -> None:
        self.parts: list[str] = []
        self._obj = 0
        self._tn: dict[tuple[str, ...], int] = {}
        self._encrypt = encrypt

    def text(self) -> str:
        return "".join(self.parts)

    def _name(self, name: str | None) -> str:
        return f' N="{name.translate(_XML_ATTR)}"' if name is not None else ""

    def open_obj(self, name: str | None = None, types: tuple[str, ...] | None = None) -> None:
        self.parts.append(f'<Obj RefId="{self._obj}"{self._name(name)}>')
        self._obj += 1
        if types is not None:
            ref = self._tn.get(types)
            if ref is not None:
                self.parts.append(f'<TNRef RefId="{ref}" />')
            else:
                ref = self._tn[types] = len(self._tn)
                self.parts.append(f'<TN RefId="{ref}">' + "".join(f"<T>{t}</T>" for t in types) + "</TN>")

    def enum(self, name: str, type_name: str, label: str, value: int) -> None:
        self.open_obj(name, (type_name, *_ENUM_BASES))
        self.parts.append(f"<ToString>{label}</ToString><I32>{value}</I32></Obj>")

    def value(self, value: Any, name: str | None = None) -> None:
        """Any value labctl sends as a parameter or pipeline input."""
        n = self._name(name)
        if value is None:
            self.parts.append(f"<Nil{n} />")
        elif isinstance(value, bool):
            self.parts.append(f"<B{n}>{'true' if value else 'false'}</B>")
        elif isinstance(value, Secret):
            self.parts.append(f"<SS{n}>{self._secure(value.reveal())}</SS>")
        elif isinstance(value, Sensitive):
            self.parts.append(f"<S{n}>{escape(str.__str__(value))}</S>")
        elif isinstance(value, str):
            self.parts.append(f"<S{n}>{escape(value)}</S>")
        elif isinstance(value, int):
            tag = "I32" if -(2**31) <= value < 2**31 else "I64"
            self.parts.append(f"<{tag}{n}>{value}</{tag}>")
        elif isinstance(value, float):
            self.parts.append(f"<Db{n}>{value!r}</Db>")
        elif isinstance(value, (bytes, bytearray)):
            self.parts.append(f"<BA{n}>{base64.b64encode(value).decode()}</BA>")
        elif isinstance(value, ScriptBlock):
            self.parts.append(f"<SBK{n}>{escape(value.text)}</SBK>")
        elif isinstance(value, uuid.UUID):
            self.parts.append(f"<G{n}>{value}</G>")
        elif isinstance(value, Credential):
            self.open_obj(name, CREDENTIAL_TYPES)
            self.parts.append(f"<ToString>{CREDENTIAL_TYPES[0]}</ToString><Props>"
                              f'<S N="UserName">{escape(value.username)}</S>'
                              f'<SS N="Password">{self._secure(value.password.reveal())}</SS></Props></Obj>')
        elif isinstance(value, (list, tuple)):
            self.open_obj(name, ARRAY_TYPES)
            self.parts.append("<LST>")
            for item in value:
                self.value(item)
            self.parts.append("</LST></Obj>")
        elif isinstance(value, dict):
            self.open_obj(name, HASHTABLE_TYPES)
            self.parts.append("<DCT>")
            for key, item in value.items():
                self.parts.append("<En>")
                self.value(key, "Key")
                self.value(item, "Value")
                self.parts.append("</En>")
            self.parts.append("</DCT></Obj>")
        else:
            raise SerializeError(f"labctl cannot send a {type(value).__name__} to the host")

    def _secure(self, text: str) -> str:
        if self._encrypt is None:
            raise SerializeError("a SecureString needs the session key: exchange keys first")
        return self._encrypt(text)


def _command(w: Writer, command: str, parameters: dict[str, Any]) -> None:
    w.open_obj()
    w.parts.append(f'<MS><S N="Cmd">{escape(command)}</S><Nil N="IsScript" /><Nil N="UseLocalScope" />')
    for merge in ("MergeMyResult", "MergeToResult", "MergePreviousResults"):
        w.enum(merge, "System.Management.Automation.Runspaces.PipelineResultTypes", "None", 0)
    w.open_obj("Args", PSOBJECT_LIST_TYPES)
    w.parts.append("<LST>")
    for pname, value in parameters.items():
        w.open_obj()
        w.parts.append(f'<MS><S N="N">{escape(pname)}</S>')
        w.value(None if isinstance(value, Switch) else value, "V")
        w.parts.append("</MS></Obj>")
    w.parts.append("</LST></Obj>")
    for merge in ("MergeError", "MergeWarning", "MergeVerbose", "MergeDebug", "MergeInformation"):
        w.enum(merge, "System.Management.Automation.Runspaces.PipelineResultTypes", "None", 0)
    w.parts.append("</MS></Obj>")


def _commands(w: Writer, statement: Sequence[Any], name: str = "Cmds") -> None:
    w.open_obj(name, PSOBJECT_LIST_TYPES)
    w.parts.append("<LST>")
    for inv in statement:
        _command(w, inv.command, inv.parameters)
    w.parts.append("</LST></Obj>")


def _host_info(w: Writer) -> None:
    w.open_obj("HostInfo")
    w.parts.append('<MS><B N="_isHostNull">true</B><B N="_isHostUINull">true</B><B N="_isHostRawUINull">true</B>'
                   '<B N="_useRunspaceHost">true</B></MS></Obj>')


def create_pipeline(pipeline: Pipeline, *, no_input: bool, encrypt: Encrypt | None = None) -> str:
    """CREATE_PIPELINE ([MS-PSRP] 2.2.2.10) for the pipeline's statements, as PowerShell writes it: one
    statement in Cmds; several in ExtraCmds (each its own Cmds) with the first statement in Cmds too."""
    w = Writer(encrypt)
    w.open_obj()
    w.parts.append(f'<MS><B N="NoInput">{"true" if no_input else "false"}</B>')
    w.enum("ApartmentState", "System.Management.Automation.Runspaces.ApartmentState", "UNKNOWN", 2)
    w.enum("RemoteStreamOptions", "System.Management.Automation.Runspaces.RemoteStreamOptions",
           "AddInvocationInfo", 15)
    w.parts.append('<B N="AddToHistory">false</B>')
    _host_info(w)
    w.open_obj("PowerShell")
    w.parts.append('<MS><B N="IsNested">false</B>')
    statements = [s for s in pipeline.statements if s]
    if len(statements) > 1:
        w.open_obj("ExtraCmds", PSOBJECT_LIST_TYPES)
        w.parts.append("<LST>")
        for statement in statements:
            w.open_obj()
            w.parts.append("<MS>")
            _commands(w, statement)
            w.parts.append("</MS></Obj>")
        w.parts.append("</LST></Obj>")
    else:
        w.parts.append('<Nil N="ExtraCmds" />')
    _commands(w, statements[0] if statements else [])
    w.parts.append('<S N="History" /><B N="RedirectShellErrorOutputPipe">false</B></MS></Obj>'
                   '<B N="IsNested">false</B></MS></Obj>')
    return w.text()


def session_capability() -> str:
    """SESSION_CAPABILITY ([MS-PSRP] 2.2.2.1): protocol 2.3, PowerShell 2.0, serialization 1.1.0.1."""
    return ('<Obj RefId="0"><MS><Version N="protocolversion">2.3</Version><Version N="PSVersion">2.0</Version>'
            '<Version N="SerializationVersion">1.1.0.1</Version></MS></Obj>')


def init_runspace_pool() -> str:
    """INIT_RUNSPACEPOOL ([MS-PSRP] 2.2.2.2): one runspace, default thread options, no host."""
    w = Writer()
    w.open_obj()
    w.parts.append('<MS><I32 N="MinRunspaces">1</I32><I32 N="MaxRunspaces">1</I32>')
    w.enum("PSThreadOptions", "System.Management.Automation.Runspaces.PSThreadOptions", "Default", 0)
    w.enum("ApartmentState", "System.Management.Automation.Runspaces.ApartmentState", "UNKNOWN", 2)
    _host_info(w)
    w.parts.append('<Nil N="ApplicationArguments" /></MS></Obj>')
    return w.text()


def public_key(key_b64: str) -> str:
    """PUBLIC_KEY ([MS-PSRP] 2.2.2.3)."""
    return f'<Obj RefId="0"><MS><S N="PublicKey">{key_b64}</S></MS></Obj>'


def pipeline_input(value: Any, encrypt: Encrypt | None = None) -> str:
    """PIPELINE_INPUT ([MS-PSRP] 2.2.2.17): one value."""
    w = Writer(encrypt)
    w.value(value)
    return w.text()


def carries_secrets(pipeline: Pipeline, input: Sequence[Any] | None) -> bool:
    """Whether the pipeline's parameters or input hold a SecureString (the session key must be exchanged)."""
    return any(needs_keys(v) for statement in pipeline.statements for inv in statement
               for v in inv.parameters.values()) or (input is not None and needs_keys(list(input)))


def input_messages(rpid: uuid.UUID, pid: uuid.UUID, input: Sequence[Any], encrypt: Encrypt | None) -> list[bytes]:
    """PIPELINE_INPUT for each value, then END_OF_PIPELINE_INPUT."""
    messages = [wire.pack_message(wire.PIPELINE_INPUT, rpid, pid, pipeline_input(v, encrypt)) for v in input]
    messages.append(wire.pack_message(wire.END_OF_PIPELINE_INPUT, rpid, pid, ""))
    return messages


# --- reading --------------------------------------------------------------------------------------------

_ESCAPED = re.compile("_x([0-9A-Fa-f]{4})_")


def _unescape_pair(match: re.Match[str]) -> str:
    return chr(int(match.group(1), 16))


def unescape(text: str | None) -> str:
    """CLIXML text -> the string (_xHHHH_ decoded; surrogate pairs joined)."""
    if not text:
        return ""
    if "_x" not in text and "_X" not in text:
        return text
    out = _ESCAPED.sub(_unescape_pair, text)
    if any("\ud800" <= c <= "\udfff" for c in out):
        out = out.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return out


_LISTS = ("LST", "IE", "STK", "QUE")
# Types whose objects labctl reads as their ToString (pypsrp read them into classes of its own; none of them
# is a result labctl judges by property).
_AS_TEXT = {"System.Management.Automation.ErrorRecord", "System.Management.Automation.InformationalRecord",
            "System.Management.Automation.WarningRecord", "System.Management.Automation.VerboseRecord",
            "System.Management.Automation.DebugRecord", "System.Management.Automation.InformationRecord",
            "System.Globalization.CultureInfo", "System.ConsoleColor", "System.Management.Automation.CommandOrigin"}


class Reader:
    """One message's objects: RefIds and TN RefIds resolve within the message, as PowerShell numbers them."""

    def __init__(self) -> None:
        self._objs: dict[str, Any] = {}
        self._tns: dict[str, list[str]] = {}

    def value(self, el: ET.Element) -> Any:
        tag = el.tag
        if tag == "Obj":
            return self._obj(el)
        text = el.text
        if tag == "S" or tag == "ToString" or tag == "URI" or tag == "XD" or tag == "SBK":
            return unescape(text)
        if tag in ("I32", "I64", "I16", "U16", "U32", "U64", "By", "SB"):
            return int(text or "0")
        if tag == "B":
            return (text or "").strip().lower() == "true"
        if tag == "Nil":
            return None
        if tag in ("Db", "Sg"):
            return float(text or "0")
        if tag in ("DT", "TS", "D", "Version"):
            return text or ""
        if tag == "G":
            return uuid.UUID(text or "")
        if tag == "BA":
            return base64.b64decode(text or "")
        if tag == "C":
            return chr(int(text or "0"))
        if tag == "Ref":
            return self._objs.get(el.get("RefId", ""))
        if tag == "SS":
            return "<SecureString>"  # never decrypted into a result
        return unescape(text)

    def _obj(self, el: ET.Element, records_as_text: bool = True) -> Any:
        ref = el.get("RefId")
        types: list[str] = []
        props: dict[str, Any] = {}
        extended: dict[str, Any] = {}
        to_string: str | None = None
        content: list[Any] = []
        result: Any = None
        for child in el:
            tag = child.tag
            if tag == "TN":
                types = [t.text or "" for t in child]
                self._tns[child.get("RefId", "")] = types
            elif tag == "TNRef":
                types = self._tns.get(child.get("RefId", ""), [])
            elif tag == "Props":
                for p in child:
                    props[p.get("N", "")] = self.value(p)
            elif tag == "MS":
                for p in child:
                    extended[p.get("N", "")] = self.value(p)
            elif tag == "ToString":
                to_string = unescape(child.text)
            elif tag in _LISTS:
                items: list[Any] = []
                if ref is not None:
                    self._objs[ref] = items  # a list may hold a Ref to itself
                items.extend(self.value(i) for i in child)
                content.append(items)
            elif tag == "DCT":
                table: dict[str, Any] = {}
                for entry in child:
                    key: Any = None
                    item: Any = None
                    for part in entry:
                        if part.get("N") == "Key":
                            key = self.value(part)
                        elif part.get("N") == "Value":
                            item = self.value(part)
                    table[str(key)] = item
                content.append(table)
            else:
                content.append(self.value(child))
        if "System.Enum" in types:
            result = to_string if to_string is not None else (content[0] if content else None)
        elif records_as_text and types and types[0].removeprefix("Deserialized.") in _AS_TEXT:
            result = to_string or ""
        elif props or extended:
            props.update(extended)
            result = RemoteObject(types, props, to_string)
        elif content:
            result = content[0]
        else:
            result = RemoteObject(types, {}, to_string)
        if ref is not None:
            self._objs[ref] = result
        return result

    def record(self, el: ET.Element) -> dict[str, Any]:
        """A record's properties by name (adapted and extended), for the records PSRP sends (ErrorRecord,
        InformationalRecord, states); a nested ErrorRecord stays an object, not its text."""
        out: dict[str, Any] = {}
        for child in el:
            if child.tag in ("Props", "MS"):
                for p in child:
                    out[p.get("N", "")] = self._obj(p, records_as_text=False) if p.tag == "Obj" else self.value(p)
        return out


def error_of(fields: dict[str, Any]) -> RemoteError:
    """An ErrorRecord's properties -> RemoteError: the text PowerShell shows first (ErrorDetails, then the
    exception's Message), FullyQualifiedErrorId, the category's reason and target."""
    exc = fields.get("Exception")
    exc_message = exc.get("Message") if isinstance(exc, RemoteObject) else None
    message = fields.get("ErrorDetails_Message") or exc_message or fields.get("ErrorCategory_Message") or ""
    if not message and exc is not None:
        message = exc.text if isinstance(exc, RemoteObject) and exc.text else str(exc)
    target = fields.get("ErrorCategory_TargetName")
    return RemoteError(message=str(message), fqid=str(fields.get("FullyQualifiedErrorId") or ""),
                       category=str(fields.get("ErrorCategory_Reason") or ""),
                       target=str(target) if target else None)


@dataclass
class Answer:
    """What one pipeline returned, gathered from its messages (the same on every transport)."""

    output: list[Any] = field(default_factory=list)
    errors: list[RemoteError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    state: int | None = None  # PSInvocationState once the pipeline ended

    def take(self, msg: wire.Message) -> bool:
        """Read one of the pipeline's messages; True when it was the final state."""
        if msg.type == wire.PIPELINE_OUTPUT:
            self.output.append(Reader().value(parse(msg.data)))
        elif msg.type == wire.ERROR_RECORD:
            self.errors.append(error_of(Reader().record(parse(msg.data))))
        elif msg.type == wire.WARNING_RECORD:
            self.warnings.append(str(Reader().record(parse(msg.data)).get("InformationalRecord_Message") or ""))
        elif msg.type == wire.PIPELINE_STATE:
            fields = Reader().record(parse(msg.data))
            state = int(fields.get("PipelineState", -1))
            record = fields.get("ExceptionAsErrorRecord")
            if isinstance(record, RemoteObject):
                self.errors.append(error_of(record.props))
            if state in wire.PIPELINE_DONE:
                self.state = state
                return True
        # Host calls (labctl runs no interactive host: nothing answers them, as pypsrp with host=None) and
        # progress, verbose, debug and information records are not results: nothing keeps them.
        return False


def pool_state(msg: wire.Message) -> tuple[int, str]:
    """RUNSPACEPOOL_STATE: the state and, for a broken or closed pool, the host's reason."""
    fields = Reader().record(parse(msg.data))
    reason = fields.get("ExceptionAsErrorRecord")
    text = error_of(reason.props).message if isinstance(reason, RemoteObject) else ""
    return int(fields.get("RunspaceState", -1)), text


def session_key(msg: wire.Message) -> str:
    """ENCRYPTED_SESSION_KEY: the host's session key, encrypted to labctl's public key (base64)."""
    return str(Reader().record(parse(msg.data)).get("EncryptedSessionKey") or "")


def parse(data: bytes) -> ET.Element:
    """A message's CLIXML (a UTF-8 BOM allowed)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    # The host's text: without a DOCTYPE there are no entity declarations, so nothing to expand (billion laughs)
    # and no external entity to fetch; PSRP never carries one. Checked here so the C parser can read the rest:
    # defusedxml's parser handles every element in Python, a third of a pipeline's reading time.
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise SerializeError("the host's answer carries a DOCTYPE, which PSRP never does; refused")
    return ET.fromstring(data)  # noqa: S314 (no DTD, checked above)
