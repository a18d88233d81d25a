"""The in-job runtime (`python -m reconciler.runtime`) as a job runs it: environment in, exit code out."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.prefect_server import PrefectServer
from tests.helpers import QUICKSTART, REPO, run_cli


def _runtime(
    cwd: Path, entrypoint: str, parameters: dict | None = None, *extra: str, env: dict | None = None
) -> tuple[subprocess.CompletedProcess[str], dict]:
    result_file = cwd / "result.json"
    full_env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "RECONCILE_RUN_ID": "run-1",
        "RECONCILE_ENTRYPOINT": entrypoint,
        "RECONCILE_PARAMETERS": json.dumps(parameters or {}),
        "RECONCILE_RESULT_FILE": str(result_file),
        **(env or {}),
    }
    done = subprocess.run(
        [sys.executable, "-m", "reconciler.runtime", *extra],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done, json.loads(result_file.read_text()) if result_file.exists() else {}


def test_plain_function_by_path(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "f.py").write_text("def go(n: int):\n    print('n is', n)\n")
    done, result = _runtime(tmp_path, "flows/f.py:go", {"n": 7})
    assert done.returncode == 0, done.stderr
    assert "n is 7" in done.stdout
    assert result["exit_code"] == 0 and result["started_at"] <= result["ended_at"]


def test_async_function_by_module_path(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "jobs.py").write_text("async def go(x='a'):\n    print('async', x)\n")
    done, result = _runtime(tmp_path, "pkg.jobs.go", {"x": "b"})
    assert done.returncode == 0, done.stderr
    assert "async b" in done.stdout and result["exit_code"] == 0


def test_a_raising_flow_exits_1_with_its_traceback(tmp_path: Path) -> None:
    (tmp_path / "f.py").write_text("def go():\n    raise ValueError('nope')\n")
    done, result = _runtime(tmp_path, "f.py:go")
    assert done.returncode == 1
    assert "ValueError: nope" in done.stderr
    assert result == {**result, "exit_code": 1, "message": "ValueError: nope"}


def test_a_run_that_cannot_be_set_up_exits_2(tmp_path: Path) -> None:
    done, result = _runtime(tmp_path, "missing.py:go")
    assert done.returncode == 2 and result["exit_code"] == 2
    assert "could not set up run run-1" in result["message"]


def test_set_working_directory_pull_step_runs_without_prefect(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "f.py").write_text("import os\n\ndef go():\n    print('cwd', os.getcwd())\n")
    steps = [{"prefect.deployments.steps.set_working_directory": {"directory": str(tmp_path / "code")}}]
    done, _ = _runtime(tmp_path, "f.py:go", env={"RECONCILE_PULL_STEPS": json.dumps(steps)})
    assert done.returncode == 0, done.stderr
    assert f"cwd {tmp_path / 'code'}" in done.stdout


def test_supervisor_records_the_exit_code_of_a_custom_command(tmp_path: Path) -> None:
    done, result = _runtime(tmp_path, "unused", {}, "--exec", "sh", "-c", "echo custom; exit 5")
    assert done.returncode == 5 and "custom" in done.stdout
    assert result["exit_code"] == 5 and "status 5" in result["message"]


@pytest.mark.prefect_server
def test_a_prefect_flow_runs_through_prefects_engine(tmp_path: Path, prefect_server: PrefectServer) -> None:
    """The quickstart's nightly deployment is a @flow: with Prefect installed, Prefect's engine runs it.

    The engine reports to the session's real server: Prefect's ephemeral server would start inside the
    run with a start-up timeout that a loaded machine can miss."""
    project = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, project, ignore=shutil.ignore_patterns(".reconcile", "__pycache__"))
    env = {**prefect_server.env(), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    assert run_cli("-C", str(project), "apply", "--yes", env=env).returncode == 0
    run = run_cli(
        "-C", str(project), "run", "daily-report/nightly", "--wait", "--timeout", "240", env=env, timeout=300
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "report for today: 6 rows" in run.stdout
    assert "Finished in state Completed()" in run.stdout  # Prefect's engine logged the flow run
