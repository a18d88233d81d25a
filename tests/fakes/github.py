"""A local fake of the GitHub REST API, enough for the Action: issue comments and pull request files.

Tokens act as accounts, as on GitHub: ``token`` is an installation token (the workflow's
``GITHUB_TOKEN``: it writes as ``github-actions[bot]`` and ``GET /user`` refuses it with 403), and
``users`` maps personal tokens to their logins. A comment is authored by the token that posted it,
and editing a comment someone else wrote is refused with 403, as GitHub refuses it.

It speaks the real wire protocol the client relies on: JSON bodies, ``Authorization: Bearer``,
``Link`` pagination (``per_page`` capped like GitHub's 100, or lower to force several pages),
422 for a comment body over 65,536 characters, and optional secondary rate limits (403 with
``Retry-After`` and GitHub's message) injected for the next N requests. Every request is logged with
its method, path, query, headers and body, so a test can check what reached "GitHub".

Runs in a thread of the test process on 127.0.0.1; ``stop()`` (or the context manager) shuts it down.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

MAX_BODY = 65_536
ACTIONS_BOT = "github-actions[bot]"


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: str


@dataclass
class Comment:
    id: int
    issue: int
    body: str
    user: str = "github-actions[bot]"


@dataclass
class FakeGitHub:
    """State of the fake: comments by id, files per pull request, the request log."""

    token: str = "ghs_fake_token_for_tests"
    users: dict[str, str] = field(default_factory=dict)  # personal token -> login
    max_per_page: int = 100
    comments: dict[int, Comment] = field(default_factory=dict)
    pull_files: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[LoggedRequest] = field(default_factory=list)
    rate_limit_next: int = 0  # answer this many next requests with a secondary rate limit
    rate_limit_retry_after: str = "1"
    _next_id: int = 1000
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeGitHub:
        fake = self

        class Handler(_Handler):
            github = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), name="fake-github", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- seeding and reading -----------------------------------------------------------------------

    def add_comment(self, issue: int, body: str, user: str = "someone") -> Comment:
        with self._lock:
            self._next_id += 1
            comment = Comment(self._next_id, issue, body, user)
            self.comments[comment.id] = comment
            return comment

    def comments_on(self, issue: int) -> list[Comment]:
        return sorted((c for c in self.comments.values() if c.issue == issue), key=lambda c: c.id)

    def writes(self) -> list[LoggedRequest]:
        return [r for r in self.requests if r.method in ("POST", "PATCH")]

    def login_of(self, authorization: str | None) -> str | None:
        """The account a request's ``Authorization: Bearer`` header acts as (None: bad credentials)."""
        token = (authorization or "").removeprefix("Bearer ")
        if token == self.token:
            return ACTIONS_BOT
        return self.users.get(token)


_COMMENTS = re.compile(r"^/repos/([^/]+/[^/]+)/issues/(\d+)/comments$")
_COMMENT = re.compile(r"^/repos/([^/]+/[^/]+)/issues/comments/(\d+)$")
_PULL_FILES = re.compile(r"^/repos/([^/]+/[^/]+)/pulls/(\d+)/files$")


class _Handler(BaseHTTPRequestHandler):
    github: FakeGitHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        fake = self.github
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8") if length else ""
        query = parse_qs(parts.query)
        with fake._lock:
            fake.requests.append(LoggedRequest(method, parts.path, query, dict(self.headers.items()), body))
            limited = fake.rate_limit_next > 0
            if limited:
                fake.rate_limit_next -= 1
        login = fake.login_of(self.headers.get("Authorization"))
        if login is None:
            return self._send(401, {"message": "Bad credentials"})
        if limited:
            message = (
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
            )
            return self._send(403, {"message": message}, {"Retry-After": fake.rate_limit_retry_after})
        if parts.path == "/user" and method == "GET":
            if login == ACTIONS_BOT:  # installation tokens have no user
                return self._send(403, {"message": "Resource not accessible by integration"})
            return self._send(200, {"login": login, "id": 7, "type": "User"})
        if (m := _COMMENTS.match(parts.path)) and method == "GET":
            return self._list(
                parts.path, query, [_comment_json(c) for c in fake.comments_on(int(m.group(2)))]
            )
        if (m := _COMMENTS.match(parts.path)) and method == "POST":
            text = self._body_text(body)
            if text is None:
                return None
            comment = fake.add_comment(int(m.group(2)), text, user=login)
            return self._send(201, _comment_json(comment))
        if (m := _COMMENT.match(parts.path)) and method == "PATCH":
            comment = fake.comments.get(int(m.group(2)))
            if comment is None:
                return self._send(404, {"message": "Not Found"})
            if comment.user != login:  # GitHub refuses edits of another account's comment
                return self._send(403, {"message": "Resource not accessible by integration"})
            text = self._body_text(body)
            if text is None:
                return None
            comment.body = text
            return self._send(200, _comment_json(comment))
        if (m := _PULL_FILES.match(parts.path)) and method == "GET":
            return self._list(parts.path, query, fake.pull_files.get(int(m.group(2)), []))
        return self._send(404, {"message": "Not Found"})

    def _body_text(self, body: str) -> str | None:
        try:
            text = json.loads(body)["body"]
        except (ValueError, KeyError, TypeError):
            self._send(400, {"message": "Problems parsing JSON"})
            return None
        if len(text) > MAX_BODY:
            self._send(
                422,
                {
                    "message": "Validation Failed",
                    "errors": [
                        {
                            "resource": "IssueComment",
                            "code": "custom",
                            "field": "body",
                            "message": f"body is too long (maximum is {MAX_BODY} characters)",
                        }
                    ],
                },
            )
            return None
        return str(text)

    def _list(self, path: str, query: dict[str, list[str]], items: list[dict[str, Any]]) -> None:
        per_page = min(int(query.get("per_page", ["30"])[0]), self.github.max_per_page)
        page = int(query.get("page", ["1"])[0])
        chunk = items[(page - 1) * per_page : page * per_page]
        last = max((len(items) + per_page - 1) // per_page, 1)
        links = []
        base = f"http://{self.headers.get('Host')}{path}"
        if page < last:
            links.append(f'<{base}?{urlencode({"per_page": per_page, "page": page + 1})}>; rel="next"')
            links.append(f'<{base}?{urlencode({"per_page": per_page, "page": last})}>; rel="last"')
        if page > 1:
            links.append(f'<{base}?{urlencode({"per_page": per_page, "page": 1})}>; rel="first"')
        self._send(200, chunk, {"Link": ", ".join(links)} if links else {})

    def _send(self, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(doc).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _comment_json(comment: Comment) -> dict[str, Any]:
    return {
        "id": comment.id,
        "node_id": f"IC_{comment.id}",
        "body": comment.body,
        "user": {"login": comment.user, "type": "Bot" if comment.user.endswith("[bot]") else "User"},
        "html_url": f"https://github.com/o/r/issues/{comment.issue}#issuecomment-{comment.id}",
    }
