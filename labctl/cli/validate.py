"""labctl validate: every problem of a lab file at once, as file:line: field: message."""

from __future__ import annotations

import json
import sys

import click

from labctl.app import labfile
from labctl.cli.common import EXIT_USAGE, handle_errors, out


@click.command("validate")
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False), required=False)
@click.option("--json", "as_json", is_flag=True, help="Problems as JSON objects.")
@click.option("--schema", is_flag=True, help="Print the lab file's JSON schema (for editors) and exit.")
@handle_errors
def validate_cmd(lab_file: str | None, as_json: bool, schema: bool) -> None:
    """Check LAB_FILE (and its answer-file templates) without touching any host."""
    if schema:
        # click.echo, not rich: byte for byte what schemas/lab.schema.json holds (redirect it there to refresh it).
        click.echo(labfile.schema(), nl=False)
        return
    if lab_file is None:
        raise click.UsageError("give a LAB_FILE (or --schema)")
    found = labfile.problems(lab_file)
    problems = [text for _, text in found]
    records = [{"file": p.file, "line": p.line, "field": p.field, "message": p.message} for p, _ in found]
    if as_json:
        out.print_json(json.dumps({"file": lab_file, "valid": not problems, "problems": records}))
    elif problems:
        for line in problems:
            out.print(line)
        out.print(f"{len(problems)} problem(s).")
    else:
        out.print(f"{lab_file}: valid.")
    if problems:
        sys.exit(EXIT_USAGE)
