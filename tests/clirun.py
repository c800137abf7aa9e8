"""The one way tests run the labctl CLI in-process and collect what it printed (stdout, stderr, exit code).

``labctl("up", lab)`` is what a user typing ``labctl up LAB`` sees: click's runner with stdout and stderr
kept apart, exceptions propagating (a traceback is a failure, not an exit code) unless a test asks to look
at them itself.
"""

from __future__ import annotations

from click.testing import CliRunner, Result

from labctl.cli.main import cli


def labctl(*args: str, env: dict[str, str] | None = None, input: str | None = None,
           catch_exceptions: bool = False) -> Result:
    """Run ``labctl ARGS`` in this process; the Result has .stdout, .stderr, .output and .exit_code."""
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=catch_exceptions)
