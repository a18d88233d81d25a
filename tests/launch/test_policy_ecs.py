"""examples/ecs/iam-policy.json allows exactly what the ECS launcher and its preflight call, no more.

botocore's own event system records every API operation the launcher's clients make (``before-call``
names the service and operation; ``before-parameter-build`` keeps the parameters) through a full run
against moto: submit (task definition registered with tags and roles, subnets discovered), poll,
logs, find, cancel, cleanup (``auto_deregister_task_definition``), and a preflight. Permissions that
a call implies without being an operation are derived from its parameters, as AWS documents them:
tags on RunTask / RegisterTaskDefinition need ``ecs:TagResource`` (with ``ecs:CreateAction``), a role
in a task definition or override needs ``iam:PassRole`` to ``ecs-tasks.amazonaws.com``.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import boto3.session
import pytest

from reconciler.infra.retry import RetryPolicy
from reconciler.launch.ecs import taskdef
from reconciler.launch.ecs.launcher import EcsLauncher
from reconciler.launch.preflight import Target, run_preflight
from reconciler.state import RunState
from tests.fakes.moto_server import ACCOUNT, REGION, MotoStandIn, TaskScript
from tests.helpers import REPO
from tests.launch.jobs_support import rendered_job
from tests.launch.test_preflight_ecs import MANIFEST

pytestmark = pytest.mark.cloud

POLICY = REPO / "examples" / "ecs" / "iam-policy.json"
FAST = RetryPolicy(attempts=4, base=0.01, cap=0.05)
# https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html:
# "No permissions are required to perform this operation."
NEEDS_NO_PERMISSION = frozenset({"sts:GetCallerIdentity"})
ROLE_SERVICE = "ecs-tasks.amazonaws.com"


@dataclass(frozen=True)
class Call:
    action: str  # "ecs:RunTask": the IAM action of the operation (signing name + operation name)
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Need:
    """A permission one call needs: the action, the resource ARN, and the condition keys it carries."""

    action: str
    resource: str = "*"
    context: tuple[tuple[str, str], ...] = ()


@dataclass
class Recorder:
    """The calls of every boto3 client, once ``on`` (the test's own setup calls are not the launcher's)."""

    calls: list[Call]
    on: bool = False


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    recorder = Recorder([])
    make_client = boto3.session.Session.client

    def remember_params(params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["recorded_params"] = copy.deepcopy(dict(params))

    def record(model: Any, context: Mapping[str, Any], **_: Any) -> None:
        if recorder.on:
            action = f"{model.service_model.signing_name}:{model.name}"
            recorder.calls.append(Call(action, context.get("recorded_params", {})))

    def client(self: boto3.session.Session, *args: Any, **kwargs: Any) -> Any:
        made = make_client(self, *args, **kwargs)
        made.meta.events.register("before-parameter-build", remember_params)
        made.meta.events.register("before-call", record)
        return made

    monkeypatch.setattr(boto3.session.Session, "client", client)
    yield recorder


def needs(call: Call) -> list[Need]:
    """What IAM checks for one call (the operation itself plus what its parameters imply)."""
    service, operation = call.action.split(":")
    params = call.params
    if call.action in NEEDS_NO_PERMISSION:
        return []
    resource = "*"
    if call.action == "logs:GetLogEvents":
        group, stream = params["logGroupName"], params["logStreamName"]
        resource = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:log-stream:{stream}"
    found = [Need(call.action, resource)]
    if service == "ecs" and operation in ("RunTask", "RegisterTaskDefinition") and params.get("tags"):
        found.append(Need("ecs:TagResource", context=(("ecs:CreateAction", operation),)))
    overrides = params.get("overrides") or {}
    roles = [params.get("executionRoleArn"), params.get("taskRoleArn")]
    roles += [overrides.get("executionRoleArn"), overrides.get("taskRoleArn")]
    found.extend(
        Need("iam:PassRole", role, (("iam:PassedToService", ROLE_SERVICE),)) for role in roles if role
    )
    return found


def allows(policy: Mapping[str, Any], need: Need) -> bool:
    """An Allow statement whose Action, Resource and conditions (StringEquals only) admit ``need``."""
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        if not any(fnmatch.fnmatchcase(need.action.lower(), a.lower()) for a in _list(statement["Action"])):
            continue
        if not any(fnmatch.fnmatchcase(need.resource, r) or r == "*" for r in _list(statement["Resource"])):
            continue
        given = dict(need.context)
        conditions = statement.get("Condition") or {}
        assert set(conditions) <= {"StringEquals"}, "the test knows StringEquals only"
        equals = conditions.get("StringEquals", {})
        if all(key in given and given[key] in _list(values) for key, values in equals.items()):
            return True
    return False


def _list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def full_run(moto: MotoStandIn, recorder: Recorder) -> None:
    """Submit, poll, logs, find, cancel, cleanup and a preflight, as a pool with every option uses them."""
    suffix = uuid.uuid4().hex[:8]
    cluster = f"policy-{suffix}"
    moto.create_cluster(cluster)
    ecr = moto.client("ecr")
    ecr.create_repository(repositoryName=f"flows-{suffix}")
    ecr.put_image(repositoryName=f"flows-{suffix}", imageManifest=MANIFEST, imageTag="1")
    iam = moto.client("iam")
    trust = json.dumps({"Version": "2012-10-17"})
    execution = iam.create_role(RoleName=f"exec-{suffix}", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    task_role = iam.create_role(RoleName=f"task-{suffix}", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    pool_variables = {
        "cluster": cluster,
        "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/flows-{suffix}:1",
        "family": f"policy-{suffix}",
        "execution_role_arn": execution,
        "task_role_arn": task_role,
        "configure_cloudwatch_logs": True,
        "auto_deregister_task_definition": True,
        "aws_credentials": {
            "aws_access_key_id": "AKIAPOLICY0000000001",
            "aws_secret_access_key": "policy-secret",
            "region_name": REGION,
            "aws_client_parameters": {"endpoint_url": moto.url},
        },
    }

    def job() -> Any:
        return rendered_job(
            "ecs:push",
            pool="ecs-policy",
            pool_variables=pool_variables,
            deployment_variables={"cpu": 512, "memory": 1024},
            parameters={},
            project_dir="/tmp",
        )

    recorder.on = True
    launcher = EcsLauncher(environ={}, retry_policy=FAST)
    try:
        moto.script = TaskScript(output=("hello from the task",))
        done = job()
        infrastructure_id = launcher.submit(done)
        assert launcher.poll(done, infrastructure_id).state is RunState.RUNNING
        assert "hello from the task" in launcher.logs(done, infrastructure_id).text
        assert launcher.find(done) == infrastructure_id
        ref = taskdef.TaskRef.parse(infrastructure_id)
        moto.finish(ref.cluster, ref.task_arn, exit_code=0)
        assert launcher.poll(done, infrastructure_id).state is RunState.COMPLETED

        cancelled = job()
        other = launcher.submit(cancelled)
        launcher.cancel(cancelled, other)
        launcher.poll(cancelled, other)
    finally:
        launcher.close()
    results = run_preflight([Target("ecs-policy", "ecs:push", "ecs", "hello/greet", job=job())], environ={})
    assert all(r.ok for r in results), [r for r in results if not r.ok]


def test_the_published_policy_covers_every_call_of_a_full_run(moto, recorded) -> None:
    full_run(moto, recorded)
    policy = json.loads(POLICY.read_text())

    called = {c.action for c in recorded.calls}
    assert called >= {  # the run really went through each phase
        "ecs:RunTask",
        "ecs:DescribeTasks",
        "ecs:StopTask",
        "ecs:DeregisterTaskDefinition",
        "logs:GetLogEvents",
        "ec2:DescribeSubnets",
        "ecr:DescribeImages",
        "iam:GetRole",
    }
    missing = sorted({n for c in recorded.calls for n in needs(c) if not allows(policy, n)}, key=str)
    assert not missing, f"not allowed by {POLICY.name}: {missing}"


def test_the_published_policy_grants_nothing_the_launcher_does_not_use(moto, recorded) -> None:
    full_run(moto, recorded)
    policy = json.loads(POLICY.read_text())

    used = {n.action.lower() for c in recorded.calls for n in needs(c)}
    granted = {a.lower() for s in policy["Statement"] for a in _list(s["Action"])}
    assert granted == used, f"granted but unused: {granted - used}; used but not granted: {used - granted}"
