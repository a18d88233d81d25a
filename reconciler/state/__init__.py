"""LIVE: where the reconciler keeps what it manages. Facade over the Store backends."""

from reconciler.state.base import (
    ACTIVE_STATES,
    Admission,
    ClaimsRuns,
    CountsRequests,
    HistoryEntry,
    HoldsProjects,
    JobRuntime,
    KnowsClaims,
    Limit,
    LockInfo,
    ObjectStore,
    RunRecord,
    RunState,
    RunStore,
    Store,
    WaveWrite,
    WritesInWaves,
)
from reconciler.state.memory import MemoryStore
from reconciler.state.open import open_store

__all__ = [
    "ACTIVE_STATES",
    "Admission",
    "ClaimsRuns",
    "CountsRequests",
    "HistoryEntry",
    "HoldsProjects",
    "JobRuntime",
    "KnowsClaims",
    "Limit",
    "LockInfo",
    "MemoryStore",
    "ObjectStore",
    "RunRecord",
    "RunState",
    "RunStore",
    "Store",
    "WaveWrite",
    "WritesInWaves",
    "open_store",
]
