"""The adaptive limit: busy answers halve what is in flight, successes grow it back, never past the
ceiling and never below one."""

from __future__ import annotations

import threading
import time

from reconciler.infra.limiter import AdaptiveLimit


def test_busy_halves_and_successes_grow_back() -> None:
    limit = AdaptiveLimit(8, window=2)
    limit.busy()
    limit.busy()
    assert limit.limit == 2
    for _ in range(4):
        limit.success()
    assert limit.limit == 4
    for _ in range(100):
        limit.success()
    assert limit.limit == 8
    for _ in range(10):
        limit.busy()
    assert limit.limit == 1


def test_no_more_than_the_limit_hold_it_at_once() -> None:
    limit = AdaptiveLimit(3)
    limit.busy()  # 1 at a time from here
    peak, current, lock = 0, 0, threading.Lock()

    def hold() -> None:
        nonlocal peak, current
        with limit:
            with lock:
                current += 1
                peak = max(peak, current)
            time.sleep(0.01)
            with lock:
                current -= 1

    threads = [threading.Thread(target=hold) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert peak == 1
