"""Reading a SQLite state that is ready (at the latest schema, the project's row made) with the
standard library alone.

``plan`` only reads, and importing SQLAlchemy is a large part of its start-up. A state file that
needs nothing done to it is read here in one snapshot; anything else (a missing file, an older
schema, a new project, any write) goes through SQLAlchemy (``database.py``), which migrates and
creates. The SQL is the one ``database.py`` issues; the contract tests run both paths.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from reconciler.errors import StateError
from reconciler.objects import LiveState
from reconciler.state.sql.rows import OBJECT_COLUMNS, collector_paused, objects_from_rows

#: The schema this module reads; ``schema.LATEST`` (tests/contract pins the two together).
SCHEMA_VERSION = 3
BUSY_TIMEOUT_S = 30.0  # as the SQLAlchemy engine's: wait out a writer's checkpoint, never fail at once

_SELECT_OBJECTS = f"SELECT {', '.join(OBJECT_COLUMNS)} FROM objects WHERE project = ? ORDER BY address"


def absent_file(url: str) -> Path | None:
    """The file of a plain ``sqlite:///PATH`` URL that does not exist (yet): a store nobody wrote."""
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme.lower() not in ("sqlite", "sqlite+pysqlite") or "?" in rest or not rest:
        return None
    path = Path(unquote(rest))
    return None if path.exists() else path


def ready_file(url: str) -> Path | None:
    """The file of a plain ``sqlite:///PATH`` URL that exists; None for any other URL (the
    SQLAlchemy path validates those and says what is wrong)."""
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme.lower() not in ("sqlite", "sqlite+pysqlite") or "?" in rest or not rest:
        return None
    path = Path(unquote(rest))
    return path if path.is_file() else None


@dataclass(frozen=True)
class Opened:
    """What opening needs from the file: the fingerprint key and the project's lineage."""

    key: bytes
    lineage: str


class SqliteReader:
    """A read-only connection to one ready SQLite state file (one project in it); any thread may
    read through it, one snapshot at a time (a store is shared by serve's and watch's threads)."""

    def __init__(self, path: Path, *, project: str, display_url: str) -> None:
        self._project, self._url = project, display_url
        with self._errors("open the state"):
            self._conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA query_only = 1")
        self._guard = threading.Lock()

    def open(self) -> Opened | None:
        """Key and lineage, or None when the file is not ready (an older schema, no row for the project)."""
        with self._errors("open the state"), self._snapshot() as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"schema_version", "meta", "projects"} <= tables:
                return None
            version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                return None  # older: the full path migrates; newer: the full path refuses it
            key = conn.execute("SELECT value FROM meta WHERE name = 'fingerprint_key'").fetchone()
            row = conn.execute("SELECT lineage FROM projects WHERE project = ?", (self._project,)).fetchone()
        if key is None or row is None or row[0] is None:
            return None
        return Opened(bytes.fromhex(key[0]), str(row[0]))

    def read_all(self) -> LiveState:
        """The project's serial, last commit and objects, from one snapshot."""
        with collector_paused(), self._errors("read the state"), self._snapshot() as conn:
            serial, last_commit = conn.execute(
                "SELECT serial, last_commit FROM projects WHERE project = ?", (self._project,)
            ).fetchone()
            rows = conn.execute(_SELECT_OBJECTS, (self._project,)).fetchall()
            objects = objects_from_rows(_timed(rows))
        return LiveState(url=self._url, serial=serial, objects=objects, last_commit=last_commit)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        with self._guard:
            self._conn.execute("BEGIN DEFERRED")
            try:
                yield self._conn
            finally:
                self._conn.execute("COMMIT")

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as err:
            first = (str(err).strip().splitlines() or [""])[0][:200]
            raise StateError(f"cannot {action} in {self._url}: {type(err).__name__}: {first}") from err


def _timed(rows: list[Any]) -> Iterator[tuple[Any, ...]]:
    """Rows with ``updated_at`` (fixed-width ISO 8601 text in SQLite) as an aware datetime."""
    parse = datetime.fromisoformat
    for address, kind, body, depends_on, version, updated_at, updated_by in rows:
        yield address, kind, body, depends_on, version, parse(updated_at), updated_by
