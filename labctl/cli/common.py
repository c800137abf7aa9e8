"""Shared CLI plumbing: exit codes, error printing, lab loading, progress display."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from labctl.errors import (
    ApplyError,
    AuthError,
    ConnectError,
    DestroyIncompleteError,
    Interrupted,
    LabctlError,
    LabFileError,
    LabUsageError,
    LockError,
    PlanError,
    RemoteCommandError,
    StageError,
    TemplateError,
    TransientError,
)

# Exit codes (documented in the README).
EXIT_FAILED = 1  # one or more VMs failed at a stage; the others finished
EXIT_USAGE = 2  # bad command line, or the lab file is invalid
EXIT_REFUSED = 3  # preflight: the host cannot take the lab; nothing was changed
EXIT_CONNECT = 4  # the host could not be reached or refused the credentials
EXIT_LOCKED = 5  # another labctl run holds the lab lock
EXIT_REMOTE = 6  # a host command failed outside a VM's stages
EXIT_TEMPFAIL = 75  # the host kept failing transiently beyond the retry budget: run again (sysexits' EX_TEMPFAIL)
EXIT_INTERRUPTED = 130

# Not a terminal (CI logs, pipes): wide enough that tables keep one line per VM.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
# No markup and no emoji codes anywhere: lab files, host errors and guest output are printed as written
# (`[bold]` or `:100:` in them stay text). Styles come only from Text objects built here.
out = Console(highlight=False, soft_wrap=True, width=_WIDTH, markup=False, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH, markup=False, emoji=False)

F = TypeVar("F", bound=Callable[..., Any])


def exit_code_for(exc: LabctlError) -> int:
    if isinstance(exc, Interrupted):
        return EXIT_INTERRUPTED
    if isinstance(exc, TransientError):
        return EXIT_TEMPFAIL
    if isinstance(exc, (LabFileError, LabUsageError, TemplateError)):
        return EXIT_USAGE
    if isinstance(exc, PlanError):
        return EXIT_REFUSED
    if isinstance(exc, (AuthError, ConnectError)):
        return EXIT_CONNECT
    if isinstance(exc, LockError):
        return EXIT_LOCKED
    if isinstance(exc, (ApplyError, StageError, DestroyIncompleteError)):
        return EXIT_FAILED
    if isinstance(exc, RemoteCommandError):
        return EXIT_REMOTE
    return EXIT_FAILED


def report_error(exc: LabctlError) -> None:
    """Print a labctl error for a person: what, where, and what to do."""
    label = type(exc).__name__
    err.print(Text.assemble(("error", "bold red"), f" ({label}): {exc.message}"))
    if isinstance(exc, RemoteCommandError) and exc.fqid:
        err.print(f"  FullyQualifiedErrorId: {exc.fqid}")
    if exc.hint:
        err.print(f"  hint: {exc.hint}")


def handle_errors(fn: F) -> F:
    """Turn labctl errors into messages and exit codes (the CLI alone picks exit codes)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (KeyboardInterrupt, Interrupted):
            err.print("interrupted: the journal records what was done; run the same command again to continue")
            sys.exit(EXIT_INTERRUPTED)
        except LabctlError as exc:
            report_error(exc)
            sys.exit(exit_code_for(exc))

    return wrapper  # type: ignore[return-value]


def prompt_secret(label: str) -> str:
    if not sys.stdin.isatty():
        raise click.UsageError(f"{label} is needed but there is no terminal to ask it")
    return str(click.prompt(label, hide_input=True))


class StageProgress:
    """One line per VM with its stage and elapsed time; plain lines when not a terminal."""

    def __init__(self, names: list[str], console: Console = out) -> None:
        self.console = console
        now = time.monotonic()
        self.rows: dict[str, dict[str, Any]] = {"host": {"stage": "preflight", "status": "", "detail": "",
                                                         "start": now}}
        self.rows.update({n: {"stage": "waiting", "status": "", "detail": "", "start": now} for n in names})
        self._lock = threading.Lock()
        self._live: Live | None = None
        self.tty = console.is_terminal

    def _table(self) -> Table:
        table = Table(box=None, show_header=True, header_style="bold")
        for col in ("VM", "stage", "status", "elapsed", "detail"):
            table.add_column(col)
        now = time.monotonic()
        for name, row in self.rows.items():
            elapsed = row.get("end", now) - row["start"]
            table.add_row(name, row["stage"], row["status"], f"{elapsed:.1f}s", row["detail"][:80])
        return table

    def stage(self, vm: str, stage: str, status: str, detail: str = "") -> None:
        with self._lock:
            row = self.rows.setdefault(vm, {"start": time.monotonic()})
            row.update(stage=stage, status=status, detail=detail)
            if status == "failed" or (stage in ("ready", "remove") and status != "start"):
                row["end"] = time.monotonic()  # finished: its clock stops
            elapsed = row.get("end", time.monotonic()) - row["start"]
            if self._live is not None:
                self._live.update(self._table())
            elif status != "start":
                extra = f"  {detail}" if detail else ""
                self.console.print(f"{vm:<16} {stage:<12} {status:<7} {elapsed:6.1f}s{extra}")

    @contextmanager
    def show(self) -> Iterator[StageProgress]:
        if self.tty:
            with Live(self._table(), console=self.console, refresh_per_second=8, transient=False) as live:
                self._live = live
                try:
                    yield self
                finally:
                    live.update(self._table())
                    self._live = None
        else:
            yield self


def load_lab_or_exit(path: str, copy: int | None = None) -> Any:
    """The resolved lab (only copy ``copy`` of a lab with copies, when given); a bad file raises LabFileError
    (every problem, file:line: field)."""
    from labctl.app import classes, labfile

    return classes.select(labfile.load(path), copy)


copy_option = click.option(
    "--copy", "copy", type=click.IntRange(min=1), default=None, metavar="K",
    help="Only copy K of a lab with copies: N (1..N).")
