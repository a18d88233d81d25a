"""Pure ECS request shaping for the ``ecs`` launcher: no AWS SDK, no I/O, no clock of its own.

The launcher (``ecs.py``) talks to AWS; this module decides what to say and how to read the answer:

* the task definition a run wants (RegisterTaskDefinition body) and a normal form of it, so a
  revision ECS already holds can be recognised as equal and reused instead of registering one per run;
* the RunTask body (launch type or capacity providers, network, container override, tags,
  ``startedBy`` and ``clientToken`` derived from the run id);
* the run's ``JobStatus`` from a DescribeTasks task;
* where the awslogs driver writes a task's output.

Everything follows the prefect-aws ECS worker so a pool's variables mean the same as under Prefect.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler.errors import LaunchError
from reconciler.launch import bootstrap
from reconciler.launch.base import Job, JobStatus
from reconciler.state import RunState

DEFAULT_CLUSTER = "default"
DEFAULT_CONTAINER = "prefect"
DEFAULT_CPU = "1024"
DEFAULT_MEMORY = "2048"
DEFAULT_LOG_GROUP = "prefect"
STARTED_BY_PREFIX = "reconcile-"
REGISTERED_FOR_TAG = "reconcile.registered-for-run"  # the run a revision was registered for
CANCEL_REASON = "cancelled by reconcile"
PREFECT_COMMAND = ("prefect", "flow-run", "execute")
FARGATE = frozenset({"FARGATE", "FARGATE_SPOT"})
MAX_FAMILY = 255
MAX_OVERRIDES = 8192  # characters of RunTask's overrides, JSON included (API_RunTask.html)
_INFRASTRUCTURE_STOPS = frozenset({"SpotInterruption", "TerminationNotice"})
FAMILY_RULE = "family must be 1 to 255 letters, numbers, underscores and hyphens"

# What ECS adds to a registered definition (DescribeTaskDefinition) that a RegisterTaskDefinition
# body never carries; dropped before comparing.
_ECS_ADDED = frozenset(
    {
        "taskDefinitionArn",
        "revision",
        "status",
        "requiresAttributes",
        "compatibilities",
        "registeredAt",
        "registeredBy",
        "deregisteredAt",
        "tags",
    }
)
_PENDING = frozenset({"PROVISIONING", "PENDING", "ACTIVATING"})
_TAG_UNSAFE = re.compile(r"[^a-zA-Z0-9 +\-=._:/@]")
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_STARTED_BY_UNSAFE = re.compile(r"[^a-zA-Z0-9_/-]")


@dataclass(frozen=True)
class TaskRef:
    """A started task, as the infrastructure id ``{cluster}::{taskArn}`` names it."""

    cluster: str
    task_arn: str

    def __str__(self) -> str:
        return f"{self.cluster}::{self.task_arn}"

    @classmethod
    def parse(cls, infrastructure_id: str) -> TaskRef:
        cluster, sep, task_arn = infrastructure_id.partition("::")
        if not sep or not cluster or not task_arn.startswith("arn:"):
            raise LaunchError(f"not an ECS infrastructure id (CLUSTER::TASK_ARN): {infrastructure_id!r}")
        return cls(cluster, task_arn)

    @property
    def region(self) -> str | None:
        """The task's region, from its ARN, so any process can follow it (arn:aws:ecs:REGION:...)."""
        parts = self.task_arn.split(":")
        return (parts[3] or None) if len(parts) > 5 else None

    @property
    def task_id(self) -> str:
        return self.task_arn.rsplit("/", 1)[-1]


# -- names ---------------------------------------------------------------------------------------


def cluster_of(configuration: Mapping[str, Any]) -> str:
    request = configuration.get("task_run_request") or {}
    return str(configuration.get("cluster") or request.get("cluster") or DEFAULT_CLUSTER)


def started_by(run_id: str) -> str:
    """The RunTask ``startedBy`` that finds a run's task again (letters, digits, ``-_/``, <= 128)."""
    return _STARTED_BY_UNSAFE.sub("-", f"{STARTED_BY_PREFIX}{run_id}")[:128]


def client_token(run_id: str) -> str:
    """RunTask's idempotency token: the run id (<= 64 printable characters)."""
    return run_id[:64]


def family_of(job: Job) -> str:
    """The ``family`` variable, else ``prefect_{pool}_{flow}_{deployment}`` made ECS-safe (<= 255)."""
    wanted = (job.configuration.get("task_definition") or {}).get("family")
    if wanted:
        return str(wanted)
    flow, _, name = job.deployment.partition("/")
    return _NAME_UNSAFE.sub("-", f"prefect_{job.pool}_{flow}_{name}")[:255]


def check_family(family: str, *, pool: str) -> str:
    """ECS's rule for a family: "Up to 255 letters (uppercase and lowercase), numbers, underscores,
    and hyphens are allowed" (RegisterTaskDefinition, ``family``). A user-set family that breaks it is
    refused here with its name, not by ECS at the first run."""
    if not family or len(family) > MAX_FAMILY or _NAME_UNSAFE.search(family):
        raise LaunchError(f"work pool {pool}: {FAMILY_RULE}, not {family!r}")
    return family


def log_stream_prefix(job: Job) -> str:
    configured = job.configuration.get("cloudwatch_logs_prefix")
    if configured:
        return str(configured)
    flow, _, name = job.deployment.partition("/")
    return _NAME_UNSAFE.sub("-", f"prefect-logs_{job.pool}_{flow}_{name}")[:200]


def on_fargate(configuration: Mapping[str, Any]) -> bool:
    request = configuration.get("task_run_request") or {}
    strategy = request.get("capacityProviderStrategy")
    if strategy:
        return any(isinstance(s, Mapping) and s.get("capacityProvider") in FARGATE for s in strategy)
    return request.get("launchType", "FARGATE") in FARGATE


def given_task_definition(configuration: Mapping[str, Any]) -> str | None:
    """The ``task_definition_arn`` variable: run that definition as is."""
    value = (configuration.get("task_run_request") or {}).get("taskDefinition")
    return str(value) if value else None


def flow_container(configuration: Mapping[str, Any], names: Iterable[str]) -> str:
    """The container that runs the flow: ``container_name``, else ``prefect``, else the first one."""
    names = [n for n in names if n]
    configured = configuration.get("container_name")
    if configured:
        return str(configured)
    if DEFAULT_CONTAINER in names or not names:
        return DEFAULT_CONTAINER
    return names[0]


# -- the task definition -------------------------------------------------------------------------


def wanted_task_definition(job: Job, *, region: str | None) -> dict[str, Any]:
    """The RegisterTaskDefinition body this run needs (tags carry the pool and deployment)."""
    config = job.configuration
    body = copy.deepcopy(dict(config.get("task_definition") or {}))
    body["family"] = check_family(family_of(job), pool=job.pool)
    fargate = on_fargate(config)
    cpu, memory = body.get("cpu") or DEFAULT_CPU, body.get("memory") or DEFAULT_MEMORY
    if fargate:  # Fargate needs task-level cpu/memory, the FARGATE compatibility and awsvpc
        body["cpu"], body["memory"] = str(cpu), str(memory)
        compatibilities = [str(c) for c in body.get("requiresCompatibilities") or []]  # a user's are kept
        body["requiresCompatibilities"] = [
            *compatibilities,
            *([] if "FARGATE" in compatibilities else ["FARGATE"]),
        ]
        body.setdefault("networkMode", "awsvpc")
    else:  # EC2/EXTERNAL: cpu/memory at task level only where the user put them (as Prefect does)
        for key in ("cpu", "memory"):
            if body.get(key):
                body[key] = str(body[key])
    containers = [dict(c) for c in body.get("containerDefinitions") or [] if isinstance(c, Mapping)]
    name = flow_container(config, [str(c.get("name") or "") for c in containers])
    container = next((c for c in containers if c.get("name") == name), None)
    if container is None:
        unnamed = next((c for c in containers if not c.get("name")), None)
        container = unnamed if unnamed is not None else {}
        if unnamed is None:
            containers.insert(0, container)
        container["name"] = name
    if not container.get("image"):
        container["image"] = bootstrap.PREFECT_IMAGE  # as Prefect's worker: its own image by default
    container.setdefault("essential", True)
    if not fargate:
        container.setdefault("cpu", int(cpu))
    if not container.get("memory") and not container.get("memoryReservation"):
        container["memory"] = int(memory)  # required without task-level memory (EC2); moto wants it always
    _add_secret_arns(container, config)
    if config.get("configure_cloudwatch_logs"):
        options = {
            "awslogs-create-group": "true",
            "awslogs-group": DEFAULT_LOG_GROUP,
            "awslogs-stream-prefix": log_stream_prefix(job),
            **({"awslogs-region": region} if region else {}),
            **{str(k): str(v) for k, v in (config.get("cloudwatch_logs_options") or {}).items()},
        }
        container["logConfiguration"] = {"logDriver": "awslogs", "options": options}
    body["containerDefinitions"] = containers
    body["tags"] = _tags({"reconcile.pool": job.pool, "reconcile.deployment": job.deployment})
    return {k: v for k, v in body.items() if v not in (None, "", [], {})}


def registered_for(body: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """``body`` tagged with the run it is registered for: ``auto_deregister_task_definition`` retires
    only that run's revision (tags are not part of the normal form, so reuse is unaffected)."""
    tags = [t for t in body.get("tags") or [] if t.get("key") != REGISTERED_FOR_TAG]
    return {**body, "tags": [*tags, {"key": REGISTERED_FOR_TAG, "value": tag_value(run_id)}]}


def tag_value(text: str) -> str:
    return _TAG_UNSAFE.sub("_", text)[:256]


def _add_secret_arns(container: dict[str, Any], config: Mapping[str, Any]) -> None:
    secrets = [s for s in container.get("secrets") or [] if isinstance(s, Mapping)]
    for env_name, variable in (
        ("PREFECT_API_KEY", "prefect_api_key_secret_arn"),
        ("PREFECT_API_AUTH_STRING", "prefect_api_auth_string_secret_arn"),
    ):
        if config.get(variable):
            secrets = [s for s in secrets if s.get("name") != env_name]
            secrets.append({"name": env_name, "valueFrom": str(config[variable])})
    if secrets:
        container["secrets"] = secrets


def comparable(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A definition in normal form: what ECS adds or defaults is dropped, order made canonical.

    Two bodies are the same definition when their normal forms are equal, whether one came from
    our rendering and the other from DescribeTaskDefinition. ECS's defaults (empty lists, ``false``
    flags such as ``enableFaultInjection``, container ``cpu: 0``) count as absent; ``essential``
    (default true) is kept explicit.
    """
    body = {k: v for k, v in definition.items() if k not in _ECS_ADDED}
    containers = []
    for container in body.get("containerDefinitions") or []:
        container = dict(container)
        container["essential"] = "essential" if container.get("essential", True) else "not essential"
        if container.get("cpu") == 0:
            container.pop("cpu")
        for key in ("environment", "secrets"):
            if container.get(key):
                container[key] = sorted(container[key], key=lambda e: str(e.get("name")))
        containers.append(container)
    body["containerDefinitions"] = sorted(containers, key=lambda c: str(c.get("name")))
    for key in ("cpu", "memory"):
        if body.get(key) is not None:
            body[key] = str(body[key])
    return _drop_empty(body)


def _drop_empty(value: Any) -> Any:
    if isinstance(value, Mapping):
        cleaned = {k: _drop_empty(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v is not False and v not in (None, "", [], {})}
    if isinstance(value, list | tuple):
        return [_drop_empty(v) for v in value]
    return value


def network_mode(definition: Mapping[str, Any]) -> str | None:
    mode = definition.get("networkMode")
    return str(mode) if mode else None


def container_names(definition: Mapping[str, Any]) -> list[str]:
    return [str(c.get("name")) for c in definition.get("containerDefinitions") or [] if c.get("name")]


# -- the run request -----------------------------------------------------------------------------


def command_and_environment(job: Job) -> tuple[list[str], dict[str, str]]:
    """The container command and environment.

    ``command`` (the job variable) wins; a job env with ``PREFECT_API_URL`` uses Prefect's own
    contract (``prefect flow-run execute`` with ``PREFECT__FLOW_RUN_ID``); else the reconciler runtime.
    """
    env = {str(k): str(v) for k, v in job.env.items() if v is not None}
    command: list[str] = list(job.command)
    if "PREFECT_API_URL" in env:
        command = list(PREFECT_COMMAND)
        env.setdefault("PREFECT__FLOW_RUN_ID", job.run_id)  # a Prefect store already gave its run id
    configured = job.configuration.get("command")
    if configured:
        command = shlex.split(str(configured))
    return command, env


def awsvpc(
    network_configuration: Mapping[str, Any] | None, *, subnets: list[str] | None = None
) -> dict[str, Any]:
    """A RunTask ``networkConfiguration``: the pool's (bare or wrapped), or the given subnets.

    ``securityGroups`` is always present (``[]`` means the VPC's default group): moto needs the key.
    """
    if network_configuration:
        inner = dict(network_configuration.get("awsvpcConfiguration") or network_configuration)
    else:
        inner = {"subnets": list(subnets or []), "assignPublicIp": "ENABLED"}
    inner.setdefault("securityGroups", [])
    return {"awsvpcConfiguration": inner}


def run_task_request(
    job: Job, *, task_definition: str, container: str, network_configuration: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The RunTask body for this run."""
    config = job.configuration
    template = dict(config.get("task_run_request") or {})
    command, env = command_and_environment(job)
    overrides = dict(template.get("overrides") or {})
    rendered = (overrides.get("containerOverrides") or [{}])[0] or {}
    container_override: dict[str, Any] = {
        "name": container,
        "command": command,
        "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
    }
    for key in ("cpu", "memory"):
        if rendered.get(key) is not None:
            container_override[key] = int(rendered[key])
    task_overrides: dict[str, Any] = {"containerOverrides": [container_override]}
    for key in ("cpu", "memory"):
        if overrides.get(key) is not None:
            task_overrides[key] = str(overrides[key])
    if overrides.get("taskRoleArn"):
        task_overrides["taskRoleArn"] = overrides["taskRoleArn"]
    if config.get("execution_role_arn") and given_task_definition(config):
        task_overrides["executionRoleArn"] = config["execution_role_arn"]
    labels = {str(k): str(v) for k, v in (template.get("tags") or config.get("labels") or {}).items()}
    check_override_size(task_overrides, pool=job.pool)
    request: dict[str, Any] = {
        "cluster": cluster_of(config),
        "taskDefinition": task_definition,
        "overrides": task_overrides,
        "tags": _tags({**labels, **job.labels}),
        "startedBy": started_by(job.run_id),
        "clientToken": client_token(job.run_id),
    }
    strategy = template.get("capacityProviderStrategy")
    launch_type = template.get("launchType")
    if not strategy and launch_type == "FARGATE_SPOT":
        strategy = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    if strategy:
        request["capacityProviderStrategy"] = strategy
    elif launch_type:
        request["launchType"] = launch_type
    if network_configuration is not None:
        request["networkConfiguration"] = dict(network_configuration)
    return request


def _tags(values: Mapping[str, str]) -> list[dict[str, str]]:
    """ECS tags: unsupported characters replaced, keys <= 128 and values <= 256 characters."""
    return [
        {"key": _TAG_UNSAFE.sub("_", k)[:128], "value": _TAG_UNSAFE.sub("_", v)[:256]}
        for k, v in values.items()
        if k
    ]


# -- reading the answer ---------------------------------------------------------------------------


def status_of(task: Mapping[str, Any], *, container: str) -> JobStatus:
    """A DescribeTasks task as a JobStatus (the flow container's exit code decides)."""
    last = str(task.get("lastStatus") or "")
    started, stopped = _when(task.get("startedAt")), _when(task.get("stoppedAt"))
    if last != "STOPPED":
        state = RunState.PENDING if last in _PENDING else RunState.RUNNING
        return JobStatus(state, message=f"ECS task {last}" if last else "", started_at=started)
    containers = [c for c in task.get("containers") or [] if isinstance(c, Mapping)]
    flow = next((c for c in containers if c.get("name") == container), containers[0] if containers else None)
    code = flow.get("exitCode") if flow is not None else None
    stop_code = str(task.get("stopCode") or "")
    reason = str(task.get("stoppedReason") or "")
    detail = str(flow.get("reason") or "") if flow is not None else ""
    if stop_code == "UserInitiated" or reason.startswith(CANCEL_REASON):
        return JobStatus(
            RunState.CANCELLED,
            exit_code=code,
            message=reason or "stopped by a user",
            started_at=started,
            ended_at=stopped,
        )
    if stop_code == "TaskFailedToStart" or code is None:
        why = "; ".join(filter(None, (reason, detail))) or stop_code or "no exit code reported"
        return JobStatus(
            RunState.CRASHED,
            message=f"the ECS task stopped before the flow ran: {why}",
            started_at=started,
            ended_at=stopped,
        )
    if int(code) == 0:
        return JobStatus(RunState.COMPLETED, exit_code=0, started_at=started, ended_at=stopped)
    killed = _killed(int(code), stop_code, reason, detail)
    if killed:  # the infrastructure ended the flow, the flow did not fail: Prefect says CRASHED
        return JobStatus(
            RunState.CRASHED,
            exit_code=int(code),
            message=f"container {container!r} {killed}",
            started_at=started,
            ended_at=stopped,
        )
    message = f"container {container!r} exited with code {code}" + (f": {detail}" if detail else "")
    return JobStatus(
        RunState.FAILED, exit_code=int(code), message=message, started_at=started, ended_at=stopped
    )


def _killed(code: int, stop_code: str, reason: str, detail: str) -> str:
    """Why the task was killed from outside (Spot reclaim, Fargate retirement, OOM, a signal), or ''.

    ECS ``stopCode`` values ``SpotInterruption`` and ``TerminationNotice`` and an ``OutOfMemoryError``
    container reason are documented in "Amazon ECS stopped task error codes"; a code above 128 is
    128 + the signal that killed the process (137 = SIGKILL, what the OOM killer sends).
    """
    if stop_code in _INFRASTRUCTURE_STOPS:
        return f"was stopped by ECS ({stop_code}: {reason or detail or 'no reason given'}), exit code {code}"
    if "OutOfMemory" in detail or "OutOfMemory" in reason:
        return f"ran out of memory and was killed (exit code {code}: {detail or reason})"
    if code > 128:
        return f"was killed by signal {code - 128} (exit code {code}" + (f": {detail})" if detail else ")")
    return ""


def check_override_size(overrides: Mapping[str, Any], *, pool: str) -> None:
    """RunTask: "A total of 8192 characters are allowed for overrides. This limit includes the JSON
    formatting characters of the override structure." Checked here so the run fails with the reason."""
    size = len(json.dumps(overrides, separators=(",", ":"), ensure_ascii=False))
    if size > MAX_OVERRIDES:
        raise LaunchError(
            f"work pool {pool}: the run's ECS overrides are {size} characters, over ECS's {MAX_OVERRIDES} "
            "(RunTask overrides limit): pass fewer or shorter parameters / env values, or set `command`"
        )


def created_at(task: Mapping[str, Any]) -> datetime | None:
    return _when(task.get("createdAt"))


def log_target(
    definition: Mapping[str, Any], *, container: str, task_id: str, region: str | None
) -> tuple[str, str, str | None] | None:
    """``(group, stream, region)`` where awslogs writes the flow container, or None without awslogs.

    The awslogs driver names the stream ``{prefix}/{container}/{task id}``.
    """
    for spec in definition.get("containerDefinitions") or []:
        if spec.get("name") != container:
            continue
        logging = spec.get("logConfiguration") or {}
        options = logging.get("options") or {}
        if logging.get("logDriver") != "awslogs" or not options.get("awslogs-group"):
            return None
        prefix = options.get("awslogs-stream-prefix")
        stream = f"{prefix}/{container}/{task_id}" if prefix else task_id
        return str(options["awslogs-group"]), stream, options.get("awslogs-region") or region
    return None


def _when(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None
