"""``azure-container-instance:push``: each run is an Azure container group, deployed by the launcher.

Variables follow prefect-azure's ACI worker template. ``subscription_id`` is ``format: password`` /
``writeOnly`` there (the UI masks it) and stays so in our schema, but it is an identifier, not a
credential: it is not in ``secret_variables`` and may be written in clear.

The job configuration holds the worker settings at top level plus ``arm_template``, the ARM deployment
the launcher submits. As prefect-azure's worker does, the launcher fills in the container's
environment, prefixes ``command`` with ``entrypoint``, adds identities, registry credentials, subnets,
DNS and GPU to the container group, and sets the three template parameters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from reconciler.pooltypes import blocks
from reconciler.pooltypes.base import PoolType, VariableProblem
from reconciler.pooltypes.common import common_variables

# Linux container group limits in a standard region (Azure "Resource availability by region").
MIN_CPU, MAX_CPU = 0.1, 4.0
MIN_MEMORY_GB, MAX_MEMORY_GB = 0.1, 16.0
MEMORY_STEP_GB = 0.1
# "Deploy container instances that use GPU resources" (learn.microsoft.com/azure/container-instances/
# container-instances-gpu, 2025-11-17): count 1, 2 or 4; SKU V100 only (K80 and P100 are gone); and
# the feature itself "is retired as of July 14, 2025", so any GPU request gets a warning.
GPU_COUNTS = (1, 2, 4)
GPU_SKUS = ("V100",)
RETIRED_GPU_SKUS = ("K80", "P100")
GPU_RETIRED = "Azure documents GPU container groups as retired since 14 July 2025; ARM may refuse the request"


def _optional(schema: dict[str, Any], title: str, description: str) -> dict[str, Any]:
    return {"title": title, "description": description, "anyOf": [schema, {"type": "null"}]}


_STRINGS = {"type": "array", "items": {"type": "string"}}

_VARIABLES: dict[str, Any] = {
    "type": "object",
    "description": "Variables for an Azure Container Instances run.",
    "properties": {
        **common_variables(),
        "resource_group_name": {
            "title": "Azure Resource Group Name",
            "description": "Resource group the container group is created in.",
            "type": "string",
        },
        "subscription_id": {
            "title": "Azure Subscription ID",
            "description": "Subscription of the resource group (an identifier; masked in Prefect's UI).",
            "type": "string",
            "format": "password",
            "writeOnly": True,
        },
        "image": {
            "title": "Image",
            "description": "Container image; unset is the Prefect image of this release.",
            "type": "string",
        },
        "identities": _optional(
            _STRINGS, "Identities", "Resource IDs of user-assigned managed identities for the group."
        ),
        "entrypoint": {
            "title": "Entrypoint",
            "description": "Prepended to the command; the Prefect image's entrypoint by default.",
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "default": "/opt/prefect/entrypoint.sh",
        },
        "image_registry": {
            "title": "Image Registry (Optional)",
            "description": "Private registry login: registry credentials or a managed identity for ACR.",
            "anyOf": [
                {"$ref": "#/definitions/ACRManagedIdentity"},
                {"$ref": f"#/definitions/{blocks.DOCKER_REGISTRY_CREDENTIALS.title}"},
                {"type": "null"},
            ],
        },
        "cpu": {
            "title": "CPU",
            "description": f"CPU cores requested ({MIN_CPU} to {MAX_CPU:g}).",
            "type": "number",
            "default": 1.0,
        },
        "memory": {
            "title": "Memory",
            "description": f"Memory requested in GB ({MIN_MEMORY_GB} to {MAX_MEMORY_GB:g}, in steps of 0.1).",
            "type": "number",
            "default": 1.0,
        },
        "gpu_count": _optional(
            {"type": "integer"},
            "GPU Count",
            f"GPUs requested ({', '.join(map(str, GPU_COUNTS))}); needs gpu_sku.",
        ),
        "gpu_sku": _optional({"type": "string"}, "GPU SKU", f"GPU model: {', '.join(GPU_SKUS)}."),
        "subnet_ids": _optional(
            _STRINGS, "Subnet IDs", "Subnets to inject the group into a virtual network."
        ),
        "dns_servers": _optional(_STRINGS, "DNS Servers", "DNS servers for a group in a virtual network."),
        "aci_credentials": blocks.variable(
            blocks.AZURE_CONTAINER_INSTANCE_CREDENTIALS,
            title="ACI Credentials",
            description="Service principal for Azure; unset means DefaultAzureCredential on the launcher.",
        ),
        "stream_output": {
            "title": "Stream Output",
            "description": "Copy the container's output to the launcher's log.",
            "type": "boolean",
            "default": False,
        },
        "task_start_timeout_seconds": {
            "title": "Task Start Timeout Seconds",
            "description": "How long to wait for the container group to be provisioned.",
            "type": "integer",
            "default": 240,
        },
        "task_watch_poll_interval": {
            "title": "Task Watch Poll Interval",
            "description": "Seconds between status polls of the container group.",
            "type": "number",
            "default": 5.0,
        },
        "keep_container_group": {
            "title": "Keep Container Group",
            "description": "Stop the container group after the run instead of deleting it.",
            "type": "boolean",
            "default": False,
        },
    },
    "required": ["resource_group_name", "subscription_id"],
    "definitions": {
        **blocks.definitions(blocks.AZURE_CONTAINER_INSTANCE_CREDENTIALS, blocks.DOCKER_REGISTRY_CREDENTIALS),
        "ACRManagedIdentity": {
            "title": "ACRManagedIdentity",
            "description": "Pull from Azure Container Registry with a user-assigned managed identity.",
            "type": "object",
            "properties": {
                "registry_url": {"title": "Registry URL", "type": "string"},
                "identity": {"title": "Identity", "type": "string"},
            },
            "required": ["registry_url", "identity"],
        },
    },
}


def _parameter(default: str, description: str) -> dict[str, Any]:
    return {"type": "string", "defaultValue": default, "metadata": {"description": description}}


_ARM_TEMPLATE: dict[str, Any] = {
    "$schema": "https://schema.management.azure.com/schemas/2019-08-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "parameters": {
        "location": _parameter("[resourceGroup().location]", "Region of the container group."),
        "container_group_name": _parameter(
            "[uniqueString(resourceGroup().id)]", "Name of the container group."
        ),
        "container_name": _parameter("[uniqueString(resourceGroup().id)]", "Name of the flow's container."),
    },
    "resources": [
        {
            "type": "Microsoft.ContainerInstance/containerGroups",
            "apiVersion": "2022-09-01",
            "name": "[parameters('container_group_name')]",
            "location": "[parameters('location')]",
            "properties": {
                "containers": [
                    {
                        "name": "[parameters('container_name')]",
                        "properties": {
                            "image": "{{ image }}",
                            "command": "{{ command }}",
                            "resources": {"requests": {"cpu": "{{ cpu }}", "memoryInGB": "{{ memory }}"}},
                            "environmentVariables": [],
                        },
                    }
                ],
                "osType": "Linux",
                "restartPolicy": "Never",
            },
        }
    ],
}

_JOB_CONFIGURATION: dict[str, Any] = {
    "command": "{{ command }}",
    "env": "{{ env }}",
    "labels": "{{ labels }}",
    "name": "{{ name }}",
    "aci_credentials": "{{ aci_credentials }}",
    "resource_group_name": "{{ resource_group_name }}",
    "subscription_id": "{{ subscription_id }}",
    "identities": "{{ identities }}",
    "image_registry": "{{ image_registry }}",
    "stream_output": "{{ stream_output }}",
    "task_start_timeout_seconds": "{{ task_start_timeout_seconds }}",
    "task_watch_poll_interval": "{{ task_watch_poll_interval }}",
    "keep_container_group": "{{ keep_container_group }}",
    "entrypoint": "{{ entrypoint }}",
    "subnet_ids": "{{ subnet_ids }}",
    "dns_servers": "{{ dns_servers }}",
    "gpu_count": "{{ gpu_count }}",
    "gpu_sku": "{{ gpu_sku }}",
    "arm_template": _ARM_TEMPLATE,
}


def check_limits(values: Mapping[str, Any]) -> list[VariableProblem]:
    """ACI's size limits, which ARM only reports when the deployment is already under way."""
    problems: list[VariableProblem] = []
    cpu = _number(values.get("cpu"))
    if cpu is not None and not MIN_CPU <= cpu <= MAX_CPU:
        message = (
            f"cpu {cpu:g} is outside ACI's limits of {MIN_CPU:g} to {MAX_CPU:g} CPU per Linux container group"
        )
        problems.append(VariableProblem(("cpu",), message))
    memory = _number(values.get("memory"))
    if memory is not None and not MIN_MEMORY_GB <= memory <= MAX_MEMORY_GB:
        message = f"memory {memory:g} GB is outside ACI's limits of {MIN_MEMORY_GB:g} to {MAX_MEMORY_GB:g} GB"
        problems.append(VariableProblem(("memory",), message))
    elif memory is not None and not math.isclose(memory / MEMORY_STEP_GB, round(memory / MEMORY_STEP_GB)):
        message = f"memory {memory:g} GB is not a multiple of ACI's {MEMORY_STEP_GB:g} GB step"
        problems.append(VariableProblem(("memory",), message))
    problems.extend(_gpu_problems(values.get("gpu_count"), values.get("gpu_sku")))
    return problems


def _gpu_problems(count: Any, sku: Any) -> list[VariableProblem]:
    skus = ", ".join(GPU_SKUS)
    counts = ", ".join(str(c) for c in GPU_COUNTS)
    problems: list[VariableProblem] = []
    if isinstance(count, int) and not isinstance(count, bool):
        if count not in GPU_COUNTS:
            message = f"gpu_count {count} is not one ACI offers: {counts}"
            problems.append(VariableProblem(("gpu_count",), message))
        if sku is None:
            problems.append(VariableProblem(("gpu_count",), f"gpu_count needs gpu_sku ({skus})"))
        else:
            problems.append(VariableProblem(("gpu_count",), GPU_RETIRED, warning=True))
    if isinstance(sku, str):
        if sku in RETIRED_GPU_SKUS:
            message = f"gpu_sku {sku!r} is retired on ACI; the only SKU Azure documents is {skus}"
            problems.append(VariableProblem(("gpu_sku",), message))
        elif sku not in GPU_SKUS:
            problems.append(
                VariableProblem(("gpu_sku",), f"gpu_sku {sku!r} is not offered by ACI; use {skus}")
            )
        if count is None:
            problems.append(VariableProblem(("gpu_sku",), f"gpu_sku {sku!r} needs gpu_count ({counts})"))
    return problems


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None  # absent, or a type the schema reports
    return float(value)


POOL_TYPE = PoolType(
    slug="azure-container-instance:push",
    launcher="aci",
    description="Run each flow run as an Azure Container Instances container group.",
    variables=_VARIABLES,
    job_configuration=_JOB_CONFIGURATION,
    block_variables={
        "aci_credentials": blocks.AZURE_CONTAINER_INSTANCE_CREDENTIALS.slug,
        "image_registry": blocks.DOCKER_REGISTRY_CREDENTIALS.slug,
    },
    platform_check=check_limits,
)
