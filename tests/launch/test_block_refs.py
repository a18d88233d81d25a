"""A block picked in Prefect's UI is stored as ``{"$ref": {"block_document_id": ...}}``. A reference
nothing can resolve must stop the run before submit, naming the block id and the field: a launcher
never falls back to this machine's AWS chain, Google ADC or DefaultAzureCredential."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import LaunchAuthError, LaunchError
from reconciler.infra.retry import RetryPolicy
from reconciler.launch.aci.launcher import AciLauncher
from reconciler.launch.cloud_run.launcher import CloudRunLauncher
from reconciler.launch.ecs.launcher import EcsLauncher
from tests.fakes.moto_server import Fault, MotoStandIn
from tests.helpers import make_project, run_cli
from tests.launch.jobs_support import rendered_job
from tests.launch.live_support import job_of, live_state

pytestmark = pytest.mark.cloud

BLOCK_ID = "5a1b6c3e-0d2f-4c8a-9e71-3b2d1f0c9a77"
REF = {"$ref": {"block_document_id": BLOCK_ID}}
AMBIENT_AWS = {
    "AWS_ACCESS_KEY_ID": "AKIAAMBIENTMACHINE01",
    "AWS_SECRET_ACCESS_KEY": "ambient-machine-secret",
    "AWS_REGION": "us-east-1",
}

CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "ecs": ("ecs:push", "aws_credentials", {"image": "python:3.12-slim"}),
    "cloud-run": ("cloud-run-v2:push", "credentials", {"image": "python:3.12-slim"}),
    "aci": (
        "azure-container-instance:push",
        "aci_credentials",
        {"image": "python:3.12-slim", "resource_group_name": "rg", "subscription_id": "sub"},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("layer", ["pool", "deployment"])
def test_an_unresolved_ref_stops_the_job_naming_the_block_and_the_field(
    case: str, layer: str, tmp_path: Path
) -> None:
    pool_type, field, variables = CASES[case]
    pool_variables = {**variables, field: REF} if layer == "pool" else variables
    deployment_variables = {field: REF} if layer == "deployment" else {}
    live = live_state(pool_type, pool_variables=pool_variables, deployment_variables=deployment_variables)

    with pytest.raises(LaunchError) as caught:
        job_of(live, tmp_path, environ=AMBIENT_AWS)

    message = str(caught.value)
    assert BLOCK_ID in message
    where = (
        "work pool 'pool' job_variables"
        if layer == "pool"
        else "deployment hello/greet work_pool.job_variables"
    )
    assert f"{where}.{field}" in message
    assert "not launched" in message and "own cloud credentials" in message


def test_a_ref_as_a_pasted_template_default_is_refused_too(tmp_path: Path) -> None:
    """Prefect Cloud keeps a pool's block choice as the default in its base job template."""
    from reconciler import pooltypes

    template = pooltypes.get("ecs:push").base_job_template(
        {"aws_credentials": REF, "image": "python:3.12-slim"}
    )
    live = live_state("ecs:push", pool_variables={}, base_job_template=template)
    with pytest.raises(LaunchError, match=f"block document {BLOCK_ID} in the base job template"):
        job_of(live, tmp_path)


def test_ecs_launcher_refuses_a_ref_with_ambient_credentials_the_stand_in_would_reject(
    moto: MotoStandIn,
) -> None:
    """Defence in depth: even a Job that skipped the lifecycle check never reaches AWS."""
    moto.inject(Fault("*", 100, code="UnrecognizedClientException", message="ambient credentials refused"))
    job = rendered_job(
        "ecs:push",
        pool="ecs-ref",
        pool_variables={"aws_credentials": REF, "image": "python:3.12-slim", "cluster": "c"},
        deployment_variables={},
        parameters={},
        project_dir="/tmp",
    )
    launcher = EcsLauncher(
        environ={**AMBIENT_AWS, "AWS_ENDPOINT_URL": moto.url}, retry_policy=RetryPolicy(attempts=1)
    )
    try:
        with pytest.raises(LaunchAuthError, match=f"block document {BLOCK_ID}"):
            launcher.submit(job)
    finally:
        launcher.close()
    assert sum(moto.calls.values()) == 0  # not one request: nothing submitted with the machine's keys


@pytest.mark.parametrize("case", ["cloud-run", "aci"])
def test_cloud_run_and_aci_launchers_refuse_a_ref_before_any_request(case: str) -> None:
    pool_type, field, variables = CASES[case]
    job = rendered_job(
        pool_type,
        pool="p",
        pool_variables={**variables, field: REF},
        deployment_variables={},
        parameters={},
        project_dir="/tmp",
    )
    launcher = CloudRunLauncher(environ={}) if case == "cloud-run" else AciLauncher(environ={})
    try:
        with pytest.raises(LaunchAuthError, match=f"block document {BLOCK_ID}"):
            launcher.submit(job)
    finally:
        launcher.close()


def cloud_project() -> str:
    """A pool as Prefect Cloud keeps it once a block is picked in its UI: the block's ``$ref`` is the
    default of ``aws_credentials`` in the pool's base job template (pasted here as Prefect shows it)."""
    from reconciler import pooltypes

    template = pooltypes.get("ecs:push").base_job_template(
        {"aws_credentials": REF, "image": "python:3.12-slim", "cluster": "flows"}
    )
    doc = {
        "name": "refs",
        "work_pools": [{"name": "ecs-cloud", "type": "ecs:push", "base_job_template": template}],
        "deployments": [
            {"name": "greet", "entrypoint": "flows/hello.py:hello", "work_pool": {"name": "ecs-cloud"}}
        ],
    }
    return json.dumps(doc, indent=2)


def test_cli_run_of_a_pool_prefect_cloud_wrote_fails_clearly_and_submits_nothing(
    tmp_path: Path, moto: MotoStandIn
) -> None:
    moto.inject(Fault("*", 100, code="UnrecognizedClientException", message="ambient credentials refused"))
    root = make_project(tmp_path / f"refs-{uuid.uuid4().hex[:6]}", cloud_project())
    env = {**AMBIENT_AWS, "AWS_ENDPOINT_URL": moto.url}
    applied = run_cli("-C", str(root), "apply", "--yes", env=env)
    assert applied.returncode == 0, applied.stderr

    run = run_cli("-C", str(root), "run", "hello/greet", env=env)

    assert run.returncode == 1
    assert BLOCK_ID in run.stderr and "aws_credentials" in run.stderr and "ecs-cloud" in run.stderr
    assert "Traceback" not in run.stderr
    assert sum(moto.calls.values()) == 0
