"""An in-memory Store: the reference implementation of the contract, used by unit tests.

It keeps the same rules as the real backends (per-object versions, idempotency keys, a lock that
times out) so that the contract suite can run against it first and fast. Stores made with
:meth:`MemoryStore.sibling` share one :class:`MemorySpace`, as projects share a database or a
server: each sees the others' objects as claims, and objects no project manages can be placed in
the space (``space.unmanaged``) the way ``prefect deploy`` leaves them on a server.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from reconciler.errors import LockTimeout, StaleVersion, StateError
from reconciler.infra.redact import redact_url
from reconciler.objects import Address, Claim, LiveState, Resource, StoredObject
from reconciler.state.base import HistoryEntry, JobRuntime, LockInfo, RunRecord


@dataclass
class MemorySpace:
    """What several in-memory projects share: each project's store, and the objects none manages."""

    stores: dict[str, MemoryStore] = field(default_factory=dict)
    unmanaged: dict[Address, Mapping[str, object]] = field(default_factory=dict)
    mutex: threading.RLock = field(default_factory=threading.RLock)


class MemoryStore:
    """Holds one project's state in dictionaries; thread-safe, not process-safe."""

    job_runtime = JobRuntime.RECONCILER

    def __init__(
        self, project: str = "default", url: str = "memory://", *, space: MemorySpace | None = None
    ) -> None:
        self.url = redact_url(url)
        self.project = project
        self.space = space if space is not None else MemorySpace()
        self.space.stores.setdefault(project, self)
        self._objects: dict[Address, StoredObject] = {}
        self._serial = 0
        self._key = secrets.token_bytes(32)
        self._lineage = str(uuid.uuid4())
        self._history: list[HistoryEntry] = []
        self._runs: dict[str, RunRecord] = {}
        self._last_commit: str | None = None
        self._mutex = threading.RLock()
        self._lock = threading.Lock()
        self._lock_holder: LockInfo | None = None

    def read_all(self) -> LiveState:
        with self._mutex:
            return LiveState(
                url=self.url, serial=self._serial, objects=dict(self._objects), last_commit=self._last_commit
            )

    def fingerprint_key(self) -> bytes:
        return self._key

    def lineage(self) -> str:
        return self._lineage

    def write(self, resource: Resource, *, expected_version: int | None) -> int:
        with self._mutex:
            current = self._objects.get(resource.address)
            actual = current.version if current else None
            if actual != expected_version:
                raise StaleVersion(str(resource.address), expected_version, actual)
            if actual is None:
                owner = self._owner_of(resource.address)
                if owner is not None:
                    raise StateError(f"{resource.address} is managed by project {owner!r}")
                self.space.unmanaged.pop(resource.address, None)  # adopted: this project's now
            version = (actual or 0) + 1
            self._serial += 1
            self._objects[resource.address] = StoredObject(resource, version, datetime.now(UTC))
            return version

    def delete(self, address: Address, *, expected_version: int) -> None:
        with self._mutex:
            current = self._objects.get(address)
            actual = current.version if current else None
            if actual != expected_version:
                raise StaleVersion(str(address), expected_version, actual)
            del self._objects[address]
            self._serial += 1

    # -- other projects in the space ----------------------------------------------------------------

    def sibling(self, project: str) -> MemoryStore:
        """The store of another project in the same space (made empty on first use)."""
        with self.space.mutex:
            found = self.space.stores.get(project)
            return found if found is not None else MemoryStore(project, self.url, space=self.space)

    def claims(self, addresses: Collection[Address]) -> dict[Address, Claim]:
        found: dict[Address, Claim] = {}
        with self.space.mutex:
            for address in addresses:
                owner = self._owner_of(address)
                if owner is not None:
                    found[address] = Claim(address, owner)
                elif address in self.space.unmanaged:
                    found[address] = Claim(address, None, self.space.unmanaged[address])
        return found

    def projects(self) -> dict[str, int]:
        with self.space.mutex:
            return {
                name: len(store._objects)
                for name, store in sorted(self.space.stores.items())
                if store._objects or store._history or store._runs
            }

    def move_project(self, old: str, new: str) -> int:
        with self.space.mutex:
            source = self.space.stores.get(old)
            if source is None or not (source._objects or source._history or source._runs):
                raise StateError(f"no project {old!r} in {self.url}")
            target = self.sibling(new)
            if target._objects or target._history or target._runs:
                raise StateError(f"project {new!r} already holds state in {self.url}: nothing was moved")
            for name in ("_objects", "_serial", "_key", "_lineage", "_history", "_runs", "_last_commit"):
                setattr(target, name, getattr(source, name))
            source._objects, source._history, source._runs, source._serial = {}, [], {}, 0
            return len(target._objects)

    def _owner_of(self, address: Address) -> str | None:
        for name, store in self.space.stores.items():
            if name != self.project and address in store._objects:
                return name
        return None

    @contextmanager
    def lock(self, *, timeout: float, info: LockInfo) -> Iterator[None]:
        if not self._lock.acquire(timeout=max(timeout, 0)):
            holder = self._lock_holder
            who = f"{holder.holder} (pid {holder.pid})" if holder else "another process"
            raise LockTimeout(f"state is locked by {who}; gave up after {timeout:g}s")
        self._lock_holder = info
        try:
            yield
        finally:
            self._lock_holder = None
            self._lock.release()

    def record_apply(self, entry: HistoryEntry) -> None:
        with self._mutex:
            self._history.append(replace(entry, id=len(self._history) + 1))

    def history(self, *, limit: int = 50) -> list[HistoryEntry]:
        with self._mutex:
            return list(reversed(self._history))[:limit]

    def set_last_commit(self, commit: str | None) -> None:
        with self._mutex:
            self._last_commit = commit

    def create_run(self, run: RunRecord) -> RunRecord:
        with self._mutex:
            if run.idempotency_key:
                for existing in self._runs.values():
                    if existing.idempotency_key == run.idempotency_key:
                        return existing
            if run.id in self._runs:
                raise StateError(f"run {run.id} already exists")
            stored = replace(run, version=1, created_at=run.created_at or datetime.now(UTC))
            self._runs[run.id] = stored
            return stored

    def update_run(self, run: RunRecord) -> RunRecord:
        with self._mutex:
            current = self._runs.get(run.id)
            if current is None:
                raise StateError(f"run {run.id} does not exist")
            if current.version != run.version:
                raise StaleVersion(f"run {run.id}", run.version, current.version)
            stored = replace(run, version=run.version + 1)
            self._runs[run.id] = stored
            return stored

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._mutex:
            return self._runs.get(run_id)

    def list_runs(self, *, deployment: str | None = None, limit: int = 100) -> list[RunRecord]:
        with self._mutex:
            runs = [r for r in self._runs.values() if deployment is None or r.deployment == deployment]
        runs.sort(key=lambda r: (r.created_at or datetime.min.replace(tzinfo=UTC), r.id), reverse=True)
        return runs[:limit]

    def job_environment(self, run: RunRecord) -> dict[str, str]:
        return {}

    def close(self) -> None:
        pass
