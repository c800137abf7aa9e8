"""labctl render: show a VM's answer file with the password redacted."""

from __future__ import annotations

import click

from labctl.app import labfile
from labctl.cli.common import handle_errors, load_lab_or_exit, out


@click.command("render")
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("vm", required=False)
@handle_errors
def render_cmd(lab_file: str, vm: str | None) -> None:
    """Print the rendered unattend.xml of VM (every VM when omitted), password redacted."""
    rendered = labfile.answer_files(load_lab_or_exit(lab_file), vm)
    for name, text in rendered:
        if len(rendered) > 1:
            out.print(f"<!-- {name} -->")
        out.print(text)
