"""labctl plan: show what up would add, change and remove."""

from __future__ import annotations

import sys

import click

from labctl.app.up import plan_only
from labctl.cli.common import EXIT_REFUSED, copy_option, handle_errors, load_lab_or_exit, prompt_secret
from labctl.cli.up import print_plan


@click.command("plan")
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@copy_option
@handle_errors
def plan_cmd(lab_file: str, copy: int | None) -> None:
    """Compare LAB_FILE with the host and print the plan; changes nothing."""
    lab = load_lab_or_exit(lab_file, copy)
    the_plan, host, simulated = plan_only(lab, prompt_secret if sys.stdin.isatty() else None)
    print_plan(the_plan, host, simulated)
    if the_plan.refusals:
        sys.exit(EXIT_REFUSED)
