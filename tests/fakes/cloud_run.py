"""A local stand-in for the Cloud Run Admin API v2 (REST) and Google's OAuth2 token endpoint.

The real ``google-cloud-run`` client (REST transport) talks to it over loopback, so every request
goes through the SDK's own path templates, JSON (camelCase, ``$alt=json;enum-encoding=int``),
long-running operations and error mapping. What it implements (fact sheet §6.2):

- ``POST /token``: the JWT-bearer grant of a service account key. The assertion's signature is
  checked against the public key a test registered with :meth:`CloudRunFake.trust`; the answer is an
  access token that the API routes then require as ``Authorization: Bearer`` (401 otherwise).
- jobs: create (``?jobId=``, 409 when it exists), get, list, patch, delete (``?etag=`` checked),
  ``:run`` with overrides (a *pending* operation whose metadata is the Execution);
- executions: get, list, delete, ``:cancel``; tasks: list (each with ``lastAttemptResult``);
- operations: get (pending operations finish after ``pending_polls`` reads).
- read endpoints of two neighbouring Google APIs that preflight asks, on the same server:
  Artifact Registry ``GET /v1/projects/p/locations/l/repositories/r/packages/{image}/tags/{tag}``
  and ``.../versions/{sha256:...}`` (the image as its docker.pkg.dev reference must be in
  :attr:`images`), and IAM ``GET /v1/projects/-/serviceAccounts/{email}`` (:attr:`service_accounts`).
  With :attr:`locations` set, Cloud Run routes in any other location answer as Google answers an
  unknown location: 403 "Permission denied on 'locations/X' (or it may not exist)".

Executions advance when they are read: the first ``get`` starts the task, and after
``outcome.after`` reads the outcome chosen for the execution is applied (succeeded, failed with an
exit code, failed to start, or never ending). A task that outlives its ``timeout`` fails as Cloud Run
fails it. Tests steer it with :attr:`outcome`, :meth:`throttle`, :meth:`fail_after_effect`,
:attr:`reject_tokens`, :attr:`deny`, and read :attr:`requests` to count calls.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.cloud_run_model import Outcome, RunModel
from tests.fakes.cloud_run_rules import HttpError

__all__ = ["CloudRunFake", "HttpError", "Outcome", "Request"]

_NAME = r"[^/:]+"
_LOC = rf"/v2/projects/(?P<project>{_NAME})/locations/(?P<location>{_NAME})"
_JOB = rf"{_LOC}/jobs/(?P<job>{_NAME})"
_EXE = rf"{_JOB}/executions/(?P<execution>{_NAME})"
_AR_PACKAGE = (
    rf"/v1/projects/(?P<project>{_NAME})/locations/(?P<location>{_NAME})"
    rf"/repositories/(?P<repository>{_NAME})/packages/(?P<package>{_NAME})"
)
ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(f"^{pattern}$"), route)
    for method, pattern, route in (
        ("POST", "/token", "token"),
        ("POST", f"{_LOC}/jobs", "create_job"),
        ("GET", f"{_LOC}/jobs", "list_jobs"),
        ("GET", _JOB, "get_job"),
        ("PATCH", _JOB, "update_job"),
        ("DELETE", _JOB, "delete_job"),
        ("POST", f"{_JOB}:run", "run_job"),
        ("GET", f"{_JOB}/executions", "list_executions"),
        ("GET", _EXE, "get_execution"),
        ("DELETE", _EXE, "delete_execution"),
        ("POST", f"{_EXE}:cancel", "cancel_execution"),
        ("GET", f"{_EXE}/tasks", "list_tasks"),
        ("GET", rf"{_LOC}/operations/(?P<operation>{_NAME})", "get_operation"),
        ("GET", rf"{_AR_PACKAGE}/tags/(?P<tag>{_NAME})", "get_docker_tag"),
        ("GET", rf"{_AR_PACKAGE}/versions/(?P<version>sha256:[0-9a-f]+)", "get_docker_version"),
        ("GET", rf"/v1/projects/-/serviceAccounts/(?P<email>{_NAME})", "get_service_account"),
    )
)
_NEIGHBOUR_ROUTES = frozenset({"get_docker_tag", "get_docker_version", "get_service_account"})


@dataclass(frozen=True)
class Request:
    """One request as the fake saw it (for tests that count calls or inspect bodies)."""

    method: str
    route: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int


@dataclass
class _Fault:
    times: int
    status: int = 429
    retry_after: str | None = "0"
    after_effect: bool = False
    every: int = 1  # hit one call in ``every`` (1: each of the next ``times`` calls)
    seen: int = 0

    def hits(self) -> bool:
        """Whether this call is one of the faulty ones (and count it)."""
        self.seen += 1
        if self.times <= 0 or self.seen % self.every:
            return False
        self.times -= 1
        return True


@dataclass
class CloudRunFake:
    """The server and its knobs. Use as a context manager, or ``start()`` / ``stop()``."""

    outcome: Outcome = field(default_factory=Outcome.succeed)
    reject_tokens: bool = False  # the token endpoint answers 400 invalid_grant
    deny: bool = False  # API routes answer 403 PERMISSION_DENIED (valid token, no IAM role)
    pending_polls: int = 0  # create/delete operations stay pending for this many operation reads
    requests: list[Request] = field(default_factory=list)
    locations: frozenset[str] | None = None  # Cloud Run locations that exist (None: every one)
    images: set[str] = field(default_factory=set)  # "l-docker.pkg.dev/p/r/img:tag" or "...img@sha256:..."
    service_accounts: set[str] = field(default_factory=set)  # emails IAM knows

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._faults: dict[str, _Fault] = {}
        self._keys: dict[str, Any] = {}  # client_email -> public key
        self._tokens: set[str] = set()
        self.model = RunModel(clock=time.monotonic, default_outcome=lambda: self.outcome)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> CloudRunFake:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="cloud-run-fake",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> CloudRunFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    # -- knobs -------------------------------------------------------------------------------------

    def trust(self, client_email: str, public_key: Any) -> None:
        """Accept JWT assertions signed by this key for this service account."""
        self._keys[client_email] = public_key

    def throttle(
        self, route: str, times: int, *, status: int = 429, retry_after: str | None = "0", every: int = 1
    ) -> None:
        """Answer ``times`` calls of ``route`` (one in ``every``) with ``status``, doing nothing."""
        with self._lock:
            self._faults[route] = _Fault(times, status, retry_after, every=every)

    def fail_after_effect(self, route: str, times: int, *, status: int = 503, every: int = 1) -> None:
        """Do ``times`` calls of ``route`` (one in ``every``), then answer ``status``: ambiguous."""
        with self._lock:
            self._faults[route] = _Fault(times, status, None, after_effect=True, every=every)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def expire_tokens(self) -> None:
        """Forget every access token handed out (as if they expired): the next call answers 401."""
        with self._lock:
            self._tokens.clear()

    def set_outcome(self, execution_name: str, outcome: Outcome) -> None:
        """Change how an existing execution ends (it applies after ``outcome.after`` more reads)."""
        with self._lock:
            execution = self.model.executions[execution_name]
            execution.outcome, execution.reads = outcome, 0

    # -- reading -----------------------------------------------------------------------------------

    def calls(self, route: str, *, status: int | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.route == route and (status is None or r.status == status)]

    def count(self, route: str, *, status: int | None = None) -> int:
        return len(self.calls(route, status=status))

    def jobs(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(j) for j in self.model.jobs.values()]

    def executions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e.body) for e in self.model.executions.values()]

    def execution(self, name: str) -> dict[str, Any]:
        with self._lock:
            return dict(self.model.executions[name].body)

    # -- dispatch (called by the handler, under the lock) -----------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: Any, raw_body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query, keep_blank_values=True)
        body = _decode_body(headers.get("Content-Type", ""), raw_body)
        route, params = _route(method, parts.path)
        with self._lock:
            status, extra, payload = self._answer(route, params, query, headers, body)
            self.requests.append(Request(method, route, parts.path, query, body, status))
        return status, extra, payload

    def _answer(
        self, route: str, params: dict[str, str], query: dict[str, list[str]], headers: Any, body: Any
    ) -> tuple[int, dict[str, str], Any]:
        try:
            if route == "unknown":
                raise HttpError(404, "NOT_FOUND", "no such route")
            if route == "token":
                return 200, {}, self._token(body)
            self._authorize(headers)
            if route in _NEIGHBOUR_ROUTES:
                return 200, {}, self._neighbour(route, params)
            self._check_location(params)
            fault = self._faults.get(route)
            if fault is not None and fault.hits():
                if fault.after_effect:
                    self.model.dispatch(route, params, query, body, pending_polls=self.pending_polls)
                extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                status_name = "RESOURCE_EXHAUSTED" if fault.status == 429 else "UNAVAILABLE"
                return fault.status, extra, _error(fault.status, status_name, "try again later")
            return 200, {}, self.model.dispatch(route, params, query, body, pending_polls=self.pending_polls)
        except HttpError as exc:
            if route == "token":
                return exc.status, {}, {"error": exc.status_name, "error_description": exc.message}
            return exc.status, {}, _error(exc.status, exc.status_name, exc.message)

    def _authorize(self, headers: Any) -> None:
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[len("Bearer ") :] not in self._tokens:
            raise HttpError(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            )
        if self.deny:
            raise HttpError(403, "PERMISSION_DENIED", "Permission 'run.jobs.create' denied on resource.")

    def _check_location(self, params: dict[str, str]) -> None:
        location = params.get("location")
        if self.locations is not None and location is not None and location not in self.locations:
            message = f"Permission denied on 'locations/{location}' (or it may not exist)."
            raise HttpError(403, "PERMISSION_DENIED", message)

    def _neighbour(self, route: str, params: dict[str, str]) -> dict[str, Any]:
        """Artifact Registry tags/versions and IAM service accounts: found, or 404 as those APIs answer."""
        if route == "get_service_account":
            email = unquote(params["email"])
            if email not in self.service_accounts:
                raise HttpError(404, "NOT_FOUND", f"Unknown service account {email}")
            project = email.split("@", 1)[-1].split(".", 1)[0]
            return {
                "name": f"projects/{project}/serviceAccounts/{email}",
                "email": email,
                "projectId": project,
            }
        host = f"{params['location']}-docker.pkg.dev"
        image = f"{host}/{params['project']}/{params['repository']}/{unquote(params['package'])}"
        name = (
            f"projects/{params['project']}/locations/{params['location']}/repositories/{params['repository']}"
        )
        name += f"/packages/{params['package']}"
        if route == "get_docker_tag":
            if f"{image}:{params['tag']}" not in self.images:
                raise HttpError(404, "NOT_FOUND", "Requested entity was not found.")
            return {"name": f"{name}/tags/{params['tag']}", "version": f"{name}/versions/sha256:{'0' * 64}"}
        if f"{image}@{params['version']}" not in self.images:
            raise HttpError(404, "NOT_FOUND", "Requested entity was not found.")
        return {"name": f"{name}/versions/{params['version']}"}

    def _token(self, form: Any) -> dict[str, Any]:
        """The JWT-bearer grant: check the assertion's signature, then hand out an access token."""
        if (
            not isinstance(form, dict)
            or form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer"
        ):
            raise HttpError(400, "unsupported_grant_type", "Invalid grant_type.")
        if self.reject_tokens:
            raise HttpError(400, "invalid_grant", "Invalid JWT Signature.")
        claims = _verify_jwt(str(form.get("assertion", "")), self._keys)
        if claims is None:
            raise HttpError(400, "invalid_grant", "Invalid JWT Signature.")
        token = f"ya29.fake-{uuid.uuid4().hex}"
        self._tokens.add(token)
        return {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}


class _Handler(BaseHTTPRequestHandler):
    fake: CloudRunFake
    protocol_version = "HTTP/1.1"  # keep-alive, as Google's front ends do

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        status, extra, payload = self.fake.handle(self.command, self.path, self.headers, raw)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures, not traffic
        pass


@functools.lru_cache(maxsize=1)
def _private_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def service_account(
    fake: CloudRunFake,
    *,
    project: str = "demo-project",
    email: str = "launcher@demo-project.iam.gserviceaccount.com",
) -> dict[str, str]:
    """A real service account key (RSA, PKCS#8 PEM) the fake trusts, whose ``token_uri`` is the fake."""
    from cryptography.hazmat.primitives import serialization

    key = _private_key()
    fake.trust(email, key.public_key())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": pem,
        "client_email": email,
        "client_id": "112233445566778899000",
        "token_uri": fake.token_uri,
    }


def _route(method: str, path: str) -> tuple[str, dict[str, str]]:
    for route_method, pattern, route in ROUTES:
        match = pattern.match(path)
        if match and route_method == method:
            return route, match.groupdict()
    return "unknown", {}


def _decode_body(content_type: str, raw: bytes) -> Any:
    if not raw:
        return None
    if content_type.startswith("application/x-www-form-urlencoded"):
        return {k: v[0] for k, v in parse_qs(raw.decode()).items()}
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _verify_jwt(assertion: str, keys: dict[str, Any]) -> dict[str, Any] | None:
    """The claims of an RS256 JWT signed by a trusted key, or None."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        header_b64, claims_b64, signature_b64 = assertion.split(".")
        header = json.loads(_b64decode(header_b64))
        claims = json.loads(_b64decode(claims_b64))
        key = keys[claims["iss"]]
        if header.get("alg") != "RS256" or claims.get("exp", 0) < time.time():
            return None
        key.verify(
            _b64decode(signature_b64),
            f"{header_b64}.{claims_b64}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (ValueError, KeyError, InvalidSignature):
        return None
    return claims


def iter_env(execution: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(name, value)`` of every plain env var of an execution's containers (for assertions)."""
    for container in execution.get("template", {}).get("containers", []):
        for var in container.get("env", []):
            if "value" in var:
                yield var["name"], var["value"]
