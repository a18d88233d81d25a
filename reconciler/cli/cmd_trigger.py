"""``trigger push`` and ``trigger github``: what an outside event asks for, through reconciler.triggers."""

from __future__ import annotations

import click

from reconciler import desired as desired_state
from reconciler import engine
from reconciler.cli.app import App, pass_app
from reconciler.cli.cmd_apply import apply_options, reviewer
from reconciler.triggers import push


@click.group("trigger")
def trigger_group() -> None:
    """Run what an outside event asks for: a Git push, a GitHub Actions job."""


@trigger_group.command("push")
@click.option(
    "--before", required=True, metavar="SHA", help="The commit before the push (all zeros: a new branch)."
)
@click.option("--after", required=True, metavar="SHA", help="The pushed commit: applied and recorded.")
@click.option("--branch", default=None, help="The branch pushed to (default: the checkout's branch).")
@apply_options
@pass_app
def push_cmd(
    app: App,
    before: str,
    after: str,
    branch: str | None,
    prune: bool,
    yes: bool,
    allow_rollback: bool,
    allow_empty: bool,
    lock_timeout: float,
    parallelism: int,
) -> int:
    """Apply the pushed commit, then launch the runs whose run_on rules match what it changed."""
    if branch is None:
        working = desired_state.detect(app.project_dir)
        branch = working.ref if working else None
    options = engine.ReconcileOptions(
        prune=prune,
        allow_rollback=allow_rollback,
        allow_empty=allow_empty,
        lock_timeout=lock_timeout,
        parallelism=parallelism,
    )

    with desired_state.GitRepo.open(app.project_dir) as repo:
        result = push.trigger_push(
            app, repo, push.PushEvent(before, after, branch), options=options, review=reviewer(app, yes=yes)
        )
    if result.applied.changed:
        app.out(f"\nApply complete: {result.applied.describe()}.")
    app.out(f"Recorded commit {result.plan.source.git.commit[:12] if result.plan.source.git else '?'}.")
    for line in push.describe(result):
        app.out(line)
    return 1 if result.failed else 0


@trigger_group.command("github")
@pass_app
def github_cmd(app: App) -> int:
    """The GitHub Action's step: plan + sticky PR comment on pull requests, apply + runs on push.

    Reads GITHUB_EVENT_NAME, GITHUB_EVENT_PATH, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_API_URL,
    GITHUB_TOKEN and the inputs INPUT_COMMAND, INPUT_WORKING_DIRECTORY, INPUT_STATE, INPUT_PRUNE,
    INPUT_COMMENT. No state configured is an error (a fork's pull request: "plan unavailable").
    """
    from reconciler.triggers import github  # httpx and the Action's code only when an Action runs
    from reconciler.triggers.github_preflight import preflight

    done = preflight(app)  # the state input, fork pull requests, pull_request_target checkouts
    if done is not None:
        return done
    return github.run_action(app, environ=app.environ)


COMMANDS = [trigger_group]
