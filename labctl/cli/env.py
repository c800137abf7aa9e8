"""labctl env: point the docker CLI at a lab VM's Docker API over TLS.

``eval $(labctl env LAB VM)`` sets DOCKER_HOST (the host address and NAT-mapped port labctl published),
DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH (the lab's client certificate directory), as ``docker-machine env``
did; ``--unset`` prints the lines that clear them. ``--context`` writes a docker context instead (Docker's
recommended way, labctl/docker_context.py); ``--context --unset`` removes it. It reads the lab journal only:
nothing is sent to the host.
"""

from __future__ import annotations

import shlex

import click

from labctl.app import docker_env
from labctl.cli.common import handle_errors, load_lab_or_exit

SHELLS = ("bash", "fish", "powershell")
VARIABLES = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")


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


def unset_lines(shell: str, lab_file: str, vm: str) -> list[str]:
    """The lines that clear what env_lines set (pure)."""
    me = f"labctl env {shlex.quote(lab_file)} {shlex.quote(vm)} --unset"
    if shell == "fish":
        return [*(f"set -e {k};" for k in VARIABLES), "# Run this command to configure your shell:",
                f"# eval ({me} --shell fish)"]
    if shell == "powershell":
        return [*(f"Remove-Item Env:\\{k} -ErrorAction SilentlyContinue" for k in VARIABLES),
                "# Run this command to configure your shell:", f"# & {me} --shell powershell | Invoke-Expression"]
    return [f"unset {' '.join(VARIABLES)}", "# Run this command to configure your shell:", f"# eval $({me})"]



@click.command("env")
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("vm")
@click.option("--shell", type=click.Choice(SHELLS), default="bash", show_default=True,
              help="Syntax of the lines printed.")
@click.option("--context", "as_context", is_flag=True,
              help="Write a docker context labctl-<lab>-<vm> (docker context create) instead of printing variables.")
@click.option("--unset", is_flag=True, help="Undo: print the lines that clear the variables, or with --context "
              "remove the context labctl made.")
@handle_errors
def env_cmd(lab_file: str, vm: str, shell: str, as_context: bool, unset: bool) -> None:
    """Point the docker CLI at VM's Docker API over TLS.

    \b
    eval $(labctl env LAB_FILE VM)          # bash, zsh
    eval (labctl env LAB_FILE VM --shell fish)
    labctl env LAB_FILE VM --shell powershell | Invoke-Expression
    labctl env LAB_FILE VM --context        # then: docker --context labctl-<lab>-<vm> ps
    labctl env LAB_FILE VM --unset          # or --context --unset
    """
    lab = load_lab_or_exit(lab_file)
    if unset:
        try:
            name = lab.vm(vm).name
        except KeyError:
            name = vm  # undoing needs no lab VM: the lab file may have dropped it since
        if as_context:
            done = docker_env.remove_context(lab, name)
            if done.action == "absent":
                click.echo(f"no docker context {done.name}: nothing to remove")
            else:
                click.echo(f"removed docker context {done.name}" +
                           (" (it was in use: docker now uses the default context)" if done.current else ""))
            return
        for line in unset_lines(shell, lab_file, name):
            click.echo(line)
        return
    if as_context:
        done, host = docker_env.write_context(lab, vm)
        click.echo(f"{done.action} docker context {done.name} ({host}, TLS)")
        if not done.current:
            click.echo(f"use it with: docker --context {done.name} ps   or make it the default: "
                       f"docker context use {done.name}")
        return
    name, record = docker_env.docker_tls_entry(lab, vm)
    docker_host = docker_env.docker_host(record)
    # click.echo, not rich: these lines are evaluated by a shell and must come out byte for byte.
    for line in env_lines(shell, docker_host, str(record["cert_path"]), lab_file, name):
        click.echo(line)
