"""Azure sessions for the ACI launcher: credentials, management clients, and error translation.

The only module besides ``aci.py`` that imports the Azure SDK. Endpoints come from documented settings
of the launching process, so sovereign clouds, private endpoints and local emulators need no code:

* ``RECONCILE_AZURE_ARM_ENDPOINT``: Resource Manager URL (default ``https://management.azure.com``); it
  must be https, because the SDK refuses to send a bearer token over plain http.
* ``RECONCILE_AZURE_ARM_SCOPE``: the token scope for it (default ``<endpoint>/.default``).
* ``AZURE_AUTHORITY_HOST`` (azure-identity's own variable): the Entra ID authority, e.g.
  ``https://login.microsoftonline.us``.
* ``REQUESTS_CA_BUNDLE`` (requests' own variable): a CA bundle to trust, for TLS-inspecting proxies
  and private endpoints.

Credentials follow prefect-azure: an ``azure-container-instance-credentials`` block with a
``client_secret`` is a ``ClientSecretCredential``; a block without one, or no block, is
``DefaultAzureCredential``. As in prefect-azure, the block's ``credential_kwargs`` are
``DefaultAzureCredential``'s only. An ``AZURE_AUTHORITY_HOST`` that is not one of Azure's clouds (a
private authority, Azure Stack) turns instance discovery off, which azure-identity documents for that
case. The SDK's own retries are off (``retry_total=0``): every attempt is counted by
:func:`reconciler.infra.retry.call_with_retries`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity import AzureAuthorityHosts, ClientSecretCredential, DefaultAzureCredential
from azure.mgmt.containerinstance import ContainerInstanceManagementClient

from reconciler.errors import LaunchAuthError, LaunchError
from reconciler.infra.retry import retry_after as parse_retry_after

ENV_ARM_ENDPOINT = "RECONCILE_AZURE_ARM_ENDPOINT"
ENV_ARM_SCOPE = "RECONCILE_AZURE_ARM_SCOPE"
ENV_AUTHORITY = "AZURE_AUTHORITY_HOST"
ENV_CA_BUNDLE = "REQUESTS_CA_BUNDLE"
DEFAULT_ARM_ENDPOINT = "https://management.azure.com"
BLOCK_TYPE = "azure-container-instance-credentials"

# Entra ID authorities of Azure's clouds (azure.identity.AzureAuthorityHosts).
_PUBLIC_AUTHORITIES = frozenset(
    {
        AzureAuthorityHosts.AZURE_PUBLIC_CLOUD,
        AzureAuthorityHosts.AZURE_CHINA,
        AzureAuthorityHosts.AZURE_GOVERNMENT,
        "login.microsoft.com",
    }
)
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_CONNECT_TIMEOUT = 15.0  # seconds; the SDK's default read timeout (300 s) is far too patient for polls
_READ_TIMEOUT = 60.0


@dataclass(frozen=True)
class Endpoints:
    """Where Azure is, read once from the launching process's environment."""

    arm: str
    scope: str
    authority: str | None
    ca_bundle: str | None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Endpoints:
        arm = (environ.get(ENV_ARM_ENDPOINT) or DEFAULT_ARM_ENDPOINT).rstrip("/")
        if not arm.lower().startswith("https://"):
            raise LaunchError(
                f"{ENV_ARM_ENDPOINT}={arm!r} must be an https URL (Azure SDKs never send tokens over http)"
            )
        return cls(
            arm=arm,
            scope=environ.get(ENV_ARM_SCOPE) or f"{arm}/.default",
            authority=environ.get(ENV_AUTHORITY) or None,
            ca_bundle=environ.get(ENV_CA_BUNDLE) or None,
        )

    @property
    def private_authority(self) -> bool:
        """An authority that is none of Azure's public clouds (Azure Stack, a private or test one):
        azure-identity's ``disable_instance_discovery`` is documented for exactly this case, since
        Microsoft's instance-discovery endpoint does not know such an authority."""
        if not self.authority:
            return False
        host = urlsplit(self.authority if "://" in self.authority else f"https://{self.authority}").hostname
        return host not in _PUBLIC_AUTHORITIES

    def transport_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"connection_timeout": _CONNECT_TIMEOUT, "read_timeout": _READ_TIMEOUT}
        if self.ca_bundle:
            options["connection_verify"] = self.ca_bundle
        return options


@dataclass(frozen=True)
class Principal:
    """Who we act as, described for error messages (never the secret)."""

    label: str
    secrets: tuple[str, ...]  # values to scrub from any message that quotes Azure


def describe(credentials: Mapping[str, Any] | None, *, pool: str, block: str | None) -> Principal:
    if not credentials:
        label = (
            f"DefaultAzureCredential of the launching process (work pool {pool!r} sets no aci_credentials)"
        )
        return Principal(label, ())
    name = f"block {BLOCK_TYPE}/{block}" if block else f"the {BLOCK_TYPE} block"
    who = f", client_id {credentials['client_id']}" if credentials.get("client_id") else ""
    label = f"{name} (aci_credentials of work pool {pool!r}{who})"
    secret = credentials.get("client_secret")
    return Principal(label, (str(secret),) if secret else ())


class AzureSession:
    """Credentials and one management client per (credentials, subscription), created on first use."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self._credentials: dict[str, TokenCredential] = {}
        self._clients: dict[tuple[str, str], ContainerInstanceManagementClient] = {}
        self._lock = threading.Lock()  # `serve` launches from several threads with one launcher

    def client(
        self, credentials: Mapping[str, Any] | None, subscription_id: str, *, principal: Principal
    ) -> ContainerInstanceManagementClient:
        key = _credential_key(credentials)
        with self._lock:
            if (key, subscription_id) not in self._clients:
                credential = self._credential(key, credentials, principal)
                self._clients[(key, subscription_id)] = ContainerInstanceManagementClient(
                    credential,
                    subscription_id,
                    base_url=self.endpoints.arm,
                    credential_scopes=[self.endpoints.scope],
                    retry_total=0,  # our call_with_retries counts every attempt
                    **self.endpoints.transport_options(),
                )
            return self._clients[(key, subscription_id)]

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            for credential in self._credentials.values():
                close = getattr(credential, "close", None)
                if close is not None:
                    close()
            self._clients.clear()
            self._credentials.clear()

    def _credential(self, key: str, data: Mapping[str, Any] | None, principal: Principal) -> TokenCredential:
        if key in self._credentials:
            return self._credentials[key]
        options: dict[str, Any] = dict(self.endpoints.transport_options())
        if self.endpoints.authority:
            options["authority"] = self.endpoints.authority
            if self.endpoints.private_authority:
                options["disable_instance_discovery"] = True
        extra = (data or {}).get("credential_kwargs") or {}
        if not isinstance(extra, Mapping):
            raise LaunchAuthError(f"credential_kwargs of {principal.label} must be a mapping")
        try:
            if data and data.get("client_secret"):
                missing = [f for f in ("client_id", "tenant_id") if not data.get(f)]
                if missing:
                    raise LaunchAuthError(
                        f"{principal.label} has a client_secret but no {' or '.join(missing)}"
                    )
                credential: TokenCredential = ClientSecretCredential(
                    str(data["tenant_id"]), str(data["client_id"]), str(data["client_secret"]), **options
                )
            else:  # credential_kwargs are DefaultAzureCredential's, as in prefect-azure
                credential = DefaultAzureCredential(**{**options, **extra})
        except (TypeError, ValueError) as exc:
            reason = scrub(str(exc), principal.secrets)
            raise LaunchAuthError(
                f"cannot build Azure credentials from {principal.label}: {reason}"
            ) from None
        self._credentials[key] = credential
        return credential


def _credential_key(data: Mapping[str, Any] | None) -> str:
    """An in-memory cache key for a credential (it holds the secret: never printed or stored)."""
    return json.dumps(data or {}, sort_keys=True, default=str)


@contextmanager
def azure_errors(what: str, principal: Principal) -> Iterator[None]:
    """Translate Azure SDK exceptions into our error tree; ``what`` names the step for the message."""
    try:
        yield
    except ClientAuthenticationError as exc:
        reason = scrub(_reason(exc), principal.secrets)
        raise LaunchAuthError(f"Azure refused {principal.label} while trying to {what}: {reason}") from None
    except HttpResponseError as exc:
        raise _http_error(exc, what, principal) from None
    except (ServiceRequestError, ServiceResponseError) as exc:
        reason = scrub(_reason(exc), principal.secrets)
        raise LaunchError(f"cannot reach Azure to {what}: {reason}", retryable=True) from None
    except AzureError as exc:
        raise LaunchError(f"Azure failed to {what}: {scrub(_reason(exc), principal.secrets)}") from None


def _http_error(exc: HttpResponseError, what: str, principal: Principal) -> LaunchError:
    status = exc.status_code or 0
    code = getattr(exc.error, "code", None) or ""
    message = getattr(exc.error, "message", None) or _reason(exc)
    reason = scrub(f"{code}: {message}" if code else message, principal.secrets)
    if status == 403:
        return LaunchAuthError(f"{principal.label} is not allowed to {what}: {reason}")
    if status in _RETRYABLE_STATUS:
        retry_after = _retry_after(exc)
        return LaunchError(
            f"Azure could not {what} (HTTP {status}): {reason}", retryable=True, retry_after=retry_after
        )
    return LaunchError(f"Azure refused to {what} (HTTP {status}): {reason}")


def _retry_after(exc: HttpResponseError) -> float | None:
    return parse_retry_after(exc.response.headers) if exc.response is not None else None


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return _one_line(str(text))


def _one_line(text: str, limit: int = 400) -> str:
    """Azure messages run over many lines (DefaultAzureCredential lists every attempt); keep one."""
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def scrub(text: str, secrets: Sequence[str]) -> str:
    """Replace any secret value that a message may quote with ``<redacted>``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "<redacted>")
    return text
