"""PowerShell parameter binding against a catalog CmdletSpec, as Windows PowerShell 5.1 does it.

The order follows the engine's CmdletParameterBinderController: named arguments first (exact name
or alias, else an unambiguous prefix), then positional arguments by position among the parameter
sets still possible, then (per pipeline object) ValueFromPipeline and ValueFromPipelineByPropertyName,
then parameter set resolution and the mandatory check. Every failure is a PSError with the engine's
text and error id; the runtime suffixes the id with the cmdlet's .NET type.

Conversions follow LanguagePrimitives where a client can plausibly hit them: numbers from strings
(``"4"``, ``"0x10"``, ``"1GB"``), enums by name or value, switches and booleans only from booleans
and numbers, scalars wrapped into arrays, objects only of their real .NET type.

One argument binds as ParameterBinderBase.BindParameter does it: argument transformation first (the
[Credential()] prompt; for functions and CDXML cmdlets, whose type constraint is an
ArgumentTypeConverterAttribute, the whole type conversion), then type coercion (a compiled cmdlet's),
then the validation attributes the catalog records (``validate``: NotNull, NotNullOrEmpty, Range, and
ValidateSet as ``set:`` types), then the mandatory parameter's null/empty check, then the property
setter (a compiled cmdlet's value-type property refuses $null). A named argument sent with a $null value
binds $null (CommandParameter.ToCommandParameterInternal); only a parameter written without any
argument (``PRESENT``, from a command line) is MissingArgument.
"""

from __future__ import annotations

import datetime as _dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from hvsim.powershell.catalog import CmdletSpec, ParamSpec
from hvsim.powershell.cmdlet import BoundCall
from hvsim.powershell.errors import PBE, PSError, parameter_not_found
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

ALL_SETS = "__AllParameterSets"
PBVE = "System.Management.Automation.ParameterBindingValidationException"
PBATE = "System.Management.Automation.ParameterBindingArgumentTransformationException"

# catalog type name -> (.NET name, kind)
_SIMPLE: dict[str, tuple[str, str]] = {
    "string": ("System.String", "string"),
    "char": ("System.Char", "string"),
    "uri": ("System.Uri", "string"),
    "version": ("System.Version", "version"),
    "int16": ("System.Int16", "int"),
    "uint16": ("System.UInt16", "int"),
    "int32": ("System.Int32", "int"),
    "uint32": ("System.UInt32", "int"),
    "int64": ("System.Int64", "int"),
    "uint64": ("System.UInt64", "int"),
    "byte": ("System.Byte", "int"),
    "double": ("System.Double", "double"),
    "single": ("System.Single", "double"),
    "bool": ("System.Boolean", "bool"),
    "switch": ("System.Management.Automation.SwitchParameter", "switch"),
    "guid": ("System.Guid", "guid"),
    "datetime": ("System.DateTime", "datetime"),
    "timespan": ("System.TimeSpan", "timespan"),
    "hashtable": ("System.Collections.Hashtable", "hashtable"),
    "object": ("System.Object", "any"),
    "psobject": ("System.Management.Automation.PSObject", "any"),
    "scriptblock": ("System.Management.Automation.ScriptBlock", "scriptblock"),
    "pscredential": ("System.Management.Automation.PSCredential", "credential"),
    "securestring": ("System.Security.SecureString", "securestring"),
}

# Integer ranges and the .NET overflow texts ("an Int32", "a UInt64", "an unsigned byte").
_INT_RANGES: dict[str, tuple[int, int, str]] = {
    "System.Int16": (-(2**15), 2**15 - 1, "an Int16"),
    "System.UInt16": (0, 2**16 - 1, "a UInt16"),
    "System.Int32": (-(2**31), 2**31 - 1, "an Int32"),
    "System.UInt32": (0, 2**32 - 1, "a UInt32"),
    "System.Int64": (-(2**63), 2**63 - 1, "an Int64"),
    "System.UInt64": (0, 2**64 - 1, "a UInt64"),
    "System.Byte": (0, 255, "an unsigned byte"),
}
_INT_WRAP: dict[str, type[int]] = {
    "System.Int64": Int64, "System.UInt64": UInt64, "System.UInt32": UInt32, "System.Byte": Byte,
}
_MULTIPLIERS = {"": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4, "pb": 1024**5}
_NUMBER_RE = re.compile(
    r"^\s*(?P<sign>[+-]?)(?:0x(?P<hex>[0-9a-f]+)|(?P<num>(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?))"
    r"(?P<mult>kb|mb|gb|tb|pb)?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class PType:
    """A parsed catalog type."""

    raw: str
    kind: str  # string int double bool switch guid ... enum object any
    net: str  # element .NET type name
    is_array: bool = False
    enum: tuple[tuple[str, int], ...] = ()
    valid_set: tuple[str, ...] = ()
    flags: bool = False
    nullable: bool = False  # System.Nullable`1 of a value type ("bool?"): $null binds

    @property
    def display(self) -> str:
        """The .NET name as messages show it (``System.String[]``)."""
        return self.net + ("[]" if self.is_array else "")


@lru_cache(maxsize=512)
def parse_type(raw: str) -> PType:
    """Parse a catalog type string (see hvsim.powershell.catalog)."""
    text = raw.strip()
    if text.endswith("?"):
        inner = parse_type(text[:-1])
        return PType(raw, inner.kind, inner.net, inner.is_array, inner.enum, inner.valid_set, inner.flags, True)
    if text.startswith(("enum:", "flags:")):
        body = text.partition(":")[2]
        name, _, members = body.partition("=")
        is_array = name.endswith("[]")
        name = name.removesuffix("[]")
        pairs: list[tuple[str, int]] = []
        for i, member in enumerate(m for m in members.split("|") if m):
            label, _, value = member.partition(":")
            pairs.append((label.strip(), int(value) if value else i))
        return PType(raw, "enum", name, is_array, enum=tuple(pairs), flags=text.startswith("flags:"))
    if text.startswith("set:"):
        body = text[4:]
        base, _, members = body.partition("=")
        inner = parse_type(base)
        return PType(raw, inner.kind, inner.net, inner.is_array, inner.enum,
                     tuple(m for m in members.split("|") if m))
    is_array = text.endswith("[]")
    base = text.removesuffix("[]")
    simple = _SIMPLE.get(base.lower())
    if simple:
        return PType(raw, simple[1], simple[0], is_array)
    return PType(raw, "object", base, is_array)


# ---------------------------------------------------------------------------------------------
# errors


def _pbe(message: str, error_id: str, category: str = "InvalidArgument", exc: str = PBE,
         target: Any = None) -> PSError:
    return PSError(message, error_id, category, target=target, exception_type=exc, terminating=True)


def ambiguous_parameter(name: str, matches: Sequence[str]) -> PSError:
    """Parameter cannot be processed because the parameter name 'X' is ambiguous."""
    listed = " ".join(f"-{m}" for m in matches)
    return _pbe(f"Parameter cannot be processed because the parameter name '{name}' is ambiguous. "
                f"Possible matches include: {listed}.", "AmbiguousParameter")


def missing_argument(p: ParamSpec) -> PSError:
    return _pbe(f"Missing an argument for parameter '{p.name}'. Specify a parameter of type "
                f"'{parse_type(p.type).display}' and try again.", "MissingArgument")


def parameter_already_bound(name: str) -> PSError:
    return _pbe(f"Cannot bind parameter because parameter '{name}' is specified more than once. "
                "To provide multiple values to parameters that can accept multiple values, use the "
                'array syntax. For example, "-parameter value1,value2,value3".', "ParameterAlreadyBound")


def positional_not_found(value: Any) -> PSError:
    return _pbe(f"A positional parameter cannot be found that accepts argument '{display(value)}'.",
                "PositionalParameterNotFound")


def ambiguous_parameter_set() -> PSError:
    # Windows PowerShell 5.1 text; PowerShell 7 appends "One or more parameters issued ...".
    return _pbe("Parameter set cannot be resolved using the specified named parameters.",
                "AmbiguousParameterSet")


def missing_mandatory(names: Sequence[str]) -> PSError:
    return _pbe("Cannot process command because of one or more missing mandatory parameters: "
                f"{' '.join(names)}.", "MissingMandatoryParameter")


def input_not_bound(obj: Any) -> PSError:
    return _pbe("The input object cannot be bound to any parameters for the command either because "
                "the command does not take pipeline input or the input and its properties do not "
                "match any of the parameters that take pipeline input.", "InputObjectNotBound",
                target=obj)


def input_missing_mandatory(names: Sequence[str], obj: Any) -> PSError:
    return _pbe("The input object cannot be bound because it did not contain the information "
                f"required to bind all mandatory parameters: {' '.join(names)}",
                "InputObjectMissingMandatory", target=obj)


class _CastError(Exception):
    """A LanguagePrimitives conversion failure: the inner PSInvalidCastException text."""

    def __init__(self, message: str, *, plain: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.plain = plain  # CannotConvertArgument (no "Cannot bind parameter" prefix)


# ---------------------------------------------------------------------------------------------
# value display and .NET type of an incoming value


def display(value: Any) -> str:
    """How PowerShell renders a value inside an error message (its ToString)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, PSObj):
        if value.to_string is not None:
            return value.to_string
        if "System.Management.Automation.PSCustomObject" in value.type_names:
            return "@{" + "; ".join(f"{k}={display(v)}" for k, v in value.props.items()) + "}"
        return value.type_name
    if isinstance(value, list | tuple):
        return "System.Object[]"
    if isinstance(value, dict):
        return "System.Collections.Hashtable"
    if isinstance(value, ScriptBlock):
        return value.text
    if isinstance(value, SecureText):
        return "System.Security.SecureString"
    if isinstance(value, Credential):
        return "System.Management.Automation.PSCredential"
    if isinstance(value, TimeSpan):
        secs = int(value.seconds)
        return f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
    return str(value)


def net_type(value: Any) -> str:
    """The .NET type name a value arrived as."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "System.Boolean"
    if isinstance(value, UInt64):
        return "System.UInt64"
    if isinstance(value, UInt32):
        return "System.UInt32"
    if isinstance(value, Byte):
        return "System.Byte"
    if isinstance(value, Int64):
        return "System.Int64"
    if isinstance(value, int):
        return "System.Int32" if -(2**31) <= value < 2**31 else "System.Int64"
    if isinstance(value, float):
        return "System.Double"
    if isinstance(value, str):
        return "System.String"
    if isinstance(value, list | tuple):
        return "System.Object[]"
    if isinstance(value, dict):
        return "System.Collections.Hashtable"
    if isinstance(value, PSObj):
        return value.type_name
    if isinstance(value, PSEnum):
        return value.type_name
    if isinstance(value, ScriptBlock):
        return "System.Management.Automation.ScriptBlock"
    if isinstance(value, Credential):
        return "System.Management.Automation.PSCredential"
    if isinstance(value, SecureText):
        return "System.Security.SecureString"
    if isinstance(value, uuid.UUID):
        return "System.Guid"
    if isinstance(value, _dt.datetime):
        return "System.DateTime"
    if isinstance(value, TimeSpan):
        return "System.TimeSpan"
    if isinstance(value, SwitchValue):
        return "System.Management.Automation.SwitchParameter"
    return "System.Object"


# ---------------------------------------------------------------------------------------------
# conversion (LanguagePrimitives.ConvertTo, the subset a remoting client can reach)


def _cannot_convert_value(value: Any, net: str, error: str) -> _CastError:
    return _CastError(f'Cannot convert value "{display(value)}" to type "{net}". Error: "{error}"')


def _cannot_convert_object(value: Any, net: str) -> _CastError:
    return _CastError(f'Cannot convert the "{display(value)}" value of type "{net_type(value)}" '
                      f'to type "{net}".')


def _to_int(value: Any, net: str) -> int:
    lo, hi, article = _INT_RANGES[net]
    number: float | int
    if isinstance(value, bool):
        number = int(value)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float):
        number = round(value)  # .NET Convert rounds half to even, as Python's round does
    elif isinstance(value, PSEnum):
        number = value.value
    elif isinstance(value, str):
        m = _NUMBER_RE.match(value)
        if not m:
            raise _cannot_convert_value(value, net, "Input string was not in a correct format.")
        if m.group("hex") is not None:
            number = int(m.group("hex"), 16)
        else:
            num = m.group("num")
            as_float = float(num)
            number = int(num) if num.isdigit() else round(as_float)
        number *= _MULTIPLIERS[(m.group("mult") or "").lower()]
        if m.group("sign") == "-":
            number = -number
    elif isinstance(value, PSObj):
        raise _cannot_convert_object(value, net)
    else:
        raise _cannot_convert_object(value, net)
    if not lo <= number <= hi:
        raise _cannot_convert_value(value, net, f"Value was either too large or too small for {article}.")
    wrap = _INT_WRAP.get(net)
    return wrap(number) if wrap else int(number)


def _to_string(value: Any, net: str) -> str:
    # Every object converts to a string (its ToString); collections were refused before.
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return display(value)


def _enum_names(pt: PType) -> list[str]:
    # Enum.GetNames orders the names by value (stable for equal values), as every enum message lists them.
    return [n for n, _ in sorted(pt.enum, key=lambda m: m[1])]


def _enum_value_error(value: Any, pt: PType) -> _CastError:
    # InvalidCastExceptionEnumerationNoValue; EnumValues joins with the culture's ListSeparator
    # ("," in en-US: 'The possible enumeration values are "OK,OKCancel,YesNo".').
    return _CastError(
        f'Cannot convert value "{display(value)}" to type "{pt.net}" due to enumeration values that are not '
        "valid. Specify one of the following enumeration values and try again. The possible enumeration "
        f'values are "{",".join(_enum_names(pt))}".')


def _enum_from_number(number: int, pt: PType, shown: Any) -> PSEnum:
    """Enum.ToObject, then LanguagePrimitives' ThrowForUndefinedEnum."""
    for n, v in sorted(pt.enum, key=lambda m: m[1]):
        if v == number:
            return PSEnum(pt.net, n, v)
    if pt.flags and number > 0:
        all_bits = 0
        for _, v in pt.enum:
            all_bits |= v
        if number | all_bits == all_bits:
            # A [Flags] value made of defined bits; ToString names them in value order.
            parts = [n for n, v in sorted(pt.enum, key=lambda m: m[1]) if v and number & v == v]
            return PSEnum(pt.net, ", ".join(parts), number)
    raise _enum_value_error(shown, pt)


def _enum_parse(text: str, pt: PType, ignore_case: bool) -> int | None:
    """.NET Framework's Enum.Parse: an integer, or names joined by commas (ORed, [Flags] or not)."""
    s = text.strip()
    if not s:
        return None
    if s[0].isdigit() or s[0] in "+-":
        return int(s) if re.fullmatch(r"[+-]?\d+", s) else None
    total = 0
    for part in s.split(","):
        part = part.strip()
        match = [v for n, v in pt.enum if (n.lower() == part.lower() if ignore_case else n == part)]
        if not match:
            return None
        total |= match[0]
    return total


def _enum_disambiguate(text: str, pt: PType) -> str:
    """EnumMinimumDisambiguation.EnumDisambiguate: a unique case-insensitive prefix of one name."""
    names = _enum_names(pt)
    matches = [n for n in names if n.lower().startswith(text.lower())]
    if not matches:
        raise _cannot_convert_value(
            text, pt.net,
            f"Unable to match the identifier name {text} to a valid enumerator name. Specify one of the "
            f"following enumerator names and try again:\n{', '.join(names)}")
    if len(matches) == 1:
        return matches[0]
    exact = [n for n in matches if n.lower() == text.lower()]
    if exact:
        return exact[0]
    # EnumExpressionEvaluatorStrings.MultipleEnumNameMatch as Windows PowerShell 5.1's code base (the
    # resources moved to PowerShell/PowerShell in 2016) words it; PowerShell 3.0 read "...cannot be
    # processed due to the inability to differentiate between the following enumerator names: Black,
    # Blue. Try a more specific identifier name." (PowerShell Magazine, 2013-02-05).
    raise _cannot_convert_value(
        text, pt.net,
        f"The identifier name {text} cannot be processed because it is either too similar or identical to "
        f"the following enumerator names: {', '.join(matches)}. Use a more specific identifier name.")


def _to_enum(value: Any, pt: PType) -> PSEnum:
    """LanguagePrimitives: an integer by Enum.ToObject; a string by Enum.Parse (case-sensitive, then
    insensitive: numbers and comma lists included), then by a unique prefix; undefined values refused."""
    if isinstance(value, PSEnum) and value.type_name == pt.net:
        return value
    if isinstance(value, PSEnum):
        value = value.name
    if isinstance(value, bool):
        raise _cannot_convert_object(value, pt.net)
    if isinstance(value, int):
        return _enum_from_number(int(value), pt, value)
    if isinstance(value, str):
        number = _enum_parse(value, pt, False)
        if number is None:
            number = _enum_parse(value, pt, True)
        if number is None:
            name = _enum_disambiguate(value, pt)
            number = next(v for n, v in pt.enum if n == name)
        return _enum_from_number(number, pt, value)
    raise _cannot_convert_object(value, pt.net)


_GUID_INVALID_LENGTH = "Guid should contain 32 digits with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)."


def _to_guid(value: Any, pt: PType) -> uuid.UUID:
    """System.Guid.Parse as .NET Framework words its failures (PowerShell 5.1 runs on it)."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        raise _cannot_convert_object(value, pt.net)
    text = value.strip()
    if not text:
        reason = "Unrecognized Guid format."  # Format_GuidUnrecognized (FuseCP#231: Get-VM -Id "")
    elif "-" in text:
        body = text[1:-1] if text[:1] + text[-1:] in ("{}", "()") else text
        if len(body) != 36:
            reason = _GUID_INVALID_LENGTH
        elif any(body[i] != "-" for i in (8, 13, 18, 23)):
            reason = "Dashes are in the wrong position for GUID parsing."
        elif not re.fullmatch(r"[0-9a-fA-F]{32}", body.replace("-", "")):
            reason = "Guid string should only contain hexadecimal characters."
        else:
            return uuid.UUID(body)
    elif any(c in text for c in "{}()"):
        reason = "Unrecognized Guid format."  # the {0x...,...} form is not modelled
    elif len(text) != 32:
        reason = _GUID_INVALID_LENGTH
    elif not re.fullmatch(r"[0-9a-fA-F]{32}", text):
        reason = "Guid string should only contain hexadecimal characters."
    else:
        return uuid.UUID(text)
    raise _cannot_convert_value(value, pt.net, reason)


def _to_bool(value: Any, pt: PType, param: str, function: bool = False) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, SwitchValue):
        return True
    if isinstance(value, PSEnum):
        return bool(value.value)
    if isinstance(value, int | float):
        return bool(value)
    if function:
        # ArgumentTypeConverterAttribute.CheckBoolValue: the type name where the value would be.
        raise _CastError(f'Cannot convert value "{net_type(value)}" to type "{pt.net}". Boolean parameters '
                         "accept only Boolean values and numbers, such as $True, $False, 1 or 0.")
    # ParameterBinderBase refuses anything but booleans and numbers for [bool] and [switch].
    raise _CastError(
        f"Cannot convert '{net_type(value)}' to the type '{pt.net}' required by parameter '{param}'. "
        "Boolean parameters accept only Boolean values and numbers, such as $True, $False, 1 or 0.",
        plain=True)


# Kinds whose values are taken only as they arrive (no conversion reaches them from another type).
_TAKEN_AS_IS: dict[str, type] = {"hashtable": dict, "scriptblock": ScriptBlock, "securestring": SecureText,
                                 "credential": Credential}


def _convert_scalar(value: Any, pt: PType, param: str, function: bool = False) -> Any:
    kind = pt.kind
    if kind == "any":
        return value
    if isinstance(value, list | tuple):
        if function and kind == "string":
            # ArgumentTypeConverterAttribute refuses any array for a [string] of a script cmdlet.
            raise _CastError("Cannot convert value to type System.String.")
        # A one-element collection is unwrapped; longer ones cannot become a scalar.
        if len(value) == 1:
            return _convert_scalar(value[0], pt, param, function)
        if function:
            raise _cannot_convert_object(value, pt.net)  # LanguagePrimitives' own refusal
        raise _CastError(f"Cannot convert '{net_type(value)}' to the type '{pt.net}' required by "
                         f"parameter '{param}'. Specified method is not supported.", plain=True)
    if value is None:
        # An element of a collection (a whole $null argument is _null_argument's).
        if kind in ("int", "double"):
            return 0
        if kind in ("string", "version"):
            return ""
        if kind in ("bool", "switch"):
            return False
        return None
    if kind == "string":
        return _to_string(value, pt.net)
    if kind == "version":
        text = _to_string(value, pt.net)
        if not re.fullmatch(r"\d+(\.\d+){1,3}", text.strip()):
            raise _cannot_convert_value(value, pt.net, "Version string portion was too short or too long.")
        return text.strip()
    if kind == "int":
        return _to_int(value, pt.net)
    if kind == "double":
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise _cannot_convert_value(value, pt.net, "Input string was not in a correct format.")
        raise _cannot_convert_object(value, pt.net)
    if kind in ("bool", "switch"):
        return _to_bool(value, pt, param, function)
    if kind == "enum":
        return _to_enum(value, pt)
    if kind == "guid":
        return _to_guid(value, pt)
    if kind == "datetime":
        if isinstance(value, _dt.datetime):
            return value
        if isinstance(value, str):
            try:
                return _dt.datetime.fromisoformat(value.strip())
            except ValueError:
                raise _cannot_convert_value(value, pt.net, "String was not recognized as a valid DateTime.")
        raise _cannot_convert_object(value, pt.net)
    if kind == "timespan":
        if isinstance(value, TimeSpan):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return TimeSpan(value / 10_000_000)  # an integer is ticks
        if isinstance(value, str):
            m = re.fullmatch(r"\s*(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2}(?:\.\d+)?))?\s*", value)
            if m:
                days, hours, minutes, seconds = m.groups()
                return TimeSpan(int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60
                                + float(seconds or 0))
            raise _cannot_convert_value(value, pt.net, "String was not recognized as a valid TimeSpan.")
        raise _cannot_convert_object(value, pt.net)
    exact = _TAKEN_AS_IS.get(kind)
    if exact is not None:
        if isinstance(value, exact):
            return value
        raise _cannot_convert_object(value, pt.net)
    # An object type: only an object whose (live, not deserialized) type names include it.
    if isinstance(value, PSObj) and pt.net in value.type_names:
        return value
    raise _cannot_convert_object(value, pt.net)


class _TransformError(Exception):
    """An argument transformation attribute failed (ParameterArgumentTransformationError)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _credential_prompt(param: str) -> _TransformError:
    # CredentialAttribute turns a user name (or $null, for a mandatory or non-null parameter) into a
    # Get-Credential prompt; the remoting host of a pypsrp client cannot prompt, so the transformation
    # fails (seen in the wild over WinRM and in ForEach-Object -Parallel runspaces: PowerShell#16365).
    return _TransformError(
        f"Cannot process argument transformation on parameter '{param}'. A command that prompts "
        "the user failed because the host program or the command type does not support user "
        "interaction. The host was attempting to request confirmation with the following "
        "message: Enter your credentials.")


_VALUE_KINDS = ("int", "double", "enum", "guid", "datetime", "timespan")


def _null_argument(p: ParamSpec, pt: PType, function: bool) -> Any:
    """What a $null argument becomes before validation (a switch's is handled by the caller)."""
    if not function:
        if pt.kind == "bool" and not pt.is_array and not pt.nullable:
            # HandleNullParameterForSpecialTypes: a [bool] (not Nullable) refuses $null at once.
            raise _pbe(f"Cannot bind argument to parameter '{p.name}' because it is null.",
                       "ParameterArgumentValidationErrorNullNotAllowed")
        return None
    # A function's ArgumentTypeConverterAttribute: LanguagePrimitives.ConvertTo($null, T).
    if pt.is_array or pt.nullable:
        return None
    if pt.kind == "bool":
        raise _CastError(f'Cannot convert value "" to type "{pt.net}". Boolean parameters accept only Boolean '
                         "values and numbers, such as $True, $False, 1 or 0.")
    if pt.kind == "enum":
        raise _CastError(f'Cannot convert null to type "{pt.net}" due to enumeration values that are not valid. '
                         "Specify one of the following enumeration values and try again. The possible "
                         f'enumeration values are "{",".join(_enum_names(pt))}".')
    if pt.kind == "int":
        return _to_int(0, pt.net)
    if pt.kind == "double":
        return 0.0
    if pt.kind == "string":
        return ""  # [string]$null is the empty string in a script
    return None


def is_function(spec: CmdletSpec) -> bool:
    """A function (script module or CDXML cmdlet): its FullyQualifiedErrorId suffix is its own name."""
    return bool(spec.type) and spec.type == spec.name


def convert(value: Any, p: ParamSpec, function: bool = False) -> Any:
    """Convert ``value`` to parameter ``p``'s type; raise the binder's PSError on failure.

    ``function``: the command is a function or CDXML cmdlet, whose conversion is an argument
    transformation (one LanguagePrimitives.ConvertTo of the whole argument)."""
    pt = parse_type(p.type)
    try:
        if pt.kind == "credential" and (isinstance(value, str) or (value is None and _transforms_null(p))):
            raise _credential_prompt(p.name)
        if value is None:
            return _null_argument(p, pt, function)
        if pt.is_array:
            items = list(value) if isinstance(value, list | tuple) else [value]
            if function:
                try:
                    return [_convert_scalar(v, pt, p.name, True) for v in items]
                except _CastError as exc:
                    # LanguagePrimitives' array conversion wraps the element's failure.
                    raise _cannot_convert_value(value, pt.display, exc.message) from None
            return [_convert_scalar(v, pt, p.name) for v in items]
        return _convert_scalar(value, pt, p.name, function)
    except _CastError as exc:
        if function:
            raise _pbe(f"Cannot process argument transformation on parameter '{p.name}'. {exc.message}",
                       "ParameterArgumentTransformationError", "InvalidData", PBATE) from None
        if exc.plain:
            raise _pbe(exc.message, "CannotConvertArgument") from None
        raise _pbe(f"Cannot bind parameter '{p.name}'. {exc.message}", "CannotConvertArgumentNoMessage") from None
    except _TransformError as exc:
        raise _pbe(exc.message, "ParameterArgumentTransformationError", "InvalidData", PBATE) from None


def _transforms_null(p: ParamSpec) -> bool:
    # ParameterBinderBase runs a transformation attribute on $null only for a parameter that is mandatory in
    # some set or cannot be null.
    return _is_mandatory_anywhere(p) or any(v in ("NotNull", "NotNullOrEmpty") for v in p.validate)


# ---------------------------------------------------------------------------------------------
# validation attributes (Metadata.resx texts) and the mandatory null/empty check

_NOT_NULL = "The argument is null. Provide a valid value for the argument, and then try running the command again."
_NOT_NULL_COLLECTION = ("The argument has a null value, or an element of the argument collection contains a null "
                        "value. Provide a collection that does not contain any null values, and then try the "
                        "command again.")
_NOT_NULL_OR_EMPTY = ("The argument is null or empty. Provide an argument that is not null or empty, and then try "
                      "the command again.")
_NOT_NULL_OR_EMPTY_COLLECTION = ("The argument is null, empty, or an element of the argument collection contains a "
                                 "null value. Supply a collection that does not contain any null values and then "
                                 "try the command again.")


def _validation_error(p: ParamSpec, message: str) -> PSError:
    return _pbe(f"Cannot validate argument on parameter '{p.name}'. {message}", "ParameterArgumentValidationError",
                "InvalidData", PBVE)


def _validate_not_null(p: ParamSpec, pt: PType, value: Any) -> None:
    if value is None:
        raise _validation_error(p, _NOT_NULL)
    if isinstance(value, list) and any(v is None for v in value):
        raise _validation_error(p, _NOT_NULL_COLLECTION)


def _validate_not_null_or_empty(p: ParamSpec, pt: PType, value: Any) -> None:
    # As Windows PowerShell 5.1's ValidateNotNullOrEmptyAttribute words it (the 2016 source): an empty string
    # element is "null or empty" (Get-VHD -Path '' in Hyper-V-Reporting-Script#5 binds [''] to a string[]), a
    # null element or an empty collection the collection text.
    if value is None or value == "":
        raise _validation_error(p, _NOT_NULL_OR_EMPTY)
    if isinstance(value, list):
        for item in value:
            if item is None:
                raise _validation_error(p, _NOT_NULL_OR_EMPTY_COLLECTION)
            if item == "":
                raise _validation_error(p, _NOT_NULL_OR_EMPTY)
    if isinstance(value, list | dict) and not value:
        raise _validation_error(p, _NOT_NULL_OR_EMPTY_COLLECTION)


def _range_bound(text: str) -> float:
    return float(text) if "." in text or "e" in text.lower() else int(text)


def _validate_range(p: ParamSpec, value: Any, spec: str) -> None:
    """ValidateRange(min, max): each element within the bounds (ValidateEnumeratedArgumentsAttribute)."""
    low_text, _, high_text = spec.partition(":")
    low, high = _range_bound(low_text), _range_bound(high_text)
    if value is None:
        raise _validation_error(p, _NOT_NULL_OR_EMPTY_COLLECTION)
    for item in value if isinstance(value, list) else [value]:
        if item is None:
            raise _validation_error(p, _NOT_NULL)
        number = item.value if isinstance(item, PSEnum) else item
        if number < low:
            raise _validation_error(p, f"The {display(item)} argument is less than the minimum allowed range of "
                                       f"{low_text}. Supply an argument that is greater than or equal to {low_text} "
                                       "and then try the command again.")
        if number > high:
            raise _validation_error(p, f"The {display(item)} argument is greater than the maximum allowed range of "
                                       f"{high_text}. Supply an argument that is less than or equal to {high_text} "
                                       "and then try the command again.")


def _validate_set(p: ParamSpec, pt: PType, result: Any) -> None:
    if result is None:
        raise _validation_error(p, _NOT_NULL_OR_EMPTY_COLLECTION)
    allowed = {s.lower() for s in pt.valid_set}
    for item in result if isinstance(result, list) else [result]:
        if display(item).lower() not in allowed:
            raise _validation_error(
                p, f"The argument \"{display(item)}\" does not belong to the set \"{','.join(pt.valid_set)}\" "
                   "specified by the ValidateSet attribute. Supply an argument that is in the set and then try the "
                   "command again.")


def validate(p: ParamSpec, value: Any) -> None:
    """The parameter's validation attributes, in the catalog's order, ValidateSet last."""
    pt = parse_type(p.type)
    for attr in p.validate:
        name, _, arg = attr.partition(":")
        if name == "NotNull":
            _validate_not_null(p, pt, value)
        elif name == "NotNullOrEmpty":
            _validate_not_null_or_empty(p, pt, value)
        elif name == "Range":
            _validate_range(p, value, arg)
    if pt.valid_set:
        _validate_set(p, pt, value)


def _check_null(p: ParamSpec, converted: Any, mandatory: bool) -> None:
    """Mandatory parameters refuse $null, empty strings and empty arrays (ValidateNullOrEmptyArgument)
    unless [AllowNull()], [AllowEmptyString()] or [AllowEmptyCollection()] says otherwise."""
    if not mandatory or p.is_switch:
        return
    pt = parse_type(p.type)
    if converted is None:
        if "AllowNull" not in p.validate:
            raise _pbe(f"Cannot bind argument to parameter '{p.name}' because it is null.",
                       "ParameterArgumentValidationErrorNullNotAllowed", "InvalidData", PBVE)
        return
    items = converted if pt.is_array and isinstance(converted, list) else [converted]
    if pt.kind not in _VALUE_KINDS and any(v is None for v in items) and "AllowNull" not in p.validate:
        raise _pbe(f"Cannot bind argument to parameter '{p.name}' because it is null.",
                   "ParameterArgumentValidationErrorNullNotAllowed", "InvalidData", PBVE)
    if pt.kind == "string" and any(v == "" for v in items) and "AllowEmptyString" not in p.validate:
        raise _pbe(f"Cannot bind argument to parameter '{p.name}' because it is an empty string.",
                   "ParameterArgumentValidationErrorEmptyStringNotAllowed", "InvalidData", PBVE)
    if pt.is_array and not items and "AllowEmptyCollection" not in p.validate:
        raise _pbe(f"Cannot bind argument to parameter '{p.name}' because it is an empty array.",
                   "ParameterArgumentValidationErrorEmptyArrayNotAllowed", "InvalidData", PBVE)


def _check_setter(p: ParamSpec, converted: Any) -> None:
    """A compiled cmdlet's property setter: a value type that is not Nullable cannot hold $null
    (ReflectionParameterBinder; "New-TimeSpan : Cannot bind parameter 'Start' to the target. Exception
    setting "Start": "Cannot convert null to type "System.DateTime".")."""
    pt = parse_type(p.type)
    if converted is None and not pt.is_array and not pt.nullable and pt.kind in _VALUE_KINDS:
        raise _pbe(f"Cannot bind parameter '{p.name}' to the target. Exception setting \"{p.name}\": \"Cannot "
                   f"convert null to type \"{pt.net}\".\"", "ParameterBindingFailed", "WriteError")


# ---------------------------------------------------------------------------------------------
# binding


def resolve_name(spec: CmdletSpec, name: str) -> ParamSpec:
    """Find a parameter by name, alias or unambiguous prefix, case-insensitively."""
    key = name.lstrip("-").rstrip(":").lower()
    exact = [p for p in spec.parameters.values()
             if p.name.lower() == key or any(a.lower() == key for a in p.aliases)]
    if exact:
        return exact[0]
    matches: list[ParamSpec] = []
    for p in spec.parameters.values():
        hit = p.name.lower().startswith(key) or any(a.lower().startswith(key) for a in p.aliases)
        if hit and p not in matches:
            matches.append(p)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise parameter_not_found(name.lstrip("-"))
    raise ambiguous_parameter(name.lstrip("-"), [m.name for m in matches])


def _sets_of(spec: CmdletSpec, p: ParamSpec) -> set[str]:
    if "*" in p.sets:
        return set(spec.set_names)
    return set(p.sets)


def _is_mandatory_anywhere(p: ParamSpec) -> bool:
    return any(s.mandatory for s in p.sets.values())


@dataclass
class Binding:
    """A command after its command-line arguments are bound, before pipeline input."""

    spec: CmdletSpec
    params: dict[str, Any]
    sets: list[str]  # parameter sets still possible, in catalog order
    invoked_as: str = ""
    expects_input: bool = False
    bound_positionally: list[str] = field(default_factory=list)
    # The set pipeline binding tries first (the engine's _parameterSetToBePrioritizedInPipelineBinding), chosen
    # by the mandatory check before input; None: the default set when it is still possible.
    prioritized: str | None = None

    def finish(self) -> BoundCall:
        """Resolve the parameter set with no pipeline input and check mandatory parameters."""
        chosen = _resolve_set(self.spec, self.params, self.sets)
        missing = _missing(self.spec, self.params, chosen)
        if missing:
            raise missing_mandatory(missing)
        return BoundCall(self.spec, chosen, dict(self.params), self.invoked_as)

    def with_input(self, obj: Any) -> BoundCall:
        """Bind one pipeline input object (process-record semantics) and resolve the set."""
        params = dict(self.params)
        sets = list(self.sets)
        bound_any = False
        # As the engine does: without type coercion first (the prioritized set, else the default parameter set,
        # then every set still possible), then with coercion in the same order; ByValue before ByPropertyName.
        first = self.prioritized if self.prioritized in sets else self.spec.default_set
        stages: list[tuple[list[str], bool]] = []
        for coerce in (False, True):
            if first in sets:
                stages.append(([first], coerce))
            stages.append((list(sets), coerce))
        for stage, coerce in stages:
            scope = [s for s in stage if s in sets]
            for by_value in (True, False):
                if _bind_pipeline_pass(self.spec, params, scope, obj, by_value, coerce):
                    bound_any = True
                    sets[:] = scope
            if bound_any:
                break
        if not bound_any:
            raise input_not_bound(obj)
        chosen = _resolve_set(self.spec, params, sets)
        missing = _missing(self.spec, params, chosen)
        if missing:
            raise input_missing_mandatory(missing, obj)
        return BoundCall(self.spec, chosen, params, self.invoked_as)


def _compatible_sets(spec: CmdletSpec, params: dict[str, Any], sets: list[str]) -> list[str]:
    out = list(sets)
    for name in params:
        p = spec.parameters[name]
        if p.common:
            continue
        allowed = _sets_of(spec, p)
        out = [s for s in out if s in allowed]
    return out


def _missing(spec: CmdletSpec, params: dict[str, Any], set_name: str) -> list[str]:
    missing: list[str] = []
    for p in spec.parameters.values():
        ps = p.in_set(set_name)
        if ps is None or not ps.mandatory or p.name in params:
            continue
        missing.append(p.name)
    return missing


def _resolve_set(spec: CmdletSpec, params: dict[str, Any], sets: list[str]) -> str:
    cands = _compatible_sets(spec, params, sets)
    if not cands:
        raise ambiguous_parameter_set()
    if len(cands) == 1:
        return cands[0]
    satisfied = [s for s in cands if not _missing(spec, params, s)]
    if len(satisfied) == 1:
        return satisfied[0]
    if spec.default_set in cands and (not satisfied or spec.default_set in satisfied):
        return spec.default_set
    raise ambiguous_parameter_set()


# ---------------------------------------------------------------------------------------------
# parameter sets before pipeline input
#
# CmdletParameterBinderController.BindCommandLineParameters when input is expected (PowerShell/PowerShell
# src/System.Management.Automation/engine/CmdletParameterBinderController.cs; Windows PowerShell 5.1's
# System.Management.Automation has the same code): ValidateParameterSets(prePipelineInput: true), then
# FilterParameterSetsTakingNoPipelineInput, then GetMissingMandatoryParameters(isPipelineInputExpected: true).
# Several sets may stay possible: the piped object decides (Get-VMSnapshot | Remove-VMSnapshot binds -VMSnapshot
# in SnapshotObject, Get-VM | Remove-VMSnapshot binds -VM in VMObject). "*" stands for the all-parameter-sets
# entry of a parameter.


def _unbound(spec: CmdletSpec, params: dict[str, Any]) -> list[ParamSpec]:
    return [p for p in spec.parameters.values() if p.name not in params]


def _matching(p: ParamSpec, sets: list[str]) -> list[tuple[str, Any]]:
    """ParameterMetadata.GetMatchingParameterSetData: its entries for the sets still possible, and its all-sets
    entry."""
    return [(key, ps) for key, ps in p.sets.items() if key == "*" or key in sets]


def _takes_pipeline_input(spec: CmdletSpec, params: dict[str, Any], sets: list[str]) -> bool:
    """AtLeastOneUnboundValidParameterSetTakesPipelineInput."""
    return any(ps.by_value or ps.by_property for p in _unbound(spec, params) for _, ps in _matching(p, sets))


def _validate_before_input(spec: CmdletSpec, params: dict[str, Any], sets: list[str]) -> list[str]:
    """ValidateParameterSets(prePipelineInput: true, setDefault: false): several sets stay possible while the
    default set is one of them or an unbound parameter of them takes pipeline input; otherwise the one set
    without unbound mandatory parameters (ResolveParameterSetAmbiguityBasedOnMandatoryParameters)."""
    if not sets:
        raise ambiguous_parameter_set()
    if len(sets) == 1 or spec.default_set in sets or _takes_pipeline_input(spec, params, sets):
        return sets
    mandatory = {key for p in _unbound(spec, params) for key, ps in p.sets.items() if ps.mandatory}
    remaining = [s for s in sets if s not in mandatory]
    if len(remaining) != 1:
        raise ambiguous_parameter_set()
    return remaining


def _filter_sets_taking_no_input(spec: CmdletSpec, params: dict[str, Any], sets: list[str]) -> list[str]:
    """FilterParameterSetsTakingNoPipelineInput: keep the sets an unbound parameter takes pipeline input in (all
    of them when such a parameter is in every set)."""
    taking: set[str] = set()
    for p in _unbound(spec, params):
        for key, ps in _matching(p, sets):
            if ps.by_value or ps.by_property:
                if key == "*":
                    return sets
                taking.add(key)
    return [s for s in sets if s in taking] if taking else sets


@dataclass
class _Prompting:
    """ParameterSetPromptingData: one set's unbound mandatory parameters, by whether input can supply them."""

    key: str  # a set name, or "*" (the all-sets entries)
    is_default: bool
    pipelineable: list[str] = field(default_factory=list)
    by_value: list[str] = field(default_factory=list)
    by_property: list[str] = field(default_factory=list)
    nonpipelineable: list[str] = field(default_factory=list)

    @property
    def is_all(self) -> bool:
        return self.key == "*"


def _sets_before_input(spec: CmdletSpec, params: dict[str, Any], sets: list[str]) -> tuple[list[str], str | None]:
    """The sets still possible and the prioritized one once the command line is bound and input is expected;
    MissingMandatoryParameter for what input cannot supply, AmbiguousParameterSet when no set can remain."""
    sets = _validate_before_input(spec, params, sets)
    if len(sets) > 1:
        filtered = _filter_sets_taking_no_input(spec, params, sets)
        if filtered != sets:
            sets = _validate_before_input(spec, params, filtered)
    sets, prioritized, missing = _missing_before_input(spec, params, sets)
    if missing:
        raise missing_mandatory(missing)
    return sets, prioritized


def _missing_before_input(spec: CmdletSpec, params: dict[str, Any],
                          sets: list[str]) -> tuple[list[str], str | None, list[str]]:
    """GetMissingMandatoryParameters(isPipelineInputExpected: true): (sets, prioritized set, the missing
    mandatory parameters input cannot supply)."""
    default = spec.default_set
    prompting: dict[str, _Prompting] = {}
    mandatory_sets: set[str] = set()
    missing_in_all = False
    for p in _unbound(spec, params):
        for key, ps in _matching(p, sets):
            if not ps.mandatory:
                continue
            data = prompting.setdefault(key, _Prompting(key, default is not None and key in ("*", default)))
            if ps.by_value or ps.by_property:
                data.pipelineable.append(p.name)
                if ps.by_value:
                    data.by_value.append(p.name)
                if ps.by_property:
                    data.by_property.append(p.name)
            else:
                data.nonpipelineable.append(p.name)
            if key == "*":
                missing_in_all = True
            else:
                mandatory_sets.add(key)
    if not prompting:
        return sets, None, []
    current = list(sets)
    prioritized: str | None = None
    if not mandatory_sets or missing_in_all:
        mandatory_sets = set(current)

    def nonpipelineable_of(chosen: set[str]) -> list[str]:
        return [n for d in prompting.values() if d.is_all or d.key in chosen for n in d.nonpipelineable]

    # The default set misses nothing: unless another set needs input, the sets missing a mandatory parameter go,
    # and the default set is tried first.
    if len(current) > 1 and default in current and default not in mandatory_sets and not any(
            d.pipelineable for d in prompting.values() if not d.is_all and d.key in current and d.key != default):
        mandatory_sets = {s for s in current if s not in mandatory_sets}
        current = [s for s in current if s in mandatory_sets]
        if current != [default]:
            prioritized = default
    if not mandatory_sets:
        raise ambiguous_parameter_set()
    if len(mandatory_sets) == 1:
        return current, prioritized, nonpipelineable_of(mandatory_sets)
    if prioritized is not None:
        return current, prioritized, []

    others = [d for d in prompting.values() if not d.is_all and not d.is_default]
    if default in mandatory_sets:
        another_by_input = any(d.pipelineable and not d.nonpipelineable for d in others)
        another_by_property = any(d.by_property for d in others)
        latch = not another_by_input
        if default in prompting:
            dd = prompting[default]
            latch = (latch or (bool(dd.by_property) and not another_by_property)
                     or (bool(dd.pipelineable) and not another_by_input))
        if not latch and "*" in prompting and prompting["*"].nonpipelineable:
            latch = True
        if latch:
            return [default], None, nonpipelineable_of({default})

    def single(kind: str) -> tuple[str | None, bool]:
        """The one mandatory set taking input ByValue/ByPropertyName, and whether several do."""
        found = [d.key for d in prompting.values() if d.key in mandatory_sets and not d.is_all and getattr(d, kind)]
        return (found[0] if len(found) == 1 else None), len(found) > 1

    by_value, several_by_value = single("by_value")
    by_property, several_by_property = single("by_property")
    unique: str | None = None
    if by_value is not None and by_value == by_property:
        unique = by_value
    elif (by_value is not None or several_by_value) != (by_property is not None or several_by_property):
        unique = by_value if (by_value is not None or several_by_value) else by_property

    def latch_on(chosen: str) -> tuple[list[str], str | None, list[str]]:
        """PreservePotentialParameterSets: the chosen set alone when it still misses a parameter input cannot
        supply, else every set but the other mandatory sets, the chosen one first."""
        if prompting[chosen].nonpipelineable:
            return [chosen], None, nonpipelineable_of({chosen})
        ignored = {d.key for d in prompting.values() if not d.is_all and d.key != chosen}
        kept = [s for s in current if s not in ignored]
        return kept, (chosen if kept != [chosen] else None), nonpipelineable_of({chosen})

    if unique is not None:
        return latch_on(unique)
    blocked = {d.key for d in prompting.values() if (d.is_all or d.key in mandatory_sets) and d.nonpipelineable}
    if not blocked:
        return current, None, []
    if by_value is not None:
        return latch_on(by_value)
    if not several_by_value and not several_by_property:
        raise ambiguous_parameter_set()
    current = [s for s in current if s not in blocked - {"*"}]
    if not current:
        raise ambiguous_parameter_set()
    return current, None, []


def _bind_one(spec: CmdletSpec, params: dict[str, Any], p: ParamSpec, value: Any) -> None:
    """ParameterBinderBase.BindParameter: transform/convert, validate, mandatory check, set."""
    function = is_function(spec)
    converted = convert(value, p, function)
    validate(p, converted)
    _check_null(p, converted, _is_mandatory_anywhere(p))
    if not function:
        _check_setter(p, converted)
    params[p.name] = converted


def bind(spec: CmdletSpec, raw: Sequence[tuple[str | None, Any]], *, invoked_as: str = "",
         expects_input: bool = False) -> Binding:
    """Bind named then positional arguments; the result still awaits input or ``finish()``."""
    params: dict[str, Any] = {}
    positional: list[Any] = []
    for name, value in raw:
        if name is None or name == "":
            positional.append(value)
            continue
        p = resolve_name(spec, name)
        if p.name in params:
            raise parameter_already_bound(p.name)
        if p.is_switch:
            # A switch named without an argument, or with $null (HandleNullParameterForSpecialTypes), is present.
            if value is None or isinstance(value, SwitchValue):
                params[p.name] = True
            else:
                params[p.name] = convert(value, p, is_function(spec))
            continue
        if isinstance(value, SwitchValue):
            raise missing_argument(p)  # "-Name" with nothing after it (a command line, never a PSRP call)
        _bind_one(spec, params, p, value)

    sets = _compatible_sets(spec, params, spec.set_names)
    if not sets:
        raise ambiguous_parameter_set()
    bound_positionally: list[str] = []
    if positional:
        _bind_positional(spec, params, sets, positional, bound_positionally)
        sets = _compatible_sets(spec, params, sets)
        if not sets:
            raise ambiguous_parameter_set()
    prioritized: str | None = None
    if expects_input:
        # Mandatory parameters that pipeline input cannot supply must already be there; the sets the input may
        # still decide between stay open.
        sets, prioritized = _sets_before_input(spec, params, sets)
    return Binding(spec, params, sets, invoked_as or spec.name, expects_input, bound_positionally, prioritized)


def _bind_positional(spec: CmdletSpec, params: dict[str, Any], sets: list[str], args: list[Any],
                     bound: list[str]) -> None:
    # position -> parameters (of the still possible sets) taking it, default set's first.
    slots: dict[int, list[ParamSpec]] = {}
    for p in spec.parameters.values():
        if p.name in params or p.common:
            continue
        for s in sets:
            ps = p.in_set(s)
            if ps is not None and ps.position is not None:
                bucket = slots.setdefault(ps.position, [])
                if p not in bucket:
                    bucket.append(p)
    for bucket in slots.values():
        bucket.sort(key=lambda q: 0 if spec.default_set in _sets_of(spec, q) else 1)
    positions = sorted(slots)
    live = list(sets)
    for arg in args:
        placed = False
        first_error: PSError | None = None
        while positions and not placed:
            pos = positions.pop(0)
            for p in slots[pos]:
                if p.name in params:
                    continue
                allowed = [s for s in live if (ps := p.in_set(s)) is not None and ps.position == pos]
                if not allowed:
                    continue
                try:
                    _bind_one(spec, params, p, arg)
                except PSError as exc:
                    first_error = first_error or exc
                    continue
                live = allowed
                bound.append(p.name)
                placed = True
                break
            if not placed and first_error is not None:
                raise first_error
        if not placed:
            raise positional_not_found(arg)


def _exact_match(value: Any, pt: PType) -> bool:
    """ValueFromPipeline without coercion: the object already is of the parameter's type."""
    kind = pt.kind
    if kind == "any":
        return True
    if kind == "string":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in ("bool", "switch"):
        return isinstance(value, bool)
    if kind == "enum":
        return isinstance(value, PSEnum) and value.type_name == pt.net
    if kind == "guid":
        return isinstance(value, uuid.UUID)
    if kind == "object":
        return isinstance(value, PSObj) and pt.net in value.type_names
    if kind == "credential":
        return isinstance(value, Credential)
    if kind == "scriptblock":
        return isinstance(value, ScriptBlock)
    return False


def _bind_pipeline_pass(spec: CmdletSpec, params: dict[str, Any], sets: list[str], obj: Any,
                        by_value: bool, coerce: bool) -> bool:
    bound = False
    for p in spec.parameters.values():
        if p.name in params:
            continue
        allowed = [s for s in sets if (ps := p.in_set(s)) is not None
                   and (ps.by_value if by_value else ps.by_property)]
        if not allowed:
            continue
        pt = parse_type(p.type)
        if by_value:
            value = obj
        else:
            if not isinstance(obj, PSObj):
                continue
            found = False
            value = None
            for key in (p.name, *p.aliases):
                if any(k.lower() == key.lower() for k in obj.props):
                    value, found = obj.get(key), True
                    break
            if not found:
                continue
        if not coerce:
            items = value if pt.is_array and isinstance(value, list) else [value]
            if not items or not all(_exact_match(v, pt) for v in items):
                continue
        try:
            _bind_one(spec, params, p, value)
        except PSError:
            continue  # this parameter cannot take the object; another may
        sets[:] = allowed
        bound = True
    return bound
