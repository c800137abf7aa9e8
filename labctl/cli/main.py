"""The ``labctl`` command: one group, one verb per module (labctl/cli/<verb>.py)."""

from __future__ import annotations

import importlib
import os

import click

from labctl.app import connection
from labctl.cli import completion, logs

# Each command's module, imported only when that command runs (or is listed by --help/completion): `labctl up`
# need not import the image builder, the isolation demo or the simulator's CLI first.
COMMANDS: dict[str, str] = {
    "init": "labctl.cli.init:init_cmd", "up": "labctl.cli.up:up_cmd", "plan": "labctl.cli.plan:plan_cmd",
    "status": "labctl.cli.status:status_cmd", "destroy": "labctl.cli.destroy:destroy_cmd",
    "validate": "labctl.cli.validate:validate_cmd", "render": "labctl.cli.render:render_cmd",
    "sim": "labctl.cli.sim:sim_group", "exec": "labctl.cli.exec:exec_cmd", "docker": "labctl.cli.docker:docker_cmd",
    "demo": "labctl.cli.demo:demo_group", "env": "labctl.cli.env:env_cmd",
"ls": "labctl.cli.ls:ls_cmd",
    "roster": "labctl.cli.roster:roster_cmd", "snapshot": "labctl.cli.snapshot:snapshot_group",
    "reset": "labctl.cli.snapshot:reset_cmd", "stop": "labctl.cli.power:stop_cmd",
    "start": "labctl.cli.power:start_cmd", "image": "labctl.cli.image:image_group",
    "report": "labctl.cli.report:report_cmd",
}


class _LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMANDS:
            module, attr = COMMANDS[cmd_name].split(":")
            loaded = getattr(importlib.import_module(module), attr)
            if not isinstance(loaded, click.Command):
                raise TypeError(f"{COMMANDS[cmd_name]} is not a click command")
            command = loaded
            self.add_command(command, cmd_name)
        return command


@click.group("labctl", cls=_LazyGroup)
@click.version_option(package_name="labctl")
@click.option("--log-level", default=lambda: os.environ.get("LABCTL_LOG", "WARNING"), show_default="WARNING",
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              help="Log detail on stderr (never includes secrets).")
@click.option("--retry-budget", default=lambda: float(os.environ.get("LABCTL_RETRY_BUDGET", "120")),
              show_default="120", type=click.FloatRange(min=0), metavar="SECONDS",
              help="How long a host call retries through transient failures (dropped connections, HTTP 500, "
                   "a busy WinRM) before the run stops with exit code 75.")
def cli(log_level: str, retry_budget: float) -> None:
    """Build Hyper-V labs of Windows container hosts over PowerShell Remoting.

    Exit codes: 0 ok; 1 a VM failed at a stage (the others finished) or is not healthy;
    2 bad command line or invalid lab file; 3 the host refused the lab in preflight (nothing changed);
    4 the host is unreachable or refused the credentials; 5 another run holds the lab lock;
    6 a host command failed; 75 the host kept failing transiently (run again); 130 interrupted.
    """
    logs.configure(log_level)
    connection.set_retry_budget(retry_budget)




# Imported at once (not lazily): it registers the PowerShell completion protocol with click, which answers a
# completion request before any command is looked up.
cli.add_command(completion.completion_cmd)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
