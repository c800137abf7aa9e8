"""Any lab file gets a clear answer: mutated lab files through `labctl validate` and `labctl render`.

Whatever the bytes (deep nesting, null documents, wrong types, huge numbers, unicode, control characters,
invalid UTF-8, binary junk, duplicate keys, aliases), labctl exits 0 or 2, never with a traceback; --json is
always valid JSON; every problem names the file and, where the input has lines, a line within it; text output
prints file:line literally (no markup, no emoji codes).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from clirun import labctl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labctl.resources import resource_dir

REPO = Path(__file__).resolve().parents[2]
SEEDS = [p.read_text(encoding="utf-8") for p in sorted((resource_dir("labs")).glob("*.yaml"))]

odd_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**30, max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True), odd_text,
    st.sampled_from(["", "~", "[bold]x[/]", ":100:", "GiB", "4GiB", "-1", "0", "10.0.0.0/99", "web{n:02d}",
                     "{n}", "{n:999999d}", "\u202e", "a" * 300, "\x00", "sim", "ws2022-core"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(odd_text, st.sampled_from(
        ["name", "vms", "count", "memory", "ip", "host", "network", "subnet", "defaults", "groups"])), inner,
        max_size=4)), max_leaves=12)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


def _replace(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        return {k: (_replace(v, rest, value) if k == head else v) for k, v in data.items()}
    return [(_replace(v, rest, value) if i == head else v) for i, v in enumerate(data)]


@st.composite
def structured(draw: st.DrawFn) -> bytes:
    """A shipped lab with one value replaced by something odd, written back as YAML."""
    data = yaml.safe_load(draw(st.sampled_from(SEEDS)))
    path = draw(st.sampled_from(_paths(data)))
    mutated = _replace(data, path, draw(values))
    text = yaml.safe_dump(mutated, allow_unicode=True, sort_keys=False)
    return text.encode("utf-8", "surrogatepass")


@st.composite
def textual(draw: st.DrawFn) -> bytes:
    """A shipped lab's bytes cut, spliced, duplicated or laced with junk."""
    data = draw(st.sampled_from(SEEDS)).encode("utf-8")
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["junk", "cut", "dup-line", "nest", "alias", "bytes", "tab", "bom"]))
        if kind == "junk":
            data = data[:at] + draw(st.binary(max_size=12)) + data[at:]
        elif kind == "cut":
            data = data[:at]
        elif kind == "dup-line":
            lines = data.splitlines(keepends=True)
            if lines:
                i = draw(st.integers(0, len(lines) - 1))
                lines.insert(i, lines[i])
                data = b"".join(lines)
        elif kind == "nest":
            depth = draw(st.integers(1, 600))
            data = data[:at] + b"[" * depth + b"]" * depth + data[at:]
        elif kind == "alias":
            data = b"a: &x [*x]\n" + data if draw(st.booleans()) else data + b"\nz: &y {k: *y}\n"
        elif kind == "bytes":
            data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\x1b[31m", b"\x85", b"\xe2\x80"]))\
                + data[at:]
        elif kind == "tab":
            data = data[:at] + b"\t" + data[at:]
        else:
            data = b"\xef\xbb\xbf" + data
    return data


fixed = st.sampled_from([b"", b"~\n", b"---\n", b"null\n", b"--- ~\n...\n", b"[]\n", b"42\n", b"'x'\n",
                         b"a: 1\n---\nb: 2\n", b"\xff\xfe\x00\x00", b"\x00" * 20, "é: ü\n".encode("utf-16"),
                         b"name: " + b"9" * 5000 + b"\n", b"a: " + b"[" * 500 + b"]" * 500 + b"\n"])


def _check(tmp: Path, data: bytes) -> None:
    # A file name with markup and emoji codes in it: they must come out as written.
    path = tmp / "labs" / "lab [bold]:100:.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    lines = data.count(b"\n") + 1
    for args in (["validate", "--json", str(path)], ["validate", str(path)], ["render", str(path)]):
        result = labctl(*args, catch_exceptions=True)
        shown = result.output
        assert result.exit_code in (0, 2), f"{args[:2]}: exit {result.exit_code}\n{shown}\n{result.exc_info}"
        assert "Traceback" not in shown
        if result.exception is not None:
            assert isinstance(result.exception, SystemExit), repr(result.exception)
        if args[1] == "--json":
            doc = json.loads(result.stdout)
            assert doc["valid"] is (result.exit_code == 0)
            for problem in doc["problems"]:
                assert problem["file"] == str(path) or problem["file"].endswith(".yaml"), problem
                line = problem["line"]
                assert line is None or (isinstance(line, int) and 1 <= line <= lines + 1), problem
                if problem["file"] == str(path) and line is not None:
                    texts[(problem["file"], line)] = problem["message"]
        elif args[0] == "validate" and result.exit_code == 2:
            for (file, line) in texts:
                assert f"{file}:{line}:" in shown, f"{file}:{line}: not printed literally:\n{shown}"
    texts.clear()


texts: dict[tuple[str, int], str] = {}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.one_of(structured(), textual(), fixed))
def test_any_lab_file_gets_a_clear_answer(data: bytes, tmp_path: Path) -> None:
    _check(tmp_path, data)


@pytest.mark.parametrize("data", [
    b"a: " + b"[" * 500 + b"]" * 500 + b"\n", b"~\n", b"---\n", b"null\n", b"name: \xff\xfe\n", b"name: a\x01b\n",
    b"\n" * 99 + b"name: [unclosed\n", b"\n" * 1233 + b"vms: 1\n"])
def test_the_reported_cases_get_a_line_and_no_traceback(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_bytes(data)
    result = labctl("validate", "--json", str(path), catch_exceptions=True)
    assert result.exit_code == 2, result.output
    problems = json.loads(result.stdout)["problems"]
    assert problems and all(p["line"] for p in problems), problems
    text = labctl("validate", str(path), catch_exceptions=True).output
    assert re.search(re.escape(str(path)) + r":\d+: ", text), text
    assert "💯" not in text and "<unicode string>" not in text
