"""labctl status: each VM's state, heartbeat, IPs, nested settings and checks."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from labctl.app.status import status as lab_status
from labctl.cli.common import EXIT_FAILED, copy_option, handle_errors, load_lab_or_exit, out, prompt_secret


def _fmt_containers(info: dict[str, Any]) -> str:
    """A container host's bootstrap in one cell: Docker, images, isolation runs."""
    if not info:
        return "-"
    if not all(info.get("bootstrap", {}).values()):
        todo = [k for k, v in info.get("bootstrap", {}).items() if not v]
        return "bootstrap pending: " + ", ".join(todo)
    parts = [f"docker {info.get('docker_version')}" if info.get("docker_running") else "docker not running"]
    expected = info.get("images_expected") or []
    present = [r for r in expected if r in (info.get("images") or [])]
    parts.append(f"{len(present)}/{len(expected)} images")
    for name, run in (info.get("isolation") or {}).items():
        parts.append(f"{name} {'ok' if run and run.get('ok') else 'FAILED'}")
    return ", ".join(parts)


def _fmt_uptime(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


@click.command("status")
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--no-guest", is_flag=True, help="Do not log on to the guests (host view only).")
@copy_option
@handle_errors
def status_cmd(lab_file: str, as_json: bool, no_guest: bool, copy: int | None) -> None:
    """Show the state of every VM of LAB_FILE. Exit code 1 when a VM is not healthy."""
    lab = load_lab_or_exit(lab_file, copy)
    rows, host, simulated = lab_status(lab, guest=not no_guest,
                                       prompt=prompt_secret if sys.stdin.isatty() else None)
    if as_json:
        out.print_json(json.dumps({"lab": lab.name, "host": host, "simulated": simulated,
                                   "vms": [r.to_json() for r in rows]}, default=str))
    else:
        table = Table(title=f"lab {lab.name} on {host}" + (" [SIMULATED]" if simulated else ""))
        for col in ("VM", "state", "heartbeat", "IPs", "memory", "vCPU", "nested", "containers", "checks",
                    "uptime"):
            table.add_column(col)
        for r in rows:
            nested = "yes" if r.expose_virtualization_extensions and r.mac_address_spoofing \
                and not r.dynamic_memory else "no"
            failed = [k for k, v in r.checks.items() if not v]
            checks = Text("all passed", style="green") if r.checks and not failed else (
                Text("; ".join(failed), style="red") if failed else Text("-"))
            table.add_row(r.name, r.state, r.heartbeat or "-",
                          ", ".join(ip for ip in r.ips if ":" not in ip) or "-",
                          f"{r.memory_bytes / 1024**3:.0f} GiB" if r.memory_bytes else "-",
                          str(r.processors or "-"), nested, _fmt_containers(r.containers), checks,
                          _fmt_uptime(r.uptime_seconds))
        out.print(table)
        for r in rows:
            for p in r.problems:
                out.print(f"{r.name}: {p}")
    if not all(r.healthy for r in rows):
        sys.exit(EXIT_FAILED)
