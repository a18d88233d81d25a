"""``serve``: the push service loop (see ``reconciler/serve/loop.py`` for what one pass does)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from reconciler.cli.app import App, pass_app
from reconciler.cli.serve_sync import build_syncer, sync_options
from reconciler.errors import UsageError
from reconciler.serve import logformat, metrics, schedule
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
    help="At most N runs in flight at once on the pools serve launches, shared by every serve "
    "process on the store (default: pool, queue and deployment limits only).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0, max=65535),
    default=None,
    metavar="PORT",
    help="Serve Prometheus metrics on /metrics, and /healthz and /readyz probes, on this port "
    "(0: any free port, logged).",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    metavar="HOST",
    help="Address the metrics port listens on (0.0.0.0 in a container, for the scraper and probes).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON object per line (ts, level, msg, fields), for log pipelines.",
)
@sync_options
@pass_app
def serve_cmd(
    app: App,
    once: bool,
    interval: float,
    lookback: float,
    max_concurrent: int | None,
    metrics_port: int | None,
    metrics_host: str,
    log_format: str,
    **sync: Any,
) -> int:
    """Launch due scheduled runs of the applied deployments and follow them to their end.

    Runs until SIGTERM/SIGINT (the pass in progress finishes; runs in flight keep running); logs one
    line per event on stderr.
    """
    options = serve.ServeOptions(
        interval=interval, lookback=lookback, max_concurrent=max_concurrent, once=once
    )
    log = logformat.json_log(app.err) if log_format == "json" else app.err
    syncer = build_syncer(app, log=log, **sync)  # continuous sync of a Git ref (serve/sync.py), when asked
    hooks: dict[str, Any] = dict(syncer.loop_hooks()) if syncer is not None else {}
    ctx = app.run_context()
    server: metrics.MetricsServer | None = None
    if metrics_port is not None:
        # ready while passes succeed and the last is at most three intervals (and a minute) old
        observed = metrics.ServeMetrics(ctx.store, stale_after=3 * interval + 60)
        server = _listen(observed, host=metrics_host, port=metrics_port)
        hooks["after_pass"] = observed.observe_pass
        if syncer is not None:
            observed.follow_sync(lambda: syncer.totals)
            syncer.on_lock_wait = observed.observe_lock_wait
        log(f"{schedule.iso_utc(datetime.now(UTC).replace(microsecond=0))} serve: metrics on {server.url}")
    try:
        return serve.ServeLoop(ctx, log=log, options=options, **hooks).run()
    finally:
        if server is not None:
            server.close()


def _listen(observed: metrics.ServeMetrics, *, host: str, port: int) -> metrics.MetricsServer:
    try:
        return metrics.MetricsServer(observed, host=host, port=port).start()
    except OSError as exc:
        raise UsageError(
            f"--metrics-port {port}: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None


COMMANDS = [serve_cmd]
