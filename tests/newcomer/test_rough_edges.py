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


BAD_POOL = """\
work_pools:
  - name: local
    type: process
    concurrency_limit: lots
deployments:
  - name: greet
    entrypoint: flows/hello.py:hello
    tagz: [a]
    work_pool: {name: local}
"""


def test_a_pools_own_error_is_reported_once_with_the_warnings_kept(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", BAD_POOL)
    done = run_cli("-C", str(project), "validate")
    assert done.returncode == 1
    assert "prefect.yaml:4:24: work_pools[0].concurrency_limit" in done.stderr
    assert "unknown work pool" not in done.stderr  # the pool is declared: its own error says it all
    assert "warning: unknown deployment key 'tagz' is ignored (did you mean 'tags'?)" in done.stderr


SECRET_BLOCK = """\
blocks:
  - type: secret
    name: api
    data:
      value: "{{ $API_TOKEN }}"
"""


def test_a_secret_on_a_create_is_an_addition(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SECRET_BLOCK, flows={})
    done = run_cli("-C", str(project), "plan", env={"API_TOKEN": "tok-CANARY"})
    assert done.returncode == 0, done.stderr
    assert "+ data.value = (sensitive)" in done.stdout and "~ data.value" not in done.stdout
    markdown = run_cli("-C", str(project), "plan", "--markdown", env={"API_TOKEN": "tok-CANARY"})
    assert "+ data.value = (sensitive)" in markdown.stdout and "CANARY" not in markdown.stdout


def test_reading_never_writes(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", BAD_POOL.replace("lots", "2").replace("    tagz: [a]\n", ""))
    for args in (("plan",), ("plan", "--json"), ("runs",), ("state", "list"), ("history",), ("validate",)):
        done = run_cli("-C", str(project), *args)
        assert done.returncode == 0, (args, done.stdout + done.stderr)
        assert not (project / ".reconcile").exists(), args
    nowhere = tmp_path / "nonexistent" / "dir"
    done = run_cli("-C", str(project), "--state", f"sqlite:///{nowhere}/x.db", "plan")
    assert done.returncode == 0 and "Plan:" in done.stdout
    assert not (tmp_path / "nonexistent").exists()
    applied = run_cli("-C", str(project), "apply", "--yes")  # the first write creates it
    assert applied.returncode == 0 and (project / ".reconcile" / "state.db").is_file()


def test_a_work_queue_name_from_a_placeholder_follows_the_rules_of_names(tmp_path: Path) -> None:
    text = (
        BAD_POOL.replace("lots", "2")
        .replace("    tagz: [a]\n", "")
        .replace(
            "work_pool: {name: local}",
            'work_pool: {name: local, work_queue_name: "{{ $QUEUE }}", job_variables: {env: {A: "1"}}}',
        )
    )
    project = make_project(tmp_path / "p", text)
    env = {"QUEUE": "bad/queue", "RECONCILE_PUBLIC_ENV": "QUEUE"}
    done = run_cli("-C", str(project), "plan", env=env)
    assert done.returncode == 1 and "work_queue_name" in done.stderr, done.stderr
    assert "internal error" not in done.stderr and "bad/queue" not in done.stderr
    good = run_cli("-C", str(project), "plan", env={**env, "QUEUE": "etl"})
    assert good.returncode == 0, good.stderr
