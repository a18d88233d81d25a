"""The registry side of the Azure fake: Azure Container Registry's token exchange and manifest reads.

ACR's data plane, as documented in https://github.com/Azure/acr/blob/main/docs/AAD-OAuth.md and the
OCI distribution spec:

* ``POST /oauth2/exchange`` (form ``grant_type=access_token``, ``service``, ``access_token``): an
  Entra ID access token the tenant issued becomes an ACR refresh token for ``service``;
* ``POST /oauth2/token`` (form ``grant_type=refresh_token``, ``service``, ``scope=repository:R:pull``,
  ``refresh_token``): an access token for that repository;
* ``GET /v2/{repository}/manifests/{tag or digest}`` with that token: 200 for an image in
  :attr:`AcrStandIn.images` (``registry/repository:tag`` or ``registry/repository@sha256:...``),
  404 ``MANIFEST_UNKNOWN`` otherwise; 401 ``UNAUTHORIZED`` without a token for the repository.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.aci_identity import Answer, EntraStandIn

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


class AcrStandIn:
    """One or more registries (by login server) served from the fake's address."""

    def __init__(self, entra: EntraStandIn) -> None:
        self.entra = entra
        self.images: set[str] = set()
        self._refresh: dict[str, str] = {}  # refresh token -> service (login server)
        self._access: dict[str, tuple[str, str]] = {}  # access token -> (service, repository)
        self._lock = threading.Lock()

    def exchange(self, body: bytes) -> Answer:
        form = _form(body)
        if form.get("grant_type") != "access_token" or not form.get("service"):
            return 400, {}, _errors("UNSUPPORTED", "grant_type must be access_token, with a service")
        if not self.entra.accepts(f"Bearer {form.get('access_token', '')}"):
            return 401, {}, _errors("UNAUTHORIZED", "the access token is invalid or expired")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._refresh[token] = form["service"]
        return 200, {}, {"refresh_token": token}

    def token(self, body: bytes) -> Answer:
        form = _form(body)
        with self._lock:
            service = self._refresh.get(form.get("refresh_token", ""))
        if form.get("grant_type") != "refresh_token" or service is None or service != form.get("service"):
            return 401, {}, _errors("UNAUTHORIZED", "the refresh token is invalid for this registry")
        kind, _, rest = form.get("scope", "").partition(":")
        repository, _, actions = rest.rpartition(":")
        if kind != "repository" or not repository or "pull" not in actions.split(","):
            return 400, {}, _errors("UNSUPPORTED", "scope must be repository:NAME:pull")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._access[token] = (service, repository)
        return 200, {}, {"access_token": token}

    def manifest(self, params: Mapping[str, str], headers: Mapping[str, str]) -> Answer:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        with self._lock:
            grant = self._access.get(token) if scheme.lower() == "bearer" else None
        if grant is None or grant[1] != params["repo"]:
            return 401, {}, _errors("UNAUTHORIZED", "authentication required")
        service, repository = grant
        separator = "@" if params["ref"].startswith("sha256:") else ":"
        if f"{service}/{repository}{separator}{params['ref']}" not in self.images:
            return 404, {}, _errors("MANIFEST_UNKNOWN", "manifest tagged by the reference is not found")
        return (
            200,
            {"Docker-Content-Digest": "sha256:" + "0" * 64},
            {"schemaVersion": 2, "mediaType": MANIFEST_TYPE},
        )


def _form(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode()).items()}


def _errors(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message, "detail": None}]}
