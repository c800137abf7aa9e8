"""labctl destroy: remove exactly what the lab created."""

from __future__ import annotations

import sys

import click

from labctl.app.destroy import destroy_lab
from labctl.cli.common import StageProgress, handle_errors, load_lab_or_exit, out, prompt_secret
from labctl.errors import DestroyIncompleteError


@click.command("destroy")
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@handle_errors
def destroy_cmd(lab_file: str, yes: bool) -> None:
    """Remove the VMs, disks, switch and NAT that LAB_FILE's lab created; nothing else."""
    lab = load_lab_or_exit(lab_file)
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("destroy asks for confirmation; pass --yes when there is no terminal")
        click.confirm(f"Remove lab {lab.name} ({len(lab.vms)} VMs) and everything it created?", abort=True)
    progress = StageProgress([vm.name for vm in lab.vms])
    report, host = destroy_lab(lab, progress, prompt_secret if sys.stdin.isatty() else None)
    if report.nothing_to_do:
        out.print(f"Nothing to remove: lab {lab.name} has nothing on {host}.")
    elif report.removed:
        out.print(f"Removed from {host} (each checked on the host):")
        for item in report.removed:
            out.print(f"  - {item}")
    for item in report.kept:
        out.print(f"  kept {item}")
    if report.remaining:
        raise DestroyIncompleteError(report.remaining, hint="the journal keeps what is left; fix the reason shown "
                                     "(or wait for the host), then run destroy again")
