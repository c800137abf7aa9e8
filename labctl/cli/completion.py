"""labctl completion SHELL: the tab-completion script for bash, zsh, fish or PowerShell.

bash, zsh and fish are click's own completion; PowerShell (which click does not ship) is added here the
same way: a script registers a native argument completer that calls labctl back with the words typed so far.
"""

from __future__ import annotations

import os
from typing import Any

import click
from click.shell_completion import ShellComplete, add_completion_class, get_completion_class, split_arg_string

PROG = "labctl"
COMPLETE_VAR = "_LABCTL_COMPLETE"

# Register-ArgumentCompleter -Native hands the completer the command line as typed; labctl receives it in
# COMP_WORDS (with the cursor's word index in COMP_CWORD) and prints one candidate per line. PowerShell
# quoting: values with spaces come back quoted so the line stays one word each.
_SOURCE_POWERSHELL = """\
Register-ArgumentCompleter -Native -CommandName '%(prog_name)s', '%(prog_name)s.exe' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)
    $words = @($commandAst.CommandElements | ForEach-Object { $_.Extent.Text })
    $cword = $words.Count
    if ($wordToComplete -ne '') { $cword = $words.Count - 1 }
    $env:COMP_WORDS = $words -join ' '
    $env:COMP_CWORD = $cword
    $env:%(complete_var)s = 'powershell_complete'
    try {
        & %(prog_name)s | ForEach-Object {
            $type, $value = $_ -split ',', 2
            if ($type -eq 'plain') {
                $text = if ($value -match '\\s') { "'" + ($value -replace "'", "''") + "'" } else { $value }
                [System.Management.Automation.CompletionResult]::new($text, $value, 'ParameterValue', $value)
            }
        }
    } finally {
        Remove-Item -Path 'Env:\\COMP_WORDS', 'Env:\\COMP_CWORD', 'Env:\\%(complete_var)s' -ErrorAction SilentlyContinue
    }
}
"""


class PowerShellComplete(ShellComplete):
    """Shell completion for Windows PowerShell 5.1 and PowerShell 7 (Register-ArgumentCompleter -Native)."""

    name = "powershell"
    source_template = _SOURCE_POWERSHELL

    def get_completion_args(self) -> tuple[list[str], str]:
        words = split_arg_string(os.environ.get("COMP_WORDS", ""))
        cword = int(os.environ.get("COMP_CWORD", "0") or 0)
        args = words[1:cword]
        incomplete = words[cword] if cword < len(words) else ""
        return args, incomplete

    def format_completion(self, item: Any) -> str:
        # Files and directories: PowerShell's own path completion is better than a list from here.
        return f"{item.type},{item.value}"


add_completion_class(PowerShellComplete)

SHELLS = ("bash", "zsh", "fish", "powershell")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion_cmd(ctx: click.Context, shell: str) -> None:
    """Print the tab-completion script for SHELL (bash, zsh, fish or powershell).

    \b
    eval "$(labctl completion bash)"                              # bash: add to ~/.bashrc
    eval "$(labctl completion zsh)"                               # zsh: add to ~/.zshrc
    labctl completion fish | source                               # fish: config.fish
    labctl completion powershell | Out-String | Invoke-Expression  # PowerShell: add to $PROFILE
    """
    root = ctx.find_root().command
    cls = get_completion_class(shell)
    assert cls is not None  # every name in SHELLS is registered (click's three, PowerShell above)
    complete = cls(root, {}, PROG, COMPLETE_VAR)
    # click.echo: the script is evaluated by a shell and must come out byte for byte.
    click.echo(complete.source())
