"""Standalone automations against a real Prefect 3.9.1 server: every example (one per trigger kind,
every action type the server accepts) is posted through ``to_api`` and read back through
``from_api`` equal to its canonical body, updated in place the same way, and an automation that runs
a deployment when a flow run completes really fires on the server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reconciler.objects import Address, Kind
from reconciler.state.prefect import automations as mapping
from tests.desired.automations_support import examples, load_automations
from tests.fixtures.prefect_server import PrefectServer
from tests.prefect.conftest import unique

pytestmark = pytest.mark.prefect_server

FIRING_TIMEOUT = 120.0  # the triggers service sees a new automation within seconds; CI may be slow


def _ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if response.content else None


def _block(client: httpx.Client, slug: str, data: dict[str, Any]) -> str:
    block_type = _ok(client.get(f"block_types/slug/{slug}"))
    schemas = _ok(
        client.post(
            "block_schemas/filter", json={"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}}
        )
    )
    document = {
        "name": unique(slug),
        "block_type_id": block_type["id"],
        "block_schema_id": schemas[0]["id"],
        "data": data,
    }
    return str(_ok(client.post("block_documents/", json=document))["id"])


def _deployment(client: httpx.Client) -> tuple[str, str]:
    """A flow and a deployment of it (no work pool: its runs are only scheduled); their ids."""
    flow_id = str(_ok(client.post("flows/", json={"name": unique("flow")}))["id"])
    deployment = _ok(client.post("deployments/", json={"name": unique("deployment"), "flow_id": flow_id}))
    return flow_id, str(deployment["id"])


@pytest.fixture(scope="module")
def server_ids(prefect_server: PrefectServer) -> Iterator[dict[Address, str]]:
    """Real objects for every address the examples name (under unique names: the server is shared)."""
    with prefect_server.client() as client:
        _, deployment_id = _deployment(client)
        pool = unique("pool")
        pool_id = str(_ok(client.post("work_pools/", json={"name": pool, "type": "process"}))["id"])
        queue_id = str(_ok(client.post(f"work_pools/{pool}/queues", json={"name": "high"}))["id"])
        ids = {
            Address.deployment("etl", "etl-daily"): deployment_id,
            Address.pool("ecs-push"): pool_id,
            Address.work_queue("ecs-push", "high"): queue_id,
            Address.block("webhook", "pager"): _block(
                client, "webhook", {"method": "POST", "url": "https://example.com/hook", "headers": {}}
            ),
            Address.block("slack-webhook", "ops"): _block(
                client, "slack-webhook", {"url": "https://hooks.slack.com/services/T0/B0/X"}
            ),
        }
        yield ids
        for address, value in ids.items():
            if address.kind is Kind.AUTOMATION:
                client.delete(f"automations/{value}")


def _resolver(ids: dict[Address, str]) -> tuple[mapping.Resolve, mapping.NameOf]:
    def resolve(address: Address) -> str:
        return ids[address]

    def name_of(kind: Kind, value: str) -> Address | None:
        return next((a for a, i in ids.items() if i == value and a.kind is kind), None)

    return resolve, name_of


def _create(client: httpx.Client, body: dict[str, Any], ids: dict[Address, str]) -> str:
    resolve, _ = _resolver(ids)
    created = _ok(client.post("automations/", json=mapping.to_api(body, resolve)))
    ids[Address.automation(body["name"])] = str(created["id"])
    return str(created["id"])


# the order of creation: any-two-signals pauses pool-went-quiet, so that one exists first
SERVER_EXAMPLES = ["pool-went-quiet", "rerun-after-extract", "failures-then-crash", "any-two-signals"]


@pytest.mark.parametrize("name", SERVER_EXAMPLES)
def test_each_example_is_read_back_as_its_canonical_body(
    prefect_server: PrefectServer, server_ids: dict[Address, str], name: str
) -> None:
    loaded = examples().resources
    body = dict(loaded[Address.automation(name)].body)
    for dependency in loaded[Address.automation(name)].depends_on:  # pool-went-quiet, when run alone
        if dependency.kind is Kind.AUTOMATION and dependency not in server_ids:
            with prefect_server.client() as client:
                _create(client, dict(loaded[dependency].body), server_ids)
    _, name_of = _resolver(server_ids)
    with prefect_server.client() as client:
        automation_id = _create(client, body, server_ids)
        assert mapping.from_api(_ok(client.get(f"automations/{automation_id}")), name_of) == body

        changed = {
            **body,
            "description": "changed by the file",
            "enabled": not body["enabled"],
            "tags": ["x"],
        }
        resolve, _ = _resolver(server_ids)
        _ok(client.put(f"automations/{automation_id}", json=mapping.to_api(changed, resolve)))
        assert mapping.from_api(_ok(client.get(f"automations/{automation_id}")), name_of) == changed


def test_a_metric_trigger_is_refused_by_a_self_hosted_server_as_needs_cloud_says(
    prefect_server: PrefectServer, server_ids: dict[Address, str]
) -> None:
    body = examples().resources[Address.automation("slow-runs")].body
    resolve, _ = _resolver(server_ids)
    assert mapping.needs_cloud(body) is not None
    with prefect_server.client() as client:
        assert client.post("automations/", json=mapping.to_api(body, resolve)).status_code == 422


def test_a_change_made_in_the_ui_reads_back_as_drift(
    prefect_server: PrefectServer, server_ids: dict[Address, str]
) -> None:
    body = dict(examples().resources[Address.automation("rerun-after-extract")].body)
    body["name"] = unique("rerun")
    _, name_of = _resolver(server_ids)
    with prefect_server.client() as client:
        automation_id = _create(client, body, server_ids)
        server = _ok(client.get(f"automations/{automation_id}"))
        _, foreign = _deployment(client)
        server["actions"][1]["deployment_id"] = foreign
        server["trigger"]["threshold"] = 3
        update = {k: server[k] for k in ("name", "description", "enabled", "tags", "trigger", "actions")}
        _ok(client.put(f"automations/{automation_id}", json=update))
        drifted = mapping.from_api(_ok(client.get(f"automations/{automation_id}")), name_of)
    assert drifted != body
    assert drifted["actions"][1]["deployment"] == f"deployment_id:{foreign}"
    assert drifted["trigger"]["threshold"] == 3
    assert drifted["actions"][0] == body["actions"][0]


def test_an_automation_runs_a_deployment_when_a_flow_run_completes(prefect_server: PrefectServer) -> None:
    """The file's automation, posted through to_api, fires on the server: a flow run of one flow
    completes, the server's triggers service runs the named deployment."""
    with prefect_server.client() as client:
        watched_flow, _ = _deployment(client)
        _, target = _deployment(client)
        name = unique("after-watched")
        text = f"""
automations:
  - name: {name}
    trigger:
      expect: [prefect.flow-run.Completed]
      match_related: {{prefect.resource.role: flow, prefect.resource.id: prefect.flow.{watched_flow}}}
    actions:
      - {{type: run-deployment, deployment: target/nightly, parameters: {{}}}}
"""
        loaded = load_automations(text)
        assert loaded.errors == []
        body = loaded.resources[Address.automation(name)].body
        ids = {Address.deployment("target", "nightly"): target}
        automation_id = _create(client, dict(body), ids)
        try:
            assert _fires(client, watched_flow, target)
        finally:
            client.delete(f"automations/{automation_id}")


def _fires(client: httpx.Client, watched_flow: str, deployment: str) -> bool:
    """Completes a flow run of ``watched_flow`` (again every few seconds, as the triggers service may
    load a new automation a little after it was created) until a run of ``deployment`` appears."""
    deadline = time.monotonic() + FIRING_TIMEOUT
    next_completion = 0.0
    while time.monotonic() < deadline:
        if time.monotonic() >= next_completion:
            run = _ok(
                client.post(
                    "flow_runs/", json={"flow_id": watched_flow, "name": f"watched-{uuid.uuid4().hex[:6]}"}
                )
            )
            for state in ("RUNNING", "COMPLETED"):
                _ok(
                    client.post(
                        f"flow_runs/{run['id']}/set_state", json={"state": {"type": state}, "force": True}
                    )
                )
            next_completion = time.monotonic() + 10
        runs = _ok(
            client.post("flow_runs/filter", json={"flow_runs": {"deployment_id": {"any_": [deployment]}}})
        )
        if runs:
            return True
        time.sleep(1)
    return False
