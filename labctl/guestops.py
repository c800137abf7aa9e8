"""Run one guest step on one VM of a lab, and shape what it printed: the plumbing of exec, docker and demos.

A step is a shipped script (templates/guest/<name>.ps1) sent over PowerShell Direct through the host with
its values as -ArgumentList (labctl.hyperv.ops.guest_invoke). Nothing here prints or imports click/rich:
the CLI renders the plain blocks that :func:`shape_output` returns.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from labctl.app import GUEST_ADMIN, guest_password
from labctl.errors import LabUsageError
from labctl.guest.steps import load_step
from labctl.hostconn import HostConnection, connect
from labctl.hyperv import ops
from labctl.lab.model import ResolvedLab, ResolvedVm
from labctl.secrets import Prompt
from labctl.transport.base import Credential, RemoteError, RemoteObject

# Note properties Invoke-Command adds to every remote object: noise for a person reading the output.
REMOTING_PROPERTIES = frozenset({"pscomputername", "runspaceid", "psshowcomputername"})
# Beyond this many properties a table gets too wide to read; objects are shown as `Name: value` lines.
MAX_TABLE_COLUMNS = 6
# The columns PowerShell's own format views show for types a guest command commonly returns
# (deserialized objects carry every property, most of them noise at a prompt).
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "system.serviceprocess.servicecontroller": ("Status", "Name", "DisplayName"),
    "microsoft.windows.servermanager.commands.feature": ("DisplayName", "Name", "InstallState"),
    "system.diagnostics.process": ("Id", "ProcessName", "CPU", "WS"),
    "system.io.fileinfo": ("Mode", "LastWriteTime", "Length", "Name"),
    "system.io.directoryinfo": ("Mode", "LastWriteTime", "Name"),
}


@dataclass
class StepRun:
    """What one guest step produced on one VM, and where it ran."""

    vm: str
    step: str
    output: list[Any]
    errors: list[RemoteError]
    warnings: list[str]
    host: str
    simulated: bool

    @property
    def failed(self) -> bool:
        """The step wrote errors (non-terminating ones included: the user's command did not fully work)."""
        return bool(self.errors)


def find_vm(lab: ResolvedLab, name: str) -> ResolvedVm:
    """The lab's VM called ``name``; a clear error listing the lab's VMs otherwise (nothing is run)."""
    try:
        return lab.vm(name)
    except KeyError:
        names = ", ".join(vm.name for vm in lab.vms)
        raise LabUsageError(f"lab {lab.name} has no VM named {name!r}; its VMs: {names}", field="vms",
                            hint=f"name one of the VMs of {lab.source}") from None


class GuestSession:
    """One connection to the lab's host for running guest steps in its VMs (one logon credential)."""

    def __init__(self, conn: HostConnection, credential: Credential) -> None:
        self.conn = conn
        self.credential = credential

    def run(self, vm: ResolvedVm, step: str, arguments: list[object]) -> StepRun:
        """Run guest step ``step`` in ``vm`` with ``arguments`` as its -ArgumentList.

        Never retried: these steps run the user's commands (docker run, ...), which must not run twice after
        a lost answer. A terminating error raises RemoteCommandError; non-terminating errors are in the result.
        """
        script = load_step(step).script
        res = self.conn.transport.invoke(ops.guest_invoke(vm.name, self.credential, script, arguments), retry=False)
        return StepRun(vm.name, step, res.output, res.errors, res.warnings, self.conn.description,
                       self.conn.simulated)


@contextmanager
def guest_session(lab: ResolvedLab, *, prompt: Prompt | None = None) -> Iterator[GuestSession]:
    """Connect to the lab's host with the guests' Administrator credential; closed on leaving."""
    password = guest_password(lab, prompt)
    conn = connect(lab, workers=1, prompt=prompt)
    try:
        yield GuestSession(conn, Credential(GUEST_ADMIN, password))
    finally:
        conn.close()


def run_step(lab: ResolvedLab, vm: ResolvedVm, step: str, arguments: list[object], *,
             prompt: Prompt | None = None) -> StepRun:
    """Run one guest step in ``vm`` over a connection of its own (see :meth:`GuestSession.run`)."""
    load_step(step)  # a missing script is reported before anything connects
    with guest_session(lab, prompt=prompt) as session:
        return session.run(vm, step, arguments)


# --- docker in a guest -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DockerRun:
    """`& docker @Arguments` in a guest: docker's exit code and its stdout/stderr lines."""

    exit_code: int
    output: list[str]
    error: list[str]


# docker subcommands that take -t, and the options of theirs that take a value (the next word, unless
# written --opt=value): a value must not be mistaken for the image, where options end.
_TTY_COMMANDS = frozenset({"run", "create", "exec"})
_VALUE_LONG = frozenset({
    "--name", "--isolation", "--env", "--env-file", "--publish", "--memory", "--hostname", "--workdir",
    "--entrypoint", "--volume", "--network", "--net", "--cpus", "--cpu-count", "--cpu-shares", "--user",
    "--label", "--mount", "--restart", "--dns", "--platform", "--storage-opt", "--memory-swap", "--expose",
    "--add-host", "--device", "--log-driver", "--log-opt", "--stop-signal", "--stop-timeout", "--health-cmd",
    "--pull", "--detach-keys", "--ip", "--mac-address", "--label-file", "--cidfile", "--domainname"})
_VALUE_SHORT = frozenset("epmhwvulc")


def without_tty(arguments: list[str]) -> tuple[list[str], bool]:
    """``arguments`` with ``-t`` dropped when they ask for ``-i`` and ``-t`` together, and whether it was.

    PowerShell Direct gives docker a redirected stdin and no terminal, where docker refuses ``-it`` ("the
    input device is not a TTY"); with ``-i`` alone the article's ``run -it --rm IMAGE cmd /c echo hi`` runs.
    Only the options before the image (or container) are looked at: what follows is the container's command.
    """
    args = list(arguments)
    if not args or args[0] not in _TTY_COMMANDS:
        return args, False
    interactive = False
    tty_at: list[int] = []  # where -t is: a "--tty" word or a cluster of short flags holding "t"
    i = 1
    while i < len(args):
        word = args[i]
        if word == "--" or word == "-" or not word.startswith("-"):
            break  # the image or container: options end here
        if word.startswith("--"):
            name, eq, value = word.partition("=")
            if name == "--interactive":
                interactive = interactive or value.lower() != "false"
            elif name == "--tty" and value.lower() != "false":
                tty_at.append(i)
            elif name in _VALUE_LONG and not eq:
                i += 1  # its value is the next word
        else:
            for j, letter in enumerate(word[1:]):
                if letter in _VALUE_SHORT:
                    if j == len(word) - 2:
                        i += 1  # "-e" alone: its value is the next word; "-eX=1" holds it
                    break
                interactive = interactive or letter == "i"
                if letter == "t":
                    tty_at.append(i)
        i += 1
    if not (interactive and tty_at):
        return args, False
    for index in sorted(set(tty_at), reverse=True):
        word = args[index]
        if word.startswith("--"):
            del args[index]
            continue
        flags, value = _split_short(word)
        rest = flags.replace("t", "") + value
        if rest:
            args[index] = "-" + rest
        else:
            del args[index]
    return args, True


def _split_short(word: str) -> tuple[str, str]:
    """"-dit" -> ("dit", ""), "-ieX=1" -> ("i", "eX=1"): the flags, then a value-taking letter onwards."""
    letters = word[1:]
    for j, letter in enumerate(letters):
        if letter in _VALUE_SHORT:
            return letters[:j], letters[j:]
    return letters, ""


def _lines(value: Any) -> list[str]:
    """A string[] from the guest (PowerShell sends one string alone, not as an array; $null as None)."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    return [line for item in items for line in (format_value(item).splitlines() or [""])]


def parse_docker(output: list[Any]) -> DockerRun | None:
    """The docker-cli step's one object (ExitCode, Output, Error), or None when it returned none."""
    obj = next((o for o in output if isinstance(o, (RemoteObject, dict))), None)
    if obj is None:
        return None
    props = {k.lower(): v for k, v in visible_properties(obj).items()}
    try:
        code = int(props.get("exitcode") or 0)
    except (TypeError, ValueError):
        code = 1
    return DockerRun(code, _lines(props.get("output")), _lines(props.get("error")))


# --- shaping output for a person -------------------------------------------------------------------------


@dataclass(frozen=True)
class TextBlock:
    """Plain values, one line each (strings, numbers)."""

    lines: list[str]


@dataclass(frozen=True)
class TableBlock:
    """Objects of one kind as a short table."""

    columns: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class RecordBlock:
    """One object with many properties as `Name: value` lines."""

    pairs: list[tuple[str, str]] = field(default_factory=list)


Block = TextBlock | TableBlock | RecordBlock


def visible_properties(obj: RemoteObject | dict[str, Any]) -> dict[str, Any]:
    """An object's properties without the remoting note properties."""
    props = obj.props if isinstance(obj, RemoteObject) else obj
    return {str(k): v for k, v in props.items() if str(k).lower() not in REMOTING_PROPERTIES}


def _is_type_name(text: str | None, type_names: list[str]) -> bool:
    """Whether an object's ToString says nothing but its .NET type (or is missing)."""
    if text is None:
        return True
    bare = text.removeprefix("Deserialized.")
    return any(bare == name.removeprefix("Deserialized.") for name in type_names)


def format_value(value: Any) -> str:
    """One value as PowerShell would show it in a table cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, _dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, (list, tuple)):
        return "{" + ", ".join(format_value(v) for v in value) + "}"
    if isinstance(value, RemoteObject):
        props = visible_properties(value)
        if not props or not _is_type_name(value.text, value.type_names):
            return value.text or ""
        # An object whose ToString is only its type name: show its properties, as PowerShell does for
        # a [pscustomobject] nested in another.
        return "@{" + "; ".join(f"{k}={format_value(v)}" for k, v in props.items()) + "}"
    if isinstance(value, dict):
        return "@{" + "; ".join(f"{k}={format_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _scalar_text(value: Any) -> str | None:
    """The line for a plain value, or None for an object with properties worth showing."""
    if isinstance(value, RemoteObject):
        # A string (or number) from a remote runspace arrives as an object carrying only the remoting
        # note properties: it is still just its text.
        if not visible_properties(value) or value.is_a("System.String"):
            return value.text if value.text is not None else ""
        return None
    if isinstance(value, dict):
        return None
    return format_value(value)


def _kind(value: RemoteObject | dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """(type name, property names): objects of one kind share a table."""
    type_name = "hashtable"
    if isinstance(value, RemoteObject) and value.type_names:
        type_name = value.type_names[0].lower().removeprefix("deserialized.")
    return type_name, tuple(visible_properties(value))


def _objects_block(objs: list[RemoteObject | dict[str, Any]]) -> list[Block]:
    type_name, names = _kind(objs[0])
    columns = [c for c in DEFAULT_COLUMNS.get(type_name, ()) if c.lower() in {n.lower() for n in names}]
    if not columns and len(names) <= MAX_TABLE_COLUMNS:
        columns = list(names)
    if columns:
        rows = []
        for obj in objs:
            props = {k.lower(): v for k, v in visible_properties(obj).items()}
            rows.append([format_value(props.get(c.lower())) for c in columns])
        return [TableBlock(columns, rows)]
    return [RecordBlock([(k, format_value(v)) for k, v in visible_properties(obj).items()]) for obj in objs]


def block_lines(block: Block) -> list[str]:
    """A block as text lines the way PowerShell prints it: tables like Format-Table (header, dashes, columns
    padded, no trailing blanks), records like Format-List (`Name : value`)."""
    if isinstance(block, TextBlock):
        return list(block.lines)
    if isinstance(block, RecordBlock):
        width = max((len(name) for name, _ in block.pairs), default=0)
        return [f"{name:<{width}} : {value}".rstrip() for name, value in block.pairs]
    widths = [max([len(c)] + [len(r[i]) for r in block.rows]) for i, c in enumerate(block.columns)]

    def line(cells: list[str]) -> str:
        return " ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

    return [line(block.columns), line(["-" * len(c) for c in block.columns]), *(line(r) for r in block.rows)]


def shape_output(values: list[Any]) -> list[Block]:
    """Output values as blocks a person reads: runs of plain values as lines, runs of objects of one kind
    (same type, same properties) as a table, or as `Name: value` records when they have many properties."""
    blocks: list[Block] = []
    lines: list[str] = []
    group: list[RemoteObject | dict[str, Any]] = []

    def flush() -> None:
        if lines:
            blocks.append(TextBlock(list(lines)))
            lines.clear()
        if group:
            blocks.extend(_objects_block(list(group)))
            group.clear()

    for value in values:
        text = _scalar_text(value)
        if text is not None:
            if group:
                flush()
            lines.extend(text.splitlines() or [""])
            continue
        assert isinstance(value, (RemoteObject, dict))
        if lines or (group and _kind(group[0]) != _kind(value)):
            flush()
        group.append(value)
    flush()
    return blocks


__all__ = ["Block", "DockerRun", "GuestSession", "RecordBlock", "StepRun", "TableBlock", "TextBlock", "block_lines",
           "find_vm", "format_value", "guest_session", "parse_docker", "run_step", "shape_output", "without_tty"]
