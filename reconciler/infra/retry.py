"""Retries with exponential backoff and full jitter, honouring Retry-After: one policy for every caller.

The Prefect client and the three cloud launchers use it. A caller turns a failed attempt into an
exception that says whether it may be retried (``retryable``) and how long the service asked us to
wait (``retry_after``, parsed from the response by :func:`retry_after`); this module only decides
whether and when to try again. A call that is not idempotent must make itself so before it is
retried (an idempotency token, or a lookup of what the first attempt may have created).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")


@runtime_checkable
class Retryable(Protocol):
    """An error that knows whether repeating the call may succeed (``LaunchError`` is one)."""

    retryable: bool
    retry_after: float | None


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # total tries, the first included
    base: float = 0.5  # seconds before the second try (before jitter)
    cap: float = 20.0  # longest single backoff wait
    max_retry_after: float = 60.0  # never trust a Retry-After beyond this


DEFAULT_RETRY = RetryPolicy()


def call_with_retries(
    call: Callable[[], T],
    *,
    policy: RetryPolicy = DEFAULT_RETRY,
    before_retry: Callable[[Any, int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Run ``call``; on a retryable error wait and try again, up to ``policy.attempts`` times.

    An error is retryable when it has ``retryable=True`` (see :class:`Retryable`); the last one is
    raised as it is. ``before_retry(error, attempt)`` runs before each retry: the place to check
    whether the failed attempt took effect after all (and raise or return through ``call``'s own state).
    """
    rng = rng or random.Random()
    for attempt in range(1, policy.attempts + 1):
        try:
            return call()
        except Exception as exc:
            if not (isinstance(exc, Retryable) and exc.retryable) or attempt == policy.attempts:
                raise
            sleep(backoff(attempt, policy=policy, retry_after=exc.retry_after, rng=rng))
            if before_retry is not None:
                before_retry(exc, attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def backoff(attempt: int, *, policy: RetryPolicy, retry_after: float | None, rng: random.Random) -> float:
    """Seconds to wait after failed ``attempt``: Retry-After when given, else full jitter."""
    if retry_after is not None:
        return max(0.0, min(retry_after, policy.max_retry_after))
    ceiling = min(policy.cap, policy.base * (2 ** (attempt - 1)))
    return rng.uniform(0, ceiling)


# Headers services use to say how long to wait: the standard one, then Azure's millisecond forms.
_SECONDS_HEADER = "retry-after"
_MILLISECOND_HEADERS = ("retry-after-ms", "x-ms-retry-after-ms")


def retry_after(headers: Mapping[str, Any] | None, *, now: datetime | None = None) -> float | None:
    """Seconds a response asks us to wait, or None when it does not say (or says it unreadably).

    ``Retry-After`` is delta-seconds or an HTTP date (RFC 9110, 10.2.3); a date in the past means
    "now" (0). Azure adds ``retry-after-ms`` / ``x-ms-retry-after-ms``. Header names match in any case.
    """
    if not headers:
        return None
    lower = {str(name).lower(): value for name, value in headers.items()}
    for name in _MILLISECOND_HEADERS:
        seconds = _number(lower.get(name))
        if seconds is not None:
            return seconds / 1000
    value = lower.get(_SECONDS_HEADER)
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 850 / asctime forms carry no zone: HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None
