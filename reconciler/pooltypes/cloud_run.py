"""``cloud-run:push`` and ``cloud-run-v2:push``: each run is a Google Cloud Run job.

Both slugs are launched through the Cloud Run **v2** API (``google-cloud-run``), so both take the
variables of prefect-gcp's ``cloud-run-v2`` worker. The v1 slug is kept because users name it in
``prefect.yaml``; its Prefect template (a ``run.googleapis.com/v1`` Job with metadata/spec) is not
reproduced: a pool of that type gets the v2 variables and job body. A pool that carries Prefect's v1
template as its own ``base_job_template`` (as Prefect creates ``cloud-run`` pools) runs as is: the
launcher translates the v1 body field by field (``reconciler.launch.cloud_run.v1``).

The job configuration holds the worker settings at top level plus ``job_body``, a v2 Job body. The
launcher finishes it as prefect-gcp's worker does: env (plain and from Secret Manager) into the
container, ``timeout`` as ``"<n>s"``, Cloud SQL volumes, and an empty ``vpcAccess`` dropped. The GCP
project is the one named by the credentials block.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reconciler.pooltypes import blocks
from reconciler.pooltypes.base import PoolType, VariableProblem
from reconciler.pooltypes.common import common_variables

DEFAULT_CPU = "1000m"
DEFAULT_MEMORY = "512Mi"
MAX_TIMEOUT = 604800  # seconds, 7 days: Cloud Run's limit for a task

MIN_VCPU = 0.08
MAX_VCPU = 8
WHOLE_VCPUS = (2, 4, 6, 8)  # the only amounts allowed above 1 vCPU

_MI = 1024**2
_GI = 1024**3
MIN_MEMORY = 512 * _MI
MAX_MEMORY = 32 * _GI
# (memory above this many bytes, needs at least this many vCPU), strictest last.
MEMORY_NEEDS_CPU: tuple[tuple[int, int], ...] = ((4 * _GI, 2), (8 * _GI, 4), (16 * _GI, 6), (24 * _GI, 8))

_MEMORY = re.compile(r"^(\d+)(G|Gi|M|Mi)$")
_UNIT_BYTES = {"G": 1000**3, "Gi": _GI, "M": 1000**2, "Mi": _MI}
_MILLICORES = re.compile(r"^(\d+)m$")
_VCPUS = re.compile(r"^\d+(?:\.\d+)?$")


def _optional(kind: str, title: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"title": title, "description": description, "anyOf": [{"type": kind, **extra}, {"type": "null"}]}


def _secret_ref(title: str, description: str) -> dict[str, Any]:
    return {
        "title": title,
        "description": description,
        "anyOf": [{"$ref": "#/definitions/SecretKeySelector"}, {"type": "null"}],
    }


_VARIABLES: dict[str, Any] = {
    "type": "object",
    "description": "Variables for a Cloud Run v2 job.",
    "properties": {
        **common_variables(),
        "credentials": blocks.variable(
            blocks.GCP_CREDENTIALS,
            title="GCP Credentials",
            description="Credentials for Cloud Run; the job runs in their project. Unset means the "
            "launcher's application default credentials.",
        ),
        "region": {
            "title": "Region",
            "description": "The region the job is created in.",
            "type": "string",
            "default": "us-central1",
        },
        "image": {
            "title": "Image Name",
            "description": "Container image for the job.",
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "default": "prefecthq/prefect:3-latest",
        },
        "args": {
            "title": "Args",
            "description": "Arguments passed to the container's command.",
            "type": "array",
            "items": {"type": "string"},
        },
        "env_from_secrets": {
            "title": "Environment Variables from Secrets",
            "description": "Environment variables read from Secret Manager, by variable name.",
            "type": "object",
            "additionalProperties": {"$ref": "#/definitions/SecretKeySelector"},
        },
        "prefect_api_key_secret": _secret_ref(
            "Prefect API Key Secret", "Secret Manager source for PREFECT_API_KEY instead of a plain value."
        ),
        "prefect_api_auth_string_secret": _secret_ref(
            "Prefect API Auth String Secret",
            "Secret Manager source for PREFECT_API_AUTH_STRING instead of a plain value.",
        ),
        "cloudsql_instances": {
            "title": "Cloud SQL Instances",
            "description": "Cloud SQL connection names (project:region:instance) mounted into the job.",
            "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}],
        },
        "keep_job": {
            "title": "Keep Job After Completion",
            "description": "Leave the Cloud Run job in place after the run ends.",
            "type": "boolean",
            "default": False,
        },
        "launch_stage": {
            "title": "Launch Stage",
            "description": "The job's launch stage; BETA unlocks features still in preview.",
            "type": "string",
            "enum": [
                "ALPHA",
                "BETA",
                "GA",
                "DEPRECATED",
                "EARLY_ACCESS",
                "PRELAUNCH",
                "UNIMPLEMENTED",
                "LAUNCH_TAG_UNSPECIFIED",
            ],
            "default": "BETA",
        },
        "max_retries": {
            "title": "Max Retries",
            "description": "How many times Cloud Run retries a failed task.",
            "type": "integer",
            "default": 0,
        },
        "cpu": {
            "title": "CPU",
            "description": "CPU limit: millicores like '1000m' or vCPUs like '2'.",
            "type": "string",
            "default": DEFAULT_CPU,
        },
        "memory": {
            "title": "Memory",
            "description": "Memory limit with its unit (G, Gi, M or Mi).",
            "type": "string",
            "pattern": r"^\d+(?:G|Gi|M|Mi)$",
            "default": DEFAULT_MEMORY,
        },
        "timeout": {
            "title": "Job Timeout",
            "description": f"Seconds a task may run before Cloud Run stops it (at most {MAX_TIMEOUT}).",
            "type": "integer",
            "exclusiveMinimum": 0,
            "maximum": MAX_TIMEOUT,
            "default": 600,
        },
        "vpc_connector_name": _optional(
            "string", "VPC Connector Name", "Serverless VPC Access connector for the job's egress."
        ),
        "service_account_name": _optional(
            "string", "Service Account Name", "Service account the task runs as; unset is the default one."
        ),
    },
    "definitions": {
        **blocks.definitions(blocks.GCP_CREDENTIALS),
        "SecretKeySelector": {
            "title": "SecretKeySelector",
            "description": "A Secret Manager secret version.",
            "type": "object",
            "properties": {
                "secret": {"title": "Secret", "type": "string"},
                "version": {"title": "Version", "type": "string"},
            },
            "required": ["secret", "version"],
        },
    },
}

_JOB_CONFIGURATION: dict[str, Any] = {
    "command": "{{ command }}",
    "env": "{{ env }}",
    "labels": "{{ labels }}",
    "name": "{{ name }}",
    "credentials": "{{ credentials }}",
    "region": "{{ region }}",
    "keep_job": "{{ keep_job }}",
    "timeout": "{{ timeout }}",
    "prefect_api_key_secret": "{{ prefect_api_key_secret }}",
    "prefect_api_auth_string_secret": "{{ prefect_api_auth_string_secret }}",
    "cloudsql_instances": "{{ cloudsql_instances }}",
    "env_from_secrets": "{{ env_from_secrets }}",
    "job_body": {
        "client": "prefect",
        "launchStage": "{{ launch_stage }}",
        "template": {
            "template": {
                "serviceAccount": "{{ service_account_name }}",
                "maxRetries": "{{ max_retries }}",
                "timeout": "{{ timeout }}",
                "vpcAccess": {"connector": "{{ vpc_connector_name }}"},
                "containers": [
                    {
                        "env": [],
                        "image": "{{ image }}",
                        "command": "{{ command }}",
                        "args": "{{ args }}",
                        "resources": {"limits": {"cpu": "{{ cpu }}", "memory": "{{ memory }}"}},
                    }
                ],
            }
        },
    },
}


def check_limits(values: Mapping[str, Any]) -> list[VariableProblem]:
    """Cloud Run's cpu, memory and timeout limits, which the API only reports when the job is created.

    A missing cpu or memory takes the template default when the two are checked against each other.
    """
    problems: list[VariableProblem] = []
    cpu = _vcpus(values["cpu"]) if "cpu" in values else _vcpus(DEFAULT_CPU)
    if "cpu" in values:
        problems.extend(_cpu_problems(values["cpu"], cpu))
    memory = _memory_bytes(values.get("memory", DEFAULT_MEMORY))
    if "memory" in values and memory is not None and not MIN_MEMORY <= memory <= MAX_MEMORY:
        message = f"memory {values['memory']} is outside Cloud Run's limits of 512Mi to 32Gi"
        problems.append(VariableProblem(("memory",), message))
    elif not problems and memory is not None and cpu is not None and ("cpu" in values or "memory" in values):
        problems.extend(_pair_problems(values, cpu, memory))
    timeout = values.get("timeout")
    if isinstance(timeout, int) and not isinstance(timeout, bool) and not 0 < timeout <= MAX_TIMEOUT:
        message = f"timeout {timeout} is outside Cloud Run's limit of 1 to {MAX_TIMEOUT} seconds (7 days)"
        problems.append(VariableProblem(("timeout",), message))
    return problems


def _cpu_problems(raw: Any, vcpus: float | None) -> list[VariableProblem]:
    if vcpus is None:
        if not isinstance(raw, str):
            return []  # the schema reports the type
        message = f"cpu {raw!r} is not a Cloud Run CPU amount; use millicores like '1000m' or vCPUs like '2'"
        return [VariableProblem(("cpu",), message)]
    if not MIN_VCPU <= vcpus <= MAX_VCPU:
        message = f"cpu {raw} is outside Cloud Run's limits of {MIN_VCPU} to {MAX_VCPU} vCPU"
        return [VariableProblem(("cpu",), message)]
    if vcpus > 1 and vcpus not in WHOLE_VCPUS:
        message = f"cpu {raw} is not allowed on Cloud Run: above 1 vCPU it must be 2, 4, 6 or 8"
        return [VariableProblem(("cpu",), message)]
    return []


def _pair_problems(values: Mapping[str, Any], vcpus: float, memory: int) -> list[VariableProblem]:
    needed = max((cpus for limit, cpus in MEMORY_NEEDS_CPU if memory > limit), default=0)
    if vcpus >= needed:
        return []
    limit_gi = max(limit for limit, cpus in MEMORY_NEEDS_CPU if cpus == needed) // _GI
    cpu_text = str(values["cpu"]) if "cpu" in values else f"{DEFAULT_CPU} (the default)"
    memory_text = str(values.get("memory", f"{DEFAULT_MEMORY} (the default)"))
    message = (
        f"memory {memory_text} needs at least {needed} vCPU on Cloud Run "
        f"(more than {limit_gi}Gi needs {needed}); cpu is {cpu_text}"
    )
    return [VariableProblem(("memory",) if "memory" in values else ("cpu",), message)]


def _vcpus(raw: Any) -> float | None:
    """``'1000m'`` -> 1.0, ``'2'`` -> 2.0; ``None`` when it is neither form."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw)
    if not isinstance(raw, str):
        return None
    if match := _MILLICORES.fullmatch(raw):
        return int(match.group(1)) / 1000
    if _VCPUS.fullmatch(raw):
        return float(raw)
    return None


def _memory_bytes(raw: Any) -> int | None:
    match = _MEMORY.fullmatch(raw) if isinstance(raw, str) else None
    return int(match.group(1)) * _UNIT_BYTES[match.group(2)] if match else None


def _pool_type(slug: str, description: str) -> PoolType:
    return PoolType(
        slug=slug,
        launcher="cloud-run",
        description=description,
        variables=_VARIABLES,
        job_configuration=_JOB_CONFIGURATION,
        block_variables={"credentials": blocks.GCP_CREDENTIALS.slug},
        platform_check=check_limits,
    )


POOL_TYPE = _pool_type(
    "cloud-run:push", "Run each flow run as a Google Cloud Run job (launched through the v2 API)."
)
POOL_TYPE_V2 = _pool_type("cloud-run-v2:push", "Run each flow run as a Google Cloud Run v2 job.")
