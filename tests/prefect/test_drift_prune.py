"""Drift, writes that keep what did not change, and prune: against the real server, through the CLI.

* A change made outside (the UI, the API) to a managed field shows in ``plan`` as a change with the
  server's ``updated`` time as drift; ``apply`` restores it.
* Writing one deployment leaves every other deployment alone: their future scheduled runs (which
  the server deletes on any write to a deployment) survive, and schedule ids survive a schedule edit.
* Prune deletes only what this project manages: foreign pools and deployments stay.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.prefect_server import PrefectServer
from tests.helpers import make_project, run_cli
from tests.prefect.conftest import cli, destroy, unique

pytestmark = pytest.mark.prefect_server


def project_yaml(name: str, pool: str, deployments: dict[str, str], *, interval: int = 60) -> str:
    lines = [
        f"name: {name}",
        "work_pools:",
        f"  - {{name: {pool}, type: process, description: as in git}}",
        "deployments:",
    ]
    for dep, rows in deployments.items():
        lines.append(
            f"  - {{name: {dep}, entrypoint: flows/hello.py:hello, parameters: {{name: '{rows}'}},"
            f" work_pool: {{name: {pool}}}, schedules: [{{interval: {interval}, slug: every}}]}}"
        )
    return "\n".join(lines) + "\n"


def scheduled_runs(api: httpx.Client, deployment_id: str) -> set[str]:
    criteria = {
        "deployments": {"id": {"any_": [deployment_id]}},
        "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
        "limit": 200,
    }
    return {r["id"] for r in api.post("flow_runs/filter", json=criteria).json()}


def wait_for_scheduled_runs(api: httpx.Client, deployment_ids: list[str], timeout: float = 60) -> None:
    """The server's scheduler fills in runs for new deployments every few seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(scheduled_runs(api, d) for d in deployment_ids):
            return
        time.sleep(0.5)
    pytest.fail("the server's scheduler made no runs for the new deployments")


def test_drift_shows_in_plan_and_apply_restores_it_without_touching_the_rest(
    tmp_path: Path, prefect_server: PrefectServer, api: httpx.Client
) -> None:
    name, pool = unique("drift"), unique("pool")
    one, two = unique("one"), unique("two")
    project = make_project(tmp_path / "p", project_yaml(name, pool, {one: "a", two: "b"}))
    assert cli(prefect_server, project, "apply", "--yes").returncode == 0
    dep_one = api.get(f"deployments/name/hello/{one}").json()
    dep_two = api.get(f"deployments/name/hello/{two}").json()
    wait_for_scheduled_runs(api, [dep_one["id"], dep_two["id"]])
    schedule_id = dep_one["schedules"][0]["id"]
    runs_of_two = scheduled_runs(api, dep_two["id"])

    # Someone edits in the UI: the pool's description and one deployment's parameter.
    assert api.patch(f"work_pools/{pool}", json={"description": "edited in the UI"}).status_code == 204
    assert api.patch(f"deployments/{dep_one['id']}", json={"parameters": {"name": "zzz"}}).status_code == 204
    updated = api.get(f"deployments/{dep_one['id']}").json()["updated"]

    plan = cli(prefect_server, project, "plan", "--json")
    assert plan.returncode == 0, plan.stderr
    changes = {c["address"]: c for c in json.loads(plan.stdout)["changes"]}
    assert set(changes) == {f"work_pool.{pool}", f"deployment.hello/{one}"}
    pool_change, dep_change = changes[f"work_pool.{pool}"], changes[f"deployment.hello/{one}"]
    assert pool_change["action"] == "update" and pool_change["drift"]["updated"]
    assert [(f["path"], f["before"], f["after"]) for f in pool_change["fields"]] == [
        ("description", "edited in the UI", "as in git")
    ]
    assert dep_change["drift"]["updated"] == updated
    assert [(f["path"], f["before"], f["after"]) for f in dep_change["fields"]] == [
        ("parameters.name", "zzz", "a")
    ]
    text = cli(prefect_server, project, "plan")
    assert "drift: changed outside this tool" in text.stdout

    restored = cli(prefect_server, project, "apply", "--yes")
    assert restored.returncode == 0, restored.stderr
    assert cli(prefect_server, project, "plan", "--detailed-exitcode").returncode == 0
    assert api.get(f"work_pools/{pool}").json()["description"] == "as in git"
    after = api.get(f"deployments/{dep_one['id']}").json()
    assert after["parameters"] == {"name": "a"} and after["schedules"][0]["id"] == schedule_id
    assert runs_of_two <= scheduled_runs(api, dep_two["id"])  # the untouched deployment kept its runs
    destroy(prefect_server, project, name)


def test_an_edit_writes_only_that_deployment_and_keeps_schedule_ids(
    tmp_path: Path, prefect_server: PrefectServer, api: httpx.Client
) -> None:
    name, pool = unique("edit"), unique("pool")
    one, two = unique("one"), unique("two")
    project = make_project(tmp_path / "p", project_yaml(name, pool, {one: "a", two: "b"}))
    assert cli(prefect_server, project, "apply", "--yes").returncode == 0
    dep_one = api.get(f"deployments/name/hello/{one}").json()
    dep_two = api.get(f"deployments/name/hello/{two}").json()
    wait_for_scheduled_runs(api, [dep_one["id"], dep_two["id"]])
    runs_of_two = scheduled_runs(api, dep_two["id"])

    edited = project_yaml(name, pool, {one: "a", two: "b"})
    line = next(x for x in edited.splitlines() if f"name: {one}," in x)
    (project / "prefect.yaml").write_text(edited.replace(line, line.replace("interval: 60", "interval: 120")))
    applied = cli(prefect_server, project, "apply", "--yes")
    assert "1 updated" in applied.stdout, applied.stdout + applied.stderr
    after = api.get(f"deployments/{dep_one['id']}").json()
    assert after["schedules"][0]["id"] == dep_one["schedules"][0]["id"]  # edited in place, by slug
    assert after["schedules"][0]["schedule"]["interval"] == 120
    assert api.get(f"deployments/{dep_two['id']}").json()["updated"] == dep_two["updated"]  # not written
    assert runs_of_two <= scheduled_runs(api, dep_two["id"])
    assert cli(prefect_server, project, "plan", "--detailed-exitcode").returncode == 0
    destroy(prefect_server, project, name)


def test_prune_deletes_only_what_the_project_manages(
    tmp_path: Path, prefect_server: PrefectServer, api: httpx.Client
) -> None:
    name, pool = unique("prune"), unique("pool")
    keep, drop = unique("keep"), unique("drop")
    project = make_project(tmp_path / "p", project_yaml(name, pool, {keep: "a", drop: "b"}))
    assert cli(prefect_server, project, "apply", "--yes").returncode == 0
    # Foreign objects on the same server: a pool, and a deployment on our pool made by someone else.
    foreign_pool = unique("foreign")
    assert api.post("work_pools/", json={"name": foreign_pool, "type": "process"}).status_code == 201
    flow = api.post("flows/", json={"name": "hello"}).json()
    foreign = unique("foreign-dep")
    created = api.post("deployments/", json={"flow_id": flow["id"], "name": foreign, "work_pool_name": pool})
    assert created.status_code == 201

    (project / "prefect.yaml").write_text(project_yaml(name, pool, {keep: "a"}))
    orphaned = cli(prefect_server, project, "plan", "--json")
    actions = {c["address"]: c["action"] for c in json.loads(orphaned.stdout)["changes"]}
    assert actions == {f"deployment.hello/{drop}": "orphaned"}
    assert cli(prefect_server, project, "apply", "--yes").returncode == 0
    assert api.get(f"deployments/name/hello/{drop}").status_code == 200  # kept without --prune

    pruned = cli(prefect_server, project, "apply", "--yes", "--prune")
    assert pruned.returncode == 0 and "1 deleted" in pruned.stdout, pruned.stdout + pruned.stderr
    assert api.get(f"deployments/name/hello/{drop}").status_code == 404
    assert api.get(f"deployments/name/hello/{keep}").status_code == 200
    assert api.get(f"deployments/name/hello/{foreign}").status_code == 200
    assert api.get(f"work_pools/{foreign_pool}").status_code == 200

    destroy(prefect_server, project, name)
    assert api.get(f"work_pools/{pool}").status_code == 404
    assert api.get(f"deployments/name/hello/{keep}").status_code == 404
    assert api.get(f"deployments/name/hello/{foreign}").status_code == 200  # never ours
    api.delete(f"work_pools/{foreign_pool}")


def test_a_pool_type_change_is_a_replace_that_keeps_its_deployments(
    tmp_path: Path, prefect_server: PrefectServer, api: httpx.Client
) -> None:
    name, pool, dep = unique("replace"), unique("pool"), unique("dep")
    project = make_project(tmp_path / "p", project_yaml(name, pool, {dep: "a"}))
    assert cli(prefect_server, project, "apply", "--yes").returncode == 0
    text = (project / "prefect.yaml").read_text().replace("type: process", "type: ecs:push")
    (project / "prefect.yaml").write_text(text)
    plan = json.loads(cli(prefect_server, project, "plan", "--json").stdout)
    # the deployment's default pull step goes with the pool type: none in a container image
    assert [(c["address"], c["action"]) for c in plan["changes"]] == [
        (f"work_pool.{pool}", "replace"),
        (f"deployment.hello/{dep}", "update"),
    ]
    assert {f["path"].split(".")[0] for f in plan["changes"][1]["fields"]} == {"pull_steps"}
    assert cli(prefect_server, project, "apply", "--yes").returncode == 0
    assert api.get(f"work_pools/{pool}").json()["type"] == "ecs:push"
    assert api.get(f"deployments/name/hello/{dep}").json()["work_pool_name"] == pool
    assert cli(prefect_server, project, "plan", "--detailed-exitcode").returncode == 0
    destroy(prefect_server, project, name)


def test_two_applies_at_once_converge_without_duplicates(
    tmp_path: Path, prefect_server: PrefectServer, api: httpx.Client
) -> None:
    name, pool = unique("race"), unique("pool")
    deps = {unique(f"d{i}"): str(i) for i in range(6)}
    project = make_project(tmp_path / "p", project_yaml(name, pool, deps))
    env = {**prefect_server.env(), "NO_COLOR": "1"}
    command = [
        "-C",
        str(project),
        "--state",
        prefect_server.state_url,
        "apply",
        "--yes",
        "--lock-timeout",
        "120",
    ]
    procs = [_spawn(command, env) for _ in range(2)]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert (
        sum("Apply complete: 7 created." in out for out, _ in outputs) == 1
    )  # the other found nothing to do

    assert cli(prefect_server, project, "plan", "--detailed-exitcode").returncode == 0
    for dep in deps:
        found = api.post("deployments/filter", json={"deployments": {"name": {"any_": [dep]}}}).json()
        assert len(found) == 1
    history = json.loads(cli(prefect_server, project, "history", "--json").stdout)
    assert len(history) == 1 and history[0]["summary"]["create"] == 7
    destroy(prefect_server, project, name)


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    import os
    import sys

    from tests.helpers import REPO

    full = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILE_")}
    full["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), full.get("PYTHONPATH"))))
    full.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


__all__ = ["run_cli"]
