"""psrpcore values <-> the simulator's neutral values (hvsim.powershell.values).

Inward (arguments and pipeline input from the client): PSRP primitives become plain Python or the
sized int markers, SecureStrings are decrypted with the pool's session key into SecureText,
PSCredential becomes Credential, an SBK-tagged script block becomes ScriptBlock and any other
deserialized object becomes a PSObj with its type names. Outward (what handlers return): PSObj
becomes a PSObject with its type names, adapted properties and ToString, PSEnum a real serialized
.NET enum, and the sized int markers the matching CLIXML integer elements.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from typing import Any

import psrpcore.types as pst

from hvsim.powershell.errors import PSError
from hvsim.powershell.values import (
    Byte,
    Credential,
    Int64,
    PSEnum,
    PSObj,
    ScriptBlock,
    SecureText,
    SwitchValue,
    TimeSpan,
    UInt32,
    UInt64,
)

log = logging.getLogger(__name__)

_MAX_DEPTH = 32
_CREDENTIAL = "System.Management.Automation.PSCredential"


def _type_names(obj: pst.PSObject) -> list[str]:
    try:
        return list(obj.PSObject.type_names)
    except AttributeError:
        return []


def _secure(value: Any) -> SecureText:
    try:
        return SecureText(value.decrypt())
    except Exception:  # wrong or missing session key: same as PowerShell failing to deserialize
        raise PSError(
            "Cannot process the SecureString: the session key has not been exchanged.",
            "SecureStringDecryptionFailed", "SecurityError",
            exception_type="System.Security.Cryptography.CryptographicException", bare=True,
            terminating=True,
        ) from None


def to_neutral(value: Any, depth: int = 0) -> Any:
    """A deserialized psrpcore value -> a neutral value."""
    if depth > _MAX_DEPTH:
        return None
    if value is None:
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, pst.PSSecureString):
        return _secure(value)
    if isinstance(value, pst.PSScriptBlock):
        return ScriptBlock(str(value))
    if isinstance(value, pst.PSEnumBase | pst.PSFlagBase):
        names = _type_names(value)
        return PSEnum(names[0] if names else "System.Enum", str(value.name or int(value)), int(value))
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        if isinstance(value, pst.PSInt64):
            return Int64(value)
        if isinstance(value, pst.PSUInt64):
            return UInt64(value)
        if isinstance(value, pst.PSUInt):
            return UInt32(value)
        if isinstance(value, pst.PSByte):
            return Byte(value)
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dt.timedelta):
        return TimeSpan(value.total_seconds())
    if isinstance(value, dt.datetime):
        return dt.datetime.combine(value.date(), value.time(), value.tzinfo)  # a plain datetime
    if isinstance(value, uuid.UUID):
        return uuid.UUID(str(value))
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, dict):
        return {to_neutral(k, depth + 1): to_neutral(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_neutral(v, depth + 1) for v in value]
    if isinstance(value, pst.PSObject):
        names = _type_names(value)
        props = _properties(value, depth)
        if any(n.endswith(_CREDENTIAL) for n in names):
            user = props.get("UserName")
            password = props.get("Password")
            if isinstance(password, str):
                password = SecureText(password)
            if isinstance(password, SecureText):
                return Credential(str(user or ""), password)
        text = value.PSObject.to_string
        return PSObj(type_names=names, props=props, to_string=str(text) if text is not None else None)
    return str(value)


def _properties(obj: pst.PSObject, depth: int) -> dict[str, Any]:
    props: dict[str, Any] = {}
    meta = obj.PSObject
    for prop in list(meta.adapted_properties) + list(meta.extended_properties):
        try:
            raw = prop.get_value(obj)
        except Exception as exc:  # a script property or broken value: skip like a failed getter
            log.debug("property %s of a %s skipped: %s", prop.name, _type_names(obj)[:1], type(exc).__name__)
            continue
        props[prop.name] = to_neutral(raw, depth + 1)
    return props


def argument(name: str | None, value: Any) -> Any:
    """A command argument. A named parameter always comes with a value: a switch (``-Force``) is sent with
    $null, and the engine binds that $null as it is (CommandParameter.ToCommandParameterInternal makes a
    parameter *with* an argument; a switch given $null is present, any other parameter gets $null)."""
    return to_neutral(value)


# ---------------------------------------------------------------------------------------------- outward

_ENUM_CLASSES: dict[tuple[str, str, int], Any] = {}


def _enum_value(value: PSEnum) -> Any:
    key = (value.type_name, value.name, int(value.value))
    cls: Any = _ENUM_CLASSES.get(key)
    if cls is None:
        # A one-member .NET enum type made on the fly: psrpcore serializes it with the TN list
        # "<Type>, System.Enum, System.ValueType, System.Object", ToString = member name, I32 value.
        make_enum: Any = pst.PSEnumBase
        base = make_enum(value.type_name.rsplit(".", 1)[-1] or "Enum", {value.name: int(value.value)})
        cls = pst.PSType([value.type_name], rehydrate=False)(base)
        _ENUM_CLASSES[key] = cls
    return cls(int(value.value))


def _int(value: int) -> Any:
    if isinstance(value, Int64):
        return pst.PSInt64(value)
    if isinstance(value, UInt64):
        return pst.PSUInt64(value)
    if isinstance(value, UInt32):
        return pst.PSUInt(value)
    if isinstance(value, Byte):
        return pst.PSByte(value)
    if -(2**31) <= value < 2**31:
        return pst.PSInt(value)
    if -(2**63) <= value < 2**63:
        return pst.PSInt64(value)
    return pst.PSUInt64(value) if 0 <= value < 2**64 else pst.PSString(str(value))


def to_ps(value: Any, depth: int = 0) -> Any:
    """A neutral value -> something psrpcore serializes as the real .NET type would be."""
    if depth > _MAX_DEPTH:
        return None
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, PSEnum):
        return _enum_value(value)
    if isinstance(value, int):
        return _int(value)
    if isinstance(value, float):
        return pst.PSDouble(value) if math.isfinite(value) else pst.PSString(str(value))
    if isinstance(value, str):
        return pst.PSString(value)
    if isinstance(value, TimeSpan):
        return pst.PSDuration(seconds=value.seconds)
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, uuid.UUID):
        return pst.PSGuid(str(value))
    if isinstance(value, SecureText):
        return pst.PSSecureString(value.reveal())
    if isinstance(value, Credential):
        return pst.PSCredential(UserName=value.username, Password=pst.PSSecureString(value.password.reveal()))
    if isinstance(value, ScriptBlock):
        return pst.PSScriptBlock(value.text)
    if isinstance(value, SwitchValue):
        return True
    if isinstance(value, PSObj):
        return _psobject(value, depth)
    if isinstance(value, dict):
        return pst.PSDict({to_ps(k, depth + 1): to_ps(v, depth + 1) for k, v in value.items()})
    if isinstance(value, list | tuple | set | frozenset):
        return pst.PSList([to_ps(v, depth + 1) for v in value])
    if isinstance(value, bytes):
        return pst.PSByteArray(value)
    return pst.PSString(str(value))


_CUSTOM = "System.Management.Automation.PSCustomObject"


def _display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, PSObj):
        return value.to_string if value.to_string is not None else value.type_name
    if isinstance(value, list | tuple):
        return " ".join(_display(v) for v in value)
    return str(value)


def _psobject(value: PSObj, depth: int) -> pst.PSObject:
    """A .NET object keeps its properties adapted (<Props>); a PSCustomObject (Select-Object output,
    [pscustomobject]@{}) carries note properties (<MS>), as PowerShell serializes them."""
    obj = pst.PSObject()
    names = list(value.type_names) or ["System.Object"]
    obj.PSObject.type_names = names
    custom = _CUSTOM in names
    target = obj.PSObject.extended_properties if custom else obj.PSObject.adapted_properties
    for key, prop in value.props.items():
        target.append(pst.PSNoteProperty(str(key), to_ps(prop, depth + 1)))
    if value.to_string is not None:
        obj.PSObject.to_string = value.to_string
    elif custom:
        obj.PSObject.to_string = "@{" + "; ".join(f"{k}={_display(v)}" for k, v in value.props.items()) + "}"
    else:
        obj.PSObject.to_string = names[0]  # what Object.ToString() gives for a .NET type
    return obj
