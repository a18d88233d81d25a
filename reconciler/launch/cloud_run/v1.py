"""A Cloud Run Admin API **v1** Job body (Knative style: ``apiVersion``/``metadata``/``spec``) as a v2 Job.

prefect-gcp's ``cloud-run`` worker template writes its ``job_body`` in the v1 form; pools created by
Prefect for ``cloud-run:push`` carry it. We launch through the v2 API only, so a v1 body is translated
field by field, following the two references:

* v1 Job: https://cloud.google.com/run/docs/reference/rest/v1/namespaces.jobs (``spec.template`` is an
  ExecutionTemplateSpec, whose ``spec.template.spec`` is the TaskSpec: containers, volumes,
  ``timeoutSeconds``, ``serviceAccountName``, ``maxRetries``); settings without a field live in
  annotations (``run.googleapis.com/launch-stage``, ``/vpc-access-connector``, ``/vpc-access-egress``,
  ``/execution-environment``, ``/cloudsql-instances``).
* v2 Job: https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs (``template`` is
  an ExecutionTemplate whose ``template`` is the TaskTemplate; those settings are fields there). v2
  refuses ``run.googleapis.com/*`` annotations, and a container has ``resources.limits`` only.

Pure: no SDK, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ANNOTATION = "run.googleapis.com/"
CLOUDSQL_VOLUME = "cloudsql"
_EGRESS = {"all-traffic": "ALL_TRAFFIC", "private-ranges-only": "PRIVATE_RANGES_ONLY"}
_ENVIRONMENT = {"gen1": "EXECUTION_ENVIRONMENT_GEN1", "gen2": "EXECUTION_ENVIRONMENT_GEN2"}
_SYSTEM_PREFIXES = (ANNOTATION, "cloud.googleapis.com/", "serving.knative.dev/", "autoscaling.knative.dev/")


def is_v1(body: Any) -> bool:
    """A v1 body names its API version or has the Knative ``spec``; a v2 body has ``template``."""
    if not isinstance(body, Mapping):
        return False
    return str(body.get("apiVersion", "")).startswith("run.googleapis.com/v1") or (
        "spec" in body and "template" not in body
    )


def to_v2(body: Mapping[str, Any]) -> dict[str, Any]:
    """The v2 Job body equivalent to a v1 one (``name`` is left out: the launcher names jobs)."""
    metadata = _mapping(body.get("metadata"))
    execution = _mapping(_mapping(body.get("spec")).get("template"))
    execution_meta = _mapping(execution.get("metadata"))
    execution_spec = _mapping(execution.get("spec"))
    task_spec = _mapping(_mapping(execution_spec.get("template")).get("spec"))
    annotations = {**_mapping(metadata.get("annotations")), **_mapping(execution_meta.get("annotations"))}

    task: dict[str, Any] = {"containers": [_container(c) for c in task_spec.get("containers") or []]}
    if task_spec.get("timeoutSeconds") not in (None, ""):
        task["timeout"] = f"{int(task_spec['timeoutSeconds'])}s"
    if task_spec.get("serviceAccountName"):
        task["serviceAccount"] = task_spec["serviceAccountName"]
    if task_spec.get("maxRetries") is not None:
        task["maxRetries"] = task_spec["maxRetries"]
    volumes = [_volume(v) for v in task_spec.get("volumes") or []]
    connector = annotations.get(f"{ANNOTATION}vpc-access-connector")
    if connector:
        task["vpcAccess"] = {"connector": connector}
        egress = _EGRESS.get(str(annotations.get(f"{ANNOTATION}vpc-access-egress", "")))
        if egress:
            task["vpcAccess"]["egress"] = egress
    environment = _ENVIRONMENT.get(str(annotations.get(f"{ANNOTATION}execution-environment", "")))
    if environment:
        task["executionEnvironment"] = environment
    instances = [i.strip() for i in str(annotations.get(f"{ANNOTATION}cloudsql-instances") or "").split(",")]
    if any(instances) and task["containers"]:
        volumes.append(
            {"name": CLOUDSQL_VOLUME, "cloudSqlInstance": {"instances": [i for i in instances if i]}}
        )
        task["containers"][0].setdefault("volumeMounts", []).append(
            {"name": CLOUDSQL_VOLUME, "mountPath": "/cloudsql"}
        )
    if volumes:
        task["volumes"] = volumes

    template: dict[str, Any] = {"template": task}
    for key in ("parallelism", "taskCount"):
        if execution_spec.get(key) is not None:
            template[key] = execution_spec[key]
    if execution_meta.get("labels"):
        template["labels"] = dict(execution_meta["labels"])
    kept = {
        k: v
        for k, v in _mapping(execution_meta.get("annotations")).items()
        if not k.startswith(_SYSTEM_PREFIXES)
    }
    if kept:
        template["annotations"] = kept
    job: dict[str, Any] = {"template": template}
    stage = annotations.get(f"{ANNOTATION}launch-stage")
    if stage:
        job["launchStage"] = str(stage)
    if metadata.get("labels"):
        job["labels"] = dict(metadata["labels"])
    return job


def _container(container: Any) -> dict[str, Any]:
    source = _mapping(container)
    out: dict[str, Any] = {
        key: source[key] for key in ("name", "image", "command", "args", "workingDir") if key in source
    }
    if source.get("env"):
        out["env"] = [_env(e) for e in source["env"]]
    limits = _mapping(source.get("resources")).get("limits")
    if limits:  # v2 has limits only; v1's requests have no v2 field
        out["resources"] = {"limits": dict(limits)}
    if source.get("ports"):
        out["ports"] = [
            {k: p[k] for k in ("name", "containerPort") if k in p}
            for p in source["ports"]
            if isinstance(p, Mapping)
        ]
    if source.get("volumeMounts"):
        out["volumeMounts"] = [
            {"name": m.get("name"), "mountPath": m.get("mountPath")} for m in source["volumeMounts"]
        ]
    return out


def _env(var: Any) -> dict[str, Any]:
    """``valueFrom.secretKeyRef {name, key}`` (v1) is ``valueSource.secretKeyRef {secret, version}``."""
    var = _mapping(var)
    ref = _mapping(_mapping(var.get("valueFrom")).get("secretKeyRef"))
    if ref:
        selector = {"secret": ref.get("name"), "version": str(ref.get("key") or "latest")}
        return {"name": var.get("name"), "valueSource": {"secretKeyRef": selector}}
    return {"name": var.get("name"), "value": "" if var.get("value") is None else str(var["value"])}


def _volume(volume: Any) -> dict[str, Any]:
    volume = _mapping(volume)
    secret = _mapping(volume.get("secret"))
    if secret:
        items = [
            {"path": i.get("path"), "version": str(i.get("key") or "latest")}
            for i in secret.get("items") or []
            if isinstance(i, Mapping)
        ]
        converted: dict[str, Any] = {"secret": secret.get("secretName")}
        if items:
            converted["items"] = items
        return {"name": volume.get("name"), "secret": converted}
    return dict(volume)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
