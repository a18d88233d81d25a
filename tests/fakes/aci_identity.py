"""The identity side of the Azure fake: a self-signed TLS certificate and an Entra ID token endpoint.

Azure SDKs refuse to send a bearer token over plain http, so the fake serves https with a
certificate made here (its own CA: a client trusts it through ``connection_verify`` or
``REQUESTS_CA_BUNDLE``). :class:`EntraStandIn` answers what MSAL asks for in the client-credentials
flow: tenant discovery (``/{tenant}/v2.0/.well-known/openid-configuration``), instance discovery
(``/common/discovery/instance``) and the token endpoint (``/{tenant}/oauth2/v2.0/token``), checking
the client id and secret the way Entra ID does and with its error codes.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

Answer = tuple[int, dict[str, str], dict[str, Any] | None]


class EntraStandIn:
    """One tenant with one confidential client; issues opaque bearer tokens that ARM then checks."""

    def __init__(self, *, tenant_id: str, client_id: str, client_secret: str) -> None:
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.requests: list[Mapping[str, str]] = []  # token request forms, the secret dropped
        self._tokens: set[str] = set()
        self._lock = threading.Lock()

    def openid_configuration(self, base_url: str, tenant: str) -> Answer:
        if tenant not in (self.tenant_id, "organizations", "common"):
            return 400, {}, _aad_error("invalid_tenant", f"AADSTS90002: Tenant '{tenant}' not found.", 90002)
        base = f"{base_url}/{tenant}"
        return (
            200,
            {},
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "response_types_supported": ["code", "id_token", "token"],
                "tenant_region_scope": "EU",
            },
        )

    def instance_discovery(self, base_url: str) -> Answer:
        endpoint = f"{base_url}/{self.tenant_id}/v2.0/.well-known/openid-configuration"
        metadata = [{"preferred_network": "127.0.0.1", "preferred_cache": "127.0.0.1", "aliases": []}]
        return 200, {}, {"tenant_discovery_endpoint": endpoint, "api-version": "1.1", "metadata": metadata}

    def token(self, body: bytes) -> Answer:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        with self._lock:
            self.requests.append({k: v for k, v in form.items() if k != "client_secret"})
        if form.get("grant_type") != "client_credentials":
            return (
                400,
                {},
                _aad_error("unsupported_grant_type", "AADSTS70003: unsupported grant type.", 70003),
            )
        if form.get("client_id") != self.client_id:
            message = f"AADSTS700016: Application with identifier '{form.get('client_id')}' was not found."
            return 400, {}, _aad_error("unauthorized_client", message, 700016)
        if form.get("client_secret") != self.client_secret:
            message = (
                "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request "
                "is the client secret value, not the client secret ID, for a secret added to app "
                f"'{self.client_id}'."
            )
            return 401, {}, _aad_error("invalid_client", message, 7000215)
        token = "fake-arm-token-" + secrets.token_hex(12)
        with self._lock:
            self._tokens.add(token)
        answer = {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}
        return 200, {}, answer

    def accepts(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        with self._lock:
            return scheme.lower() == "bearer" and token in self._tokens

    def revoke(self) -> None:
        with self._lock:
            self._tokens.clear()


def _aad_error(error: str, description: str, code: int) -> dict[str, Any]:
    return {
        "error": error,
        "error_description": description,
        "error_codes": [code],
        "timestamp": dt.datetime.now(dt.UTC).isoformat(),
        "trace_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
    }


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost that is its own CA, and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "azure-fake.local")])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "azure-fake.pem", directory / "azure-fake.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_path.write_bytes(private)
    return cert_path, key_path
