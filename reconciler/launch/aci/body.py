"""The container group for one run, as ARM's REST body: pure functions, no SDK, no I/O, no clock.

Prefect's ACI worker deploys the job configuration's ``arm_template``; we PUT its one
``Microsoft.ContainerInstance/containerGroups`` resource directly, with the template's three
parameters (``location``, ``container_group_name``, ``container_name``) filled in and the worker's
additions made the same way prefect-azure makes them:

* name: slug of the ``name`` variable (else the flow name) + ``-`` + run id, at most 63 characters of
  ``[a-z0-9-]``. It is a pure function of the run, so a retried submit finds the group it created.
* command: ``[entrypoint, *shlex(command)]``. ``command`` is the job variable when set, else
  ``prefect flow-run execute`` when the job env has ``PREFECT_API_URL`` (Prefect's contract, with
  ``PREFECT__FLOW_RUN_ID``), else the job's command (``python -m reconciler.runtime``). ``entrypoint``
  is prepended when set, with one exception: its default, Prefect's image script
  ``/opt/prefect/entrypoint.sh``, is left out of our own runtime command, which needs nothing from it
  (the script exists only in Prefect's images; it installs ``EXTRA_PIP_PACKAGES`` and execs its
  arguments). So any Python image with prefect-reconciler works as is, and Prefect's contract or a
  configured ``command`` behaves exactly as under Prefect's worker. ``entrypoint: null`` drops it.
* environment: ``secureValue`` (never shown by Azure's API or portal) for names that look sensitive
  (``*SECRET*``, ``*TOKEN*``, ``*PASSWORD*``, ``*KEY*``, ``PREFECT_API_AUTH_STRING``) and for values that
  contain a sensitive value of the launching process's environment; plain ``value`` otherwise.
* ``restartPolicy: Never`` and ``osType: Linux`` always (a run must not be restarted by Azure); one
  container, named ``flow``; tags carry the run id, the deployment and the submit time.
"""

from __future__ import annotations

import copy
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler import desired as desired_state
from reconciler.errors import LaunchError
from reconciler.launch import bootstrap
from reconciler.launch.base import Job

PROVIDER = "Microsoft.ContainerInstance"
RESOURCE_TYPE = f"{PROVIDER}/containerGroups"
CONTAINER_NAME = "flow"
TAG_RUN_ID = "reconcile.run-id"
TAG_DEPLOYMENT = "reconcile.deployment"
TAG_SUBMITTED = "reconcile.submitted-at"
PREFECT_COMMAND = ("prefect", "flow-run", "execute")
PREFECT_ENTRYPOINT = "/opt/prefect/entrypoint.sh"  # the entrypoint variable's default
PREFECT_FLOW_RUN_ID = "PREFECT__FLOW_RUN_ID"
_ALWAYS_SECURE = frozenset({"PREFECT_API_KEY", "PREFECT_API_AUTH_STRING"})
_MIN_SECRET_LENGTH = 6  # shorter launcher values would mark half the environment secure
_MAX_NAME = 63
_MAX_TAGS = 50
_MAX_TAG_VALUE = 256
_BAD_TAG_NAME = re.compile(r"[<>%&\\?/]")
_RESOURCE_ID = re.compile(
    rf"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/{PROVIDER}/containerGroups/(?P<name>[^/]+)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Settings:
    """The worker settings of an ACI job configuration, typed (prefect-azure's names and defaults)."""

    subscription_id: str
    resource_group: str
    poll_interval: float = 5.0
    start_timeout: float = 240.0
    keep_group: bool = False

    @classmethod
    def of(cls, job: Job) -> Settings:
        config = job.configuration
        missing = [k for k in ("subscription_id", "resource_group_name") if not config.get(k)]
        if missing:
            raise LaunchError(
                f"work pool {job.pool!r} needs {' and '.join(missing)} to run on Azure Container Instances"
            )
        return cls(
            subscription_id=str(config["subscription_id"]),
            resource_group=str(config["resource_group_name"]),
            poll_interval=max(0.0, _number(config.get("task_watch_poll_interval"), 5.0)),
            start_timeout=max(0.0, _number(config.get("task_start_timeout_seconds"), 240.0)),
            keep_group=bool(config.get("keep_container_group") or False),
        )


@dataclass(frozen=True)
class GroupRef:
    """Where a container group lives; its ARM resource id is the run's infrastructure id."""

    subscription_id: str
    resource_group: str
    name: str

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{RESOURCE_TYPE}/{self.name}"
        )

    @classmethod
    def parse(cls, infrastructure_id: str) -> GroupRef:
        match = _RESOURCE_ID.match(infrastructure_id)
        if match is None:
            raise LaunchError(f"not an Azure container group id: {infrastructure_id!r}")
        return cls(match["sub"], match["rg"], match["name"])


@dataclass(frozen=True)
class GroupSpec:
    """A container group to create: where, and the REST body (which holds secrets: never printed)."""

    ref: GroupRef
    body: Mapping[str, Any] = field(repr=False)


def group_name(job: Job) -> str:
    """``<slug>-<run id>``: deterministic per run, valid for ACI (``[a-z0-9-]``, 1..63, no ``--``)."""
    run = _slug(job.run_id) or "run"
    base = _slug(str(job.configuration.get("name") or job.flow_name))
    room = _MAX_NAME - len(run) - 1
    base = base[:room].strip("-") if room > 0 else ""
    return f"{base}-{run}" if base else run[:_MAX_NAME].strip("-")


def ref_for(job: Job, settings: Settings) -> GroupRef:
    return GroupRef(settings.subscription_id, settings.resource_group, group_name(job))


def location_from_template(configuration: Mapping[str, Any]) -> str | None:
    """A literal ``location`` parameter default in the ARM template; ``None`` for an ARM expression."""
    parameters = (configuration.get("arm_template") or {}).get("parameters") or {}
    value = (parameters.get("location") or {}).get("defaultValue")
    if isinstance(value, str) and value and not value.startswith("["):
        return value
    return None


def build(
    job: Job, *, settings: Settings, location: str, submitted_at: datetime, environ: Mapping[str, str]
) -> GroupSpec:
    """The container group for ``job`` (REST shape, as ``ContainerGroup.deserialize`` reads it)."""
    config = job.configuration
    ref = ref_for(job, settings)
    props = _template_properties(config, ref=ref, location=location)
    containers = props.get("containers") or [{}]
    first = copy.deepcopy(containers[0])
    first["name"] = CONTAINER_NAME
    cprops = first.setdefault("properties", {})
    if cprops.get("image") in (None, ""):
        cprops["image"] = bootstrap.PREFECT_IMAGE  # as Prefect's worker: its own image by default
    image = cprops["image"]
    if not image or not isinstance(image, str) or "{{" in image:
        raise LaunchError(
            f"work pool {job.pool!r}: the image of {job.deployment} is not resolved ({image!r}): set the image "
            "variable to an image with Python (any: the runtime travels with the run)"
        )
    command, env = command_and_environment(job)
    cprops["command"] = command
    cprops["environmentVariables"] = environment_variables(
        env, template=cprops.get("environmentVariables") or [], sensitive=sensitive_values(environ)
    )
    requests = cprops.setdefault("resources", {}).setdefault("requests", {})
    requests["cpu"] = _number(requests.get("cpu"), 1.0)
    requests["memoryInGB"] = _number(requests.get("memoryInGB"), 1.0)
    if config.get("gpu_count"):
        requests["gpu"] = {"count": int(config["gpu_count"]), "sku": str(config.get("gpu_sku") or "")}
    props["containers"] = [first, *containers[1:]]
    props["osType"] = "Linux"
    props["restartPolicy"] = "Never"
    identities = [str(i) for i in config.get("identities") or []]
    registry = _registry(config.get("image_registry"), identities)
    if registry is not None:
        props["imageRegistryCredentials"] = [registry]
    if config.get("subnet_ids"):
        props["subnetIds"] = [{"id": str(s)} for s in config["subnet_ids"]]
    if config.get("dns_servers"):
        props["dnsConfig"] = {"nameServers": [str(s) for s in config["dns_servers"]]}
    body: dict[str, Any] = {"location": location, "tags": tags(job, submitted_at), "properties": props}
    if identities:
        body["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {i: {} for i in identities}}
    return GroupSpec(ref=ref, body=body)


def command_and_environment(job: Job) -> tuple[list[str], dict[str, str]]:
    """``[entrypoint, *command]`` and the container's environment (see the module docstring)."""
    env = {k: str(v) for k, v in job.env.items()}
    command = list(job.command)
    if "PREFECT_API_URL" in env:
        command = list(PREFECT_COMMAND)
        env.setdefault(PREFECT_FLOW_RUN_ID, job.run_id)  # a Prefect store already gave its own run id
    configured = job.configuration.get("command")
    if configured:
        command = shlex.split(str(configured))
    entrypoint = job.configuration.get("entrypoint")
    entrypoint = entrypoint.strip() if isinstance(entrypoint, str) else ""
    our_runtime = command == list(job.command) and "PREFECT_API_URL" not in env
    if entrypoint and not (our_runtime and entrypoint == PREFECT_ENTRYPOINT):
        command = [entrypoint, *command]
    return command, env


def sensitive_values(environ: Mapping[str, str]) -> frozenset[str]:
    """Values of the launching process's sensitive variables: a job env value containing one is secure."""
    return frozenset(
        value
        for name, value in environ.items()
        if desired_state.is_sensitive_env(name) and len(value) >= _MIN_SECRET_LENGTH
    )


def is_secure(name: str, value: str, sensitive: Iterable[str]) -> bool:
    if name.upper() in _ALWAYS_SECURE or desired_state.is_sensitive_env(name):
        return True
    return any(secret in value for secret in sensitive)


def environment_variables(
    env: Mapping[str, str], *, template: Iterable[Mapping[str, Any]], sensitive: Iterable[str]
) -> list[dict[str, str]]:
    """ARM ``environmentVariables``: the template's, then ours (ours win), sorted by name."""
    merged: dict[str, str] = {}
    for item in template:
        if isinstance(item, Mapping) and item.get("name"):
            value = item.get("value", item.get("secureValue"))
            merged[str(item["name"])] = "" if value is None else str(value)
    merged.update(env)
    secrets = tuple(sensitive)
    out = []
    for name in sorted(merged):
        value = merged[name]
        out.append(
            {"name": name, "secureValue": value}
            if is_secure(name, value, secrets)
            else {"name": name, "value": value}
        )
    return out


def tags(job: Job, submitted_at: datetime) -> dict[str, str]:
    """User labels, then ours (ours win); Azure's tag rules: no ``<>%&\\?/`` in names, values ≤ 256."""
    raw = {**{str(k): str(v) for k, v in (job.configuration.get("labels") or {}).items()}, **job.labels}
    raw[TAG_RUN_ID] = job.run_id
    raw[TAG_DEPLOYMENT] = job.deployment
    raw[TAG_SUBMITTED] = submitted_at.isoformat()
    clean = {_BAD_TAG_NAME.sub("-", k)[:512]: v[:_MAX_TAG_VALUE] for k, v in raw.items()}
    ours = {k: clean.pop(k) for k in (TAG_RUN_ID, TAG_DEPLOYMENT, TAG_SUBMITTED)}
    kept = dict(list(clean.items())[: _MAX_TAGS - len(ours)])
    return {**kept, **ours}


def _template_properties(config: Mapping[str, Any], *, ref: GroupRef, location: str) -> dict[str, Any]:
    """The containerGroups resource's ``properties`` from ``arm_template``, parameters filled in."""
    resources = (config.get("arm_template") or {}).get("resources") or []
    for resource in resources:
        if isinstance(resource, Mapping) and str(resource.get("type", "")).lower() == RESOURCE_TYPE.lower():
            values = {
                "location": location,
                "container_group_name": ref.name,
                "container_name": CONTAINER_NAME,
            }
            return _fill_parameters(copy.deepcopy(dict(resource.get("properties") or {})), values)
    return {}


_PARAMETER = re.compile(r"^\[parameters\('([A-Za-z_][\w]*)'\)\]$")


def _fill_parameters(node: Any, values: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        match = _PARAMETER.match(node.strip())
        return values.get(match.group(1), node) if match else node
    if isinstance(node, dict):
        return {k: _fill_parameters(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill_parameters(v, values) for v in node]
    return node


def _registry(value: Any, identities: list[str]) -> dict[str, str] | None:
    """``imageRegistryCredentials`` from DockerRegistryCredentials data or an ACR managed identity.

    The managed identity must also be assigned to the group, so it joins ``identities``.
    """
    if not isinstance(value, Mapping) or not value:
        return None
    server = str(value.get("registry_url") or "")
    if value.get("identity"):
        identity = str(value["identity"])
        if identity not in identities:
            identities.append(identity)
        return {"server": server, "identity": identity}
    return {
        "server": server,
        "username": str(value.get("username") or ""),
        "password": str(value.get("password") or ""),
    }


def _slug(text: str) -> str:
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9]+", "-", text.lower())).strip("-")


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool):
        return default
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return default
