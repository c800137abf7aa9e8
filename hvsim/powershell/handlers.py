"""Engine-side cmdlets the simulated host offers: Select-Object and Get-Command."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any

from hvsim.powershell.binding import display, net_type
from hvsim.powershell.catalog import CmdletSpec, load_catalog
from hvsim.powershell.cmdlet import BoundCall, CmdletContext, cmdlet
from hvsim.powershell.errors import PSError, command_not_found
from hvsim.powershell.values import PSEnum, PSObj

# Module versions as a Windows Server 2022 Hyper-V host reports them (Get-Module -ListAvailable).
MODULE_VERSIONS = {
    "Hyper-V": "2.0.0.0",
    "NetNat": "1.0.0.0",
    "NetTCPIP": "1.0.0.0",
    "NetAdapter": "2.0.0.0",
    "Storage": "2.0.0.0",
    "ServerManager": "2.0.0.0",
    "NetSecurity": "2.0.0.0",
    "CimCmdlets": "1.0.0.0",
    "Microsoft.PowerShell.Core": "3.0.0.0",
    "Microsoft.PowerShell.Management": "3.1.0.0",
    "Microsoft.PowerShell.Utility": "3.1.0.0",
    "Microsoft.PowerShell.Archive": "1.0.1.0",
}
_COMMAND_TYPES = "System.Management.Automation.CommandTypes"
_KIND_VALUE = {"Alias": 1, "Function": 2, "Cmdlet": 8}
_KIND_ORDER = {"Alias": 0, "Function": 1, "Cmdlet": 2}


def _match(pattern: str, text: str) -> bool:
    """PowerShell wildcard match, case-insensitive."""
    return fnmatch.fnmatchcase(text.lower(), pattern.lower())


def _type_of(value: Any) -> str:
    return value.type_name if isinstance(value, PSObj) else net_type(value)


def _prop_names(value: Any) -> list[str]:
    if isinstance(value, PSObj):
        return list(value.props)
    if isinstance(value, str):
        return ["Length"]
    return []


def _prop(value: Any, name: str) -> tuple[bool, Any]:
    if isinstance(value, PSObj):
        for key, v in value.props.items():
            if key.lower() == name.lower():
                return True, v
        return False, None
    if isinstance(value, str) and name.lower() == "length":
        return True, len(value)
    return False, None


def _property_not_found(name: str, obj: Any) -> PSError:
    return PSError(f'Property "{name}" cannot be found.', "ExpandPropertyNotFound", "InvalidArgument",
                   target=obj, exception_type="System.Management.Automation.PSArgumentException")


def _select_properties(obj: Any, specs: list[Any], exclude: list[str]) -> PSObj:
    props: dict[str, Any] = {}
    for spec in specs:
        if isinstance(spec, dict):
            # @{Name=...; Expression=...}: only a property name can be evaluated (no script).
            label = next((str(v) for k, v in spec.items() if str(k).lower() in ("name", "n", "label", "l")),
                         None)
            expr = next((v for k, v in spec.items() if str(k).lower() in ("expression", "e")), None)
            source = display(expr) if expr is not None else (label or "")
            props[label or source] = _prop(obj, source)[1]
            continue
        name = display(spec)
        if any(ch in name for ch in "*?["):
            for key in _prop_names(obj):
                if _match(name, key) and key not in props:
                    props[key] = _prop(obj, key)[1]
            continue
        found, value = _prop(obj, name)
        props[name] = value if found else None
    for pattern in exclude:
        for key in [k for k in props if _match(pattern, k)]:
            del props[key]
    return PSObj([f"Selected.{_type_of(obj)}", "System.Management.Automation.PSCustomObject", "System.Object"],
                 props)


@cmdlet("Select-Object", collects_input=True)
def select_object(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    """-Property (names, wildcards, @{n=;e=<property>}), -ExpandProperty, -First/-Last/-Skip/-Index."""
    objects = list(ctx.all_input) if ctx.all_input else (
        [call.get("InputObject")] if call.has("InputObject") else [])
    skip = int(call.get("Skip", 0) or 0)
    objects = objects[skip:]
    if call.has("SkipLast"):
        n = int(call.get("SkipLast") or 0)
        objects = objects[: len(objects) - n] if n else objects
    if call.has("Index"):
        wanted = list(call.get("Index") or [])
        objects = [objects[i] for i in wanted if -len(objects) <= i < len(objects)]
    if call.has("First") or call.has("Last"):
        first = objects[: int(call.get("First") or 0)] if call.has("First") else []
        last = objects[len(objects) - int(call.get("Last") or 0):] if call.has("Last") else []
        if call.has("Last") and int(call.get("Last") or 0) == 0:
            last = []
        objects = first + last
    out: list[Any] = []
    expand = call.get("ExpandProperty")
    specs = list(call.get("Property") or [])
    exclude = list(call.get("ExcludeProperty") or [])
    for obj in objects:
        if expand:
            found, value = _prop(obj, str(expand))
            if not found:
                ctx.write_error(_property_not_found(str(expand), obj))
                continue
            if isinstance(value, list):
                out.extend(value)
            else:
                out.append(value)
        elif specs:
            out.append(_select_properties(obj, specs, exclude))
        else:
            out.append(obj)
    if call.get("Unique"):
        seen: list[Any] = []
        unique: list[Any] = []
        for item in out:
            key = (item.type_names, list(item.props.items())) if isinstance(item, PSObj) else item
            if key not in seen:
                seen.append(key)
                unique.append(item)
        out = unique
    return out


def _command_info(name: str, kind: str, spec: CmdletSpec) -> PSObj:
    version = MODULE_VERSIONS.get(spec.module, "1.0.0.0")
    type_name = {"Alias": "AliasInfo", "Function": "FunctionInfo", "Cmdlet": "CmdletInfo"}[kind]
    props: dict[str, Any] = {
        "Name": name,
        "CommandType": PSEnum(_COMMAND_TYPES, kind, _KIND_VALUE[kind]),
        "Definition": spec.name if kind == "Alias" else name,
        "ModuleName": spec.module,
        "Source": spec.module,
        "Version": version,
    }
    if kind == "Cmdlet":
        props["ImplementingType"] = spec.type
    return PSObj([f"System.Management.Automation.{type_name}", "System.Management.Automation.CommandInfo",
                  "System.Object"], props, to_string=name)


def _kind(spec: CmdletSpec) -> str:
    # CDXML and script-module commands are functions; their error ids end in their own name.
    return "Function" if spec.type == spec.name else "Cmdlet"


@cmdlet("Get-Command")
def get_command(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    """Lists the catalog: what the simulated host offers (-Name, -Module, -Verb, -Noun, -CommandType)."""
    catalog = load_catalog()
    names = [display(n) for n in call.get("Name") or []]
    modules = [display(m) for m in call.get("Module") or []]
    verbs = [display(v) for v in call.get("Verb") or []]
    nouns = [display(n) for n in call.get("Noun") or []]
    kinds_filter = call.get("CommandType")
    entries: list[tuple[str, str, CmdletSpec]] = []
    for spec in catalog.specs.values():
        entries.append((spec.name, _kind(spec), spec))
        entries.extend((alias, "Alias", spec) for alias in spec.aliases)
    out: list[tuple[str, str, CmdletSpec]] = []
    for name, kind, spec in entries:
        if modules and not any(_match(m, spec.module) for m in modules):
            continue
        verb, _, noun = name.partition("-")
        if verbs and not any(_match(v, verb) for v in verbs):
            continue
        if nouns and not any(_match(n, noun) for n in nouns):
            continue
        if isinstance(kinds_filter, PSEnum) and kinds_filter.name != "All" and \
                not (kinds_filter.value & _KIND_VALUE[kind]):
            continue
        if names and not any(_match(n, name) for n in names):
            continue
        out.append((name, kind, spec))
    for pattern in names:
        if not any(ch in pattern for ch in "*?[") and not any(_match(pattern, n) for n, _, _ in out):
            err = command_not_found(pattern)
            err.bare = False  # Get-Command's own error carries its type: ...,GetCommandCommand
            err.terminating = False
            ctx.write_error(err)
    out.sort(key=lambda e: (_KIND_ORDER[e[1]], e[0].lower()))
    total = call.get("TotalCount")
    if isinstance(total, int) and total >= 0:
        out = out[:total]
    return [_command_info(name, kind, spec) for name, kind, spec in out]


# --- Where-Object: the simplified syntax (-Property <name> -<Operator> -Value <v>) ----------------------
# Script blocks (-FilterScript) are not modelled: the simulator runs cmdlets, not scripts. What is modelled
# follows PowerShell's comparison operators: case-insensitive unless the C-prefixed switch is given, -Like
# with wildcards, -Match with a .NET regex, -Contains/-In on collections, ordered comparisons on numbers.
_WHERE_OPS = ("EQ", "NE", "GT", "GE", "LT", "LE", "Like", "NotLike", "Match", "NotMatch",
              "Contains", "NotContains", "In", "NotIn")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, PSEnum):
        return value.name
    return display(value)


def _equal(a: Any, b: Any, case: bool) -> bool:
    if isinstance(a, int | float) and not isinstance(a, bool):
        try:
            return float(a) == float(_text(b))
        except ValueError:
            return False
    left, right = _text(a), _text(b)
    return left == right if case else left.lower() == right.lower()


def _order(a: Any, b: Any, case: bool) -> int:
    if isinstance(a, int | float) and not isinstance(a, bool):
        try:
            fb = float(_text(b))
        except ValueError:
            return -2  # not comparable: the record is filtered out
        return (a > fb) - (a < fb)
    left, right = _text(a), _text(b)
    if not case:
        left, right = left.lower(), right.lower()
    return (left > right) - (left < right)


def _where(op: str, case: bool, value: Any, operand: Any) -> bool:
    import re

    from hvsim.core.paths import wildcard_regex

    items = value if isinstance(value, list) else [value]
    if op in ("Contains", "NotContains"):
        hit = any(_equal(v, operand, case) for v in items)
        return hit if op == "Contains" else not hit
    if op in ("In", "NotIn"):
        pool = operand if isinstance(operand, list) else [operand]
        hit = any(_equal(value, p, case) for p in pool)
        return hit if op == "In" else not hit
    if isinstance(value, list):
        # On a collection the operators filter its items; a non-empty result counts as true.
        return any(_where(op, case, v, operand) for v in value)
    if op in ("EQ", "NE"):
        return _equal(value, operand, case) == (op == "EQ")
    if op in ("Like", "NotLike"):
        pattern = wildcard_regex(_text(operand))
        if case:
            pattern = re.compile(pattern.pattern)
        return bool(pattern.match(_text(value))) == (op == "Like")
    if op in ("Match", "NotMatch"):
        found = re.search(_text(operand), _text(value), 0 if case else re.IGNORECASE)
        return bool(found) == (op == "Match")
    cmp = _order(value, operand, case)
    if cmp == -2:
        return False
    return {"GT": cmp > 0, "GE": cmp >= 0, "LT": cmp < 0, "LE": cmp <= 0}[op]


@cmdlet("Where-Object")
def where_object(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    """Pass the input object on when its -Property compares to -Value as the operator switch says."""
    from hvsim.powershell.runtime import script_not_modelled

    if call.has("FilterScript"):
        raise script_not_modelled(display(call.get("FilterScript")))
    obj = call.get("InputObject")
    if obj is None:
        return []
    op, case = "EQ", False
    for name in _WHERE_OPS:
        if call.get(name):
            op = name
        elif call.get("C" + name):
            op, case = name, True
    if call.get("Is") or call.get("IsNot"):
        raise PSError("Where-Object -Is/-IsNot is not modelled by the simulator.", "WhereIsNotModelled",
                      "NotImplemented", exception_type="System.NotImplementedException", terminating=True)
    found, value = _prop(obj, str(call.get("Property")))
    if not found:
        return []  # PowerShell: a missing property is $null, which matches nothing but -EQ $null
    return [obj] if _where(op, case, value, call.get("Value")) else []
