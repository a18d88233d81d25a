"""What `reconcile apply` writes to a Prefect server works with Prefect's own tools (issue 10).

Prefect's worker, started in another directory, runs a deployment we applied to COMPLETED (it needs
the pull steps ``prefect deploy`` would have stored); the server enforces the parameter schema we
computed from the flow's source; ``reconcile run`` refuses what the schema refuses before any flow
run exists.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.prefect_server import PrefectServer
from tests.helpers import QUICKSTART
from tests.prefect.conftest import cli, copy_project, destroy, unique

pytestmark = pytest.mark.prefect_server
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def quickstart_copy(target: Path) -> tuple[Path, dict[str, str]]:
    """The quickstart under names of its own (objects on the session's server are global)."""
    project = copy_project(QUICKSTART, target)
    names = {"project": unique("qs"), "pool": unique("local"), "deployment": unique("greet")}
    path = project / "prefect.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("name: quickstart", f"name: {names['project']}")
    text = text.replace("name: local", f"name: {names['pool']}")
    text = text.replace("- name: greet", f"- name: {names['deployment']}")
    text = re.sub(r"\n    run_on:\n      - apply: changed\n", "\n", text)
    path.write_text(text, encoding="utf-8")
    return project, names


def prefect_cli(
    server: PrefectServer, cwd: Path, *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Prefect's own CLI, as a user runs it against the server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RECONCILE_"))}
    env.update(server.env(), PREFECT_CLI_PROMPT="false", NO_COLOR="1", COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "prefect", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def deployment(api: httpx.Client, flow: str, name: str) -> dict:
    response = api.get(f"deployments/name/{flow}/{name}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_terminal(api: httpx.Client, run_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = api.get(f"flow_runs/{run_id}").json()
        if run["state_type"] in TERMINAL or time.monotonic() > deadline:
            return run
        time.sleep(0.5)


@pytest.mark.slow
def test_prefects_worker_runs_an_applied_deployment_to_completed(
    tmp_path: Path, prefect_server: PrefectServer, api: httpx.Client
) -> None:
    project, names = quickstart_copy(tmp_path / "quickstart")
    applied = cli(prefect_server, project, "apply", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    try:
        stored = deployment(api, "hello", names["deployment"])
        assert stored["pull_steps"] == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(project.resolve())}}
        ]
        assert (
            stored["version"]
            and stored["parameter_openapi_schema"]["properties"]["times"]["type"] == "integer"
        )

        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        started = prefect_cli(prefect_server, elsewhere, "deployment", "run", f"hello/{names['deployment']}")
        assert started.returncode == 0, started.stdout + started.stderr
        run_id = re.search(r"UUID: ([0-9a-f-]{36})", started.stdout)
        assert run_id, started.stdout
        worker = prefect_cli(
            prefect_server,
            elsewhere,
            "worker",
            "start",
            "--pool",
            names["pool"],
            "--type",
            "process",
            "--run-once",
        )
        run = wait_terminal(api, run_id.group(1))
        assert run["state_type"] == "COMPLETED", (run["state"], worker.stdout[-3000:], worker.stderr[-3000:])
    finally:
        destroy(prefect_server, project, names["project"])


def test_the_server_enforces_the_schema_and_run_refuses_first(
    tmp_path: Path, prefect_server: PrefectServer, api: httpx.Client
) -> None:
    project, names = quickstart_copy(tmp_path / "quickstart")
    applied = cli(prefect_server, project, "apply", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    try:
        stored = deployment(api, "hello", names["deployment"])
        refused = api.post(
            f"deployments/{stored['id']}/create_flow_run", json={"parameters": {"times": "abc"}}
        )
        assert refused.status_code == 409, (
            refused.text
        )  # the server checks our schema, as for prefect deploy's
        before = api.post("flow_runs/filter", json={"deployments": {"id": {"any_": [stored["id"]]}}}).json()
        for args, expected in (
            (("--param", "bogus=1"), "unknown parameter 'bogus'"),
            (("--param", "times=abc"), "parameter times: expected integer"),
        ):
            result = cli(prefect_server, project, "run", f"hello/{names['deployment']}", *args)
            assert result.returncode == 1 and expected in result.stderr, result.stdout + result.stderr
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        after = api.post("flow_runs/filter", json={"deployments": {"id": {"any_": [stored["id"]]}}}).json()
        assert after == before  # no flow run was created
        again = cli(prefect_server, project, "plan", "--detailed-exitcode")
        assert again.returncode == 0, again.stdout + again.stderr  # what we read back is what we wrote
    finally:
        destroy(prefect_server, project, names["project"])


RICH_FLOW = '''
from enum import Enum
from typing import Literal, Optional

from pydantic import BaseModel


class Color(str, Enum):
    RED = "red"
    BLUE = "blue"


class Source(BaseModel):
    """Where rows come from."""

    url: str
    rows: int = 10


def load(source: Source, color: Color = Color.RED, mode: Literal["a", "b"] = "a", limit: Optional[int] = None):
    """Load rows.

    Args:
        source: where to read
        limit: at most this many rows
    """
'''


def test_a_schema_with_definitions_is_stored_as_prefect_computes_it_and_reads_back_unchanged(
    tmp_path: Path, prefect_server: PrefectServer, api: httpx.Client
) -> None:
    callables = pytest.importorskip("prefect.utilities.callables")
    project = tmp_path / "rich"
    (project / "flows").mkdir(parents=True)
    (project / "flows" / "load.py").write_text(RICH_FLOW, encoding="utf-8")
    name, pool = unique("rich"), unique("pool")
    (project / "prefect.yaml").write_text(
        f"name: {name}\nwork_pools:\n  - name: {pool}\n    type: process\n"
        f"deployments:\n  - name: {name}\n    entrypoint: flows/load.py:load\n"
        f"    parameters: {{source: {{url: s3://b}}}}\n    work_pool: {{name: {pool}}}\n",
        encoding="utf-8",
    )
    applied = cli(prefect_server, project, "apply", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    try:
        namespace: dict = {}
        exec(compile(RICH_FLOW, str(project / "flows" / "load.py"), "exec"), namespace)  # the test imports it
        expected = callables.parameter_schema(namespace["load"]).model_dump(exclude_unset=True)
        assert deployment(api, "load", name)["parameter_openapi_schema"] == expected
        again = cli(prefect_server, project, "plan", "--detailed-exitcode")
        assert again.returncode == 0, again.stdout + again.stderr
        refused = cli(prefect_server, project, "run", f"load/{name}", "--param", "color=green")
        assert refused.returncode == 1 and "parameter color: must be one of" in refused.stderr, refused.stderr
    finally:
        destroy(prefect_server, project, name)
