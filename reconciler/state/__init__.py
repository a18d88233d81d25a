"""LIVE: where the reconciler keeps what it manages. Facade over the Store backends."""

from reconciler.state.base import (
    CountsRequests,
    HistoryEntry,
    HoldsProjects,
    JobRuntime,
    KnowsClaims,
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
    "CountsRequests",
    "HistoryEntry",
    "HoldsProjects",
    "JobRuntime",
    "KnowsClaims",
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
