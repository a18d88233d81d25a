"""The core contract through the real CLI, as a user meets it (issue: core walking skeleton)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import QUICKSTART, make_project, run_cli


@pytest.fixture()
def quickstart(tmp_path: Path) -> Path:
    project = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, project, ignore=shutil.ignore_patterns(".reconcile", "__pycache__"))
    return project


@pytest.mark.slow
def test_apply_then_plan_shows_no_changes_and_a_run_completes(quickstart: Path) -> None:
    first = run_cli("-C", str(quickstart), "plan", "--detailed-exitcode")
    assert first.returncode == 2, first.stderr
    assert "Plan: 3 to create" in first.stdout

    applied = run_cli("-C", str(quickstart), "apply", "--yes")
    assert applied.returncode == 0, applied.stderr
    assert "Apply complete: 3 created." in applied.stdout
    assert "Launched run" in applied.stdout  # greet has `run_on: apply: changed`

    again = run_cli("-C", str(quickstart), "plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes" in again.stdout

    run = run_cli(
        "-C", str(quickstart), "run", "hello/greet", "--param", "times=3", "--wait", "--timeout", "60"
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("Hello, world!") == 3
    assert "COMPLETED (exit code 0)" in run.stdout

    listed = json.loads(run_cli("-C", str(quickstart), "runs", "--json").stdout)
    states = {r["state"] for r in listed}
    assert "COMPLETED" in states
    completed = next(r for r in listed if r["parameters"].get("times") == 3)
    assert completed["exit_code"] == 0 and completed["started_at"] and completed["ended_at"]

    history = json.loads(run_cli("-C", str(quickstart), "history", "--json").stdout)
    assert len(history) == 1 and history[0]["summary"]["create"] == 3
    assert history[0]["user"] and history[0]["host"]


def test_failing_flow_exits_1_and_is_recorded_failed(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        """
        work_pools: [{name: local, type: process}]
        deployments:
          - {name: broken, entrypoint: flows/hello.py:boom, work_pool: {name: local}}
        """,
    )
    assert run_cli("-C", str(project), "apply", "--yes").returncode == 0
    run = run_cli("-C", str(project), "run", "boom/broken", "--wait")
    assert run.returncode == 1
    assert "RuntimeError: flow failed on purpose" in run.stdout
    assert "FAILED (exit code 1)" in run.stderr
    assert "Traceback" not in run.stderr  # the flow's traceback is in its log, not our error channel


def test_run_of_unknown_deployment_is_a_clear_error(quickstart: Path) -> None:
    run_cli("-C", str(quickstart), "apply", "--yes")
    result = run_cli("-C", str(quickstart), "run", "hello/nope")
    assert result.returncode == 1
    assert result.stderr.startswith("error: no applied deployment 'hello/nope'")


@pytest.mark.slow
def test_wait_timeout_leaves_the_run_going(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        """
        work_pools: [{name: local, type: process}]
        deployments:
          - {name: slow, entrypoint: flows/slow.py:slow, work_pool: {name: local}}
        """,
        {"flows/slow.py": "import time\n\ndef slow(seconds: float = 30):\n    time.sleep(seconds)\n"},
    )
    run_cli("-C", str(project), "apply", "--yes")
    result = run_cli("-C", str(project), "run", "slow/slow", "--wait", "--timeout", "1")
    assert result.returncode == 1
    assert "still RUNNING after 1s" in result.stderr
    run_id = json.loads(run_cli("-C", str(project), "runs", "--json").stdout)[0]["id"]
    cancelled = run_cli("-C", str(project), "cancel", run_id)
    assert cancelled.returncode == 0 and "CANCELLED" in cancelled.stdout


def test_apply_refuses_without_yes_when_not_a_terminal(quickstart: Path) -> None:
    result = run_cli("-C", str(quickstart), "apply")
    assert result.returncode == 1
    assert "pass --yes" in result.stderr
    assert json.loads(run_cli("-C", str(quickstart), "state", "list", "--json").stdout)["objects"] == []


@pytest.mark.parametrize(
    "args",
    [
        ["--no-such-flag"],
        ["plan", "--no-such-flag"],
        ["run"],
        ["nope"],
        ["-C", "/does/not/exist", "plan"],
        ["run", "no-slash"],
    ],
)
def test_usage_errors_exit_1_with_one_error_line(quickstart: Path, args: list[str]) -> None:
    result = run_cli(*args, cwd=quickstart)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr


def test_debug_env_shows_the_traceback(quickstart: Path) -> None:
    result = run_cli("run", "hello/nope", cwd=quickstart, env={"RECONCILE_DEBUG": "1"})
    assert result.returncode == 1
    assert "Traceback" in result.stderr


def test_json_plan_and_saved_plan_apply(quickstart: Path) -> None:
    plan_file = quickstart / "plan.json"
    result = run_cli("-C", str(quickstart), "plan", "--json", "--out", str(plan_file))
    assert result.returncode == 0
    doc = json.loads(result.stdout)
    assert doc["format_version"] == "1"
    assert doc["summary"]["create"] == 3
    assert json.loads(plan_file.read_text()) == doc
    applied = run_cli("-C", str(quickstart), "apply", str(plan_file), "--yes")
    assert applied.returncode == 0, applied.stderr
    assert run_cli("-C", str(quickstart), "plan", "--detailed-exitcode").returncode == 0


def test_stale_saved_plan_is_refused_before_any_write(quickstart: Path) -> None:
    run_cli("-C", str(quickstart), "apply", "--yes")
    yaml_path = quickstart / "prefect.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("concurrency_limit: 4", "concurrency_limit: 5"))
    plan_file = quickstart / "plan.json"
    run_cli("-C", str(quickstart), "plan", "--out", str(plan_file))
    # someone else applies a different change to the same pool in between
    yaml_path.write_text(yaml_path.read_text().replace("concurrency_limit: 5", "concurrency_limit: 6"))
    assert run_cli("-C", str(quickstart), "apply", "--yes").returncode == 0
    before = run_cli("-C", str(quickstart), "state", "list", "--json").stdout
    stale = run_cli("-C", str(quickstart), "apply", str(plan_file), "--yes")
    assert stale.returncode == 1
    assert "work_pool.local changed since the plan was made" in stale.stderr
    assert run_cli("-C", str(quickstart), "state", "list", "--json").stdout == before


def test_removed_objects_are_orphaned_until_prune(quickstart: Path) -> None:
    run_cli("-C", str(quickstart), "apply", "--yes")
    yaml_path = quickstart / "prefect.yaml"
    text = yaml_path.read_text()
    yaml_path.write_text(text[: text.index("  - name: greet")])
    plan = run_cli("-C", str(quickstart), "plan", "--detailed-exitcode")
    assert plan.returncode == 0  # orphans alone are not changes
    assert "! deployment.hello/greet" in plan.stdout and "would delete with --prune" in plan.stdout
    run_cli("-C", str(quickstart), "apply", "--yes")
    names = [
        o["address"]
        for o in json.loads(run_cli("-C", str(quickstart), "state", "list", "--json").stdout)["objects"]
    ]
    assert "deployment.hello/greet" in names
    pruned = run_cli("-C", str(quickstart), "apply", "--yes", "--prune")
    assert pruned.returncode == 0 and "1 deleted" in pruned.stdout
    names = [
        o["address"]
        for o in json.loads(run_cli("-C", str(quickstart), "state", "list", "--json").stdout)["objects"]
    ]
    assert "deployment.hello/greet" not in names and "deployment.daily-report/nightly" in names


def _addresses(project: Path) -> list[str]:
    listed = run_cli("-C", str(project), "state", "list", "--json")
    return [o["address"] for o in json.loads(listed.stdout)["objects"]]


def test_empty_file_is_refused_unless_allowed(quickstart: Path) -> None:
    run_cli("-C", str(quickstart), "apply", "--yes")
    (quickstart / "prefect.yaml").write_text("name: quickstart\ndeployments: []\n")
    refused = run_cli("-C", str(quickstart), "apply", "--yes", "--prune")
    assert refused.returncode == 1 and "--allow-empty" in refused.stderr
    assert len(json.loads(run_cli("-C", str(quickstart), "state", "list", "--json").stdout)["objects"]) == 3
    allowed = run_cli("-C", str(quickstart), "apply", "--yes", "--prune", "--allow-empty")
    assert allowed.returncode == 0
    assert json.loads(run_cli("-C", str(quickstart), "state", "list", "--json").stdout)["objects"] == []


def test_pool_type_change_is_a_replace(quickstart: Path) -> None:
    run_cli("-C", str(quickstart), "apply", "--yes")
    yaml_path = quickstart / "prefect.yaml"
    yaml_path.write_text(
        yaml_path.read_text()
        .replace(
            "type: process",
            "type: ecs:push",
        )
        .replace("        STAGE: quickstart", "        STAGE: quickstart\n      cluster: prod")
    )
    plan = run_cli("-C", str(quickstart), "plan", "--json")
    assert plan.returncode == 0, plan.stderr
    change = next(c for c in json.loads(plan.stdout)["changes"] if c["address"] == "work_pool.local")
    assert change["action"] == "replace"
    assert "type changed: process -> ecs:push" in change["reason"]


def test_python_dash_m_works(quickstart: Path) -> None:
    assert run_cli("--version").stdout.startswith("reconcile, version")
