"""Rough edges a newcomer met (issue: the newcomer's first hour), each through the CLI."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import make_project, run_cli
from tests.triggers.conftest import GitRepo, wait_runs

CRASHING = """\
work_pools:
  - name: local
    type: process
    job_variables:
      working_dir: no-such-dir-for-this-test
deployments:
  - name: greet
    entrypoint: flows/hello.py:hello
    work_pool: {name: local}
    run_on:
      - apply: changed
"""


def test_a_crashed_launch_says_why_in_apply_and_in_runs(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", CRASHING)
    applied = run_cli("-C", str(project), "apply", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    line = next(x for x in applied.stdout.splitlines() if x.startswith("Launched run"))
    assert line.rsplit("): ", 1)[1].startswith("CRASHED (failed to submit the run"), line

    listed = run_cli("-C", str(project), "runs")
    header, row = listed.stdout.splitlines()[:2]
    assert "MESSAGE" in header and "failed to submit the run" in row


def test_a_rerun_of_trigger_push_reports_the_run_as_it_is_now(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    quick = CRASHING.replace(
        "    job_variables:\n      working_dir: no-such-dir-for-this-test\n", ""
    ).replace("- apply: changed", "- push: {paths: ['flows/**']}")
    head = repo.commit(
        "project",
        {
            "prefect.yaml": quick,
            "flows/hello.py": "def hello():\n    print('hi')\n",
            ".gitignore": ".reconcile/\n",
        },
    )
    push = ("-C", str(repo.root), "trigger", "push", "--before", "0" * 40, "--after", head, "--yes")
    first = run_cli(*push)
    assert first.returncode == 0 and "Launched run" in first.stdout, first.stdout + first.stderr
    wait_runs(repo.root)
    again = run_cli(*push)
    line = next(x for x in again.stdout.splitlines() if x.startswith("Already launched for this commit"))
    assert line.endswith(": COMPLETED"), again.stdout


def test_wording(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", CRASHING.replace("    run_on:\n      - apply: changed\n", ""))
    served = run_cli("-C", str(project), "serve", "--once")
    assert "one pass" in served.stdout + served.stderr and "every 10s" not in served.stdout + served.stderr
    action = run_cli("-C", str(project), "trigger", "github", env={"GITHUB_EVENT_NAME": "push"})
    assert "GITHUB_EVENT_PATH is not set" in action.stderr and "GITHUB_EVENT_NAME" not in action.stderr
