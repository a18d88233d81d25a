"""The one retry module: Retry-After parsed once for every caller, bounded attempts, full jitter."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.errors import LaunchError
from reconciler.infra.retry import RetryPolicy, backoff, call_with_retries, retry_after

NOW = datetime(2026, 1, 2, 12, 0, 0, tzinfo=UTC)


def test_retry_after_reads_seconds_dates_and_azure_milliseconds_in_any_case() -> None:
    assert retry_after({"Retry-After": "3"}) == 3.0
    assert retry_after({"retry-after": "0.5"}) == 0.5
    date = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    assert retry_after({"Retry-After": date}, now=NOW) == 30.0
    assert (
        retry_after({"Retry-After": format_datetime(NOW - timedelta(hours=1), usegmt=True)}, now=NOW) == 0.0
    )
    assert retry_after({"x-ms-retry-after-ms": "1500", "Retry-After": "9"}) == 1.5
    assert retry_after({"Retry-After": "soon"}) is None
    assert retry_after({"Retry-After": "-4"}) == 0.0
    assert retry_after({}) is None and retry_after(None) is None


@given(attempt=st.integers(1, 30), seed=st.integers(0, 2**32))
def test_backoff_is_full_jitter_under_the_cap(attempt: int, seed: int) -> None:
    policy = RetryPolicy(base=0.5, cap=20.0)
    wait = backoff(attempt, policy=policy, retry_after=None, rng=random.Random(seed))
    assert 0.0 <= wait <= min(policy.cap, policy.base * 2 ** (attempt - 1))


def test_a_retry_after_is_honoured_but_bounded() -> None:
    policy = RetryPolicy(max_retry_after=10.0)
    assert backoff(1, policy=policy, retry_after=4.0, rng=random.Random(0)) == 4.0
    assert backoff(1, policy=policy, retry_after=3600.0, rng=random.Random(0)) == 10.0


def test_attempts_are_bounded_and_only_retryable_errors_are_repeated() -> None:
    calls: list[int] = []
    waits: list[float] = []

    def busy() -> None:
        calls.append(1)
        raise LaunchError("throttled", retryable=True, retry_after=2.0)

    with pytest.raises(LaunchError, match="throttled"):
        call_with_retries(busy, policy=RetryPolicy(attempts=3), sleep=waits.append)
    assert len(calls) == 3 and waits == [2.0, 2.0]

    calls.clear()

    def refused() -> None:
        calls.append(1)
        raise LaunchError("forbidden")

    with pytest.raises(LaunchError, match="forbidden"):
        call_with_retries(refused, policy=RetryPolicy(attempts=3), sleep=waits.append)
    assert len(calls) == 1
