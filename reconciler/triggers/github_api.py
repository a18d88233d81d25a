"""A small GitHub REST client over httpx: just what the Action needs, done the way GitHub asks.

- ``GITHUB_API_URL`` is honoured (GitHub Enterprise Server, or a local fake in tests).
- Lists are followed through their ``Link: <...>; rel="next"`` headers, never by guessing pages.
- Secondary rate limits (403/429 with ``Retry-After``, or ``x-ratelimit-remaining: 0`` with
  ``x-ratelimit-reset``, or a "secondary rate limit" message) are waited out and retried, up to a
  bound; so are brief 5xx hiccups. A wait longer than ``max_wait`` is an error, not a hang.
- The token goes into one header and nowhere else: not into ``repr``, errors or logs. Errors carry
  the method, the path and GitHub's own message.
- :meth:`GitHubClient.authenticated_login` says which account the token acts as, the way GitHub
  documents it: the workflow's ``GITHUB_TOKEN`` comments as ``github-actions[bot]`` (``GET /user``
  refuses installation tokens), any other token as ``GET /user``'s login.
httpx exceptions stop here as :class:`GitHubError`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from reconciler import __version__
from reconciler.errors import ReconcileError
from reconciler.infra.retry import retry_after

DEFAULT_API_URL = "https://api.github.com"
ACTIONS_LOGIN = "github-actions[bot]"  # the author of everything GITHUB_TOKEN writes
INSTALLATION_TOKEN_PREFIX = "ghs_"  # GitHub's prefix for installation (and GITHUB_TOKEN) tokens
API_VERSION = "2022-11-28"
SECONDARY_WAIT = 60.0  # GitHub: "wait at least one minute" when no header says how long


class GitHubError(ReconcileError):
    """A GitHub API call failed; ``status`` is the HTTP status (0 when GitHub was not reached)."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class GitHubClient:
    """Authenticated calls to one GitHub API root. Use as a context manager, or ``close()`` it."""

    def __init__(
        self,
        *,
        token: str,
        api_url: str = DEFAULT_API_URL,
        timeout: float = 30.0,
        max_attempts: int = 4,
        max_wait: float = 120.0,
        actions_token: bool | None = None,
    ) -> None:
        """``actions_token``: the token is the workflow's ``GITHUB_TOKEN`` (True), is not (False),
        or unknown (None: an installation token that ``GET /user`` refuses is taken for it)."""
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self._actions_token = actions_token
        self._installation_token = token.startswith(INSTALLATION_TOKEN_PREFIX)
        self._login: str | None = None
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self._http = httpx.Client(
            base_url=self.api_url,
            timeout=timeout,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": f"prefect-reconciler/{__version__}",
            },
        )

    def __repr__(self) -> str:
        return f"GitHubClient({self.api_url!r}, token=<redacted>)"

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- the calls the Action makes ----------------------------------------------------------------

    def authenticated_login(self) -> str:
        """The login whose name GitHub puts on what this token writes (asked once, then kept)."""
        if self._login is None:
            self._login = self._ask_login()
        return self._login

    def _ask_login(self) -> str:
        if self._actions_token:
            return ACTIONS_LOGIN
        try:
            doc = self.request("GET", "/user").json()
        except GitHubError as exc:
            refused = exc.status in (401, 403)
            if refused and self._actions_token is None and self._installation_token:
                return ACTIONS_LOGIN
            raise GitHubError(
                f"cannot tell which account the github-token acts as ({exc}); use the workflow's "
                "github.token or a token of a user",
                status=exc.status,
            ) from None
        login = doc.get("login") if isinstance(doc, dict) else None
        if not isinstance(login, str) or not login:
            raise GitHubError("GET /user: the answer has no login", status=200)
        return login

    def issue_comments(self, repo: str, number: int) -> Iterator[dict[str, Any]]:
        """Every comment of an issue or pull request, oldest first, across all pages."""
        return self.paginate(f"/repos/{repo}/issues/{number}/comments", params={"per_page": 100})

    def create_issue_comment(self, repo: str, number: int, body: str) -> dict[str, Any]:
        return self.request("POST", f"/repos/{repo}/issues/{number}/comments", json={"body": body}).json()

    def update_issue_comment(self, repo: str, comment_id: int, body: str) -> dict[str, Any]:
        return self.request(
            "PATCH", f"/repos/{repo}/issues/comments/{comment_id}", json={"body": body}
        ).json()

    def pull_files(self, repo: str, number: int) -> Iterator[dict[str, Any]]:
        """The files a pull request changes (``filename``, and ``previous_filename`` for renames)."""
        return self.paginate(f"/repos/{repo}/pulls/{number}/files", params={"per_page": 100})

    # -- plumbing ----------------------------------------------------------------------------------

    def paginate(self, path: str, *, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Items of a list endpoint, following ``Link: rel="next"`` until there is none."""
        url: str | None = path
        query: Mapping[str, Any] | None = params
        while url is not None:
            response = self.request("GET", url, params=query)
            items = response.json()
            if not isinstance(items, list):
                raise GitHubError(
                    f"GET {_path(url)}: expected a list, got {type(items).__name__}", status=200
                )
            yield from items
            url = response.links.get("next", {}).get("url")
            query = None  # the next link carries its own query string

    def request(
        self, method: str, url: str, *, json: Any = None, params: Mapping[str, Any] | None = None
    ) -> httpx.Response:
        """One call, retried on secondary rate limits and 5xx; raises GitHubError on failure."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self._http.request(method, url, json=json, params=params)
            except httpx.HTTPError as exc:
                if attempt < self.max_attempts and isinstance(exc, httpx.TransportError):
                    time.sleep(min(2.0**attempt / 4, self.max_wait))
                    continue
                raise GitHubError(
                    f"{method} {_path(url)}: cannot reach {self.api_url}: {type(exc).__name__}"
                ) from None
            if response.is_success:
                return response
            wait = self._retry_wait(response, attempt)
            if wait is None or attempt == self.max_attempts:
                raise _error(method, url, response)
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_wait(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None when the failure is final."""
        status = response.status_code
        if status in (502, 503, 504):
            return min(2.0**attempt / 4, self.max_wait)
        if status not in (403, 429):
            return None
        headers = response.headers
        wait: float | None = None
        if "retry-after" in headers:
            wait = retry_after(headers)  # seconds or an HTTP date, parsed in one place
        elif headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
            reset = _seconds(headers["x-ratelimit-reset"])
            wait = None if reset is None else max(reset - time.time(), 0.0) + 1.0
        elif status == 429 or "secondary rate limit" in _message(response).lower():
            wait = SECONDARY_WAIT * attempt
        if wait is None or wait > self.max_wait:
            return None  # a plain 403 (no permission), or a wait we will not sit through
        return wait


def _seconds(value: str) -> float | None:
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def _message(response: httpx.Response) -> str:
    try:
        doc = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(doc, dict):
        message = str(doc.get("message", ""))
        errors = doc.get("errors")
        if isinstance(errors, list) and errors:
            details = [e.get("message") or e.get("code") for e in errors if isinstance(e, dict)]
            message += f" ({'; '.join(str(d) for d in details if d)})"
        return message
    return ""


def _path(url: str) -> str:
    """The request's path without any query string (URLs from Link headers are absolute)."""
    return httpx.URL(url).path


def _error(method: str, url: str, response: httpx.Response) -> GitHubError:
    message = _message(response) or response.reason_phrase
    return GitHubError(
        f"{method} {_path(url)}: HTTP {response.status_code}: {message}", status=response.status_code
    )
