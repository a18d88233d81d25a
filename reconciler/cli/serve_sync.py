"""``serve``'s continuous-sync options (``--sync-interval``, ``--sync-ref``, ``--self-heal``, ``--prune``).

Kept apart from ``cmd_serve`` so the sync feature is one decorator and one call there: the options
become a :class:`~reconciler.serve.sync.Syncer` whose hooks the serve loop takes as keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from reconciler.cli.app import App
from reconciler.serve import sync

F = TypeVar("F", bound=Callable[..., Any])


def sync_options(command: F) -> F:
    """Add the continuous-sync options to a click command (they arrive as keyword arguments)."""
    decorators = [
        click.option(
            "--sync-interval",
            type=click.FloatRange(min=0.1),
            default=None,
            metavar="S",
            help="Every S seconds, fetch the Git ref (--sync-ref), plan it against the store and log "
            "the changes pending and the drift (off by default).",
        ),
        click.option(
            "--sync-ref",
            default=None,
            metavar="REF",
            help="The Git ref continuous sync follows (default: the branch checked out; a branch "
            "with an upstream is fetched from its remote).",
        ),
        click.option(
            "--self-heal",
            is_flag=True,
            help="Apply what a sync pass finds (new commits and drift) through the same guards as "
            "`apply`; without it, sync only reports.",
        ),
        click.option(
            "--prune",
            is_flag=True,
            help="Let sync delete objects removed from the file (with --self-heal).",
        ),
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return command


def build_syncer(
    app: App,
    *,
    log: Callable[[str], None],
    sync_interval: float | None,
    sync_ref: str | None,
    self_heal: bool,
    prune: bool,
) -> sync.Syncer | None:
    """The continuous-sync pass serve runs on its own interval (None when ``--sync-interval`` is not
    given); its ``totals`` are the sync counters, and ``loop_hooks()`` what ``ServeLoop`` takes."""
    if sync_interval is None:
        flags = (("--sync-ref", sync_ref), ("--self-heal", self_heal), ("--prune", prune))
        given = [name for name, on in flags if on]
        if given:
            verb = "needs" if len(given) == 1 else "need"
            raise click.UsageError(f"{', '.join(given)} {verb} --sync-interval")
        return None
    options = sync.SyncOptions(interval=sync_interval, ref=sync_ref, self_heal=self_heal, prune=prune)
    return sync.Syncer(app, options, log=log)
