"""The Action's Python entry end to end, in the environment a GitHub runner gives a step.

Each run is ``reconcile -C deploy trigger github`` as a subprocess with GITHUB_EVENT_NAME/PATH (real-
shaped pull_request and push payloads), GITHUB_OUTPUT, GITHUB_STEP_SUMMARY and GITHUB_API_URL pointing
at the local fake GitHub. The project lives in a subdirectory of a real Git repository and holds
secrets from env placeholders set to distinctive values; every request body the fake received, the
summary, the outputs, the plan JSON and the console output are scanned for them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from reconciler.plan.render_markdown import COMMENT_LIMIT, size
from reconciler.triggers import github
from tests.fakes.github import FakeGitHub
from tests.helpers import run_cli
from tests.triggers.conftest import GitRepo, invoke, parse_github_output, wait_runs

OWNER_REPO = "acme/flows"
SECRETS = {  # placeholder sources: names a placeholder may read (AWS_* belongs to the launchers)
    "ETL_AWS_KEY_ID": "AKIA-CANARY-0b7c41d2",
    "ETL_AWS_SECRET": "aws-CANARY-secret-9e3f17",
    "API_TOKEN": "tok-CANARY-51d2e8aa",
}
ROTATED = "aws-CANARY-rotated-44c0ff"

PROJECT = """
name: acme
blocks:
  - type: aws-credentials
    name: prod
    data:
      aws_access_key_id: "{{ $ETL_AWS_KEY_ID }}"
      aws_secret_access_key: "{{ $ETL_AWS_SECRET }}"
      region_name: us-east-1
work_pools:
  - name: local
    type: process
    job_variables:
      env:
        API_TOKEN: "{{ $API_TOKEN }}"
deployments:
  - name: daily
    entrypoint: flows/etl/etl.py:etl
    parameters: {rows: ROWS}
    schedules: SCHEDULES
    work_pool: {name: local}
    run_on:
      - push: {branches: [main], paths: ["flows/etl/**"]}
  - name: nightly
    entrypoint: flows/report.py:report
    work_pool: {name: local}
    run_on:
      - push: {paths: ["flows/report.py"]}
"""
ETL = "def etl(rows: int = 1):\n    print('etl', rows)\n"
REPORT = "def report():\n    print('report')\n"


def _yaml(rows: int = 1, schedules: str = '[{cron: "0 6 * * *", slug: morning}]') -> str:
    return PROJECT.replace("ROWS", str(rows)).replace("SCHEDULES", schedules)


class Runner:
    """One workflow job on a fake runner: a checkout, a temp dir, the fake GitHub, per-step files."""

    def __init__(self, repo: GitRepo, tmp: Path, fake: FakeGitHub) -> None:
        self.repo, self.tmp, self.fake = repo, tmp, fake
        self.state = f"sqlite:///{tmp / 'state.db'}"
        self.steps = 0
        self.seen: list[str] = []  # everything the entry wrote, to scan for secrets

    def env(self, event_name: str, payload: dict[str, Any], **inputs: str) -> dict[str, str]:
        self.steps += 1
        step = self.tmp / f"step{self.steps}"
        step.mkdir()
        (step / "event.json").write_text(json.dumps(payload), encoding="utf-8")
        ref = payload.get("ref") or f"refs/pull/{payload.get('number')}/merge"
        return {
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": event_name,
            "GITHUB_EVENT_PATH": str(step / "event.json"),
            "GITHUB_OUTPUT": str(step / "output"),
            "GITHUB_STEP_SUMMARY": str(step / "summary.md"),
            "GITHUB_REPOSITORY": OWNER_REPO,
            "GITHUB_API_URL": self.fake.url,
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_RUN_ID": "4242",
            "GITHUB_REF": ref,
            "GITHUB_SHA": self.repo.head(),
            "GITHUB_WORKSPACE": str(self.repo.root),
            "RUNNER_TEMP": str(self.tmp / "runner-temp"),
            "GITHUB_TOKEN": self.fake.token,
            "RECONCILE_STATE": self.state,
            "INPUT_COMMAND": "auto",
            "INPUT_WORKING_DIRECTORY": "deploy",
            "INPUT_PRUNE": "false",
            "INPUT_COMMENT": "true",
            **SECRETS,
            **inputs,
        }

    def run(self, event_name: str, payload: dict[str, Any], **inputs: str) -> tuple[dict[str, str], str, str]:
        env = self.env(event_name, payload, **inputs)
        done = run_cli("-C", "deploy", "trigger", "github", cwd=self.repo.root, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        return self._collect(env, done.stdout + done.stderr)

    def _collect(self, env: dict[str, str], console: str) -> tuple[dict[str, str], str, str]:
        outputs = parse_github_output(Path(env["GITHUB_OUTPUT"]).read_text(encoding="utf-8"))
        summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
        plan_json = Path(outputs["plan-json"]).read_text(encoding="utf-8")
        self.seen.extend([console, summary, json.dumps(outputs), plan_json])
        return outputs, summary, console

    def leaks(self) -> list[str]:
        haystacks = self.seen + [r.body for r in self.fake.requests]
        values = [*SECRETS.values(), ROTATED]
        return [v for v in values for text in haystacks if v in text]


def _repository() -> dict[str, Any]:
    return {
        "id": 1296269,
        "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
        "name": "flows",
        "full_name": OWNER_REPO,
        "private": True,
        "owner": {"login": "acme", "id": 1, "type": "Organization"},
        "html_url": f"https://github.com/{OWNER_REPO}",
        "default_branch": "main",
    }


def pull_request_payload(action: str, number: int, *, base_sha: str, head_sha: str) -> dict[str, Any]:
    repository = _repository()
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "url": f"https://api.github.com/repos/{OWNER_REPO}/pulls/{number}",
            "id": 1000 + number,
            "number": number,
            "state": "open",
            "title": "Tune the ETL",
            "user": {"login": "dev", "id": 2, "type": "User"},
            "draft": False,
            "head": {"label": "acme:feature", "ref": "feature", "sha": head_sha, "repo": repository},
            "base": {"label": "acme:main", "ref": "main", "sha": base_sha, "repo": repository},
        },
        "before": base_sha if action == "opened" else None,
        "after": head_sha,
        "repository": repository,
        "sender": {"login": "dev", "id": 2, "type": "User"},
    }


def push_payload(*, before: str, after: str, ref: str = "refs/heads/main") -> dict[str, Any]:
    return {
        "ref": ref,
        "before": before,
        "after": after,
        "created": False,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": f"https://github.com/{OWNER_REPO}/compare/{before[:12]}...{after[:12]}",
        "commits": [{"id": after, "message": "Merge pull request #42", "distinct": True}],
        "head_commit": {"id": after, "message": "Merge pull request #42"},
        "repository": _repository(),
        "pusher": {"name": "dev", "email": "dev@example.com"},
        "sender": {"login": "dev", "id": 2, "type": "User"},
    }


@pytest.fixture
def runner(repo: GitRepo, tmp_path: Path, fake_github: FakeGitHub) -> Runner:
    repo.commit(
        "the project",
        {
            "deploy/prefect.yaml": _yaml(),
            "deploy/flows/etl/etl.py": ETL,
            "deploy/flows/report.py": REPORT,
            ".gitignore": ".reconcile/\n",
        },
    )
    code, out, err = invoke(
        repo.root / "deploy",
        "apply",
        "--yes",
        env={"RECONCILE_STATE": f"sqlite:///{tmp_path / 'state.db'}", **SECRETS},
    )
    assert code == 0, out + err
    wait_runs(repo.root / "deploy")
    return Runner(repo, tmp_path, fake_github)


def test_pull_request_plan_is_one_sticky_comment_updated_in_place(runner: Runner) -> None:
    repo, fake = runner.repo, runner.fake
    fake.max_per_page = 2  # the marker comment ends up on a later page
    fake.add_comment(42, "Nice change!")
    fake.add_comment(42, github.marker("other-project") + "\nanother working directory's plan")
    fake.add_comment(42, "Please add tests")
    base = repo.head()
    repo.checkout("-b", "feature")
    head1 = repo.commit(
        "tune etl", {"deploy/prefect.yaml": _yaml(rows=5), "deploy/flows/etl/etl.py": ETL + "# v2\n"}
    )

    outputs, summary, console = runner.run(
        "pull_request", pull_request_payload("opened", 42, base_sha=base, head_sha=head1)
    )
    comments = fake.comments_on(42)
    ours = [c for c in comments if c.body.startswith(github.marker("deploy"))]
    assert len(comments) == 4 and len(ours) == 1
    body = ours[0].body
    assert "Reconcile plan for `acme`: 1 object to change" in body
    assert "+ parameters.rows = 5" in body and "- parameters.rows = 1" in body
    assert "**Runs merging would launch**" in body
    assert "- `etl/daily` (push: flows/etl/** matched flows/etl/etl.py on main)" in body
    assert "nightly" not in body.split("**Runs merging would launch**")[1].split("```mermaid")[0]
    assert "```mermaid" in body and "Changed paths of this pull request: 2" in body
    assert outputs["has-changes"] == "true" and outputs["summary"].startswith(
        "Plan: 0 to create, 1 to update"
    )
    assert json.loads(Path(outputs["plan-json"]).read_text())["summary"]["update"] == 1
    assert "Reconcile plan for `acme`" in summary and "Created plan comment" in console
    assert [w.method for w in fake.writes()] == ["POST"]

    # the next push to the PR: the same comment is edited, even through a secondary rate limit
    fake.rate_limit_next, fake.rate_limit_retry_after = 1, "0"
    head2 = repo.commit("drop the schedule", {"deploy/prefect.yaml": _yaml(rows=5, schedules="[]")})
    outputs, _, console = runner.run(
        "pull_request",
        pull_request_payload("synchronize", 42, base_sha=base, head_sha=head2),
        ETL_AWS_SECRET=ROTATED,
    )
    comments = fake.comments_on(42)
    ours = [c for c in comments if c.body.startswith(github.marker("deploy"))]
    assert len(comments) == 4 and len(ours) == 1 and "Updated plan comment" in console
    assert [w.method for w in fake.writes()] == ["POST", "PATCH"]
    assert fake.rate_limit_next == 0  # the rate-limited request was retried
    assert "removes schedule `morning` of `deployment.etl/daily`" in ours[0].body
    assert "(sensitive, changed)" in ours[0].body  # the rotated key shows as changed, without a value
    assert any("other working directory" in c.body for c in comments)  # not ours: untouched
    assert runner.leaks() == []


def test_a_plan_over_the_comment_limit_is_cut_with_a_pointer(runner: Runner) -> None:
    repo = runner.repo
    base = repo.head()
    repo.checkout("-b", "feature")
    many = "".join(
        f"  - name: bulk-{i:03}\n"
        f"    entrypoint: flows/bulk.py:bulk\n"
        f"    description: {f'generated deployment number {i:03} with a long description ' * 3}\n"
        f"    parameters: {{a: {i}, b: '{'x' * 60}', c: '{'y' * 60}'}}\n"
        f"    tags: [bulk, t{i}]\n"
        f"    work_pool: {{name: local}}\n"
        for i in range(150)
    )
    bulk = "def bulk(a: int, b: str, c: str):\n    print(a, b, c)\n"  # takes what the deployments give
    head = repo.commit(
        "150 deployments", {"deploy/prefect.yaml": _yaml() + many, "deploy/flows/bulk.py": bulk}
    )
    outputs, summary, _ = runner.run(
        "pull_request", pull_request_payload("opened", 7, base_sha=base, head_sha=head)
    )
    (comment,) = runner.fake.comments_on(7)
    assert size(comment.body) <= COMMENT_LIMIT
    assert "more objects not shown: this comment is limited to 65,536 characters" in comment.body
    assert (
        "The full plan is in the [job summary](https://github.com/acme/flows/actions/runs/4242)"
        in comment.body
    )
    assert Path(outputs["plan-json"]).name in comment.body
    assert "```mermaid" not in comment.body  # 150 objects: no graph
    assert summary.count("<details><summary>🟢 create") == 150  # the summary has them all
    assert len(json.loads(Path(outputs["plan-json"]).read_text())["changes"]) == 150
    assert runner.leaks() == []


def test_push_to_the_default_branch_applies_and_launches_matching_runs(runner: Runner) -> None:
    repo = runner.repo
    before = repo.head()
    repo.checkout("-b", "feature")
    repo.commit("tune etl", {"deploy/prefect.yaml": _yaml(rows=3), "deploy/flows/etl/etl.py": ETL + "# v3\n"})
    repo.checkout("main")
    repo.git("merge", "-q", "--no-ff", "-m", "Merge pull request #42", "feature")
    after = repo.head()

    outputs, summary, console = runner.run("push", push_payload(before=before, after=after))
    assert "prefect-reconciler: apply (push to the default branch main)" in console
    assert "push: flows/etl/** matched flows/etl/etl.py on main" in console
    assert outputs["has-changes"] == "true" and "Runs launched: 1." in outputs["summary"]
    assert "### Reconcile apply for `acme`" in summary and "**Applied:** 1 update" in summary
    row = next(line for line in summary.splitlines() if line.startswith("| `") and "etl/daily" in line)
    run_id = row.split("`")[1]
    assert "push: flows/etl/** matched" in row and any(s in row for s in ("PENDING", "RUNNING", "COMPLETED"))
    assert runner.fake.requests == []  # a push posts no comment
    wait_runs(repo.root / "deploy")
    state = json.loads(
        invoke(repo.root / "deploy", "state", "list", "--json", env={"RECONCILE_STATE": runner.state})[1]
    )
    assert state["last_commit"] == after
    runs = json.loads(
        invoke(repo.root / "deploy", "runs", "--json", env={"RECONCILE_STATE": runner.state, **SECRETS})[1]
    )
    assert [r["state"] for r in runs if r["id"] == run_id] == ["COMPLETED"]
    assert runner.leaks() == []

    # a push to another branch only plans, and says why
    env = runner.env("push", push_payload(before=after, after=after, ref="refs/heads/dev"))
    code, out, err = invoke(
        repo.root / "deploy", "trigger", "github", env={**env, "GITHUB_WORKSPACE": str(repo.root)}
    )
    assert code == 0, out + err
    assert (
        "plan only" in out
        and parse_github_output(Path(env["GITHUB_OUTPUT"]).read_text())["has-changes"] == "false"
    )


def test_bad_inputs_fail_with_one_clear_line(runner: Runner) -> None:
    env = runner.env("pull_request", pull_request_payload("opened", 1, base_sha="0" * 40, head_sha="0" * 40))
    code, _, err = invoke(
        runner.repo.root / "deploy", "trigger", "github", env={**env, "INPUT_COMMAND": "apply"}
    )
    assert code == 1 and err.startswith("error: command apply on a pull request would apply unmerged changes")
    code, _, err = invoke(
        runner.repo.root / "deploy", "trigger", "github", env={**env, "INPUT_PRUNE": "maybe"}
    )
    assert code == 1 and "input prune must be true or false" in err
    code, _, err = invoke(runner.repo.root / "deploy", "trigger", "github", env={"GITHUB_EVENT_NAME": None})
    assert code == 1 and "not running in GitHub Actions" in err


def test_git_is_the_source_for_the_changed_paths_or_the_api_when_history_is_missing(
    runner: Runner, tmp_path: Path
) -> None:
    # a shallow clone without the base commit: the pull request's files come from the API (paginated)
    repo = runner.repo
    base = repo.head()
    repo.checkout("-b", "feature")
    head = repo.commit("report", {"deploy/flows/report.py": REPORT + "# v2\n"})
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", "--branch", "feature", f"file://{repo.root}", str(shallow)],
        check=True,
        capture_output=True,
    )
    runner.fake.max_per_page = 1
    runner.fake.pull_files[9] = [
        {"filename": "deploy/flows/report.py", "status": "modified"},
        {"filename": "docs/new.md", "previous_filename": "docs/old.md", "status": "renamed"},
    ]
    runner.repo = GitRepo.existing(shallow)
    outputs, _, _ = runner.run(
        "pull_request", pull_request_payload("opened", 9, base_sha=base, head_sha=head)
    )
    (comment,) = runner.fake.comments_on(9)
    assert "Changed paths of this pull request: 3 (from the GitHub API)" in comment.body
    assert "- `report/nightly` (push: flows/report.py matched flows/report.py)" in comment.body
    # the clone lives elsewhere on disk: only the default pull step (its working directory) differs
    assert "parameters." not in comment.body and Path(outputs["plan-json"]).exists()
