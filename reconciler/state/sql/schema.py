"""Tables of the SQL state and the forward migrations that create and evolve them.

Why not Alembic: the schema is small, owned by this package alone, and must upgrade itself when
any command opens the state (there is no separate "db upgrade" step for a CLI user, nor a migration
directory to ship). What Alembic would add (autogenerate, branches, downgrades, a CLI) is not needed;
what we need is an ordered list of functions applied in the same transaction that records them,
serialized against concurrent openers, which is twenty lines here. Migrations only go forward: a
store written by a newer reconciler is refused instead of being misread.

Rule for migrations: never edit a released one. The declarations below are the latest shape; a
migration that adds a column names it in ``_ADDED_COLUMNS``, so migration 1 keeps creating the shape
it released (the declarations without those columns) and the later migration adds them. Any other
change to a declaration needs migration 1 to inline the old shape.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateColumn
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeEngine

from reconciler.errors import StateError


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both dialects, read without Python work per row (read_all is hot).

    SQLite has no time type: it keeps fixed-width ISO 8601 text with the offset
    (``2026-01-02T12:00:01.123456+00:00``), which sorts like the instants and parses back in one C
    call. PostgreSQL keeps ``timestamptz``; the session's TimeZone is UTC (see ``engine.py``), so
    psycopg already returns UTC datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the state store; use an aware (UTC) datetime")
        value = value.astimezone(UTC)
        return value.isoformat(timespec="microseconds") if dialect.name == "sqlite" else value

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        return _parse_iso if dialect.name == "sqlite" else None


def _parse_iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(200), nullable=False),
    Column("applied_at", UtcDateTime, nullable=False),
)

#: Settings of the whole database, shared by its projects: the fingerprint HMAC key.
meta = Table(
    "meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

#: One row per project: the serial every write bumps, the commit of the last apply, and the lineage
#: (a random id made with the row: a re-created database is another state even at the same URL).
projects = Table(
    "projects",
    metadata,
    Column("project", String(200), primary_key=True),
    Column("serial", BigInteger, nullable=False, default=0),
    Column("last_commit", String(200)),
    Column("lineage", String(36)),  # set for every row since schema 2
)

#: The inventory. ``address`` is ``str(Address)``; ``body`` is ``encode_body`` as JSON text, so it
#: holds secret templates and fingerprints, never a secret value.
objects = Table(
    "objects",
    metadata,
    Column("project", String(200), primary_key=True),
    Column("address", String(500), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("depends_on", Text, nullable=False),  # JSON list of address strings
    Column("version", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("updated_by", String(200), nullable=False),
)

history = Table(
    "history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(200), nullable=False),
    Column("serial", BigInteger, nullable=False),
    Column("applied_at", UtcDateTime, nullable=False),
    Column("applied_by", String(200), nullable=False),  # "user" is reserved in PostgreSQL
    Column("host", String(200), nullable=False),
    Column("git_commit", String(200)),
    Column("summary", Text, nullable=False),  # JSON object action -> count
    Column("changes", Text, nullable=False),  # JSON list of "update work_pool.ecs" lines
    Index("ix_history_project_id", "project", "id"),
)

runs = Table(
    "runs",
    metadata,
    Column("project", String(200), primary_key=True),
    Column("id", String(100), primary_key=True),
    Column("deployment", String(500), nullable=False),
    Column("pool", String(200)),
    Column("pool_type", String(100)),
    Column("state", String(20), nullable=False),
    Column("parameters", Text, nullable=False),  # encode_body JSON
    Column("job_variables", Text, nullable=False),  # encode_body JSON
    Column("reason", Text, nullable=False),
    Column("idempotency_key", String(500)),
    Column("infrastructure_id", String(500)),
    Column("exit_code", Integer),
    Column("message", Text, nullable=False),
    Column("log_path", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("scheduled_for", UtcDateTime),
    Column("started_at", UtcDateTime),
    Column("ended_at", UtcDateTime),
    Column("version", Integer, nullable=False),
    Column("waiting", Text),  # why a queued run is held back (RunRecord.waiting); schema 2
    Column("claimed_by", String(300)),  # "HOST/PID" of the claiming process (RunRecord.claimed_by); schema 3
    # Both dialects treat NULLs as distinct here, so the key is unique only where it is set.
    UniqueConstraint("project", "idempotency_key", name="uq_runs_idempotency_key"),
    Index("ix_runs_project_created", "project", "created_at"),
)

#: The apply lock: at most one row per project. ``token`` tells our row from a successor's.
locks = Table(
    "locks",
    metadata,
    Column("project", String(200), primary_key=True),
    Column("token", String(64), nullable=False),
    Column("holder", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("host", String(200), nullable=False),
    Column("purpose", String(100), nullable=False),
    Column("acquired_at", UtcDateTime, nullable=False),
    Column("heartbeat_at", UtcDateTime, nullable=False),
)


class Migration(NamedTuple):
    version: int
    description: str
    apply: Callable[[Connection], None]


#: Columns each later migration adds, by table; migration 1 creates its tables without any of them.
_V2_COLUMNS: dict[str, tuple[str, ...]] = {"projects": ("lineage",), "runs": ("waiting",)}
_V3_COLUMNS: dict[str, tuple[str, ...]] = {"runs": ("claimed_by",)}
_ADDED_COLUMNS: dict[str, tuple[str, ...]] = {
    table: _V2_COLUMNS.get(table, ()) + _V3_COLUMNS.get(table, ()) for table in {*_V2_COLUMNS, *_V3_COLUMNS}
}
_WAITING_PREFIX = "waiting: "  # how schema 1 marked a held run: a prefix of its message


def _released_shape(table: Table, into: MetaData) -> Table:
    """``table`` as migration 1 released it: the declaration without the columns added since."""
    added = _ADDED_COLUMNS.get(table.name, ())
    columns = [column._copy() for column in table.columns if column.name not in added]
    extras: list[Any] = [
        UniqueConstraint(*(c.name for c in constraint.columns), name=constraint.name)
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    ]
    extras += [Index(index.name, *(c.name for c in index.columns)) for index in table.indexes]
    return Table(table.name, into, *columns, *extras)


def _v1_initial(conn: Connection) -> None:
    released = MetaData()
    for table in (meta, projects, objects, history, runs, locks):
        _released_shape(table, released).create(conn)


def _v2_lineage_and_waiting(conn: Connection) -> None:
    """Projects get a lineage; a held run's reason moves from its message prefix to ``waiting``."""
    _add_columns(conn, _V2_COLUMNS)
    for (project,) in conn.execute(select(projects.c.project)).all():
        conn.execute(update(projects).where(projects.c.project == project).values(lineage=_new_lineage()))
    held = runs.c.message.startswith(_WAITING_PREFIX, autoescape=True)
    conn.execute(
        update(runs)
        .where(held)
        .values(waiting=func.substr(runs.c.message, len(_WAITING_PREFIX) + 1), message="")
    )


def _v3_claimed_by(conn: Connection) -> None:
    """Runs name the process that claimed them, so a claim left by a killed ``serve`` is adopted at once."""
    _add_columns(conn, _V3_COLUMNS)


def _add_columns(conn: Connection, columns: dict[str, tuple[str, ...]]) -> None:
    for table_name, names in columns.items():
        table = metadata.tables[table_name]
        for name in names:
            column = CreateColumn(table.c[name]).compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {table_name} ADD COLUMN {column}")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _v1_initial),
    Migration(2, "project lineage; waiting runs", _v2_lineage_and_waiting),
    Migration(3, "the process that claimed a run", _v3_claimed_by),
)
LATEST = MIGRATIONS[-1].version

#: pg_advisory_xact_lock key serializing concurrent migrations ("reconcil" as 8 bytes).
_MIGRATION_LOCK_KEY = int.from_bytes(b"reconcil", "big", signed=True)
_FINGERPRINT_KEY = "fingerprint_key"


def migrate(conn: Connection) -> int:
    """Apply the missing migrations inside the caller's (write) transaction; returns the version.

    Concurrent openers are serialized by ``BEGIN IMMEDIATE`` on SQLite and by a transaction-level
    advisory lock on PostgreSQL, so the second one finds the work done.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))
    schema_version.create(conn, checkfirst=True)
    current = conn.execute(select(func.max(schema_version.c.version))).scalar() or 0
    if current > LATEST:
        raise StateError(
            f"the state was written by a newer prefect-reconciler (schema {current}, this one knows "
            f"up to {LATEST}); upgrade prefect-reconciler"
        )
    for migration in MIGRATIONS:
        if migration.version > current:
            migration.apply(conn)
            conn.execute(
                schema_version.insert().values(
                    version=migration.version,
                    description=migration.description,
                    applied_at=datetime.now(UTC),
                )
            )
    return LATEST


def ensure_project(conn: Connection, project: str) -> tuple[bytes, str]:
    """Create the project's row and the store's fingerprint key if missing; returns (key, lineage).

    Both use INSERT ... ON CONFLICT DO NOTHING and then read back, so two first openers agree on
    one key and one lineage whoever wins.
    """
    conn.execute(
        insert_ignoring_conflicts(conn, projects).values(project=project, serial=0, lineage=_new_lineage())
    )
    conn.execute(
        insert_ignoring_conflicts(conn, meta).values(name=_FINGERPRINT_KEY, value=secrets.token_hex(32))
    )
    key = conn.execute(select(meta.c.value).where(meta.c.name == _FINGERPRINT_KEY)).scalar_one()
    lineage = conn.execute(select(projects.c.lineage).where(projects.c.project == project)).scalar_one()
    return bytes.fromhex(key), str(lineage)


def insert_ignoring_conflicts(conn: Connection, table: Table) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the connection's dialect.

    The dialect's module is imported here, not at the top: PostgreSQL's is a large import that a
    command on a SQLite state should not pay for at start-up.
    """
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing()


def _new_lineage() -> str:
    return str(uuid.uuid4())
