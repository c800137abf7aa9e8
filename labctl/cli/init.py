"""labctl init: write the example labs (quickstart, isolation-demo, classroom) into DIR/labs/."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.text import Text

from labctl.app.init import init
from labctl.cli.common import handle_errors, out


@click.command("init")
@click.argument("directory", required=False, default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--images", is_flag=True,
              help="Also write the shipped image catalog into DIRECTORY/images/ (edit base_disk for a real host).")
@click.option("--templates", is_flag=True,
              help="Also write the shipped answer-file templates into DIRECTORY/templates/unattend/.")
@click.option("--force", is_flag=True, help="Overwrite files that differ from the shipped ones.")
@handle_errors
def init_cmd(directory: Path, images: bool, templates: bool, force: bool) -> None:
    """Write the example labs into DIRECTORY/labs/ (default: the current directory) to start from.

    A file you changed is kept unless --force is given. The labs use the templates and image catalog
    shipped with labctl; an images/ or templates/ directory beside the labs/ folder (--images, --templates
    write copies there) overrides them.
    """
    written = init(directory, force=force, images=images, templates=templates)
    for item in written:
        note = " (differs from the shipped one; --force overwrites it)" if item.action == "kept" else ""
        out.print(Text(f"{item.action:<11} {item.path}{note}"))
    quickstart = next(w.path for w in written if w.path.stem == "quickstart")
    shown = os.path.relpath(quickstart) if not quickstart.is_absolute() else str(quickstart)
    out.print(Text(f"next: labctl up {shown}   (on the embedded simulator; no Hyper-V host needed)"))
