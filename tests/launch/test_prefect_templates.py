"""Each type's Prefect default base job template, pasted as the pool's ``base_job_template``, runs to
COMPLETED against the stand-ins, through the real CLI (``apply``, then ``run --wait``).

The templates are Prefect 3.9.1's own, read from the installed Prefect
(``prefect/server/api/collections_data/views/aggregate-worker-metadata.json``, the defaults Prefect
gives a new pool of each worker type): ECS, Cloud Run v1 (``run.googleapis.com/v1``, metadata/spec),
Cloud Run v2 and ACI.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.aci import AciFake
from tests.fakes.aci import Outcome as AciOutcome
from tests.fakes.cloud_run import CloudRunFake, Outcome, service_account
from tests.fakes.moto_server import STEP_PER_DESCRIBE, MotoStandIn
from tests.helpers import make_project, run_cli
from tests.launch.aci_support import CLIENT_SECRET
from tests.launch.aci_support import environ as aci_environ

pytestmark = pytest.mark.cloud

WORKERS = {
    "ecs:push": ("prefect-aws", "ecs"),
    "cloud-run:push": ("prefect-gcp", "cloud-run"),
    "cloud-run-v2:push": ("prefect-gcp", "cloud-run-v2"),
    "azure-container-instance:push": ("prefect-azure", "azure-container-instance"),
}


def prefect_template(pool_type: str) -> dict[str, Any]:
    path = resources.files("prefect") / "server/api/collections_data/views/aggregate-worker-metadata.json"
    collection, worker = WORKERS[pool_type]
    return json.loads(path.read_text(encoding="utf-8"))[collection][worker]["default_base_job_configuration"]


def project_file(
    pool_type: str, blocks: list[dict[str, Any]], job_variables: dict[str, Any], name: str
) -> str:
    doc = {
        "name": name,
        "blocks": blocks,
        "work_pools": [
            {
                "name": "pasted",
                "type": pool_type,
                "base_job_template": prefect_template(pool_type),
                "job_variables": job_variables,
            }
        ],
        "deployments": [
            {
                "name": "greet",
                "entrypoint": "flows/hello.py:hello",
                "parameters": {"name": "template"},
                "work_pool": {"name": "pasted"},
            }
        ],
    }
    return json.dumps(doc, indent=2)  # JSON is YAML


def apply_and_run(root: Path, env: dict[str, str]) -> Any:
    applied = run_cli("-C", str(root), "apply", "--yes", env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    return run_cli("-C", str(root), "run", "hello/greet", "--wait", "--timeout", "60", env=env)


def test_prefects_ecs_template_runs_to_completed(tmp_path: Path, moto: MotoStandIn) -> None:
    cluster = f"tpl-{uuid.uuid4().hex[:8]}"
    moto.create_cluster(cluster)
    moto.set_transition(STEP_PER_DESCRIBE)
    block = {
        "type": "aws-credentials",
        "name": "moto",
        "data": {
            "aws_access_key_id": "AKIATEMPLATE0001",
            "aws_secret_access_key": "{{ $TPL_AWS_SECRET }}",
            "region_name": "us-east-1",
            "aws_client_parameters": {"endpoint_url": moto.url},
        },
    }
    variables = {
        "aws_credentials": "{{ prefect.blocks.aws-credentials.moto }}",
        "cluster": cluster,
        "image": "python:3.12-slim",
        "task_start_timeout_seconds": 120,
    }
    root = make_project(tmp_path / "ecs", project_file("ecs:push", [block], variables, "tpl-ecs"))

    ran = apply_and_run(root, {"TPL_AWS_SECRET": "tpl-secret"})

    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "COMPLETED (exit code 0)" in ran.stdout
    assert moto.calls["RunTask"] == 1


@pytest.fixture
def cloud_run() -> Iterator[CloudRunFake]:
    with CloudRunFake() as server:
        yield server


@pytest.mark.parametrize("pool_type", ["cloud-run:push", "cloud-run-v2:push"])
def test_prefects_cloud_run_templates_v1_and_v2_run_to_completed(
    tmp_path: Path, cloud_run: CloudRunFake, pool_type: str
) -> None:
    cloud_run.outcome = Outcome.succeed(after=1)
    block = {
        "type": "gcp-credentials",
        "name": "prod",
        "data": {"service_account_info": "{{ $TPL_SERVICE_ACCOUNT_JSON }}", "project": "demo-project"},
    }
    variables = {
        "credentials": "{{ prefect.blocks.gcp-credentials.prod }}",
        "region": "europe-west1",
        "image": "europe-docker.pkg.dev/demo-project/flows/hello:1.0",
        "cpu": "1000m",
        "memory": "512Mi",
        "service_account_name": "flows@demo-project.iam.gserviceaccount.com",
        "vpc_connector_name": "projects/demo-project/locations/europe-west1/connectors/egress",
    }
    root = make_project(tmp_path / "run", project_file(pool_type, [block], variables, "tpl-run"))
    env = {
        "TPL_SERVICE_ACCOUNT_JSON": json.dumps(service_account(cloud_run)),
        "RECONCILE_CLOUD_RUN_ENDPOINT": cloud_run.url,
    }

    ran = apply_and_run(root, env)

    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "COMPLETED (exit code 0)" in ran.stdout
    (created,) = cloud_run.calls("create_job")
    task = created.body["template"]["template"]
    assert task["serviceAccount"] == variables["service_account_name"]
    assert task["vpcAccess"]["connector"] == variables["vpc_connector_name"]
    assert task["timeout"] == "600s"
    (container,) = task["containers"]
    assert container["image"] == variables["image"]
    assert container["resources"]["limits"] == {"cpu": "1000m", "memory": "512Mi"}


def test_prefects_aci_template_runs_to_completed(tmp_path: Path) -> None:
    with AciFake.running(tmp_path / "fake", client_secret=CLIENT_SECRET) as fake:
        fake.outcome = AciOutcome.succeed() if hasattr(AciOutcome, "succeed") else fake.outcome
        block = {
            "type": "azure-container-instance-credentials",
            "name": "test",
            "data": {
                "client_id": fake.client_id,
                "tenant_id": fake.tenant_id,
                "client_secret": "{{ $TPL_CLIENT_SECRET }}",
            },
        }
        variables = {
            "aci_credentials": "{{ prefect.blocks.azure-container-instance-credentials.test }}",
            "resource_group_name": "rg-flows",
            "subscription_id": fake.subscription_id,
            "image": "python:3.12-slim",
            "task_watch_poll_interval": 0,
        }
        root = make_project(
            tmp_path / "aci", project_file("azure-container-instance:push", [block], variables, "tpl-aci")
        )
        env = {**aci_environ(fake), "TPL_CLIENT_SECRET": CLIENT_SECRET}

        ran = apply_and_run(root, env)

        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "COMPLETED (exit code 0)" in ran.stdout
