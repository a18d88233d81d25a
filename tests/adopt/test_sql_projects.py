"""Several projects in one SQL database (SQLite and PostgreSQL): claims, the project list, moving."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from reconciler.errors import StateError
from reconciler.objects import Address, Claim, Resource
from reconciler.state import HoldsProjects, KnowsClaims
from reconciler.state.sql.store import SqlStore

POOL, OTHER = Address.pool("local"), Address.pool("other")


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_claims_projects_and_move(url: str) -> None:
    a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    first, second = SqlStore(url, project=a), SqlStore(url, project=b)
    try:
        assert isinstance(first, KnowsClaims) and isinstance(first, HoldsProjects)
        first.write(Resource(POOL, {"type": "process"}), expected_version=None)
        assert second.claims([POOL, OTHER]) == {POOL: Claim(POOL, a)}
        assert first.claims([POOL]) == {}  # its own objects are no claim
        assert second.projects()[a] == 1 and b not in second.projects()  # an empty row is no project
        with pytest.raises(StateError, match="already holds state"):
            second.write(Resource(OTHER, {"type": "process"}), expected_version=None)
            second.move_project(a, b)
        renamed = f"c-{uuid.uuid4().hex[:8]}"
        assert first.move_project(a, renamed) == 1
        moved = SqlStore(url, project=renamed)
        try:
            assert list(moved.read_all().objects) == [POOL]
            assert moved.lineage() == first.lineage()  # the lineage moved with the objects
            assert a not in moved.projects() and moved.projects()[renamed] == 1
        finally:
            moved.close()
        with pytest.raises(StateError, match="no project"):
            first.move_project(a, f"d-{uuid.uuid4().hex[:8]}")
    finally:
        first.close()
        second.close()
