"""Adoption on a real Prefect 3.9.1 server: what ``prefect deploy`` made is adopted, never "created",
only with consent, without clobbering what the file leaves unset, and Prefect's own worker still runs
it; another project's pool (its ownership record) and deployment (its tag) are refused by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from reconciler.objects import Address
from reconciler.state.prefect.owners import record_name
from tests.fixtures.prefect_server import PrefectServer
from tests.prefect.conftest import cli, unique

pytestmark = pytest.mark.prefect_server

FLOW = '''
from prefect import flow


@flow(name="hello")
def hello(name: str = "world") -> str:
    """Say hello."""
    print(f"hello {name}", flush=True)
    return name
'''


def project(root: Path, *, name: str, pool: str, deployment: str, parameters: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "flows").mkdir(exist_ok=True)
    (root / "flows" / "hello.py").write_text(textwrap.dedent(FLOW), encoding="utf-8")
    text = f"""
        name: {name}
        work_pools:
          - name: {pool}
            type: process
        deployments:
          - name: {deployment}
            entrypoint: flows/hello.py:hello
            {parameters}
            work_pool:
              name: {pool}
    """
    (root / "prefect.yaml").write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


def prefect(
    server: PrefectServer, cwd: Path, *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RECONCILE_"))}
    env.update(server.env())
    command = [sys.executable, "-m", "prefect", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def deployment_of(api: httpx.Client, name: str) -> dict:
    found = api.get(f"deployments/name/hello/{name}")
    assert found.status_code == 200, found.text
    return found.json()


def run_with_prefect_worker(
    server: PrefectServer, api: httpx.Client, tmp_path: Path, pool: str, deployment: dict
) -> str:
    """One flow run of ``deployment`` through Prefect's own process worker, started elsewhere."""
    run = api.post(f"deployments/{deployment['id']}/create_flow_run", json={})
    assert run.status_code == 201, run.text
    elsewhere = tmp_path / "worker-elsewhere"
    elsewhere.mkdir(exist_ok=True)
    worker = prefect(server, elsewhere, "worker", "start", "--pool", pool, "--run-once", timeout=300)
    assert worker.returncode == 0, worker.stdout[-3000:] + worker.stderr[-3000:]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = api.get(f"flow_runs/{run.json()['id']}").json()["state_type"]
        if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return state
        time.sleep(1)
    return state


@pytest.mark.slow
def test_prefect_deploy_then_adopt_keeps_the_deployment_running_under_prefects_worker(
    tmp_path: Path, prefect_server: PrefectServer, api: httpx.Client
) -> None:
    pool, name, proj = unique("pool"), unique("dep"), unique("proj")
    root = project(tmp_path / "project", name=proj, pool=pool, deployment=name)
    made = prefect(prefect_server, root, "work-pool", "create", pool, "--type", "process")
    assert made.returncode == 0, made.stderr
    deployed = prefect(prefect_server, root, "--no-prompt", "deploy", "--all")
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    before = deployment_of(api, name)
    assert before["pull_steps"], before  # prefect deploy's set_working_directory
    pool_before = api.get(f"work_pools/{pool}").json()

    planned = cli(prefect_server, root, "plan", "--json")
    assert planned.returncode == 0, planned.stderr
    doc = json.loads(planned.stdout)
    actions = {c["address"]: c["action"] for c in doc["changes"]}
    assert actions == {f"work_pool.{pool}": "adopt", f"deployment.hello/{name}": "adopt"}, actions
    assert doc["summary"]["create"] == 0 and doc["summary"]["adopt"] == 2

    refused = cli(prefect_server, root, "apply", "--yes")
    assert refused.returncode == 1
    assert f"deployment.hello/{name}" in refused.stderr and "--adopt" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert "managed-by:" not in " ".join(deployment_of(api, name)["tags"])  # nothing was written

    adopted = cli(prefect_server, root, "apply", "--yes", "--adopt")
    assert adopted.returncode == 0, adopted.stderr
    after = deployment_of(api, name)
    assert f"managed-by:prefect-reconciler/{proj}" in after["tags"]
    assert after["id"] == before["id"] and after["pull_steps"] == before["pull_steps"]
    assert after["version"] == before["version"]
    pool_after = api.get(f"work_pools/{pool}").json()
    assert pool_after["base_job_template"] == pool_before["base_job_template"]

    again = cli(prefect_server, root, "plan", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["changes"] == []  # the adopted objects read back as the file

    assert run_with_prefect_worker(prefect_server, api, tmp_path, pool, after) == "COMPLETED"


def test_another_projects_pool_and_deployment_are_refused_naming_it(
    tmp_path: Path, prefect_server: PrefectServer, api: httpx.Client
) -> None:
    pool, name = unique("pool"), unique("dep")
    first, second = unique("first"), unique("second")
    owner = project(tmp_path / "first", name=first, pool=pool, deployment=name)
    applied = cli(prefect_server, owner, "apply", "--yes")
    assert applied.returncode == 0, applied.stderr
    record = f"variables/name/{record_name(Address.pool(pool))}"
    assert api.get(record).json()["value"] == {"address": f"work_pool.{pool}", "project": first}
    api.delete(record)  # as for a pool applied before ownership records existed
    assert cli(prefect_server, owner, "apply", "--yes").returncode == 0  # nothing to change, but...
    assert api.get(record).json()["value"]["project"] == first  # ...the record is made again
    other = project(tmp_path / "second", name=second, pool=pool, deployment=name)
    planned = cli(prefect_server, other, "plan")
    assert planned.returncode == 1
    assert f"managed by project '{first}'" in planned.stderr
    assert f"work_pool.{pool}" in planned.stderr and f"deployment.hello/{name}" in planned.stderr
    forced = cli(prefect_server, other, "apply", "--yes", "--adopt")
    assert forced.returncode == 1 and f"managed by project '{first}'" in forced.stderr
    assert f"managed-by:prefect-reconciler/{first}" in deployment_of(api, name)["tags"]

    (owner / "prefect.yaml").write_text("")  # emptied: the state is not lost, nor shown as empty
    listed = cli(prefect_server, owner, "state", "list")
    assert listed.returncode == 1 and "has no objects" in listed.stderr, listed.stderr
    assert f"'{first}' (2 objects)" in listed.stderr or " more: " in listed.stderr  # a busy server lists 10
    moved = cli(prefect_server, owner, "state", "mv-project", first, second)
    assert moved.returncode == 1 and "cannot move" in moved.stderr and "Traceback" not in moved.stderr


def test_a_hand_made_secret_block_is_adopted_with_its_value_never_shown(
    tmp_path: Path, prefect_server: PrefectServer, api: httpx.Client
) -> None:
    block, proj = unique("ui-secret"), unique("blocks")
    block_type = api.get("block_types/slug/secret").json()
    schemas = api.post(
        "block_schemas/filter", json={"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}}
    )
    document = {
        "name": block,
        "block_type_id": block_type["id"],
        "block_schema_id": schemas.json()[0]["id"],
        "data": {"value": "made-in-the-ui"},
    }
    assert api.post("block_documents/", json=document).status_code == 201
    root = tmp_path / "blocks"
    root.mkdir()
    text = f"""
        name: {proj}
        blocks:
          - type: secret
            name: {block}
            data:
              value: "{{{{ $ADOPTED_SECRET }}}}"
    """
    (root / "prefect.yaml").write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    env = {"ADOPTED_SECRET": "from-the-file"}
    planned = cli(prefect_server, root, "plan", "--json", env=env)
    assert planned.returncode == 0, planned.stderr
    (change,) = json.loads(planned.stdout)["changes"]
    assert change["action"] == "adopt" and change["address"] == f"block.secret/{block}"
    assert "made-in-the-ui" not in planned.stdout and "from-the-file" not in planned.stdout
    adopted = cli(prefect_server, root, "apply", "--yes", "--adopt", env=env)
    assert adopted.returncode == 0, adopted.stderr
    held = api.get(
        f"block_types/slug/secret/block_documents/name/{block}", params={"include_secrets": True}
    ).json()
    assert held["data"]["value"] == "from-the-file"
    assert cli(prefect_server, root, "plan", "--detailed-exitcode", env=env).returncode == 0
    owner = api.get(f"variables/name/{record_name(Address.block('secret', block))}").json()
    assert owner["value"]["project"] == proj
