"""``ecs:push``: each run is an AWS ECS task, registered and started by the launcher itself.

Variables have the names, types and defaults of prefect-aws's ECS worker template, so a pool's
``job_variables`` mean the same here and under ``prefect deploy``. Like every type here, a variable
whose Prefect default is ``None`` has no ``default``: an unset variable then removes its key from the
rendered bodies (Prefect's worker strips those empty keys after rendering instead).

The job configuration holds the worker settings at top level and two AWS request bodies,
``task_definition`` (RegisterTaskDefinition) and ``task_run_request`` (RunTask). The launcher turns
``env`` into ``environment`` pairs, splits ``command``, stringifies ``cpu``/``memory``, and turns
``FARGATE_SPOT`` into a capacity-provider strategy, as the prefect-aws worker does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reconciler.pooltypes import blocks
from reconciler.pooltypes.base import PoolType, VariableProblem
from reconciler.pooltypes.common import common_variables

DEFAULT_CPU = 1024
DEFAULT_MEMORY = 2048
FARGATE_LAUNCH_TYPES = frozenset({"FARGATE", "FARGATE_SPOT"})

# Task-level cpu units -> memory MiB that Fargate accepts with it (AWS "Task CPU and memory").
FARGATE_MEMORY_BY_CPU: Mapping[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}


def _optional(kind: str, title: str, description: str) -> dict[str, Any]:
    return {"title": title, "description": description, "anyOf": [{"type": kind}, {"type": "null"}]}


_VARIABLES: dict[str, Any] = {
    "type": "object",
    "description": "Variables for an ECS task run.",
    "properties": {
        **common_variables(),
        "task_definition_arn": _optional(
            "string",
            "Task Definition ARN",
            "Run this existing task definition as is; options that would change a task definition "
            "are then ignored.",
        ),
        "aws_credentials": blocks.variable(
            blocks.AWS_CREDENTIALS,
            title="AWS Credentials",
            description="Credentials and region for the ECS client; unset means the launcher's own "
            "AWS environment.",
        ),
        "cluster": _optional("string", "Cluster", "Cluster name or ARN; unset is the account's default."),
        "family": _optional(
            "string", "Family", "Task definition family; unset derives one from the pool and deployment."
        ),
        "launch_type": {
            "title": "Launch Type",
            "description": "Where the task runs. FARGATE_SPOT is not an ECS launch type: it becomes a "
            "capacity-provider strategy.",
            "type": "string",
            "enum": ["FARGATE", "EC2", "EXTERNAL", "FARGATE_SPOT"],
            "default": "FARGATE",
        },
        "capacity_provider_strategy": {
            "title": "Capacity Provider Strategy",
            "description": "Capacity providers for the task; when set, launch_type is ignored.",
            "type": "array",
            "items": {"$ref": "#/definitions/CapacityProvider"},
        },
        "image": _optional("string", "Image", "Container image; unset is the Prefect image of this release."),
        "cpu": _optional(
            "integer",
            "CPU",
            f"Task cpu units (1024 = 1 vCPU); unset is {DEFAULT_CPU} unless the task definition sets it.",
        ),
        "memory": _optional(
            "integer",
            "Memory",
            f"Task memory in MiB; unset is {DEFAULT_MEMORY} unless the task definition sets it.",
        ),
        "container_name": _optional(
            "string",
            "Container Name",
            "The container that runs the flow; unset is 'prefect' or the first one.",
        ),
        "prefect_api_key_secret_arn": _optional(
            "string",
            "Prefect API Key Secret ARN",
            "Secrets Manager ARN injected as PREFECT_API_KEY instead of a plain environment value.",
        ),
        "prefect_api_auth_string_secret_arn": _optional(
            "string",
            "Prefect API Auth String Secret ARN",
            "Secrets Manager ARN injected as PREFECT_API_AUTH_STRING instead of a plain environment value.",
        ),
        "task_role_arn": _optional("string", "Task Role ARN", "IAM role the running task assumes."),
        "execution_role_arn": _optional(
            "string", "Execution Role ARN", "IAM role ECS uses to pull the image and write logs."
        ),
        "vpc_id": _optional(
            "string", "VPC ID", "VPC whose subnets an awsvpc task uses; unset is the default VPC."
        ),
        "network_configuration": {
            "title": "Network Configuration",
            "description": "An awsvpcConfiguration (subnets, securityGroups, assignPublicIp); needs vpc_id.",
            "type": "object",
        },
        "configure_cloudwatch_logs": _optional(
            "boolean",
            "Configure CloudWatch Logs",
            "Send container output to CloudWatch; needs an execution role.",
        ),
        "cloudwatch_logs_options": {
            "title": "CloudWatch Logs Options",
            "description": "Extra awslogs driver options, overriding the generated ones.",
            "type": "object",
            "additionalProperties": {"type": "string"},
        },
        "cloudwatch_logs_prefix": _optional(
            "string",
            "CloudWatch Logs Prefix",
            "Log stream prefix; unset is prefect-logs_<pool>_<deployment>.",
        ),
        "auto_deregister_task_definition": {
            "title": "Auto Deregister Task Definition",
            "description": "Deregister a task definition the launcher registered once its run ends.",
            "type": "boolean",
            "default": False,
        },
        "match_latest_revision_in_family": {
            "title": "Match Latest Revision In Family",
            "description": "Reuse the family's newest revision when it equals the wanted one instead of "
            "registering a new revision.",
            "type": "boolean",
            "default": False,
        },
    },
    "definitions": {
        **blocks.definitions(blocks.AWS_CREDENTIALS),
        "CapacityProvider": {
            "title": "CapacityProvider",
            "description": "One entry of an ECS capacity-provider strategy.",
            "type": "object",
            "properties": {
                "capacityProvider": {"title": "Capacity Provider", "type": "string"},
                "weight": {"title": "Weight", "type": "integer"},
                "base": {"title": "Base", "type": "integer"},
            },
            "required": ["capacityProvider", "weight", "base"],
        },
    },
}

_JOB_CONFIGURATION: dict[str, Any] = {
    "command": "{{ command }}",
    "env": "{{ env }}",
    "labels": "{{ labels }}",
    "name": "{{ name }}",
    "aws_credentials": "{{ aws_credentials }}",
    "cluster": "{{ cluster }}",
    "vpc_id": "{{ vpc_id }}",
    "container_name": "{{ container_name }}",
    "configure_cloudwatch_logs": "{{ configure_cloudwatch_logs }}",
    "cloudwatch_logs_options": "{{ cloudwatch_logs_options }}",
    "cloudwatch_logs_prefix": "{{ cloudwatch_logs_prefix }}",
    "network_configuration": "{{ network_configuration }}",
    "auto_deregister_task_definition": "{{ auto_deregister_task_definition }}",
    "match_latest_revision_in_family": "{{ match_latest_revision_in_family }}",
    "prefect_api_key_secret_arn": "{{ prefect_api_key_secret_arn }}",
    "prefect_api_auth_string_secret_arn": "{{ prefect_api_auth_string_secret_arn }}",
    # Not variables: how the launcher follows the task it started.
    "task_watch_poll_interval": 5.0,
    "task_start_timeout_seconds": 300,
    "task_definition": {
        "containerDefinitions": [{"image": "{{ image }}", "name": "{{ container_name }}"}],
        "cpu": "{{ cpu }}",
        "memory": "{{ memory }}",
        "family": "{{ family }}",
        "executionRoleArn": "{{ execution_role_arn }}",
    },
    "task_run_request": {
        "launchType": "{{ launch_type }}",
        "cluster": "{{ cluster }}",
        "overrides": {
            "containerOverrides": [
                {
                    "name": "{{ container_name }}",
                    "command": "{{ command }}",
                    "environment": "{{ env }}",
                    "cpu": "{{ cpu }}",
                    "memory": "{{ memory }}",
                }
            ],
            "cpu": "{{ cpu }}",
            "memory": "{{ memory }}",
            "taskRoleArn": "{{ task_role_arn }}",
        },
        "tags": "{{ labels }}",
        "taskDefinition": "{{ task_definition_arn }}",
        "capacityProviderStrategy": "{{ capacity_provider_strategy }}",
    },
}


def check_fargate(values: Mapping[str, Any]) -> list[VariableProblem]:
    """Fargate accepts only listed cpu/memory pairs; RunTask would reject any other at launch time.

    Runs when the task is on Fargate (launch_type FARGATE/FARGATE_SPOT or unset, or a Fargate
    capacity provider) and cpu or memory is set; a missing side takes the worker's default.
    """
    cpu, memory = values.get("cpu"), values.get("memory")
    if (cpu is None and memory is None) or not _on_fargate(values):
        return []
    if not all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in (cpu, memory)):
        return []  # the schema reports the type
    cpu_value = DEFAULT_CPU if cpu is None else cpu
    memory_value = DEFAULT_MEMORY if memory is None else memory
    cpu_text = f"cpu {cpu_value}" + (" (the default)" if cpu is None else "")
    memory_text = f"memory {memory_value}" + (" (the default)" if memory is None else "")
    allowed = FARGATE_MEMORY_BY_CPU.get(cpu_value)
    if allowed is None:
        choices = ", ".join(str(c) for c in FARGATE_MEMORY_BY_CPU)
        return [
            VariableProblem(("cpu",), f"{cpu_text} is not a valid Fargate cpu; cpu must be one of {choices}")
        ]
    if memory_value in allowed:
        return []
    path = ("memory",) if memory is not None else ("cpu",)
    choices = ", ".join(str(m) for m in allowed)
    message = (
        f"{cpu_text} with {memory_text} is not a valid Fargate pair; "
        f"with cpu {cpu_value} memory must be one of {choices}"
    )
    return [VariableProblem(path, message)]


def _on_fargate(values: Mapping[str, Any]) -> bool:
    strategy = values.get("capacity_provider_strategy")
    if isinstance(strategy, list) and strategy:
        return any(
            isinstance(s, Mapping) and s.get("capacityProvider") in FARGATE_LAUNCH_TYPES for s in strategy
        )
    return values.get("launch_type", "FARGATE") in FARGATE_LAUNCH_TYPES


# ECS's rule for a task definition family (RegisterTaskDefinition, ``family``).
FAMILY = re.compile(r"^[A-Za-z0-9_-]{1,255}$")

# In prefect-aws's ECS worker template (3.9.1's included) but not in the push pool's: accepted.
DEPRECATED_VARIABLES: Mapping[str, str] = {
    "task_start_timeout_seconds": "still honoured: a task not started within this many seconds is stopped "
    "and its run CRASHED",
    "task_watch_poll_interval": "ignored: the launcher polls on its own schedule",
    "stream_output": "ignored: `reconcile run --wait` streams the task's CloudWatch log, `reconcile logs` "
    "reads it",
}


def check_ecs(values: Mapping[str, Any]) -> list[VariableProblem]:
    """Fargate's cpu/memory pairs and ECS's family name rule, both refused by ECS only at the run."""
    problems = check_fargate(values)
    family = values.get("family")
    if isinstance(family, str) and not FAMILY.fullmatch(family):
        message = f"family {family!r} is not a valid ECS family: up to 255 letters, numbers, underscores and hyphens"
        problems.append(VariableProblem(("family",), message))
    return problems


def check_logs_role(values: Mapping[str, Any]) -> list[VariableProblem]:
    """``configure_cloudwatch_logs`` needs an execution role: the awslogs driver writes as that role,
    and ECS refuses to register the definition without one (prefect-aws refuses it too)."""
    if values.get("configure_cloudwatch_logs") is not True:
        return []
    if values.get("execution_role_arn") is not None or values.get("task_definition_arn") is not None:
        return []
    message = "configure_cloudwatch_logs needs execution_role_arn (the role ECS writes the logs as)"
    return [VariableProblem(("configure_cloudwatch_logs",), message)]


POOL_TYPE = PoolType(
    slug="ecs:push",
    launcher="ecs",
    description="Run each flow run as an AWS ECS task (Fargate by default), started by the reconciler.",
    variables=_VARIABLES,
    job_configuration=_JOB_CONFIGURATION,
    block_variables={"aws_credentials": blocks.AWS_CREDENTIALS.slug},
    platform_check=check_ecs,
    merged_check=check_logs_role,
    deprecated_variables=DEPRECATED_VARIABLES,
)
