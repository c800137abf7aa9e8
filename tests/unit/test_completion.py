"""Tab completion: each shell's script, and completion answering for a half-typed command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tree_sitter_powershell as tsp
from clirun import labctl
from tree_sitter import Language, Parser

LABCTL = Path(sys.executable).with_name("labctl")


def _complete(shell: str, words: str, cword: int) -> list[str]:
    env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(cword), "_LABCTL_COMPLETE": f"{shell}_complete"}
    return subprocess.run([str(LABCTL)], env=env, capture_output=True, text=True, timeout=60).stdout.splitlines()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "powershell"])
def test_every_shell_gets_a_script_naming_labctl(shell: str) -> None:
    result = labctl("completion", shell)
    assert result.exit_code == 0 and "labctl" in result.output and "_LABCTL_COMPLETE" in result.output


def test_an_unknown_shell_is_a_usage_error() -> None:
    result = labctl("completion", "tcsh")
    assert result.exit_code == 2 and "tcsh" in result.output


def test_bash_completes_verbs_through_its_script(tmp_path: Path) -> None:
    """The script bash sources, driven as bash drives it: COMPREPLY after `labctl st<TAB>`."""
    script = tmp_path / "labctl.bash"
    script.write_text(labctl("completion", "bash").output)
    probe = (f"PATH={LABCTL.parent}:$PATH; source {script}; COMP_WORDS=(labctl st); COMP_CWORD=1; "
             "_labctl_completion labctl; printf '%s\\n' \"${COMPREPLY[@]}\"")
    done = subprocess.run([shutil.which("bash") or "bash", "--norc", "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.split() == ["start", "status", "stop"], done.stderr


def test_powershell_protocol_answers_verbs_and_options() -> None:
    assert _complete("powershell", "labctl st", 1) == ["plain,start", "plain,status", "plain,stop"]
    assert "plain,--json" in _complete("powershell", "labctl status --", 2)
    assert "plain,serve" in _complete("powershell", "labctl sim ", 2)


def test_the_powershell_script_parses() -> None:
    text = labctl("completion", "powershell").output
    tree = Parser(Language(tsp.language())).parse(text.encode())
    assert not tree.root_node.has_error
    # pipx on Windows installs labctl.exe: the completer answers to both spellings.
    assert "Register-ArgumentCompleter -Native -CommandName 'labctl', 'labctl.exe'" in text
