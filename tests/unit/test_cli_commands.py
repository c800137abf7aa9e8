"""The CLI imports a command's module only when it runs: every name in the table must load as that command."""

from __future__ import annotations

import click
import pytest

from labctl.cli.main import COMMANDS, cli


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_lazy_command_loads_under_its_name(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert isinstance(command, click.Command) and command.name == name


def test_help_lists_every_command() -> None:
    assert set(COMMANDS) | {"completion"} <= set(cli.list_commands(click.Context(cli)))
