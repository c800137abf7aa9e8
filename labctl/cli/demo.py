"""labctl demo: demonstrations run inside a lab's guests (labctl/app/isolation_demo.py)."""

from __future__ import annotations

import json
import sys

import click
from rich.table import Table
from rich.text import Text

from labctl.app import isolation_demo as isolation
from labctl.app.isolation_demo import Comparison, IsolationDemo, IsolationRun
from labctl.cli.common import EXIT_FAILED, err, handle_errors, load_lab_or_exit, out, prompt_secret


@click.group("demo")
def demo_group() -> None:
    """Demonstrations run inside a lab's guests."""


def _seconds(run: IsolationRun) -> str:
    # A refused run never started: whatever time it took is not a start time.
    return f"{run.start_seconds:.1f} s" if run.ok and run.start_seconds is not None else "-"


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _kernel(run: IsolationRun) -> str:
    if run.kernel_build is None:
        return "-"
    if run.isolation == isolation.PROCESS:
        return f"{run.kernel_build} (shared with the guest)"
    return f"{run.kernel_build} (the utility VM's own kernel)"


def _memory(run: IsolationRun) -> str:
    if run.isolation == isolation.PROCESS and not run.memory_overhead_mb:
        return "none (no utility VM)"
    return f"{run.memory_overhead_mb:.0f} MB" if run.memory_overhead_mb is not None else "-"


def _result(run: IsolationRun) -> Text:
    return Text("runs", style="green") if run.ok else Text("refused" if run.error else "failed", style="red")


def _table(title: str, rows: list[tuple[str, str | Text, str | Text]]) -> Table:
    table = Table(title=title, title_justify="left", show_lines=True)
    table.add_column("")
    table.add_column("process isolation", overflow="fold")
    table.add_column("Hyper-V isolation", overflow="fold")
    for label, process, hyperv in rows:
        table.add_row(label, process if isinstance(process, Text) else Text(process),
                      hyperv if isinstance(hyperv, Text) else Text(hyperv))
    return table


def _same_image(demo: IsolationDemo, sim: str) -> Table:
    c: Comparison = demo.same_image
    p, h = c.process, c.hyperv
    return _table(f"(a) Same image, two isolations{sim}: {c.image} in {demo.vm} (guest build {demo.guest_build})", [
        ("result", _result(p), _result(h)),
        ("time to start", _seconds(p), _seconds(h)),
        (f"kernel build seen inside (the guest's: {demo.guest_build})", _kernel(p), _kernel(h)),
        ("container process in the guest's process list", _yes_no(p.visible_in_guest), _yes_no(h.visible_in_guest)),
        ("memory overhead (utility VM)", _memory(p), _memory(h)),
        *([("error", p.error or "-", h.error or "-")] if p.error or h.error else []),
    ])


def _older_image(demo: IsolationDemo, sim: str) -> Table:
    c: Comparison = demo.older_image
    p, h = c.process, c.hyperv
    built = f" (build {c.build})" if c.build else ""
    return _table(f"(b) Older image{sim}: {c.image}{built} on guest build {demo.guest_build}", [
        ("result", _result(p), _result(h)),
        ("error", p.error or "-", h.error or "-"),
        (f"kernel build seen inside (the guest's: {demo.guest_build})", _kernel(p) if p.ok else "-",
         f"{h.kernel_build} (the image's)" if h.ok and h.kernel_build else "-"),
        ("time to start", _seconds(p), _seconds(h)),
    ])


@demo_group.command("isolation")
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--vm", "vm_name", metavar="NAME", help="The container host to use (default: the lab's first "
              "container host with isolation: hyperv).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (the same data).")
@handle_errors
def isolation_cmd(lab_file: str, vm_name: str | None, as_json: bool) -> None:
    """Process vs Hyper-V isolation of Windows containers, side by side, in a container host of LAB_FILE.

    Runs nanoserver with the guest's own tag under both isolations (start time, kernel build seen inside,
    visibility in the guest's process list, utility VM memory), then the previous LTSC image: process
    isolation refuses it (0xc0370101), Hyper-V isolation runs it. The VM needs isolation: hyperv
    (labs/isolation-demo.yaml). Exit code 1 when a run came out otherwise than Windows' rules say.
    """
    lab = load_lab_or_exit(lab_file)
    demo = isolation.run_demo(lab, vm_name, prompt=prompt_secret if sys.stdin.isatty() else None,
                              progress=lambda text: err.print(Text(text, style="dim")))
    if as_json:
        out.print_json(json.dumps(demo.to_json()))
    else:
        sim = " [SIMULATED]" if demo.simulated else ""
        out.print(_same_image(demo, sim))
        out.print(_older_image(demo, sim))
        for surprise in demo.surprises:
            out.print(Text(f"unexpected: {surprise}", style="yellow"))
        if demo.simulated:
            out.print(Text(isolation.SIMULATED_NOTE, style="bold"))
    if demo.surprises:
        sys.exit(EXIT_FAILED)
