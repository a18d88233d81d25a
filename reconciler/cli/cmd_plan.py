"""``validate`` and ``plan``."""

from __future__ import annotations

import os
from pathlib import Path

import click
import orjson

from reconciler import engine
from reconciler import plan as planning
from reconciler.cli.app import App, pass_app
from reconciler.errors import PlanFileError
from reconciler.objects import Kind
from reconciler.state import CountsRequests

ref_option = click.option(
    "--ref", default=None, metavar="REF", help="Read the desired state at a Git commit, branch or tag."
)


@click.command("validate")
@ref_option
@pass_app
def validate_cmd(app: App, ref: str | None) -> int:
    """Check the file: schema, names, references, pool-type variables, entrypoints, env placeholders."""
    if ref:
        app.use_ref(ref)
    desired = app.validate_only()
    for warning in desired.warnings:
        app.err(warning)
    counts = {kind: len(desired.of_kind(kind)) for kind in Kind}
    always = (Kind.BLOCK, Kind.WORK_POOL, Kind.DEPLOYMENT)  # the others are named when declared
    shown = [k for k in Kind if k in always or counts[k]]
    listed = ", ".join(f"{counts[k]} {k.label}{'' if counts[k] == 1 else 's'}" for k in shown)
    app.out(f"{app.file} is valid: {listed} (project {desired.project!r})")
    return 0


def render(app: App, result: planning.Plan, fmt: str) -> str:
    if fmt == "json":
        return orjson.dumps(planning.encode_plan(result), option=orjson.OPT_INDENT_2).decode()
    if fmt == "markdown":
        return planning.render_markdown(result)
    return planning.render_text(result, color=app.color)


def _report_requests(app: App) -> None:
    """Stores that talk HTTP (a Prefect server) count their requests: say how many a plan cost, on
    stderr so JSON and Markdown output stay clean."""
    store = app.store()
    if isinstance(store, CountsRequests):
        detail = ", ".join(f"{method} {n}" for method, n in sorted(store.requests_by_method.items()))
        if store.requests_retried:
            detail += f"; {store.requests_retried} of them retried"
        app.err(f"{store.url}: {store.requests_made} HTTP requests" + (f" ({detail})" if detail else ""))


def write_plan_file(path: Path, result: planning.Plan) -> None:
    """The plan, readable by its owner only (0600, like Terraform's): it names the store and the objects."""
    data = orjson.dumps(planning.encode_plan(result), option=orjson.OPT_INDENT_2) + b"\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT: tighten it
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise PlanFileError(f"cannot write the plan to {path}: {exc.strerror or exc}") from None


@click.command("plan")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (schemas/plan.schema.json).")
@click.option("--markdown", "as_markdown", is_flag=True, help="Print the plan as Markdown (PR comments).")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the plan for `apply PLANFILE`.",
)
@click.option("--prune", is_flag=True, help="Plan deletes for objects removed from the file.")
@click.option(
    "--preflight",
    is_flag=True,
    help="Also check each push pool against its cloud with read-only calls (exit 1 if a check fails).",
)
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes, 0 when none, 1 on error."
)
@ref_option
@pass_app
def plan_cmd(
    app: App,
    as_json: bool,
    as_markdown: bool,
    out: Path | None,
    prune: bool,
    preflight: bool,
    detailed_exitcode: bool,
    ref: str | None,
) -> int:
    """Show what apply would change."""
    if as_json and as_markdown:
        raise click.UsageError("--json and --markdown are mutually exclusive: choose one output format")
    fmt = "json" if as_json else "markdown" if as_markdown else "text"
    if ref:
        app.use_ref(ref)
    result = engine.plan_only(app, prune=prune, preflight=preflight).plan
    app.out(render(app, result, fmt))
    if fmt != "text":  # the text plan shows them; JSON and Markdown carry them for machines
        for warning in result.warnings:
            app.err(warning)
    _report_requests(app)
    for note in engine.source_notes(app, result):
        (app.out if fmt == "text" else app.err)(note)
    if out is not None:
        write_plan_file(out, result)
        if fmt == "text":
            app.out(f"\nSaved the plan to {out}. Apply exactly this plan with: reconcile apply {out}")
    failed = [f for f in result.preflight or () if not f.ok and not f.skipped]
    if failed:
        app.err(f"error: preflight: {len(failed)} check(s) failed (see the plan's preflight section)")
        return 1
    return 2 if detailed_exitcode and result.has_changes else 0


COMMANDS = [validate_cmd, plan_cmd]
