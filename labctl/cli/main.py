"""The ``labctl`` command: one group, one verb per module (labctl/cli/<verb>.py)."""

from __future__ import annotations

import importlib
import logging

import click

from labctl.cli.sim import sim_group

log = logging.getLogger(__name__)

# (module, attribute) of each verb; a verb whose module is not there yet is left out.
VERBS: tuple[tuple[str, str], ...] = (
    ("labctl.cli.up", "up_cmd"),
    ("labctl.cli.plan", "plan_cmd"),
    ("labctl.cli.status", "status_cmd"),
    ("labctl.cli.destroy", "destroy_cmd"),
    ("labctl.cli.validate", "validate_cmd"),
    ("labctl.cli.render", "render_cmd"),
)


@click.group("labctl")
@click.version_option(package_name="labctl")
def cli() -> None:
    """Build Hyper-V labs of Windows container hosts over PowerShell Remoting."""


def _register() -> None:
    for module_name, attr in VERBS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                # The verb exists but cannot load (work in progress elsewhere): keep the rest usable.
                click.echo(f"labctl: '{module_name}' unavailable: {exc}", err=True)
            continue
        except ImportError as exc:
            click.echo(f"labctl: '{module_name}' unavailable: {exc}", err=True)
            continue
        command = getattr(module, attr, None)
        if isinstance(command, click.Command):
            cli.add_command(command)
    cli.add_command(sim_group)


_register()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
