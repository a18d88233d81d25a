"""The Action never guesses its state: an empty ``state`` fails with one clear line (a fork's pull
request instead reports "plan unavailable" and succeeds), ``state: sqlite`` is the explicit demo
opt-in, and ``pull_request_target`` never plans the pull request's own checkout."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from reconciler.triggers.github_env import FORK_UNAVAILABLE
from tests.helpers import run_cli
from tests.triggers import conftest as trigger_fixtures
from tests.triggers import test_github_action as action_fixtures
from tests.triggers.conftest import parse_github_output
from tests.triggers.test_github_action import Runner, _yaml, pull_request_payload, push_payload

repo = trigger_fixtures.repo
fake_github = trigger_fixtures.fake_github
runner = action_fixtures.runner


def _step(runner: Runner, event: str, payload: dict[str, Any], **env: str) -> tuple[int, str, dict[str, Any]]:
    environ = runner.env(event, payload, **env)
    done = run_cli("-C", "deploy", "trigger", "github", cwd=runner.repo.root, env=environ)
    return done.returncode, done.stdout + done.stderr, environ


def _fork(payload: dict[str, Any]) -> dict[str, Any]:
    payload = copy.deepcopy(payload)
    head = payload["pull_request"]["head"]
    head["repo"] = {**head["repo"], "id": 99, "full_name": "mallory/flows", "fork": True}
    head["label"] = "mallory:feature"
    return payload


def test_an_empty_state_fails_clearly_instead_of_applying_to_a_throwaway_store(runner: Runner) -> None:
    repo = runner.repo
    before = repo.head()
    after = repo.commit("more rows", {"deploy/prefect.yaml": _yaml(rows=4)})
    for variables in ({"RECONCILE_STATE": ""}, {"INPUT_STATE": "", "RECONCILE_STATE": ""}):
        code, console, _ = _step(runner, "push", push_payload(before=before, after=after), **variables)
        assert code == 1, console
        assert "error: input state is empty" in console and "Traceback" not in console
    assert not (repo.root / "deploy" / ".reconcile" / "state.db").exists()  # no throwaway store

    repo.checkout("-b", "feature")
    head = repo.commit("pr", {"deploy/prefect.yaml": _yaml(rows=5)})
    payload = pull_request_payload("opened", 3, base_sha=after, head_sha=head)
    code, console, _ = _step(runner, "pull_request", payload, INPUT_STATE=" ")
    assert code == 1 and "error: input state is empty" in console  # same repository: a real mistake
    assert runner.fake.writes() == []


def test_a_state_that_is_not_a_url_is_refused_without_echoing_it(runner: Runner) -> None:
    head = runner.repo.head()
    code, console, _ = _step(
        runner, "push", push_payload(before=head, after=head), INPUT_STATE="hunter2-CANARY-value"
    )
    assert code == 1 and "input state is neither a state URL" in console
    assert "hunter2-CANARY-value" not in console


def test_a_fork_pull_request_without_secrets_says_plan_unavailable(runner: Runner) -> None:
    repo = runner.repo
    base = repo.head()
    repo.checkout("-b", "feature")
    head = repo.commit("fork change", {"deploy/prefect.yaml": _yaml(rows=5)})
    payload = _fork(pull_request_payload("opened", 12, base_sha=base, head_sha=head))
    code, console, environ = _step(runner, "pull_request", payload, RECONCILE_STATE="", INPUT_STATE="")
    assert code == 0, console
    summary = Path(environ["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    outputs = parse_github_output(Path(environ["GITHUB_OUTPUT"]).read_text(encoding="utf-8"))
    assert FORK_UNAVAILABLE in summary and FORK_UNAVAILABLE in console
    assert outputs == {"has-changes": "false", "plan-json": "", "summary": FORK_UNAVAILABLE}
    (comment,) = runner.fake.comments_on(12)  # the fake's token may comment; a real fork's may not
    assert FORK_UNAVAILABLE in comment.body
    assert not (repo.root / "deploy" / ".reconcile" / "state.db").exists()


def test_state_sqlite_is_the_explicit_demo_opt_in(runner: Runner) -> None:
    repo = runner.repo
    base = repo.head()
    repo.checkout("-b", "feature")
    head = repo.commit("demo", {"deploy/prefect.yaml": _yaml(rows=5)})
    code, console, environ = _step(
        runner,
        "pull_request",
        pull_request_payload("opened", 4, base_sha=base, head_sha=head),
        INPUT_STATE="sqlite",
    )
    assert code == 0, console
    assert (repo.root / "deploy" / ".reconcile" / "state.db").exists()
    outputs = parse_github_output(Path(environ["GITHUB_OUTPUT"]).read_text(encoding="utf-8"))
    assert outputs["summary"].startswith("Plan: 4 to create")  # a fresh store: everything is new
    assert oct(Path(outputs["plan-json"]).stat().st_mode & 0o777) == "0o600"


def test_pull_request_target_never_plans_the_pull_requests_checkout(runner: Runner) -> None:
    repo = runner.repo
    base = repo.head()
    repo.checkout("-b", "feature")
    head = repo.commit("untrusted", {"deploy/prefect.yaml": _yaml(rows=5)})
    payload = _fork(pull_request_payload("opened", 6, base_sha=base, head_sha=head))
    code, console, _ = _step(runner, "pull_request_target", payload, GITHUB_SHA=base)
    assert code == 1 and "pull_request_target runs with this repository's secrets" in console
    assert runner.fake.writes() == []
