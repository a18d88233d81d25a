"""Every example, deployed by `prefect deploy --all` into one server and by `reconcile apply` into
another, gives the same deployments field by field, apart from the differences the README lists
("Differences from prefect deploy") and this test names.

Both runs work in the same directory (the default pull step is that directory) on servers of their
own (deployment and pool names are global on a server). Prefect's server accepts every pool type
these examples use (it does not check them against installed workers), so every example is compared.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler import pooltypes
from tests.fixtures.prefect_server import PrefectServer, _free_port, _stop, _wait_healthy
from tests.prefect.conftest import cli, copy_project, example_env, examples, settle

pytestmark = pytest.mark.prefect_server
MARKER_PREFIX = "managed-by:prefect-reconciler/"
# What `prefect deploy` and we both store and must agree on (server fields of a deployment).
COMPARED = (
    "pull_steps",
    "parameter_openapi_schema",
    "version",
    "job_variables",
    "schedules",
    "tags",
    "parameters",
    "description",
    "entrypoint",
    "work_pool_name",
    "work_queue_name",
    "enforce_parameter_schema",
    "paused",
    "concurrency_limit",
)
SCHEDULE_FIELDS = ("schedule", "active", "parameters", "slug")


@contextmanager
def fresh_server() -> Iterator[PrefectServer]:
    """A Prefect server of this module's own (started like the session's, see tests/fixtures)."""
    home = Path(tempfile.mkdtemp(prefix="reconciler-fidelity-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    log_path = home / "server.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        _wait_healthy(api_url, server, log_path)
        yield PrefectServer(api_url=api_url, home=home, pid=server.pid)
    finally:
        _stop(server)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[PrefectServer, PrefectServer]]:
    """(the server `prefect deploy` writes to, the server `reconcile apply` writes to)."""
    pytest.importorskip("prefect")
    with fresh_server() as theirs, fresh_server() as ours:
        yield theirs, ours


def prefect_deploy(
    server: PrefectServer, project: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RECONCILE_"))}
    full.update({**env, **server.env(), "NO_COLOR": "1", "COLUMNS": "200"})
    return subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        cwd=project,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


def create_pools(server: PrefectServer, project: Path) -> None:
    """`prefect deploy` needs the pools to exist; it ignores our `work_pools:` section."""
    data = yaml.safe_load((project / "prefect.yaml").read_text(encoding="utf-8"))
    with server.client() as client:
        for pool in data.get("work_pools") or []:
            pool_type = pooltypes.get(pool["type"])
            template = pool_type.base_job_template({}) if pool_type else {}
            payload = {"name": pool["name"], "type": pool["type"], "base_job_template": template}
            response = client.post("work_pools/", json=payload)
            assert response.status_code in (201, 409), response.text


def create_variables(server: PrefectServer, project: Path) -> None:
    """`prefect deploy` resolves `{{ prefect.variables.NAME }}` from the server when it deploys (to
    "" when missing) and ignores our `variables:` section: make them exist, as its users would."""
    data = yaml.safe_load((project / "prefect.yaml").read_text(encoding="utf-8"))
    with server.client() as client:
        for variable in data.get("variables") or []:
            payload = {"name": variable["name"], "value": variable["value"], "tags": variable.get("tags", [])}
            response = client.post("variables/", json=payload)
            assert response.status_code in (201, 409), response.text


def deployments(server: PrefectServer) -> dict[str, dict[str, Any]]:
    """The server's deployments by FLOW/NAME, reduced to the compared fields."""
    with server.client() as client:
        flows = {f["id"]: f["name"] for f in client.post("flows/filter", json={}).json()}
        found = client.post("deployments/filter", json={}).json()
    result = {}
    for item in found:
        fields = {key: item.get(key) for key in COMPARED}
        fields["tags"] = sorted(t for t in item.get("tags") or [] if not t.startswith(MARKER_PREFIX))
        fields["schedules"] = sorted(
            ({k: s.get(k) for k in SCHEDULE_FIELDS} for s in item.get("schedules") or []),
            key=lambda s: str(s["slug"]),
        )
        result[f"{flows[item['flow_id']]}/{item['name']}"] = fields
    return result


def differences(theirs: dict[str, Any], ours: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {key: (theirs[key], ours[key]) for key in COMPARED if theirs[key] != ours[key]}


def expected_differences(project: Path, name: str, theirs: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The README's "Differences from prefect deploy" as they apply to one deployment."""
    data = yaml.safe_load((project / "prefect.yaml").read_text(encoding="utf-8"))
    pool_types = {p["name"]: p["type"] for p in data.get("work_pools") or []}
    pool_type = pooltypes.get(pool_types.get(theirs["work_pool_name"] or "", ""))
    expected = {}
    # A container pool without pull steps of the file's: prefect deploy points the worker at this
    # machine's directory, which the image does not have; we store none (the image's WORKDIR).
    if pool_type is not None and pool_type.launcher != "process" and not data.get("pull"):
        expected["pull_steps"] = (theirs["pull_steps"], None)
    return expected


@pytest.mark.slow
@pytest.mark.parametrize("example", examples(), ids=lambda p: p.name)
def test_apply_stores_what_prefect_deploy_stores(
    example: Path, tmp_path: Path, servers: tuple[PrefectServer, PrefectServer]
) -> None:
    theirs_server, ours_server = servers
    project = copy_project(example, tmp_path / example.name)
    env = example_env(project)
    create_pools(theirs_server, project)
    create_variables(theirs_server, project)
    before = set(deployments(theirs_server))  # the module's servers keep the earlier examples
    deployed = prefect_deploy(theirs_server, project, env)
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    applied = cli(ours_server, project, "apply", "--yes", env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    settle(ours_server, applied.stdout)  # the quickstart's greet runs on `apply: changed`

    theirs = deployments(theirs_server)
    ours = deployments(ours_server)
    names = sorted(set(theirs) - before)
    declared = yaml.safe_load((project / "prefect.yaml").read_text(encoding="utf-8"))["deployments"]
    assert len(names) == len(declared) and set(names) <= set(ours), (names, sorted(ours))
    for name in names:
        found = differences(theirs[name], ours[name])
        assert found == expected_differences(project, name, theirs[name]), name
