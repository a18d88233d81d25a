"""``reconcile --watch`` / ``reconcile watch``: plan, apply and launch runs on every save.

The loop itself lives in ``reconciler.triggers.watch``; it is imported when the command runs, so
watchfiles (the ``watch`` extra) costs nothing to the other commands and its absence is a plain error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from reconciler.cli.app import App, pass_app
from reconciler.cli.options import lock_timeout_option
from reconciler.errors import UsageError
from reconciler.infra.install import install_hint

F = TypeVar("F", bound=Callable[..., Any])


WATCH_OPTIONS = (
    click.option(
        "--apply/--plan-only",
        "apply_changes",
        default=True,
        help="Apply each change, or only plan (writes nothing).",
    ),
    click.option(
        "--sandbox", default=None, metavar="PREFIX", help="Work on PREFIX-copies of pools and deployments."
    ),
    click.option(
        "--allow-overlap", is_flag=True, help="Start a watch run even while the previous one still runs."
    ),
    click.option(
        "--burst-window",
        type=click.FloatRange(0.05, 60),
        default=0.4,
        show_default=True,
        help="Seconds of quiet that end a burst of changes: one run per deployment per burst.",
    ),
    lock_timeout_option,
)
"""The options of ``reconcile watch``, also taken by ``reconcile --watch`` (one definition, two spellings)."""
WATCH_PARAMS = ("apply_changes", "sandbox", "allow_overlap", "burst_window", "lock_timeout")


def watch_options(command: F) -> F:
    for option in reversed(WATCH_OPTIONS):
        command = option(command)
    return command


@click.command("watch")
@watch_options
@pass_app
def watch_cmd(
    app: App,
    apply_changes: bool,
    sandbox: str | None,
    allow_overlap: bool = False,
    burst_window: float = 0.4,
    lock_timeout: float = 60.0,
) -> int:
    """Watch the project: re-plan on every save of the file or a flow, apply it, and launch the runs
    whose `run_on: watch` paths changed. Ctrl-C stops; runs in flight keep running."""
    try:
        from reconciler.triggers import watch as watching
    except ModuleNotFoundError as exc:
        if exc.name != "watchfiles":
            raise
        raise UsageError(f"watching needs watchfiles: {install_hint('watch')}") from None
    options = watching.WatchOptions(
        apply_changes=apply_changes,
        sandbox=sandbox,
        allow_overlap=allow_overlap,
        burst_window=burst_window,
        lock_timeout=lock_timeout,
    )
    return watching.WatchLoop(app, options=options).run()


COMMANDS = [watch_cmd]
