"""PowerShell's way of showing objects, as plain text blocks: tables, `Name : value` records, lines.

Pure formatting of what a guest step returned (labctl.app.guest), for the CLI to print.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from labctl.app.guest import visible_properties
from labctl.transport.base import RemoteObject

# Beyond this many properties a table gets too wide to read; objects are shown as `Name: value` lines.
MAX_TABLE_COLUMNS = 6
# The columns PowerShell's own format views show for types a guest command commonly returns
# (deserialized objects carry every property, most of them noise at a prompt).
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "system.serviceprocess.servicecontroller": ("Status", "Name", "DisplayName"),
    "microsoft.windows.servermanager.commands.feature": ("DisplayName", "Name", "InstallState"),
    "system.diagnostics.process": ("Id", "ProcessName", "CPU", "WS"),
    "system.io.fileinfo": ("Mode", "LastWriteTime", "Length", "Name"),
    "system.io.directoryinfo": ("Mode", "LastWriteTime", "Name"),
}


@dataclass(frozen=True)
class TextBlock:
    """Plain values, one line each (strings, numbers)."""

    lines: list[str]


@dataclass(frozen=True)
class TableBlock:
    """Objects of one kind as a short table."""

    columns: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class RecordBlock:
    """One object with many properties as `Name: value` lines."""

    pairs: list[tuple[str, str]] = field(default_factory=list)


Block = TextBlock | TableBlock | RecordBlock


def _is_type_name(text: str | None, type_names: list[str]) -> bool:
    """Whether an object's ToString says nothing but its .NET type (or is missing)."""
    if text is None:
        return True
    bare = text.removeprefix("Deserialized.")
    return any(bare == name.removeprefix("Deserialized.") for name in type_names)


def format_value(value: Any) -> str:
    """One value as PowerShell would show it in a table cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, _dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, (list, tuple)):
        return "{" + ", ".join(format_value(v) for v in value) + "}"
    if isinstance(value, RemoteObject):
        props = visible_properties(value)
        if not props or not _is_type_name(value.text, value.type_names):
            return value.text or ""
        # An object whose ToString is only its type name: show its properties, as PowerShell does for
        # a [pscustomobject] nested in another.
        return "@{" + "; ".join(f"{k}={format_value(v)}" for k, v in props.items()) + "}"
    if isinstance(value, dict):
        return "@{" + "; ".join(f"{k}={format_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _scalar_text(value: Any) -> str | None:
    """The line for a plain value, or None for an object with properties worth showing."""
    if isinstance(value, RemoteObject):
        # A string (or number) from a remote runspace arrives as an object carrying only the remoting
        # note properties: it is still just its text.
        if not visible_properties(value) or value.is_a("System.String"):
            return value.text if value.text is not None else ""
        return None
    if isinstance(value, dict):
        return None
    return format_value(value)


def _kind(value: RemoteObject | dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """(type name, property names): objects of one kind share a table."""
    type_name = "hashtable"
    if isinstance(value, RemoteObject) and value.type_names:
        type_name = value.type_names[0].lower().removeprefix("deserialized.")
    return type_name, tuple(visible_properties(value))


def _objects_block(objs: list[RemoteObject | dict[str, Any]]) -> list[Block]:
    type_name, names = _kind(objs[0])
    columns = [c for c in DEFAULT_COLUMNS.get(type_name, ()) if c.lower() in {n.lower() for n in names}]
    if not columns and len(names) <= MAX_TABLE_COLUMNS:
        columns = list(names)
    if columns:
        rows = []
        for obj in objs:
            props = {k.lower(): v for k, v in visible_properties(obj).items()}
            rows.append([format_value(props.get(c.lower())) for c in columns])
        return [TableBlock(columns, rows)]
    return [RecordBlock([(k, format_value(v)) for k, v in visible_properties(obj).items()]) for obj in objs]


def block_lines(block: Block) -> list[str]:
    """A block as text lines the way PowerShell prints it: tables like Format-Table (header, dashes, columns
    padded, no trailing blanks), records like Format-List (`Name : value`)."""
    if isinstance(block, TextBlock):
        return list(block.lines)
    if isinstance(block, RecordBlock):
        width = max((len(name) for name, _ in block.pairs), default=0)
        return [f"{name:<{width}} : {value}".rstrip() for name, value in block.pairs]
    widths = [max([len(c)] + [len(r[i]) for r in block.rows]) for i, c in enumerate(block.columns)]

    def line(cells: list[str]) -> str:
        return " ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

    return [line(block.columns), line(["-" * len(c) for c in block.columns]), *(line(r) for r in block.rows)]


def shape_output(values: list[Any]) -> list[Block]:
    """Output values as blocks a person reads: runs of plain values as lines, runs of objects of one kind
    (same type, same properties) as a table, or as `Name: value` records when they have many properties."""
    blocks: list[Block] = []
    lines: list[str] = []
    group: list[RemoteObject | dict[str, Any]] = []

    def flush() -> None:
        if lines:
            blocks.append(TextBlock(list(lines)))
            lines.clear()
        if group:
            blocks.extend(_objects_block(list(group)))
            group.clear()

    for value in values:
        text = _scalar_text(value)
        if text is not None:
            if group:
                flush()
            lines.extend(text.splitlines() or [""])
            continue
        assert isinstance(value, (RemoteObject, dict))
        if lines or (group and _kind(group[0]) != _kind(value)):
            flush()
        group.append(value)
    flush()
    return blocks


__all__ = ["Block", "RecordBlock", "TableBlock", "TextBlock", "block_lines", "format_value", "shape_output"]
