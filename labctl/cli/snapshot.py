"""labctl snapshot save|list|rm and labctl reset: lab-wide checkpoints (docs/snapshots.md)."""

from __future__ import annotations

import json
from collections.abc import Callable

import click
from rich.table import Table
from rich.text import Text

from labctl.app import snapshot as snap
from labctl.app.power import Timeouts
from labctl.app.snapshot import SnapshotInfo
from labctl.cli.common import StageProgress, copy_option, err, handle_errors, load_lab_or_exit, out
from labctl.cli.power import finish, power_json, print_vms, prompt_if_tty
from labctl.errors import ApplyError


def _snapshot_json(lab: str, host: str, simulated: bool, infos: list[SnapshotInfo]) -> str:
    return json.dumps({"lab": lab, "host": host, "simulated": simulated,
                       "snapshots": [i.to_json() for i in infos]}, default=str)


def _explained(fn: Callable[[], snap.SnapshotResult]) -> snap.SnapshotResult:
    """Run ``fn``; when VMs failed, name each with its stage, the host's words and the likely cause."""
    try:
        return fn()
    except ApplyError as failure:
        for error in failure.failures.values():
            err.print(f"{error.message}")
            if getattr(error, "cause", None):
                err.print(f"  likely cause: {error.cause}")  # type: ignore[attr-defined]
        raise


def _health(info: SnapshotInfo) -> Text:
    if info.state != "complete":
        return Text("incomplete (its save did not finish)", style="red")
    if info.missing:
        return Text("missing on the host: " + ", ".join(info.missing), style="red")
    return Text(f"all {len(info.vms)} checkpoints present", style="green")


@click.group("snapshot")
def snapshot_group() -> None:
    """Lab-wide snapshots: one production checkpoint per VM, taken and restored together."""


@snapshot_group.command("save")
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@copy_option
@handle_errors
def save_cmd(lab_file: str, name: str, as_json: bool, copy: int | None) -> None:
    """Checkpoint every VM of LAB_FILE as snapshot NAME (all VMs or none)."""
    lab = load_lab_or_exit(lab_file, copy)
    progress = StageProgress([vm.name for vm in lab.vms])
    with progress.show():
        result = _explained(lambda: snap.snapshot_save(lab, name, progress=None if as_json else progress,
                                                       prompt=prompt_if_tty()))
    if as_json:
        out.print_json(_snapshot_json(lab.name, result.host, result.simulated, result.snapshots))
        return
    info = result.snapshots[0]
    out.print(f"Snapshot {info.name!r} of lab {lab.name} saved on {result.host}"
              + (" [SIMULATED]" if result.simulated else "")
              + f": {len(info.vms)} {info.checkpoint_type} checkpoints (each read back from the host).")


@snapshot_group.command("list")
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@copy_option
@handle_errors
def list_cmd(lab_file: str, as_json: bool, copy: int | None) -> None:
    """The snapshots the journal records, each checkpoint verified on the host."""
    lab = load_lab_or_exit(lab_file, copy)
    result = snap.snapshot_list(lab, prompt=prompt_if_tty())
    if as_json:
        out.print_json(_snapshot_json(lab.name, result.host, result.simulated, result.snapshots))
        return
    if not result.snapshots:
        out.print(f"Lab {lab.name} has no snapshots (labctl snapshot save LAB NAME takes one).")
        return
    table = Table(title=f"snapshots of lab {lab.name} on {result.host}" + (" [SIMULATED]" if result.simulated
                                                                            else ""))
    for col in ("name", "created (UTC)", "type", "VMs", "on the host"):
        table.add_column(col)
    for info in result.snapshots:
        table.add_row(info.name, info.created, info.checkpoint_type, str(len(info.vms)), _health(info))
    out.print(table)


@snapshot_group.command("rm")
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@copy_option
@handle_errors
def rm_cmd(lab_file: str, name: str, as_json: bool, copy: int | None) -> None:
    """Remove snapshot NAME: exactly its checkpoints (Remove-VMSnapshot), each verified gone."""
    lab = load_lab_or_exit(lab_file, copy)
    progress = StageProgress([vm.name for vm in lab.vms])
    with progress.show():
        result = _explained(lambda: snap.snapshot_rm(lab, name, progress=None if as_json else progress,
                                                     prompt=prompt_if_tty()))
    if as_json:
        out.print_json(_snapshot_json(lab.name, result.host, result.simulated, result.snapshots))
        return
    info = result.snapshots[0]
    removed = [v.vm for v in info.vms if v.present]
    out.print(f"Snapshot {info.name!r} removed: {len(removed)} checkpoint(s) removed from {result.host}"
              + (" [SIMULATED]" if result.simulated else "") + ".")
    for vm in info.missing:
        out.print(f"  {vm}: its checkpoint was already gone from the host (removed by hand?)")


@click.command("reset")
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("name", required=False)
@click.option("--timeout-scale", default=1.0, show_default=True, type=click.FloatRange(min=0.0001),
              help="Multiply every readiness timeout (e.g. 0.01 for quick rehearsals on the simulator).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@copy_option
@handle_errors
def reset_cmd(lab_file: str, name: str | None, timeout_scale: float, as_json: bool, copy: int | None) -> None:
    """Restore every VM of LAB_FILE to snapshot NAME (default: the most recent) and wait until ready."""
    lab = load_lab_or_exit(lab_file, copy)
    progress = StageProgress([vm.name for vm in lab.vms])
    with progress.show():
        result = snap.reset(lab, name, progress=None if as_json else progress, prompt=prompt_if_tty(),
                            timeouts=Timeouts(scale=timeout_scale))
    if as_json:
        out.print_json(power_json(lab.name, result.host, result.simulated, result.vms, result.elapsed,
                                  result.sim_clock, snapshot=result.snapshot))
    else:
        print_vms(f"reset lab {lab.name} to {result.snapshot!r} on {result.host}"
                  + (" [SIMULATED]" if result.simulated else ""), result.vms, result.sim_clock)
    finish(result.vms, as_json)
