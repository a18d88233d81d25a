"""Thin wrappers ``reconcile serve`` puts around its collaborators: a launcher that notes what it was
asked to submit, a view of the store for recovery, and signals that end the loop gracefully.
"""

from __future__ import annotations

from collections.abc import Callable
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
