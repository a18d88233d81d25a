"""The SQL state through SQLAlchemy Core, for SQLite (the default) and PostgreSQL: every operation.

``SqlStore`` (``store.py``) is the face; it opens this only when it needs more than reading a
SQLite state that is already at the latest schema.

Every mutation is one short transaction that checks the object's version (``UPDATE ... WHERE
version = expected``, or an INSERT that a unique violation refuses) and bumps the project's serial,
so a crash leaves each object either fully written or untouched, and the serial counts the writes
that happened. Bodies are stored as :func:`~reconciler.objects.encode_body` JSON: templates and
fingerprints, never secret values. Tables and migrations live in ``schema``, the lock in ``lock``,
URL rules and error translation in ``engine``.
"""

from __future__ import annotations

import getpass
import hashlib
import socket
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Row, delete, exc, func, insert, or_, select, update

from reconciler.errors import StaleVersion, StateError
from reconciler.objects import Address, LiveState, Resource, decode_body, encode_body
from reconciler.state.base import (
    ACTIVE_STATES,
    Admission,
    HistoryEntry,
    JobRuntime,
    Limit,
    LockInfo,
    RunRecord,
    RunState,
)
from reconciler.state.sql import engine as sql_engine
from reconciler.state.sql import lock as sql_lock
from reconciler.state.sql import schema as sql_schema
from reconciler.state.sql.rows import OBJECT_COLUMNS, collector_paused, objects_from_rows
from reconciler.state.sql.schema import history, objects, projects, runs

_OBJECT_COLUMNS = tuple(objects.c[name] for name in OBJECT_COLUMNS)


class _Conflict(Exception):
    """The row is not at the expected version (raised inside a transaction to roll it back)."""


class SqlDatabase:
    """The state of one ``project`` in a SQLite file or a PostgreSQL database.

    Several projects may share one database; every row carries its project. Opening migrates the
    schema and creates the project's row and the store's fingerprint key, all in one transaction.
    """

    job_runtime = JobRuntime.RECONCILER  # a launched job never talks to the database

    def __init__(
        self, url: str, *, project: str, lock_policy: sql_lock.LockPolicy = sql_lock.DEFAULT_POLICY
    ) -> None:
        if not project:
            raise StateError("a project name is required")
        self.url = sql_engine.display_url(url)
        self.project = project
        self._lock_policy = lock_policy
        self._holder: LockInfo | None = None
        self._actor = _default_actor()
        self._engine = sql_engine.create(sql_engine.normalize_url(url))
        self._writer = self._engine.execution_options(**{sql_engine.WRITE: True})
        # read_all reads the serial and the objects: on PostgreSQL both must come from one snapshot.
        postgres = self._engine.dialect.name == "postgresql"
        self._snapshot = (
            self._engine.execution_options(isolation_level="REPEATABLE READ") if postgres else self._engine
        )
        # A claim counts active runs after taking the limits' locks: each statement must see what the
        # previous lock holder committed, which READ COMMITTED gives (a snapshot from the transaction's
        # first statement would not).
        self._claimer = (
            self._writer.execution_options(isolation_level="READ COMMITTED") if postgres else self._writer
        )
        try:
            with self._errors("open the state"), self._writer.begin() as conn:
                sql_schema.migrate(conn)
                self._key, self._lineage = sql_schema.ensure_project(conn, project)
        except BaseException:
            self._engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"SqlDatabase({self.url!r}, project={self.project!r})"

    # -- objects -----------------------------------------------------------------------------

    def read_all(self) -> LiveState:
        statement = (
            select(*_OBJECT_COLUMNS).where(objects.c.project == self.project).order_by(objects.c.address)
        )
        head = select(projects.c.serial, projects.c.last_commit).where(projects.c.project == self.project)
        with (
            collector_paused(),
            self._errors("read the state"),
            self._snapshot.connect() as conn,
            conn.begin(),
        ):
            serial, last_commit = conn.execute(head).one()
            rows = conn.execute(statement).all()
            objects_read = objects_from_rows(rows)
        return LiveState(url=self.url, serial=serial, objects=objects_read, last_commit=last_commit)

    def fingerprint_key(self) -> bytes:
        return self._key

    def lineage(self) -> str:
        return self._lineage

    def write(self, resource: Resource, *, expected_version: int | None) -> int:
        address = str(resource.address)
        values = {
            "kind": resource.address.kind.value,
            "body": _dumps(encode_body(resource.body), what=address),
            "depends_on": _dumps([str(a) for a in resource.depends_on], what=address),
            "updated_at": datetime.now(UTC),
            "updated_by": self._holder.holder if self._holder else self._actor,
        }
        version = 1 if expected_version is None else expected_version + 1
        where = (objects.c.project == self.project, objects.c.address == address)
        with self._errors(f"write {address}"):
            try:
                with self._writer.begin() as conn:
                    if expected_version is None:
                        conn.execute(
                            insert(objects).values(project=self.project, address=address, version=1, **values)
                        )
                    else:
                        statement = update(objects).where(*where, objects.c.version == expected_version)
                        if conn.execute(statement.values(version=version, **values)).rowcount != 1:
                            raise _Conflict
                    self._bump_serial(conn)
            except (_Conflict, exc.IntegrityError):
                raise StaleVersion(address, expected_version, self._version_of(address)) from None
        return version

    def delete(self, address: Address, *, expected_version: int) -> None:
        text = str(address)
        where = (objects.c.project == self.project, objects.c.address == text)
        with self._errors(f"delete {text}"):
            try:
                with self._writer.begin() as conn:
                    statement = delete(objects).where(*where, objects.c.version == expected_version)
                    if conn.execute(statement).rowcount != 1:
                        raise _Conflict
                    self._bump_serial(conn)
            except _Conflict:
                raise StaleVersion(text, expected_version, self._version_of(text)) from None

    def set_last_commit(self, commit: str | None) -> None:
        with self._errors("record the last commit"), self._writer.begin() as conn:
            conn.execute(
                update(projects).where(projects.c.project == self.project).values(last_commit=commit)
            )

    # -- lock --------------------------------------------------------------------------------

    @contextmanager
    def lock(self, *, timeout: float, info: LockInfo) -> Iterator[None]:
        """Hold the project's apply lock (see ``lock.py``); writes meanwhile are made by ``info.holder``.

        Released on exit, also when the body raises; a failed release then only logs, so that it
        never hides the error that ended the apply (the row goes stale and is taken over later).
        """
        held = sql_lock.acquire(
            self._engine,
            project=self.project,
            info=info,
            timeout=timeout,
            policy=self._lock_policy,
            errors=self._errors,
        )
        self._holder = info
        try:
            yield
        except BaseException:
            self._holder = None
            try:
                with self._errors("release the state lock"):
                    held.release()
            except StateError as err:  # do not hide the error that ended the apply
                sql_lock.log.warning("%s", err)
            raise
        self._holder = None
        with self._errors("release the state lock"):
            held.release()

    # -- history -----------------------------------------------------------------------------

    def record_apply(self, entry: HistoryEntry) -> None:
        row = {
            "project": self.project,
            "serial": entry.serial,
            "applied_at": entry.applied_at,
            "applied_by": entry.user,
            "host": entry.host,
            "git_commit": entry.commit,
            "summary": _dumps(dict(entry.summary), what="history summary"),
            "changes": _dumps(list(entry.changes), what="history changes"),
        }
        with self._errors("record the apply"), self._writer.begin() as conn:
            conn.execute(insert(history).values(**row))

    def history(self, *, limit: int = 50) -> list[HistoryEntry]:
        statement = (
            select(history)
            .where(history.c.project == self.project)
            .order_by(history.c.id.desc())
            .limit(limit)
        )
        with self._errors("read the history"), self._engine.connect() as conn:
            rows = conn.execute(statement).all()
        return [_history_from_row(row) for row in rows]

    # -- runs --------------------------------------------------------------------------------

    def create_run(self, run: RunRecord) -> RunRecord:
        stored = run.evolve(version=1, created_at=run.created_at or datetime.now(UTC))
        with self._errors(f"record run {run.id}"):
            try:
                with self._writer.begin() as conn:
                    conn.execute(insert(runs).values(project=self.project, **_run_to_row(stored)))
            except exc.IntegrityError:
                existing = self._run_by_key(run.idempotency_key) if run.idempotency_key else None
                if existing is None:
                    raise StateError(f"run {run.id} already exists") from None
                return existing
        return stored

    def update_run(self, run: RunRecord) -> RunRecord:
        stored = run.evolve(version=run.version + 1)
        where = (runs.c.project == self.project, runs.c.id == run.id, runs.c.version == run.version)
        with self._errors(f"update run {run.id}"):
            with self._writer.begin() as conn:
                moved = conn.execute(update(runs).where(*where).values(**_run_to_row(stored))).rowcount
            if moved != 1:
                current = self.get_run(run.id)
                if current is None:
                    raise StateError(f"run {run.id} does not exist")
                raise StaleVersion(f"run {run.id}", run.version, current.version)
        return stored

    def claim_run(self, run: RunRecord, limits: Sequence[Limit], *, claimed: RunRecord) -> Admission:
        """Admit ``run`` as ``claimed`` in one write transaction, so replicas never overshoot a limit.

        PostgreSQL: the run's row is locked ``FOR UPDATE SKIP LOCKED`` (a row another replica is
        claiming right now is skipped at once, not waited for), then one transaction-level advisory
        lock per limit key, in key order (no deadlock), serializes every claim that shares a limit;
        the active runs each limit covers are counted under those locks, and the run is moved only if
        all have room. Every claim commits before its locks go, so the next claimer's count sees it.
        SQLite: ``BEGIN IMMEDIATE`` admits one writer at a time, which gives the same guarantee.
        """
        stored = claimed.evolve(version=run.version + 1)
        mine = (runs.c.project == self.project, runs.c.id == run.id)
        with self._errors(f"claim run {run.id}"), self._claimer.begin() as conn:
            postgres = conn.dialect.name == "postgresql"
            row = select(runs.c.version).where(*mine)
            if postgres:
                row = row.with_for_update(skip_locked=True)
            version = conn.execute(row).scalar()
            if version != run.version:  # claimed (or being claimed) by another process
                return Admission(self._current(conn, run), claimed=False)
            if postgres:
                for key in sorted({limit.key for limit in limits}):
                    conn.execute(select(func.pg_advisory_xact_lock(_limit_lock_key(self.project, key))))
            for limit in limits:
                if self._active(conn, limit) >= limit.limit:
                    return Admission(run, claimed=False, full=limit)
            conn.execute(
                update(runs).where(*mine, runs.c.version == run.version).values(**_run_to_row(stored))
            )
        return Admission(stored, claimed=True)

    def _active(self, conn: Any, limit: Limit) -> int:
        """Active runs of this project that ``limit`` covers, as committed now."""
        covered = []
        if limit.pools:
            covered.append(runs.c.pool.in_(sorted(limit.pools)))
        if limit.deployments:
            covered.append(runs.c.deployment.in_(sorted(limit.deployments)))
        if not covered:
            return 0
        statement = select(func.count()).where(
            runs.c.project == self.project,
            runs.c.state.in_(sorted(state.value for state in ACTIVE_STATES)),
            or_(*covered),
        )
        return int(conn.execute(statement).scalar_one())

    def _current(self, conn: Any, run: RunRecord) -> RunRecord:
        found = conn.execute(
            select(runs).where(runs.c.project == self.project, runs.c.id == run.id)
        ).one_or_none()
        return _run_from_row(found) if found is not None else run

    def get_run(self, run_id: str) -> RunRecord | None:
        statement = select(runs).where(runs.c.project == self.project, runs.c.id == run_id)
        with self._errors(f"read run {run_id}"), self._engine.connect() as conn:
            row = conn.execute(statement).one_or_none()
        return _run_from_row(row) if row else None

    def list_runs(self, *, deployment: str | None = None, limit: int = 100) -> list[RunRecord]:
        statement = select(runs).where(runs.c.project == self.project)
        if deployment is not None:
            statement = statement.where(runs.c.deployment == deployment)
        statement = statement.order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(limit)
        with self._errors("list runs"), self._engine.connect() as conn:
            rows = conn.execute(statement).all()
        return [_run_from_row(row) for row in rows]

    def job_environment(self, run: RunRecord) -> dict[str, str]:
        """Nothing: a launched job never talks to the SQL state (the reconciler records its runs)."""
        return {}

    def close(self) -> None:
        self._engine.dispose()

    # -- helpers -----------------------------------------------------------------------------

    def _errors(self, action: str) -> AbstractContextManager[None]:
        return sql_engine.db_errors(action, url=self.url)

    def _bump_serial(self, conn: Any) -> None:
        conn.execute(
            update(projects).where(projects.c.project == self.project).values(serial=projects.c.serial + 1)
        )

    def _version_of(self, address: str) -> int | None:
        statement = select(objects.c.version).where(
            objects.c.project == self.project, objects.c.address == address
        )
        with self._engine.connect() as conn:
            return conn.execute(statement).scalar()

    def _run_by_key(self, key: str) -> RunRecord | None:
        statement = select(runs).where(runs.c.project == self.project, runs.c.idempotency_key == key)
        with self._engine.connect() as conn:
            row = conn.execute(statement).one_or_none()
        return _run_from_row(row) if row else None


def _limit_lock_key(project: str, key: str) -> int:
    """The ``pg_advisory_xact_lock`` key of a limit: 64 bits of a hash of the project and the limit key
    (a stable hash: every replica, whatever its Python, locks the same number)."""
    digest = hashlib.blake2b(f"reconcile-admission\0{project}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _history_from_row(row: Row[Any]) -> HistoryEntry:
    m = row._mapping
    return HistoryEntry(
        serial=m["serial"],
        applied_at=m["applied_at"],
        user=m["applied_by"],
        host=m["host"],
        commit=m["git_commit"],
        summary=orjson.loads(m["summary"]),
        changes=tuple(orjson.loads(m["changes"])),
        id=m["id"],
    )


_RUN_JSON = ("parameters", "job_variables")
_RUN_FIELDS = (
    "id",
    "deployment",
    "pool",
    "pool_type",
    "state",
    "reason",
    "idempotency_key",
    "infrastructure_id",
    "exit_code",
    "message",
    "log_path",
    "created_at",
    "scheduled_for",
    "started_at",
    "ended_at",
    "version",
    "waiting",
    "claimed_by",
)


def _run_to_row(run: RunRecord) -> dict[str, Any]:
    row = {name: getattr(run, name) for name in _RUN_FIELDS}
    row["state"] = RunState(run.state).value
    for name in _RUN_JSON:
        row[name] = _dumps(encode_body(getattr(run, name)), what=f"run {run.id} {name}")
    return row


def _run_from_row(row: Row[Any]) -> RunRecord:
    m = row._mapping
    fields: dict[str, Any] = {name: m[name] for name in _RUN_FIELDS}
    fields["state"] = RunState(m["state"])
    for name in _RUN_JSON:
        fields[name] = decode_body(orjson.loads(m[name]))
    return RunRecord(**fields)


def _dumps(value: Any, *, what: str) -> str:
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError) as err:
        raise StateError(f"cannot store {what}: not JSON-shaped ({err})") from None


def _default_actor() -> str:
    """Who writes when no lock names a holder: ``user@host``, as the history shows it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no USER/LOGNAME (slim containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
