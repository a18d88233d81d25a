"""The HTTP client on its own, against a small local HTTP server that answers like a busy Prefect server:
429 with Retry-After, 503 while SQLite is locked, 422 echoing the request. No Prefect server needed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from reconciler.errors import StateError
from reconciler.state.prefect.client import (
    PrefectClient,
    RetryPolicy,
    api_url_from,
    auth_headers,
    display_url,
)


class Script:
    """Answers to give, in order, and the requests received."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, str], Any]] = []
        self.received: list[tuple[str, str, dict[str, str]]] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            script.received.append((self.command, self.path, dict(self.headers)))
            status, headers, body = script.answers.pop(0) if script.answers else (200, {}, [])
            data = json.dumps(body).encode()
            self.send_response(status)
            for key, value in {"content-type": "application/json", **headers}.items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _answer

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/api", script
    finally:
        httpd.shutdown()
        httpd.server_close()


FAST = RetryPolicy(attempts=4, base=0.01, cap=2.0)


def test_429_waits_for_retry_after_then_succeeds(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(429, {"retry-after": "0.3"}, {"detail": "slow down"}), (200, {}, {"ok": True})]
    client = PrefectClient(url, environ={}, retry=FAST)
    started = time.monotonic()
    assert client.get("/health").json() == {"ok": True}
    assert time.monotonic() - started >= 0.3
    assert client.requests_made == 2 and client.by_method == {"GET": 2} and client.retried == 1


def test_503_from_sqlite_contention_is_retried(server: tuple[str, Script]) -> None:
    url, script = server
    busy = (503, {}, {"exception_message": "Service Unavailable"})
    script.answers = [busy, busy, (201, {}, {"id": "x"})]
    client = PrefectClient(url, environ={}, retry=FAST)
    assert client.post("/deployments/", {"name": "d"}).status_code == 201
    assert client.by_method == {"POST": 3} and client.retried == 2


def test_errors_carry_the_servers_message_and_never_a_secret(server: tuple[str, Script]) -> None:
    url, script = server
    detail = [{"loc": ["body", "data", "token"], "msg": "bad value hunter2", "input": "hunter2"}]
    script.answers = [(422, {}, {"exception_detail": detail, "request_body": {"token": "hunter2"}})]
    client = PrefectClient(url, environ={}, retry=FAST)
    with pytest.raises(StateError) as error:
        client.post("/block_documents/", {"data": {"token": "hunter2"}}, secrets=["hunter2"])
    message = str(error.value)
    assert "422" in message and "data.token: bad value <redacted>" in message
    assert "hunter2" not in message


def test_exhausted_retries_and_unreachable_servers_are_state_errors(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(503, {}, {})] * 4
    with pytest.raises(StateError, match="503"):
        PrefectClient(url, environ={}, retry=FAST).get("/health")
    with pytest.raises(
        StateError, match=r"cannot reach the Prefect server at prefect\+http://127\.0\.0\.1:9/api"
    ):
        PrefectClient("http://127.0.0.1:9/api", environ={}, retry=FAST).get("/health")


def test_auth_headers_and_urls(server: tuple[str, Script]) -> None:
    url, script = server
    assert auth_headers({"PREFECT_API_KEY": "pnu_x"}) == {"Authorization": "Bearer pnu_x"}
    assert auth_headers({"PREFECT_API_AUTH_STRING": "admin:pass"}) == {
        "Authorization": "Basic YWRtaW46cGFzcw=="
    }
    client = PrefectClient(url, environ={"PREFECT_API_KEY": "pnu_x"}, retry=FAST)
    client.get("/health")
    assert script.received[0][2]["Authorization"] == "Bearer pnu_x"
    assert script.received[0][2]["X-PREFECT-API-VERSION"] == "0.8.4"

    assert api_url_from("prefect+http://h:4200/api", {}) == "http://h:4200/api"
    assert api_url_from("prefect+https://api.prefect.cloud/api/accounts/a/workspaces/w", {}).startswith(
        "https://"
    )
    assert api_url_from("prefect://", {"PREFECT_API_URL": "http://x/api/"}) == "http://x/api"
    with pytest.raises(StateError, match="PREFECT_API_URL"):
        api_url_from("prefect://", {})
    assert display_url("https://user:secret@h/api") == "prefect+https://h/api"
