"""Runs through the server, end to end: create_flow_run -> PENDING claim -> process launch ->
``prefect flow-run execute`` under our supervisor -> RUNNING/COMPLETED reported by Prefect's engine.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.fixtures.prefect_server import PrefectServer
from tests.helpers import QUICKSTART, make_project
from tests.prefect.conftest import cli, copy_project, destroy, settle, unique

pytestmark = pytest.mark.prefect_server

RUN_ID = re.compile(r"Created run ([0-9a-f-]{36})")
FLOWS = {
    "flows/hello.py": """
        from prefect import flow


        def hello(name: str = "world", times: int = 1) -> str:
            for _ in range(times):
                print(f"hello {name}", flush=True)
            return name


        @flow(name="boom")
        def boom() -> None:
            raise RuntimeError("flow failed on purpose")
    """,
}


def _run_id(output: str) -> str:
    match = RUN_ID.search(output)
    assert match, output
    return match.group(1)


@pytest.mark.slow
def test_quickstart_run_completes_through_prefects_engine(
    tmp_path: Path, prefect_server: PrefectServer, api: httpx.Client
) -> None:
    project = copy_project(QUICKSTART, tmp_path / "quickstart")
    applied = cli(prefect_server, project, "apply", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    settle(prefect_server, applied.stdout)  # greet runs on `apply: changed` too
    try:
        run = cli(prefect_server, project, "run", "hello/greet", "--wait", "--timeout", "120")
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Hello, world!" in run.stdout and "COMPLETED" in run.stdout
        flow_run = api.get(f"flow_runs/{_run_id(run.stdout)}").json()
        assert flow_run["state_type"] == "COMPLETED"
        assert flow_run["start_time"] and flow_run["end_time"]  # set by the engine, not by us
        assert flow_run["infrastructure_pid"].startswith("process:")
        assert flow_run["labels"]["prefect-reconciler.reason"] == "manual"
        states = api.get("flow_run_states/", params={"flow_run_id": flow_run["id"]}).json()
        assert [s["type"] for s in states][:4] == ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED"]
    finally:
        destroy(prefect_server, project, "quickstart")


@pytest.mark.slow
def test_a_failing_flow_and_a_failed_submission(
    tmp_path: Path, prefect_server: PrefectServer, api: httpx.Client
) -> None:
    name, pool, broken_pool = unique("runs"), unique("pool"), unique("broken")
    project = make_project(
        tmp_path / "p",
        f"""
        name: {name}
        work_pools:
          - {{name: {pool}, type: process}}
          - {{name: {broken_pool}, type: process, job_variables: {{working_dir: does/not/exist}}}}
        deployments:
          - {{name: greet, entrypoint: flows/hello.py:hello, work_pool: {{name: {pool}}}}}
          - {{name: boom-{name}, entrypoint: flows/hello.py:boom, work_pool: {{name: {pool}}}}}
          - {{name: lost-{name}, entrypoint: flows/hello.py:hello, work_pool: {{name: {broken_pool}}}}}
        """,
        FLOWS,
    )
    assert cli(prefect_server, project, "apply", "--yes").returncode == 0
    try:
        failed = cli(prefect_server, project, "run", f"boom/boom-{name}", "--wait", "--timeout", "120")
        assert failed.returncode == 1, failed.stdout + failed.stderr
        flow_run = api.get(f"flow_runs/{_run_id(failed.stdout)}").json()
        assert flow_run["state_type"] == "FAILED"  # the engine's word: the flow raised
        assert "flow failed on purpose" in flow_run["state"]["message"]

        lost = cli(prefect_server, project, "run", f"hello/lost-{name}")
        assert lost.returncode == 1 and "CRASHED" in lost.stderr
        flow_run = api.get(f"flow_runs/{_run_id(lost.stdout)}").json()
        assert flow_run["state_type"] == "CRASHED" and flow_run["infrastructure_pid"] is None
        assert "failed to submit the run" in flow_run["state"]["message"]

        listed = json.loads(cli(prefect_server, project, "runs", "--json").stdout)
        assert {r["state"] for r in listed} == {"FAILED", "CRASHED"}
        assert all(r["deployment"] in (f"boom/boom-{name}", f"hello/lost-{name}") for r in listed)
    finally:
        destroy(prefect_server, project, name)


def test_a_run_on_a_prefect_server_gets_the_variables_values_as_parameters(
    tmp_path: Path, prefect_server: PrefectServer, api: httpx.Client
) -> None:
    """Prefect's engine runs the flow with the parameters the server's flow run holds: the run this
    tool creates there carries the variables' values (typed by Prefect's rule), not the placeholders."""
    project_name, greeting, repeat = unique("vars"), unique("greeting"), unique("repeat")
    project = make_project(
        tmp_path / "vars",
        f"""
        name: {project_name}
        variables:
          - {{name: {greeting}, value: alpha}}
          - {{name: {repeat}, value: 2}}
        work_pools:
          - {{name: {project_name}-local, type: process}}
        deployments:
          - name: hi
            entrypoint: flows/hello.py:hello
            parameters:
              name: "{{{{ prefect.variables.{greeting} }}}}"
              times: "{{{{ prefect.variables.{repeat} }}}}"
            work_pool: {{name: {project_name}-local}}
        """,
        FLOWS,
    )
    applied = cli(prefect_server, project, "apply", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    try:
        # the deployment holds the values, as `prefect deploy` writes it; the plan reads the file's text
        deployment = api.get("deployments/name/hello/hi").json()
        assert deployment["parameters"] == {"name": "alpha", "times": 2}
        again = cli(prefect_server, project, "plan")
        assert "0 to create, 0 to update, 0 to replace, 0 to delete" in again.stdout, again.stdout
        run = cli(prefect_server, project, "run", "hello/hi", "--wait", "--timeout", "120")
        assert run.returncode == 0, run.stdout + run.stderr
        assert run.stdout.count("hello alpha") == 2
        flow_run = api.get(f"flow_runs/{_run_id(run.stdout)}").json()
        assert flow_run["parameters"] == {"name": "alpha", "times": 2}
    finally:
        destroy(prefect_server, project, project_name)
