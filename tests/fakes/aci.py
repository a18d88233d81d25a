"""A local stand-in for Azure: Entra ID's token endpoint and ARM's ``Microsoft.ContainerInstance`` API.

One threaded HTTPS server on 127.0.0.1 (ephemeral port) plays both roles, as a sovereign cloud's
authority and Resource Manager would; the identity half lives in :mod:`tests.fakes.aci_identity`,
the container groups' lifecycle in :mod:`tests.fakes.aci_groups`. ARM routes, as the SDK calls them:

* every ARM request needs ``api-version`` (else 400 ``MissingApiVersionParameter``) and a bearer
  token the fake issued (else 401 ``InvalidAuthenticationToken``);
* ``GET /subscriptions/{s}/resourcegroups/{rg}``: the resource group (its location);
* under ``.../providers/Microsoft.ContainerInstance/containerGroups``: ``PUT /{name}`` (201 create /
  200 update, ``provisioningState: Creating`` and an ``Azure-AsyncOperation`` header), ``GET /{name}``,
  ``DELETE /{name}`` (202 + ``Azure-AsyncOperation``), ``GET`` (list), ``POST /{name}/stop`` (204),
  ``GET /{name}/containers/{c}/logs`` (``{"content": ...}``); 404 bodies are ``ResourceNotFound``;
* ``GET /subscriptions/{s}/providers/Microsoft.ContainerInstance/locations/{loc}/operations/{id}``:
  ``InProgress`` on the first poll, then ``Succeeded`` (``Failed`` if the group failed to start).
* ``GET .../providers/Microsoft.Network/virtualNetworks/{vnet}/subnets/{subnet}`` (read by preflight):
  the subnets in :attr:`AciFake.subnets` with their delegations, else 404 ``NotFound``.
* Azure Container Registry's data plane (read by preflight, :mod:`tests.fakes.aci_registry`): the
  token exchange and manifest reads of the images in ``AciFake.acr.images``.

Tests steer it: :attr:`AciFake.outcome` scripts new groups, :meth:`AciFake.execute` runs containers
for real, :meth:`AciFake.inject` answers chosen requests with an error (429 with ``Retry-After``, a
500 after the write took effect, ...), and :attr:`AciFake.requests` logs every call by route name.
"""

from __future__ import annotations

import contextlib
import json
import re
import ssl
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.aci_groups import Group, LocalExecutor, Outcome, invalid_group
from tests.fakes.aci_identity import Answer, EntraStandIn, self_signed
from tests.fakes.aci_registry import AcrStandIn

__all__ = ["AciFake", "Fault", "Outcome", "Seen"]

PROVIDER = "Microsoft.ContainerInstance"
API_VERSION = "2023-05-01"
_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_RG = _SUB + r"/resourcegroups/(?P<rg>[^/]+)"
_CG = _RG + rf"/providers/{PROVIDER}/containergroups"
_OP = _SUB + rf"/providers/{PROVIDER}/locations/(?P<loc>[^/]+)/operations/(?P<op>[^/]+)"
_SUBNET = _RG + r"/providers/Microsoft\.Network/virtualNetworks/(?P<vnet>[^/]+)/subnets/(?P<subnet>[^/]+)"
ROUTES: tuple[tuple[str, str, re.Pattern[str]], ...] = tuple(
    (method, name, re.compile(pattern + "$", re.IGNORECASE))
    for method, name, pattern in (
        ("GET", "openid", r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration"),
        ("GET", "instance_discovery", r"/common/discovery/instance"),
        ("POST", "token", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token"),
        ("GET", "operation_status", _OP),
        ("GET", "resource_group", _RG),
        ("GET", "list_groups", _CG),
        ("PUT", "put_group", _CG + r"/(?P<name>[^/]+)"),
        ("GET", "get_group", _CG + r"/(?P<name>[^/]+)"),
        ("DELETE", "delete_group", _CG + r"/(?P<name>[^/]+)"),
        ("POST", "stop_group", _CG + r"/(?P<name>[^/]+)/stop"),
        ("GET", "logs", _CG + r"/(?P<name>[^/]+)/containers/(?P<container>[^/]+)/logs"),
        ("GET", "get_subnet", _SUBNET),
        ("POST", "acr_exchange", r"/oauth2/exchange"),
        ("POST", "acr_token", r"/oauth2/token"),
        ("GET", "acr_manifest", r"/v2/(?P<repo>.+?)/manifests/(?P<ref>[^/]+)"),
    )
)
_IDENTITY_ROUTES = frozenset({"openid", "instance_discovery", "token"})
_REGISTRY_ROUTES = frozenset({"acr_exchange", "acr_token", "acr_manifest"})


@dataclass(frozen=True)
class Seen:
    """One request the fake answered."""

    method: str
    path: str
    query: Mapping[str, str]
    status: int
    route: str
    body: bytes = b""  # what the client sent (PUT bodies: the container group)


@dataclass
class Fault:
    """Answer the next ``times`` matching requests with an error instead of (or after) serving them."""

    method: str
    route: str  # a route name from ROUTES, e.g. "put_group"
    status: int
    times: int = 1
    retry_after: float | None = None
    code: str = ""
    message: str = ""
    after: bool = False  # serve the request first (the write happens), then answer the error
    every: int = 1  # fire on every n-th matching request only
    seen: int = 0


@dataclass
class _Operation:
    group: Group
    kind: str  # "create" | "delete"
    polls: int = 0


@dataclass
class AciFake:
    """The fake's state and controls; :meth:`start` serves it, :meth:`running` as a context manager."""

    workdir: Path
    subscription_id: str = "11111111-2222-3333-4444-555555555555"
    tenant_id: str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    client_id: str = "0f0f0f0f-1111-2222-3333-444444444444"
    client_secret: str = "fake-client-secret"
    resource_groups: dict[str, str] = field(default_factory=lambda: {"rg-flows": "westeurope"})
    outcome: Outcome = field(default_factory=Outcome)  # how groups created from now on behave
    requests: list[Seen] = field(default_factory=list)
    groups: dict[str, Group] = field(default_factory=dict)  # by lower-cased resource id
    faults: list[Fault] = field(default_factory=list)
    # lower-cased subnet resource id -> the services it is delegated to (ACI needs its own)
    subnets: dict[str, list[str]] = field(default_factory=dict)
    executor: LocalExecutor | None = None
    created_groups: list[Group] = field(default_factory=list)  # every group ever created, deleted too
    cert_path: Path | None = None
    entra: EntraStandIn = field(init=False)
    acr: AcrStandIn = field(init=False)
    _operations: dict[str, _Operation] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _server: ThreadingHTTPServer | None = None

    def __post_init__(self) -> None:
        self.entra = EntraStandIn(
            tenant_id=self.tenant_id, client_id=self.client_id, client_secret=self.client_secret
        )
        self.acr = AcrStandIn(self.entra)

    # -- controls --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def created(self) -> int:
        """How many PUTs created a group (a PUT on an existing name is an update, not counted)."""
        return len(self.created_groups)

    @property
    def token_requests(self) -> list[Mapping[str, str]]:
        return self.entra.requests

    def inject(self, method: str, route: str, status: int, **options: Any) -> Fault:
        fault = Fault(method=method, route=route, status=status, **options)
        with self._lock:
            self.faults.append(fault)
        return fault

    def execute(self, workdir: Path, *, extra_env: Mapping[str, str] | None = None) -> None:
        """From now on, run each new group's container as a local process in ``workdir``."""
        self.executor = LocalExecutor(workdir=workdir, extra_env=dict(extra_env or {}))

    def revoke_tokens(self) -> None:
        """ARM stops accepting every token issued so far (expired, wrong audience, ...)."""
        self.entra.revoke()

    def count(self, method: str, route: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.method == method and r.route == route)

    def group(self, name: str) -> Group:
        with self._lock:
            matches = [g for g in self.groups.values() if g.name == name]
        assert matches, f"no container group {name!r} (have {[g.name for g in self.groups.values()]})"
        return matches[0]

    # -- server ----------------------------------------------------------------------------------

    def start(self) -> AciFake:
        self.cert_path, key_path = self_signed(self.workdir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, key_path)
        owner = self

        class Handler(_Handler):
            fake = owner

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for group in self.created_groups:
            group.kill()

    @classmethod
    @contextlib.contextmanager
    def running(cls, workdir: Path, **options: Any) -> Iterator[AciFake]:
        fake = cls(workdir=workdir, **options).start()
        try:
            yield fake
        finally:
            fake.stop()

    # -- request handling (called from the handler threads) --------------------------------------

    def handle(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any] | None, str]:
        """Route one request; returns ``(status, headers, JSON body or None, route name)``."""
        route, params = _route(method, path)
        if route is None:
            return 404, {}, _error("NotFound", f"no route for {method} {path}"), "unknown"
        if route in _IDENTITY_ROUTES:
            return (*self._identity(route, params, body), route)
        if route in _REGISTRY_ROUTES:
            return (*self._registry(route, params, headers, body), route)
        if "api-version" not in query:
            message = "The api-version query parameter (?api-version=) is required for all requests."
            return 400, {}, _error("MissingApiVersionParameter", message), route
        if not self.entra.accepts(headers.get("authorization", "")):
            challenge = {"WWW-Authenticate": f'Bearer authorization_uri="{self.url}", error="invalid_token"'}
            return 401, challenge, _error("InvalidAuthenticationToken", "The access token is invalid."), route
        fault = self._fault(method, route, before=True)
        if fault is not None:
            return (*_fault_answer(fault), route)
        answer = getattr(self, "_" + route)(params, query, body)
        fault = self._fault(method, route, before=False)
        if fault is not None:
            return (*_fault_answer(fault), route)
        return (*answer, route)

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def _identity(self, route: str, params: Mapping[str, str], body: bytes) -> Answer:
        if route == "openid":
            return self.entra.openid_configuration(self.url, params["tenant"])
        if route == "instance_discovery":
            return self.entra.instance_discovery(self.url)
        return self.entra.token(body)

    def _registry(
        self, route: str, params: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> Answer:
        if route == "acr_exchange":
            return self.acr.exchange(body)
        if route == "acr_token":
            return self.acr.token(body)
        return self.acr.manifest(params, headers)

    def _fault(self, method: str, route: str, *, before: bool) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                matches = fault.method == method and fault.route == route and fault.after != before
                if fault.times > 0 and matches:
                    fault.seen += 1
                    if fault.seen % fault.every == 0:
                        fault.times -= 1
                        return fault
        return None

    # ARM routes: (params, query, body) -> Answer -------------------------------------------------

    def _resource_group(self, p: Mapping[str, str], q: Mapping[str, str], body: bytes) -> Answer:
        missing = self._missing_scope(p)
        if missing:
            return missing
        doc = {
            "id": f"/subscriptions/{p['sub']}/resourceGroups/{p['rg']}",
            "name": p["rg"],
            "type": "Microsoft.Resources/resourceGroups",
            "location": self._location_of(p["rg"]),
            "properties": {"provisioningState": "Succeeded"},
        }
        return 200, {}, doc

    def _list_groups(self, p: Mapping[str, str], q: Mapping[str, str], body: bytes) -> Answer:
        missing = self._missing_scope(p)
        if missing:
            return missing
        prefix = _resource_id(p["sub"], p["rg"], "").lower()
        with self._lock:
            groups = [g for key, g in self.groups.items() if key.startswith(prefix)]
        return 200, {}, {"value": [g.view(instance_view=False) for g in groups]}

    def _put_group(self, p: Mapping[str, str], q: Mapping[str, str], body: bytes) -> Answer:
        missing = self._missing_scope(p)
        if missing:
            return missing
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            message = "The request content was invalid and could not be deserialized."
            return 400, {}, _error("InvalidRequestContent", message)
        problem = invalid_group(p["name"], doc)
        if problem:
            return 400, {}, _error(*problem)
        resource_id = _resource_id(p["sub"], p["rg"], p["name"])
        with self._lock:
            group = self.groups.get(resource_id.lower())
            if group is not None:
                group.update(doc)
                status = 200
            else:
                group = Group(
                    resource_id=resource_id,
                    name=p["name"],
                    body=doc,
                    outcome=self.outcome,
                    executor=self.executor,
                )
                self.groups[resource_id.lower()] = group
                self.created_groups.append(group)
                status = 201
        view = group.view(instance_view=False)
        view["properties"]["provisioningState"] = "Creating" if status == 201 else "Updating"
        return status, self._start_operation(p["sub"], group, "create"), view

    def _get_group(self, p: Mapping[str, str], q: Mapping[str, str], body: bytes) -> Answer:
        group = self._find(p)
        if not isinstance(group, Group):
            return group
        group.advance()
        return 200, {}, group.view()

    def _delete_group(self, p: Mapping[str, str], q: Mapping[str, str], body: bytes) -> Answer:
        group = self._find(p)
        if not isinstance(group, Group):
            return 204, {}, None  # ARM: deleting what is not there succeeds
        with self._lock:
            self.groups.pop(group.resource_id.lower(), None)
        group.kill()
        return 202, self._start_operation(p["sub"], group, "delete"), None

    def _stop_group(self, p: Mapping[str, str], q: Mapping[str, str], body: bytes) -> Answer:
        group = self._find(p)
        if not isinstance(group, Group):
            return group
        group.stop()
        return 204, {}, None

    def _logs(self, p: Mapping[str, str], q: Mapping[str, str], body: bytes) -> Answer:
        group = self._find(p)
        if not isinstance(group, Group):
            return group
        if p["container"] not in [c["name"] for c in group.body["properties"]["containers"]]:
            message = f"Container '{p['container']}' not found in container group '{group.name}'."
            return 404, {}, _error("ContainerNotFound", message)
        content = group.logs()
        if q.get("tail"):
            content = "".join(content.splitlines(keepends=True)[-int(q["tail"]) :])
        return 200, {}, {"content": content}

    def _get_subnet(self, p: Mapping[str, str], q: Mapping[str, str], body: bytes) -> Answer:
        missing = self._missing_scope(p)
        if missing:
            return missing
        subnet_id = (
            f"/subscriptions/{p['sub']}/resourceGroups/{p['rg']}/providers/Microsoft.Network"
            f"/virtualNetworks/{p['vnet']}/subnets/{p['subnet']}"
        )
        services = self.subnets.get(subnet_id.lower())
        if services is None:
            return 404, {}, _error("NotFound", f"Resource {subnet_id} not found.")
        delegations = [
            {"name": f"d{i}", "properties": {"serviceName": name}} for i, name in enumerate(services)
        ]
        doc = {"id": subnet_id, "name": p["subnet"], "properties": {"delegations": delegations}}
        return 200, {}, doc

    def _operation_status(self, p: Mapping[str, str], q: Mapping[str, str], body: bytes) -> Answer:
        with self._lock:
            op = self._operations.get(p["op"])
        if op is None:
            return 404, {}, _error("OperationNotFound", f"Operation {p['op']} was not found.")
        op.polls += 1
        op_path = f"/subscriptions/{p['sub']}/providers/{PROVIDER}/locations/{p['loc']}/operations/{p['op']}"
        doc: dict[str, Any] = {"id": op_path, "name": p["op"], "startTime": _now()}
        in_progress = 200, {"Retry-After": "0"}, {**doc, "status": "InProgress"}
        if op.kind == "delete":
            return (
                in_progress if op.polls == 1 else (200, {}, {**doc, "status": "Succeeded", "endTime": _now()})
            )
        phase = op.group.phase()[0]
        if phase == "waiting":  # provisioning goes on while the operation is polled
            op.group.advance()
            return in_progress
        if phase == "failed":
            message = op.group.outcome.start_failure or "The container group failed to start."
            error = {"code": "ContainerGroupProvisioningFailed", "message": message}
            return 200, {}, {**doc, "status": "Failed", "error": error}
        return 200, {}, {**doc, "status": "Succeeded", "endTime": _now()}

    # helpers -------------------------------------------------------------------------------------

    def _start_operation(self, sub: str, group: Group, kind: str) -> dict[str, str]:
        op_id = str(uuid.uuid4())
        with self._lock:
            self._operations[op_id] = _Operation(group=group, kind=kind)
        path = f"/subscriptions/{sub}/providers/{PROVIDER}/locations/{group.location}/operations/{op_id}"
        return {"Azure-AsyncOperation": f"{self.url}{path}?api-version={API_VERSION}", "Retry-After": "0"}

    def _missing_scope(self, p: Mapping[str, str]) -> Answer | None:
        if p["sub"] != self.subscription_id:
            return (
                404,
                {},
                _error("SubscriptionNotFound", f"The subscription '{p['sub']}' could not be found."),
            )
        if "rg" in p and self._location_of(p["rg"]) is None:
            return 404, {}, _error("ResourceGroupNotFound", f"Resource group '{p['rg']}' could not be found.")
        return None

    def _location_of(self, rg: str) -> str | None:
        for name, location in self.resource_groups.items():
            if name.lower() == rg.lower():
                return location
        return None

    def _find(self, p: Mapping[str, str]) -> Group | Answer:
        missing = self._missing_scope(p)
        if missing:
            return missing
        with self._lock:
            group = self.groups.get(_resource_id(p["sub"], p["rg"], p["name"]).lower())
        if group is None:
            message = (
                f"The Resource '{PROVIDER}/containerGroups/{p['name']}' under resource group '{p['rg']}' "
                "was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            )
            return 404, {}, _error("ResourceNotFound", message)
        return group


class _Handler(BaseHTTPRequestHandler):
    fake: AciFake
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is :attr:`AciFake.requests`."""

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, extra, doc, route = self.fake.handle(self.command, parts.path, query, headers, body)
        except Exception as exc:  # a bug in the fake: answer 500 so the test sees it
            status, extra, doc, route = 500, {}, _error("FakeCrashed", repr(exc)), "error"
        payload = b"" if doc is None else json.dumps(doc).encode()
        # recorded before the answer leaves: a test that reads the log right after its call returns
        # must find that call in it
        self.fake.record(Seen(self.command, parts.path, query, status, route, body))
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = _serve


def _route(method: str, path: str) -> tuple[str | None, dict[str, str]]:
    for route_method, name, pattern in ROUTES:
        match = pattern.match(path)
        if match and route_method == method:
            return name, match.groupdict()
    return None, {}


def _resource_id(sub: str, rg: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{PROVIDER}/containerGroups/{name}"


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _fault_answer(fault: Fault) -> Answer:
    headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
    codes = {429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}
    throttled = "The request is being throttled as the limit has been reached for operation type - Write."
    message = fault.message or (throttled if fault.status == 429 else f"injected {fault.status}")
    return fault.status, headers, _error(fault.code or codes.get(fault.status, "Error"), message)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
