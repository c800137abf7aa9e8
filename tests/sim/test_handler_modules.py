"""The simulator loads every module that registers cmdlet handlers (hvsim.server.HANDLER_MODULES)."""

from __future__ import annotations

import ast
from pathlib import Path

from hvsim.server import HANDLER_MODULES, load_handlers

HVSIM = Path(__file__).resolve().parents[2] / "hvsim"


def _registers_cmdlets(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef):
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and isinstance(deco.func, ast.Name) and deco.func.id == "cmdlet":
                    return True
    return False


def test_every_module_with_cmdlet_handlers_is_loaded() -> None:
    found = set()
    for path in HVSIM.rglob("*.py"):
        if _registers_cmdlets(path):
            found.add(".".join(path.relative_to(HVSIM.parent).with_suffix("").parts))
    assert found == set(HANDLER_MODULES)
    assert load_handlers() == list(HANDLER_MODULES)
