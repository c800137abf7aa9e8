"""labctl render: show a VM's answer file with the password redacted."""

from __future__ import annotations

import click

from labctl.cli.common import handle_errors, load_lab_or_exit, out
from labctl.render import render_unattend


@click.command("render")
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("vm", required=False)
@handle_errors
def render_cmd(lab_file: str, vm: str | None) -> None:
    """Print the rendered unattend.xml of VM (every VM when omitted), password redacted."""
    lab = load_lab_or_exit(lab_file)
    names = [vm] if vm else [v.name for v in lab.vms]
    for name in names:
        try:
            the_vm = lab.vm(name)
        except KeyError:
            raise click.BadParameter(f"no VM {name!r} in {lab_file}; VMs: {', '.join(v.name for v in lab.vms)}",
                                     param_hint="VM") from None
        if len(names) > 1:
            out.print(f"<!-- {the_vm.name} -->")
        out.print(render_unattend(lab, the_vm, redacted=True))
