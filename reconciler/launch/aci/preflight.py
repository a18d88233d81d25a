"""Preflight for ``azure-container-instance:push`` pools: read-only ARM calls with the pool's credentials.

What the first container group of a deployment needs:

* ``aci_credentials``: Entra ID issues a token for the pool's principal and ARM accepts it;
* ``subscription_id`` / ``resource_group_name``: ARM finds the resource group (its location is
  where the launcher creates groups);
* ``image``: the group body can be built (an image is set) and, for an Azure Container Registry
  image (``NAME.azurecr.io/REPO[:TAG|@DIGEST]``), the registry has it: the pool's Entra token is
  exchanged for an ACR token (``POST /oauth2/exchange``, then ``/oauth2/token`` for
  ``repository:REPO:pull``, https://github.com/Azure/acr/blob/main/docs/AAD-OAuth.md) and the
  manifest is read (``GET /v2/REPO/manifests/REF``). Other registries cannot be asked with Azure
  credentials: reported as not checkable. ``RECONCILE_ACR_ENDPOINT`` replaces ``https://NAME.azurecr.io``
  (a private endpoint or an emulator);
* ``subnet_ids``: each subnet exists and is delegated to ``Microsoft.ContainerInstance/containerGroups``
  (https://learn.microsoft.com/azure/container-instances/container-instances-vnet: ACI deploys only
  into a delegated subnet);
* ``cpu`` / ``memory``: the rendered requests pass ACI's limits, by the loader's own rules
  (``pooltypes.aci.check_limits``; a pasted template can carry literal requests).

Every call is in ``examples/aci/role-definition.json``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
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
ACR_ENDPOINT_ENV = "RECONCILE_ACR_ENDPOINT"
ACR_HOSTS = (".azurecr.io", ".azurecr.cn", ".azurecr.us")  # public, China and US Government clouds
ACR_TIMEOUT = 30.0
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
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
        if ("session", "aci") not in cache:
            cache[("session", "aci")] = AzureSession(Endpoints.from_environ(environ))  # closed at the end
        session = cache[("session", "aci")]
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
    registry = Registry(client, session.endpoints, environ, principal)
    findings.append(_image(target, str(container["image"]), registry, cache))
    for subnet in spec.body["properties"].get("subnetIds") or []:
        findings.append(_subnet(target, client, cache, str(subnet["id"]), principal))
    findings.extend(_size(target, container.get("resources", {}).get("requests", {})))
    return findings


@dataclass(frozen=True)
class Registry:
    """How to reach ACR for one pool: its ARM client's credential, the CA settings, the principal."""

    client: ContainerInstanceManagementClient
    endpoints: Endpoints
    environ: Mapping[str, str]
    principal: Principal


def _image(target: Target, image: str, registry: Registry, cache: Cache) -> PreflightResult:
    match = re.match(
        r"^(?P<host>[^/]+)/(?P<repo>[^:@]+)(?::(?P<tag>[^@]+))?(?:@(?P<digest>sha256:[0-9a-f]+))?$", image
    )
    host = match["host"] if match else "docker.io"
    if match is None or not host.lower().endswith(ACR_HOSTS):
        message = (
            f"{image} is not in Azure Container Registry: {host} cannot be asked with Azure credentials "
            "(ACI pulls it when the group starts)"
        )
        return result(target, "image", "image-exists", True, message, skipped=True)
    reference = match["digest"] or match["tag"] or "latest"
    key = ("aci", "acr", id(registry.client), host.lower(), match["repo"], reference)
    if key not in cache:
        cache[key] = _manifest(registry, host, match["repo"], reference)
    found, reason = cache[key]
    if found:
        return result(target, "image", "image-exists", True, f"{image} exists in {host}")
    return result(
        target, "image", "image-exists", False, scrub(f"{image}: {reason}", registry.principal.secrets)
    )


def _manifest(registry: Registry, host: str, repository: str, reference: str) -> tuple[bool, str]:
    """Whether ``host`` has the manifest, through ACR's documented token exchange; else why not."""
    base = (registry.environ.get(ACR_ENDPOINT_ENV) or f"https://{host}").rstrip("/")
    verify: str | bool = registry.endpoints.ca_bundle or True
    try:
        credential = registry.client._config.credential  # the pool's credential, as the launcher uses it
        entra = credential.get_token(registry.endpoints.scope).token
        with requests.Session() as http:
            answer = http.post(
                f"{base}/oauth2/exchange",
                data={"grant_type": "access_token", "service": host, "access_token": entra},
                timeout=ACR_TIMEOUT,
                verify=verify,
            )
            if answer.status_code != 200:
                return (
                    False,
                    f"{host} refused to exchange the Entra token of {registry.principal.label} ({_acr_error(answer)})",
                )
            scope = f"repository:{repository}:pull"
            form = {"grant_type": "refresh_token", "service": host, "scope": scope}
            answer = http.post(
                f"{base}/oauth2/token",
                data={**form, "refresh_token": answer.json()["refresh_token"]},
                timeout=ACR_TIMEOUT,
                verify=verify,
            )
            if answer.status_code != 200:
                return False, f"{host} gave no pull token for {repository} ({_acr_error(answer)})"
            answer = http.get(
                f"{base}/v2/{repository}/manifests/{reference}",
                headers={
                    "Authorization": f"Bearer {answer.json()['access_token']}",
                    "Accept": MANIFEST_TYPES,
                },
                timeout=ACR_TIMEOUT,
                verify=verify,
            )
    except ClientAuthenticationError as exc:
        return (
            False,
            f"no Entra token for {registry.principal.label}: {' '.join(str(exc.message).split())[:300]}",
        )
    except (requests.RequestException, ValueError, KeyError) as exc:
        return False, f"cannot ask {host}: {type(exc).__name__}"
    if answer.status_code == 200:
        return True, ""
    if answer.status_code == 404:
        return False, f"not in {host} ({_acr_error(answer)})"
    return False, f"{host} answered HTTP {answer.status_code} ({_acr_error(answer)})"


def _acr_error(response: requests.Response) -> str:
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return f"HTTP {response.status_code}"
    first = errors[0] if errors and isinstance(errors[0], Mapping) else {}
    return f"{first.get('code', response.status_code)}: {first.get('message', '')}".strip()


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
