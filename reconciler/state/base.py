"""The Store seams every backend (SQL, Prefect server, in-memory) implements.

Two narrow protocols: :class:`ObjectStore` (the objects one project manages, the serial every write
bumps, the history of applies, the apply lock) and :class:`RunStore` (the runs it launched).
:class:`Store` is both. Object writes are optimistic: the caller says which version it expects and a
moved version raises :class:`~reconciler.errors.StaleVersion`. What only some backends can do is a
small protocol of its own (:class:`CountsRequests`), never found by probing attributes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from reconciler.objects import Address, Claim, LiveState, Resource


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
    # Why a due run is held back in the queue (a concurrency limit, a paused pool): it keeps its place,
    # and recovery never takes it for a run a crashed launcher left behind. None: not held.
    waiting: str | None = None
    # Which process claimed it ("HOST/PID"): a claim whose process is gone from this host is adopted
    # at once instead of after a grace period. None: claimed before the field existed, or not yet.
    claimed_by: str | None = None

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


class JobRuntime(StrEnum):
    """What a launched job runs, which follows from where its run is recorded."""

    RECONCILER = "reconciler"  # ``python -m reconciler.runtime``; the reconciler records the outcome
    PREFECT = "prefect"  # ``prefect flow-run execute``: Prefect's engine reports to the store's server


@runtime_checkable
class ObjectStore(Protocol):
    """What plan and apply need: the managed objects, their history, the apply lock."""

    url: str
    project: str

    def lineage(self) -> str | None:
        """A random id made once, when this store (this project in it) was created; never changes.

        Two stores with the same URL and project but different lineages are different states (a
        database re-created, a server reset): a saved plan names the lineage it was made against.
        None: the store does not exist yet (reading never creates it; the first write does).
        """
        ...

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

    def close(self) -> None: ...


@runtime_checkable
class RunStore(Protocol):
    """What the run lifecycle needs: the runs, and what a launched job must know to report."""

    url: str
    project: str
    job_runtime: JobRuntime  # what launched jobs run (see job_environment)

    def create_run(self, run: RunRecord) -> RunRecord:
        """Insert a new run; with an ``idempotency_key`` already present, return the existing run."""
        ...

    def update_run(self, run: RunRecord) -> RunRecord:
        """Save a run if it is still at ``run.version``; returns it with the next version.

        Only the run lifecycle (``reconciler.launch.lifecycle``) calls this: it checks every move.
        """
        ...

    def get_run(self, run_id: str) -> RunRecord | None: ...

    def list_runs(self, *, deployment: str | None = None, limit: int = 100) -> list[RunRecord]: ...

    def job_environment(self, run: RunRecord) -> Mapping[str, str]:
        """Extra environment a launched job needs to report to this store (with ``JobRuntime.PREFECT``:
        the server's PREFECT_API_URL and PREFECT__FLOW_RUN_ID); empty for stores the job never talks to."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Store(ObjectStore, RunStore, Protocol):
    """Both halves: what every backend implements (each passes tests/contract)."""


ACTIVE_STATES = frozenset({RunState.PENDING, RunState.RUNNING, RunState.CANCELLING})


@dataclass(frozen=True)
class Limit:
    """One concurrency limit a claim must respect: fewer than ``limit`` active runs among the runs it
    covers (those on ``pools`` and those of ``deployments``). ``key`` names it across processes
    (``pool:NAME``, ``queue:POOL/NAME``, ``deployment:FLOW/NAME``, ``gcl:NAME``, ``serve``)."""

    key: str
    limit: int
    reason: str  # what a waiting run says, e.g. "pool local concurrency limit 5 reached"
    pools: frozenset[str] = frozenset()
    deployments: frozenset[str] = frozenset()
    cancel: bool = False  # a run finding it full is cancelled, not queued (CANCEL_NEW)

    def covers(self, run: RunRecord) -> bool:
        return (run.pool is not None and run.pool in self.pools) or run.deployment in self.deployments


@dataclass(frozen=True)
class Admission:
    """What a claim did: the run as it stands; ``claimed`` if this call won it (only then is it
    launched); ``full`` the limit that had no room (the run stays queued)."""

    run: RunRecord
    claimed: bool
    full: Limit | None = None


@runtime_checkable
class ClaimsRuns(Protocol):
    """A run store that admits a run atomically: the limits are checked and the run moved to PENDING
    in one step that no other process can interleave with (a database transaction holding the limits'
    locks; a Prefect server's global concurrency slots), so N ``serve`` replicas keep every limit."""

    def claim_run(self, run: RunRecord, limits: Sequence[Limit], *, claimed: RunRecord) -> Admission:
        """Save ``claimed`` (``run`` moved to PENDING) if ``run`` is still at its version and every limit
        has room; otherwise change nothing and say why."""
        ...

    def settle_runs(self, runs: Sequence[RunRecord]) -> None:
        """Keep the admission bookkeeping of ``runs`` (as just read) true: what ended frees its slots,
        what still runs keeps them. Nothing to do where slots are counted from the runs themselves."""
        ...


@runtime_checkable
class CountsRequests(Protocol):
    """A store that talks HTTP and counts what it sent (``plan`` reports the cost)."""

    requests_made: int  # HTTP requests sent, retries included
    requests_by_method: Mapping[str, int]
    requests_retried: int  # of those, the repeats of a request the server refused as busy or dropped


@dataclass(frozen=True)
class WaveWrite:
    """One write of a wave: create/update ``resource`` (None: delete ``address``) at ``expected_version``."""

    address: Address
    expected_version: int | None
    resource: Resource | None = None


@runtime_checkable
class WritesInWaves(Protocol):
    """A store whose writes each cost round trips (an HTTP API) takes a wave of independent writes at once:
    the objects written side by side, their bookkeeping recorded once per wave. Every write of the wave
    that succeeded is recorded before the first failure is raised, so a later plan sees exactly what
    was written; a crash between the objects and the record converges on the next apply."""

    def write_wave(self, writes: Sequence[WaveWrite], *, parallelism: int) -> list[int | None]:
        """The new version of each write in order (None for a delete)."""
        ...


@runtime_checkable
class KnowsClaims(Protocol):
    """A store that can say what exists at addresses its project does not manage: another project's
    objects (the plan refuses them) and, on a server, objects no project manages (the plan adopts)."""

    def claims(self, addresses: Collection[Address]) -> Mapping[Address, Claim]:
        """The objects found at ``addresses`` (absent addresses are left out)."""
        ...


@runtime_checkable
class HoldsProjects(Protocol):
    """A store shared by several projects: it lists them and moves one's state to a new name."""

    def projects(self) -> Mapping[str, int]:
        """Every project in the store with how many objects it manages."""
        ...

    def move_project(self, old: str, new: str) -> int:
        """Give project ``old``'s objects, history and runs to ``new`` (which must hold nothing);
        returns how many objects moved. The store's lineage and fingerprint key move with them."""
        ...
