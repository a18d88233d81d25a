"""Preflight for ``cloud-run:push`` / ``cloud-run-v2:push`` pools: read-only Google calls with the pool's key.

What the first Cloud Run run of a deployment needs:

* ``credentials``: the key (or the application defaults) gets an access token from its token
  endpoint, and a project is known;
* ``region``: Cloud Run answers ``jobs.list`` (one page of one job) in ``projects/P/locations/R``;
  Google answers an unknown location with 403/404 "(or it may not exist)";
* ``image``: an Artifact Registry image (``LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE``) has
  its tag (``packages.tags.get``) or digest (``packages.versions.get``), asked through the
  Artifact Registry REST API (https://cloud.google.com/artifact-registry/docs/reference/rest). Other
  registries (Docker Hub, ``gcr.io`` redirects, third parties) are reported as not checkable: they
  cannot be asked with the pool's Google credentials;
* ``service_account_name``: IAM ``serviceAccounts.get`` finds the account the job runs as;
* ``cpu`` / ``memory``: the rendered container limits pass Cloud Run's documented limits, by
  the same rules the loader applies to the job variables (``pooltypes.cloud_run.check_limits``).

Endpoints: ``RECONCILE_CLOUD_RUN_ENDPOINT`` (as the launcher), ``RECONCILE_ARTIFACT_REGISTRY_ENDPOINT``
and ``RECONCILE_IAM_ENDPOINT`` (private endpoints, emulators; defaults are Google's). Every call is
in ``examples/cloud-run/iam-role.yaml``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import google.auth.transport.requests
import requests
from google.cloud import run_v2

from reconciler.errors import LaunchError
from reconciler.launch.cloud_run import body as body_mod
from reconciler.launch.cloud_run import gcp
from reconciler.launch.cloud_run.launcher import _who
from reconciler.launch.preflight import Cache, PreflightResult, Target, result
from reconciler.pooltypes.cloud_run import check_limits

AR_ENDPOINT_ENV = "RECONCILE_ARTIFACT_REGISTRY_ENDPOINT"
IAM_ENDPOINT_ENV = "RECONCILE_IAM_ENDPOINT"
AR_ENDPOINT = "https://artifactregistry.googleapis.com"
IAM_ENDPOINT = "https://iam.googleapis.com"
TIMEOUT = 30.0
# https://cloud.google.com/artifact-registry/docs/docker/names
AR_IMAGE = re.compile(
    r"^(?P<location>[a-z0-9-]+)-docker\.pkg\.dev/(?P<project>[^/]+)/(?P<repository>[^/]+)/"
    r"(?P<image>[^:@]+)(?::(?P<tag>[^@]+))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


def check(target: Target, environ: Mapping[str, str], cache: Cache) -> list[PreflightResult]:
    """The findings for one deployment's job on a Cloud Run pool."""
    assert target.job is not None
    job = target.job
    block = job.configuration.get("credentials")
    who = _who(job)
    # a digest names the credentials in the cache (the key itself is not kept twice)
    block_key = hashlib.sha256(json.dumps(block, sort_keys=True, default=str).encode()).hexdigest()
    if ("cloud-run", "auth", block_key) not in cache:
        auth = _authenticate(block, environ, who)
        if isinstance(auth, tuple):
            cache[("session", "cloud-run", block_key)] = auth[1]  # closed when the preflight ends
        cache[("cloud-run", "auth", block_key)] = auth
    auth = cache[("cloud-run", "auth", block_key)]
    if isinstance(auth, LaunchError):
        return [result(target, "credentials", "credentials", False, str(auth))]
    credentials, session = auth
    findings = [
        result(
            target,
            "credentials",
            "credentials",
            True,
            f"{who} got an access token (project {session.project})",
        )
    ]
    try:
        plan = body_mod.plan(job, project=session.project)
    except LaunchError as exc:  # no image, or a template Cloud Run cannot take
        field = "image" if "image" in str(exc) else "job_body"
        return [*findings, result(target, field, "job-body", False, str(exc))]
    findings.append(_region(target, session, plan, cache))
    task = plan.body["template"]["template"]
    container = task["containers"][0]
    findings.append(_image(target, credentials, str(container["image"]), environ, cache))
    account = task.get("serviceAccount")
    if account:
        findings.append(_service_account(target, credentials, str(account), environ, cache))
    findings.extend(_size(target, (container.get("resources") or {}).get("limits") or {}))
    return findings


def _authenticate(block: Any, environ: Mapping[str, str], who: str) -> tuple[Any, gcp.Session] | LaunchError:
    """Credentials with a fresh token, and the Cloud Run clients; or why not (a LaunchError)."""
    try:
        with gcp.gcp_errors("load credentials", who):
            credentials, _ = gcp._credentials(block, who=who)
            credentials.refresh(google.auth.transport.requests.Request())
        session = gcp.open_session(block, environ=environ, who=who)
    except LaunchError as exc:
        return exc
    return credentials, session


def _region(target: Target, session: gcp.Session, plan: body_mod.JobPlan, cache: Cache) -> PreflightResult:
    key = ("cloud-run", "region", session.project, plan.region, session.who)
    if key not in cache:
        try:
            request = run_v2.ListJobsRequest(parent=plan.parent, page_size=1)
            session.call(
                f"list jobs in {plan.parent}",
                lambda: next(
                    iter(session.jobs.list_jobs(request=request, retry=None, timeout=TIMEOUT).pages), None
                ),
            )
            cache[key] = None
        except LaunchError as exc:
            cache[key] = exc
    problem = cache[key]
    if problem is not None:
        message = f"Cloud Run in {plan.parent} cannot be used (or the region does not exist): {problem}"
        return result(target, "region", "region-exists", False, message)
    return result(target, "region", "region-exists", True, f"Cloud Run answers in {plan.parent}")


def _image(
    target: Target, credentials: Any, image: str, environ: Mapping[str, str], cache: Cache
) -> PreflightResult:
    match = AR_IMAGE.match(image)
    if match is None:
        message = (
            f"{image} is not in Artifact Registry (LOCATION-docker.pkg.dev): other registries cannot be "
            "asked with the pool's Google credentials (Cloud Run pulls it at the first run)"
        )
        return result(target, "image", "image-exists", True, message, skipped=True)
    base = environ.get(AR_ENDPOINT_ENV, "").rstrip("/") or AR_ENDPOINT
    package = (
        f"{base}/v1/projects/{match['project']}/locations/{match['location']}/repositories/"
        f"{match['repository']}/packages/{quote(match['image'], safe='')}"
    )
    url = (
        f"{package}/versions/{match['digest']}"
        if match["digest"]
        else f"{package}/tags/{match['tag'] or 'latest'}"
    )
    status, detail = _get(credentials, url, cache, what=f"look up {image} in Artifact Registry")
    if status == 200:
        return result(target, "image", "image-exists", True, f"{image} exists in Artifact Registry")
    if status == 404:
        return result(
            target, "image", "image-exists", False, f"{image} is not in Artifact Registry: {detail}"
        )
    return result(target, "image", "image-exists", False, f"cannot look up {image}: {detail}")


def _service_account(
    target: Target, credentials: Any, email: str, environ: Mapping[str, str], cache: Cache
) -> PreflightResult:
    field = "service_account_name"
    base = environ.get(IAM_ENDPOINT_ENV, "").rstrip("/") or IAM_ENDPOINT
    url = f"{base}/v1/projects/-/serviceAccounts/{quote(email, safe='@')}"
    status, detail = _get(credentials, url, cache, what=f"look up service account {email}")
    if status == 200:
        return result(target, field, "service-account-exists", True, f"service account {email} exists")
    if status == 404:
        return result(
            target, field, "service-account-exists", False, f"service account {email} does not exist"
        )
    return result(target, field, "service-account-exists", False, f"cannot look up {email}: {detail}")


def _get(credentials: Any, url: str, cache: Cache, *, what: str) -> tuple[int, str]:
    """``(HTTP status, Google's message)`` of one authorized GET (0 when it could not be sent)."""
    key = ("cloud-run", "get", url, id(credentials))
    if key not in cache:
        session = google.auth.transport.requests.AuthorizedSession(credentials)
        try:
            with gcp.gcp_errors(what, "the pool's credentials"):
                response = session.get(url, timeout=TIMEOUT)
            cache[key] = (response.status_code, _message(response))
        except (LaunchError, requests.RequestException) as exc:
            cache[key] = (0, str(exc))
        finally:
            session.close()
    status, detail = cache[key]
    return int(status), str(detail)


def _message(response: requests.Response) -> str:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(error, Mapping):
        return f"{error.get('status') or response.status_code}: {error.get('message', '')}".strip()
    return f"HTTP {response.status_code}"


def _size(target: Target, limits: Mapping[str, Any]) -> list[PreflightResult]:
    """The rendered container limits by the loader's own Cloud Run rules (a pasted template can set
    literal limits that no job variable carries, so the loader never saw them)."""
    values = {k: limits[k] for k in ("cpu", "memory") if limits.get(k) is not None}
    if not values:
        return []
    problems = check_limits(values)
    if problems:
        return [result(target, str(p.path[0]), "cloud-run-size", False, p.message) for p in problems]
    text = " / ".join(f"{k} {v}" for k, v in values.items())
    return [result(target, "cpu", "cloud-run-size", True, f"{text} is a Cloud Run size")]
