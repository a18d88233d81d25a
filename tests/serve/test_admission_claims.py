"""The store's admission claim (``ClaimsRuns.claim_run``) raced by several stores on one database, as
several `serve` replicas would: exactly as many runs are claimed as the limit allows, never one twice.

SQLite: ``BEGIN IMMEDIATE`` admits one writer at a time. PostgreSQL: the run's row ``FOR UPDATE SKIP
LOCKED`` and an advisory lock per limit key; the active runs are counted under those locks.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest

from reconciler.launch import RunContext, runs
from reconciler.state import ACTIVE_STATES, Limit, RunState
from reconciler.state.sql.store import SqlStore
from tests.serve.support import T0, FakeLauncher, apply_file, project, yaml


def project_file(pool: str) -> str:
    return yaml(
        f"""
        name: svc
        work_pools:
          - name: {pool}
            type: process
        deployments:
          - name: urgent
            entrypoint: flows/hello.py:hello
            work_pool: {{name: {pool}}}
          - name: routine
            entrypoint: flows/hello.py:hello
            work_pool: {{name: {pool}}}
        """
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_claims_racing_from_several_stores_keep_every_limit(tmp_path: Path, url: str) -> None:
    """Four stores (as four processes) claim 60 runs of two deployments at once, under a pool limit
    of 4 and a limit of 1 on one deployment: 4 claimed, at most 1 of that deployment."""
    tag = uuid.uuid4().hex[:8]  # one PostgreSQL database serves the whole session
    project_name, pool = f"svc-{tag}", f"pool-{tag}"
    stores = [SqlStore(url, project=project_name) for _ in range(4)]
    root = project(tmp_path / "proj", project_file(pool))
    apply_file(stores[0], root)
    ctx = RunContext(
        store=stores[0],
        live=stores[0].read_all(),
        project_dir=root,
        runs_dir=root / "runs",
        environ={},
        launcher_factory=lambda name: FakeLauncher(),
    )
    queued = [runs.create(ctx, f"hello/{name}", reason="manual") for name in ("urgent", "routine") * 30]
    pool_limit = Limit(f"pool:{pool}", 4, "pool full", pools=frozenset({pool}))
    one = Limit("deployment:hello/urgent", 1, "deployment full", deployments=frozenset({"hello/urgent"}))
    won: list[str] = []
    barrier = threading.Barrier(len(stores))

    def claim_all(store: SqlStore) -> None:
        barrier.wait()
        for run in queued:
            limits = [pool_limit, one] if run.deployment == "hello/urgent" else [pool_limit]
            claimed = run.evolve(state=RunState.PENDING, started_at=T0, claimed_by="test/1")
            if store.claim_run(run, limits, claimed=claimed).claimed:
                won.append(run.id)

    threads = [threading.Thread(target=claim_all, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len(won) == len(set(won)) == 4
        active = [r for r in stores[0].list_runs(limit=100) if r.state in ACTIVE_STATES]
        assert {r.id for r in active} == set(won)
        assert sum(r.deployment == "hello/urgent" for r in active) == 1
        assert all(r.claimed_by == "test/1" and r.started_at == T0 for r in active)
    finally:
        for store in stores:
            store.close()


def test_a_full_limit_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'state.db'}", project="svc")
    root = project(tmp_path / "proj", project_file("local"))
    apply_file(store, root)
    ctx = RunContext(
        store=store,
        live=store.read_all(),
        project_dir=root,
        runs_dir=root / "runs",
        environ={},
        launcher_factory=lambda name: FakeLauncher(),
    )
    first, second = (runs.create(ctx, "hello/urgent", reason="manual") for _ in range(2))
    limit = Limit("pool:local", 1, "pool local concurrency limit 1 reached", pools=frozenset({"local"}))
    assert store.claim_run(first, [limit], claimed=first.evolve(state=RunState.PENDING)).claimed
    refused = store.claim_run(second, [limit], claimed=second.evolve(state=RunState.PENDING))
    assert (refused.claimed, refused.full) == (False, limit)
    assert store.get_run(second.id) == second  # untouched, still at its version
    stale = store.claim_run(first, [], claimed=first.evolve(state=RunState.PENDING))
    assert not stale.claimed and stale.run.state is RunState.PENDING  # claimed already: the current run
    store.close()


def test_prefect_admission_names_are_ours_and_valid_gcl_names() -> None:
    """On a Prefect server the pool's, the queue's and serve's limits are bookkeeping GCLs of ours (one
    prefix, no character Prefect refuses in a name); the deployment's own limit and the global limit it
    names are the deployment's ``global_concurrency_limit`` on the server, which takes their slots
    itself at the PENDING proposal (a slot of ours too would count each run twice)."""
    from reconciler.objects import Kind
    from reconciler.state.prefect import admission
    from reconciler.state.prefect.bookkeeping import is_bookkeeping

    def named(key: str) -> str | None:
        return admission.limit_name("etl/team", Limit(key, 1, "full"))

    assert named("pool:local") == "reconcile-admission:etl_team:pool:local"
    assert named("queue:local/high") == "reconcile-admission:etl_team:queue:local_high"
    assert named("serve") == "reconcile-admission:etl_team:serve"
    assert named("gcl:nightly-db") is None
    assert named("deployment:hello/etl") is None
    ours = [n for n in map(named, ("pool:a", "queue:a/b", "serve")) if n]
    assert all(is_bookkeeping(Kind.CONCURRENCY_LIMIT, n) and not set(n) & set("/%&><") for n in ours)
    assert not is_bookkeeping(Kind.CONCURRENCY_LIMIT, "nightly-db")
    assert is_bookkeeping(Kind.VARIABLE, admission.RELEASE_PREFIX + "0123abcd")
