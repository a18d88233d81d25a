"""``reconcile import`` of the workspace kinds from a real Prefect server: work queues, variables,
global concurrency limits and automations made through the API become file sections that validate,
and the plan after ``import --write`` changes nothing (adopting them writes nothing new either).

The server is shared by the tests, so every import names its addresses (the whole workspace holds
other tests' objects); what the named objects need comes along (``also importing``)."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.objects import Address
from reconciler.state.prefect.api import PrefectStore
from tests.fixtures.prefect_server import PrefectServer
from tests.prefect.conftest import cli, destroy, unique

pytestmark = pytest.mark.prefect_server

FLOW = "def hello(name: str = 'world') -> str:\n    return name\n"


def _ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


def _deployment(api: httpx.Client, flow_id: str, name: str, pool: str, **fields: Any) -> str:
    body = {"flow_id": flow_id, "name": name, "work_pool_name": pool, "entrypoint": "flows/hello.py:hello"}
    return str(_ok(api.post("deployments/", json={**body, **fields}))["id"])


def _run_deployment_automation(name: str, *, watched: str, runs: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": "made in the UI",
        "trigger": {
            "type": "event",
            "match": {"prefect.resource.id": "prefect.flow-run.*"},
            "match_related": {"prefect.resource.role": "deployment", "prefect.resource.name": watched},
            "expect": ["prefect.flow-run.Completed"],
            "posture": "Reactive",
            "threshold": 1,
            "within": 0,
        },
        "actions": [{"type": "run-deployment", "source": "selected", "deployment_id": runs}],
    }


def make_workspace(api: httpx.Client, tag: str) -> dict[str, str]:
    """What a team clicked together: a pool with queues, variables, a shared limit a deployment uses,
    and an automation that runs one deployment when another completes."""
    names = {
        "pool": f"ws-pool-{tag}",
        "quiet_pool": f"ws-quiet-{tag}",
        "high": "high",
        "bulk": "bulk",
        "region": f"region_{tag}",
        "settings": f"settings_{tag}",
        "token": f"api_token_{tag}",
        "limit": f"warehouse-{tag}",
        "load": f"load-{tag}",
        "report": f"report-{tag}",
        "own_limit": f"own-{tag}",
        "automation": f"report-after-load-{tag}",
        "dangling": f"dangling-{tag}",
    }
    pool, quiet = names["pool"], names["quiet_pool"]
    _ok(api.post("work_pools/", json={"name": pool, "type": "process"}))
    _ok(api.post("work_pools/", json={"name": quiet, "type": "process"}))
    paused = api.patch(f"work_pools/{quiet}/queues/default", json={"is_paused": True})
    assert paused.status_code == 204, paused.text
    queue = {"description": "first in line", "priority": 1}
    _ok(api.post(f"work_pools/{pool}/queues", json={"name": names["high"], **queue}))
    bulk = {"name": names["bulk"], "concurrency_limit": 1, "is_paused": True}
    _ok(api.post(f"work_pools/{pool}/queues", json=bulk))
    _ok(api.post("variables/", json={"name": names["region"], "value": "eu-west-1", "tags": ["b", "a"]}))
    _ok(api.post("variables/", json={"name": names["settings"], "value": {"formats": ["csv"], "retries": 2}}))
    _ok(api.post("variables/", json={"name": names["token"], "value": "plain-text-anyway"}))
    limit = _ok(api.post("v2/concurrency_limits/", json={"name": names["limit"], "limit": 2}))
    flow_id = str(_ok(api.post("flows/", json={"name": "hello"}))["id"])
    names["load_id"] = _deployment(
        api,
        flow_id,
        names["load"],
        pool,
        work_queue_name=names["high"],
        global_concurrency_limit_id=limit["id"],
    )
    names["report_id"] = _deployment(api, flow_id, names["report"], pool, work_queue_name=names["bulk"])
    names["own_id"] = _deployment(api, flow_id, names["own_limit"], pool, concurrency_limit=3)
    automation = _run_deployment_automation(
        names["automation"], watched=names["load"], runs=names["report_id"]
    )
    _ok(api.post("automations/", json=automation))
    dangling = _run_deployment_automation(names["dangling"], watched=names["load"], runs=str(uuid.uuid4()))
    _ok(api.post("automations/", json=dangling))
    return names


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "adopt"
    (project / "flows").mkdir(parents=True)
    (project / "flows" / "hello.py").write_text(FLOW, encoding="utf-8")
    (project / "prefect.yaml").write_text("# adopted from the workspace\nname: adopt-ws\n", encoding="utf-8")
    return project


@pytest.mark.slow
def test_import_writes_each_workspace_kind_that_validates_and_plans_clean(
    tmp_path: Path, prefect_server: PrefectServer
) -> None:
    tag = uuid.uuid4().hex[:8]
    with prefect_server.client() as api:
        names = make_workspace(api, tag)
    project = _project(tmp_path)
    pool = names["pool"]
    wanted = [
        f"automation.{names['automation']}",  # brings the deployment it runs, its queue and pool
        f"deployment.hello/{names['load']}",  # watched by name (not a dependency); brings its limit
        f"variable.{names['region']}",
        f"variable.{names['settings']}",
        f"variable.{names['token']}",
        f"work_queue.{names['quiet_pool']}/default",
    ]
    result = cli(prefect_server, project, "import", *wanted, "--write")
    assert result.returncode == 0, result.stderr
    for needed in (
        f"deployment.hello/{names['report']}",
        f"work_queue.{pool}/{names['bulk']}",
        f"work_pool.{pool}",
        f"work_pool.{names['quiet_pool']}",
        f"concurrency_limit.{names['limit']}",
        f"work_queue.{pool}/{names['high']}",
    ):
        assert f"also importing {needed}" in result.stderr
    assert f"warning: variable.{names['token']}: its value is written to prefect.yaml as plain text" in (
        result.stderr
    )
    text = (project / "prefect.yaml").read_text(encoding="utf-8")
    assert text.startswith("# adopted from the workspace\nname: adopt-ws\n")
    assert f"deployment: hello/{names['report']}" in text  # the automation's id, as an address
    assert names["report_id"] not in text
    assert "priority: 1" in text and "paused: true" in text
    assert f"global_concurrency_limit: {names['limit']}" in text  # its id, as the limit's name

    validated = cli(prefect_server, project, "validate")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    plan = json.loads(cli(prefect_server, project, "plan", "--json").stdout)
    # a pool's default queue is configured, never adopted: the store plans it as a create (a PATCH)
    default = f"work_queue.{names['quiet_pool']}/default"
    changed = [c for c in plan["changes"] if c["action"] != "adopt" and c["address"] != default]
    assert changed == [], changed
    adopts = [c for c in plan["changes"] if c["action"] == "adopt"]
    # what a file cannot hold and apply fills in as `prefect deploy` would: a hand-made deployment
    # has no version and no parameter schema (the flow's source gives both)
    derived = ("version", "parameter_openapi_schema")
    differing = {
        c["address"]: fields
        for c in adopts
        if (fields := [f for f in c["fields"] if not f["path"].startswith(derived)])
    }
    assert adopts and differing == {}, json.dumps(differing, indent=1)

    adopted = cli(prefect_server, project, "apply", "--adopt", "--yes")
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    again = cli(prefect_server, project, "plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes" in again.stdout


def test_what_import_leaves_out_and_why(tmp_path: Path, prefect_server: PrefectServer) -> None:
    tag = uuid.uuid4().hex[:8]
    with prefect_server.client() as api:
        names = make_workspace(api, tag)
    project = _project(tmp_path)
    dangling = cli(prefect_server, project, "import", f"automation.{names['dangling']}")
    assert dangling.returncode == 1
    assert f"cannot import automation.{names['dangling']}: it acts on deployment_id:" in dangling.stderr
    assert "which names no object on the server" in dangling.stderr

    literal = f"shell_{tag}"
    with prefect_server.client() as api:
        _ok(api.post("variables/", json={"name": literal, "value": "cd {{ $HOME }}"}))
    refused = cli(prefect_server, project, "import", f"variable.{literal}")
    assert refused.returncode == 1
    assert f"cannot import variable.{literal}: it holds the text {{{{ $HOME }}}}" in refused.stderr

    store = PrefectStore(prefect_server.state_url, project=unique("reader"))
    try:
        found = store.read_unmanaged()
    finally:
        store.close()
    # as Prefect made it, though renumbered to 2 when "high" took priority 1: not imported
    assert Address.work_queue(names["pool"], "default") not in found
    assert found[Address.work_queue(names["quiet_pool"], "default")]["paused"] is True
    assert found[Address.deployment("hello", names["load"])]["global_concurrency_limit"] == names["limit"]
    limits = {a.name for a in found if a.kind.value == "concurrency_limit"}
    assert names["limit"] in limits
    assert f"deployment:{names['own_id']}" not in limits  # the deployment's own limit is the deployment's
    assert not [a for a in found if a.name.startswith(("reconciler__", "reconciler_owner__", "reconcile-"))]
    assert found[Address.variable(names["region"])]["tags"] == ["a", "b"]


def test_the_workspace_example_applies_clean_and_its_lost_sections_import_back(
    tmp_path: Path, prefect_server: PrefectServer
) -> None:
    from tests.newcomer.test_workspace_example import EXAMPLE, WORKSPACE_SECTIONS, _without_sections

    root = tmp_path / "workspace"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".reconcile", "__pycache__"))
    pool, project = unique("jobs"), unique("workspace")  # the server is shared with other tests
    text = (root / "prefect.yaml").read_text(encoding="utf-8")
    text = text.replace("pool: warehouse-jobs", f"pool: {pool}").replace(
        "name: warehouse-jobs", f"name: {pool}"
    )
    (root / "prefect.yaml").write_text(text, encoding="utf-8")
    try:
        applied = cli(prefect_server, root, "--project", project, "apply", "--yes")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        clean = cli(prefect_server, root, "--project", project, "plan", "--detailed-exitcode")
        assert clean.returncode == 0, clean.stdout + clean.stderr

        full = (root / "prefect.yaml").read_text(encoding="utf-8")
        (root / "prefect.yaml").write_text(_without_sections(full, WORKSPACE_SECTIONS), encoding="utf-8")
        wanted = ["automation.report-after-load", "variable.warehouse_region", "variable.report_settings"]
        wanted += ["concurrency_limit.warehouse", f"work_queue.{pool}/critical", f"work_queue.{pool}/reports"]
        written = cli(prefect_server, root, "--project", project, "import", *wanted, "--write")
        assert written.returncode == 0, written.stderr
        assert "Wrote 2 variables, 1 concurrency limit, 2 work queues and 1 automation to" in written.stderr
        again = cli(prefect_server, root, "--project", project, "plan", "--detailed-exitcode")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "No changes" in again.stdout
    finally:  # the example's variables, limit and automation keep their names: free them for other tests
        destroy(prefect_server, root, project)
