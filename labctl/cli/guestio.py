"""Printing what a guest step produced: output blocks on stdout, errors and warnings on stderr."""

from __future__ import annotations

from rich.text import Text

from labctl.cli.common import err, out
from labctl.cli.psformat import Block, TextBlock, block_lines
from labctl.errors import RemoteCommandError
from labctl.transport.base import RemoteError

# Host-side refusals of Invoke-Command -VMName that mean the VM is not there or not running.
_NOT_UP = ("InvalidVMNameNotSingle", "InvalidVMIdNotSingle", "InvalidVMState", "PSSessionStateBroken")


def print_blocks(blocks: list[Block]) -> None:
    """Output blocks as PowerShell prints them, a blank line between tables and records.

    Text objects, not markup strings: guest output may hold square brackets that rich would eat.
    """
    for index, block in enumerate(blocks):
        if index and not isinstance(block, TextBlock):
            out.print()
        for line in block_lines(block):
            out.print(Text(line))


def _hint_for(fqid: str, lab_file: str) -> str | None:
    if fqid.split(",", 1)[0] in _NOT_UP:
        return f"is the VM up? run: labctl up {lab_file}; labctl status {lab_file}"
    return None


def print_remote_error(message: str, fqid: str, lab_file: str) -> None:
    """One error record: its text as is (the simulator's "not modelled" included) and its id."""
    err.print(Text(f"error: {message}", style="red"))
    if fqid:
        err.print(Text(f"  FullyQualifiedErrorId: {fqid}"))
    hint = _hint_for(fqid, lab_file)
    if hint:
        err.print(Text(f"  hint: {hint}"))


def print_errors(errors: list[RemoteError], warnings: list[str], lab_file: str) -> None:
    for warning in warnings:
        err.print(Text(f"WARNING: {warning}", style="yellow"))
    for record in errors:
        print_remote_error(record.message, record.fqid, lab_file)


def print_command_error(exc: RemoteCommandError, lab_file: str) -> None:
    print_remote_error(exc.message, exc.fqid, lab_file)
    if exc.hint:
        err.print(Text(f"  hint: {exc.hint}"))


def print_simulated_note(simulated: bool) -> None:
    """On stderr, so that stdout stays exactly the guest's output for pipes."""
    if simulated:
        err.print(Text("note: simulated guest (labctl simulator): output modeled, not from real Windows",
                       style="dim"))
