"""labctl report: draw the last run's timeline (a Gantt chart of every VM's stages) as SVG or HTML."""

from __future__ import annotations

from pathlib import Path

import click

from labctl.app import report as report_case
from labctl.cli.common import handle_errors, load_lab_or_exit, out


@click.command("report")
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(report_case.FORMATS), default="html", show_default=True,
              help="A self-contained HTML page, or a standalone SVG image.")
@click.option("--output", "output", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Where to write it (default: .labctl/<lab>/report.<format> beside the lab file).")
@handle_errors
def report_cmd(lab_file: str, fmt: report_case.Format, output: str | None) -> None:
    """Draw the timeline of the last `labctl up` of LAB_FILE: where the time went, VM by VM."""
    lab = load_lab_or_exit(lab_file)
    result = report_case.report(lab, fmt, Path(output) if output else None)
    out.print(str(result.path))
