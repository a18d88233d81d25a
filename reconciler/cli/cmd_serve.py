"""``serve``: the push service loop (see ``reconciler/triggers/serve.py`` for what one pass does)."""

from __future__ import annotations

from typing import Any

import click

from reconciler.cli.app import App, pass_app
from reconciler.cli.serve_sync import build_syncer, sync_options
from reconciler.serve import loop as serve


@click.command("serve")
@click.option("--once", is_flag=True, help="One pass, then exit (for cron-driven use).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=serve.DEFAULT_SERVE.interval,
    show_default=True,
    metavar="S",
    help="Seconds between passes.",
)
@click.option(
    "--lookback",
    type=click.FloatRange(min=0),
    default=serve.DEFAULT_SERVE.lookback,
    show_default=True,
    metavar="S",
    help="A slot missed by up to S seconds (serve was down) is still launched; older ones are not, "
    "so a restart never floods the pools.",
)
@click.option(
    "--max-concurrent",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="At most N runs in flight at once on the pools serve launches (default: pool and "
    "deployment limits only).",
)
@sync_options
@pass_app
def serve_cmd(
    app: App, once: bool, interval: float, lookback: float, max_concurrent: int | None, **sync: Any
) -> int:
    """Launch due scheduled runs of the applied deployments and follow them to their end.

    Runs until SIGTERM/SIGINT (the pass in progress finishes; runs in flight keep running); logs one
    line per event on stderr.
    """
    options = serve.ServeOptions(
        interval=interval, lookback=lookback, max_concurrent=max_concurrent, once=once
    )
    syncer = build_syncer(app, **sync)  # continuous sync of a Git ref (serve/sync.py), when asked
    hooks = syncer.loop_hooks() if syncer is not None else {}
    loop = serve.ServeLoop(app.run_context(), log=app.err, options=options, **hooks)
    return loop.run()


COMMANDS = [serve_cmd]
