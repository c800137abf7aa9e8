"""Shared helpers for the pure-core unit tests."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def write_lab(tmp_path: Path) -> Callable[[str], Path]:
    """Write a lab file (dedented) into a temp dir; images/templates come from labctl's own."""

    def write(text: str, name: str = "lab.yaml") -> Path:
        p = tmp_path / name
        p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return p

    return write
