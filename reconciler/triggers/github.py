"""The GitHub Action's entry (``reconcile -C DIR trigger github``): plan on pull requests, apply on push.

Everything comes from the environment a runner gives a step (read and written by ``github_env``):
the event and its payload, the action's inputs as ``INPUT_*``, ``GITHUB_OUTPUT`` and the job summary.

- ``pull_request``: plan the checkout against the stored state; upsert ONE comment per working
  directory (found again by a hidden marker, edited in place on every push) with the plan, the runs
  merging would launch (``run_on: push`` rules against the pull request's changed paths and base
  branch) and a blast-radius graph, cut to GitHub's comment limit with a pointer to the full plan.
- ``push`` to the default branch: ``trigger push`` (apply, then launch the matching runs).
- Always: the job summary, and the outputs ``has-changes``, ``plan-json`` (a file path, for
  ``actions/upload-artifact``) and ``summary``.
A comment that cannot be posted (a fork's read-only token) is a warning, not a failed plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from reconciler import desired as desired_state
from reconciler import engine
from reconciler import plan as planning
from reconciler.engine import gitrules
from reconciler.plan.render_markdown import markdown_table
from reconciler.triggers import push
from reconciler.triggers.github_api import GitHubClient, GitHubError
from reconciler.triggers.github_comment import marker, upsert_comment
from reconciler.triggers.github_env import (
    PULL_EVENTS,
    Event,
    Inputs,
    Mode,
    append_summary,
    decide,
    github_client,
    write_outputs,
    write_plan_json,
)

SUMMARY_LIMIT = 340_000  # GitHub allows 1 MiB of summary per step; 3 bytes per UTF-16 unit at worst

# the Action has no allow-rollback input: a rollback is a deliberate, one-off apply by a person
ROLLBACK_REMEDY = (
    "the Action never rolls back: push a revert commit instead, or roll back once, on purpose, with "
    "`reconcile apply --allow-rollback` from a checkout of that commit"
)


@dataclass(frozen=True)
class Report:
    """What a step hands back: outputs, the job summary, the exit code."""

    has_changes: bool
    summary: str
    markdown: str
    plan_json: str = ""
    exit_code: int = 0


def run_action(ws: engine.Workspace, *, environ: Mapping[str, str]) -> int:
    inputs, event = Inputs.from_env(environ), Event.from_env(environ)
    mode, why = decide(inputs, event)
    ws.out(f"prefect-reconciler: {mode.value} ({why})")
    if mode is Mode.SKIP:
        report = Report(False, f"Nothing to do: {why}.", f"prefect-reconciler: nothing to do ({why}).\n")
    elif mode is Mode.PLAN:
        report = _plan(ws, inputs, event, environ)
    else:
        report = _apply(ws, inputs, event, environ)
    write_outputs(
        environ.get("GITHUB_OUTPUT"),
        {
            "has-changes": str(report.has_changes).lower(),
            "plan-json": report.plan_json,
            "summary": report.summary,
        },
    )
    append_summary(environ.get("GITHUB_STEP_SUMMARY"), report.markdown)
    return report.exit_code


# -- pull requests -----------------------------------------------------------------------------------


def _plan(ws: engine.Workspace, inputs: Inputs, event: Event, environ: Mapping[str, str]) -> Report:
    planned = engine.plan_only(ws, prune=inputs.prune, preflight=inputs.preflight)
    result, desired = planned.plan, planned.desired
    assert desired is not None
    ws.out(planning.render_text(result))
    notes = [f"> {n.removeprefix('note: ')}" for n in engine.source_notes(ws, result)]
    plan_json = write_plan_json(result, environ, ws.project_dir, inputs.working_directory)
    client = github_client(inputs, event, environ)
    try:
        merge_runs: tuple[planning.RunRequest, ...] = ()
        if event.name in PULL_EVENTS:
            paths, where = _pull_paths(ws.project_dir, event, client, environ)
            decisions = gitrules.push_decisions(desired.run_rules, branch=event.branch, paths=paths)
            merge_runs = tuple(planning.RunRequest(d, r) for d, r in gitrules.fired(decisions).items())
            notes.append(f"Changed paths of this pull request: {len(paths)} ({where}).")
        options = planning.MarkdownOptions(
            notes=tuple(notes),
            extra_runs=merge_runs,
            runs_title="Runs merging would launch",
            footer=f"<sub>prefect-reconciler · working directory `{inputs.working_directory}`"
            + (f" · [workflow run]({event.run_url})" if event.run_url else "")
            + "</sub>",
        )
        overflow = f"The full plan is in the plan JSON (`{plan_json.name}`, output `plan-json`)."
        full = planning.render_markdown(
            result, options=replace(options, limit=SUMMARY_LIMIT, overflow=overflow)
        )
        if event.name in PULL_EVENTS and inputs.comment:
            body = planning.render_markdown(
                result, options=_comment_options(options, inputs, event, plan_json)
            )
            _comment(ws, client, event, marker(inputs.working_directory), body)
    finally:
        if client is not None:
            client.close()
    failed = [f for f in result.preflight or () if not f.ok and not f.skipped]
    if failed:
        ws.err(f"error: preflight: {len(failed)} check(s) failed (see the plan's preflight section)")
    summary = planning.summary_line(result)
    return Report(result.has_changes, summary, full, str(plan_json), 1 if failed else 0)


def _comment_options(
    options: planning.MarkdownOptions, inputs: Inputs, event: Event, plan_json: Path
) -> planning.MarkdownOptions:
    where = f"the [job summary]({event.run_url})" if event.run_url else "the job summary"
    overflow = f"The full plan is in {where} and in the plan JSON (`{plan_json.name}`, output `plan-json`)."
    return replace(
        options, marker=marker(inputs.working_directory), limit=planning.COMMENT_LIMIT, overflow=overflow
    )


def _comment(ws: engine.Workspace, client: GitHubClient | None, event: Event, mark: str, body: str) -> None:
    number = event.pull_number
    if client is None or number is None:
        ws.out("::warning::no github-token (or no pull request number): the plan comment was not posted")
        return
    try:
        comment_id, created = upsert_comment(client, event.repository, number, mark, body)
    except GitHubError as exc:
        ws.out(f"::warning::could not post the plan comment: {exc}")
        return
    ws.out(f"{'Created' if created else 'Updated'} plan comment {comment_id} on #{number}")


def _pull_paths(
    project_dir: Path, event: Event, client: GitHubClient | None, environ: Mapping[str, str]
) -> tuple[tuple[str, ...], str]:
    """The pull request's changed paths, project-relative: from local history, else from the API."""
    base_sha = str((event.pull.get("base") or {}).get("sha") or "")
    try:
        with desired_state.GitRepo.open(project_dir) as repo:
            if repo.has_commit(base_sha):
                head = repo.resolve("HEAD")
                base = repo.merge_base(base_sha, head)
                changed = gitrules.changed_paths(repo, base=base, head=head, prefix=repo.prefix(project_dir))
                return changed.paths, f"{(base or '')[:12]}..{head[:12]} from the clone"
    except desired_state.GitSourceError:
        pass
    if client is None or event.pull_number is None:
        return (), "unknown: base commit not in the clone and no token to ask GitHub"
    prefix = _workspace_prefix(project_dir, environ)
    paths: dict[str, None] = {}
    for item in client.pull_files(event.repository, event.pull_number):
        for key in ("previous_filename", "filename"):
            if item.get(key):
                paths[gitrules.project_relative(str(item[key]), prefix)] = None
    return tuple(paths), "from the GitHub API"


def _workspace_prefix(project_dir: Path, environ: Mapping[str, str]) -> str:
    workspace = Path(environ.get("GITHUB_WORKSPACE") or ".").resolve()
    try:
        rel = Path(project_dir).resolve().relative_to(workspace).as_posix()
    except ValueError:
        return ""
    return "" if rel == "." else rel


# -- pushes ------------------------------------------------------------------------------------------


def _apply(ws: engine.Workspace, inputs: Inputs, event: Event, environ: Mapping[str, str]) -> Report:
    after = str(event.payload.get("after") or environ.get("GITHUB_SHA") or "HEAD")
    before = event.payload.get("before") if event.name == "push" else None
    with desired_state.GitRepo.open(ws.project_dir) as repo:
        result = push.trigger_push(
            ws,
            repo,
            push.PushEvent(before=before, after=after, branch=event.branch),
            options=engine.ReconcileOptions(prune=inputs.prune, rollback_remedy=ROLLBACK_REMEDY),
            review=lambda p: ws.out(planning.render_text(p)) is None,
        )
    for line in push.describe(result):
        ws.out(line)
    plan_json = write_plan_json(result.plan, environ, ws.project_dir, inputs.working_directory)
    markdown = _apply_markdown(result, inputs, event)
    launched = sum(1 for r in result.runs if not r.failed)
    summary = f"{planning.summary_line(result.plan)} Runs launched: {launched}."
    if result.failed:
        ws.err("error: some runs could not be launched (see above)")
    return Report(result.applied.changed, summary, markdown, str(plan_json), 1 if result.failed else 0)


def _apply_markdown(result: push.PushResult, inputs: Inputs, event: Event) -> str:
    requests = tuple(planning.RunRequest(r.deployment, r.reason) for r in result.runs)
    options = planning.MarkdownOptions(
        heading="Reconcile apply",
        notes=(f"Compared {result.changed.why}: {len(result.changed.paths)} changed paths.",),
        extra_runs=requests,
        runs_title="Runs this push asked for",
        limit=SUMMARY_LIMIT,
        overflow="The full plan is in the plan JSON (the step's `plan-json` output).",
    )
    lines = [planning.render_markdown(result.plan, options=options)]
    lines.append(f"**Applied:** {result.applied.describe()}\n")
    if result.runs:
        rows = []
        for item in result.runs:
            state = item.run.state.value if item.run else f"not launched: {item.error}"
            state += "" if item.new or item.run is None else " (launched by an earlier attempt)"
            rows.append((item.run.id if item.run else "—", item.deployment, state, item.reason))
        lines.extend(markdown_table(("run", "deployment", "state", "reason"), rows, code=(0, 1)))
    return "\n".join(lines) + "\n"
