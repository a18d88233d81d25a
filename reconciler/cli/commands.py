"""Which module defines each ``reconcile`` command, so a command imports only its own module.

``reconcile plan`` should not pay for the serve loop, the importer or the run commands: the group
maps each command name to its ``cmd_*`` module and imports that module the first time the command is
looked up. Only listing every command (``--help``, shell completion) imports them all.
``tests/cli/test_lazy_commands.py`` checks this map against each module's ``COMMANDS``.
"""

from __future__ import annotations

import importlib

import click

from reconciler.cli.group import ReconcileGroup

# command name -> the module (under reconciler.cli) whose COMMANDS defines it
COMMAND_MODULES: dict[str, str] = {
    "validate": "cmd_plan",
    "plan": "cmd_plan",
    "apply": "cmd_apply",
    "run": "cmd_runs",
    "runs": "cmd_runs",
    "logs": "cmd_runs",
    "cancel": "cmd_runs",
    "state": "cmd_state",
    "history": "cmd_state",
    "watch": "cmd_watch",
    "trigger": "cmd_trigger",
    "serve": "cmd_serve",
    "import": "cmd_import",
}
# Modules a build may leave out: their commands are then absent, not an error.
OPTIONAL_MODULES = frozenset({"cmd_watch", "cmd_trigger", "cmd_serve", "cmd_import"})


class LazyGroup(ReconcileGroup):
    """A :class:`ReconcileGroup` that imports a command's module on first lookup."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            self._load(COMMAND_MODULES[cmd_name])
        return self.commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for module in dict.fromkeys(COMMAND_MODULES.values()):
            self._load(module)
        return sorted(self.commands)

    def _load(self, name: str) -> None:
        """Register every command of ``reconciler.cli.<name>`` (once; absent optional modules skip)."""
        qualified = f"{__package__}.{name}"
        try:
            module = importlib.import_module(qualified)
        except ModuleNotFoundError as exc:
            if exc.name == qualified and name in OPTIONAL_MODULES:
                return
            raise
        for command in module.COMMANDS:
            if command.name not in self.commands:
                self.add_command(command)
