"""The pure core (labctl/lab, labctl/render) imports no I/O layer: no transport, CLI, simulator or network."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LABCTL = Path(__file__).resolve().parents[2] / "labctl"
FORBIDDEN = ("pypsrp", "psrpcore", "spnego", "click", "rich", "requests", "httpx", "socket", "subprocess",
             "hvsim", "labctl.cli", "labctl.transport", "labctl.engine", "labctl.hyperv", "labctl.app")
FILES = sorted([*(LABCTL / "lab").glob("*.py"), *(LABCTL / "render").glob("*.py")])


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_pure_core_imports(path: Path) -> None:
    bad = sorted(m for m in _imports(path) if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))
    assert bad == [], f"{path.name} imports {bad}"


def test_render_does_not_import_lab_internals_backwards() -> None:
    # labctl.lab must not depend on labctl.render (render builds on lab, not the reverse).
    for path in (LABCTL / "lab").glob("*.py"):
        assert not any(m.startswith("labctl.render") for m in _imports(path)), path.name
