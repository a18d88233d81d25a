"""``apply [PLANFILE]``: plan (or load a saved plan), show, confirm, apply, launch ``apply: changed`` runs."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson

from reconciler import apply as applying
from reconciler import plan as planning
from reconciler.cli.app import App, pass_app
from reconciler.cli.cmd_plan import ref_option, render
from reconciler.errors import PlanFileError, ReconcileError
from reconciler.launch import runs
from reconciler.state import RunRecord, Store
from reconciler.triggers import git as gitrules


@click.command("apply")
@click.argument("planfile", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", "-y", is_flag=True, help="Apply without asking (required when not on a terminal).")
@click.option(
    "--prune", is_flag=True, help="Delete objects this project created that are gone from the file."
)
@click.option(
    "--allow-empty", is_flag=True, help="Allow a file that declares nothing while the state has objects."
)
@click.option(
    "--lock-timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for the lock."
)
@click.option("--allow-rollback", is_flag=True, help="Allow applying a commit older than the last applied.")
@ref_option
@pass_app
def apply_cmd(
    app: App,
    planfile: Path | None,
    yes: bool,
    prune: bool,
    allow_empty: bool,
    lock_timeout: float,
    allow_rollback: bool,
    ref: str | None,
) -> int:
    """Make the stored state match the file (or exactly apply a saved plan)."""
    options = applying.ApplyOptions(allow_empty=allow_empty)
    saved = _read_plan_file(planfile) if planfile else None
    if saved is not None and prune:
        raise click.UsageError("--prune is decided when planning: use `reconcile plan --prune --out FILE`")
    if saved is not None and ref:
        raise click.UsageError("a saved plan already names its commit: drop --ref")
    if ref:
        app.use_ref(ref)
    desired = None if saved is not None else app.desired()
    store = app.store(saved.project if saved is not None else None)
    with store.lock(timeout=lock_timeout, info=applying.lock_info()):
        live = store.read_all()
        if saved is not None:
            applying.verify(saved, live)
            result = saved
        else:
            assert desired is not None
            result = applying.plan_for(desired, live, prune=prune)
        applying.check_not_empty(result, options=options)
        git = result.source.git
        if git is not None:
            found = gitrules.relation_at(app.project_dir, git.commit, live.last_commit)
            gitrules.refuse_rollback(found, git.commit, live.last_commit, allow=allow_rollback)
        app.out(render(app, result, "text"))
        if not result.has_changes:
            if git is not None:  # nothing to write, but the state is now at this commit
                applying.execute(result, store, options=options)
            return 0
        confirm(app, yes)
        outcome = _execute(result, store, options=options)
    app.out(f"\nApply complete: {outcome.describe()}.")
    _launch_after_apply(app, result)
    return 0


def _execute(result: planning.Plan, store: Store, *, options: applying.ApplyOptions) -> applying.ApplyResult:
    """Apply, with a progress bar on a terminal when there is enough to wait for (never in CI logs)."""
    writes = len(result.writes)
    if writes < _PROGRESS_FROM or not sys.stderr.isatty():
        return applying.execute(result, store, options=options)
    with click.progressbar(length=writes, label="Applying", file=sys.stderr) as bar:
        return applying.execute(result, store, options=options, on_change=lambda _change: bar.update(1))


_PROGRESS_FROM = 20


def _read_plan_file(path: Path) -> planning.Plan:
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise PlanFileError(f"no such plan file: {path}") from None
    except orjson.JSONDecodeError as exc:
        raise PlanFileError(f"{path} is not a plan file (invalid JSON: {exc})") from None
    return planning.decode_plan(doc)


def confirm(app: App, yes: bool) -> None:
    if yes:
        return
    if not app.interactive:
        raise ReconcileError(
            "refusing to apply without confirmation on a non-interactive terminal; pass --yes"
        )
    if click.prompt("\nApply these changes? Only 'yes' is accepted", default="", show_default=False) != "yes":
        raise click.Abort()


def _launch_after_apply(app: App, result: planning.Plan) -> list[RunRecord]:
    """Runs whose ``apply: changed`` rule fired; launched, not waited for."""
    launched: list[RunRecord] = []
    if not result.runs:
        return launched
    ctx = app.run_context()
    try:
        for request in result.runs:
            run = runs.launch(ctx, runs.create(ctx, request.deployment, reason=request.reason))
            launched.append(run)
            app.out(f"Launched run {run.id} of {run.deployment} ({request.reason}): {run.state.value}")
    finally:
        ctx.close()
    return launched


COMMANDS = [apply_cmd]
