"""Preflight for ``azure-container-instance:push`` pools: read-only ARM calls with the pool's credentials.

What the first container group of a deployment needs:

* ``aci_credentials``: Entra ID issues a token for the pool's principal and ARM accepts it;
* ``subscription_id`` / ``resource_group_name``: ARM finds the resource group (its location is
  where the launcher creates groups);
* ``image``: the group body can be built (an image is set). The image itself is **not** looked
  up: Azure Container Registry's registry API takes an ACR token exchanged from the Entra token
  (a data-plane call outside ARM and outside the published role), and other registries cannot be
  asked with Azure credentials; the finding says so;
* ``subnet_ids``: each subnet exists and is delegated to ``Microsoft.ContainerInstance/containerGroups``
  (https://learn.microsoft.com/azure/container-instances/container-instances-vnet: ACI deploys only
  into a delegated subnet);
* ``cpu`` / ``memory``: the rendered requests pass ACI's limits, by the loader's own rules
  (``pooltypes.aci.check_limits``; a pasted template can carry literal requests).

Every call is in ``examples/aci/role-definition.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError
from azure.core.rest import HttpRequest
from azure.mgmt.containerinstance import ContainerInstanceManagementClient

from reconciler.errors import LaunchError
from reconciler.launch.aci import body as aci_spec
from reconciler.launch.aci.client import BLOCK_TYPE, AzureSession, Endpoints, Principal, describe, scrub
from reconciler.launch.aci.launcher import RESOURCE_GROUP_API
from reconciler.launch.preflight import Cache, PreflightResult, Target, result
from reconciler.pooltypes.aci import check_limits

NETWORK_API = "2023-09-01"  # Microsoft.Network, to read a subnet and its delegations
ACI_DELEGATION = "Microsoft.ContainerInstance/containerGroups"


def check(target: Target, environ: Mapping[str, str], cache: Cache) -> list[PreflightResult]:
    """The findings for one deployment's job on an ACI pool."""
    assert target.job is not None
    job = target.job
    try:
        settings = aci_spec.Settings.of(job)
    except LaunchError as exc:
        return [result(target, "resource_group_name", "settings", False, str(exc))]
    credentials = job.configuration.get("aci_credentials") or None
    if credentials is not None and not isinstance(credentials, Mapping):
        message = f"aci_credentials of work pool {job.pool!r} is not an {BLOCK_TYPE} block's data"
        return [result(target, "aci_credentials", "credentials", False, message)]
    block = job.blocks.get("aci_credentials")
    principal = describe(credentials, pool=job.pool, block=block.split("/", 1)[-1] if block else None)
    try:
        session = cache.get(("session", "aci"))
        if session is None:
            session = cache.setdefault(("session", "aci"), AzureSession(Endpoints.from_environ(environ)))
        client = session.client(credentials, settings.subscription_id, principal=principal)
    except LaunchError as exc:
        return [result(target, "aci_credentials", "credentials", False, str(exc))]
    path = f"/subscriptions/{settings.subscription_id}/resourcegroups/{settings.resource_group}"
    status, doc, reason = _get(client, cache, path, RESOURCE_GROUP_API, principal)
    if status == 401:
        return [result(target, "aci_credentials", "credentials", False, reason)]
    findings = [
        result(target, "aci_credentials", "credentials", True, f"Azure issued a token to {principal.label}")
    ]
    if status != 200:
        field = "subscription_id" if "Subscription" in reason else "resource_group_name"
        findings.append(result(target, field, "resource-group-exists", False, reason))
        return findings
    location = aci_spec.location_from_template(job.configuration) or str(doc.get("location") or "")
    message = f"resource group {settings.resource_group} exists ({location})"
    findings.append(result(target, "resource_group_name", "resource-group-exists", True, message))
    try:
        spec = aci_spec.build(
            job, settings=settings, location=location, submitted_at=datetime.now(UTC), environ=environ
        )
    except LaunchError as exc:
        return [*findings, result(target, "image", "image-set", False, str(exc))]
    container = spec.body["properties"]["containers"][0]["properties"]
    findings.append(_image(target, str(container["image"])))
    for subnet in spec.body["properties"].get("subnetIds") or []:
        findings.append(_subnet(target, client, cache, str(subnet["id"]), principal))
    findings.extend(_size(target, container.get("resources", {}).get("requests", {})))
    return findings


def _image(target: Target, image: str) -> PreflightResult:
    host = image.split("/", 1)[0] if "/" in image else "docker.io"
    if host.endswith(".azurecr.io"):
        why = "an ACR registry answers only an ACR token exchanged from the Entra token (its data plane, not ARM)"
    else:
        why = f"{host} cannot be asked with Azure credentials"
    message = f"{image} is not looked up: {why}; ACI pulls it when the group starts"
    return result(target, "image", "image-exists", True, message, skipped=True)


def _subnet(
    target: Target,
    client: ContainerInstanceManagementClient,
    cache: Cache,
    subnet_id: str,
    principal: Principal,
) -> PreflightResult:
    field = "subnet_ids"
    status, doc, reason = _get(client, cache, subnet_id, NETWORK_API, principal)
    if status == 404:
        return result(target, field, "subnet-delegated", False, f"subnet {subnet_id} does not exist")
    if status != 200:
        return result(target, field, "subnet-delegated", False, reason)
    delegations = (doc.get("properties") or {}).get("delegations") or []
    services = [str((d.get("properties") or {}).get("serviceName")) for d in delegations]
    if ACI_DELEGATION not in services:
        message = f"subnet {subnet_id} is not delegated to {ACI_DELEGATION} (delegated to: {', '.join(services) or 'nothing'})"
        return result(target, field, "subnet-delegated", False, message)
    return result(
        target, field, "subnet-delegated", True, f"subnet {subnet_id} is delegated to {ACI_DELEGATION}"
    )


def _size(target: Target, requests: Mapping[str, Any]) -> list[PreflightResult]:
    values = {"cpu": requests.get("cpu"), "memory": requests.get("memoryInGB")}
    problems = check_limits(values)
    if problems:
        return [result(target, str(p.path[0]), "aci-size", False, p.message) for p in problems]
    message = f"cpu {values['cpu']:g} / memory {values['memory']:g} GB fits ACI's limits"
    return [result(target, "cpu", "aci-size", True, message)]


def _get(
    client: ContainerInstanceManagementClient, cache: Cache, path: str, api_version: str, principal: Principal
) -> tuple[int, dict[str, Any], str]:
    """``(status, JSON body, reason)`` of one ARM GET, once per preflight; 401 = the token was refused.

    Through the client's pipeline (``_send_request``, the generated clients' documented escape
    hatch), so the pool's credential, endpoint and CA settings apply as for the launcher.
    """
    key = ("aci", "get", id(client), path.lower(), api_version)
    if key not in cache:
        cache[key] = _send(client, path, api_version, principal)
    return cache[key]


def _send(
    client: ContainerInstanceManagementClient, path: str, api_version: str, principal: Principal
) -> tuple[int, dict[str, Any], str]:
    request = HttpRequest("GET", path, params={"api-version": api_version})
    try:
        response = client._send_request(request)
    except ClientAuthenticationError as exc:
        reason = scrub(" ".join(str(exc.message or exc).split())[:400], principal.secrets)
        return 401, {}, f"Azure refused {principal.label}: {reason}"
    except HttpResponseError as exc:
        return int(exc.status_code or 0), {}, scrub(str(exc.message or exc), principal.secrets)
    except AzureError as exc:  # transport errors: the finding names them, preflight goes on
        return 0, {}, f"cannot reach Azure: {type(exc).__name__}: {scrub(str(exc), principal.secrets)[:300]}"
    try:
        doc = response.json() if response.content else {}
    except ValueError:
        doc = {}
    if response.status_code == 401:
        return 401, doc, f"ARM refused the token of {principal.label}"
    if response.status_code != 200:
        error = doc.get("error") or {}
        code, message = error.get("code", ""), error.get("message", "")
        reason = f"{code}: {message}" if code else f"HTTP {response.status_code}"
        if response.status_code == 403:
            reason = f"{principal.label} may not read {path}: {reason}"
        return response.status_code, doc, scrub(reason, principal.secrets)
    return 200, doc, ""
