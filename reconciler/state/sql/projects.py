"""Several projects in one SQL database: who owns an address, which projects exist, moving a project.

Every row of the state carries its project, so two projects could each "manage" a pool ``local`` and
fight over it on every apply. The plan asks :func:`claims` for the addresses it would create: an
address another project holds is refused, naming that project. A renamed project (``name:`` edited)
would otherwise start empty beside its old state; :func:`move` gives the old name's objects, history,
runs and lineage to the new one in one transaction (``reconcile state mv-project OLD NEW``).

Each call opens its own short-lived connection: these are rare operations (a plan with creates, a
state command). Reads of a SQLite file go through the standard library, so a ``plan`` still never
imports SQLAlchemy; PostgreSQL and the move use SQLAlchemy Core.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from reconciler.errors import StateError
from reconciler.infra.redact import redact_url
from reconciler.objects import Address, Claim

if TYPE_CHECKING:
    from sqlalchemy import Engine

_CHUNK = 500  # addresses per IN (...) list: far below every dialect's parameter limit


@contextmanager
def _engine(url: str) -> Iterator[Engine]:
    from reconciler.state.sql import engine as sql_engine

    engine = sql_engine.create(sql_engine.normalize_url(url))
    try:
        yield engine
    finally:
        engine.dispose()


def _sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL when it exists (read with the standard library)."""
    scheme, sep, rest = url.partition(":///")
    if scheme.lower() not in ("sqlite", "sqlite+pysqlite") or not sep:
        return None
    path = Path(unquote(rest.split("?", 1)[0]))
    return path if path.is_file() else None


def _rows(url: str, sql: str, params: tuple[object, ...], *, action: str) -> list[tuple[Any, ...]]:
    """Rows of one read-only query (``?`` placeholders) on a SQLite file or, through SQLAlchemy, any
    other database."""
    path = _sqlite_file(url)
    if path is not None:
        try:
            with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)) as conn:
                return list(conn.execute(sql, params))
        except sqlite3.OperationalError as err:
            if str(err).startswith("no such table"):
                return []  # a file without our tables (never written to) holds no project
            raise StateError(f"cannot {action} in {redact_url(url)}: {err}") from None
        except sqlite3.Error as err:
            raise StateError(f"cannot {action} in {redact_url(url)}: {err}") from None
    from sqlalchemy import text

    from reconciler.state.sql import engine as sql_engine

    parts = sql.split("?")
    named = parts[0] + "".join(f":p{i}{part}" for i, part in enumerate(parts[1:]))
    values = {f"p{i}": value for i, value in enumerate(params)}
    with _engine(url) as engine, sql_engine.db_errors(action, url=url), engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(named), values)]


def claims(url: str, project: str, addresses: Collection[Address]) -> dict[Address, Claim]:
    """The addresses among ``addresses`` that another project of this database manages."""
    wanted = sorted({str(a) for a in addresses})
    found: dict[Address, Claim] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT address, project FROM objects WHERE project <> ? AND address IN ({marks})"
        for address, owner in _rows(url, sql, (project, *chunk), action="read other projects"):
            parsed = Address.parse(str(address))
            found[parsed] = Claim(parsed, str(owner))
    return found


def counts(url: str) -> dict[str, int]:
    """Every project that holds anything (objects, history or runs), with its number of objects."""
    sql = (
        "SELECT project, SUM(n) FROM ("
        " SELECT project, COUNT(*) AS n FROM objects GROUP BY project"
        " UNION ALL SELECT DISTINCT project, 0 FROM history"
        " UNION ALL SELECT DISTINCT project, 0 FROM runs"
        ") AS held GROUP BY project ORDER BY project"
    )
    return {str(name): int(n or 0) for name, n in _rows(url, sql, (), action="list the projects")}


def move(url: str, old: str, new: str) -> int:
    """Give ``old``'s state to ``new`` in one transaction; returns the number of objects moved.

    ``new`` must hold nothing (an empty row, made by opening it, is replaced); the apply lock of
    either name must not be held. The lineage moves too: plans saved against ``old`` apply to ``new``
    only after a fresh ``plan`` (their project name differs).
    """
    from sqlalchemy import delete, select, update

    from reconciler.state.sql import engine as sql_engine
    from reconciler.state.sql.schema import history, locks, objects, projects, runs

    if old == new:
        raise StateError("the old and the new project name are the same")
    where = sql_engine.display_url(url)
    with (
        _engine(url) as engine,
        sql_engine.db_errors("move the project", url=url),
        engine.execution_options(**{sql_engine.WRITE: True}).begin() as conn,
    ):
        if conn.execute(select(locks.c.project).where(locks.c.project.in_([old, new]))).first():
            raise StateError(f"project {old!r} or {new!r} is locked by a running apply: nothing was moved")
        if conn.execute(select(projects.c.project).where(projects.c.project == old)).first() is None:
            raise StateError(f"no project {old!r} in {where}")
        for table in (objects, history, runs):
            if conn.execute(select(table.c.project).where(table.c.project == new).limit(1)).first():
                raise StateError(f"project {new!r} already holds state in {where}: nothing was moved")
        conn.execute(delete(projects).where(projects.c.project == new))
        conn.execute(update(projects).where(projects.c.project == old).values(project=new))
        moved = conn.execute(update(objects).where(objects.c.project == old).values(project=new)).rowcount
        conn.execute(update(history).where(history.c.project == old).values(project=new))
        conn.execute(update(runs).where(runs.c.project == old).values(project=new))
    return int(moved or 0)
