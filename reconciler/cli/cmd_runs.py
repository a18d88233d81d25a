"""``run``, ``runs``, ``logs``, ``cancel``: launch runs and follow them."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import click
import orjson

from reconciler.cli.app import App, pass_app
from reconciler.cli.cmd_state import require_state
from reconciler.errors import ReconcileError, UsageError
from reconciler.launch import LogChunk, RunContext, runs
from reconciler.objects import Address
from reconciler.state import RunRecord, RunState


def _pairs(values: tuple[str, ...], what: str) -> dict[str, Any]:
    """``K=V`` options; V is JSON when it parses as JSON (``rows=5`` is 5), else a string."""
    parsed: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} must look like KEY=VALUE, got {item!r}")
        try:
            parsed[key] = json.loads(raw)
        except ValueError:
            parsed[key] = raw
    return parsed


@click.command("run")
@click.argument("deployment", metavar="FLOW/DEPLOYMENT")
@click.option(
    "--param", "params", multiple=True, metavar="K=V", help="Parameter override (V parsed as JSON if it can)."
)
@click.option("--job-variable", "job_variables", multiple=True, metavar="K=V", help="Job variable override.")
@click.option("--wait", is_flag=True, help="Follow the run, streaming its log; exit 0 only if it COMPLETED.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="With --wait: give up waiting after S seconds (exit 1).",
)
@pass_app
def run_cmd(
    app: App,
    deployment: str,
    params: tuple[str, ...],
    job_variables: tuple[str, ...],
    wait: bool,
    timeout: float | None,
) -> int:
    """Launch a run of an applied deployment on its work pool."""
    if "/" not in deployment:
        raise UsageError(f"name the deployment as FLOW/DEPLOYMENT, got {deployment!r}")
    ctx = app.run_context()
    try:
        run = runs.create(
            ctx,
            deployment,
            parameters=_pairs(params, "--param"),
            job_variables=_pairs(job_variables, "--job-variable"),
        )
        app.out(f"Created run {run.id} of {deployment}")
        paused = _paused_pool(ctx, run)
        if paused is not None:
            return _wait_for_pool(app, ctx, run, paused, wait=wait)
        run = runs.launch(ctx, run)
        if run.state is RunState.CRASHED:
            app.err(f"error: run {run.id} CRASHED: {run.message}")
            return 1
        app.out(f"Submitted run {run.id}: {run.infrastructure_id}")
        if not wait:
            return 0
        run = runs.wait(ctx, run, timeout=timeout, on_log=_LogPrinter(app))
        return _finish(app, run, timeout)
    finally:
        ctx.close()


def _paused_pool(ctx: RunContext, run: RunRecord) -> str | None:
    """The name of ``run``'s work pool if the stored state has it paused (its runs wait), else None."""
    pool = ctx.live.get(Address.pool(run.pool)) if run.pool else None
    return run.pool if pool is not None and pool.resource.body.get("paused") else None


def _wait_for_pool(app: App, ctx: RunContext, run: RunRecord, pool: str, *, wait: bool) -> int:
    """A run of a paused pool is recorded and waits, as Prefect's is: its workers do not take runs
    of a paused pool, and ``reconcile serve`` launches it once the pool is resumed."""
    runs.hold(ctx, run, f"pool {pool} is paused")
    app.err(
        f"Run {run.id} is SCHEDULED: work pool {pool!r} is paused, so nothing launches it until the "
        f"pool is resumed (set `paused: false` and apply); `reconcile serve` then launches it"
    )
    if wait:
        app.err(f"error: not waiting for run {run.id}: its pool {pool!r} is paused")
        return 1
    return 0


class _LogPrinter:
    """Streams a run's log; where the platform keeps logs elsewhere (Cloud Run), says where, once."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.pointed = False

    def __call__(self, chunk: LogChunk) -> None:
        if chunk.text:
            click.echo(chunk.text, nl=False)
        elif chunk.location and not self.pointed:
            self.app.err(f"(log: {chunk.location})")
            self.pointed = True


def _finish(app: App, run: RunRecord, timeout: float | None) -> int:
    if not run.state.terminal:
        app.err(
            f"error: run {run.id} is still {run.state.value} after {timeout:g}s; it keeps running "
            f"(stop it with `reconcile cancel {run.id}`)"
        )
        return 1
    code = "" if run.exit_code is None else f" (exit code {run.exit_code})"
    line = f"Run {run.id} {run.state.value}{code}"
    if run.message and run.state is not RunState.COMPLETED:
        line += f": {run.message}"
    if run.state is RunState.COMPLETED:
        app.out(line)
        return 0
    app.err(line)
    return 1


@click.command("runs")
@click.option("--deployment", default=None, metavar="FLOW/NAME", help="Only runs of this deployment.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--reconcile", "recover", is_flag=True, help="Adopt or close runs whose launch was interrupted."
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=runs.CLAIM_GRACE.total_seconds(),
    show_default=True,
    help="With --reconcile: leave launches younger than this many seconds alone (they may be under way).",
)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@pass_app
def runs_cmd(app: App, deployment: str | None, as_json: bool, recover: bool, grace: float, limit: int) -> int:
    """List runs, newest first (states refreshed from their infrastructure)."""
    require_state(app)  # a broken or renamed file never shows an empty list that looks like lost runs
    ctx = app.run_context()
    try:
        if recover:
            for run in runs.recover(ctx, grace=timedelta(seconds=grace)):
                app.err(f"{run.id}: {run.state.value} ({run.message})")
        listed = [_refresh(ctx, r) for r in ctx.store.list_runs(deployment=deployment, limit=limit)]
    finally:
        ctx.close()
    if as_json:
        app.out(orjson.dumps([run_json(r) for r in listed], option=orjson.OPT_INDENT_2).decode())
        return 0
    if not listed:
        app.out("No runs.")
        return 0
    header = "  ".join(
        (
            f"{'RUN':36}",
            f"{'DEPLOYMENT':28}",
            f"{'STATE':10}",
            f"{'EXIT':>4}",
            f"{'STARTED':19}",
            f"{'ENDED':19}",
        )
    )
    header += f"  {'INFRASTRUCTURE':24}  MESSAGE"
    app.out(header)
    for run in listed:
        app.out(
            f"{run.id:36}  {run.deployment[:28]:28}  {run.state.value:10}  "
            f"{'' if run.exit_code is None else run.exit_code:>4}  {_time(run.started_at):19}  "
            f"{_time(run.ended_at):19}  {_cut(run.infrastructure_id or '-', 24):24}  {_cut(_why(run), 80)}"
        )
    return 0


def _why(run: RunRecord) -> str:
    """What the MESSAGE column says: the run's message, else why a queued run is held back."""
    return run.message or (f"waiting: {run.waiting}" if run.waiting else "")


def _cut(text: str, width: int) -> str:
    """One line of at most ``width`` characters (a message may hold a multi-line reason)."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _refresh(ctx: RunContext, run: RunRecord) -> RunRecord:
    try:
        return runs.refresh(ctx, run)
    except ReconcileError:
        return run  # unreachable infrastructure: show what we last knew


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def run_json(run: RunRecord) -> dict[str, Any]:
    return {
        "id": run.id,
        "deployment": run.deployment,
        "pool": run.pool,
        "pool_type": run.pool_type,
        "state": run.state.value,
        "exit_code": run.exit_code,
        "message": run.message,
        "waiting": run.waiting,
        "reason": run.reason,
        "parameters": dict(run.parameters),
        "infrastructure_id": run.infrastructure_id,
        "log_path": run.log_path,
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "scheduled_for": run.scheduled_for.isoformat() if run.scheduled_for else None,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
    }


def _get(ctx: RunContext, run_id: str) -> RunRecord:
    run = ctx.store.get_run(run_id)
    if run is None:
        matches = [r for r in ctx.store.list_runs(limit=10_000) if r.id.startswith(run_id)]
        if len(matches) == 1:
            return matches[0]
        raise UsageError(f"no run {run_id!r}" if not matches else f"run id {run_id!r} is ambiguous")
    return run


@click.command("logs")
@click.argument("run_id")
@pass_app
def logs_cmd(app: App, run_id: str) -> int:
    """Print a run's output (where its platform exposes it)."""
    ctx = app.run_context()
    try:
        run = _get(ctx, run_id)
        if not run.infrastructure_id:
            raise ReconcileError(
                f"run {run.id} never reached its infrastructure ({run.state.value}): no logs"
            )
        chunk = ctx.launcher_for(run).logs(ctx.job_for(run), run.infrastructure_id)
    finally:
        ctx.close()
    click.echo(chunk.text, nl=False)
    if chunk.location:
        app.err(f"(log: {chunk.location})")
    return 0


@click.command("cancel")
@click.argument("run_id")
@pass_app
def cancel_cmd(app: App, run_id: str) -> int:
    """Stop a run's infrastructure and mark it CANCELLED."""
    ctx = app.run_context()
    try:
        run = runs.cancel(ctx, _get(ctx, run_id))
    finally:
        ctx.close()
    app.out(f"Run {run.id}: {run.state.value}")
    return 0


COMMANDS = [run_cmd, runs_cmd, logs_cmd, cancel_cmd]
