"""How the Cloud Run fake checks what it is sent, as Cloud Run does: job ids, labels, durations,
container limits and env names, and how ``run`` overrides apply to an execution's template."""

from __future__ import annotations

import re
from typing import Any

JOB_ID = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
DURATION = re.compile(r"^\d+(\.\d{1,9})?s$")
CPU = re.compile(r"^(\d+m|\d+(\.\d+)?)$")
MEMORY = re.compile(r"^\d+(G|Gi|M|Mi)$")
RESERVED_ENV = frozenset(
    {
        "CLOUD_RUN_JOB",
        "CLOUD_RUN_EXECUTION",
        "CLOUD_RUN_TASK_INDEX",
        "CLOUD_RUN_TASK_ATTEMPT",
        "CLOUD_RUN_TASK_COUNT",
    }
)


class HttpError(Exception):
    """An error answer: HTTP status, the canonical status name, a message."""

    def __init__(self, status: int, status_name: str, message: str) -> None:
        super().__init__(message)
        self.status, self.status_name, self.message = status, status_name, message


def validate_job(body: dict[str, Any]) -> None:
    check_labels(body.get("labels", {}), "Job.labels")
    template = body.get("template") or {}
    check_labels(template.get("labels", {}), "Job.template.labels")
    task = template.get("template") or {}
    containers = task.get("containers") or []
    if not containers:
        raise HttpError(400, "INVALID_ARGUMENT", "Job.template.template.containers: at least one container.")
    if "timeout" in task and not DURATION.match(str(task["timeout"])):
        raise HttpError(
            400, "INVALID_ARGUMENT", f"Job.template.template.timeout: bad duration {task['timeout']!r}."
        )
    for index, container in enumerate(containers):
        where = f"Job.template.template.containers[{index}]"
        if not container.get("image"):
            raise HttpError(400, "INVALID_ARGUMENT", f"{where}.image: Field is required.")
        limits = (container.get("resources") or {}).get("limits") or {}
        if "cpu" in limits and not CPU.match(str(limits["cpu"])):
            raise HttpError(400, "INVALID_ARGUMENT", f"{where}.resources.limits.cpu: invalid value.")
        if "memory" in limits and not MEMORY.match(str(limits["memory"])):
            raise HttpError(400, "INVALID_ARGUMENT", f"{where}.resources.limits.memory: invalid value.")
        check_env(container.get("env") or [], where)


def check_env(env: list[dict[str, Any]], where: str) -> None:
    names = [var.get("name", "") for var in env]
    for name in names:
        if not name or name in RESERVED_ENV or "=" in name:
            raise HttpError(400, "INVALID_ARGUMENT", f"{where}.env: invalid or reserved name {name!r}.")
    if len(set(names)) != len(names):
        raise HttpError(400, "INVALID_ARGUMENT", f"{where}.env: duplicate names.")


def check_labels(labels: dict[str, Any], where: str) -> None:
    if len(labels) > 64:
        raise HttpError(400, "INVALID_ARGUMENT", f"{where}: at most 64 labels.")
    for key, value in labels.items():
        if not LABEL_KEY.match(key) or not LABEL_VALUE.match(str(value)):
            raise HttpError(400, "INVALID_ARGUMENT", f"{where}: invalid label {key!r}.")


def apply_overrides(task_template: dict[str, Any], overrides: dict[str, Any]) -> None:
    containers = task_template.get("containers", [])
    for override in overrides.get("containerOverrides", []):
        name = override.get("name", "")
        matches = [c for c in containers if c.get("name", "") == name] if name else containers[:1]
        if not matches or (not name and len(containers) > 1):
            raise HttpError(400, "INVALID_ARGUMENT", f"Container override names unknown container {name!r}.")
        container = matches[0]
        if override.get("env"):
            check_env(override["env"], "overrides.containerOverrides")
            merged = {var["name"]: var for var in container.get("env", [])}
            merged.update({var["name"]: var for var in override["env"]})
            container["env"] = list(merged.values())
        if override.get("clearArgs"):
            container["args"] = []
        elif override.get("args"):
            container["args"] = list(override["args"])
    if "timeout" in overrides:
        if not DURATION.match(str(overrides["timeout"])):
            raise HttpError(
                400, "INVALID_ARGUMENT", f"overrides.timeout: bad duration {overrides['timeout']!r}."
            )
        task_template["timeout"] = overrides["timeout"]
