"""The context object every command receives: the engine's Workspace plus what a terminal needs."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import click

from reconciler.engine import STATE_ENV, Workspace

__all__ = ["STATE_ENV", "App", "pass_app"]


@dataclass
class App(Workspace):
    """A Workspace printed through click (colour, ``NO_COLOR``, prompts on a terminal only)."""

    @property
    def interactive(self) -> bool:
        return sys.stdin.isatty() and sys.stdout.isatty()

    def out(self, text: str = "") -> None:
        click.echo(text)

    def err(self, text: str) -> None:
        click.echo(text, err=True)


pass_app = click.make_pass_decorator(App)
