"""The SQL Store: SQLite (the default) or PostgreSQL, one project per store, several per database.

Every mutation is one short transaction that checks the object's version (``UPDATE ... WHERE
version = expected``, or an INSERT that a unique violation refuses) and bumps the project's serial,
so a crash leaves each object either fully written or untouched, and the serial counts the writes
that happened. Bodies are stored as :func:`~reconciler.objects.encode_body` JSON: templates and
fingerprints, never secret values. The work is done by SQLAlchemy Core (``database.py``; tables and
migrations in ``schema.py``, the lock in ``lock.py``), opened on first need: a SQLite state that is
ready is opened and read with the standard library alone (``sqlite_read.py``), so a ``plan`` never
imports SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from functools import cached_property
from typing import TYPE_CHECKING

from reconciler.errors import StateError
from reconciler.infra.redact import redact_url
from reconciler.objects import Address, Claim, LiveState, Resource
from reconciler.state.base import Admission, HistoryEntry, JobRuntime, Limit, LockInfo, RunRecord
from reconciler.state.sql import sqlite_read

if TYPE_CHECKING:
    from reconciler.state.sql.database import SqlDatabase
    from reconciler.state.sql.lock import LockPolicy


class SqlStore:
    """The state of one ``project`` in a SQLite file or a PostgreSQL database.

    Opening migrates the schema and creates the project's row and the store's fingerprint key, all
    in one transaction; a SQLite file that needs none of that is only read until something writes.
    """

    job_runtime = JobRuntime.RECONCILER  # a launched job never talks to the database

    def __init__(
        self, url: str, *, project: str, lock_policy: LockPolicy | None = None, create: bool = True
    ) -> None:
        if not project:
            raise StateError("a project name is required")
        self.url = redact_url(url)
        self.project = project
        self._source_url, self._lock_policy = url, lock_policy
        self._reader: sqlite_read.SqliteReader | None = None
        # ``create=False`` (the CLI): a SQLite file that does not exist is a store nobody wrote; reads
        # answer "empty" without creating it (nor its directory); the first write creates it.
        self._absent = not create and sqlite_read.absent_file(url) is not None
        self._lineage: str | None = None
        path = sqlite_read.ready_file(url)
        if path is not None:
            reader = sqlite_read.SqliteReader(path, project=project, display_url=self.url)
            opened = reader.open()
            if opened is None:
                reader.close()
            else:
                self._reader, self._key, self._lineage = reader, opened.key, opened.lineage
        if self._absent:
            self._key = b""  # made with the store, on first need (see fingerprint_key)
        elif self._reader is None:
            self._key, self._lineage = self._db.fingerprint_key(), self._db.lineage()

    def __repr__(self) -> str:
        return f"SqlStore({self.url!r}, project={self.project!r})"

    @cached_property
    def _db(self) -> SqlDatabase:
        """The SQLAlchemy side, opened (and the schema migrated) on first need."""
        from reconciler.state.sql.database import SqlDatabase

        if self._lock_policy is None:
            db = SqlDatabase(self._source_url, project=self.project)
        else:
            db = SqlDatabase(self._source_url, project=self.project, lock_policy=self._lock_policy)
        if self._absent:  # created just now, by a write: from here on it is a store like any other
            self._absent = False
            self._key, self._lineage = db.fingerprint_key(), db.lineage()
        return db

    # -- objects -----------------------------------------------------------------------------

    def read_all(self) -> LiveState:
        if self._absent:
            return LiveState(url=self.url, serial=0, objects={})
        return self._reader.read_all() if self._reader is not None else self._db.read_all()

    def fingerprint_key(self) -> bytes:
        """The store's HMAC key. A store that does not exist yet is created for it: a secret's
        fingerprint must be comparable with what later plans compute (only files with secrets ask)."""
        if self._absent:
            self._db  # noqa: B018 - creating the store sets the key
        return self._key

    def lineage(self) -> str | None:
        return self._lineage

    def write(self, resource: Resource, *, expected_version: int | None) -> int:
        return self._db.write(resource, expected_version=expected_version)

    def delete(self, address: Address, *, expected_version: int) -> None:
        self._db.delete(address, expected_version=expected_version)

    def set_last_commit(self, commit: str | None) -> None:
        self._db.set_last_commit(commit)

    def lock(self, *, timeout: float, info: LockInfo) -> AbstractContextManager[None]:
        """Hold the project's apply lock (see ``lock.py``); writes meanwhile are made by ``info.holder``."""
        return self._db.lock(timeout=timeout, info=info)

    def record_apply(self, entry: HistoryEntry) -> None:
        self._db.record_apply(entry)

    def history(self, *, limit: int = 50) -> list[HistoryEntry]:
        return [] if self._absent else self._db.history(limit=limit)

    # -- other projects in this database (``projects.py``) --------------------------------------------

    # (``projects.py`` uses SQLAlchemy: imported here, so that a plan without creates never loads it)

    def claims(self, addresses: Collection[Address]) -> dict[Address, Claim]:
        """The addresses among ``addresses`` that another project of this database manages."""
        if self._absent:
            return {}
        from reconciler.state.sql import projects as sql_projects

        return sql_projects.claims(self._source_url, self.project, addresses)

    def projects(self) -> dict[str, int]:
        if self._absent:
            return {}
        from reconciler.state.sql import projects as sql_projects

        return sql_projects.counts(self._source_url)

    def move_project(self, old: str, new: str) -> int:
        from reconciler.state.sql import projects as sql_projects

        return sql_projects.move(self._source_url, old, new)

    # -- runs --------------------------------------------------------------------------------

    def create_run(self, run: RunRecord) -> RunRecord:
        return self._db.create_run(run)

    def update_run(self, run: RunRecord) -> RunRecord:
        return self._db.update_run(run)

    def claim_run(self, run: RunRecord, limits: Sequence[Limit], *, claimed: RunRecord) -> Admission:
        """Limits checked and the run claimed in one transaction (``database.SqlDatabase.claim_run``)."""
        return self._db.claim_run(run, limits, claimed=claimed)

    def settle_runs(self, runs: Sequence[RunRecord]) -> None:
        """Nothing: a claim counts the active runs themselves, so an ended run frees its slot by ending."""

    def get_run(self, run_id: str) -> RunRecord | None:
        return None if self._absent else self._db.get_run(run_id)

    def list_runs(self, *, deployment: str | None = None, limit: int = 100) -> list[RunRecord]:
        return [] if self._absent else self._db.list_runs(deployment=deployment, limit=limit)

    def job_environment(self, run: RunRecord) -> Mapping[str, str]:
        """Nothing: a launched job never talks to the SQL state (the reconciler records its runs)."""
        return {}

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        if "_db" in self.__dict__:
            self._db.close()
