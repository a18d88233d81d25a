"""The exit-code contract, owned in one place: 0 success, 1 any error (usage too), 2 only for
``plan --detailed-exitcode`` with changes. An error is one ``error: ...`` line (or ``FILE:LINE:COL``
lines) on stderr; a traceback only with ``RECONCILE_DEBUG=1``. click's own defaults (exit 2 for
usage errors, ``Error:``) would break the contract, so the group runs click with
``standalone_mode=False`` and reports everything itself.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from reconciler.errors import ReconcileError, SpecError

DEBUG_ENV = "RECONCILE_DEBUG"


class ReconcileGroup(click.Group):
    """A click group whose ``main`` maps every outcome to our exit codes."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any) -> NoReturn:  # type: ignore[override]
        try:
            result = super().main(args, prog_name=prog_name or "reconcile", standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except BaseException as exc:
            sys.exit(report(exc))
        sys.exit(result if isinstance(result, int) else 0)


def report(exc: BaseException) -> int:
    """Print an error the way the contract says and return its exit code."""
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else 1
    if _debug():
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, SpecError):
        for diagnostic in exc.report():
            click.echo(str(diagnostic), err=True)
        return 1
    if isinstance(exc, click.UsageError):
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        return 1
    if isinstance(exc, click.ClickException):
        click.echo(f"error: {exc.format_message()}", err=True)
        return 1
    if isinstance(exc, click.Abort | KeyboardInterrupt):
        click.echo("error: aborted", err=True)
        return 1
    if isinstance(exc, ReconcileError):
        click.echo(f"error: {_one_line(str(exc))}", err=True)
        return 1
    click.echo(
        f"error: internal error: {type(exc).__name__}: {_one_line(str(exc))} "
        f"(set {DEBUG_ENV}=1 for a traceback)",
        err=True,
    )
    return 1


def _debug() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0", "false")


def _one_line(text: str) -> str:
    return " ".join(text.split()) if "\n" in text else text
