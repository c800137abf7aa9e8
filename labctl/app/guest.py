"""Guest commands: run one guest step on one VM of a lab (the use case behind exec, docker and demos).

A step is a shipped script (templates/guest/<name>.ps1) sent over PowerShell Direct through the host with
its values as -ArgumentList (labctl.hyperv.ops.guest_invoke). Nothing here prints: the CLI shapes and prints
what a step returned (labctl.cli.psformat).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from labctl.app.classes import unit_of
from labctl.app.connection import HostConnection, connect
from labctl.app.labfile import find_vm
from labctl.app.secrets import Prompt
from labctl.app.session import GUEST_ADMIN, guest_password
from labctl.guest.steps import load_step
from labctl.hyperv import ops
from labctl.lab.model import ResolvedLab, ResolvedVm
from labctl.transport.base import Credential, RemoteError, RemoteObject

# Note properties Invoke-Command adds to every remote object: noise for a person reading the output.
REMOTING_PROPERTIES = frozenset({"pscomputername", "runspaceid", "psshowcomputername"})


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
def guest_session(lab: ResolvedLab, *, vm: ResolvedVm | None = None,
                  prompt: Prompt | None = None) -> Iterator[GuestSession]:
    """Connect to the lab's host with the guests' Administrator credential; closed on leaving. For a lab with
    copies, ``vm`` picks the copy (its host and its own password)."""
    if vm is not None:
        lab = unit_of(lab, vm.name)
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
    with guest_session(lab, vm=vm, prompt=prompt) as session:
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
    return [line for item in items for line in (("" if item is None else str(item)).splitlines() or [""])]


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


def visible_properties(obj: RemoteObject | dict[str, Any]) -> dict[str, Any]:
    """An object's properties without the remoting note properties."""
    props = obj.props if isinstance(obj, RemoteObject) else obj
    return {str(k): v for k, v in props.items() if str(k).lower() not in REMOTING_PROPERTIES}


__all__ = ["DockerRun", "GuestSession", "StepRun", "find_vm", "guest_session", "parse_docker", "run_step",
           "visible_properties", "without_tty"]
