"""The ``ecs`` launcher against moto in server mode, through the real boto3 clients and the real CLI.

In-process tests build a Job from the ``ecs:push`` pool type's own rendering and call the launcher;
the CLI tests apply a project with an aws-credentials block pointing at moto (its
``aws_client_parameters.endpoint_url``, the Prefect block field made for this) and launch runs from
a ``reconcile`` subprocess. moto never runs containers: ``TaskScript`` says what a started task does.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler import state
from reconciler.errors import LaunchAuthError, LaunchError
from reconciler.infra.retry import RetryPolicy
from reconciler.launch import RunContext, bootstrap, make_launcher, runs
from reconciler.launch.base import Job
from reconciler.launch.ecs import taskdef
from reconciler.launch.ecs.launcher import EcsLauncher
from reconciler.state import RunState
from tests.fakes.moto_server import STEP_PER_DESCRIBE, Fault, MotoStandIn, TaskScript
from tests.helpers import REPO, make_project, run_cli
from tests.launch.jobs_support import rendered_job

pytestmark = pytest.mark.cloud

FAST = RetryPolicy(attempts=4, base=0.01, cap=0.05)
ACCESS_KEY = "AKIAECSTESTCANARY0001"
SECRET_KEY = "ecs-s3cr3t-CANARY-7f3a9"
TOKEN = "tok-ECS-CANARY-91c2"


# -- building jobs ---------------------------------------------------------------------------------


def credentials(moto: MotoStandIn, **extra: Any) -> dict[str, Any]:
    return {
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
        "region_name": "us-east-1",
        "aws_client_parameters": {"endpoint_url": moto.url},
        **extra,
    }


def make_job(
    moto: MotoStandIn,
    cluster: str,
    *,
    run_id: str | None = None,
    pool: Mapping[str, Any] | None = None,
    deployment: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    creds: Mapping[str, Any] | None = None,
) -> Job:
    """A Job as the lifecycle builds it for a moto cluster (block data inlined)."""
    pool_variables = {
        "cluster": cluster,
        "aws_credentials": dict(creds) if creds is not None else credentials(moto),
        "image": "ghcr.io/acme/flows:1",
        "configure_cloudwatch_logs": True,
        **(pool or {}),
    }
    return rendered_job(
        "ecs:push",
        pool="ecs-moto",
        pool_variables=pool_variables,
        deployment_variables={"cpu": 512, "memory": 1024, **(deployment or {})},
        parameters={"name": "ecs"},
        project_dir="/tmp",
        run_id=run_id,
        env=env,
    )


@pytest.fixture
def cluster(moto: MotoStandIn) -> str:
    name = f"c-{uuid.uuid4().hex[:8]}"
    moto.create_cluster(name)
    return name


@pytest.fixture
def launcher() -> Any:
    launcher = EcsLauncher(environ={}, retry_policy=FAST)
    yield launcher
    launcher.close()


def tasks_of(moto: MotoStandIn, cluster: str, run_id: str) -> list[str]:
    return moto.client("ecs").list_tasks(cluster=cluster, startedBy=taskdef.started_by(run_id))["taskArns"]


def describe(moto: MotoStandIn, infrastructure_id: str) -> dict[str, Any]:
    ref = taskdef.TaskRef.parse(infrastructure_id)
    return moto.client("ecs").describe_tasks(cluster=ref.cluster, tasks=[ref.task_arn])["tasks"][0]


# -- submit --------------------------------------------------------------------------------------


def test_submit_starts_one_fargate_task_carrying_the_run_contract(moto, cluster, launcher) -> None:
    job = make_job(moto, cluster, env={"STAGE": "test"})
    infrastructure_id = launcher.submit(job)

    ref = taskdef.TaskRef.parse(infrastructure_id)
    assert ref.cluster == cluster and ref.region == "us-east-1"
    task = describe(moto, infrastructure_id)
    assert task["launchType"] == "FARGATE"
    assert task["startedBy"] == f"reconcile-{job.run_id}"
    override = task["overrides"]["containerOverrides"][0]
    assert override["name"] == "prefect"
    assert override["command"] == list(bootstrap.inline_command())  # the runtime travels with the task
    env = {e["name"]: e["value"] for e in override["environment"]}
    assert env["RECONCILE_RUN_ID"] == job.run_id and env["STAGE"] == "test"
    tags = moto.client("ecs").list_tags_for_resource(resourceArn=ref.task_arn)["tags"]
    assert {"key": "reconcile.run-id", "value": job.run_id} in tags
    # derived network: the default VPC's subnets, public IP, explicit (empty) security groups
    vpc = moto.client("ec2").describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    subnets = moto.client("ec2").describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    eni_subnet = next(d["value"] for d in task["attachments"][0]["details"] if d["name"] == "subnetId")
    assert eni_subnet in {s["SubnetId"] for s in subnets["Subnets"]}
    definition = moto.client("ecs").describe_task_definition(taskDefinition=task["taskDefinitionArn"])
    body = definition["taskDefinition"]
    assert body["family"] == "prefect_ecs-moto_hello_greet"
    assert body["networkMode"] == "awsvpc" and body["requiresCompatibilities"] == ["FARGATE"]
    assert (body["cpu"], body["memory"]) == ("512", "1024")
    assert body["containerDefinitions"][0]["logConfiguration"]["logDriver"] == "awslogs"
    assert tasks_of(moto, cluster, job.run_id) == [ref.task_arn]


def test_task_definition_is_registered_only_when_it_changes(moto, cluster, launcher) -> None:
    family = f"fam-{uuid.uuid4().hex[:8]}"
    for _ in range(3):
        launcher.submit(make_job(moto, cluster, pool={"family": family}))
    assert moto.calls["RegisterTaskDefinition"] == 1
    assert moto.calls["DescribeTaskDefinition"] == 1  # then cached per family

    other_process = EcsLauncher(environ={}, retry_policy=FAST)
    try:
        other_process.submit(make_job(moto, cluster, pool={"family": family}))
        assert moto.calls["RegisterTaskDefinition"] == 1  # the latest ACTIVE revision is equal: reused
        other_process.submit(
            make_job(moto, cluster, pool={"family": family, "image": "ghcr.io/acme/flows:2"})
        )
        assert moto.calls["RegisterTaskDefinition"] == 2
    finally:
        other_process.close()
    revisions = moto.client("ecs").list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
    assert [arn.rsplit(":", 1)[-1] for arn in revisions] == ["1", "2"]


def test_repeated_submit_adopts_the_task_it_already_started(moto, cluster, launcher) -> None:
    job = make_job(moto, cluster)
    first = launcher.submit(job)
    assert EcsLauncher(environ={}, retry_policy=FAST).submit(job) == first
    assert launcher.find(job) == first
    assert launcher.find(make_job(moto, cluster)) is None
    assert moto.calls["RunTask"] == 1


def test_given_task_definition_arn_is_used_as_is(moto, cluster, launcher) -> None:
    arn = moto.client("ecs").register_task_definition(
        family=f"mine-{uuid.uuid4().hex[:6]}",
        containerDefinitions=[{"name": "app", "image": "mine:1", "memory": 512}],
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
    )["taskDefinition"]["taskDefinitionArn"]
    moto.calls.clear()
    job = make_job(moto, cluster, pool={"task_definition_arn": arn, "configure_cloudwatch_logs": False})
    infrastructure_id = launcher.submit(job)
    assert moto.calls["RegisterTaskDefinition"] == 0
    task = describe(moto, infrastructure_id)
    assert task["taskDefinitionArn"] == arn
    assert task["overrides"]["containerOverrides"][0]["name"] == "app"  # the only container
    chunk = launcher.logs(job, infrastructure_id)
    assert chunk.text == "" and "logs are not configured" in chunk.location and "ecs-moto" in chunk.location


def test_given_network_configuration_and_prefect_contract(moto, cluster, launcher) -> None:
    subnet = moto.client("ec2").describe_subnets()["Subnets"][0]["SubnetId"]
    job = make_job(
        moto,
        cluster,
        pool={"network_configuration": {"subnets": [subnet], "assignPublicIp": "DISABLED"}},
        env={"PREFECT_API_URL": "http://prefect.example/api"},
    )
    moto.calls.clear()
    task = describe(moto, launcher.submit(job))
    assert moto.calls["DescribeVpcs"] == 0
    assert task["attachments"][0]["details"][0]["value"] == subnet
    override = task["overrides"]["containerOverrides"][0]
    assert override["command"] == ["prefect", "flow-run", "execute"]
    assert {"name": "PREFECT__FLOW_RUN_ID", "value": job.run_id} in override["environment"]


def test_no_credentials_block_uses_the_launching_environment(moto, cluster) -> None:
    environ = {
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_ACCESS_KEY_ID": "env-key",
        "AWS_SECRET_ACCESS_KEY": "env-secret",
        "AWS_REGION": "us-east-1",
    }
    launcher = EcsLauncher(environ=environ, retry_policy=FAST)
    try:
        job = make_job(moto, cluster, creds={})
        assert launcher.poll(job, launcher.submit(job)).state is RunState.RUNNING
    finally:
        launcher.close()


def test_assume_role_arn_is_assumed_through_sts(moto, cluster, launcher) -> None:
    job = make_job(
        moto, cluster, creds=credentials(moto, assume_role_arn="arn:aws:iam::123456789012:role/flows")
    )
    launcher.submit(job)
    assert moto.calls["AssumeRole"] == 1


# -- states ----------------------------------------------------------------------------------------


def test_exit_zero_is_completed_after_the_task_stops(moto, cluster, launcher) -> None:
    job = make_job(moto, cluster)
    infrastructure_id = launcher.submit(job)
    assert launcher.poll(job, infrastructure_id).state is RunState.RUNNING
    moto.set_transition(STEP_PER_DESCRIBE)  # DEACTIVATING -> STOPPING -> DEPROVISIONING -> STOPPED
    states = [launcher.poll(job, infrastructure_id).state for _ in range(4)]
    assert states[:2] == [RunState.RUNNING, RunState.RUNNING]
    final = launcher.poll(job, infrastructure_id)
    assert (final.state, final.exit_code) == (RunState.COMPLETED, 0)


def test_non_zero_exit_is_failed_with_the_code(moto, cluster, launcher) -> None:
    moto.script = TaskScript(
        exit_code=3, stop=True, stop_code="EssentialContainerExited", container_reason=""
    )
    job = make_job(moto, cluster)
    status = launcher.poll(job, launcher.submit(job))
    assert (status.state, status.exit_code) == (RunState.FAILED, 3)
    assert "exited with code 3" in status.message


def test_task_that_fails_to_start_is_crashed_with_the_platform_reason(moto, cluster, launcher) -> None:
    moto.script = TaskScript(
        exit_code=None,
        stop=True,
        stop_code="TaskFailedToStart",
        stopped_reason="CannotPullContainerError: pull image manifest has been retried 5 time(s)",
    )
    job = make_job(moto, cluster)
    status = launcher.poll(job, launcher.submit(job))
    assert status.state is RunState.CRASHED and status.exit_code is None
    assert "CannotPullContainerError" in status.message


def test_provisioning_is_pending_and_a_start_timeout_crashes_and_stops_it(moto, cluster, launcher) -> None:
    moto.script = TaskScript(last_status="PROVISIONING")
    job = make_job(moto, cluster)
    infrastructure_id = launcher.submit(job)
    assert launcher.poll(job, infrastructure_id).state is RunState.PENDING
    ref = taskdef.TaskRef.parse(infrastructure_id)
    moto.task(ref.cluster, ref.task_arn).created_at = datetime.now(UTC) - timedelta(minutes=10)
    status = launcher.poll(job, infrastructure_id)
    assert status.state is RunState.CRASHED and "did not start within 300 s" in status.message
    assert describe(moto, infrastructure_id)["desiredStatus"] == "STOPPED"


def test_unknown_task_is_crashed_not_found(moto, cluster, launcher) -> None:
    job = make_job(moto, cluster)
    status = launcher.poll(
        job, f"{cluster}::arn:aws:ecs:us-east-1:123456789012:task/{cluster}/{uuid.uuid4().hex}"
    )
    assert status.state is RunState.CRASHED and "task not found" in status.message


def test_cancel_stops_the_task_and_reads_back_cancelled(moto, cluster, launcher) -> None:
    job = make_job(moto, cluster)
    infrastructure_id = launcher.submit(job)
    launcher.cancel(job, infrastructure_id)
    task = describe(moto, infrastructure_id)
    assert task["desiredStatus"] == "STOPPED" and task["stoppedReason"].startswith("cancelled by reconcile")
    assert launcher.poll(job, infrastructure_id).state is RunState.CANCELLED
    launcher.cancel(job, infrastructure_id)  # a second cancel is harmless


# -- throttling, idempotency, auth -------------------------------------------------------------


def test_throttled_run_task_is_retried_and_starts_exactly_one_task(moto, cluster, launcher) -> None:
    moto.inject(Fault("RunTask", 2, retry_after="0"))
    job = make_job(moto, cluster)
    infrastructure_id = launcher.submit(job)
    assert moto.calls["RunTask"] == 3  # two throttled, one accepted: botocore retried none of them
    assert tasks_of(moto, cluster, job.run_id) == [taskdef.TaskRef.parse(infrastructure_id).task_arn]


def test_lost_run_task_answer_is_adopted_not_repeated(moto, cluster, launcher) -> None:
    """RunTask took effect but the client saw a 500: the lookup finds the task, no second RunTask."""
    moto.inject(Fault("RunTask", 1, code="InternalFailure", message="boom", status=500, forward=True))
    job = make_job(moto, cluster)
    infrastructure_id = launcher.submit(job)
    assert moto.calls["RunTask"] == 1
    assert len(moto.started) == 1
    assert tasks_of(moto, cluster, job.run_id) == [taskdef.TaskRef.parse(infrastructure_id).task_arn]


def test_throttling_that_never_ends_is_a_retryable_launch_error(moto, cluster, launcher) -> None:
    moto.inject(Fault("RunTask", 100))
    job = make_job(moto, cluster)
    with pytest.raises(LaunchError) as caught:
        launcher.submit(job)
    assert caught.value.retryable and "ThrottlingException" in str(caught.value)
    assert moto.calls["RunTask"] == FAST.attempts and tasks_of(moto, cluster, job.run_id) == []


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("UnrecognizedClientException", "The security token included in the request is invalid."),
        ("ExpiredTokenException", f"The security token {ACCESS_KEY} included in the request is expired"),
    ],
)
def test_auth_failure_names_the_pool_and_never_the_secret(moto, cluster, launcher, code, message) -> None:
    moto.inject(Fault("*", 100, code=code, message=message))
    with pytest.raises(LaunchAuthError) as caught:
        launcher.submit(make_job(moto, cluster, creds=credentials(moto, aws_session_token=TOKEN)))
    text = str(caught.value)
    assert "ecs-moto" in text and "aws-credentials block" in text and code in text
    for secret in (ACCESS_KEY, SECRET_KEY, TOKEN):
        assert secret not in text
    assert moto.calls["ListTasks"] == 1  # not retried


def test_missing_cluster_is_a_clear_error(moto, launcher) -> None:
    with pytest.raises(LaunchError, match="ECS cluster not found for work pool 'ecs-moto'"):
        launcher.submit(make_job(moto, "no-such-cluster"))


# -- logs ----------------------------------------------------------------------------------------


def test_logs_follow_the_awslogs_stream_with_a_cursor(moto, cluster, launcher) -> None:
    moto.script = TaskScript(output=("one", "two", "three"))
    job = make_job(moto, cluster)
    infrastructure_id = launcher.submit(job)
    first = launcher.logs(job, infrastructure_id)
    assert (first.text, first.cursor) == ("one\ntwo\nthree\n", 3)
    assert "CloudWatch Logs group prefect" in first.location
    ref = taskdef.TaskRef.parse(infrastructure_id)
    stream = f"prefect-logs_ecs-moto_hello_greet/prefect/{ref.task_id}"
    moto.client("logs").put_log_events(
        logGroupName="prefect",
        logStreamName=stream,
        logEvents=[{"timestamp": int(datetime.now(UTC).timestamp() * 1000) + 10_000, "message": "four"}],
    )
    assert launcher.logs(job, infrastructure_id, cursor=first.cursor).text == "four\n"
    assert launcher.logs(job, infrastructure_id, cursor=4).text == ""
    fresh = EcsLauncher(environ={}, retry_policy=FAST)  # another process: no token map, reads from the head
    try:
        assert fresh.logs(job, infrastructure_id, cursor=2).text == "three\nfour\n"
    finally:
        fresh.close()


# -- pure request shaping ------------------------------------------------------------------------


def test_fargate_spot_becomes_a_capacity_provider_strategy(moto) -> None:
    job = make_job(moto, "c", pool={"launch_type": "FARGATE_SPOT"})
    request = taskdef.run_task_request(
        job, task_definition="td:1", container="prefect", network_configuration=None
    )
    assert request["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert "launchType" not in request
    assert request["clientToken"] == job.run_id and len(request["startedBy"]) <= 128


def test_wanted_definition_equals_what_ecs_describes(moto, cluster) -> None:
    job = make_job(moto, cluster, pool={"family": f"cmp-{uuid.uuid4().hex[:6]}"})
    wanted = taskdef.wanted_task_definition(job, region="us-east-1")
    registered = moto.client("ecs").register_task_definition(**wanted)["taskDefinition"]
    assert taskdef.comparable(registered) == taskdef.comparable(wanted)
    changed = taskdef.wanted_task_definition(
        make_job(moto, cluster, pool={"family": wanted["family"]}, deployment={"memory": 2048}),
        region="us-east-1",
    )
    assert taskdef.comparable(registered) != taskdef.comparable(changed)


def test_normal_form_ignores_what_real_ecs_adds_but_not_what_changes_behaviour() -> None:
    container = {"name": "p", "image": "i:1"}
    ours = {"family": "f", "cpu": "512", "memory": "1024", "containerDefinitions": [container]}
    described = {
        **ours,
        "revision": 7,
        "status": "ACTIVE",
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/f:7",
        "compatibilities": ["EC2", "FARGATE"],
        "requiresAttributes": [{"name": "ecs.capability.task-eni"}],
        "registeredAt": datetime.now(UTC),
        "enableFaultInjection": False,
        "volumes": [],
        "placementConstraints": [],
        "containerDefinitions": [
            {"name": "p", "image": "i:1", "cpu": 0, "essential": True, "portMappings": [], "environment": []}
        ],
    }
    assert taskdef.comparable(described) == taskdef.comparable(ours)
    not_essential = {**ours, "containerDefinitions": [{"name": "p", "image": "i:1", "essential": False}]}
    assert taskdef.comparable(not_essential) != taskdef.comparable(ours)


def test_a_job_without_an_image_runs_prefects_image_as_prefects_worker_does(moto) -> None:
    body = taskdef.wanted_task_definition(make_job(moto, "c", pool={"image": None}), region=None)
    assert body["containerDefinitions"][0]["image"] == bootstrap.PREFECT_IMAGE


# -- through the CLI -----------------------------------------------------------------------------

PROJECT = """
name: ecs-e2e
blocks:
  - type: aws-credentials
    name: moto
    data:
      aws_access_key_id: "{{{{ $E2E_AWS_ACCESS_KEY_ID }}}}"
      aws_secret_access_key: "{{{{ $E2E_AWS_SECRET_ACCESS_KEY }}}}"
      region_name: us-east-1
      aws_client_parameters:
        endpoint_url: {endpoint}
work_pools:
  - name: ecs-moto
    type: ecs:push
    job_variables:
      aws_credentials: "{{{{ prefect.blocks.aws-credentials.moto }}}}"
      cluster: {cluster}
      image: ghcr.io/acme/flows:1
      configure_cloudwatch_logs: true
      execution_role_arn: arn:aws:iam::123456789012:role/ecsTaskExecutionRole
      cpu: 512
      memory: 1024
deployments:
  - name: greet
    entrypoint: flows/hello.py:hello
    work_pool:
      name: ecs-moto
      job_variables:
        env:
          API_TOKEN: "{{{{ $E2E_API_TOKEN }}}}"
"""
E2E_ENV = {
    "E2E_AWS_ACCESS_KEY_ID": "AKIAE2ECANARY77",
    "E2E_AWS_SECRET_ACCESS_KEY": "e2e-s3cr3t-CANARY-d41d",
    "E2E_API_TOKEN": "e2e-api-token-CANARY-5eed",
}


@pytest.fixture(scope="module")
def applied_project(tmp_path_factory: pytest.TempPathFactory, moto_server: MotoStandIn) -> Path:
    """One applied project for the CLI tests (each test looks only at the runs it starts)."""
    cluster = f"e2e-{uuid.uuid4().hex[:8]}"
    moto_server.create_cluster(cluster)
    root = make_project(
        tmp_path_factory.mktemp("ecs") / "ecs-e2e", PROJECT.format(endpoint=moto_server.url, cluster=cluster)
    )
    applied = cli(root, "apply", "--yes")
    assert applied.returncode == 0, applied.stderr
    return root


@pytest.fixture
def project(applied_project: Path, moto: MotoStandIn) -> Path:
    return applied_project


def cli(root: Path, *args: str, env: Mapping[str, str] | None = None) -> Any:
    return run_cli("-C", str(root), *args, env={**E2E_ENV, **(env or {})}, timeout=60)


def scan_for_secrets(root: Path, outputs: list[str]) -> list[str]:
    """Where any of the distinctive secret values shows up (command output or any file we wrote)."""
    hits = []
    blobs = [(f"output #{i}", text.encode()) for i, text in enumerate(outputs)]
    blobs += [(str(p), p.read_bytes()) for p in (root / ".reconcile").rglob("*") if p.is_file()]
    for where, blob in blobs:
        hits += [f"{value!r} in {where}" for value in E2E_ENV.values() if value.encode() in blob]
    return hits


def test_cli_run_wait_completes_streams_logs_and_leaks_nothing(project: Path, moto: MotoStandIn) -> None:
    moto.set_transition(STEP_PER_DESCRIBE)
    moto.script = TaskScript(output=("hello from ECS", "bye"))
    run = cli(project, "run", "hello/greet", "--wait", "--timeout", "30")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "hello from ECS\nbye\n" in run.stdout
    assert "COMPLETED (exit code 0)" in run.stdout
    (cluster, task_arn) = moto.started[0]
    override = describe(moto, f"{cluster}::{task_arn}")["overrides"]["containerOverrides"][0]
    assert {"name": "API_TOKEN", "value": E2E_ENV["E2E_API_TOKEN"]} in override["environment"]  # delivered

    listed = cli(project, "runs", "--json")
    record = json.loads(listed.stdout)[0]
    assert record["state"] == "COMPLETED" and record["exit_code"] == 0
    assert record["infrastructure_id"] == f"{cluster}::{task_arn}"
    logs = cli(project, "logs", record["id"])
    assert logs.returncode == 0 and logs.stdout == "hello from ECS\nbye\n"
    assert "CloudWatch Logs group prefect" in logs.stderr
    outputs = [r.stdout + r.stderr for r in (run, listed, logs)]
    assert scan_for_secrets(project, outputs) == []


def test_cli_failed_flow_exits_1(project: Path, moto: MotoStandIn) -> None:
    moto.script = TaskScript(exit_code=2, stop=True)
    run = cli(project, "run", "hello/greet", "--wait", "--timeout", "30")
    assert run.returncode == 1
    assert "FAILED (exit code 2)" in run.stderr


def test_cli_wait_timeout_leaves_the_task_running_then_cancel_stops_it(
    project: Path, moto: MotoStandIn
) -> None:
    run = cli(project, "run", "hello/greet", "--wait", "--timeout", "1.5")
    assert run.returncode == 1
    assert "still RUNNING after 1.5s" in run.stderr
    record = json.loads(cli(project, "runs", "--json").stdout)[0]
    assert record["state"] == "RUNNING"
    assert describe(moto, record["infrastructure_id"])["lastStatus"] == "RUNNING"
    cancelled = cli(project, "cancel", record["id"])
    assert cancelled.returncode == 0 and "CANCELLED" in cancelled.stdout
    assert describe(moto, record["infrastructure_id"])["desiredStatus"] == "STOPPED"


def test_cli_auth_failure_crashes_the_run_with_a_clear_message(project: Path, moto: MotoStandIn) -> None:
    moto.inject(Fault("*", 100, code="UnrecognizedClientException", message="The security token is invalid."))
    run = cli(project, "run", "hello/greet")
    assert run.returncode == 1
    assert "CRASHED" in run.stderr and "AWS refused" in run.stderr and "ecs-moto" in run.stderr
    assert "Traceback" not in run.stderr
    assert scan_for_secrets(project, [run.stdout + run.stderr]) == []


def test_runs_reconcile_adopts_a_task_started_by_a_launcher_that_died(
    project: Path, moto: MotoStandIn
) -> None:
    """Claimed, submitted, then the process died before saving the task id: `runs --reconcile` adopts
    it by its startedBy; a run claimed but never submitted becomes CRASHED. Never a second task."""
    store = state.open_store(f"sqlite:///{project / '.reconcile' / 'state.db'}", project="ecs-e2e")
    environ = {**os.environ, **E2E_ENV}
    runs_dir = project / ".reconcile" / "runs"
    ctx = RunContext(
        store=store,
        live=store.read_all(),
        project_dir=project,
        runs_dir=runs_dir,
        environ=environ,
        launcher_factory=lambda name: make_launcher(name, runs_dir=runs_dir, environ=environ),
    )
    try:
        submitted = store.update_run(runs.create(ctx, "hello/greet").evolve(state=RunState.PENDING))
        task_id = ctx.launcher_for(submitted).submit(ctx.job_for(submitted))  # ... and the process dies
        never = store.update_run(runs.create(ctx, "hello/greet").evolve(state=RunState.PENDING))
    finally:
        ctx.close()
        store.close()
    recovered = cli(project, "runs", "--reconcile", "--grace", "0", "--json")
    assert recovered.returncode == 0, recovered.stderr
    by_id = {r["id"]: r for r in json.loads(recovered.stdout)}
    assert by_id[submitted.id]["infrastructure_id"] == task_id
    assert by_id[submitted.id]["state"] == "RUNNING"
    assert by_id[never.id]["state"] == "CRASHED"
    assert moto.calls["RunTask"] == 1


def test_example_project_validates() -> None:
    env = {
        "FLOW_AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "FLOW_AWS_SECRET_ACCESS_KEY": "example-secret",
        "ECS_CLUSTER": "prefect",
        "FLOWS_IMAGE": "ghcr.io/acme/flows:1",
        "ECS_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
    }
    result = run_cli("-C", str(REPO / "examples" / "ecs"), "validate", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
