"""Thin wrappers ``reconcile serve`` puts around its collaborators: a launcher that notes what it was
asked to submit, a view of the store for recovery, and signals that end the loop gracefully.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from reconciler.launch import Job, Launcher
from reconciler.state import RunRecord, Store


class RecoveryView:
    """The store as ``runs.recover`` should see it: only ``runs`` (the ones serve chose) are listed;
    everything else, writes included, goes to the real store."""

    def __init__(self, store: Store, runs: list[RunRecord]) -> None:
        self._store, self._runs = store, runs

    def list_runs(self, *, deployment: str | None = None, limit: int = 100) -> list[RunRecord]:
        return [r for r in self._runs if deployment is None or r.deployment == deployment][:limit]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class Recording:
    """A launcher that notes which runs it was asked to submit: ``runs.launch`` submits only after
    winning the claim, so those, and only those, are the runs this process launched."""

    def __init__(self, launcher: Launcher, submitted: set[str]) -> None:
        self._launcher, self._submitted = launcher, submitted

    @classmethod
    def factory(cls, make: Callable[[str], Launcher], submitted: set[str]) -> Callable[[str], Launcher]:
        return lambda name: cast(Launcher, cls(make(name), submitted))

    def submit(self, job: Job) -> str:
        self._submitted.add(job.run_id)
        return self._launcher.submit(job)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._launcher, name)


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop``: the pass in progress finishes, then the loop ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C while a pass is stuck (a slow cloud call)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
