"""Preflight for ``ecs:push`` pools: read-only AWS calls, with the pool's own credentials.

What the first ECS run of a deployment needs, checked in the order a failure would surface:

* ``aws_credentials``: STS ``GetCallerIdentity`` answers (it needs no IAM permission, so it tests
  the keys alone), and a region is known;
* ``cluster``: ECS ``DescribeClusters`` lists it as ``ACTIVE``;
* ``task_definition_arn`` (when set): ``DescribeTaskDefinition`` finds it ACTIVE, and then the
  definition it names is what the remaining checks read;
* ``image``: an ECR image (``ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO[:TAG|@DIGEST]``) exists, by
  ECR ``DescribeImages`` in the image's own region; other registries cannot be asked with AWS
  credentials and are reported as not checkable. A private ECR image on Fargate also needs an
  execution role to be pulled with;
* ``execution_role_arn`` / ``task_role_arn``: IAM ``GetRole`` finds them; awslogs needs the
  execution role;
* network (awsvpc): the subnets of ``network_configuration`` exist (EC2 ``DescribeSubnets``) and lie
  in ``vpc_id`` when it is set; without subnets, the VPC the launcher would discover has subnets;
* ``cpu`` / ``memory``: on Fargate the task definition's pair is one of the documented task sizes
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size),
  by the loader's own table (``pooltypes.ecs.check_fargate``).

Every call is in ``examples/ecs/iam-policy.json``. Answers are shared through the preflight cache:
twenty deployments on one cluster ask for it once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from reconciler.errors import LaunchError
from reconciler.infra.retry import call_with_retries
from reconciler.launch.base import Job
from reconciler.launch.ecs import taskdef
from reconciler.launch.ecs.aws import AwsCallError, AwsClients, Credentials, JobAws
from reconciler.launch.preflight import Cache, PreflightResult, Target, result
from reconciler.pooltypes.ecs import check_fargate

T = TypeVar("T")

# https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry_auth.html (registry URL format)
ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[^:@]+)(?::(?P<tag>[^@]+))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
_MISSING_ROLE = frozenset({"NoSuchEntity", "NoSuchEntityException"})
_MISSING_IMAGE = frozenset({"ImageNotFoundException", "RepositoryNotFoundException"})


@dataclass(frozen=True)
class _Context:
    """What the checks of one target share: its job, its AWS view and the preflight cache."""

    target: Target
    job: Job
    aws: JobAws
    cache: Cache

    def call(self, key: tuple[Any, ...], fn: Callable[[], T]) -> T:
        """``fn()`` once per preflight for ``key`` (the credentials are part of every key)."""
        full = ("ecs", self.aws.credentials.key, self.aws.region, *key)
        if full not in self.cache:
            try:
                self.cache[full] = ("ok", call_with_retries(fn))
            except LaunchError as exc:
                self.cache[full] = ("error", exc)
        kind, value = self.cache[full]
        if kind == "error":
            raise value
        return value

    def api(self, service: str, operation: str, *, region: str | None = None, **params: Any) -> Any:
        aws = self.aws if region in (None, self.aws.region) else _in_region(self.aws, region)

        def once() -> Any:
            client = aws.client(service)
            with aws.errors():
                return getattr(client, operation)(**params)

        key = (service, operation, region, repr(sorted(params.items())))
        return self.call(key, once)


def check(target: Target, environ: Mapping[str, str], cache: Cache) -> list[PreflightResult]:
    """The findings for one deployment's job on an ``ecs:push`` pool."""
    assert target.job is not None
    job = target.job
    if ("session", "ecs") not in cache:
        cache[("session", "ecs")] = AwsClients(environ)  # closed when the preflight ends
    clients = cache[("session", "ecs")]
    credentials = Credentials.of(job.configuration)
    probe = JobAws(clients, credentials, None, job.pool, job.blocks.get("aws_credentials"))
    try:
        with probe.errors():
            region = clients.region(credentials)
    except LaunchError as exc:
        return [result(target, "aws_credentials", "credentials", False, str(exc))]
    if not region:
        message = (
            "no AWS region: set region_name in the aws-credentials block or AWS_REGION where reconcile runs"
        )
        return [result(target, "aws_credentials.region_name", "region", False, message)]
    aws = JobAws(clients, credentials, region, job.pool, probe.block)
    ctx = _Context(target, job, aws, cache)
    identity = _credentials(ctx)
    if not identity.ok:
        return [identity]  # every other call would be refused the same way
    findings = [identity, _cluster(ctx)]
    definition, given = _definition(ctx, findings)
    if definition is None:
        return findings
    findings.extend(_images(ctx, definition))
    findings.extend(_roles(ctx, definition))
    if taskdef.network_mode(definition) == "awsvpc":
        findings.append(_network(ctx))
    if taskdef.on_fargate(job.configuration) and not given:
        findings.append(_fargate_size(ctx, definition))
    return findings


# -- the checks ----------------------------------------------------------------------------------


def _credentials(ctx: _Context) -> PreflightResult:
    try:
        identity = ctx.api("sts", "get_caller_identity")
    except LaunchError as exc:
        return result(ctx.target, "aws_credentials", "credentials", False, str(exc))
    return result(
        ctx.target,
        "aws_credentials",
        "credentials",
        True,
        f"authenticated as {identity.get('Arn')} in {ctx.aws.region} ({ctx.aws.source})",
    )


def _cluster(ctx: _Context) -> PreflightResult:
    cluster = taskdef.cluster_of(ctx.job.configuration)
    try:
        answer = ctx.api("ecs", "describe_clusters", clusters=[cluster])
    except LaunchError as exc:
        return result(ctx.target, "cluster", "cluster-exists", False, str(exc))
    found = [c for c in answer.get("clusters") or [] if c.get("status") == "ACTIVE"]
    if found:
        return result(
            ctx.target, "cluster", "cluster-exists", True, f"cluster {cluster} is ACTIVE in {ctx.aws.region}"
        )
    reasons = [str(f.get("reason")) for f in answer.get("failures") or []]
    statuses = [str(c.get("status")) for c in answer.get("clusters") or []]
    why = ", ".join(reasons + statuses) or "not found"
    return result(
        ctx.target, "cluster", "cluster-exists", False, f"ECS cluster {cluster!r} in {ctx.aws.region}: {why}"
    )


def _definition(ctx: _Context, findings: list[PreflightResult]) -> tuple[dict[str, Any] | None, bool]:
    """The task definition the run would use: the given one (it must exist) or the one it would register."""
    given = taskdef.given_task_definition(ctx.job.configuration)
    if not given:
        try:
            return taskdef.wanted_task_definition(ctx.job, region=ctx.aws.region), False
        except LaunchError as exc:
            findings.append(result(ctx.target, "image", "image-set", False, str(exc)))
            return None, False
    field = "task_definition_arn"
    try:
        answer = ctx.api("ecs", "describe_task_definition", taskDefinition=given)
    except LaunchError as exc:
        findings.append(result(ctx.target, field, "task-definition-exists", False, str(exc)))
        return None, True
    definition = dict(answer.get("taskDefinition") or {})
    status = definition.get("status", "ACTIVE")
    ok = status == "ACTIVE"
    findings.append(
        result(ctx.target, field, "task-definition-exists", ok, f"task definition {given} is {status}")
    )
    return (definition if ok else None), True


def _images(ctx: _Context, definition: Mapping[str, Any]) -> list[PreflightResult]:
    flow = taskdef.flow_container(ctx.job.configuration, taskdef.container_names(definition))
    findings = []
    for container in definition.get("containerDefinitions") or []:
        image = str(container.get("image") or "")
        if not image:
            continue
        name = str(container.get("name") or "")
        field = "image" if name == flow else f"task_definition.containerDefinitions[{name}].image"
        findings.append(_image(ctx, field, image, definition))
    return findings


def _image(ctx: _Context, field: str, image: str, definition: Mapping[str, Any]) -> PreflightResult:
    match = ECR_IMAGE.match(image)
    if match is None:
        message = (
            f"{image} is not in Amazon ECR: only ECR images can be looked up with the pool's AWS "
            "credentials (ECS pulls it at the first run)"
        )
        return result(ctx.target, field, "image-exists", True, message, skipped=True)
    image_id = {"imageDigest": match["digest"]} if match["digest"] else {"imageTag": match["tag"] or "latest"}
    try:
        ctx.api(
            "ecr",
            "describe_images",
            region=match["region"],
            registryId=match["account"],
            repositoryName=match["repository"],
            imageIds=[image_id],
        )
    except AwsCallError as exc:
        if exc.code in _MISSING_IMAGE:
            return result(ctx.target, field, "image-exists", False, f"{image} is not in ECR: {exc.code}")
        return result(ctx.target, field, "image-exists", False, str(exc))
    except LaunchError as exc:
        return result(ctx.target, field, "image-exists", False, str(exc))
    if taskdef.on_fargate(ctx.job.configuration) and not definition.get("executionRoleArn"):
        message = f"{image} is a private ECR image: Fargate pulls it only with an execution role (set execution_role_arn)"
        return result(ctx.target, "execution_role_arn", "image-pull-role", False, message)
    return result(ctx.target, field, "image-exists", True, f"{image} exists in ECR")


def _roles(ctx: _Context, definition: Mapping[str, Any]) -> list[PreflightResult]:
    overrides = (ctx.job.configuration.get("task_run_request") or {}).get("overrides") or {}
    execution = overrides.get("executionRoleArn") or definition.get("executionRoleArn")
    task = overrides.get("taskRoleArn") or definition.get("taskRoleArn")
    findings = []
    if ctx.job.configuration.get("configure_cloudwatch_logs") and not execution:
        message = "configure_cloudwatch_logs needs an execution role (the awslogs driver writes with it)"
        findings.append(result(ctx.target, "execution_role_arn", "logs-need-execution-role", False, message))
    for field, arn in (("execution_role_arn", execution), ("task_role_arn", task)):
        if arn:
            findings.append(_role(ctx, field, str(arn)))
    return findings


def _role(ctx: _Context, field: str, arn: str) -> PreflightResult:
    name = arn.rsplit("/", 1)[-1]
    if not arn.startswith("arn:") or ":role/" not in arn:
        return result(
            ctx.target,
            field,
            "role-exists",
            False,
            f"{arn!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
        )
    try:
        role = ctx.api("iam", "get_role", RoleName=name)
    except AwsCallError as exc:
        if exc.code in _MISSING_ROLE:
            return result(ctx.target, field, "role-exists", False, f"IAM role {name} does not exist ({arn})")
        return result(ctx.target, field, "role-exists", False, str(exc))
    except LaunchError as exc:
        return result(ctx.target, field, "role-exists", False, str(exc))
    found = str((role.get("Role") or {}).get("Arn") or "")
    if found and found != arn:
        return result(
            ctx.target, field, "role-exists", False, f"{arn} names role {name}, whose ARN is {found}"
        )
    return result(ctx.target, field, "role-exists", True, f"IAM role {name} exists")


def _network(ctx: _Context) -> PreflightResult:
    config = ctx.job.configuration
    vpc_id = config.get("vpc_id")
    network = config.get("network_configuration")
    subnets = list(taskdef.awsvpc(network)["awsvpcConfiguration"].get("subnets") or []) if network else []
    if subnets:
        return _subnets(ctx, [str(s) for s in subnets], vpc_id)
    field = "vpc_id"
    try:
        if not vpc_id:
            vpcs = ctx.api("ec2", "describe_vpcs", Filters=[{"Name": "isDefault", "Values": ["true"]}])
            found = vpcs.get("Vpcs") or []
            if not found:
                message = f"region {ctx.aws.region} has no default VPC: set vpc_id or network_configuration"
                return result(ctx.target, field, "network", False, message)
            vpc_id = str(found[0]["VpcId"])
        answer = ctx.api("ec2", "describe_subnets", Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    except LaunchError as exc:
        return result(ctx.target, field, "network", False, str(exc))
    count = len(answer.get("Subnets") or [])
    if not count:
        return result(ctx.target, field, "network", False, f"VPC {vpc_id} has no subnets for the task")
    return result(
        ctx.target, field, "network", True, f"the task would use the {count} subnet(s) of VPC {vpc_id}"
    )


def _subnets(ctx: _Context, subnets: list[str], vpc_id: Any) -> PreflightResult:
    field = "network_configuration.subnets"
    try:
        answer = ctx.api("ec2", "describe_subnets", SubnetIds=sorted(subnets))
    except AwsCallError as exc:
        if exc.code.startswith("InvalidSubnetID"):
            return result(ctx.target, field, "subnets-in-vpc", False, f"subnet not found: {exc}")
        return result(ctx.target, field, "subnets-in-vpc", False, str(exc))
    except LaunchError as exc:
        return result(ctx.target, field, "subnets-in-vpc", False, str(exc))
    found = {str(s["SubnetId"]): str(s.get("VpcId")) for s in answer.get("Subnets") or []}
    missing = [s for s in subnets if s not in found]
    if missing:
        return result(
            ctx.target, field, "subnets-in-vpc", False, f"subnet(s) not found: {', '.join(missing)}"
        )
    vpcs = sorted(set(found.values()))
    if vpc_id and vpcs != [vpc_id]:
        outside = ", ".join(f"{s} (in {v})" for s, v in sorted(found.items()) if v != vpc_id)
        return result(ctx.target, field, "subnets-in-vpc", False, f"not in vpc_id {vpc_id}: {outside}")
    if len(vpcs) > 1:
        return result(
            ctx.target, field, "subnets-in-vpc", False, f"the subnets span several VPCs: {', '.join(vpcs)}"
        )
    return result(ctx.target, field, "subnets-in-vpc", True, f"{len(found)} subnet(s) in {vpcs[0]}")


def _fargate_size(ctx: _Context, definition: Mapping[str, Any]) -> PreflightResult:
    """The task definition's size by the loader's own Fargate table (a pasted template can carry
    literal sizes that no job variable holds, so the loader never saw them)."""
    cpu, memory = definition.get("cpu"), definition.get("memory")
    try:
        values = {"cpu": int(str(cpu)), "memory": int(str(memory))}
    except ValueError:
        return result(
            ctx.target, "cpu", "fargate-size", False, f"cpu {cpu!r} / memory {memory!r} are not numbers"
        )
    problems = check_fargate(values)
    if problems:
        return result(ctx.target, str(problems[0].path[0]), "fargate-size", False, problems[0].message)
    message = f"cpu {values['cpu']} / memory {values['memory']} is a Fargate size"
    return result(ctx.target, "cpu", "fargate-size", True, message)


def _in_region(aws: JobAws, region: str | None) -> JobAws:
    return JobAws(aws.clients, aws.credentials, region, aws.pool, aws.block)
