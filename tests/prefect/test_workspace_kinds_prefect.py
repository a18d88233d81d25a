"""Work queues, Variables, global concurrency limits and automations on a real Prefect 3.9.1 server,
through the CLI: applied with the API's own semantics and read back as the file, no changes after an
apply, a change made through the API shown as drift and restored, prune removing only ours (never a
pool's ``default`` queue), ownership as for pools (adopt, another project's refused), and the
reconciler's own bookkeeping (inventory Variables, ownership records) never shown or declarable.

A deployment's shared global concurrency limit survives the deployment's deletion (Prefect's own
``DELETE /deployments/{id}`` deletes the limit a deployment points at)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.objects import Address, Kind
from reconciler.state.base import Limit
from reconciler.state.prefect import admission, bookkeeping, mapping
from reconciler.state.prefect.owners import record_name
from reconciler.state.prefect.workspace import segment
from tests.fixtures.prefect_server import PrefectServer
from tests.helpers import make_project
from tests.prefect.conftest import cli, destroy, unique

Json = Any
# A trigger no event matches: one that matches every event fires on the events its own actions emit,
# and the shared server's database is then busy with that loop for every other test
QUIET = {"type": "event", "posture": "Reactive", "expect": ["reconciler.test.never"]}


def _names() -> dict[str, str]:
    return {
        "project": unique("ws"),
        "pool": unique("pool"),
        "dep": unique("dep"),
        "var": unique("var"),
        "gcl": unique("gcl"),
        "spare": unique("spare") + " #1?",  # names Prefect allows that a URL path must escape
        "auto": unique("auto"),
    }


def workspace_yaml(n: dict[str, str], *, pruned: bool = False) -> str:
    """Every kind in one project; ``pruned``: only the pool and the limit no one uses any more."""
    if pruned:
        return textwrap.dedent(
            f"""
            name: {n["project"]}
            work_pools:
              - {{name: {n["pool"]}, type: process}}
            concurrency_limits:
              - {{name: {n["gcl"]}, limit: 3}}
            """
        ).lstrip()
    return textwrap.dedent(
        f"""
        name: {n["project"]}
        work_pools:
          - {{name: {n["pool"]}, type: process}}
        work_queues:
          - {{pool: {n["pool"]}, name: "bulk #2?", priority: 2}}
          - {{pool: {n["pool"]}, name: critical, priority: 1, concurrency_limit: 2, description: urgent}}
          - {{pool: {n["pool"]}, name: default, paused: true}}
        variables:
          - {{name: {n["var"]}, value: {{url: "https://x", retries: 3}}, tags: [b, a]}}
        concurrency_limits:
          - {{name: {n["gcl"]}, limit: 3}}
          - {{name: "{n["spare"]}", limit: 1, active: false, slot_decay_per_second: 0.5}}
        deployments:
          - name: {n["dep"]}
            entrypoint: flows/hello.py:hello
            work_pool: {{name: {n["pool"]}, work_queue_name: critical}}
            global_concurrency_limit: {n["gcl"]}
        automations:
          - name: {n["auto"]}
            trigger:
              expect: [prefect.flow-run.Completed]
              match: {{prefect.resource.id: "prefect.flow-run.{n["auto"]}"}}  # never: no test's run fires it
            actions:
              - {{type: run-deployment, deployment: hello/{n["dep"]}}}
              - {{type: pause-work-queue, work_queue: {n["pool"]}/critical}}
              - {{type: pause-work-pool, work_pool: {n["pool"]}}}
        """
    ).lstrip()


def _plan(server: PrefectServer, project: Path, *args: str) -> dict[str, Json]:
    result = cli(server, project, "plan", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _apply(server: PrefectServer, project: Path, *args: str) -> None:
    result = cli(server, project, "apply", "--yes", *args)
    log = (server.home / "server.log").read_text(errors="replace")[-6000:]
    assert result.returncode == 0, f"{result.stderr}\nthe server's log ends:\n{log}"
    assert "Traceback" not in result.stderr


def _ok(response: httpx.Response) -> Json:
    assert response.status_code < 300, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if response.content else None


def _automation(api: httpx.Client, name: str) -> list[Json]:
    return _ok(api.post("automations/filter", json={"automations": {"name": {"any_": [name]}}}))


@pytest.mark.slow
@pytest.mark.prefect_server
def test_every_workspace_kind_applies_reads_back_drifts_and_prunes_only_ours(
    tmp_path: Path, prefect_server: PrefectServer, api: httpx.Client
) -> None:
    n = _names()
    pool = n["pool"]
    root = make_project(tmp_path / "ws", workspace_yaml(n))

    first = _plan(prefect_server, root)
    actions = {c["address"]: c["action"] for c in first["changes"]}
    assert actions[f"work_queue.{pool}/default"] == "create"  # every pool has it: configured, never adopted
    assert set(actions.values()) == {"create"}
    _apply(prefect_server, root)

    # read back from the server as the API holds it
    queues = {q["name"]: q for q in _ok(api.post(f"work_pools/{pool}/queues/filter", json={}))}
    assert (queues["critical"]["priority"], queues["critical"]["concurrency_limit"]) == (1, 2)
    assert queues["critical"]["description"] == "urgent" and queues["bulk #2?"]["priority"] == 2
    assert queues["default"]["is_paused"] is True
    variable = _ok(api.get(f"variables/name/{n['var']}"))
    assert variable["value"] == {"url": "https://x", "retries": 3} and sorted(variable["tags"]) == ["a", "b"]
    gcl = _ok(api.get(f"v2/concurrency_limits/{n['gcl']}"))
    spare = _ok(api.get(f"v2/concurrency_limits/{segment(n['spare'])}"))
    assert (gcl["limit"], gcl["active"]) == (3, True)
    assert (spare["active"], spare["slot_decay_per_second"]) == (False, 0.5)
    deployment = _ok(api.get(f"deployments/name/hello/{n['dep']}"))
    assert deployment["global_concurrency_limit"]["id"] == gcl["id"]
    assert deployment["work_queue_name"] == "critical"
    (automation,) = _automation(api, n["auto"])
    ids = [
        (a.get("deployment_id"), a.get("work_queue_id"), a.get("work_pool_id")) for a in automation["actions"]
    ]
    pool_id = _ok(api.get(f"work_pools/{pool}"))["id"]
    assert ids == [
        (deployment["id"], None, None),
        (None, queues["critical"]["id"], None),
        (None, None, pool_id),
    ]
    assert _plan(prefect_server, root)["changes"] == []  # apply, then plan: nothing to do

    # changes made through the API behind the tool's back: drift, restored by the next apply
    _ok(api.patch(f"work_pools/{pool}/queues/critical", json={"concurrency_limit": 9, "is_paused": True}))
    _ok(api.patch(f"variables/name/{n['var']}", json={"value": "edited"}))
    _ok(api.patch(f"v2/concurrency_limits/{n['gcl']}", json={"limit": 7}))
    _ok(api.patch(f"automations/{automation['id']}", json={"enabled": False}))
    drifted = {c["address"]: c for c in _plan(prefect_server, root)["changes"]}
    assert set(drifted) == {
        f"work_queue.{pool}/critical",
        f"variable.{n['var']}",
        f"concurrency_limit.{n['gcl']}",
        f"automation.{n['auto']}",
    }
    assert all(c["action"] == "update" and c["drift"] for c in drifted.values())
    fields = {(f["path"], f["before"], f["after"]) for f in drifted[f"work_queue.{pool}/critical"]["fields"]}
    assert fields == {("concurrency_limit", 9, 2), ("paused", True, False)}
    _apply(prefect_server, root)
    assert _ok(api.get(f"work_pools/{pool}/queues/critical"))["concurrency_limit"] == 2
    assert _ok(api.get(f"variables/name/{n['var']}"))["value"] == {"url": "https://x", "retries": 3}
    assert _ok(api.get(f"v2/concurrency_limits/{n['gcl']}"))["limit"] == 3
    assert _ok(api.get(f"automations/{automation['id']}"))["enabled"] is True
    assert _plan(prefect_server, root)["changes"] == []

    # objects made directly through the API: neither shown nor touched; bookkeeping never listed
    outside = {"var": unique("outside"), "gcl": unique("outside"), "auto": unique("outside")}
    _ok(api.post(f"work_pools/{pool}/queues", json={"name": "outside"}))
    _ok(api.post("variables/", json={"name": outside["var"], "value": 1}))
    _ok(api.post("v2/concurrency_limits/", json={"name": outside["gcl"], "limit": 1}))
    made = {"name": outside["auto"], "trigger": QUIET, "actions": [{"type": "do-nothing"}]}
    _ok(api.post("automations/", json=made))
    assert _plan(prefect_server, root, "--prune")["changes"] == []
    listed = cli(prefect_server, root, "state", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    addresses = {o["address"] for o in json.loads(listed.stdout)["objects"]}
    assert len(addresses) == 9 and not any("outside" in a or "reconciler_" in a for a in addresses)

    # prune: only ours go, the default queue stays, a limit the deleted deployment used survives
    (root / "prefect.yaml").write_text(workspace_yaml(n, pruned=True), encoding="utf-8")
    pruning = _plan(prefect_server, root, "--prune")
    assert {c["action"] for c in pruning["changes"]} == {"delete"} and len(pruning["changes"]) == 7
    _apply(prefect_server, root, "--prune")
    queues = {q["name"] for q in _ok(api.post(f"work_pools/{pool}/queues/filter", json={}))}
    assert queues == {"default", "outside"}
    assert api.get(f"variables/name/{n['var']}").status_code == 404
    assert api.get(f"v2/concurrency_limits/{segment(n['spare'])}").status_code == 404
    assert _ok(api.get(f"v2/concurrency_limits/{n['gcl']}"))["limit"] == 3  # used by the deleted deployment
    assert api.get(f"automations/{automation['id']}").status_code == 404
    assert _ok(api.get(f"variables/name/{outside['var']}"))["value"] == 1
    assert _ok(api.get(f"v2/concurrency_limits/{outside['gcl']}"))["limit"] == 1
    assert len(_automation(api, outside["auto"])) == 1
    record = f"variables/name/{record_name(Address.work_queue(pool, 'default'))}"
    assert api.get(record).status_code == 404  # the default queue is no longer ours
    assert _plan(prefect_server, root, "--prune")["changes"] == []

    destroy(prefect_server, root, n["project"])
    assert api.delete(f"variables/name/{outside['var']}").status_code == 204
    assert api.delete(f"v2/concurrency_limits/{outside['gcl']}").status_code == 204


@pytest.mark.prefect_server
def test_existing_objects_are_adopted_another_projects_refused_and_bookkeeping_names_refused(
    tmp_path: Path, prefect_server: PrefectServer, api: httpx.Client
) -> None:
    owner, other = unique("owner"), unique("other")
    variable, gcl, auto, pool = unique("made"), unique("made"), unique("made"), unique("made")
    _ok(api.post("work_pools/", json={"name": pool, "type": "process"}))
    queue = {"name": "made", "priority": 1, "description": "by hand"}
    queue_id = _ok(api.post(f"work_pools/{pool}/queues", json=queue))["id"]
    _ok(api.post("variables/", json={"name": variable, "value": "by hand", "tags": ["ui"]}))
    _ok(api.post("v2/concurrency_limits/", json={"name": gcl, "limit": 5}))
    made = {"name": auto, "trigger": QUIET, "actions": [{"type": "do-nothing"}]}
    automation_id = _ok(api.post("automations/", json=made))["id"]
    text = f"""
        name: {{project}}
        work_pools:
          - {{{{name: {pool}, type: process}}}}
        work_queues:
          - {{{{pool: {pool}, name: made, concurrency_limit: 3}}}}
        variables:
          - {{{{name: {variable}, value: from git}}}}
        concurrency_limits:
          - {{{{name: {gcl}, limit: 2}}}}
        automations:
          - name: {auto}
            trigger: {{{{type: event, expect: [reconciler.test.never]}}}}
            actions: [{{{{type: do-nothing}}}}]
        """
    root = make_project(tmp_path / "owner", textwrap.dedent(text.format(project=owner)).lstrip())
    planned = _plan(prefect_server, root)
    assert {c["address"]: c["action"] for c in planned["changes"]} == {
        f"work_pool.{pool}": "adopt",
        f"work_queue.{pool}/made": "adopt",
        f"variable.{variable}": "adopt",
        f"concurrency_limit.{gcl}": "adopt",
        f"automation.{auto}": "adopt",
    }
    refused = cli(prefect_server, root, "apply", "--yes")
    assert refused.returncode == 1 and "--adopt" in refused.stderr
    _apply(prefect_server, root, "--adopt")
    held = _ok(api.get(f"variables/name/{variable}"))
    assert held["value"] == "from git" and held["tags"] == ["ui"]  # tags the file leaves unset are kept
    assert _ok(api.get(f"v2/concurrency_limits/{gcl}"))["limit"] == 2
    assert [a["id"] for a in _automation(api, auto)] == [automation_id]  # the same automation, updated
    held_queue = _ok(api.get(f"work_pools/{pool}/queues/made"))
    assert (held_queue["id"], held_queue["concurrency_limit"], held_queue["priority"]) == (queue_id, 3, 1)
    assert _plan(prefect_server, root)["changes"] == []
    # a priority the file leaves unset is Prefect's: another queue taking it renumbers ours, no drift
    _ok(api.post(f"work_pools/{pool}/queues", json={"name": "urgent", "priority": 1}))
    assert _ok(api.get(f"work_pools/{pool}/queues/made"))["priority"] == 2
    assert _plan(prefect_server, root)["changes"] == []

    second = make_project(tmp_path / "other", textwrap.dedent(text.format(project=other)).lstrip())
    foreign = cli(prefect_server, second, "plan")
    assert foreign.returncode == 1 and f"managed by project '{owner}'" in foreign.stderr
    assert f"variable.{variable}" in foreign.stderr and "Traceback" not in foreign.stderr
    assert f"work_queue.{pool}/made" in foreign.stderr

    reserved = f"reconciler__{unique('x').replace('-', '_')}"
    (second / "prefect.yaml").write_text(
        f"name: {other}\nvariables:\n  - {{name: {reserved}, value: 1}}\n", encoding="utf-8"
    )
    bookkeeping = cli(prefect_server, second, "plan")
    assert bookkeeping.returncode == 1 and "bookkeeping" in bookkeeping.stderr, bookkeeping.stderr
    assert "Traceback" not in bookkeeping.stderr

    metric = unique("metric")
    (second / "prefect.yaml").write_text(
        textwrap.dedent(
            f"""
            name: {other}
            automations:
              - name: {metric}
                trigger:
                  type: metric
                  match: {{prefect.resource.id: "prefect.flow.never"}}
                  metric: {{name: duration, threshold: 120, operator: ">", range: 900, firing_for: 300}}
                actions: [{{type: do-nothing}}]
            """
        ).lstrip(),
        encoding="utf-8",
    )
    cloud_only = cli(prefect_server, second, "apply", "--yes")
    assert cloud_only.returncode == 1 and "Prefect Cloud only" in cloud_only.stderr, cloud_only.stderr
    assert "Traceback" not in cloud_only.stderr and _automation(api, metric) == []

    destroy(prefect_server, root, owner)
    assert api.get(f"variables/name/{variable}").status_code == 404
    assert api.get(f"work_pools/{pool}").status_code == 404


@pytest.mark.prefect_server
def test_a_deployment_moves_between_its_own_limit_and_a_shared_one_and_the_shared_one_survives(
    tmp_path: Path, prefect_server: PrefectServer, api: httpx.Client
) -> None:
    project, pool, dep, gcl = unique("gcl"), unique("pool") + " #?", unique("dep") + "#?", unique("shared")

    def text(limit: str) -> str:
        return textwrap.dedent(
            f"""
            name: {project}
            work_pools: [{{name: "{pool}", type: process}}]
            concurrency_limits: [{{name: {gcl}, limit: 3}}]
            deployments:
              - name: "{dep}"
                entrypoint: flows/hello.py:hello
                work_pool: {{name: "{pool}"}}
                {limit}
            """
        ).lstrip()

    root = make_project(tmp_path / "gcl", text("concurrency_limit: 2"))
    _apply(prefect_server, root)
    deployment = _ok(api.get(f"deployments/name/hello/{segment(dep)}"))
    own = deployment["global_concurrency_limit"]
    assert own["name"] == f"deployment:{deployment['id']}" and own["limit"] == 2
    shared = _ok(api.get(f"v2/concurrency_limits/{gcl}"))

    (root / "prefect.yaml").write_text(text(f"global_concurrency_limit: {gcl}"), encoding="utf-8")
    (change,) = _plan(prefect_server, root)["changes"]
    fields = {(f["path"], f["before"], f["after"]) for f in change["fields"]}
    assert ("global_concurrency_limit", None, gcl) in fields and (
        "concurrency_limit.limit",
        2,
        None,
    ) in fields
    _apply(prefect_server, root)
    assert (
        _ok(api.get(f"deployments/name/hello/{segment(dep)}"))["global_concurrency_limit"]["id"]
        == shared["id"]
    )
    assert api.get(f"v2/concurrency_limits/{own['id']}").status_code == 404  # its own limit is dropped
    assert _plan(prefect_server, root)["changes"] == []

    (root / "prefect.yaml").write_text(text("concurrency_limit: 4"), encoding="utf-8")
    _apply(prefect_server, root)
    back = _ok(api.get(f"deployments/name/hello/{segment(dep)}"))["global_concurrency_limit"]
    assert back["name"] == f"deployment:{deployment['id']}" and back["limit"] == 4
    assert _ok(api.get(f"v2/concurrency_limits/{gcl}"))["limit"] == 3  # neither deleted nor set to 4
    assert _plan(prefect_server, root)["changes"] == []
    destroy(prefect_server, root, project)
    assert api.get(f"v2/concurrency_limits/{gcl}").status_code == 404
    assert api.get(f"work_pools/{segment(pool)}").status_code == 404


def test_limit_steps_never_send_a_deployment_limit_with_a_shared_one() -> None:
    """Prefect deletes the limit a deployment points at when a request carries ``concurrency_limit:
    null`` (and sets its limit when it carries N), after storing the request's shared limit id."""
    own = {"id": "d", "global_concurrency_limit": {"id": "o", "name": "deployment:d", "limit": 2}}
    shared = {"id": "d", "global_concurrency_limit": {"id": "s", "name": "db", "limit": 5}}
    none: dict[str, Any] = {"id": "d", "global_concurrency_limit": None}
    to_shared = {"concurrency_limit": None, "concurrency_options": None, "global_concurrency_limit_id": "s"}
    assert mapping.limit_steps(to_shared, own) == [
        {"concurrency_limit": None, "concurrency_options": None},
        {"global_concurrency_limit_id": "s"},
    ]
    to_own = {"concurrency_limit": 3, "global_concurrency_limit_id": None, "paused": True}
    assert mapping.limit_steps(to_own, shared) == [
        {"global_concurrency_limit_id": None},
        {"concurrency_limit": 3, "paused": True},
    ]
    assert mapping.limit_steps({"global_concurrency_limit_id": "t"}, shared) == [
        {"global_concurrency_limit_id": "t"}
    ]
    assert mapping.limit_steps({"concurrency_limit": 4}, none) == [{"concurrency_limit": 4}]
    assert mapping.limit_steps({}, none) == []
    body = mapping.deployment_body(shared, flow_name="f", marker="m", triggers=[])
    assert body["global_concurrency_limit"] == "db" and body["concurrency_limit"] is None
    assert "global_concurrency_limit" not in mapping.deployment_body(
        own, flow_name="f", marker="m", triggers=[]
    )


@pytest.mark.parametrize(
    ("kind", "name", "ours"),
    [
        (Kind.VARIABLE, "reconciler__etl", True),  # an inventory head
        (Kind.VARIABLE, "reconciler__etl__lock", True),  # the apply lease
        (Kind.VARIABLE, "reconciler_owner__0123abcd", True),  # an ownership record
        (Kind.VARIABLE, "reconcile_admission_release_ab12", True),  # serve's release guard
        (Kind.CONCURRENCY_LIMIT, "reconcile-admission:etl:pool", True),  # serve's admission slots
        (Kind.VARIABLE, "reconciler", False),
        (Kind.VARIABLE, "api_base", False),
        (Kind.CONCURRENCY_LIMIT, "reconciler__etl", False),
        (Kind.AUTOMATION, "reconciler__etl", False),
    ],
)
def test_one_predicate_names_the_tools_bookkeeping(kind: Kind, name: str, ours: bool) -> None:
    assert bookkeeping.is_bookkeeping(kind, name) is ours


def test_the_limits_serve_admits_through_are_bookkeeping_and_a_users_limit_is_not() -> None:
    """``serve``'s own names come from ``admission.py``; the predicate follows them."""
    for key in ("pool:local", "queue:local/critical", "serve"):
        name = admission.limit_name("etl/prod", Limit(key=key, limit=1, reason=""))
        assert name is not None and bookkeeping.is_bookkeeping(Kind.CONCURRENCY_LIMIT, name)
    # a user's global limit named by a deployment is the server's to enforce: serve takes no slot of it
    assert admission.limit_name("etl", Limit(key="gcl:database", limit=1, reason="")) is None
    assert not bookkeeping.is_bookkeeping(Kind.CONCURRENCY_LIMIT, "database")


def test_a_deployment_is_created_with_one_kind_of_limit_only() -> None:
    """The create also adopts: a null shared-limit id would unlink the deployment's own limit, and a
    null ``concurrency_limit`` beside a shared one would delete the shared one."""
    limit = {"limit": 2, "collision_strategy": "ENQUEUE", "grace_period_seconds": None}
    body: dict[str, Any] = {"name": "d", "concurrency_limit": limit}
    own = mapping.deployment_create(body, flow_id="f", marker="m")
    assert own["concurrency_limit"] == 2 and "global_concurrency_limit_id" not in own
    shared = mapping.deployment_create(
        {"name": "d", "concurrency_limit": None}, flow_id="f", marker="m", limit_id="s"
    )
    assert shared["global_concurrency_limit_id"] == "s" and "concurrency_limit" not in shared
