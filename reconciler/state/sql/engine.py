"""Connecting to the SQL state: URL rules, engine settings per dialect, and the error seam.

This is the only place (with the other modules of ``state.sql``) that sees SQLAlchemy or psycopg
exceptions; :func:`db_errors` turns them into :class:`~reconciler.errors.StateError` so that the
CLI prints one line and never a driver traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url

from reconciler.errors import ReconcileError, StateError, UsageError
from reconciler.infra.install import install_hint
from reconciler.infra.redact import redact_url, redact_urls

#: Execution option that makes a SQLite transaction take the write lock at BEGIN (``BEGIN IMMEDIATE``).
#: Without it a read-then-write transaction can fail with SQLITE_BUSY instead of waiting its turn.
WRITE = "reconciler_write"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalize_url(url: str) -> URL:
    """``postgres://`` and ``postgresql://`` mean psycopg 3; SQLite needs a file path."""
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError):
        raise UsageError(f"not a database URL: {redact_url(url)!r}") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgres", "postgresql"):
        if driver not in ("", "psycopg"):
            raise UsageError(f"unsupported PostgreSQL driver {driver!r}: use postgresql+psycopg://...")
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise UsageError(f"unsupported SQLite driver {driver!r}: use sqlite:///PATH")
        if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
            raise UsageError("SQLite state needs a file path: sqlite:///PATH (relative) or sqlite:////PATH")
        return parsed.set(drivername="sqlite")
    raise UsageError(
        f"unsupported state URL {redact_url(url)!r}: use sqlite:///PATH or postgresql+psycopg://..."
    )


def display_url(url: str) -> str:
    """The URL as plans and messages show it: as the user wrote it, credentials masked (infra.redact)."""
    return redact_url(url)


def create(url: URL) -> Engine:
    """An engine for ``url`` (from :func:`normalize_url`) with the dialect's concurrency settings."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    try:
        return create_engine(
            url,
            pool_pre_ping=True,  # a long `serve` loop outlives server restarts and idle timeouts
            # UTC sessions: timestamptz values come back in UTC, with no conversion per row.
            connect_args={
                "connect_timeout": 10,
                "application_name": "prefect-reconciler",
                "options": "-c TimeZone=UTC",
            },
        )
    except ImportError:
        raise StateError(f"PostgreSQL state needs the psycopg driver: {install_hint('postgres')}") from None


@contextmanager
def db_errors(action: str, *, url: str) -> Iterator[None]:
    """Translate database failures into StateError naming the step; our own errors pass through."""
    try:
        yield
    except ReconcileError:
        raise
    except exc.DBAPIError as err:
        raise StateError(f"cannot {action} in {redact_url(url)}: {_driver_message(err)}") from err
    except exc.SQLAlchemyError as err:
        raise StateError(f"cannot {action} in {redact_url(url)}: {type(err).__name__}") from err
    except OSError as err:
        raise StateError(
            f"cannot {action} in {redact_url(url)}: {redact_urls(str(err.strerror or err))}"
        ) from err
    except ImportError:  # the dialect loads its driver lazily on first connect
        raise StateError(f"PostgreSQL state needs the psycopg driver: {install_hint('postgres')}") from None


def _sqlite_engine(url: URL) -> Engine:
    path = Path(url.database or "")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # The file holds the fingerprint HMAC key: readable by its owner only. SQLite gives the
        # -wal and -shm files the mode of the database file.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy's recipe: stop sqlite3's implicit BEGIN so that we emit our own (see _sqlite_on_begin)
    # and DDL runs inside the migration transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")  # readers never block the writer, and the reverse
    cursor.execute("PRAGMA synchronous = NORMAL")  # durable in WAL mode except on power loss
    cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    mode = "IMMEDIATE" if connection.get_execution_options().get(WRITE) else "DEFERRED"
    connection.exec_driver_sql(f"BEGIN {mode}")


def _driver_message(err: exc.DBAPIError) -> str:
    """First line of the driver's message: no SQL text, no parameters, no DETAIL lines with values."""
    original = err.orig if err.orig is not None else err
    lines = str(original).strip().splitlines()
    first = lines[0].strip() if lines else ""
    first = first[:200]
    first = redact_urls(first)  # a driver may echo the connection string
    return f"{type(original).__name__}: {first}" if first else type(original).__name__
