"""labctl env: the shell lines that point the docker CLI at a lab VM's Docker API over TLS.

``eval $(labctl env LAB VM)`` sets DOCKER_HOST (the host address and NAT-mapped port labctl published),
DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH (the lab's client certificate directory), as ``docker-machine env``
did. It reads the lab journal only: nothing is sent to the host.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click

from labctl.app import journal_path
from labctl.cli.common import handle_errors, load_lab_or_exit
from labctl.engine.journal import Journal
from labctl.errors import LabctlError, LabUsageError

SHELLS = ("bash", "fish", "powershell")


def _quote(shell: str, value: str) -> str:
    if shell == "fish":
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if shell == "powershell":
        return "'" + value.replace("'", "''") + "'"
    return shlex.quote(value)


def env_lines(shell: str, docker_host: str, cert_path: str, lab_file: str, vm: str) -> list[str]:
    """The lines to print for ``shell`` (pure: tested without a lab)."""
    values = [("DOCKER_HOST", docker_host), ("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", cert_path)]
    me = f"labctl env {shlex.quote(lab_file)} {shlex.quote(vm)}"
    if shell == "fish":
        lines = [f"set -gx {k} {_quote(shell, v)};" for k, v in values]
        usage = f"# eval ({me} --shell fish)"
    elif shell == "powershell":
        lines = [f"$Env:{k} = {_quote(shell, v)}" for k, v in values]
        usage = f"# & {me} --shell powershell | Invoke-Expression"
    else:
        lines = [f"export {k}={_quote(shell, v)}" for k, v in values]
        usage = f"# eval $({me})"
    return [*lines, "# Run this command to configure your shell:", usage]


def docker_tls_entry(lab: Any, vm_name: str) -> tuple[str, dict[str, Any]]:
    """(the VM's name as the lab spells it, its journal ``docker_tls`` record); LabUsageError if it has none."""
    try:
        vm = lab.vm(vm_name)
    except KeyError:
        names = ", ".join(v.name for v in lab.vms)
        raise LabUsageError(f"lab {lab.name} has no VM named {vm_name!r}; its VMs: {names}", field="vms",
                            hint=f"name one of the VMs of {lab.source}") from None
    path = journal_path(lab)
    try:
        record = Journal.open(path, lab.name).vm(vm.name).get("docker_tls") if path.exists() else None
    except (OSError, ValueError) as exc:  # unreadable or another lab's journal: say which file
        raise LabctlError(f"cannot read the lab journal {path}: {exc}",
                          hint="labctl up rewrites it; labctl status shows what the host has") from exc
    if not record:
        if not getattr(vm, "docker_tls", False):
            raise LabUsageError(f"{vm.name} has no Docker API over TLS: the lab does not ask for it",
                                field="docker_tls",
                                hint=f"set docker_tls: true for {vm.name} (or in defaults) in {lab.source}, "
                                     "then run labctl up")
        raise LabUsageError(f"{vm.name} has no Docker API over TLS yet: labctl up has not published it",
                            field="docker_tls", hint=f"run labctl up {lab.source} (it finishes the docker stage)")
    cert_path = Path(str(record.get("cert_path", "")))
    if not (cert_path / "cert.pem").is_file():
        raise LabUsageError(f"the client certificate of lab {lab.name} is missing from {cert_path}",
                            field="docker_tls", hint=f"run labctl up {lab.source} to make it again")
    return vm.name, dict(record)


@click.command("env")
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("vm")
@click.option("--shell", type=click.Choice(SHELLS), default="bash", show_default=True,
              help="Syntax of the lines printed.")
@handle_errors
def env_cmd(lab_file: str, vm: str, shell: str) -> None:
    """Print the environment that points the docker CLI at VM's Docker API over TLS.

    \b
    eval $(labctl env LAB_FILE VM)          # bash, zsh
    eval (labctl env LAB_FILE VM --shell fish)
    labctl env LAB_FILE VM --shell powershell | Invoke-Expression
    """
    lab = load_lab_or_exit(lab_file)
    name, record = docker_tls_entry(lab, vm)
    docker_host = f"tcp://{record['host']}:{int(record['port'])}"
    # click.echo, not rich: these lines are evaluated by a shell and must come out byte for byte.
    for line in env_lines(shell, docker_host, str(record["cert_path"]), lab_file, name):
        click.echo(line)
