"""``apply [PLANFILE]``: plan (or load a saved plan), show, confirm, apply, launch ``apply: changed`` runs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from reconciler import engine
from reconciler import plan as planning
from reconciler.cli.app import App, pass_app
from reconciler.cli.cmd_plan import ref_option, render
from reconciler.cli.options import lock_timeout_option
from reconciler.errors import PlanFileError, ReconcileError

F = TypeVar("F", bound=Callable[..., Any])

parallelism_option = click.option(
    "--parallelism",
    type=click.IntRange(1, 64),
    default=engine.DEFAULT_PARALLELISM,
    show_default=True,
    help="Writes of one dependency wave in flight at once (blocks, then pools, then deployments).",
)


APPLY_OPTIONS = (
    click.option("--yes", "-y", is_flag=True, help="Apply without asking (required when not on a terminal)."),
    click.option(
        "--prune", is_flag=True, help="Delete objects this project created that are gone from the file."
    ),
    click.option(
        "--allow-empty", is_flag=True, help="Allow a file that declares nothing while the state has objects."
    ),
    lock_timeout_option,
    click.option(
        "--allow-rollback", is_flag=True, help="Allow applying a commit older than the last applied."
    ),
    parallelism_option,
)
"""What every command that applies takes (``apply``, ``trigger push``): one definition."""


def apply_options(command: F) -> F:
    for option in reversed(APPLY_OPTIONS):
        command = option(command)
    return command


@click.command("apply")
@click.argument("planfile", required=False, type=click.Path(dir_okay=False, path_type=Path))
@apply_options
@click.option(
    "--adopt", is_flag=True, help="Take over existing objects no project manages (the plan's adopt entries)."
)
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
    adopt: bool,
    parallelism: int,
    ref: str | None,
) -> int:
    """Make the stored state match the file (or exactly apply a saved plan)."""
    saved = _read_plan_file(planfile) if planfile else None
    if saved is not None and prune:
        raise click.UsageError("--prune is decided when planning: use `reconcile plan --prune --out FILE`")
    if saved is not None and ref:
        raise click.UsageError("a saved plan already names its commit: drop --ref")
    if ref:
        app.use_ref(ref)
    options = engine.ReconcileOptions(
        prune=prune,
        allow_empty=allow_empty,
        allow_rollback=allow_rollback,
        lock_timeout=lock_timeout,
        saved_plan=saved,
        parallelism=parallelism,
        adopt=adopt,
    )
    with _Progress() as progress:
        outcome = engine.reconcile(
            app,
            options,
            review=reviewer(app, yes=yes or saved is not None, progress=progress),
            on_write=progress.advance,
        )
    if outcome.applied is None or not outcome.applied.changed:
        return 0
    app.out(f"\nApply complete: {outcome.applied.describe()}.")
    for launched in outcome.runs:
        app.out(launched.describe())
    return 0


def reviewer(app: App, *, yes: bool, progress: _Progress | None = None) -> engine.Review:
    """Print the plan; on changes, ask for confirmation (a saved plan or ``--yes`` is the approval)."""

    def review(result: planning.Plan) -> bool:
        app.out(render(app, result, "text"))
        if result.has_changes:
            confirm(app, yes)
            if progress is not None:
                progress.start(len(result.writes))
        return True

    return review


class _Progress:
    """A progress bar on a terminal when there is enough to wait for (never in CI logs)."""

    FROM = 20

    def __init__(self) -> None:
        self._bar: Any = None

    def start(self, total: int) -> None:
        if total >= self.FROM and sys.stderr.isatty():
            self._bar = click.progressbar(length=total, label="Applying", file=sys.stderr)
            self._bar.__enter__()

    def advance(self, _change: planning.Change) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


def _read_plan_file(path: Path) -> planning.Plan:
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise PlanFileError(f"no such plan file: {path}") from None
    except IsADirectoryError:
        raise PlanFileError(f"{path} is a directory, not a plan file") from None
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


COMMANDS = [apply_cmd]
