"""The sync pass's clock and counts, without Git or a store: when passes run, what counts as drift."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from reconciler import engine
from reconciler.serve import sync


class FakeClock:
    """A monotonic clock that moves only when the loop waits."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class WaitingEvent(threading.Event):
    """An Event whose wait moves the fake clock on instead of blocking."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def wait(self, timeout: float | None = None) -> bool:
        self.clock.t += timeout or 0.0
        return self.is_set()


def syncer(clock: FakeClock, interval: float | None, passes: list[float]) -> sync.Syncer:
    made = sync.Syncer(
        engine.Workspace(Path(".")), sync.SyncOptions(interval=interval), log=lambda _: None, clock=clock
    )

    def counted() -> sync.SyncReport:
        passes.append(clock())
        return sync.SyncReport(datetime.now(UTC), "main", "c" * 40)

    made.sync = counted  # type: ignore[method-assign]
    return made


@given(st.floats(min_value=0.5, max_value=30), st.floats(min_value=0.5, max_value=120))
def test_sync_passes_keep_their_own_interval_whatever_serve_sleeps(
    sync_every: float, serve_every: float
) -> None:
    clock, passes = FakeClock(), []
    made = syncer(clock, sync_every, passes)
    stop = WaitingEvent(clock)
    sleep = made.sleep(stop)
    for _ in range(3):  # three serve passes: the hook before each, then serve's sleep
        made.run_if_due()
        sleep(serve_every)
    assert passes[0] == 0.0  # the first pass runs at once
    gaps = [b - a for a, b in itertools.pairwise(passes)]
    assert all(gap >= sync_every - 1e-6 for gap in gaps)  # never more often than asked
    assert all(gap <= sync_every + 1e-6 for gap in gaps)  # never later than asked while serve sleeps
    assert len(passes) >= int(3 * serve_every // sync_every)


def test_without_an_interval_sync_never_runs() -> None:
    clock, passes = FakeClock(), []
    made = syncer(clock, None, passes)
    assert made.run_if_due() is None and passes == []


def test_totals_count_passes_failures_and_keep_the_last_good_commit() -> None:
    totals = sync.SyncTotals()
    at = datetime.now(UTC)
    totals.add(sync.SyncReport(at, "main", "a" * 40, pending=2, drifted=1, applied=2))
    totals.add(sync.SyncReport(at, "main", "b" * 40, error="invalid desired state"))
    assert (totals.passes, totals.failures, totals.drifted, totals.applied) == (2, 1, 1, 2)
    assert totals.last_good_commit == "a" * 40 and totals.last is not None and totals.last.failed
