"""labctl stop and labctl start: every VM of a lab down gracefully, or up and ready."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from labctl.app import power
from labctl.app.power import DEFAULT_STOP_TIMEOUT, Timeouts, VmPower
from labctl.cli.common import (
    EXIT_FAILED,
    StageProgress,
    copy_option,
    handle_errors,
    load_lab_or_exit,
    out,
    prompt_secret,
)
from labctl.errors import ApplyError


def power_json(lab: str, host: str, simulated: bool, vms: dict[str, VmPower], elapsed: float,
               sim_clock: dict[str, Any] | None, **extra: Any) -> str:
    return json.dumps({"lab": lab, "host": host, "simulated": simulated, **extra,
                       "ok": all(v.ok for v in vms.values()), "elapsed_seconds": round(elapsed, 3),
                       "vms": {n: v.to_json() for n, v in vms.items()}, "simulated_clock": sim_clock}, default=str)


def print_vms(title: str, vms: dict[str, VmPower], sim_clock: dict[str, Any] | None) -> None:
    """One row per VM: what was done, its state now, and why when it was not the plain outcome."""
    table = Table(title=title)
    for col in ("VM", "result", "action", "state", "detail"):
        table.add_column(col)
    for name, v in vms.items():
        detail = v.detail if v.ok else (getattr(v.error, "cause", None) or v.detail)
        table.add_row(name, Text("ok", style="green") if v.ok else Text("FAILED", style="red"), v.action, v.state,
                      detail or "")
    out.print(table)
    for name, v in vms.items():
        if v.error is not None:
            out.print(Text.assemble((name, "red"), " failed at stage ", (v.stage, "bold"), f": {v.error.message}"))
    if sim_clock:
        est = sim_clock.get("estimated_makespan_seconds", 0.0)
        out.print(Text(f"Simulated host: a real Hyper-V host would have taken about {est / 60:.1f} min in all "
                       f"(modeled, {sim_clock.get('profile')} profile).", style="dim"))


def finish(vms: dict[str, VmPower], as_json: bool) -> None:
    """Exit 1 when a VM failed (the others finished), as up does."""
    failures = {n: v.error for n, v in vms.items() if not v.ok and v.error is not None}
    if failures or any(not v.ok for v in vms.values()):
        if as_json or not failures:
            sys.exit(EXIT_FAILED)
        raise ApplyError(failures)


def prompt_if_tty() -> Any:
    return prompt_secret if sys.stdin.isatty() else None


@click.command("stop")
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--timeout", "timeout", default=DEFAULT_STOP_TIMEOUT, show_default=True,
              type=click.FloatRange(min=0), metavar="SECONDS",
              help="How long guests get to shut down before the VMs still running are turned off.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@copy_option
@handle_errors
def stop_cmd(lab_file: str, timeout: float, as_json: bool, copy: int | None) -> None:
    """Shut every VM of LAB_FILE down through its guest; turn off only those still running after the timeout."""
    lab = load_lab_or_exit(lab_file, copy)
    progress = StageProgress([vm.name for vm in lab.vms])
    with progress.show():
        result = power.stop(lab, timeout=timeout, progress=None if as_json else progress, prompt=prompt_if_tty())
    if as_json:
        out.print_json(power_json(lab.name, result.host, result.simulated, result.vms, result.elapsed,
                                  result.sim_clock, timeout_seconds=timeout))
    else:
        print_vms(f"stop lab {lab.name} on {result.host}" + (" [SIMULATED]" if result.simulated else ""),
                  result.vms, result.sim_clock)
        for v in result.vms.values():
            if v.action == "turned off":
                out.print(f"note: {v.name} was turned off (power cut, not a shutdown): {v.detail}")
    finish(result.vms, as_json)


@click.command("start")
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--timeout-scale", default=1.0, show_default=True, type=click.FloatRange(min=0.0001),
              help="Multiply every readiness timeout (e.g. 0.01 for quick rehearsals on the simulator).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@copy_option
@handle_errors
def start_cmd(lab_file: str, timeout_scale: float, as_json: bool, copy: int | None) -> None:
    """Start every VM of LAB_FILE and wait until all are ready (for container hosts: Docker and containers run)."""
    lab = load_lab_or_exit(lab_file, copy)
    progress = StageProgress([vm.name for vm in lab.vms])
    with progress.show():
        result = power.start(lab, progress=None if as_json else progress, prompt=prompt_if_tty(),
                             timeouts=Timeouts(scale=timeout_scale))
    if as_json:
        out.print_json(power_json(lab.name, result.host, result.simulated, result.vms, result.elapsed,
                                  result.sim_clock))
    else:
        print_vms(f"start lab {lab.name} on {result.host}" + (" [SIMULATED]" if result.simulated else ""),
                  result.vms, result.sim_clock)
    finish(result.vms, as_json)
