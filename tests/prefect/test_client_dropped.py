"""A connection that closes under a request (a Prefect server closes one after each 503 it answers):
an idempotent request is sent again, any other fails as before (it may have been applied)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from reconciler.errors import StateError
from reconciler.state import LockInfo
from reconciler.state.prefect import lock
from reconciler.state.prefect.client import PrefectClient, RetryPolicy

FAST = RetryPolicy(attempts=4, base=0.01, cap=0.1)


class Dropper:
    """Closes the connection without an answer for the first ``drops`` requests, then answers 200."""

    def __init__(self) -> None:
        self.drops = 0
        self.received: list[tuple[str, str]] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Dropper]]:
    dropper = Dropper()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            dropper.received.append((self.command, self.path))
            if dropper.drops > 0:
                dropper.drops -= 1
                self.close_connection = True  # gone without a word, as after a 503
                return
            data = json.dumps({"id": "x"}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _answer

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/api", dropper
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_read_is_sent_again_after_a_dropped_connection(server: tuple[str, Dropper]) -> None:
    url, dropper = server
    dropper.drops = 2
    client = PrefectClient(url, environ={}, retry=FAST)
    assert client.get("/work_pools/p").json() == {"id": "x"}
    dropper.drops = 1
    assert client.post("/deployments/filter", {}).json() == {"id": "x"}
    assert len(dropper.received) == 5


def test_an_idempotent_write_is_sent_again(server: tuple[str, Dropper]) -> None:
    url, dropper = server
    dropper.drops = 1
    client = PrefectClient(url, environ={}, retry=FAST)
    assert client.post("/deployments/", {"name": "d"}, idempotent=True).status_code == 200
    assert dropper.received == [("POST", "/api/deployments/")] * 2


def test_a_create_that_lost_its_answer_is_sent_again(server: tuple[str, Dropper]) -> None:
    # a repeat of a create that landed answers 409, which every caller of create() reads as "exists"
    url, dropper = server
    dropper.drops = 1
    client = PrefectClient(url, environ={}, retry=FAST)
    assert client.create("/work_pools/", {"name": "p"}).status_code == 200
    assert dropper.received == [("POST", "/api/work_pools/")] * 2


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_patch_and_delete_are_sent_again(server: tuple[str, Dropper], method: str) -> None:
    url, dropper = server
    dropper.drops = 1
    client = PrefectClient(url, environ={}, retry=FAST)
    assert client.request(method, "/variables/name/v", json={"value": 1}).status_code == 200
    assert dropper.received == [(method, "/api/variables/name/v")] * 2


def test_any_other_write_that_lost_its_answer_is_never_repeated(server: tuple[str, Dropper]) -> None:
    url, dropper = server
    dropper.drops = 1
    client = PrefectClient(url, environ={}, retry=FAST)
    with pytest.raises(StateError, match=r"POST /variables/ on the Prefect server at .* failed: \w+Error"):
        client.post("/variables/", {"name": "v", "value": 1})
    assert dropper.received == [("POST", "/api/variables/")]


def test_a_read_dropped_every_time_fails_with_the_same_message(server: tuple[str, Dropper]) -> None:
    url, dropper = server
    dropper.drops = 10
    client = PrefectClient(url, environ={}, retry=FAST)
    with pytest.raises(StateError, match=r"GET /health on the Prefect server at .* failed: \w+Error"):
        client.get("/health")
    assert len(dropper.received) == FAST.attempts


def test_a_lock_whose_create_lost_its_answer_is_held_not_waited_for() -> None:
    """The lease's create lands but its answer is lost; the repeat answers 409 and the variable holds
    our own token: we hold the lock (waiting would wait for ourselves until the timeout)."""
    variables: dict[str, dict[str, Any]] = {}
    lost = [True]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
            if body["name"] in variables:
                return self._send(409, {"detail": "exists"})
            variables[body["name"]] = {"id": "v1", "name": body["name"], "value": body["value"]}
            if lost[0]:
                lost[0] = False
                self.close_connection = True  # created, but the answer never leaves
                return None
            return self._send(201, variables[body["name"]])

        def do_GET(self) -> None:
            name = self.path.rsplit("/", 1)[-1]
            self._send(200, variables[name]) if name in variables else self._send(404, {})

        def do_PATCH(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self._send(200, {})

        def do_DELETE(self) -> None:
            variables.clear()
            self._send(204, {})

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        client = PrefectClient(f"http://127.0.0.1:{httpd.server_address[1]}/api", environ={}, retry=FAST)
        info = LockInfo(holder="me@here", pid=os.getpid(), host=socket.gethostname())
        started = time.monotonic()
        held = lock.acquire(client, name="reconcile-lock", info=info, timeout=5, policy=lock.DEFAULT_POLICY)
        assert time.monotonic() - started < 2
        held.release()
        assert variables == {}
    finally:
        httpd.shutdown()
        httpd.server_close()
