"""labctl docker: run the docker CLI in a lab VM (no RDP, no open Docker port)."""

from __future__ import annotations

import sys

import click
from rich.text import Text

from labctl.app import guest
from labctl.cli.common import EXIT_FAILED, err, handle_errors, load_lab_or_exit, out, prompt_secret
from labctl.cli.exec import GUEST_ARGS, guest_words
from labctl.cli.guestio import print_command_error, print_errors, print_simulated_note
from labctl.errors import RemoteCommandError


@click.command("docker", context_settings=GUEST_ARGS)
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("vm")
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED, required=True)
@handle_errors
def docker_cmd(lab_file: str, vm: str, arguments: tuple[str, ...]) -> None:
    """Run `docker ARGUMENTS...` in VM of LAB_FILE and exit with docker's exit code.

    \b
      labctl docker LAB VM -- run --rm mcr.microsoft.com/windows/nanoserver:ltsc2022 cmd /c echo hi
      labctl docker LAB VM -- ps -a
      labctl docker LAB VM -- images

    The arguments go to docker one by one (never through a shell). docker's output goes to stdout, its
    error output to stderr. PowerShell Direct has no terminal, where docker refuses `-it`: labctl drops the
    `-t` of `-it` (before the image) so the command runs, without a terminal.
    Exit code: docker's own, or 1 when docker could not be run in the guest (stderr says why).
    """
    lab = load_lab_or_exit(lab_file)
    target = guest.find_vm(lab, vm)
    words = guest_words(arguments)
    if not words:
        raise click.UsageError("give docker's arguments after --, e.g. -- ps -a")
    words, dropped_tty = guest.without_tty(words)
    if dropped_tty:
        err.print(Text("note: PowerShell Direct gives docker no terminal, where it refuses -it (\"the input device "
                       "is not a TTY\"): -t dropped, -i kept", style="dim"))
    try:
        run = guest.run_step(lab, target, "docker-cli", [words],
                                prompt=prompt_secret if sys.stdin.isatty() else None)
    except RemoteCommandError as exc:
        print_command_error(exc, lab_file)
        sys.exit(EXIT_FAILED)
    result = guest.parse_docker(run.output)
    print_errors(run.errors, run.warnings, lab_file)
    if result is None:
        if not run.errors:
            err.print(Text("error: the docker-cli step returned nothing (no ExitCode, Output, Error)", style="red"))
        sys.exit(EXIT_FAILED)
    for line in result.output:
        out.print(Text(line))
    for line in result.error:
        err.print(Text(line))
    print_simulated_note(run.simulated)
    if not 0 <= result.exit_code <= 255:
        # Windows exit codes are 32-bit (0xC000013A...); a Unix exit status keeps only 8 bits, which could read 0.
        err.print(Text(f"docker exited with code {result.exit_code}"))
        sys.exit(EXIT_FAILED)
    sys.exit(result.exit_code)
