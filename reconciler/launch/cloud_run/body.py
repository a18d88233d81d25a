"""What the Cloud Run launcher sends: the Job body (one per deployment version), its id, and the
per-run overrides. Pure functions over the rendered job configuration: no SDK, no I/O.

The split between the two follows what ``RunJobRequest.Overrides`` can carry (container ``args``,
``env``, ``timeout``, ``taskCount``; no command, no labels):

- the **Job** holds everything that is the same for every run of one deployment version: image,
  command, args, resources, service account, retries, task timeout, VPC connector, Cloud SQL
  volumes, env taken from Secret Manager (references, never values) and labels naming the pool
  and the deployment. Its id ends with a hash of this body, so a changed body is a new job and an
  unchanged one is found again by name: no update, no read-modify-write race between launchers.
- the **overrides** hold the run: every plain env var (the run contract ``RECONCILE_RUN_ID``,
  parameters, the job's ``env``, resolved secrets) and the timeout. Plain env never enters the Job
  body, so the body and its hash carry no secret and no per-run value.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from reconciler.errors import LaunchError
from reconciler.launch.base import ENV_RUN_ID, Job
from reconciler.launch.cloud_run import v1

CONTAINER = "flow"  # the container's name when the template leaves it unnamed (overrides name it)
MAX_JOB_ID = 63
HASH_LEN = 8
MAX_LABELS = 64
MAX_ENV_VARS = 1000  # per container
MAX_ENV_VALUE_BYTES = 32768  # EnvVar.value
LABEL_POOL = "reconcile-pool"
LABEL_DEPLOYMENT = "reconcile-deployment"
PREFECT_FLOW_RUN_ID = "PREFECT__FLOW_RUN_ID"
PREFECT_COMMAND = ("prefect", "flow-run", "execute")
CLOUDSQL_VOLUME = "cloudsql"
# Job variables whose value is a Secret Manager reference for a Prefect setting.
SECRET_SETTINGS = {
    "prefect_api_key_secret": "PREFECT_API_KEY",
    "prefect_api_auth_string_secret": "PREFECT_API_AUTH_STRING",
}

_NOT_ID = re.compile(r"[^a-z0-9]+")
_NOT_LABEL = re.compile(r"[^a-z0-9_-]+")


@dataclass(frozen=True)
class JobPlan:
    """Where the run's Cloud Run job lives and what to send: names, body, overrides."""

    project: str
    region: str
    job_id: str
    body: Mapping[str, Any] = field(repr=False)  # camelCase v2 Job, without ``name``
    overrides: Mapping[str, Any] = field(repr=False)  # camelCase RunJobRequest.Overrides

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    @property
    def name(self) -> str:
        return f"{self.parent}/jobs/{self.job_id}"


def plan(job: Job, *, project: str) -> JobPlan:
    """The Job body, its deterministic id and the run's overrides for ``job``."""
    config = job.configuration
    region = str(config.get("region") or "us-central1")
    env = run_env(job)
    body = job_body(job, prefect_contract="PREFECT_API_URL" in env)
    secret_names = {var["name"] for var in secret_env(config)}
    check_env_limits(env, job.pool)
    overrides: dict[str, Any] = {
        "containerOverrides": [
            {
                "name": _container(body)["name"],
                "env": [{"name": k, "value": v} for k, v in sorted(env.items()) if k not in secret_names],
            }
        ]
    }
    if config.get("timeout") is not None:
        overrides["timeout"] = f"{int(config['timeout'])}s"
    return JobPlan(
        project=project,
        region=region,
        job_id=job_id(job, body),
        body=body,
        overrides=overrides,
    )


def check_env_limits(env: Mapping[str, str], pool: str) -> None:
    """Cloud Run's documented env limits: a value holds at most 32768 bytes (``EnvVar.value``) and a
    container at most 1000 variables ("Configure environment variables" for jobs). Checked before
    anything is created, so the run fails with the reason instead of Cloud Run's 400."""
    if len(env) > MAX_ENV_VARS:
        raise LaunchError(
            f"work pool {pool}: the run has {len(env)} env vars, over Cloud Run's {MAX_ENV_VARS}"
        )
    for name, value in env.items():
        size = len(value.encode("utf-8"))
        if size > MAX_ENV_VALUE_BYTES:
            raise LaunchError(
                f"work pool {pool}: env var {name} is {size} bytes, over Cloud Run's {MAX_ENV_VALUE_BYTES} "
                "(pass less in parameters or env)"
            )


def run_env(job: Job) -> dict[str, str]:
    """The run's plain environment; with ``PREFECT_API_URL`` also Prefect's flow-run id."""
    env = {k: str(v) for k, v in job.env.items() if v is not None}
    if "PREFECT_API_URL" in env:
        env.setdefault(PREFECT_FLOW_RUN_ID, job.run_id)
    return env


def command_of(job: Job, *, prefect_contract: bool, template: Any = None) -> list[str]:
    """``command`` job variable > the template container's own ``command`` (a string is split with
    shlex, as prefect-gcp does) > Prefect's ``prefect flow-run execute`` > our runtime."""
    for configured in (job.configuration.get("command"), template):
        if isinstance(configured, list) and configured:
            return [str(part) for part in configured]
        if isinstance(configured, str) and configured.strip():
            return shlex.split(configured)
    if prefect_contract:
        return list(PREFECT_COMMAND)
    return list(job.command)


def job_body(job: Job, *, prefect_contract: bool) -> dict[str, Any]:
    """The rendered ``job_body`` finished as prefect-gcp's worker finishes it, plus our labels."""
    config = job.configuration
    raw = config.get("job_body")
    if not isinstance(raw, Mapping):
        raise LaunchError(f"work pool {job.pool}: the job configuration has no Cloud Run job_body")
    body = v1.to_v2(raw) if v1.is_v1(raw) else copy.deepcopy(dict(raw))  # Prefect's cloud-run template
    body.pop("name", None)
    template = body.setdefault("template", {})
    task = template.setdefault("template", {})
    containers = task.get("containers") or []
    if not containers or not all(isinstance(c, Mapping) for c in containers):
        raise LaunchError(f"work pool {job.pool}: the Cloud Run job_body has no container to run the flow in")
    # The first container runs the flow (as in prefect-gcp); any others are sidecars, kept as written.
    container = containers[0]
    container.setdefault("name", CONTAINER)
    for index, sidecar in enumerate(containers[1:], start=1):
        sidecar.setdefault("name", f"sidecar-{index}")
    if not container.get("image"):
        raise LaunchError(
            f"work pool {job.pool}: no image for the Cloud Run job (set the `image` job variable)"
        )
    container["command"] = command_of(
        job, prefect_contract=prefect_contract, template=container.get("command")
    )
    if not container.get("args"):
        container.pop("args", None)
    secrets = secret_env(config)  # a template's own env entries stay; a secret of the same name wins
    names = {var["name"] for var in secrets}
    container["env"] = [v for v in container.get("env") or [] if v.get("name") not in names] + secrets
    if not container["env"]:
        del container["env"]
    if "timeout" in task and not isinstance(task["timeout"], str):
        task["timeout"] = f"{int(task['timeout'])}s"
    if not (task.get("vpcAccess") or {}).get("connector"):
        task.pop("vpcAccess", None)
    for key in ("serviceAccount",):
        if not task.get(key):
            task.pop(key, None)
    instances = [str(i) for i in config.get("cloudsql_instances") or []]
    if instances:
        task.setdefault("volumes", []).append(
            {"name": CLOUDSQL_VOLUME, "cloudSqlInstance": {"instances": instances}}
        )
        container.setdefault("volumeMounts", []).append({"name": CLOUDSQL_VOLUME, "mountPath": "/cloudsql"})
    labels = job_labels(job, existing=body.get("labels") or {})
    body["labels"] = labels
    template["labels"] = {**gcp_labels(template.get("labels") or {}), **labels}
    return body


def secret_env(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Env vars read from Secret Manager (``env_from_secrets`` and the Prefect key/auth secrets)."""
    refs: dict[str, Mapping[str, Any]] = {}
    for name, ref in sorted((config.get("env_from_secrets") or {}).items()):
        refs[str(name)] = ref
    for variable, env_name in SECRET_SETTINGS.items():
        if config.get(variable):
            refs[env_name] = config[variable]
    env = []
    for name, ref in refs.items():
        if not isinstance(ref, Mapping) or not ref.get("secret"):
            raise LaunchError(f"env var {name} from Secret Manager needs a `secret` (and a `version`)")
        selector = {"secret": str(ref["secret"]), "version": str(ref.get("version") or "latest")}
        env.append({"name": name, "valueSource": {"secretKeyRef": selector}})
    return env


def job_labels(job: Job, *, existing: Mapping[str, Any]) -> dict[str, str]:
    """GCP-safe labels: ours first (pool, deployment), then the template's and the ``labels`` variable."""
    ours = {LABEL_POOL: label_value(job.pool), LABEL_DEPLOYMENT: label_value(job.deployment)}
    theirs = gcp_labels({**existing, **(job.configuration.get("labels") or {})})
    merged = {**ours, **{k: v for k, v in theirs.items() if k not in ours}}
    return dict(list(merged.items())[:MAX_LABELS])


def gcp_labels(labels: Mapping[str, Any]) -> dict[str, str]:
    """Keys and values made GCP-safe (lowercase ``[a-z0-9_-]``, ≤ 63 chars, keys start with a letter)."""
    out: dict[str, str] = {}
    for key, value in labels.items():
        safe_key = label_value(str(key))
        if not safe_key[:1].isalpha():
            safe_key = f"l-{safe_key}"[:63]
        out[safe_key] = label_value("" if value is None else str(value))
    return out


def label_value(text: str) -> str:
    return _NOT_LABEL.sub("-", text.lower())[:63]


def job_id(job: Job, body: Mapping[str, Any]) -> str:
    """``<name or pool-flow-deployment>-<hash of the body>``: ≤ 63, ``[a-z0-9-]``, starts with a letter."""
    base = str(job.configuration.get("name") or f"{job.pool}-{job.deployment}")
    slug = _NOT_ID.sub("-", base.lower()).strip("-")
    if not slug[:1].isalpha():
        slug = f"r-{slug}".rstrip("-")
    slug = slug[: MAX_JOB_ID - HASH_LEN - 1].rstrip("-")
    return f"{slug}-{body_hash(body)}"


def body_hash(body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:HASH_LEN]


def run_id_of(env: Any) -> set[str]:
    """Run ids named by an execution's env (``[{"name", "value"}]`` or EnvVar messages)."""
    found = set()
    for var in env:
        name = var["name"] if isinstance(var, Mapping) else var.name
        value = var.get("value") if isinstance(var, Mapping) else var.value
        if name in (ENV_RUN_ID, PREFECT_FLOW_RUN_ID) and value:
            found.add(str(value))
    return found


def console_log_url(execution_name: str) -> str:
    """Cloud Logging's page for one execution (what Cloud Run reports as ``logUri``)."""
    parts = execution_name.split("/")
    project, region, job, execution = parts[1], parts[3], parts[5], parts[7]
    query = (
        f'resource.type="cloud_run_job"\nresource.labels.job_name="{job}"\n'
        f'resource.labels.location="{region}"\nlabels."run.googleapis.com/execution_name"="{execution}"'
    )
    viewer = "https://console.cloud.google.com/logs/viewer"
    return f"{viewer}?project={project}&advancedFilter={quote(query, safe='')}"


def parse_execution_name(name: str) -> tuple[str, str]:
    """``(job name, execution id)`` of ``projects/p/locations/l/jobs/j/executions/e``."""
    parts = name.split("/")
    if (
        len(parts) != 8
        or parts[0] != "projects"
        or parts[2] != "locations"
        or parts[4:7:2] != ["jobs", "executions"]
    ):
        raise LaunchError(f"not a Cloud Run execution name: {name!r}")
    return "/".join(parts[:6]), parts[7]


def _container(body: Mapping[str, Any]) -> dict[str, Any]:
    return body["template"]["template"]["containers"][0]
