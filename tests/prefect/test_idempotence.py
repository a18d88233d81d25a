"""Apply, then plan: no changes. On every example and on a file that uses every feature the store maps.

A Prefect server keeps much of what it is sent in its own form (intervals as floats, schedule time
zones and anchor dates filled in, the concurrency limit moved to a global concurrency limit, pool
variables inside a job template, block references as ``$ref`` ids, secrets as real values). The
store maps all of it back; the inventory's overlay holds the little the server cannot keep, and
these tests also check that the overlay stays that little.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from reconciler.objects import Kind
from reconciler.state.prefect.api import PrefectStore
from tests.fixtures.prefect_server import PrefectServer
from tests.helpers import make_project
from tests.prefect.conftest import cli, copy_project, destroy, example_env, examples, settle, unique

pytestmark = pytest.mark.prefect_server

FLOWS = {
    "flows/etl.py": '''
        from prefect import flow


        @flow(name="etl")
        def etl(rows: int = 10, source: str = "s3://bucket", token: str = "") -> int:
            """Move some rows."""
            return rows


        def report(day: str = "today") -> str:
            return day
    ''',
}


def synthetic(suffix: str) -> str:
    """Every kind, every pool type, every schedule form and the extension fields, named uniquely."""
    return f"""
    name: synthetic-{suffix}
    prefect-version: 3.9.1
    pull:
      - prefect.deployments.steps.set_working_directory:
          directory: /opt/flows
    blocks:
      - type: aws-credentials
        name: aws-{suffix}
        data:
          aws_access_key_id: AKIAEXAMPLE
          aws_secret_access_key: "{{{{ $FLOW_AWS_SECRET_ACCESS_KEY }}}}"
          region_name: eu-west-1
          aws_client_parameters: {{endpoint_url: "http://127.0.0.1:5000", verify: false}}
      - type: gcp-credentials
        name: gcp-{suffix}
        data:
          project: acme-prod
          service_account_info: "{{{{ $FLOW_GCP_SERVICE_ACCOUNT_JSON }}}}"
      - type: azure-container-instance-credentials
        name: az-{suffix}
        data: {{client_id: cid, tenant_id: tid, client_secret: "{{{{ $FLOW_AZURE_CLIENT_SECRET }}}}"}}
      - type: docker-registry-credentials
        name: reg-{suffix}
        data: {{username: bot, password: "{{{{ $REGISTRY_PASSWORD }}}}", registry_url: ghcr.io}}
      - type: secret
        name: token-{suffix}
        data: {{value: "{{{{ $APP_TOKEN }}}}"}}
      - type: string
        name: str-{suffix}
        data: {{value: hello}}
      - type: json
        name: json-{suffix}
        data: {{value: {{a: [1, 2.5, "x"], b: null, c: {{d: true}}}}}}
    work_pools:
      - name: local-{suffix}
        type: process
        description: local runs
        concurrency_limit: 3
        job_variables:
          env: {{STAGE: test, API_TOKEN: "{{{{ $APP_TOKEN }}}}"}}
          stream_output: true
      - name: ecs-{suffix}
        type: ecs:push
        paused: true
        job_variables:
          aws_credentials: "{{{{ prefect.blocks.aws-credentials.aws-{suffix} }}}}"
          cluster: prod
          cpu: 512
          memory: 1024
          launch_type: FARGATE
          image: ghcr.io/acme/etl:1.4
      - name: run-{suffix}
        type: cloud-run-v2:push
        job_variables:
          credentials: "{{{{ prefect.blocks.gcp-credentials.gcp-{suffix} }}}}"
          region: europe-west1
          timeout: 900
      - name: aci-{suffix}
        type: azure-container-instance:push
        job_variables:
          aci_credentials: "{{{{ prefect.blocks.azure-container-instance-credentials.az-{suffix} }}}}"
          image_registry: "{{{{ prefect.blocks.docker-registry-credentials.reg-{suffix} }}}}"
          resource_group_name: rg
          subscription_id: sub
      - name: custom-{suffix}
        type: process
        job_variables: {{working_dir: flows}}
        base_job_template:
          job_configuration: {{command: "{{{{ command }}}}", working_dir: "{{{{ working_dir }}}}"}}
          variables:
            type: object
            properties:
              command: {{type: string, default: "python -m flows"}}
              working_dir: {{type: string, default: /tmp}}
    work_queues:
      - {{pool: ecs-{suffix}, name: critical, priority: 1, concurrency_limit: 4, description: first}}
    variables:
      - {{name: v-{suffix}, value: {{a: [1, 2.5], b: null}}, tags: [y, x]}}
    concurrency_limits:
      - {{name: gcl-{suffix}, limit: 2, slot_decay_per_second: 0.5}}
    automations:
      - name: auto-{suffix}
        trigger: {{expect: [reconciler.test.never]}}
        actions: [{{type: pause-deployment, deployment: etl/full-{suffix}}}]
    deployments:
      - name: full-{suffix}
        entrypoint: flows/etl.py:etl
        version: "1.4.2"
        tags: [b, a, b]
        parameters: {{rows: 5, nested: {{x: [1, 2]}}, token: "{{{{ $APP_TOKEN }}}}"}}
        enforce_parameter_schema: false
        concurrency_limit: {{limit: 2, collision_strategy: CANCEL_NEW, grace_period_seconds: 120}}
        schedules:
          - {{cron: "0 6 * * 1-5", timezone: Europe/Berlin, slug: weekday-morning}}
          - {{interval: 3600, slug: hourly, active: false, parameters: {{rows: 1}}}}
          - {{interval: PT10M, timezone: UTC}}
          - {{rrule: "FREQ=WEEKLY;BYDAY=MO", slug: weekly}}
        work_pool:
          name: ecs-{suffix}
          work_queue_name: critical
          job_variables:
            cpu: 1024
            memory: 2048
            env: {{LOG_LEVEL: INFO, DB_PASSWORD: "{{{{ $DB_PASSWORD }}}}"}}
        triggers:
          - enabled: true
            match: {{prefect.resource.id: "prefect.flow-run.*"}}
            expect: [prefect.flow-run.Completed]
            parameters: {{rows: 7}}
      - name: plain-{suffix}
        entrypoint: flows/etl.py:report
        concurrency_limit: 1
        paused: true
        pull: []
        work_pool: {{name: local-{suffix}}}
      - name: custom-{suffix}
        entrypoint: flows/etl.py:report
        schedule: {{cron: "*/5 * * * *"}}
        work_pool: {{name: custom-{suffix}, job_variables: {{working_dir: flows/other}}}}
      - name: nopool-{suffix}
        entrypoint: flows/etl.py:etl
    """


SECRETS = {
    "FLOW_AWS_SECRET_ACCESS_KEY": "aws-secret-value",
    "FLOW_GCP_SERVICE_ACCOUNT_JSON": '{"type": "service_account", "private_key": "k"}',
    "FLOW_AZURE_CLIENT_SECRET": "azure-secret-value",
    "REGISTRY_PASSWORD": "registry-secret-value",
    "APP_TOKEN": "app-token-value",
    "DB_PASSWORD": "db-password-value",
}


def _inventory(project: str, server: PrefectServer) -> dict[str, dict]:
    store = PrefectStore(server.state_url, project=project)
    try:
        store.read_all()
        return {str(a): e.encode() for a, e in store._entries.items()}
    finally:
        store.close()


@pytest.mark.parametrize("example", examples(), ids=lambda p: p.name)
def test_every_example_applies_then_plans_no_changes(
    example: Path, tmp_path: Path, prefect_server: PrefectServer
) -> None:
    project = copy_project(example, tmp_path / example.name)
    env = example_env(project)
    applied = cli(prefect_server, project, "apply", "--yes", env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    settle(prefect_server, applied.stdout)
    try:
        again = cli(prefect_server, project, "plan", "--detailed-exitcode", env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "No changes" in again.stdout
    finally:
        name = json.loads(cli(prefect_server, project, "plan", "--json", env=env).stdout)["project"]
        destroy(prefect_server, project, name, env=env)


def test_a_file_using_every_feature_applies_then_plans_no_changes(
    tmp_path: Path, prefect_server: PrefectServer, api: httpx.Client
) -> None:
    suffix = unique("s")[2:]
    project = make_project(tmp_path / "synthetic", synthetic(suffix), FLOWS)
    first = cli(prefect_server, project, "apply", "--yes", env=SECRETS)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Apply complete: 20 created." in first.stdout
    for value in SECRETS.values():
        assert value not in first.stdout + first.stderr

    again = cli(prefect_server, project, "plan", "--detailed-exitcode", env=SECRETS)
    assert again.returncode == 0, again.stdout + again.stderr

    # What the server holds is what Prefect's own clients and UI expect.
    dep = api.get(f"deployments/name/etl/full-{suffix}").json()
    assert dep["global_concurrency_limit"]["limit"] == 2
    assert dep["concurrency_options"] == {"collision_strategy": "CANCEL_NEW", "grace_period_seconds": 120}
    assert dep["job_variables"]["env"]["DB_PASSWORD"] == SECRETS["DB_PASSWORD"]
    assert sorted(s["slug"] for s in dep["schedules"]) == [
        "hourly",
        "interval-2",
        "weekday-morning",
        "weekly",
    ]
    assert (
        dep["work_queue_name"] == "critical"
        and f"managed-by:prefect-reconciler/synthetic-{suffix}" in dep["tags"]
    )
    pool = api.get(f"work_pools/ecs-{suffix}").json()
    credentials = pool["base_job_template"]["variables"]["properties"]["aws_credentials"]["default"]
    assert set(credentials) == {"$ref"}
    automations = api.post("automations/filter", json={}).json()
    assert any(a["name"] == f"full-{suffix}__automation_1" for a in automations)

    # The overlay holds only what the OSS server cannot keep: nothing for most objects.
    inventory = _inventory(f"synthetic-{suffix}", prefect_server)
    overlays = {a: [tuple(o[0]) for o in e.get("o", [])] for a, e in inventory.items() if e.get("o")}
    assert set(overlays) <= {f"deployment.etl/full-{suffix}", f"deployment.report/custom-{suffix}"}, overlays
    full = set(overlays.get(f"deployment.etl/full-{suffix}", []))
    assert full <= {
        ("schedules", "hourly", "anchor_date"),
        ("schedules", "interval-2", "anchor_date"),
        ("triggers",),
    }, full
    assert inventory[f"work_pool.ecs-{suffix}"]["n"] == [
        "aws_credentials",
        "cluster",
        "cpu",
        "memory",
        "launch_type",
        "image",
    ]
    for entry in inventory.values():
        for value in SECRETS.values():
            assert value not in json.dumps(entry)

    destroy(prefect_server, project, f"synthetic-{suffix}", env=SECRETS)
    assert api.get(f"work_pools/ecs-{suffix}").status_code == 404
    assert api.get(f"deployments/name/etl/full-{suffix}").status_code == 404


def test_rotating_a_secret_is_a_sensitive_change_and_is_written(
    tmp_path: Path, prefect_server: PrefectServer, api: httpx.Client
) -> None:
    suffix = unique("r")[2:]
    project = make_project(
        tmp_path / "rotate",
        f"""
        name: rotate-{suffix}
        blocks:
          - {{type: secret, name: t-{suffix}, data: {{value: "{{{{ $APP_TOKEN }}}}"}}}}
        """,
    )
    assert cli(prefect_server, project, "apply", "--yes", env={"APP_TOKEN": "one"}).returncode == 0
    plan = cli(prefect_server, project, "plan", "--json", env={"APP_TOKEN": "two"})
    change = json.loads(plan.stdout)["changes"][0]
    assert change["action"] == "update" and [(f["path"], f["sensitive"]) for f in change["fields"]] == [
        ("data.value", True)
    ]
    assert "two" not in plan.stdout and "one" not in plan.stdout
    assert cli(prefect_server, project, "apply", "--yes", env={"APP_TOKEN": "two"}).returncode == 0
    held = api.get(
        f"block_types/slug/secret/block_documents/name/t-{suffix}", params={"include_secrets": True}
    )
    assert held.json()["data"]["value"] == "two"
    assert (
        cli(prefect_server, project, "plan", "--detailed-exitcode", env={"APP_TOKEN": "two"}).returncode == 0
    )
    destroy(prefect_server, project, f"rotate-{suffix}", env={"APP_TOKEN": "two"})


def test_kinds_are_all_read_in_a_few_requests(tmp_path: Path, prefect_server: PrefectServer) -> None:
    """read_all costs a handful of paged filter calls, not one request per object."""
    suffix = unique("n")[2:]
    project = make_project(tmp_path / "synthetic", synthetic(suffix), FLOWS)
    assert cli(prefect_server, project, "apply", "--yes", env=SECRETS).returncode == 0
    store = PrefectStore(prefect_server.state_url, project=f"synthetic-{suffix}")
    try:
        live = store.read_all()
        assert {a.kind for a in live.objects} == set(Kind) and len(live.objects) == 20
        # what read_all asks for; a repeat of a request the busy server refused is the load's doing
        asked = store.requests_made - store.requests_retried
        assert asked <= 11, (store.requests_by_method, store.requests_retried)
    finally:
        store.close()
    destroy(prefect_server, project, f"synthetic-{suffix}", env=SECRETS)
