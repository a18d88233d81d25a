"""LIVE: where the reconciler keeps what it manages. Facade over the Store backends."""

from reconciler.state.base import HistoryEntry, LockInfo, RunRecord, RunState, Store
from reconciler.state.memory import MemoryStore
from reconciler.state.open import open_store

__all__ = ["HistoryEntry", "LockInfo", "MemoryStore", "RunRecord", "RunState", "Store", "open_store"]
