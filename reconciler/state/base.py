"""The Store seam: one small protocol that every backend (SQL, Prefect server, in-memory) implements.

A store holds the objects one project manages (its inventory), a serial that grows with every
write, the history of applies, and the runs it launched. Writes are per object and optimistic: the
caller says which version it expects and a moved version raises :class:`~reconciler.errors.StaleVersion`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from reconciler.objects import Address, LiveState, Resource


class RunState(StrEnum):
    """Lifecycle of a run. Terminal states never change again."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({RunState.COMPLETED, RunState.FAILED, RunState.CRASHED, RunState.CANCELLED})


@dataclass(frozen=True)
class RunRecord:
    """A run as the store keeps it. Written *before* the launch so a crash in between is visible."""

    id: str
    deployment: str  # "flow/name"
    pool: str | None
    pool_type: str | None
    state: RunState
    parameters: Mapping[str, Any] = field(default_factory=dict)
    job_variables: Mapping[str, Any] = field(default_factory=dict)  # run-level overrides only
    reason: str = ""  # why it was launched: "manual", "apply: changed", "push: flows/**", "schedule: daily"
    idempotency_key: str | None = None  # e.g. "schedule:<deployment>:<slot iso>"; unique per store
    infrastructure_id: str | None = None
    exit_code: int | None = None
    message: str = ""
    log_path: str | None = None
    created_at: datetime | None = None
    scheduled_for: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    version: int = 0

    def evolve(self, **changes: Any) -> RunRecord:
        return replace(self, **changes)


@dataclass(frozen=True)
class HistoryEntry:
    """One apply, as ``reconcile history`` shows it."""

    serial: int
    applied_at: datetime
    user: str
    host: str
    commit: str | None
    summary: Mapping[str, int]
    changes: Sequence[str] = ()  # "update work_pool.ecs" lines, no values
    id: int | None = None


@dataclass(frozen=True)
class LockInfo:
    """Who holds (or asks for) the store lock."""

    holder: str  # "user@host"
    pid: int
    host: str
    purpose: str = "apply"


@runtime_checkable
class Store(Protocol):
    """What apply, plan and launch need from a backend. Every implementation passes tests/contract."""

    url: str
    project: str

    def read_all(self) -> LiveState:
        """Every object this project manages, with versions, in one call."""
        ...

    def fingerprint_key(self) -> bytes:
        """The HMAC key secret fingerprints are made with (created once per store)."""
        ...

    def write(self, resource: Resource, *, expected_version: int | None) -> int:
        """Create (expected None) or update (expected = current version); returns the new version."""
        ...

    def delete(self, address: Address, *, expected_version: int) -> None:
        """Remove an object this project manages, if it is still at ``expected_version``."""
        ...

    def lock(self, *, timeout: float, info: LockInfo) -> AbstractContextManager[None]:
        """Exclusive store lock for an apply; waits up to ``timeout`` then raises LockTimeout."""
        ...

    def record_apply(self, entry: HistoryEntry) -> None: ...

    def history(self, *, limit: int = 50) -> list[HistoryEntry]: ...

    def set_last_commit(self, commit: str | None) -> None: ...

    def create_run(self, run: RunRecord) -> RunRecord:
        """Insert a new run; with an ``idempotency_key`` already present, return the existing run."""
        ...

    def update_run(self, run: RunRecord) -> RunRecord:
        """Save a run if it is still at ``run.version``; returns it with the next version."""
        ...

    def get_run(self, run_id: str) -> RunRecord | None: ...

    def list_runs(self, *, deployment: str | None = None, limit: int = 100) -> list[RunRecord]: ...

    def job_environment(self, run: RunRecord) -> Mapping[str, str]:
        """Extra environment a launched job needs to report to this store (e.g. a Prefect server's
        PREFECT_API_URL and PREFECT__FLOW_RUN_ID); empty for stores the job never talks to."""
        ...

    def close(self) -> None: ...
