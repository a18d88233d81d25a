"""ECS preflight against moto (STS, ECS, ECR, IAM, EC2 in server mode), through the real boto3 clients.

The example project (examples/ecs) is loaded as ``reconcile plan`` loads it, with the environment
pointing its aws-credentials block at moto (``AWS_ENDPOINT_URL``, AWS's documented setting): every
check passes. Each crafted break (an image missing from ECR, a subnet of another VPC, refused
credentials, a missing role or cluster, a size Fargate does not offer) fails with the field named.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from reconciler import desired as desired_state
from reconciler.launch.preflight import PreflightResult, Target, preflight_for, run_preflight
from reconciler.objects import Address, LiveState, Resource, Secret, StoredObject
from tests.fakes.moto_server import ACCOUNT, REGION, Fault, MotoStandIn
from tests.helpers import REPO
from tests.launch.jobs_support import rendered_job

pytestmark = pytest.mark.cloud

MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 7023,
            "digest": "sha256:" + "b" * 64,
        },
        "layers": [],
    }
)


@pytest.fixture
def world(moto: MotoStandIn) -> dict[str, str]:
    """A cluster, an ECR image and an execution role in moto, with unique names; the env that names them."""
    suffix = uuid.uuid4().hex[:8]
    cluster = f"flows-{suffix}"
    moto.create_cluster(cluster)
    repository = f"flows-{suffix}"
    ecr = moto.client("ecr")
    ecr.create_repository(repositoryName=repository)
    ecr.put_image(repositoryName=repository, imageManifest=MANIFEST, imageTag="1.4")
    role = moto.client("iam").create_role(
        RoleName=f"exec-{suffix}", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
    )
    return example_env(
        {
            "aws_access_key_id": "AKIAPREFLIGHT0000001",
            "aws_secret_access_key": "preflight-secret",
            "cluster": cluster,
            "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{repository}:1.4",
            "execution_role_arn": role["Role"]["Arn"],
        },
        AWS_ENDPOINT_URL=moto.url,  # AWS's documented setting, read by the launcher's process
    )


def example_env(values: Mapping[str, str], **process: str) -> dict[str, str]:
    """The environment for the example: the variable each field's placeholder names gets its value."""
    return {**process, **{name_of(field): value for field, value in values.items()}}


def name_of(field: str, example: str = "ecs") -> str:
    """The environment variable ``examples/<example>/prefect.yaml`` reads ``field`` from
    (``field: "{{ $NAME }}"``), so these tests follow the example when its names change."""
    text = (REPO / "examples" / example / "prefect.yaml").read_text()
    match = re.search(rf'^\s*{field}: "\{{\{{ \$(\w+) \}}\}}"', text, re.MULTILINE)
    assert match, f"examples/{example}/prefect.yaml no longer reads {field} from the environment"
    return match[1]


def load_example(tmp_path: Path, environ: Mapping[str, str], *, edit: tuple[str, str] | None = None) -> Any:
    project = tmp_path / "ecs"
    shutil.copytree(REPO / "examples" / "ecs", project)
    if edit is not None:
        text = (project / "prefect.yaml").read_text()
        assert edit[0] in text
        (project / "prefect.yaml").write_text(text.replace(edit[0], edit[1]))
    return desired_state.load(desired_state.WorkingTree(project), environ=environ, fingerprint_key=b"k" * 32)


def failures(results: tuple[PreflightResult, ...]) -> dict[str, PreflightResult]:
    return {r.field: r for r in results if not r.ok}


def test_the_example_pool_passes_every_check(moto, world, tmp_path) -> None:
    results = preflight_for(load_example(tmp_path, world), world)

    assert results and all(r.ok for r in results), [r for r in results if not r.ok]
    checks = {(r.field, r.check) for r in results}
    assert checks >= {
        ("aws_credentials", "credentials"),
        ("cluster", "cluster-exists"),
        ("image", "image-exists"),
        ("execution_role_arn", "role-exists"),
        ("vpc_id", "network"),
        ("cpu", "fargate-size"),
    }
    assert not any(r.skipped for r in results)
    assert {r.pool for r in results} == {"ecs-push"}
    # both deployments share the pool's findings except their own cpu/memory pair
    sizes = [r for r in results if r.check == "fargate-size"]
    assert {r.deployment for r in sizes} == {"etl/etl-on-change", "nightly-report/nightly"}
    # one DescribeClusters for two deployments: answers are shared
    assert moto.calls["DescribeClusters"] == 1


def test_an_image_missing_from_ecr_fails_on_the_image_field(moto, world, tmp_path) -> None:
    image = name_of("image")
    environ = {**world, image: world[image].replace(":1.4", ":9.9")}
    failed = failures(preflight_for(load_example(tmp_path, environ), environ))

    assert set(failed) == {"image"}
    assert "ImageNotFoundException" in failed["image"].message
    assert failed["image"].deployment is None  # every deployment of the pool uses it


def test_a_missing_cluster_and_role_fail_on_their_fields(moto, world, tmp_path) -> None:
    environ = {
        **world,
        name_of("cluster"): "no-such-cluster",
        name_of("execution_role_arn"): f"arn:aws:iam::{ACCOUNT}:role/no-such-role",
    }
    failed = failures(preflight_for(load_example(tmp_path, environ), environ))

    assert set(failed) == {"cluster", "execution_role_arn"}
    assert "MISSING" in failed["cluster"].message
    assert "does not exist" in failed["execution_role_arn"].message


def test_a_subnet_of_another_vpc_fails_on_the_subnets_field(moto, world, tmp_path) -> None:
    ec2 = moto.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    other = ec2.create_vpc(CidrBlock="10.43.0.0/16")["Vpc"]["VpcId"]
    stray = ec2.create_subnet(VpcId=other, CidrBlock="10.43.1.0/24")["Subnet"]["SubnetId"]
    network = f"vpc_id: {vpc}\n      network_configuration: {{subnets: [{stray}], assignPublicIp: ENABLED}}"
    edit = ("# vpc_id: vpc-0abc1234", network)
    failed = failures(preflight_for(load_example(tmp_path, world, edit=edit), world))

    assert set(failed) == {"network_configuration.subnets"}
    assert f"{stray} (in {other})" in failed["network_configuration.subnets"].message


def test_an_unknown_subnet_fails_on_the_subnets_field(moto, world, tmp_path) -> None:
    edit = ("# vpc_id: vpc-0abc1234", "network_configuration: {subnets: [subnet-0123456789abcdef0]}")
    failed = failures(preflight_for(load_example(tmp_path, world, edit=edit), world))

    assert set(failed) == {"network_configuration.subnets"}
    assert "subnet-0123456789abcdef0" in failed["network_configuration.subnets"].message


def test_refused_credentials_fail_once_on_the_credentials_field(moto, world, tmp_path) -> None:
    # moto accepts any signature; the stand-in answers as STS does for a key it does not know
    moto.inject(
        Fault(
            "GetCallerIdentity",
            times=1,
            code="InvalidClientTokenId",
            message="The security token included in the request is invalid.",
            status=403,
        )
    )
    results = preflight_for(load_example(tmp_path, world), world)

    assert [(r.field, r.ok) for r in results] == [("aws_credentials", False)]
    assert "InvalidClientTokenId" in results[0].message
    assert "block aws-credentials/prod" in results[0].message  # names where the credentials come from
    assert world[name_of("aws_secret_access_key")] not in results[0].message
    assert moto.calls["GetCallerIdentity"] == 1  # the second deployment reused the answer
    assert moto.calls["DescribeClusters"] == 0


def test_a_missing_secret_fails_on_the_job_variables(moto, world, tmp_path) -> None:
    desired = load_example(tmp_path, world)
    secret = name_of("aws_secret_access_key")
    environ = {k: v for k, v in world.items() if k != secret}
    results = preflight_for(desired, environ)

    assert [(r.field, r.check, r.ok) for r in results] == [("job_variables", "render", False)]
    assert secret in results[0].message


def sized_target(moto: MotoStandIn, world: Mapping[str, str], **variables: Any) -> Target:
    """A job rendered without the loader (as from a pasted template), on the test's cluster."""
    job = rendered_job(
        "ecs:push",
        pool="ecs-pasted",
        pool_variables={
            "cluster": world[name_of("cluster")],
            "image": "docker.io/library/python:3.12-slim",
            "aws_credentials": {
                "aws_access_key_id": "AKIAPREFLIGHT0000001",
                "aws_secret_access_key": "preflight-secret",
                "region_name": REGION,
                "aws_client_parameters": {"endpoint_url": moto.url},
            },
        },
        deployment_variables=variables,
        parameters={},
        project_dir="/tmp",
    )
    return Target("ecs-pasted", "ecs:push", "ecs", "hello/greet", job=job)


def test_logs_without_an_execution_role_fail(moto, world) -> None:
    target = sized_target(moto, world, configure_cloudwatch_logs=True)
    failed = failures(tuple(run_preflight([target], environ={})))

    assert set(failed) == {"execution_role_arn"}
    assert failed["execution_role_arn"].check == "logs-need-execution-role"


@pytest.mark.parametrize(("cpu", "memory", "field"), [(512, 8192, "memory"), (300, 1024, "cpu")])
def test_a_size_fargate_does_not_offer_fails_on_cpu_or_memory(moto, world, cpu, memory, field) -> None:
    # the loader already refuses such variables; a pasted template can still render them
    target = sized_target(moto, world, cpu=cpu, memory=memory)
    results = run_preflight([target], environ={})

    failed = failures(tuple(results))
    assert set(failed) == {field}
    assert failed[field].check == "fargate-size"
    image = next(r for r in results if r.field == "image")
    assert image.ok and image.skipped and "not in Amazon ECR" in image.message


def test_a_finding_never_prints_a_value_that_came_from_a_secret(moto, world) -> None:
    image = world[name_of("image")].replace(":1.4", ":0.0-private")
    secret = Secret("{{ $FLOWS_IMAGE_TOKEN }}", "fp")
    pool = Resource(
        Address.pool("ecs-secret"),
        {
            "type": "ecs:push",
            "job_variables": {
                "image": secret,
                "cluster": world[name_of("cluster")],
                "aws_credentials": {
                    "aws_access_key_id": "AKIAPREFLIGHT0000001",
                    "aws_secret_access_key": Secret("{{ $SECRET_KEY }}", "fp2"),
                    "region_name": REGION,
                    "aws_client_parameters": {"endpoint_url": moto.url},
                },
            },
        },
    )
    deployment = Resource(
        Address.deployment("hello", "greet"),
        {"flow_name": "hello", "entrypoint": "flows/hello.py:hello", "work_pool": {"name": "ecs-secret"}},
    )
    live = LiveState("memory://", 1, {r.address: StoredObject(r, 1) for r in (pool, deployment)})
    environ = {"FLOWS_IMAGE_TOKEN": image, "SECRET_KEY": "preflight-secret"}
    results = preflight_for(live, environ)

    failed = failures(results)
    assert set(failed) == {"image"}
    assert "(secret from $FLOWS_IMAGE_TOKEN)" in failed["image"].message
    assert all(image not in r.message and "preflight-secret" not in r.message for r in results)


def test_a_desired_state_finds_blocks_it_does_not_declare_in_the_stored_state(moto, world) -> None:
    block = Resource(
        Address.block("aws-credentials", "stored"),
        {
            "type": "aws-credentials",
            "name": "stored",
            "data": {
                "aws_access_key_id": "AKIAPREFLIGHT0000001",
                "aws_secret_access_key": "preflight-secret",
                "region_name": REGION,
                "aws_client_parameters": {"endpoint_url": moto.url},
            },
        },
    )
    pool = Resource(
        Address.pool("ecs-ref"),
        {
            "type": "ecs:push",
            "job_variables": {
                "image": "docker.io/library/python:3.12-slim",
                "cluster": world[name_of("cluster")],
                "aws_credentials": "{{ prefect.blocks.aws-credentials.stored }}",
            },
        },
    )
    deployment = Resource(
        Address.deployment("hello", "greet"),
        {"flow_name": "hello", "entrypoint": "flows/hello.py:hello", "work_pool": {"name": "ecs-ref"}},
    )
    source = desired_state.SourceInfo(project_dir=".", file="prefect.yaml", git=None)
    desired = desired_state.Desired("demo", source, {r.address: r for r in (pool, deployment)})
    stored = LiveState("memory://", 1, {block.address: StoredObject(block, 1)})

    (alone,) = preflight_for(desired, {})
    assert (alone.field, alone.ok) == ("job_variables", False) and "aws-credentials/stored" in alone.message

    results = preflight_for(desired, {}, live=stored)
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    assert "block aws-credentials/stored" in next(r for r in results if r.field == "aws_credentials").message


def test_a_pool_without_deployments_is_not_checkable_and_process_pools_are_not_asked() -> None:
    pools = [
        Resource(Address.pool("idle"), {"type": "ecs:push", "job_variables": {}}),
        Resource(Address.pool("local"), {"type": "process", "job_variables": {}}),
    ]
    live = LiveState("memory://", 1, {r.address: StoredObject(r, 1) for r in pools})

    (finding,) = preflight_for(live, {})
    assert (finding.pool, finding.field, finding.ok, finding.skipped) == ("idle", "deployments", True, True)
