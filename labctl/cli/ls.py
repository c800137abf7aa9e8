"""labctl ls: every labctl lab on a host (or pool), read from the ownership tags of its VMs and switches."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.table import Table

from labctl.app.inventory import HostLabs, HostSpec, LabInstance, LabOnHost, journal_dirs, labs_on_hosts
from labctl.cli.common import handle_errors, load_lab_or_exit, out, prompt_secret

F = TypeVar("F", bound=Callable[..., Any])


def host_options(fn: F) -> F:
    """--host (repeatable) and what an https host needs; --labs names where journals count as at hand."""
    for option in reversed((
        click.option("--host", "hosts", multiple=True, metavar="H",
                     help="A host to look at: a `labctl sim serve` endpoint.json (or its --state folder), or an "
                          "https WinRM URI (with --username, --password-env, --fingerprint). Repeatable."),
        click.option("--username", help="User for the https --host values."),
        click.option("--password-env", metavar="VAR", help="Environment variable with that user's password."),
        click.option("--fingerprint", help="The https hosts' pinned certificate fingerprint (sha256:...)."),
        click.option("--labs", "labs_dirs", multiple=True, metavar="DIR",
                     type=click.Path(file_okay=False, exists=True),
                     help="A folder of lab files whose .labctl/ journals count as at hand (default: the lab "
                          "file's folder, else . and ./labs). Repeatable."),
    )):
        fn = option(fn)
    return fn


def host_specs(hosts: tuple[str, ...], username: str | None, password_env: str | None,
               fingerprint: str | None) -> list[HostSpec]:
    return [HostSpec(h, username, password_env, fingerprint) for h in hosts]


def size(n: int) -> str:
    if n >= 1024**3:
        return f"{n / 1024**3:.1f} GiB"
    if n >= 1024**2:
        return f"{n / 1024**2:.0f} MiB"
    return f"{n / 1024:.0f} KiB" if n else "0"


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s >= 86400:
        return f"{s // 86400}d {s % 86400 // 3600}h"
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 60}m" if s >= 60 else "<1m"


def states(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "-"


def host_title(h: HostLabs) -> str:
    return f"{h.host}{' [SIMULATED]' if h.simulated else ''} ({h.name})"


def _journal(inst: LabInstance) -> str:
    return "at hand" if inst.journal else "gone (orphaned)"


def labs_table(h: HostLabs, mark: str | None = None) -> Table:
    """One row per lab; a lab of several lab ids (copies) gets a row per copy below it."""
    table = Table(title=f"labs on {host_title(h)}", title_justify="left")
    for col in ("", "lab", "copies", "lab id", "VMs", "memory", "disk", "age", "journal"):
        table.add_column(col)

    def row(lab: LabOnHost, inst: LabInstance | None) -> None:
        now = h.read_at
        if inst is None:
            own = "*" if mark and lab.lab.lower() == mark.lower() else ""
            ids = lab.lab_ids[0] if len(lab.lab_ids) == 1 else f"{len(lab.lab_ids)} ids"
            copies = ",".join(map(str, lab.copies)) or "-"
            journal = _journal(lab.instances[0]) if len(lab.instances) == 1 else lab.journal
            table.add_row(own, lab.lab, copies, ids, f"{len(lab.vms)} ({states(lab.states)})",
                          size(lab.memory_bytes), size(lab.disk_bytes), age(lab.age_seconds(now)), journal)
        else:
            table.add_row("", "", f"  copy {inst.copy}" if inst.copy is not None else "  -", inst.lab_id,
                          f"{len(inst.vms)} ({states(inst.states)})", size(inst.memory_bytes),
                          size(inst.disk_bytes), age(inst.age_seconds(now)), _journal(inst))

    for lab in h.labs:
        row(lab, None)
        if len(lab.instances) > 1:
            for inst in lab.instances:
                row(lab, inst)
    return table


@click.command("ls")
@click.argument("lab_file", required=False, type=click.Path(exists=True, dir_okay=False))
@host_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def ls_cmd(lab_file: str | None, hosts: tuple[str, ...], username: str | None, password_env: str | None,
           fingerprint: str | None, labs_dirs: tuple[str, ...], as_json: bool) -> None:
    """Every labctl lab on LAB_FILE's host (or pool) and on each --host, from the ownership tags of its VMs and
    switches: copies, VMs, memory, disk, age, and whether its journal is at hand (LAB_FILE's own marked *)."""
    if lab_file is None and not hosts:
        raise click.UsageError("name a lab file (its host is listed) or --host H")
    lab = load_lab_or_exit(lab_file) if lab_file else None
    dirs = journal_dirs(lab_file, labs_dirs)
    listing = labs_on_hosts(lab, host_specs(hosts, username, password_env, fingerprint), dirs,
                            prompt_secret if sys.stdin.isatty() else None)
    if as_json:
        out.print_json(json.dumps({"hosts": [h.to_json() for h in listing],
                                   "journals_from": [str(d / ".labctl") for d in dirs]}, default=str))
        return
    for h in listing:
        if not h.labs:
            out.print(f"No labctl lab on {host_title(h)}.")
            continue
        out.print(labs_table(h, lab.name if lab is not None else None))
    out.print("journals looked up in: " + ", ".join(str(d / ".labctl") for d in dirs))
