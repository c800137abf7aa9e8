"""labctl up: make the host match the lab file."""

from __future__ import annotations

import json
import sys

import click
from rich.table import Table
from rich.text import Text

from labctl.app import up as up_case
from labctl.cli.common import (
    EXIT_FAILED,
    StageProgress,
    copy_option,
    handle_errors,
    load_lab_or_exit,
    out,
    prompt_secret,
)
from labctl.engine.plan import Plan
from labctl.errors import ApplyError


def _parse_timeouts(values: tuple[str, ...]) -> dict[str, float]:
    result: dict[str, float] = {}
    for item in values:
        stage, sep, seconds = item.partition("=")
        try:
            if not sep:
                raise ValueError
            result[stage.strip()] = float(seconds)
        except ValueError:
            raise click.BadParameter(f"{item!r}: use STAGE=SECONDS, e.g. heartbeat=900", param_hint="--timeout")
    return result


def print_plan(the_plan: Plan, host: str, simulated: bool) -> None:
    """What will be added, changed and removed."""
    out.print(f"Plan for {host}{' [SIMULATED]' if simulated else ''}:")
    marks = {"add": "+", "change": "~", "start": ">", "remove": "-", "keep": "="}
    for c in the_plan.changes:
        detail = f"  ({c.detail})" if c.detail else ""
        out.print(f"  {marks[c.action]} {c.action:<6} {c.kind:<8} {c.name}{detail}")
    out.print(f"{the_plan.count('add')} to add, {the_plan.count('change') + the_plan.count('start')} to change, "
              f"{the_plan.count('remove')} to remove.")
    for r in the_plan.refusals:
        out.print(f"  refused: {r}")


@click.command("up")
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--max-workers", default=None, type=click.IntRange(1, 1024),
              help="Cap on VMs brought up at once (default: all of them; waiting VMs hold no host connection, "
                   "and the host's calls share at most 23 WinRM shells).")
@click.option("--dry-run", is_flag=True, help="Show the plan and stop (same as `labctl plan`).")
@click.option("--timeout", "timeouts", multiple=True, metavar="STAGE=SECONDS",
              help="Override a stage's timeout (running, heartbeat, ip, logon; docker: how long docker-install "
                   "waits for the daemon).")
@click.option("--timeout-scale", default=1.0, show_default=True, type=click.FloatRange(min=0.0001),
              help="Multiply every stage timeout (e.g. 0.01 for quick rehearsals on the simulator).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@copy_option
@handle_errors
def up_cmd(lab_file: str, max_workers: int | None, dry_run: bool, timeouts: tuple[str, ...], timeout_scale: float,
           as_json: bool, copy: int | None) -> None:
    """Create or converge the lab in LAB_FILE on its host."""
    lab = load_lab_or_exit(lab_file, copy)
    options = up_case.UpOptions(max_workers=max_workers, dry_run=dry_run, timeout_scale=timeout_scale,
                            timeouts=_parse_timeouts(timeouts))
    progress = StageProgress([vm.name for vm in lab.vms])
    prompt = prompt_secret if sys.stdin.isatty() else None
    with progress.show():
        result = up_case.up(lab, options, progress if not as_json else None, prompt)
    if dry_run:
        print_plan(result.plan, result.host, result.simulated)
        return
    report = result.report
    assert report is not None
    if as_json:
        out.print_json(json.dumps({
            "lab": lab.name, "host": result.host, "simulated": result.simulated,
            "changed": not report.nothing_changed, "host_steps": report.host_steps, "added": report.added,
            "changed_vms": report.changed, "removed": report.removed, "elapsed_seconds": round(result.elapsed, 3),
            "vms": {n: {"ok": o.ok, "stage": o.stage, "elapsed_seconds": round(o.elapsed, 3),
                        "error": o.error.message if o.error else None,
                        "cause": getattr(o.error, "cause", None)} for n, o in report.outcomes.items()},
            "simulated_clock": result.sim_clock, "notes": report.notes,
        }))
    else:
        table = Table(title=f"lab {lab.name} on {result.host}" + (" [SIMULATED]" if result.simulated else ""))
        for col in ("VM", "result", "stage", "elapsed", "cause"):
            table.add_column(col)
        for name in (vm.name for vm in lab.vms):
            o = report.outcomes.get(name)
            if o is None:
                continue
            cause = "" if o.ok else (getattr(o.error, "cause", None) or (o.error.message if o.error else ""))
            table.add_row(name, Text("ok", style="green") if o.ok else Text("FAILED", style="red"), o.stage,
                          f"{o.elapsed:.1f}s",
                          cause or "")
        out.print(table)
        if report.nothing_changed and not report.failed:
            out.print("Nothing to do: the lab already matches the file.")
        else:
            parts = [f"{len(report.host_steps)} host step(s)", f"{len(report.added)} VM(s) added",
                     f"{len(report.changed)} changed", f"{len(report.removed)} removed"]
            out.print(", ".join(parts) + f" in {result.elapsed:.1f}s.")
        for note in report.notes:
            out.print(f"note: {note}")
        for name, o in report.failed.items():
            if o.error is not None:
                out.print(Text.assemble((name, "red"), " failed at stage ", (o.stage, "bold"), f": {o.error.message}"))
                if getattr(o.error, "cause", None):
                    out.print(f"  likely cause: {o.error.cause}")  # type: ignore[attr-defined]
        if result.sim_clock:
            est = result.sim_clock.get("estimated_makespan_seconds", 0.0)
            out.print(Text(f"Simulated host: a real Hyper-V host would have taken about {est / 60:.1f} min "
                           f"(modeled, {result.sim_clock.get('profile')} profile).", style="dim"))
    if report.failed:
        failures = {n: o.error for n, o in report.failed.items() if o.error is not None}
        if as_json:
            sys.exit(EXIT_FAILED)
        raise ApplyError(failures)
