"""The command group imports a command's module only when that command runs (plan start-up time),
and its name -> module map stays the truth about which module defines which command."""

from __future__ import annotations

import importlib
import subprocess
import sys

from reconciler.cli import cli
from reconciler.cli.commands import COMMAND_MODULES
from tests.helpers import REPO


def test_the_map_names_every_command_of_every_module_and_nothing_else() -> None:
    defined = {}
    for module in set(COMMAND_MODULES.values()):
        for command in importlib.import_module(f"reconciler.cli.{module}").COMMANDS:
            defined[command.name] = module
    assert defined == COMMAND_MODULES


def test_every_command_is_listed_and_found() -> None:
    import click

    ctx = click.Context(cli)
    assert cli.list_commands(ctx) == sorted(COMMAND_MODULES)
    for name in COMMAND_MODULES:
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name


def test_plan_imports_no_other_command_module(tmp_path) -> None:
    """Importing the CLI and looking up `plan` leaves the serve loop, the importer and the run
    commands unimported (the eager registration imported them all)."""
    probe = (
        "import sys, click\n"
        "from reconciler.cli import cli\n"
        "assert cli.get_command(click.Context(cli), 'plan') is not None\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('reconciler.'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True, timeout=120
    )
    loaded = set(done.stdout.split())
    assert "reconciler.cli.cmd_plan" in loaded
    for absent in ("cmd_serve", "cmd_import", "cmd_runs", "cmd_trigger", "cmd_apply", "cmd_state"):
        assert f"reconciler.cli.{absent}" not in loaded
    assert "reconciler.serve.loop" not in loaded
