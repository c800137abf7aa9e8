"""YAML loading that remembers where every value came from, and pydantic errors turned into Problems.

The YAML is composed into nodes (``yaml.compose`` with the safe loader) and built into plain Python values
by hand, so each mapping key and list item keeps its line. A ``path`` is a tuple of mapping keys and list
indices (``("vms", 1, "memory")``); ``LineMap`` answers "which line wrote this path".
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from labctl.errors import Problem

PathT = tuple[str | int, ...]
MAX_NODES = 200_000
MAX_DEPTH = 64
MAX_FILE_BYTES = 4 * 1024 * 1024


@dataclass
class LineMap:
    """Line numbers (1-based) of every key and list item of one YAML document."""

    lines: dict[PathT, int] = field(default_factory=dict)

    def line(self, path: Sequence[str | int]) -> int | None:
        """Line of ``path``, or of its nearest written ancestor (a missing key reports its parent's line)."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get(())


@dataclass
class YamlSource:
    """One parsed YAML file: its data (None when unreadable), line map and the problems met on the way."""

    file: str
    data: Any
    lines: LineMap
    problems: list[Problem]

    def problem(self, path: Sequence[str | int], message: str) -> Problem:
        """A Problem at ``path`` in this file."""
        return Problem(self.file, self.lines.line(path), format_path(path), message)


def format_path(path: Sequence[str | int]) -> str:
    """``("vms", 1, "memory")`` -> ``vms[1].memory``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class _Loader(yaml.SafeLoader):
    """Safe loader; used only to compose nodes and to construct scalars."""


def _too_deep(text: str) -> tuple[int, int] | None:
    """(line, depth) where the nesting first passes MAX_DEPTH, found from the parser's events.

    PyYAML's composer recurses once per level, so a few hundred ``[`` would end in a RecursionError; its
    parser does not, so the depth is measured on the events before anything is composed.
    """
    loader = _Loader(text)
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    return (mark.line + 1 if mark is not None else 1), depth
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    finally:
        loader.dispose()
    return None


def _reader_problem(exc: yaml.reader.ReaderError, text: str, file: str) -> Problem:
    """A character YAML does not allow (a control character): its line and column in this file."""
    before = text[:exc.position]
    line = before.count("\n") + 1
    column = exc.position - (before.rfind("\n") + 1) + 1
    char = exc.character
    code = f"U+{ord(char):04X}" if isinstance(char, str) else f"0x{char:02X}"
    return Problem(file, line, "", f"character {code} at column {column} is not allowed in YAML "
                   "(a control character); delete it or write it as an escape in a double-quoted string")


def parse_yaml(text: str, file: str) -> YamlSource:
    """Parse one YAML document, keeping the line of every key and item. Never raises on bad YAML."""
    lines = LineMap()
    problems: list[Problem] = []
    try:
        deep = _too_deep(text)
        if deep is not None:
            problems.append(Problem(file, deep[0], "", f"nested more than {MAX_DEPTH} levels deep; a lab file "
                                    "needs a few"))
            return YamlSource(file, None, lines, problems)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as exc:
        problems.append(_reader_problem(exc, text, file))
        return YamlSource(file, None, lines, problems)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and (mark is None or mark.line >= text.count("\n")):
            # Hit the end of the file (an unclosed bracket or quote): the opening is where to look.
            mark = exc.context_mark
        line = mark.line + 1 if mark else None
        what = exc.problem or exc.context or "invalid YAML"
        problems.append(Problem(file, line, "", f"YAML syntax error: {what}"))
        return YamlSource(file, None, lines, problems)
    except yaml.YAMLError as exc:
        problems.append(Problem(file, None, "", f"YAML error: {' '.join(str(exc).split())}"))
        return YamlSource(file, None, lines, problems)
    except RecursionError:  # a backstop: _too_deep should have caught it
        problems.append(Problem(file, None, "", "nested too deeply to read"))
        return YamlSource(file, None, lines, problems)
    if node is None:
        problems.append(Problem(file, 1, "", "the file is empty"))
        return YamlSource(file, None, lines, problems)
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        problems.append(Problem(file, node.start_mark.line + 1, "",
                                "the document is null (empty, ~ or null): a lab file is a mapping with name, "
                                "network, vms, ..."))
        return YamlSource(file, None, lines, problems)
    lines.lines[()] = node.start_mark.line + 1
    builder = _Builder(file, lines, problems, _Loader(""))
    data = builder.build(node, ())
    return YamlSource(file, data, lines, problems)


def decode_text(data: bytes, file: str) -> tuple[str | None, Problem | None]:
    """The text of a file: UTF-8 (a byte order mark allowed), or UTF-16 with its BOM as Notepad saves it."""
    encoding = "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    try:
        return data.decode(encoding), None
    except UnicodeDecodeError as exc:
        before = data[:exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        bad = data[exc.start:exc.end][:4].hex(" ")
        return None, Problem(file, line, "", f"not {encoding.split('-')[0].upper()}-{encoding.split('-')[1]} "
                             f"text: byte(s) {bad} at column {column}; save the file as UTF-8")


class _Builder:
    def __init__(self, file: str, lines: LineMap, problems: list[Problem], constructor: yaml.SafeLoader):
        self.file = file
        self.lines = lines
        self.problems = problems
        self.constructor = constructor
        self.depth = 0
        self.count = 0
        self.stopped = False

    def build(self, node: yaml.Node, path: PathT) -> Any:
        self.depth += 1
        self.count += 1
        try:
            # Aliases are expanded as they are built: cap depth (a recursive alias) and size (nested aliases
            # multiplying, the "billion laughs") so a hostile file cannot hang validation.
            if self.depth > 100 or self.count > MAX_NODES:
                if not self.stopped:
                    self.stopped = True
                    self.problems.append(Problem(self.file, node.start_mark.line + 1, format_path(path),
                                                 "the document is too large or too deep (recursive aliases?)"))
                return None
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                out = []
                for i, item in enumerate(node.value):
                    self.lines.lines[(*path, i)] = item.start_mark.line + 1
                    out.append(self.build(item, (*path, i)))
                return out
            return self._scalar(node, path)
        finally:
            self.depth -= 1

    def _scalar(self, node: yaml.Node, path: PathT) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            # ValueError/OverflowError: PyYAML builds ints, floats and dates with Python's own constructors
            # (a 5000-digit number, 2024-13-45).
            msg = getattr(exc, "problem", None) or " ".join(str(exc).split())
            if "Exceeds the limit" in msg:
                msg = f"a number of {len(str(getattr(node, 'value', '')))} digits is too long"
            self.problems.append(Problem(self.file, node.start_mark.line + 1, format_path(path),
                                         f"cannot read value: {msg}"))
            return None

    def _mapping(self, node: yaml.MappingNode, path: PathT) -> dict[str, Any]:
        try:
            self.constructor.flatten_mapping(node)  # YAML merge keys (<<: *anchor)
        except yaml.YAMLError as exc:
            msg = getattr(exc, "problem", None) or str(exc)
            self.problems.append(Problem(self.file, node.start_mark.line + 1, format_path(path), msg))
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(Problem(self.file, line, format_path(path), "a key must be a plain name"))
                continue
            key = self._scalar(key_node, path)
            if not isinstance(key, str):
                # `1: x` or `yes: x` would silently become int/bool keys; report them as the text written.
                key = str(key_node.value)
            if key in out:
                self.problems.append(Problem(self.file, line, format_path((*path, key)),
                                             f"duplicate key (first written on line {first_line[key]})"))
                continue
            first_line[key] = line
            self.lines.lines[(*path, key)] = line
            out[key] = self.build(value_node, (*path, key))
        return out


# --- pydantic errors -> Problems ---------------------------------------------------------------------


def data_path(data: Any, loc: Sequence[str | int]) -> PathT:
    """Map a pydantic ``loc`` onto the data: drop union/tag labels that are not keys or indices."""
    out: list[str | int] = []
    cur = data
    for part in loc:
        in_dict = isinstance(cur, dict) and isinstance(part, str) and part in cur
        in_list = isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)
        if in_dict or in_list:
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, dict) and isinstance(part, str) and not _is_label(part):
            out.append(part)  # a missing or unknown key: keep it, there is nothing below it
            cur = None
        # else: a union member label such as "function-after[...]" or a discriminator tag
    return tuple(out)


def _is_label(part: str) -> bool:
    return any(c in part for c in "[]()'") or part in ("sim", "remote")


def _unwrap_models(annotation: Any) -> list[type[BaseModel]]:
    """BaseModel classes reachable from an annotation through Optional/Annotated/list/dict/Union."""
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if origin is typing.Annotated:
        return _unwrap_models(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in _unwrap_models(a)]
    return []


def _container_models(annotation: Any) -> tuple[str | None, list[type[BaseModel]]]:
    """For list[X]/dict[str, X] annotations: ("list"|"dict", models of X)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _container_models(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for a in typing.get_args(annotation):
            kind, models = _container_models(a)
            if kind:
                return kind, models
        return None, []
    if origin is list:
        return "list", _unwrap_models(typing.get_args(annotation)[0])
    if origin is dict:
        return "dict", _unwrap_models(typing.get_args(annotation)[1])
    return None, []


def model_at(root: type[BaseModel], path: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``path`` (used to list allowed keys)."""
    models: list[type[BaseModel]] = [root]
    i = 0
    parts = list(path)
    while i < len(parts):
        part = parts[i]
        if not models or not isinstance(part, str):
            return None
        model = models[0]
        info = model.model_fields.get(part)
        if info is None:
            return None
        kind, inner = _container_models(info.annotation)
        if kind and i + 1 < len(parts):
            models = inner
            i += 2
            continue
        models = _unwrap_models(info.annotation)
        i += 1
    return models[0] if models else None


def allowed_keys(model: type[BaseModel]) -> list[str]:
    """Keys a model accepts, in declaration order."""
    return [info.alias or name for name, info in model.model_fields.items()]


def problems_from_validation(
    error: ValidationError,
    source: YamlSource,
    root_model: type[BaseModel],
    *,
    prefix: PathT = (),
    skip: Iterable[PathT] = (),
) -> list[Problem]:
    """Translate every pydantic error into a file:line: field: message Problem."""
    skipped = set(skip)
    out: list[Problem] = []
    seen: set[tuple[int | None, str, str]] = set()
    sub = source.data
    for p in prefix:
        sub = sub[p]
    # Inputs are read only for their type: a value is never echoed (it could be a secret).
    for err in error.errors(include_url=False, include_input=True):
        rel = data_path(sub, err["loc"])
        path = (*prefix, *rel)
        if path in skipped:
            continue
        kind = err["type"]
        message = str(err["msg"])
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        got = _type_name(err.get("input"))
        if kind in ("model_type", "model_attributes_type", "dict_type"):
            message = f"expected a mapping of keys and values, got {got}"
            if path and path[0] == "vms" and len(path) == 2:
                message += " (each VM is written like `- name: web01`)"
        elif kind in ("int_type", "bool_type", "string_type", "list_type", "float_type"):
            message = f"{message}, got {got}"
        if kind == "missing":
            message = "required key is missing"
        elif kind == "string_pattern_mismatch":
            model = model_at(root_model, rel[:-1])
            info = model.model_fields.get(str(rel[-1])) if model and rel else None
            if info is not None and info.description:
                message = f"not a valid value: {info.description}"
        elif kind == "extra_forbidden":
            model = model_at(root_model, rel[:-1])
            keys = allowed_keys(model) if model else []
            message = "unknown key"
            close = difflib.get_close_matches(str(rel[-1]), keys, n=1) if keys else []
            if close:
                message += f" (did you mean {close[0]!r}?)"
            if keys:
                message += f"; allowed: {', '.join(keys)}"
        problem = source.problem(path, message)
        dedup = (problem.line, problem.field, problem.message)
        if dedup not in seen:
            seen.add(dedup)
            out.append(problem)
    return out


def _type_name(value: Any) -> str:
    names = {str: "a string", int: "a number", float: "a number", bool: "true/false", list: "a list",
             dict: "a mapping", type(None): "nothing (null)"}
    return names.get(type(value), type(value).__name__)


def partial_validate(model: type[BaseModel], data: Any) -> tuple[BaseModel | None, set[str]]:
    """Validate ``data`` as ``model``, dropping top-level keys that fail until the rest validates.

    Returns the model (None if even that fails, e.g. a required key is bad) and the keys dropped. Used so
    that one bad field does not hide the checks that need the good ones.
    """
    if not isinstance(data, dict):
        return None, set()
    current = dict(data)
    dropped: set[str] = set()
    for _ in range(len(current) + 1):
        try:
            return model.model_validate(current), dropped
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"] and e["type"] != "missing"}
            bad &= set(current)
            if not bad:
                return None, dropped
            for key in bad:
                current.pop(key, None)
            dropped |= bad
    return None, dropped
