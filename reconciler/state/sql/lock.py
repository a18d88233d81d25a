"""The apply lock of the SQL state: a row that says who holds it, kept alive by a heartbeat.

The row is what people and the next locker read ("locked by alice@host (pid 123, apply) since
12:00:01"). It cannot vanish by itself when its holder dies, so a row is *stale*, and taken over,
when its process is gone from this host (``os.kill(pid, 0)``) or its heartbeat is older than the
staleness window (another host, a reused pid, a frozen process). Heartbeats use each client's
clock; the window (60 s) is far wider than the clock skew of hosts that share a database.

On PostgreSQL the row is backed by a session-level advisory lock held on a dedicated connection:
the server releases it the moment the holder's connection dies, so two lockers can never both pass
even if a row is wrongly judged stale.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, delete, func, select, update

from reconciler.infra.lease import Busy, Heartbeat, holder_is_gone, wait_for
from reconciler.state.base import LockInfo
from reconciler.state.sql import engine as sql_engine
from reconciler.state.sql.schema import insert_ignoring_conflicts, locks

log = logging.getLogger(__name__)

Errors = Callable[[str], AbstractContextManager[None]]


@dataclass(frozen=True)
class LockPolicy:
    """How often a holder proves it is alive, and how old a proof may get before the lock is free."""

    heartbeat_every: float = 5.0
    stale_after: float = 60.0
    max_poll: float = 0.5  # the longest a waiting locker sleeps between attempts


DEFAULT_POLICY = LockPolicy()


@dataclass(frozen=True)
class LockRow:
    """The lock row as read from the table."""

    token: str
    holder: str
    pid: int
    host: str
    purpose: str
    acquired_at: datetime
    heartbeat_at: datetime

    def describe(self) -> str:
        since = self.acquired_at.astimezone().strftime("%H:%M:%S")
        return f"{self.holder} (pid {self.pid}, {self.purpose}) since {since}"

    def is_stale(self, *, now: datetime, stale_after: float) -> bool:
        if holder_is_gone(host=self.host, pid=self.pid):
            return True
        return (now - self.heartbeat_at).total_seconds() > stale_after


class HeldLock:
    """A lock this process holds: its row, its heartbeat and (PostgreSQL) its advisory lock."""

    def __init__(
        self, engine: Engine, *, project: str, token: str, advisory: Connection | None, policy: LockPolicy
    ) -> None:
        self._engine, self._project, self._token = engine, project, token
        self._advisory = advisory
        self._heartbeat = Heartbeat(
            self._beat, every=policy.heartbeat_every, name=f"state-lock-heartbeat:{project}"
        )

    def release(self) -> None:
        """Stop the heartbeat, delete our row (only ours: matched by token), drop the advisory lock."""
        self._heartbeat.stop()
        try:
            with self._engine.execution_options(**{sql_engine.WRITE: True}).begin() as conn:
                conn.execute(
                    delete(locks).where(locks.c.project == self._project, locks.c.token == self._token)
                )
        finally:
            _advisory_unlock(self._advisory, _advisory_key(self._project))

    def _beat(self) -> bool:
        with self._engine.execution_options(**{sql_engine.WRITE: True}).begin() as conn:
            moved = conn.execute(
                update(locks)
                .where(locks.c.project == self._project, locks.c.token == self._token)
                .values(heartbeat_at=datetime.now(UTC))
            ).rowcount
        if not moved:
            log.warning("the state lock of %s was taken over by another process", self._project)
        return bool(moved)


def acquire(
    engine: Engine, *, project: str, info: LockInfo, timeout: float, policy: LockPolicy, errors: Errors
) -> HeldLock:
    """Take the project's lock, polling until ``timeout``; raises LockTimeout naming the holder."""
    token = uuid.uuid4().hex
    postgres = engine.dialect.name == "postgresql"
    advisory: Connection | None = None

    def attempt() -> HeldLock | Busy | None:
        nonlocal advisory
        with errors("take the state lock"):
            if postgres and advisory is None:
                advisory = _try_advisory_lock(engine, _advisory_key(project))
            if postgres and advisory is None:  # held: the row (if any) says by whom
                holder = _read_row(engine, project)
                return Busy(holder.describe() if holder else None)
            got, holder = _try_insert(engine, project=project, token=token, info=info)
            if got:
                return HeldLock(engine, project=project, token=token, advisory=advisory, policy=policy)
            if holder is None:
                return None  # released between our insert and our read: try again at once
            if holder.is_stale(now=datetime.now(UTC), stale_after=policy.stale_after):
                log.warning("taking over a stale state lock of %s", holder.describe())
                _delete_row(engine, project=project, token=holder.token)
                return None
            return Busy(holder.describe())

    try:
        return wait_for(attempt, timeout=timeout, max_poll=policy.max_poll)
    except BaseException:
        _advisory_unlock(advisory, _advisory_key(project))
        raise


def _try_insert(engine: Engine, *, project: str, token: str, info: LockInfo) -> tuple[bool, LockRow | None]:
    """Insert our row: (True, None) when we got the lock, else (False, the holder's row if any)."""
    now = datetime.now(UTC)
    with engine.execution_options(**{sql_engine.WRITE: True}).begin() as conn:
        # RETURNING, not rowcount: an INSERT's rowcount is not reliable here (-1 through psycopg).
        inserted = conn.execute(
            insert_ignoring_conflicts(conn, locks)
            .values(
                project=project,
                token=token,
                holder=info.holder,
                pid=info.pid,
                host=info.host,
                purpose=info.purpose,
                acquired_at=now,
                heartbeat_at=now,
            )
            .returning(locks.c.token)
        ).first()
        if inserted is not None:
            return True, None
        row = conn.execute(_select_row(project)).one_or_none()
    return False, LockRow(*row) if row else None


def _read_row(engine: Engine, project: str) -> LockRow | None:
    with engine.connect() as conn:
        row = conn.execute(_select_row(project)).one_or_none()
    return LockRow(*row) if row else None


def _select_row(project: str) -> Select[Any]:
    c = locks.c
    return select(c.token, c.holder, c.pid, c.host, c.purpose, c.acquired_at, c.heartbeat_at).where(
        c.project == project
    )


def _delete_row(engine: Engine, *, project: str, token: str) -> None:
    with engine.execution_options(**{sql_engine.WRITE: True}).begin() as conn:
        conn.execute(delete(locks).where(locks.c.project == project, locks.c.token == token))


def _try_advisory_lock(engine: Engine, key: int) -> Connection | None:
    """A connection holding the session-level advisory lock ``key``, or None if someone has it."""
    conn = engine.connect()
    try:
        got = conn.execute(select(func.pg_try_advisory_lock(key))).scalar()
        conn.commit()  # the lock is session-level: it outlives the transaction, the connection idles
    except BaseException:
        conn.invalidate()
        conn.close()
        raise
    if not got:
        conn.close()
        return None
    return conn


def _advisory_unlock(conn: Connection | None, key: int) -> None:
    """Drop the advisory lock; if that fails, close the session for real so the server drops it."""
    if conn is None:
        return
    try:
        conn.execute(select(func.pg_advisory_unlock(key)))
        conn.commit()
    except Exception:
        conn.invalidate()  # a pooled session must never keep the lock
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def _advisory_key(project: str) -> int:
    digest = hashlib.blake2b(f"prefect-reconciler:lock:{project}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
