"""``reconcile serve`` on a real Prefect server: it launches the runs the server scheduled, once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.fixtures.prefect_server import PrefectServer
from tests.helpers import REPO, make_project
from tests.prefect.conftest import cli, destroy, unique

pytestmark = pytest.mark.prefect_server

FLOWS = {
    "flows/hello.py": """
        def hello(name: str = "world") -> str:
            print(f"hello {name}", flush=True)
            return name
    """,
}


def wait_for_state(api: httpx.Client, run_id: str, states: set[str], timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = api.get(f"flow_runs/{run_id}").json()["state_type"]
        if state in states:
            return state
        time.sleep(0.5)
    return state


def test_serve_launches_a_server_scheduled_run_once_and_follows_it(
    tmp_path: Path, prefect_server: PrefectServer
) -> None:
    name, pool = unique("serve"), unique("pool")
    project = make_project(
        tmp_path / "p",
        f"""
        name: {name}
        work_pools:
          - {{name: {pool}, type: process}}
        deployments:
          - {{name: tick, entrypoint: flows/hello.py:hello, parameters: {{name: served}}, work_pool: {{name: {pool}}}}}
        """,
        FLOWS,
    )
    applied = cli(prefect_server, project, "apply", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    try:
        with prefect_server.client() as api:
            deployment = api.get("deployments/name/hello/tick").json()
            now = datetime.now(UTC).isoformat()
            made = api.post(  # what the server's scheduler does for a schedule
                f"deployments/{deployment['id']}/create_flow_run",
                json={"state": {"type": "SCHEDULED", "state_details": {"scheduled_time": now}}},
            )
            assert made.status_code == 201, made.text
            run_id = made.json()["id"]

            command = [
                sys.executable,
                "-m",
                "reconciler",
                "-C",
                str(project),
                "--state",
                prefect_server.state_url,
            ]
            env = {**os.environ, **prefect_server.env(), "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
            procs = [
                subprocess.Popen([*command, "serve", "--once"], env=env, stderr=subprocess.PIPE, text=True)
                for _ in range(2)
            ]
            outputs = [p.communicate(timeout=180)[1] for p in procs]
            assert [p.returncode for p in procs] == [0, 0], outputs
            launched = [
                line for out in outputs for line in out.splitlines() if f"launched run {run_id}" in line
            ]
            assert len(launched) == 1, outputs  # two serve processes, one launch: the server's PENDING guard
            assert "store-scheduled runs" in outputs[0]

            assert wait_for_state(api, run_id, {"COMPLETED", "FAILED", "CRASHED"}) == "COMPLETED"
            again = cli(prefect_server, project, "serve", "--once")
            assert again.returncode == 0, again.stderr
            assert f"launched run {run_id}" not in again.stderr
    finally:
        destroy(prefect_server, project, name)
