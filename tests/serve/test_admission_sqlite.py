"""serve's admission on a SQLite state (issue 13): work-queue priority, queue and global concurrency
limits, paused queues (the store's claim itself, raced, is in test_admission_claims.py).

The loop runs in process on a frozen clock with a fake launcher that records when each run started
and ended (pass numbers): what the tests check is the order of launches and that, at every pass, no
more runs were in flight than a limit allows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.launch import Job, runs
from reconciler.objects import Address, LiveState, Resource, StoredObject
from reconciler.serve import rules
from reconciler.state import ACTIVE_STATES, RunRecord, Store
from reconciler.state.sql.store import SqlStore
from tests.serve.support import T0, FakeLauncher, Harness, apply_file, project, yaml

POOL = "local"
FILE = yaml(
    """
    name: svc
    work_pools:
      - name: local
        type: process
    deployments:
      - name: urgent
        entrypoint: flows/hello.py:hello
        work_pool: {name: local}
      - name: routine
        entrypoint: flows/hello.py:hello
        work_pool: {name: local}
      - name: plain
        entrypoint: flows/hello.py:hello
        work_pool: {name: local}
    """
)


class RecordingLauncher(FakeLauncher):
    """A fake launcher that knows which pass it is in: each run's start, and its end once finished."""

    def __init__(self) -> None:
        super().__init__()
        self.passes = 0
        self.started: dict[str, int] = {}
        self.ended: dict[str, int] = {}

    def submit(self, job: Job) -> str:
        assert job.run_id not in self.started, f"run {job.run_id} launched twice"
        self.started[job.run_id] = self.passes
        return super().submit(job)

    def end_all(self) -> None:
        """Every run in flight ends now (between two passes)."""
        for run_id in self.started:
            if run_id not in self.ended:
                self.ended[run_id] = self.passes
                self.finish(run_id)

    def most_at_once(self, run_ids: set[str]) -> int:
        """The most of ``run_ids`` that were ever running during one pass."""
        return max(
            (
                sum(
                    1
                    for r in run_ids
                    if r in self.started and self.started[r] <= at < self.ended.get(r, 10**9)
                )
                for at in range(self.passes + 1)
            ),
            default=0,
        )


def put(store: Store, resource: Resource) -> None:
    current = store.read_all().get(resource.address)
    store.write(resource, expected_version=current.version if current else None)


def queue(name: str, **body: Any) -> Resource:
    fields = {"pool": POOL, "name": name, "description": None, "priority": None, "concurrency_limit": None}
    return Resource(Address.work_queue(POOL, name), {**fields, "paused": False, **body})


def gcl(name: str, limit: int, *, active: bool = True) -> Resource:
    body = {"name": name, "limit": limit, "active": active, "slot_decay_per_second": 0.0}
    return Resource(Address.concurrency_limit(name), body)


def place(store: Store, deployment: str, *, queue_name: str | None = None, limit: str | None = None) -> None:
    """Put a stored deployment in a work queue and/or under a global concurrency limit."""
    address = Address.deployment("hello", deployment)
    stored = store.read_all().get(address)
    assert stored is not None
    body = dict(stored.resource.body)
    if queue_name is not None:
        body["work_pool"] = {**body["work_pool"], "work_queue_name": queue_name}
    body["global_concurrency_limit"] = limit
    store.write(Resource(address, body, stored.resource.depends_on), expected_version=stored.version)


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    store = SqlStore(f"sqlite:///{tmp_path / 'state.db'}", project="svc")
    root = project(tmp_path / "proj", FILE)
    apply_file(store, root)
    harness = Harness(store, root, launcher=RecordingLauncher())
    yield harness
    store.close()


def queue_runs(h: Harness, deployment: str, count: int, *, due_seconds_ago: int) -> list[RunRecord]:
    ctx = h.loop.ctx
    ctx.live = h.store.read_all()
    return [
        runs.create(
            ctx,
            f"hello/{deployment}",
            reason="manual",
            scheduled_for=T0 - timedelta(seconds=due_seconds_ago + i),
        )
        for i in range(count)
    ]


def drive(h: Harness, passes: int) -> None:
    """``passes`` passes, every run launched in one ending before the next."""
    launcher = h.launcher
    assert isinstance(launcher, RecordingLauncher)
    for _ in range(passes):
        h.loop.run_pass()
        launcher.passes += 1
        launcher.end_all()
        h.clock.advance(seconds=10)


def ids(records: list[RunRecord]) -> set[str]:
    return {r.id for r in records}


def test_higher_priority_queues_launch_first_then_by_due_time(h: Harness) -> None:
    put(h.store, queue("rush", priority=1))
    put(h.store, queue("later", priority=7))
    place(h.store, "urgent", queue_name="rush")
    place(h.store, "routine", queue_name="later")
    # "plain" stays in the implicit default queue: Prefect gives it the first free priority, 2
    h.restart(max_concurrent=2)
    routine = queue_runs(h, "routine", 2, due_seconds_ago=90)  # due first, but the lowest priority
    plain = queue_runs(h, "plain", 2, due_seconds_ago=60)
    urgent = queue_runs(h, "urgent", 2, due_seconds_ago=10)
    drive(h, 3)
    launcher = h.launcher
    assert isinstance(launcher, RecordingLauncher)
    by_pass = [{r for r, at in launcher.started.items() if at == p} for p in range(3)]
    assert by_pass == [ids(urgent), ids(plain), ids(routine)]
    waiting = [line for line in h.log if "waiting run" in line]
    assert any("serve --max-concurrent 2 reached" in line for line in waiting)


def test_a_queue_limit_and_a_global_limit_are_never_exceeded(h: Harness) -> None:
    put(h.store, queue("narrow", concurrency_limit=2))
    put(h.store, gcl("shared", 1))
    place(h.store, "urgent", queue_name="narrow")
    place(h.store, "routine", limit="shared")
    place(h.store, "plain", limit="shared")
    narrow = queue_runs(h, "urgent", 5, due_seconds_ago=30)
    shared = queue_runs(h, "routine", 3, due_seconds_ago=20) + queue_runs(h, "plain", 3, due_seconds_ago=1)
    launcher = h.launcher
    assert isinstance(launcher, RecordingLauncher)
    for _ in range(8):
        h.loop.run_pass()
        active = [r for r in h.store.list_runs(limit=100) if r.state in ACTIVE_STATES]
        assert sum(r.id in ids(narrow) for r in active) <= 2
        assert sum(r.id in ids(shared) for r in active) <= 1
        launcher.passes += 1
        launcher.end_all()
        h.clock.advance(seconds=10)
    assert set(launcher.started) == ids(narrow) | ids(shared)  # all ran in the end
    assert launcher.most_at_once(ids(narrow)) == 2
    assert launcher.most_at_once(ids(shared)) == 1
    assert any("work queue narrow concurrency limit 2 reached" in line for line in h.log)
    assert any("global concurrency limit shared (1) reached" in line for line in h.log)


def test_an_inactive_global_limit_does_not_limit(h: Harness) -> None:
    put(h.store, gcl("shared", 1, active=False))
    place(h.store, "routine", limit="shared")
    queue_runs(h, "routine", 3, due_seconds_ago=1)
    assert len(h.loop.run_pass().launched) == 3


def test_a_paused_queue_holds_its_runs_until_resumed(h: Harness) -> None:
    put(h.store, queue("night", paused=True))
    place(h.store, "routine", queue_name="night")
    held = queue_runs(h, "routine", 2, due_seconds_ago=1)
    free = queue_runs(h, "plain", 1, due_seconds_ago=1)
    report = h.loop.run_pass()
    assert ids(list(report.launched)) == ids(free)
    assert ids(list(report.waiting)) == ids(held)
    assert all(r.waiting == "work queue night is paused" for r in report.waiting)
    assert any("work queue night is paused" in line for line in h.log)
    h.clock.advance(seconds=10)
    put(h.store, queue("night", paused=False))
    assert ids(list(h.loop.run_pass().launched)) == ids(held)


def stored_queues(declared: dict[str, int | None]) -> LiveState:
    objects = {
        Address.work_queue(POOL, name): StoredObject(queue(name, priority=priority), 1)
        for name, priority in declared.items()
    }
    return LiveState(url="memory://", serial=1, objects=objects)


@given(st.dictionaries(st.sampled_from(["default", "a", "b", "c", "d"]), st.none() | st.integers(1, 6)))
def test_queue_priorities_follow_prefects_rule(declared: dict[str, int | None]) -> None:
    ranks = rules.queue_priorities(stored_queues(declared), POOL)
    assert set(ranks) == {"default", *declared}
    for name, priority in declared.items():
        if priority is not None:
            assert ranks[name] == priority  # a declared priority is kept
    undeclared = [n for n in ranks if declared.get(n) is None]
    taken = {p for p in declared.values() if p is not None}
    # each undeclared queue takes a free rank, distinct from every other queue's, the default first
    assert all(ranks[n] not in taken for n in undeclared)
    assert len({ranks[n] for n in undeclared}) == len(undeclared)
    if "default" in undeclared:
        assert ranks["default"] == min(set(range(1, 8)) - taken)


def test_default_queue_without_a_priority_is_first() -> None:
    assert rules.queue_priorities(stored_queues({"x": None}), POOL) == {"default": 1, "x": 2}
    assert rules.queue_priorities(stored_queues({"x": 1}), POOL) == {"default": 2, "x": 1}
