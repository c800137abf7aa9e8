"""labctl exec: run a PowerShell command in a lab VM over PowerShell Direct."""

from __future__ import annotations

import sys

import click

from labctl.app import guest
from labctl.cli.common import EXIT_FAILED, handle_errors, load_lab_or_exit, prompt_secret
from labctl.cli.guestio import print_blocks, print_command_error, print_errors, print_simulated_note
from labctl.cli.psformat import shape_output
from labctl.errors import RemoteCommandError

# Everything after VM belongs to the guest command, options included (`-Name x` is PowerShell's, not ours).
GUEST_ARGS = {"ignore_unknown_options": True, "allow_interspersed_args": False}


def guest_words(words: tuple[str, ...]) -> list[str]:
    """The words after VM without the `--` that separates them (kept by click once positionals began)."""
    return list(words[1:]) if words[:1] == ("--",) else list(words)


@click.command("exec", context_settings=GUEST_ARGS)
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("vm")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@handle_errors
def exec_cmd(lab_file: str, vm: str, command: tuple[str, ...]) -> None:
    """Run a PowerShell COMMAND in VM of LAB_FILE (PowerShell Direct through the host).

    \b
      labctl exec LAB VM -- hostname
      labctl exec LAB VM -- 'Get-Service docker | Select-Object Name, Status'

    The words after `--` are joined with spaces into one command text, which the guest runs as is (quote
    the whole command to keep PowerShell's own quotes). Strings print as lines, objects as a table or
    `Name : value` lines; errors go to stderr with their FullyQualifiedErrorId.
    Exit code 0, or 1 when the command failed (an error was written or thrown).
    """
    lab = load_lab_or_exit(lab_file)
    target = guest.find_vm(lab, vm)
    text = " ".join(guest_words(command)).strip()
    if not text:
        raise click.UsageError("give the PowerShell command after --, e.g. -- hostname")
    try:
        run = guest.run_step(lab, target, "exec", [text], prompt=prompt_secret if sys.stdin.isatty() else None)
    except RemoteCommandError as exc:
        print_command_error(exc, lab_file)
        sys.exit(EXIT_FAILED)
    print_blocks(shape_output(run.output))
    print_errors(run.errors, run.warnings, lab_file)
    print_simulated_note(run.simulated)
    if run.failed:
        sys.exit(EXIT_FAILED)
