"""One contract for every Store backend: memory (the reference), SQLite and PostgreSQL.

Each test says what apply, plan and launch rely on. Tests that need a second process or the
database itself (a stale lock row, kill -9, the bytes of the SQLite file) run on the SQL backends
only, through ``sql_store_factory``.
"""

from __future__ import annotations

import hashlib
import hmac
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from reconciler.errors import LockTimeout, StaleVersion, StateError, UsageError
from reconciler.objects import Address, Resource, Secret
from reconciler.state import HistoryEntry, LockInfo, MemoryStore, RunRecord, RunState, Store
from reconciler.state.sql import engine as sql_engine
from reconciler.state.sql import lock as sql_lock
from reconciler.state.sql import schema as sql_schema
from reconciler.state.sql.store import SqlStore
from tests.contract import workers

POOL = Address.pool("ecs-push")
BLOCK = Address.block("aws-credentials", "prod")
DEPLOYMENT = Address.deployment("etl", "daily")
T0 = datetime(2026, 1, 2, 12, 0, 1, 123456, tzinfo=UTC)


@dataclass
class StoreFactory:
    """Opens stores of one backend. Calling it again for a project reopens the same state."""

    backend: str
    url: str | None  # None for memory
    project: str
    opened: list[Store] = field(default_factory=list)
    memory: dict[str, MemoryStore] = field(default_factory=dict)

    def __call__(self, *, project: str | None = None) -> Store:
        name = project or self.project
        if self.url is None:
            return self.memory.setdefault(name, MemoryStore(project=name))
        store = SqlStore(self.url, project=name)
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


BACKENDS = ["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
SQL_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    # Every test gets its own project (and, on PostgreSQL, its own database: tests/fixtures/postgres.py).
    project = f"p-{uuid.uuid4().hex[:12]}"
    if request.param == "memory":
        return StoreFactory("memory", None, project)
    if request.param == "sqlite":
        return StoreFactory("sqlite", f"sqlite:///{tmp_path}/state/state.db", project)
    return StoreFactory("postgresql", request.getfixturevalue("postgres_url"), project)


@pytest.fixture(params=BACKENDS)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    factory = _factory(request, tmp_path)
    yield factory
    factory.close_all()


@pytest.fixture(params=SQL_BACKENDS)
def sql_store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    factory = _factory(request, tmp_path)
    yield factory
    factory.close_all()


def _info(holder: str = "alice@host", *, host: str = "host", pid: int | None = None) -> LockInfo:
    return LockInfo(holder=holder, pid=os.getpid() if pid is None else pid, host=host, purpose="apply")


def _body() -> dict[str, Any]:
    """Nested JSON of every type, with Secret leaves in a mapping and in a list."""
    return {
        "type": "ecs:push",
        "concurrency_limit": 20,
        "paused": False,
        "ratio": 0.1,
        "big": 2**62,
        "nothing": None,
        "empty": {"list": [], "map": {}},
        "unicode": "café ☕ 東京",
        "job_variables": {
            "cluster": "prod",
            "env": [{"name": "TOKEN", "value": Secret("Bearer {{ $API_TOKEN }}", "fp-token")}],
            "aws_secret_access_key": Secret("{{ $AWS_SECRET_ACCESS_KEY }}", "fp-aws"),
            "note": 'a "$secret" in text is just text',
        },
    }


# -- objects ---------------------------------------------------------------------------------


def test_implements_the_protocol(store_factory: StoreFactory) -> None:
    store = store_factory()
    assert isinstance(store, Store)
    assert store.project == store_factory.project
    assert store.read_all().url == store.url
    assert store.job_environment(_run("r-1")) == {}  # jobs never talk to these stores


def test_write_read_round_trip(store_factory: StoreFactory) -> None:
    store = store_factory()
    resource = Resource(POOL, _body(), depends_on=(BLOCK,))
    assert store.write(resource, expected_version=None) == 1
    store.write(Resource(BLOCK, {"data": {"region_name": "us-east-1"}}), expected_version=None)

    live = store_factory().read_all()  # a reopened store sees the same

    stored = live.get(POOL)
    assert stored is not None
    assert stored.resource == resource
    assert stored.version == 1
    assert stored.address == POOL
    assert stored.updated_at is not None and stored.updated_at.tzinfo is not None
    assert set(live.objects) == {POOL, BLOCK}
    assert live.get(DEPLOYMENT) is None


_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)  # JSON cannot hold lone surrogates
_SECRETS = st.builds(Secret, template=_TEXT.map(lambda t: f"{t}{{{{ $TOKEN }}}}"), fingerprint=_TEXT)
_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
    | _SECRETS
)
_KEYS = _TEXT.filter(lambda key: key != "$secret")  # the one key encode_body reserves
_BODIES = st.dictionaries(
    _KEYS,
    st.recursive(
        _LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4)
    ),
    max_size=6,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_BODIES)
def test_any_body_round_trips(store_factory: StoreFactory, body: dict[str, Any]) -> None:
    store = store_factory()
    address = Address.pool(f"pool-{uuid.uuid4().hex}")
    store.write(Resource(address, body), expected_version=None)
    stored = store.read_all().get(address)
    assert stored is not None and stored.resource.body == body


def test_versions_increase_and_serial_counts_writes(store_factory: StoreFactory) -> None:
    store = store_factory()
    assert store.read_all().serial == 0
    assert store.write(Resource(POOL, {"v": 1}), expected_version=None) == 1
    assert store.write(Resource(POOL, {"v": 2}), expected_version=1) == 2
    assert store.write(Resource(POOL, {"v": 3}), expected_version=2) == 3
    store.write(Resource(BLOCK, {"v": 1}), expected_version=None)
    store.delete(BLOCK, expected_version=1)

    live = store.read_all()
    assert live.serial == 5
    stored = live.get(POOL)
    assert stored is not None and stored.version == 3 and stored.resource.body == {"v": 3}
    assert live.get(BLOCK) is None


def test_stale_write_raises(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.write(Resource(POOL, {"v": 1}), expected_version=None)
    store.write(Resource(POOL, {"v": 2}), expected_version=1)

    with pytest.raises(StaleVersion) as moved:
        store.write(Resource(POOL, {"v": "late"}), expected_version=1)
    assert (moved.value.address, moved.value.expected, moved.value.actual) == (str(POOL), 1, 2)
    with pytest.raises(StaleVersion) as exists:
        store.write(Resource(POOL, {"v": "dup"}), expected_version=None)
    assert (exists.value.expected, exists.value.actual) == (None, 2)
    with pytest.raises(StaleVersion) as absent:
        store.write(Resource(BLOCK, {"v": 1}), expected_version=3)
    assert (absent.value.expected, absent.value.actual) == (3, None)

    live = store.read_all()
    assert live.serial == 2  # refused writes do not count
    stored = live.get(POOL)
    assert stored is not None and stored.resource.body == {"v": 2}


def test_stale_delete_raises(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.write(Resource(POOL, {"v": 1}), expected_version=None)
    store.write(Resource(POOL, {"v": 2}), expected_version=1)

    with pytest.raises(StaleVersion) as moved:
        store.delete(POOL, expected_version=1)
    assert moved.value.actual == 2
    with pytest.raises(StaleVersion) as absent:
        store.delete(BLOCK, expected_version=1)
    assert absent.value.actual is None
    assert store.read_all().get(POOL) is not None
    assert store.read_all().serial == 2


def test_recreate_after_delete_starts_again(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.write(Resource(POOL, {"v": 1}), expected_version=None)
    store.delete(POOL, expected_version=1)
    assert store.write(Resource(POOL, {"v": "again"}), expected_version=None) == 1
    assert store.read_all().serial == 3


def test_projects_are_isolated(store_factory: StoreFactory) -> None:
    a, b = store_factory(project="team-a"), store_factory(project="team-b")
    a.write(Resource(POOL, {"owner": "a"}), expected_version=None)
    a.set_last_commit("aaaa")
    a.record_apply(_entry(1))
    a.create_run(_run("r-1", key="k"))

    assert b.write(Resource(POOL, {"owner": "b"}), expected_version=None) == 1  # same address, own project
    live_a, live_b = a.read_all(), b.read_all()
    assert (live_a.serial, live_b.serial) == (1, 1)
    assert live_a.objects[POOL].resource.body == {"owner": "a"}
    assert live_b.objects[POOL].resource.body == {"owner": "b"}
    assert (live_a.last_commit, live_b.last_commit) == ("aaaa", None)
    assert b.history() == [] and b.list_runs() == [] and b.get_run("r-1") is None
    assert b.create_run(_run("r-2", key="k")).id == "r-2"  # idempotency keys are per project
    with a.lock(timeout=1, info=_info()), b.lock(timeout=1, info=_info()):
        pass  # locks are per project


def test_last_commit(store_factory: StoreFactory) -> None:
    store = store_factory()
    assert store.read_all().last_commit is None
    store.set_last_commit("3f2a9c1")
    assert store_factory().read_all().last_commit == "3f2a9c1"
    store.set_last_commit(None)
    assert store.read_all().last_commit is None


def test_fingerprint_key_is_32_bytes(store_factory: StoreFactory) -> None:
    key = store_factory().fingerprint_key()
    assert isinstance(key, bytes) and len(key) == 32
    assert store_factory().fingerprint_key() == key


def test_lineage_is_made_once_and_names_this_store(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.set_last_commit("abc123")  # by its first write at the latest, a store has its lineage
    lineage = store.lineage()
    assert lineage is not None and str(uuid.UUID(lineage)) == lineage  # random, not from the URL or name
    store.set_last_commit("def456")  # a write of the project's own record keeps it
    assert store.lineage() == lineage and store_factory().lineage() == lineage  # stable, reopened too
    another = store_factory(project="another")
    another.set_last_commit("abc123")
    assert another.lineage() not in (None, lineage)


def test_a_recreated_database_has_another_lineage(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    first = SqlStore(url, project="p")
    lineage = first.lineage()
    first.close()
    (tmp_path / "state.db").unlink()
    second = SqlStore(url, project="p")
    assert second.lineage() != lineage
    second.close()


def test_fingerprint_key_survives_reopen(sql_store_factory: StoreFactory) -> None:
    key = sql_store_factory().fingerprint_key()
    reopened = sql_store_factory()
    assert reopened.fingerprint_key() == key
    assert sql_store_factory(project="another").fingerprint_key() == key  # one key per store


# -- history ---------------------------------------------------------------------------------


def _entry(serial: int) -> HistoryEntry:
    return HistoryEntry(
        serial=serial,
        applied_at=T0 + timedelta(minutes=serial),
        user="alice",
        host="laptop",
        commit=f"c{serial}",
        summary={"create": serial, "update": 0},
        changes=(f"create work_pool.p{serial}",),
    )


def test_history_newest_first_with_limit(store_factory: StoreFactory) -> None:
    store = store_factory()
    assert store.history() == []
    for serial in (1, 2, 3):
        store.record_apply(_entry(serial))

    entries = store_factory().history()
    assert [replace(e, id=None) for e in entries] == [_entry(3), _entry(2), _entry(1)]
    assert all(e.id is not None for e in entries)
    assert [e.serial for e in store.history(limit=2)] == [3, 2]


# -- runs ------------------------------------------------------------------------------------


def _run(run_id: str, *, key: str | None = None, deployment: str = "etl/daily", **extra: Any) -> RunRecord:
    return RunRecord(
        id=run_id,
        deployment=deployment,
        pool="ecs-push",
        pool_type="ecs:push",
        state=RunState.SCHEDULED,
        parameters={"rows": 1000, "nested": {"a": [1, 2]}},
        job_variables={"image": "ghcr.io/acme/etl:1.4", "token": Secret("{{ $API_TOKEN }}", "fp-token")},
        reason="manual",
        idempotency_key=key,
        **extra,
    )


def test_run_round_trip(store_factory: StoreFactory) -> None:
    store = store_factory()
    run = _run("r-1", key="schedule:etl/daily:2026-01-02T12:00", scheduled_for=T0, created_at=T0)
    created = store.create_run(run)

    assert created == replace(run, version=1)
    assert store_factory().get_run("r-1") == created
    assert store.get_run("missing") is None

    fresh = store.create_run(_run("r-2"))
    assert fresh.version == 1 and fresh.created_at is not None  # the store stamps creation


def test_a_runs_waiting_reason_is_stored_and_cleared(store_factory: StoreFactory) -> None:
    store = store_factory()
    created = store.create_run(_run("r-1"))
    assert created.waiting is None
    held = store.update_run(created.evolve(waiting="pool local concurrency limit 2 reached"))
    assert store_factory().get_run("r-1") == held
    assert held.waiting == "pool local concurrency limit 2 reached" and held.message == ""
    claimed = store.update_run(held.evolve(state=RunState.PENDING, waiting=None))
    assert store_factory().get_run("r-1").waiting is None  # type: ignore[union-attr]
    assert claimed.waiting is None


def test_run_idempotency_key_returns_existing(store_factory: StoreFactory) -> None:
    store = store_factory()
    first = store.create_run(_run("r-1", key="k-1"))
    again = store.create_run(_run("r-2", key="k-1"))

    assert again == first
    assert [r.id for r in store.list_runs()] == ["r-1"]
    assert store.create_run(_run("r-3")).id == "r-3"
    assert store.create_run(_run("r-4")).id == "r-4"  # no key: never deduplicated


def test_run_idempotency_is_race_safe(store_factory: StoreFactory) -> None:
    stores = [store_factory() for _ in range(6)]
    results: list[str] = []
    barrier = threading.Barrier(len(stores))

    def create(index: int) -> None:
        barrier.wait()
        results.append(stores[index].create_run(_run(f"r-{index}", key="same-slot")).id)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == len(stores) and len(set(results)) == 1
    assert len(stores[0].list_runs()) == 1


def test_duplicate_run_id_is_an_error(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.create_run(_run("r-1"))
    with pytest.raises(StateError, match="r-1"):
        store.create_run(_run("r-1"))


def test_update_run_is_optimistic(store_factory: StoreFactory) -> None:
    store = store_factory()
    created = store.create_run(_run("r-1"))
    running = store.update_run(
        created.evolve(state=RunState.RUNNING, infrastructure_id="arn:task/1", started_at=T0)
    )
    assert running.version == 2
    assert store.get_run("r-1") == running

    with pytest.raises(StaleVersion) as stale:
        store.update_run(created.evolve(state=RunState.CRASHED))
    assert (stale.value.expected, stale.value.actual) == (1, 2)

    done = store.update_run(running.evolve(state=RunState.COMPLETED, exit_code=0, ended_at=T0 + timedelta(1)))
    assert store_factory().get_run("r-1") == done and done.version == 3
    with pytest.raises(StateError):
        store.update_run(_run("never-created"))


def test_list_runs_newest_first_with_filter_and_limit(store_factory: StoreFactory) -> None:
    store = store_factory()
    for minute, (run_id, deployment) in enumerate(
        [("a", "etl/daily"), ("b", "etl/hourly"), ("c", "etl/daily")]
    ):
        store.create_run(_run(run_id, deployment=deployment, created_at=T0 + timedelta(minutes=minute)))

    assert [r.id for r in store.list_runs()] == ["c", "b", "a"]
    assert [r.id for r in store.list_runs(deployment="etl/daily")] == ["c", "a"]
    assert [r.id for r in store.list_runs(limit=2)] == ["c", "b"]
    assert store.list_runs(deployment="nope/none") == []


# -- lock ------------------------------------------------------------------------------------


def test_lock_timeout_names_the_holder(store_factory: StoreFactory) -> None:
    holder, waiter = store_factory(), store_factory()
    with holder.lock(timeout=1, info=_info("alice@host", pid=4242)):
        started = time.monotonic()
        with pytest.raises(LockTimeout) as timeout, waiter.lock(timeout=0.3, info=_info("bob@elsewhere")):
            pytest.fail("the lock was given twice")
    assert time.monotonic() - started >= 0.3
    message = str(timeout.value)
    assert "alice@host" in message and "pid 4242" in message and "0.3s" in message


def test_lock_waits_for_release(store_factory: StoreFactory) -> None:
    """The waiter gets the lock only after the holder let it go (a lock that does nothing fails here)."""
    holder, waiter = store_factory(), store_factory()
    acquired = threading.Event()
    events: list[str] = []

    def hold() -> None:
        with holder.lock(timeout=1, info=_info("alice@host")):
            acquired.set()
            time.sleep(0.3)
            events.append("holder releases")

    thread = threading.Thread(target=hold)
    thread.start()
    assert acquired.wait(5)
    asked = time.monotonic()
    with waiter.lock(timeout=10, info=_info("bob@host")):
        events.append("waiter acquires")
        waited = time.monotonic() - asked
    thread.join()
    assert events == ["holder releases", "waiter acquires"]
    assert waited >= 0.1  # it was held back for most of the holder's 0.3 s


def test_lock_released_on_exception(store_factory: StoreFactory) -> None:
    store = store_factory()
    with pytest.raises(RuntimeError, match="boom"), store.lock(timeout=1, info=_info()):
        raise RuntimeError("boom")
    with store_factory().lock(timeout=0, info=_info("bob@host")):
        pass


def test_writes_under_lock_are_attributed_to_the_holder(sql_store_factory: StoreFactory) -> None:
    store = sql_store_factory()
    with store.lock(timeout=1, info=_info("carol@ci")):
        store.write(Resource(POOL, {}), expected_version=None)
    stored = store.read_all().get(POOL)
    assert stored is not None and stored.updated_by == "carol@ci"


def _insert_lock_row(url: str, project: str, **row: Any) -> None:
    now = datetime.now(UTC)
    values = {"project": project, "token": "theirs", "holder": "ghost@host", "purpose": "apply"}
    values |= {"acquired_at": now, "heartbeat_at": now, **row}
    engine = sql_engine.create(sql_engine.normalize_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(sql_schema.locks.insert().values(**values))
    finally:
        engine.dispose()


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()  # reaped: the pid is gone
    return child.pid


def test_stale_lock_of_a_dead_process_is_taken_over(sql_store_factory: StoreFactory) -> None:
    store = sql_store_factory()
    assert sql_store_factory.url is not None
    _insert_lock_row(sql_store_factory.url, store.project, pid=_dead_pid(), host=socket.gethostname())
    with store.lock(timeout=5, info=_info("bob@host")):
        store.write(Resource(POOL, {}), expected_version=None)


def test_lock_of_another_host_is_kept_while_its_heartbeat_is_fresh(sql_store_factory: StoreFactory) -> None:
    store = sql_store_factory()
    assert sql_store_factory.url is not None
    _insert_lock_row(sql_store_factory.url, store.project, pid=1, host="elsewhere", holder="dave@elsewhere")
    expected = r"dave@elsewhere \(pid 1, apply\) since \d\d:\d\d:\d\d"
    with pytest.raises(LockTimeout, match=expected), store.lock(timeout=0.2, info=_info("bob@host")):
        pass


def test_lock_of_another_host_with_an_old_heartbeat_is_taken_over(sql_store_factory: StoreFactory) -> None:
    store = sql_store_factory()
    assert sql_store_factory.url is not None
    old = datetime.now(UTC) - timedelta(minutes=10)
    _insert_lock_row(
        sql_store_factory.url, store.project, pid=1, host="elsewhere", acquired_at=old, heartbeat_at=old
    )
    with store.lock(timeout=5, info=_info("bob@host")):
        pass


def test_lock_heartbeat_keeps_the_row_fresh(sql_store_factory: StoreFactory) -> None:
    assert sql_store_factory.url is not None
    policy = sql_lock.LockPolicy(heartbeat_every=0.05)
    store = SqlStore(sql_store_factory.url, project=sql_store_factory.project, lock_policy=policy)
    sql_store_factory.opened.append(store)
    engine = sql_engine.create(sql_engine.normalize_url(sql_store_factory.url))
    locks = sql_schema.locks.c
    try:
        with store.lock(timeout=1, info=_info()):
            time.sleep(0.4)
            with engine.connect() as conn:
                acquired, beat = conn.execute(
                    select(locks.acquired_at, locks.heartbeat_at).where(locks.project == store.project)
                ).one()
            assert beat > acquired
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).where(locks.project == store.project)).scalar() == 0
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_advisory_lock_holds_without_the_row(postgres_url: str) -> None:
    project = f"p-{uuid.uuid4().hex[:12]}"
    holder, waiter = SqlStore(postgres_url, project=project), SqlStore(postgres_url, project=project)
    engine = sql_engine.create(sql_engine.normalize_url(postgres_url))
    try:
        with holder.lock(timeout=1, info=_info()):
            with engine.begin() as conn:  # someone "cleans up" the row by hand
                conn.execute(sql_schema.locks.delete().where(sql_schema.locks.c.project == project))
            with (
                pytest.raises(LockTimeout, match="another process"),
                waiter.lock(timeout=0.3, info=_info("bob")),
            ):
                pass
    finally:
        engine.dispose()
        holder.close()
        waiter.close()


# -- several processes -----------------------------------------------------------------------


def test_concurrent_applies_in_processes(sql_store_factory: StoreFactory) -> None:
    assert sql_store_factory.url is not None
    store = sql_store_factory()  # migrates before the workers race
    workers_count, rounds, shared = 4, 6, 3
    context = multiprocessing.get_context("spawn")
    args = [(sql_store_factory.url, store.project, w, rounds, shared) for w in range(workers_count)]
    with context.Pool(workers_count) as pool:
        results = pool.starmap(workers.concurrent_apply, args)

    locked = sum(r[0] for r in results)
    raced = sum(r[1] for r in results)
    live = store.read_all()
    assert locked == workers_count * rounds * 2
    assert live.serial == locked + raced
    owned = {a for a in live.objects if a.name.startswith("own-")}
    assert owned == {Address.pool(f"own-{w}-{r}") for w in range(workers_count) for r in range(rounds)}
    assert all(live.objects[a].version == 1 for a in owned)
    for k in range(shared):
        assert live.objects[Address.pool(f"shared-{k}")].version == workers_count * rounds // shared
    races = [o for a, o in live.objects.items() if a.name.startswith("race-")]
    assert sum(o.version for o in races) == raced  # each successful race write is one version step
    assert _row_count(sql_store_factory.url, store.project) == len(live.objects)  # no duplicates


def _row_count(url: str, project: str) -> int:
    engine = sql_engine.create(sql_engine.normalize_url(url))
    try:
        with engine.connect() as conn:
            objects = sql_schema.objects
            return int(conn.execute(select(func.count()).where(objects.c.project == project)).scalar_one())
    finally:
        engine.dispose()


def test_kill_9_mid_apply_leaves_whole_objects_and_a_takeable_lock(sql_store_factory: StoreFactory) -> None:
    assert sql_store_factory.url is not None
    project = sql_store_factory.project
    sql_store_factory()  # migrate first
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    child = context.Process(
        target=workers.write_until_killed, args=(sql_store_factory.url, project, started, 100_000)
    )
    child.start()
    try:
        assert started.wait(60), "the child never started writing"
        time.sleep(0.2)
    finally:
        os.kill(child.pid or 0, signal.SIGKILL)
        child.join()  # reaped: its pid no longer exists on this host

    store = sql_store_factory()
    with store.lock(timeout=20, info=workers.lock_info("next")):
        live = store.read_all()
    indexes = sorted(int(a.name.removeprefix("obj-")) for a in live.objects)
    assert len(indexes) > 10
    assert indexes == list(range(len(indexes)))  # a prefix: nothing half-written, nothing skipped
    for index in indexes:
        stored = live.objects[Address.pool(f"obj-{index:06d}")]
        assert stored.version == 1 and stored.resource.body == workers.big_body(index)
    assert live.serial == len(indexes)


# -- secrets ---------------------------------------------------------------------------------


def test_sqlite_file_never_holds_a_secret_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    value = f"never-given-to-the-store-{uuid.uuid4().hex}"
    monkeypatch.setenv("X", value)  # resolvable here, so a store that resolved it would leak it
    store = SqlStore(f"sqlite:///{tmp_path}/state.db", project="p")
    fingerprint = hmac.new(store.fingerprint_key(), value.encode(), hashlib.sha256).hexdigest()
    store.write(Resource(BLOCK, {"data": {"secret": Secret("{{ $X }}", fingerprint)}}), expected_version=None)
    store.create_run(_run("r-1").evolve(job_variables={"x": Secret("{{ $X }}", fingerprint)}))
    with store.lock(timeout=1, info=_info()):
        stored = store.read_all().get(BLOCK)
    store.close()

    assert stored is not None and stored.resource.body["data"]["secret"] == Secret("{{ $X }}", fingerprint)
    files = sorted(tmp_path.glob("state.db*"))
    content = b"".join(path.read_bytes() for path in files)
    assert value.encode() not in content
    assert fingerprint.encode() in content
    assert all(path.stat().st_mode & 0o077 == 0 for path in files)  # the HMAC key is in there


# -- opening ---------------------------------------------------------------------------------


def test_sqlite_creates_parent_directories(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/a/b/c/state.db", project="p")
    store.close()
    assert (tmp_path / "a/b/c/state.db").exists()


def test_schema_1_stores_are_migrated_with_their_waiting_runs(tmp_path: Path) -> None:
    """A store written before schema 2: its projects get a lineage, a held run's reason (a message
    prefix then) moves to ``waiting``, other messages stay."""
    url = f"sqlite:///{tmp_path}/state.db"
    engine = sql_engine.create(sql_engine.normalize_url(url))
    with engine.begin() as conn:
        sql_schema.schema_version.create(conn)
        sql_schema.MIGRATIONS[0].apply(conn)
        conn.execute(
            sql_schema.schema_version.insert().values(version=1, description="initial schema", applied_at=T0)
        )
        conn.exec_driver_sql("INSERT INTO projects (project, serial) VALUES ('p', 3)")
        for run_id, message in (
            ("held", "waiting: pool local concurrency limit 2 reached"),
            ("other", "boom"),
        ):
            row = {
                "project": "p",
                "id": run_id,
                "deployment": "etl/daily",
                "state": "SCHEDULED",
                "parameters": "{}",
                "job_variables": "{}",
                "reason": "manual",
                "message": message,
                "created_at": T0.isoformat(timespec="microseconds"),
                "version": 1,
            }
            columns = ", ".join(row)
            conn.exec_driver_sql(
                f"INSERT INTO runs ({columns}) VALUES ({', '.join('?' for _ in row)})", tuple(row.values())
            )
    engine.dispose()

    store = SqlStore(url, project="p")
    held, other = store.get_run("held"), store.get_run("other")
    assert (
        held is not None and held.waiting == "pool local concurrency limit 2 reached" and held.message == ""
    )
    assert other is not None and other.waiting is None and other.message == "boom"
    assert str(uuid.UUID(store.lineage())) == store.lineage()
    assert store.read_all().serial == 3
    store.close()


def test_a_ready_sqlite_state_is_read_without_sqlalchemy(tmp_path: Path) -> None:
    """``plan`` only reads: a SQLite state at the latest schema is opened and read by the standard
    library, and SQLAlchemy (a large part of start-up) is imported only when something writes."""
    url = f"sqlite:///{tmp_path}/state.db"
    made = SqlStore(url, project="p")  # creates the file, the schema and the project: SQLAlchemy
    made.write(Resource(POOL, _body()), expected_version=None)
    lineage = made.lineage()
    made.close()
    probe = f"""
import sys
from reconciler.objects import Address
from reconciler.state.sql.store import SqlStore
pool = Address.parse({str(POOL)!r})
store = SqlStore({url!r}, project="p")
live = store.read_all()
assert live.serial == 1 and list(live.objects) == [pool], live
assert store.lineage() == {lineage!r}
print("sqlalchemy" in sys.modules)
store.write(live.objects[pool].resource, expected_version=1)
print("sqlalchemy" in sys.modules, store.read_all().serial)
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "2"]


def test_the_stdlib_reader_knows_the_latest_schema() -> None:
    from reconciler.state.sql import sqlite_read

    assert sqlite_read.SCHEMA_VERSION == sql_schema.LATEST


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    SqlStore(url, project="p").close()
    engine = sql_engine.create(sql_engine.normalize_url(url))
    with engine.begin() as conn:
        conn.execute(
            sql_schema.schema_version.insert().values(version=999, description="future", applied_at=T0)
        )
    engine.dispose()
    with pytest.raises(StateError, match="newer prefect-reconciler"):
        SqlStore(url, project="p")


def test_missing_psycopg_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "psycopg", None)
    from reconciler.infra.install import install_hint

    with pytest.raises(StateError, match=re.escape(f"psycopg driver: {install_hint('postgres')}")):
        SqlStore("postgres://postgres@127.0.0.1:1/none", project="p")


def test_unreachable_database_is_a_state_error_without_password() -> None:
    with pytest.raises(StateError) as error:
        SqlStore("postgresql://postgres:hunter2@127.0.0.1:1/none", project="p")
    assert "hunter2" not in str(error.value) and "127.0.0.1" in str(error.value)


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///rel/state.db", "sqlite:///rel/state.db"),
    ],
)
def test_url_normalization(url: str, normalized: str) -> None:
    assert sql_engine.normalize_url(url).render_as_string() == normalized


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "postgresql+psycopg2://u@h/db", "mysql://h/db"]
)
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(UsageError, match=r"SQLite|PostgreSQL|unsupported"):
        sql_engine.normalize_url(url)
