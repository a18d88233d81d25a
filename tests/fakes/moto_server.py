"""moto in server mode on 127.0.0.1 (an ephemeral port): the ECS, EC2 and CloudWatch Logs stand-in.

The launcher talks to it with the real boto3 clients over HTTP, exactly as it talks to AWS. The
server runs in this process (``moto.server.ThreadedMotoServer``), which lets a test reach what the
wire cannot:

* :meth:`MotoStandIn.set_transition` drives the ``ecs::task`` lifecycle through moto's documented
  state manager (``POST /moto-api/state-manager/set-transition``); set it in every test, the default
  advances one step per describe.
* :attr:`MotoStandIn.script` says what the *next* started tasks do (the container stand-in): the
  lines their awslogs driver writes, their exit code, or a failure to start. moto never runs a
  container and reports ``exitCode 0`` for every one, so the script mutates the task in moto's
  backend (``moto.ecs.models.ecs_backends``) as soon as RunTask creates it.
* :meth:`MotoStandIn.inject` answers chosen requests with an AWS error (throttling, 5xx, expired
  credentials), before moto sees them or, with ``forward=True``, after moto carried them out (a
  lost answer: the task exists but the client only sees the error). :attr:`MotoStandIn.calls` counts
  every request by operation.

Faults and scripts act on requests from any client, a ``reconcile`` subprocess included.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import boto3
import botocore.config
import httpx
import pytest
from moto.ecs.models import ecs_backends
from moto.logs.models import logs_backends
from moto.server import DomainDispatcherApplication, ThreadedMotoServer, create_backend_app
from werkzeug.serving import make_server

ACCOUNT = "123456789012"
REGION = "us-east-1"
TASK_MODEL = "ecs::task"
KEEP_RUNNING = {"progression": "manual", "times": 10**9}
STEP_PER_DESCRIBE = {"progression": "manual", "times": 1}

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


@dataclass
class Fault:
    """Answer the next ``times`` requests for ``operation`` (``"*"``: any) with an AWS error.

    With ``every`` = N only each Nth matching request fails (``times`` then counts the failures).
    """

    operation: str
    times: int
    code: str = "ThrottlingException"
    message: str = "Rate exceeded"
    status: int = 400
    forward: bool = False  # let moto carry the request out first, then answer the error
    retry_after: str | None = None
    every: int = 1
    seen: int = 0

    def fires(self, operation: str) -> bool:
        """Whether this request fails (called under the state lock)."""
        if self.times <= 0 or self.operation not in (operation, "*"):
            return False
        self.seen += 1
        if self.seen % self.every:
            return False
        self.times -= 1
        return True


@dataclass
class TaskScript:
    """What tasks started from now on do. ``stop`` ends them at once (after the script is applied)."""

    output: tuple[str, ...] = ()
    exit_code: int | None = 0
    stop: bool = False
    stop_code: str | None = None
    stopped_reason: str = ""
    container_reason: str = ""
    last_status: str | None = None  # e.g. "PROVISIONING": stuck before start


@dataclass
class _State:
    faults: list[Fault] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    script: TaskScript = field(default_factory=TaskScript)
    started: list[tuple[str, str]] = field(default_factory=list)  # (cluster, task ARN), in order
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Middleware:
    """WSGI wrapper around moto's app: counts operations, injects faults, applies task scripts."""

    def __init__(self, app: Callable[[Environ, StartResponse], Iterable[bytes]], state: _State) -> None:
        self.app, self.state = app, state

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        operation, json_protocol = _operation(environ)
        if not operation:
            return self.app(environ, start_response)
        with self.state.lock:
            self.state.calls[operation] += 1
            fault = next((f for f in self.state.faults if f.fires(operation)), None)
        if fault is None and operation == "ListTasks":
            fault = _list_tasks_rule(environ)  # a rule AWS documents and moto does not enforce
        if fault is not None and not fault.forward:
            return _error(start_response, fault, json_protocol)
        if operation != "RunTask" and fault is None:
            return self.app(environ, start_response)
        captured: dict[str, Any] = {}

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        result = self.app(environ, capture)
        try:
            body = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
        if operation == "RunTask" and captured["status"].startswith("200"):
            self._started(json.loads(body))
        if fault is not None:
            return _error(start_response, fault, json_protocol)
        start_response(captured["status"], captured["headers"])
        return [body]

    def _started(self, response: dict[str, Any]) -> None:
        for task in response.get("tasks") or []:
            cluster = task["clusterArn"].rsplit("/", 1)[-1]
            with self.state.lock:
                self.state.started.append((cluster, task["taskArn"]))
                script = self.state.script
            _apply(script, cluster, task["taskArn"])


def _operation(environ: Environ) -> tuple[str, bool]:
    """The API operation of a request: ``X-Amz-Target`` (JSON protocols) or ``Action=`` (EC2 query)."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1], True
    if environ.get("PATH_INFO", "/").startswith("/moto-api"):
        return "", False
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    action = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
    return action, False


def _list_tasks_rule(environ: Environ) -> Fault | None:
    """ECS ListTasks: "When you specify startedBy as the filter, it must be the only filter that you
    use" (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html). moto ignores
    the rule; real ECS may refuse the request, so the stand-in refuses it as AWS's error would."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    request = json.loads(body or b"{}")
    others = {"containerInstance", "family", "serviceName", "desiredStatus", "launchType"} & set(request)
    if request.get("startedBy") and others:
        message = f"startedBy must be the only filter (also given: {', '.join(sorted(others))})"
        return Fault("ListTasks", 1, code="InvalidParameterException", message=message)
    return None


def _error(start_response: StartResponse, fault: Fault, json_protocol: bool) -> list[bytes]:
    if json_protocol:
        body = json.dumps({"__type": fault.code, "message": fault.message}).encode()
        content_type = "application/x-amz-json-1.1"
    else:
        body = (
            f"<Response><Errors><Error><Code>{fault.code}</Code><Message>{fault.message}</Message></Error>"
            "</Errors><RequestID>fault</RequestID></Response>"
        ).encode()
        content_type = "text/xml"
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    if fault.retry_after is not None:
        headers.append(("Retry-After", fault.retry_after))
    start_response(f"{fault.status} Injected", headers)
    return [body]


def _apply(script: TaskScript, cluster: str, task_arn: str) -> None:
    """Make a moto task behave as scripted (runs in the server thread, inside RunTask)."""
    backend = ecs_backends[ACCOUNT][REGION]
    task = backend.tasks[cluster][task_arn]
    container = task.containers[0]
    container.exitCode = script.exit_code
    if script.container_reason:
        container.reason = script.container_reason
    if script.output:
        definition = backend.describe_task_definition(task.task_definition_arn)
        for spec in definition.container_definitions:
            options = (spec.get("logConfiguration") or {}).get("options") or {}
            if (spec.get("logConfiguration") or {}).get("logDriver") == "awslogs":
                stream = f"{options['awslogs-stream-prefix']}/{spec['name']}/{task_arn.rsplit('/', 1)[-1]}"
                put_log_lines(options["awslogs-group"], stream, script.output)
    if script.last_status:
        task.last_status = script.last_status
    if script.stop:
        task.last_status = "STOPPED"
        task.desired_status = "STOPPED"
        task.stop_code = script.stop_code
        task.stopped_reason = script.stopped_reason
        container.last_status = "STOPPED"


def put_log_lines(group: str, stream: str, lines: Iterable[str]) -> None:
    """Write lines to a CloudWatch Logs stream in moto, as the awslogs driver would."""
    logs = logs_backends[ACCOUNT][REGION]
    if group not in logs.groups:
        logs.create_log_group(group, {})
    if stream not in logs.groups[group].streams:
        logs.create_log_stream(group, stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        group, stream, [{"timestamp": now + i, "message": line} for i, line in enumerate(lines)]
    )


class _Server(ThreadedMotoServer):
    """ThreadedMotoServer whose WSGI app is wrapped by :class:`_Middleware`."""

    def __init__(self, state: _State) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self._state = state

    def _server_entry(self) -> None:
        app = _Middleware(DomainDispatcherApplication(create_backend_app), self._state)
        self._server = make_server(self._ip_address, self._port, app, True)
        self._server_ready_event.set()
        self._server.serve_forever()


class MotoStandIn:
    """A running moto server and the handles tests steer it with."""

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request lines on stderr
        self._state = _State()
        self._server = _Server(self._state)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.stop()

    # -- steering -----------------------------------------------------------------------------------

    def set_transition(self, transition: dict[str, Any]) -> None:
        """moto's documented state manager for ``ecs::task`` (KEEP_RUNNING, STEP_PER_DESCRIBE, ...)."""
        response = httpx.post(
            f"{self.url}/moto-api/state-manager/set-transition",
            json={"model_name": TASK_MODEL, "transition": transition},
        )
        assert response.status_code == 201, response.text

    def inject(self, fault: Fault) -> Fault:
        with self._state.lock:
            self._state.faults.append(fault)
        return fault

    @property
    def calls(self) -> Counter[str]:
        return self._state.calls

    @property
    def started(self) -> list[tuple[str, str]]:
        """Every task RunTask created, in order (also those whose answer a fault replaced)."""
        return list(self._state.started)

    @property
    def script(self) -> TaskScript:
        return self._state.script

    @script.setter
    def script(self, value: TaskScript) -> None:
        with self._state.lock:
            self._state.script = value

    def reset_steering(self) -> None:
        """No faults, no script, counters at zero (the backends keep their data)."""
        with self._state.lock:
            self._state.faults.clear()
            self._state.calls.clear()
            self._state.started.clear()
            self._state.script = TaskScript()

    # -- reaching into moto -----------------------------------------------------------------------------

    def task(self, cluster: str, task_arn: str) -> Any:
        """moto's Task model: set ``last_status``, ``stop_code``, ``containers[0].exitCode``..."""
        return ecs_backends[ACCOUNT][REGION].tasks[cluster][task_arn]

    def finish(self, cluster: str, task_arn: str, *, exit_code: int | None, reason: str = "") -> None:
        """End a running task as if its container exited with ``exit_code``."""
        _apply(TaskScript(exit_code=exit_code, stop=True, stopped_reason=reason), cluster, task_arn)

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=botocore.config.Config(retries={"total_max_attempts": 1}),
        )

    def create_cluster(self, name: str) -> str:
        return str(self.client("ecs").create_cluster(clusterName=name)["cluster"]["clusterArn"])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoStandIn]:
    """One moto server for the test session, stopped at its end."""
    stand_in = MotoStandIn()
    try:
        yield stand_in
    finally:
        stand_in.stop()


@pytest.fixture
def moto(moto_server: MotoStandIn) -> Iterator[MotoStandIn]:
    """The session's moto server with clean steering; tasks keep RUNNING unless the test says so."""
    moto_server.reset_steering()
    moto_server.set_transition(KEEP_RUNNING)
    yield moto_server
    moto_server.reset_steering()
