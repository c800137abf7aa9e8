"""PowerShell parameter binding against a catalog CmdletSpec, as Windows PowerShell 5.1 does it.

The order follows the engine's CmdletParameterBinderController: named arguments first (exact name
or alias, else an unambiguous prefix), then positional arguments by position among the parameter
sets still possible, then (per pipeline object) ValueFromPipeline and ValueFromPipelineByPropertyName,
then parameter set resolution and the mandatory check. Every failure is a PSError with the engine's
text and error id; the runtime suffixes the id with the cmdlet's .NET type.

Conversions follow LanguagePrimitives where a client can plausibly hit them: numbers from strings
(``"4"``, ``"0x10"``, ``"1GB"``), enums by name or value, switches and booleans only from booleans
and numbers, scalars wrapped into arrays, objects only of their real .NET type.
"""

from __future__ import annotations

import datetime as _dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from labctl.sim.catalog import CmdletSpec, ParamSpec
from labctl.sim.cmdlets.base import BoundCall
from labctl.sim.errors import PBE, PSError, parameter_not_found
from labctl.sim.values import (
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

    @property
    def display(self) -> str:
        """The .NET name as messages show it (``System.String[]``)."""
        return self.net + ("[]" if self.is_array else "")


@lru_cache(maxsize=512)
def parse_type(raw: str) -> PType:
    """Parse a catalog type string (see labctl.sim.catalog)."""
    text = raw.strip()
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


def _to_enum(value: Any, pt: PType) -> PSEnum:
    names = [n for n, _ in pt.enum]
    if isinstance(value, PSEnum) and value.type_name == pt.net:
        return value
    if isinstance(value, PSEnum):
        value = value.name
    if isinstance(value, bool):
        raise _cannot_convert_object(value, pt.net)
    if isinstance(value, int):
        for n, v in pt.enum:
            if v == value:
                return PSEnum(pt.net, n, v)
        raise _CastError(
            f'Cannot convert value "{value}" to type "{pt.net}" due to enumeration values that are '
            "not valid. Specify one of the following enumeration values and try again. The possible "
            f'enumeration values are "{", ".join(names)}".')
    if isinstance(value, str) and pt.flags and "," in value:
        # [Flags] enums take "A,B"; the combined value keeps the names as written canonically.
        parts = [_to_enum(part, pt) for part in value.split(",")]
        total = 0
        for part in parts:
            total |= part.value
        return PSEnum(pt.net, ", ".join(part.name for part in parts), total)
    if isinstance(value, str):
        wanted = value.strip()
        for n, v in pt.enum:
            if n.lower() == wanted.lower():
                return PSEnum(pt.net, n, v)
        if re.fullmatch(r"[+-]?\d+", wanted):
            return _to_enum(int(wanted), pt)
        raise _cannot_convert_value(
            value, pt.net,
            f"Unable to match the identifier name {value} to a valid enumerator name. Specify one of "
            f"the following enumerator names and try again:\n{', '.join(names)}")
    raise _cannot_convert_object(value, pt.net)


def _to_bool(value: Any, pt: PType, param: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, SwitchValue):
        return True
    if isinstance(value, PSEnum):
        return bool(value.value)
    if isinstance(value, int | float):
        return bool(value)
    # ParameterBinderBase refuses anything but booleans and numbers for [bool] and [switch].
    raise _CastError(
        f"Cannot convert '{net_type(value)}' to the type '{pt.net}' required by parameter '{param}'. "
        "Boolean parameters accept only Boolean values and numbers, such as $True, $False, 1 or 0.",
        plain=True)


def _convert_scalar(value: Any, pt: PType, param: str) -> Any:
    kind = pt.kind
    if kind == "any":
        return value
    if isinstance(value, list | tuple):
        # A one-element collection is unwrapped; longer ones cannot become a scalar.
        if len(value) == 1:
            return _convert_scalar(value[0], pt, param)
        raise _CastError(f"Cannot convert '{net_type(value)}' to the type '{pt.net}' required by "
                         f"parameter '{param}'. Specified method is not supported.", plain=True)
    if value is None:
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
        return _to_bool(value, pt, param)
    if kind == "enum":
        return _to_enum(value, pt)
    if kind == "guid":
        if isinstance(value, uuid.UUID):
            return value
        if isinstance(value, str):
            try:
                return uuid.UUID(value.strip())
            except ValueError:
                raise _cannot_convert_value(
                    value, pt.net,
                    "Guid should contain 32 digits with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).")
        raise _cannot_convert_object(value, pt.net)
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
    if kind == "hashtable":
        if isinstance(value, dict):
            return value
        raise _cannot_convert_object(value, pt.net)
    if kind == "scriptblock":
        if isinstance(value, ScriptBlock):
            return value
        raise _cannot_convert_object(value, pt.net)
    if kind == "securestring":
        if isinstance(value, SecureText):
            return value
        raise _cannot_convert_object(value, pt.net)
    if kind == "credential":
        if isinstance(value, Credential):
            return value
        if isinstance(value, str):
            # CredentialAttribute turns a user name into a Get-Credential prompt; the remoting host
            # of a pypsrp client cannot prompt, so the transformation fails (seen in the wild over
            # WinRM and in ForEach-Object -Parallel runspaces).
            raise _TransformError(
                f"Cannot process argument transformation on parameter '{param}'. A command that prompts "
                "the user failed because the host program or the command type does not support user "
                "interaction. The host was attempting to request confirmation with the following "
                "message: Enter your credentials.")
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


def convert(value: Any, p: ParamSpec) -> Any:
    """Convert ``value`` to parameter ``p``'s type; raise the binder's PSError on failure."""
    pt = parse_type(p.type)
    try:
        if pt.is_array:
            items = list(value) if isinstance(value, list | tuple) else [value]
            result: Any = [_convert_scalar(v, pt, p.name) for v in items]
        else:
            result = _convert_scalar(value, pt, p.name)
    except _CastError as exc:
        if exc.plain:
            return_err = _pbe(exc.message, "CannotConvertArgument")
        else:
            return_err = _pbe(f"Cannot bind parameter '{p.name}'. {exc.message}",
                              "CannotConvertArgumentNoMessage")
        raise return_err from None
    except _TransformError as exc:
        raise _pbe(exc.message, "ParameterArgumentTransformationError", "InvalidData", PBATE) from None
    if pt.valid_set:
        _validate_set(p, pt, result)
    return result


def _validate_set(p: ParamSpec, pt: PType, result: Any) -> None:
    allowed = {s.lower() for s in pt.valid_set}
    for item in result if isinstance(result, list) else [result]:
        if display(item).lower() not in allowed:
            raise _pbe(
                f"Cannot validate argument on parameter '{p.name}'. The argument \"{display(item)}\" "
                f"does not belong to the set \"{','.join(pt.valid_set)}\" specified by the ValidateSet "
                "attribute. Supply an argument that is in the set and then try the command again.",
                "ParameterArgumentValidationError", "InvalidData", PBVE)


def _check_null(p: ParamSpec, raw: Any, converted: Any, mandatory: bool) -> None:
    """Mandatory parameters refuse $null, empty strings and empty arrays (no AllowNull & co.)."""
    if not mandatory or p.is_switch:
        return
    pt = parse_type(p.type)
    items = converted if pt.is_array and isinstance(converted, list) else [converted]
    if raw is None or any(v is None for v in items):
        raise _pbe(f"Cannot bind argument to parameter '{p.name}' because it is null.",
                   "ParameterArgumentValidationErrorNullNotAllowed", "InvalidData", PBVE)
    if pt.kind == "string" and any(v == "" for v in items):
        raise _pbe(f"Cannot bind argument to parameter '{p.name}' because it is an empty string.",
                   "ParameterArgumentValidationErrorEmptyStringNotAllowed", "InvalidData", PBVE)
    if pt.is_array and not items:
        raise _pbe(f"Cannot bind argument to parameter '{p.name}' because it is an empty array.",
                   "ParameterArgumentValidationErrorEmptyArrayNotAllowed", "InvalidData", PBVE)


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

    @property
    def pipeline_params(self) -> list[ParamSpec]:
        """Unbound parameters that can take pipeline input in some remaining set."""
        out: list[ParamSpec] = []
        for p in self.spec.parameters.values():
            if p.name in self.params:
                continue
            for s in self.sets:
                ps = p.in_set(s)
                if ps and (ps.by_value or ps.by_property):
                    out.append(p)
                    break
        return out

    def finish(self) -> BoundCall:
        """Resolve the parameter set with no pipeline input and check mandatory parameters."""
        chosen = _resolve_set(self.spec, self.params, self.sets, deferrable=False)
        missing = _missing(self.spec, self.params, chosen, deferrable=False)
        if missing:
            raise missing_mandatory(missing)
        return BoundCall(self.spec, chosen, dict(self.params), self.invoked_as)

    def with_input(self, obj: Any) -> BoundCall:
        """Bind one pipeline input object (process-record semantics) and resolve the set."""
        params = dict(self.params)
        sets = list(self.sets)
        bound_any = False
        # As the engine does: without type coercion first (the default parameter set, then every
        # set still possible), then with coercion in the same order; ByValue before ByPropertyName.
        stages: list[tuple[list[str], bool]] = []
        for coerce in (False, True):
            if self.spec.default_set in sets:
                stages.append(([self.spec.default_set], coerce))
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
        chosen = _resolve_set(self.spec, params, sets, deferrable=False)
        missing = _missing(self.spec, params, chosen, deferrable=False)
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


def _missing(spec: CmdletSpec, params: dict[str, Any], set_name: str, deferrable: bool) -> list[str]:
    missing: list[str] = []
    for p in spec.parameters.values():
        ps = p.in_set(set_name)
        if ps is None or not ps.mandatory or p.name in params:
            continue
        if deferrable and (ps.by_value or ps.by_property):
            continue  # pipeline input may still supply it
        missing.append(p.name)
    return missing


def _resolve_set(spec: CmdletSpec, params: dict[str, Any], sets: list[str], deferrable: bool) -> str:
    cands = _compatible_sets(spec, params, sets)
    if not cands:
        raise ambiguous_parameter_set()
    if len(cands) == 1:
        return cands[0]
    satisfied = [s for s in cands if not _missing(spec, params, s, deferrable)]
    if len(satisfied) == 1:
        return satisfied[0]
    if spec.default_set in cands and (not satisfied or spec.default_set in satisfied):
        return spec.default_set
    raise ambiguous_parameter_set()


def _bind_one(spec: CmdletSpec, params: dict[str, Any], p: ParamSpec, value: Any) -> None:
    converted = convert(value, p)
    _check_null(p, value, converted, _is_mandatory_anywhere(p))
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
            if value is None or isinstance(value, SwitchValue):
                params[p.name] = True
            else:
                params[p.name] = convert(value, p)
            continue
        if value is None or isinstance(value, SwitchValue):
            raise missing_argument(p)
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
    binding = Binding(spec, params, sets, invoked_as or spec.name, expects_input, bound_positionally)
    if expects_input:
        # Mandatory parameters that pipeline input cannot supply must already be there.
        chosen = _resolve_set(spec, params, sets, deferrable=True)
        missing = _missing(spec, params, chosen, deferrable=True)
        if missing:
            raise missing_mandatory(missing)
    return binding


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


def bind_call(spec: CmdletSpec, raw: Sequence[tuple[str | None, Any]], invoked_as: str = "") -> BoundCall:
    """Bind a command that gets no pipeline input (handy for handlers and tests)."""
    return bind(spec, raw, invoked_as=invoked_as).finish()
