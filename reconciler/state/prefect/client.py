"""The HTTP seam to a Prefect server (OSS or Cloud): one httpx client, auth, retries, a request count.

Only this module sees httpx. Every failure leaves it as a :class:`~reconciler.errors.StateError` whose
message carries the server's own explanation (``detail``) but never a value we sent: validation
errors echo their input, so the ``input`` of each error is dropped and any secret value the caller
passes in ``secrets`` is redacted from the text.

Retries (``reconciler.infra.retry``): 429 (honouring ``Retry-After``), 503 (SQLite lock contention on a self-hosted server shows
up as ``503 Service Unavailable``; the transaction was rolled back, so repeating it is safe), 502/504
from a proxy, and failures to connect at all. A request that reached the server and then lost its
answer is never repeated: it may have been applied.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from reconciler.errors import StateError
from reconciler.infra.limiter import AdaptiveLimit
from reconciler.infra.redact import redact_url, redact_urls
from reconciler.infra.retry import RetryPolicy, call_with_retries, retry_after

API_VERSION = "0.8.4"  # what Prefect's own client sends in X-PREFECT-API-VERSION
PAGE = 200  # the server's cap (PREFECT_SERVER_API_DEFAULT_LIMIT); 201 is refused with 422
_RETRY_STATUS = frozenset({429, 502, 503, 504})
_BUSY = frozenset({429, 503})  # the server is overloaded: fewer requests in flight
# The connection closed under a request that was sent: retried only when the request is idempotent.
_DROPPED = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)
_READS = ("/filter", "/count")  # POST endpoints that only read
_IDEMPOTENT = frozenset({"GET", "PUT", "PATCH", "DELETE"})
MAX_IN_FLIGHT = 16
# An idle connection is dropped well before the server drops it: a Prefect server closes keep-alive
# connections idle for 5 s (PREFECT_SERVER_API_KEEPALIVE_TIMEOUT), httpx keeps them 5 s too, and a
# request sent on one the server is closing at that moment fails with a ReadError that is never
# retried (it may have been applied). A wave whose busy server lets few requests through at a time
# leaves most of its connections idle that long.
KEEPALIVE_EXPIRY = 2.0


# Many quick tries: a self-hosted server answers 503 for as long as its SQLite file is locked.
DEFAULT_RETRY = RetryPolicy(attempts=6, base=0.2, cap=10.0, max_retry_after=10.0)


class _Transient(Exception):
    """One attempt that may succeed if repeated: a retryable status, or no connection at all."""

    retryable = True

    def __init__(self, *, response: httpx.Response | None = None, error: Exception | None = None) -> None:
        super().__init__()
        self.response, self.error = response, error
        self.retry_after = retry_after(response.headers) if response is not None else None


def api_url_from(url: str, environ: Mapping[str, str]) -> str:
    """``prefect+http(s)://HOST/api`` -> ``http(s)://HOST/api``; ``prefect://`` -> ``$PREFECT_API_URL``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise StateError(
            f"not a Prefect state URL: {redact_url(url)!r} (use prefect+http(s)://HOST/api or prefect://)"
        )
    scheme = scheme.lower()
    if scheme == "prefect":
        api = environ.get("PREFECT_API_URL", "").strip()
        if not api:
            raise StateError("--state prefect:// takes the server from PREFECT_API_URL, which is not set")
        return api.rstrip("/")
    if scheme in ("prefect+http", "prefect+https"):
        if not rest.strip("/"):
            raise StateError(f"no host in the state URL {redact_url(url)!r}")
        return f"{scheme.removeprefix('prefect+')}://{rest}".rstrip("/")
    raise StateError(
        f"not a Prefect state URL: {redact_url(url)!r} (use prefect+http(s)://HOST/api or prefect://)"
    )


def auth_headers(environ: Mapping[str, str]) -> dict[str, str]:
    """Prefect's own rule: an API key (Cloud) is a Bearer token, an auth string (OSS) is Basic."""
    key = environ.get("PREFECT_API_KEY", "").strip()
    if key:
        return {"Authorization": f"Bearer {key}"}
    auth = environ.get("PREFECT_API_AUTH_STRING", "").strip()
    if auth:
        return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
    return {}


def display_url(api_url: str) -> str:
    """The URL as plans and errors show it: no user info, ever, and no credential in the query."""
    parsed = httpx.URL(api_url)
    host = parsed.host + (f":{parsed.port}" if parsed.port else "")
    return redact_url(f"prefect+{parsed.scheme}://{host}{parsed.raw_path.decode()}".rstrip("/"))


class PrefectClient:
    """A thin client over the REST API: counts what it sends, retries what is safe, explains failures.

    Thread-safe as httpx's client is (the store's lock heartbeat shares it). ``requests_made`` counts
    every HTTP request, retries included; ``by_method`` splits the count by verb; ``retried`` counts
    the repeats alone (how many depends on the server's load, not on what was asked).
    """

    def __init__(
        self,
        api_url: str,
        *,
        environ: Mapping[str, str],
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.display = display_url(self.api_url)
        self._retry = retry
        headers = {"X-PREFECT-API-VERSION": API_VERSION, **auth_headers(environ)}
        self._http = httpx.Client(
            base_url=self.api_url + "/",
            headers=headers,
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY),
        )
        self.by_method: Counter[str] = Counter()
        self.retried = 0
        self._limit = AdaptiveLimit(MAX_IN_FLIGHT)

    @property
    def requests_made(self) -> int:
        return sum(self.by_method.values())

    def close(self) -> None:
        self._http.close()

    # -- requests ------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        allow: Iterable[int] = (),
        secrets: Iterable[str] = (),
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send one request; a status >= 400 not in ``allow`` becomes a StateError.

        ``idempotent`` says that sending the request twice has the effect of sending it once, so a
        connection dropped before its answer is retried too: a Prefect server closes a connection
        after each ``503`` it answers, and the next request a client sends on that connection fails
        to read. By default GET, PUT, PATCH and DELETE are (Prefect's PATCHes set fields; a repeated
        DELETE answers 404, which every delete here allows), and so are the POSTs that only read
        (``/filter``, ``/count``) and :meth:`create`. Any other request that lost its answer is never
        repeated (it may have been applied).
        """
        allowed = frozenset(allow)
        url = path.lstrip("/")
        if idempotent is None:
            idempotent = method in _IDEMPOTENT or (method == "POST" and url.rstrip("/").endswith(_READS))

        tries = 0

        def attempt() -> httpx.Response:
            nonlocal tries
            tries += 1
            self.by_method[method] += 1
            if tries > 1:
                self.retried += 1
            try:
                with self._limit:  # requests from a wave's threads share one budget
                    response = self._http.request(method, url, json=json, params=params)
            except httpx.ConnectError as exc:
                raise _Transient(error=exc) from None
            except _DROPPED as exc:
                if not idempotent:
                    raise StateError(
                        f"{method} {path} on the Prefect server at {self.display} failed: {type(exc).__name__}"
                    ) from None
                raise _Transient(error=exc) from None
            except httpx.HTTPError as exc:
                raise StateError(
                    f"{method} {path} on the Prefect server at {self.display} failed: {type(exc).__name__}"
                ) from None
            if response.status_code in _BUSY:
                self._limit.busy()
            else:
                self._limit.success()
            if response.status_code in _RETRY_STATUS:
                raise _Transient(response=response)
            return response

        try:
            response = call_with_retries(attempt, policy=self._retry)
        except _Transient as last:
            if last.response is None and isinstance(last.error, _DROPPED):  # each try lost its answer
                raise StateError(
                    f"{method} {path} on the Prefect server at {self.display} failed: {type(last.error).__name__}"
                ) from None
            if last.response is None:
                raise StateError(
                    f"cannot reach the Prefect server at {self.display}: {redact_urls(str(last.error))}"
                ) from None
            response = last.response
        if response.status_code >= 400 and response.status_code not in allowed:
            raise StateError(self._explain(method, path, response, secrets))
        return response

    def get(self, path: str, **options: Any) -> httpx.Response:
        return self.request("GET", path, **options)

    def post(self, path: str, json: Any = None, **options: Any) -> httpx.Response:
        return self.request("POST", path, json=json, **options)

    def create(self, path: str, json: Any, *, secrets: Iterable[str] = ()) -> httpx.Response:
        """POST a named object that may exist already: the answer is 201, or 409 when the name is
        taken. Safe to repeat when an answer is lost: a repeat of a create that landed answers 409,
        which every caller treats as "exists: read it and bring it to what the file says"."""
        return self.request("POST", path, json=json, allow=(409,), secrets=secrets, idempotent=True)

    def patch(self, path: str, json: Any = None, **options: Any) -> httpx.Response:
        return self.request("PATCH", path, json=json, **options)

    def delete(self, path: str, **options: Any) -> httpx.Response:
        return self.request("DELETE", path, **options)

    def paged(self, path: str, body: Mapping[str, Any], *, limit: int | None = None) -> Iterator[Any]:
        """Every item of a ``/filter`` endpoint, PAGE at a time (``limit`` caps the total)."""
        offset = 0
        while True:
            size = PAGE if limit is None else min(PAGE, limit - offset)
            if size <= 0:
                return
            page = self.post(path, {**body, "limit": size, "offset": offset}).json()
            yield from page
            if len(page) < size:
                return
            offset += size

    # -- helpers -------------------------------------------------------------------------------------

    def _explain(self, method: str, path: str, response: httpx.Response, secrets: Iterable[str]) -> str:
        detail = _detail(response)
        for value in sorted({s for s in secrets if s}, key=len, reverse=True):
            detail = detail.replace(value, "<redacted>")
        detail = redact_urls(detail)
        text = f"the Prefect server refused {method} {path}: {response.status_code}"
        return f"{text} {detail}" if detail else text


def server_time(response: httpx.Response) -> datetime | None:
    """The server's clock (its ``Date`` header), so lease expiry never depends on our clock."""
    value = response.headers.get("date")
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError):
        return None


def _detail(response: httpx.Response) -> str:
    """The server's explanation without echoing input values (pydantic puts them in ``input``)."""
    try:
        doc = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(doc, dict):
        detail = doc.get("detail") or doc.get("exception_detail") or doc.get("exception_message", "")
        if isinstance(detail, list):
            parts = []
            for error in detail:
                if isinstance(error, dict):
                    loc = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
                    parts.append(f"{loc}: {error.get('msg', '')}" if loc else str(error.get("msg", "")))
            return "; ".join(parts)
        return str(detail)
    return ""
