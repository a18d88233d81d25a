"""A Prefect ``@flow`` on the ``process`` pool with no Prefect server (issue 12, defect 12).

Prefect 3 runs flows and tasks only against an API. Left to itself it starts a temporary server in
the job: every run's log carried that server's start-up (~140 lines), concurrent runs raced on the
shared ``prefect.db`` ("database is locked", "duplicate column name" tracebacks), and a loaded
machine missed its 20 s start-up timeout. The runtime now starts Prefect's API server for the run
itself (``runtime.PrivateApi``). A run's log must show the flow's output only (its tasks and
subflows included), and two runs at once must both complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from reconciler import runtime
from reconciler.runtime_api import PrivateApi
from tests.helpers import REPO, make_project, run_cli

pytest.importorskip("prefect")

PREFECT_YAML = """
    name: flowproj
    work_pools:
      - name: local
        type: process
    deployments:
      - name: nightly
        entrypoint: flows/report.py:daily_report
        work_pool:
          name: local
"""

REPORT_FLOW = """
    from prefect import flow, task


    @task
    def count_rows(day: str) -> int:
        print(f"counting rows for {day}", flush=True)
        return 6


    @flow(name="render")
    def render(rows: int) -> str:
        print(f"rendered {rows} rows", flush=True)
        return f"{rows} rows"


    @flow(name="daily-report")
    def daily_report(day: str = "today") -> int:
        rows = count_rows(day)
        render(rows)
        print(f"report for {day}: {rows} rows", flush=True)
        return rows
"""

# Lines only Prefect's temporary server writes: its notice, uvicorn, and the SQLite races.
SERVER_MARKERS = (
    "Starting temporary server",
    "Stopping temporary server",
    "Uvicorn",
    "uvicorn.error",
    "Application startup",
    "database is locked",
    "duplicate column name",
    "Failed to send telemetry",
    "Traceback",
    "View at http",  # a link into a server that is gone once the run ends
)
MAX_LOG_LINES = 15
TIMEOUT = 600  # two Prefect servers start on a loaded 2-core machine


def _environment(prefect_home: Path) -> dict[str, str]:
    """No Prefect server and a fresh Prefect home, as on a new laptop; nothing of ours overridden."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RECONCILE_"))}
    env["PREFECT_HOME"] = str(prefect_home)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH"))))
    env["NO_COLOR"] = "1"
    return env


@pytest.mark.slow
def test_two_concurrent_flow_runs_complete_with_only_the_flows_output_in_their_logs(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", PREFECT_YAML, {"flows/report.py": REPORT_FLOW})
    env = _environment(tmp_path / "prefect-home")
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # no migrated database yet: both runs migrate
    applied = run_cli("-C", str(root), "apply", "--yes", env=env, timeout=TIMEOUT)
    assert applied.returncode == 0, applied.stderr
    command = [sys.executable, "-m", "reconciler", "-C", str(root), "run", "daily-report/nightly"]
    waiting = [
        subprocess.Popen(
            [*command, "--wait", "--timeout", str(TIMEOUT)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = [child.communicate(timeout=TIMEOUT + 60) for child in waiting]
    for child, (out, err) in zip(waiting, outcomes, strict=True):
        assert child.returncode == 0, out + err
        assert "COMPLETED" in out + err
    listed = run_cli("-C", str(root), "runs", "--json", env=env, timeout=TIMEOUT)
    runs = [run for run in json.loads(listed.stdout) if run["deployment"].endswith("nightly")]
    assert len(runs) == 2 and {run["state"] for run in runs} == {"COMPLETED"}
    for run in runs:
        log = (root / ".reconcile" / "runs" / str(run["id"]) / "log.txt").read_text(encoding="utf-8")
        assert "report for today: 6 rows" in log
        assert "counting rows for today" in log and "rendered 6 rows" in log  # its task and subflow
        assert "Finished in state Completed()" in log  # the flow's own Prefect logs stay
        assert not [marker for marker in SERVER_MARKERS if marker in log], log
        assert len(log.splitlines()) <= MAX_LOG_LINES, log
    assert list((tmp_path / "cache" / "prefect-reconciler").glob("prefect-*-api.db"))  # for later runs


# -- the runtime on its own: parameters, the migrated database, plain functions -------------------

TYPED_FLOW = """
from prefect import flow


@flow
def go(rows: int) -> int:
    print(f"rows + 1 = {rows + 1}", flush=True)
    return rows + 1
"""


def _run_runtime(cwd: Path, entrypoint: str, parameters: dict, env: dict[str, str]) -> tuple[str, dict]:
    """``python -m reconciler.runtime`` as the process launcher starts it; its output and result."""
    result_file = cwd / "result.json"
    result_file.unlink(missing_ok=True)
    full_env = {
        **env,
        "RECONCILE_RUN_ID": "run-1",
        "RECONCILE_ENTRYPOINT": entrypoint,
        "RECONCILE_PARAMETERS": json.dumps(parameters),
        "RECONCILE_RESULT_FILE": str(result_file),
    }
    done = subprocess.run(
        [sys.executable, "-m", "reconciler.runtime"],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    return done.stdout, json.loads(result_file.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_a_flow_runs_from_the_migrated_database_and_still_validates_its_parameters(tmp_path: Path) -> None:
    (tmp_path / "typed.py").write_text(TYPED_FLOW, encoding="utf-8")
    env = {**_environment(tmp_path / "prefect-home"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    cached = tmp_path / "cache" / "prefect-reconciler" / f"prefect-{version('prefect')}-api.db"
    cached.parent.mkdir(parents=True)
    cached.write_text("not a database", encoding="utf-8")  # a broken copy is replaced, never used
    out, result = _run_runtime(tmp_path, "typed.py:go", {"rows": 41}, env)
    assert result["exit_code"] == 0 and "rows + 1 = 42" in out, out
    with contextlib.closing(sqlite3.connect(cached)) as db:
        assert db.execute("SELECT count(*) FROM block_type").fetchone()[0] > 0  # migrated, blocks in
    made = cached.stat().st_mtime_ns
    out, result = _run_runtime(tmp_path, "typed.py:go", {"rows": "many"}, env)
    assert result["exit_code"] == 1 and "ParameterTypeError" in result["message"], out
    assert cached.stat().st_mtime_ns == made  # the second run started from it instead of migrating
    assert not [marker for marker in SERVER_MARKERS if marker in out.replace("Traceback", "")], out


def test_a_plain_function_gets_no_server_even_where_prefect_is_installed(tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text(
        "import os\n\ndef go():\n    print('api url:', os.environ.get('PREFECT_API_URL'))\n",
        encoding="utf-8",
    )
    env = {**_environment(tmp_path / "prefect-home"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    out, result = _run_runtime(tmp_path, "plain.py:go", {}, env)
    assert result["exit_code"] == 0 and "api url: None" in out, out
    assert not (tmp_path / "cache").exists()


# -- which settings the job gets ------------------------------------------------------------------


def test_without_a_server_the_temporary_server_gets_a_private_database_and_quiet_logs() -> None:
    added = runtime.ephemeral_prefect_defaults({"PATH": "/bin"}, set())
    assert added["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("sqlite+aiosqlite:///file::memory:")
    assert added["PREFECT_SERVER_LOGGING_LEVEL"] == "ERROR"
    assert added["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert added["PREFECT_LOGGING_TO_API_ENABLED"] == "false"


@pytest.mark.parametrize(
    ("environ", "profile"),
    [
        ({"PREFECT_API_URL": "http://prefect:4200/api"}, set()),
        ({}, {"PREFECT_API_URL"}),
    ],
)
def test_a_job_that_reports_to_a_server_gets_nothing(environ: dict[str, str], profile: set[str]) -> None:
    assert runtime.reports_to_server(environ, profile)
    assert runtime.ephemeral_prefect_defaults(environ, profile) == {}


def test_the_private_server_is_the_jobs_api_and_links_no_ui_page_unless_one_was_chosen() -> None:
    api = PrivateApi({})
    try:
        assert api.url.startswith("http://127.0.0.1:") and api.url.endswith("/api")
        assert api.client_settings(set()) == {"PREFECT_API_URL": api.url, "PREFECT_UI_URL": ""}
        assert api.client_settings({"PREFECT_UI_URL"}) == {"PREFECT_API_URL": api.url}
    finally:
        api.stop()


@pytest.mark.parametrize(
    ("chosen", "kept"),
    [
        ("PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL"),
        ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL"),
        ("PREFECT_SERVER_DATABASE_HOST", "PREFECT_API_DATABASE_CONNECTION_URL"),
        ("PREFECT_LOGGING_SERVER_LEVEL", "PREFECT_SERVER_LOGGING_LEVEL"),
        ("PREFECT_SERVER_ANALYTICS_ENABLED", "PREFECT_SERVER_ANALYTICS_ENABLED"),
        ("PREFECT_LOGGING_TO_API_ENABLED", "PREFECT_LOGGING_TO_API_ENABLED"),
    ],
)
def test_a_setting_the_user_chose_is_never_overridden(chosen: str, kept: str) -> None:
    assert kept not in runtime.ephemeral_prefect_defaults({chosen: "x"}, set())
    assert kept not in runtime.ephemeral_prefect_defaults({}, {chosen})


def test_the_active_profile_is_read_from_the_prefect_home(tmp_path: Path) -> None:
    (tmp_path / "profiles.toml").write_text(
        'active = "team"\n[profiles.team]\nPREFECT_API_URL = "http://prefect:4200/api"\n'
        '[profiles.other]\nPREFECT_SERVER_LOGGING_LEVEL = "DEBUG"\n',
        encoding="utf-8",
    )
    assert runtime.profile_setting_names({"PREFECT_HOME": str(tmp_path)}) == {"PREFECT_API_URL"}
    other = {"PREFECT_HOME": str(tmp_path), "PREFECT_PROFILE": "other"}
    assert runtime.profile_setting_names(other) == {"PREFECT_SERVER_LOGGING_LEVEL"}
    assert runtime.profile_setting_names({"PREFECT_HOME": str(tmp_path / "none")}) == set()
