"""An adaptive concurrency limit (additive increase, multiplicative decrease), as TCP and Envoy's
adaptive concurrency do: callers that share a busy service slow down together instead of each
retrying into it.

A self-hosted Prefect server on SQLite answers ``503`` while its database file is locked: eight writes
side by side can keep it locked for all of them. Each busy answer halves the number of requests in
flight (down to one); every ``window`` successes let one more through again, up to the ceiling.
"""

from __future__ import annotations

import threading
from types import TracebackType


class AdaptiveLimit:
    """At most ``limit`` holders at once; ``busy()`` halves it, successes grow it back to ``ceiling``."""

    def __init__(self, ceiling: int, *, window: int = 8) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = self.ceiling
        self._window = window
        self._in_flight = 0
        self._successes = 0
        self._cond = threading.Condition()

    def __enter__(self) -> AdaptiveLimit:
        with self._cond:
            while self._in_flight >= self.limit:
                self._cond.wait()
            self._in_flight += 1
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    def busy(self) -> None:
        """The service said it is overloaded: halve what may be in flight."""
        with self._cond:
            self.limit = max(1, self.limit // 2)
            self._successes = 0

    def success(self) -> None:
        """One answer that was not "busy": after ``window`` of them, one more may be in flight."""
        with self._cond:
            self._successes += 1
            if self._successes >= self._window and self.limit < self.ceiling:
                self.limit += 1
                self._successes = 0
                self._cond.notify_all()
