"""`# labctl-include:` lines: lib files spliced in, nested, each once, cycles refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labctl.errors import TemplateError
from labctl.guest.steps import expand_includes, load_step


def _lib(tmp_path: Path, **files: str) -> Path:
    lib = tmp_path / "lib"
    lib.mkdir()
    for name, text in files.items():
        (lib / f"{name.replace('_', '-')}.ps1").write_text(text)
    return lib


def test_nested_includes_expand_once_each(tmp_path: Path) -> None:
    lib = _lib(tmp_path, a="# labctl-include: b.ps1\nfunction A {}\n", b="function B {}\n")
    text = expand_includes("param()\n# labctl-include: a.ps1\n# labctl-include: b.ps1\nA\n", lib, tmp_path / "s.ps1")
    assert text.count("function B {}") == 1 and text.count("function A {}") == 1
    assert text.index("function B {}") < text.index("function A {}") < text.index("\nA\n")
    assert "# (b.ps1 is included above)" in text


def test_an_include_cycle_is_a_template_error_naming_the_chain(tmp_path: Path) -> None:
    lib = _lib(tmp_path, a="# labctl-include: b.ps1\n", b="# labctl-include: a.ps1\n")
    with pytest.raises(TemplateError, match=r"include cycle a\.ps1 -> b\.ps1 -> a\.ps1"):
        expand_includes("# labctl-include: a.ps1\n", lib, tmp_path / "s.ps1")


def test_a_missing_include_names_the_file_and_the_lib(tmp_path: Path) -> None:
    lib = _lib(tmp_path)
    with pytest.raises(TemplateError, match=r"includes gone\.ps1, which is not in"):
        expand_includes("# labctl-include: gone.ps1\n", lib, tmp_path / "s.ps1")


def test_the_docker_steps_share_one_preamble() -> None:
    for name in ("docker-cli", "image-load", "image-pull", "image-save", "isolation-demo", "verify-isolation"):
        script = load_step(name).script
        assert script.count("function Invoke-NativeCommand") == 1 and script.count("function Get-DockerPath") == 1
        assert not re.search(r"^# labctl-include:", script, re.MULTILINE), name  # all expanded, nested ones too
        assert script.count("Set-StrictMode -Version Latest") == 1, name
