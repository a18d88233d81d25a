"""Several projects in one SQL database: who owns an address, which projects exist, moving a project.

Every row of the state carries its project, so two projects could each "manage" a pool ``local`` and
fight over it on every apply. The plan asks :func:`claims` for the addresses it would create: an
address another project holds is refused, naming that project. A renamed project (``name:`` edited)
would otherwise start empty beside its old state; :func:`move` gives the old name's objects, history,
runs and lineage to the new one in one transaction (``reconcile state mv-project OLD NEW``).

Each call opens its own short-lived engine: these are rare operations (a plan with creates, a state
command), and the plain read path of a plan never needs them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, delete, func, select, update

from reconciler.errors import StateError
from reconciler.objects import Address, Claim
from reconciler.state.sql import engine as sql_engine
from reconciler.state.sql.schema import history, locks, objects, projects, runs

_CHUNK = 500  # addresses per IN (...) list: far below every dialect's parameter limit


@contextmanager
def _engine(url: str) -> Iterator[Engine]:
    engine = sql_engine.create(sql_engine.normalize_url(url))
    try:
        yield engine
    finally:
        engine.dispose()


def claims(url: str, project: str, addresses: Collection[Address]) -> dict[Address, Claim]:
    """The addresses among ``addresses`` that another project of this database manages."""
    wanted = sorted({str(a) for a in addresses})
    found: dict[Address, Claim] = {}
    if not wanted:
        return found
    with (
        _engine(url) as engine,
        sql_engine.db_errors("read other projects", url=url),
        engine.connect() as conn,
    ):
        for start in range(0, len(wanted), _CHUNK):
            statement = select(objects.c.address, objects.c.project).where(
                objects.c.address.in_(wanted[start : start + _CHUNK]), objects.c.project != project
            )
            for address, owner in conn.execute(statement):
                found[Address.parse(address)] = Claim(Address.parse(address), owner)
    return found


def counts(url: str) -> dict[str, int]:
    """Every project that holds anything (objects, history or runs), with its number of objects."""
    with _engine(url) as engine, sql_engine.db_errors("list the projects", url=url), engine.connect() as conn:
        held = {
            name: int(n)
            for name, n in conn.execute(select(objects.c.project, func.count()).group_by(objects.c.project))
        }
        for table in (history, runs):
            for (name,) in conn.execute(select(table.c.project).distinct()):
                held.setdefault(name, 0)
    return dict(sorted(held.items()))


def move(url: str, old: str, new: str) -> int:
    """Give ``old``'s state to ``new`` in one transaction; returns the number of objects moved.

    ``new`` must hold nothing (an empty row, made by opening it, is replaced); the apply lock of
    either name must not be held. The lineage moves too: plans saved against ``old`` apply to ``new``
    only after a fresh ``plan`` (their project name differs).
    """
    if old == new:
        raise StateError("the old and the new project name are the same")
    writer_options = {sql_engine.WRITE: True}
    with (
        _engine(url) as engine,
        sql_engine.db_errors("move the project", url=url),
        engine.execution_options(**writer_options).begin() as conn,
    ):
        if conn.execute(select(locks.c.project).where(locks.c.project.in_([old, new]))).first():
            raise StateError(f"project {old!r} or {new!r} is locked by a running apply: nothing was moved")
        if conn.execute(select(projects.c.project).where(projects.c.project == old)).first() is None:
            raise StateError(f"no project {old!r} in {sql_engine.display_url(url)}")
        for table in (objects, history, runs):
            if conn.execute(select(table.c.project).where(table.c.project == new).limit(1)).first():
                raise StateError(
                    f"project {new!r} already holds state in {sql_engine.display_url(url)}: nothing was moved"
                )
        conn.execute(delete(projects).where(projects.c.project == new))
        conn.execute(update(projects).where(projects.c.project == old).values(project=new))
        moved = conn.execute(update(objects).where(objects.c.project == old).values(project=new)).rowcount
        conn.execute(update(history).where(history.c.project == old).values(project=new))
        conn.execute(update(runs).where(runs.c.project == old).values(project=new))
    return int(moved or 0)
