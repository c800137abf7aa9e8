"""The ``labctl`` command: one group, one verb per module (labctl/cli/<verb>.py)."""

from __future__ import annotations

import os

import click

from labctl.app import connection
from labctl.cli import logs
from labctl.cli.completion import completion_cmd
from labctl.cli.demo import demo_group
from labctl.cli.destroy import destroy_cmd
from labctl.cli.docker import docker_cmd
from labctl.cli.env import env_cmd
from labctl.cli.exec import exec_cmd
from labctl.cli.image import image_group
from labctl.cli.init import init_cmd
from labctl.cli.ls import ls_cmd
from labctl.cli.plan import plan_cmd
from labctl.cli.power import start_cmd, stop_cmd
from labctl.cli.render import render_cmd
from labctl.cli.report import report_cmd
from labctl.cli.roster import roster_cmd
from labctl.cli.sim import sim_group
from labctl.cli.snapshot import reset_cmd, snapshot_group
from labctl.cli.status import status_cmd
from labctl.cli.up import up_cmd
from labctl.cli.validate import validate_cmd


@click.group("labctl")
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


for _command in (init_cmd, up_cmd, plan_cmd, status_cmd, destroy_cmd, validate_cmd, render_cmd, sim_group,
                 exec_cmd, docker_cmd, demo_group, env_cmd, completion_cmd, ls_cmd, roster_cmd,
                 snapshot_group, reset_cmd, stop_cmd, start_cmd, image_group, report_cmd):
    cli.add_command(_command)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
