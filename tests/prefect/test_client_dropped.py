"""A connection that closes under a request (a Prefect server closes one after each 503 it answers):
an idempotent request is sent again, any other fails as before (it may have been applied)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from reconciler.errors import StateError
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
