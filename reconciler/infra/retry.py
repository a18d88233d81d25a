"""Retries with exponential backoff and full jitter, honouring Retry-After: one policy for every cloud.

Launchers translate their SDK's errors into ``LaunchError`` at their seam (``retryable=True`` for
throttling and 5xx, with ``retry_after`` when the service said how long to wait); this module only
decides whether and when to try again. A call that is not idempotent must make itself so before it is
retried (an idempotency token, or a lookup of what the first attempt may have created).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from reconciler.errors import LaunchError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # total tries, the first included
    base: float = 0.5  # seconds before the second try (before jitter)
    cap: float = 20.0  # longest single wait
    max_retry_after: float = 60.0  # never trust a Retry-After beyond this


DEFAULT_RETRY = RetryPolicy()


def call_with_retries(
    call: Callable[[], T],
    *,
    policy: RetryPolicy = DEFAULT_RETRY,
    before_retry: Callable[[LaunchError, int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Run ``call``; on a retryable LaunchError wait and try again, up to ``policy.attempts`` times.

    ``before_retry(error, attempt)`` runs before each retry: the place to check whether the failed
    attempt took effect after all (and raise or return through ``call``'s own state).
    """
    rng = rng or random.Random()
    for attempt in range(1, policy.attempts + 1):
        try:
            return call()
        except LaunchError as exc:
            if not exc.retryable or attempt == policy.attempts:
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
