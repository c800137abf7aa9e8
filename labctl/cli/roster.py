"""labctl roster: per copy and VM, the host, the address, the user (and password, on request) and RDP."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from labctl.app.roster import roster, write_rdp_files
from labctl.cli.common import copy_option, handle_errors, load_lab_or_exit, out, prompt_secret

FIELDS = ("copy", "host", "address", "vm", "ip", "user", "password", "state", "rdp", "reachable")


@click.command("roster")
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@copy_option
@click.option("--json", "as_json", is_flag=True,
              help="A JSON list of entries (copy, host, vm, ip, user, password, rdp).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row, e.g. for a mail merge.")
@click.option("--passwords", is_flag=True,
              help="Show each copy's guest password (otherwise left out). The roster is the only place labctl "
                   "shows them; they are never logged.")
@click.option("--check", is_flag=True, help="Probe every published RDP endpoint (RDP connection negotiation).")
@click.option("--rdp-files", "rdp_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Write one .rdp file per VM with published RDP into DIR (no passwords in them).")
@handle_errors
def roster_cmd(lab_file: str, copy: int | None, as_json: bool, as_csv: bool, passwords: bool, check: bool,
               rdp_dir: str | None) -> None:
    """List every VM of LAB_FILE (each copy's) and how a student reaches it."""
    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")
    lab = load_lab_or_exit(lab_file, copy)
    result = roster(lab, passwords=passwords, check=check, prompt=prompt_secret if sys.stdin.isatty() else None)
    written = write_rdp_files(result.entries, Path(rdp_dir)) if rdp_dir else []
    rows = [e.to_json(passwords=passwords) for e in result.entries]
    if as_json:
        # Printed as plain text: a password is never markup (rich would interpret brackets).
        click.echo(json.dumps(rows, indent=2))
        return
    if as_csv:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(FIELDS), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row[k] is None else row[k] for k in FIELDS})
        click.echo(buf.getvalue(), nl=False)
        return
    title = f"roster of lab {lab.name} on {result.host}" + (" [SIMULATED]" if result.simulated else "")
    table = Table(title=Text(title))
    for col in ("copy", "host", "VM", "IP", "user", "password", "state", "RDP"):
        table.add_column(col)
    for e, row in zip(result.entries, rows, strict=True):
        rdp_cell = Text(e.rdp or "-")
        if e.reachable is not None:
            rdp_cell.append(" (answers)" if e.reachable else " (NO ANSWER)", style="green" if e.reachable else "red")
        table.add_row(Text(str(e.copy or "-")), Text(e.host or "-"), Text(e.vm), Text(e.ip), Text(e.user),
                      Text(str(row["password"]) if passwords and row["password"] else "(hidden: --passwords)"),
                      Text(e.state), rdp_cell)
    out.print(table)
    if any(e.rdp for e in result.entries) and result.keep_up:
        out.print(Text("The simulated host answers on these ports only while it runs; keep it up for students "
                       "with: " + " ; ".join(result.keep_up)))
    for path in written:
        out.print(Text(f"wrote {path}"))
    if not any(e.rdp for e in result.entries):
        out.print(Text("RDP is not published for this lab: set rdp: true in the lab file and run up, or connect "
                       "from the host to each VM's IP."))
