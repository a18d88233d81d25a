"""What the Action checks before it opens any store: which state, and whether it may plan at all.

``reconcile trigger github`` calls :func:`preflight` first. It

* resolves the ``state`` input (``github_env.Inputs``): the workspace opens exactly that store, or
  the step fails with one line saying no state is configured (never a silent throwaway store);
* on a pull request from a fork with no state (GitHub gives fork pull requests no secrets), writes
  a clear :data:`~reconciler.triggers.github_env.FORK_UNAVAILABLE` to the job summary, the outputs
  and, when the token may, the sticky comment, and ends the step successfully: nothing to review is
  not a failure of the pull request;
* under ``pull_request_target`` (which runs with the base repository's secrets and a write token)
  refuses a checkout other than the base commit (``GITHUB_SHA``): planning the pull request's own
  files there would hand its author the secrets' reach.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler import desired as desired_state
from reconciler import engine
from reconciler.errors import UsageError
from reconciler.triggers.github_api import GitHubError
from reconciler.triggers.github_comment import marker, upsert_comment
from reconciler.triggers.github_env import (
    FORK_UNAVAILABLE,
    Event,
    Inputs,
    append_summary,
    github_client,
    write_outputs,
)


def preflight(ws: engine.Workspace) -> int | None:
    """Settle the workspace's state; an exit code when the step ends here, else None (go on)."""
    if ws.state_url and not (ws.environ.get("INPUT_STATE") or "").strip():
        ws.environ = {**ws.environ, "INPUT_STATE": ws.state_url}  # `--state` counts as the input
    environ = ws.environ
    inputs, event = Inputs.from_env(environ), Event.from_env(environ)
    if inputs.state is None and event.from_fork:
        return _fork_unavailable(ws, inputs, event, environ)
    if event.name == "pull_request_target":
        _refuse_untrusted_checkout(ws, environ)
    ws.state_url = inputs.state_url(ws.project_dir)  # None: decide() explains there is no state
    return None


def _fork_unavailable(ws: engine.Workspace, inputs: Inputs, event: Event, environ: Mapping[str, str]) -> int:
    mark = marker(inputs.working_directory)
    text = (
        f"### Reconcile plan: {FORK_UNAVAILABLE}\n\n"
        "This pull request comes from a fork, and GitHub gives a fork's workflow runs no secrets, so "
        "the state this plan compares against cannot be read. Nothing was planned. A maintainer can "
        "review the change and plan it from a branch of this repository.\n"
    )
    ws.out(f"::notice::prefect-reconciler: {FORK_UNAVAILABLE}")
    write_outputs(
        environ.get("GITHUB_OUTPUT"), {"has-changes": "false", "plan-json": "", "summary": FORK_UNAVAILABLE}
    )
    append_summary(environ.get("GITHUB_STEP_SUMMARY"), text)
    client = github_client(inputs, event, environ) if inputs.comment else None
    if client is not None and event.pull_number is not None:
        with client:
            try:
                upsert_comment(client, event.repository, event.pull_number, mark, f"{mark}\n\n{text}")
            except GitHubError as exc:  # a fork's token is read-only: the summary says it all
                ws.out(f"::warning::could not post the plan comment: {exc}")
    return 0


def _refuse_untrusted_checkout(ws: engine.Workspace, environ: Mapping[str, str]) -> None:
    base = environ.get("GITHUB_SHA", "")
    try:
        with desired_state.GitRepo.open(ws.project_dir) as repo:
            head = repo.resolve("HEAD")
    except desired_state.GitSourceError:
        head = ""
    if not base or head != base:
        raise UsageError(
            "pull_request_target runs with this repository's secrets and a write token, and the "
            f"checkout ({head[:12] or 'not a Git checkout'}) is not the base commit GITHUB_SHA "
            f"({base[:12] or 'unset'}): planning a pull request's own files there hands its author "
            "those secrets. Plan on `pull_request` instead (see SECURITY.md)"
        )
