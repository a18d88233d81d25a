"""A Prefect ``@flow`` on the ``process`` pool with no Prefect server (issue 12, defect 12).

Prefect then starts its temporary API server inside the job. Before the fix every run's log carried
that server's start-up (~140 lines) and concurrent runs raced on the shared ``prefect.db``
("database is locked", "duplicate column name" tracebacks). A run's log must show the flow's
output only, and two runs at once must both complete.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler import runtime
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
    from prefect import flow


    @flow(name="daily-report")
    def daily_report() -> int:
        print("report for today: 6 rows", flush=True)
        return 6
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


def test_two_concurrent_flow_runs_complete_with_only_the_flows_output_in_their_logs(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", PREFECT_YAML, {"flows/report.py": REPORT_FLOW})
    env = _environment(tmp_path / "prefect-home")
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
        assert "Finished in state Completed()" in log  # the flow's own Prefect logs stay
        assert not [marker for marker in SERVER_MARKERS if marker in log], log
        assert len(log.splitlines()) <= MAX_LOG_LINES, log


# -- which settings the job gets ------------------------------------------------------------------


def test_without_a_server_the_temporary_server_gets_a_private_database_and_quiet_logs() -> None:
    added = runtime.ephemeral_prefect_defaults({"PATH": "/bin"}, set())
    assert added["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("sqlite+aiosqlite:///file::memory:")
    assert added["PREFECT_SERVER_LOGGING_LEVEL"] == "ERROR"
    assert added["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"


@pytest.mark.parametrize(
    ("environ", "profile"),
    [
        ({"PREFECT_API_URL": "http://prefect:4200/api"}, set()),
        ({}, {"PREFECT_API_URL"}),
    ],
)
def test_a_job_that_reports_to_a_server_gets_nothing(environ: dict[str, str], profile: set[str]) -> None:
    assert runtime.ephemeral_prefect_defaults(environ, profile) == {}


@pytest.mark.parametrize(
    ("chosen", "kept"),
    [
        ("PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL"),
        ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL"),
        ("PREFECT_SERVER_DATABASE_HOST", "PREFECT_API_DATABASE_CONNECTION_URL"),
        ("PREFECT_LOGGING_SERVER_LEVEL", "PREFECT_SERVER_LOGGING_LEVEL"),
        ("PREFECT_SERVER_ANALYTICS_ENABLED", "PREFECT_SERVER_ANALYTICS_ENABLED"),
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
