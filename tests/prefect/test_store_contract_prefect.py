"""The Store contract on a real Prefect server.

The suite's backend-neutral tests (lock, history, last commit, fingerprint key) run here unchanged,
imported from ``tests/contract/test_store_contract.py`` with ``store_factory`` bound to this backend.
The suite's object and run tests write arbitrary bodies (``{"v": 1}`` as a work pool) and choose run
ids (``r-1``); a Prefect server holds real pools and names its flow runs itself, so those tests are
restated below with valid bodies and server-assigned ids, checking the same promises.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from reconciler.errors import LockTimeout, StaleVersion, StateError
from reconciler.objects import Address, Kind, Resource, Secret
from reconciler.state import LockInfo, RunRecord, RunState, Store
from reconciler.state.prefect.inventory import Names
from reconciler.state.prefect.lock import LeasePolicy
from tests.contract.test_store_contract import (  # the backend-neutral part of the suite
    test_fingerprint_key_is_32_bytes,
    test_history_newest_first_with_limit,
    test_last_commit,
    test_lineage_is_made_once_and_names_this_store,
    test_lock_released_on_exception,
    test_lock_timeout_names_the_holder,
    test_lock_waits_for_release,
)
from tests.fixtures.prefect_server import PrefectServer
from tests.prefect.conftest import StoreOpener, unique

pytestmark = pytest.mark.prefect_server

__all__ = [
    "test_fingerprint_key_is_32_bytes",
    "test_history_newest_first_with_limit",
    "test_last_commit",
    "test_lineage_is_made_once_and_names_this_store",
    "test_lock_released_on_exception",
    "test_lock_timeout_names_the_holder",
    "test_lock_waits_for_release",
]


class PrefectFactory:
    """The suite's ``store_factory`` shape: calling it again for a project reopens the same state."""

    def __init__(self, opener: StoreOpener) -> None:
        self._open = opener
        self.project: str = opener.project  # type: ignore[attr-defined]

    def __call__(self, *, project: str | None = None) -> Store:
        return self._open(project or self.project)


@pytest.fixture
def store_factory(open_store: StoreOpener) -> PrefectFactory:
    return PrefectFactory(open_store)


# -- bodies exactly as spec.load makes them ------------------------------------------------------


def pool_body(description: str = "a pool", **changes: Any) -> dict[str, Any]:
    body = {
        "type": "process",
        "description": description,
        "concurrency_limit": None,
        "paused": False,
        "job_variables": {},
        "base_job_template": None,
    }
    return {**body, **changes}


def deployment_body(name: str, pool: str, **changes: Any) -> dict[str, Any]:
    body = {
        "flow_name": "etl",
        "name": name,
        "entrypoint": "flows/etl.py:etl",
        "description": None,
        "version": None,
        "tags": [],
        "parameters": {"rows": 1000},
        "enforce_parameter_schema": True,
        "work_pool": {"name": pool, "work_queue_name": "default", "job_variables": {}},
        "schedules": {},
        "paused": False,
        "concurrency_limit": None,
        "pull_steps": None,
        "triggers": [],
    }
    return {**body, **changes}


def json_block(name: str, value: Any) -> Resource:
    return Resource(Address.block("json", name), {"type": "json", "name": name, "data": {"value": value}})


def _info(holder: str = "alice@host", *, host: str = "host", pid: int | None = None) -> LockInfo:
    return LockInfo(holder=holder, pid=os.getpid() if pid is None else pid, host=host, purpose="apply")


# -- objects -------------------------------------------------------------------------------------


def test_implements_the_protocol(store_factory: PrefectFactory, prefect_server: PrefectServer) -> None:
    store = store_factory()
    assert isinstance(store, Store)
    assert store.project == store_factory.project
    assert store.read_all().url == store.url == prefect_server.state_url
    run = RunRecord(
        id="7c5b3f1e-0000-4000-8000-000000000001",
        deployment="etl/d",
        pool="p",
        pool_type="process",
        state=RunState.SCHEDULED,
    )
    env = store.job_environment(run)
    assert env == {"PREFECT_API_URL": prefect_server.api_url, "PREFECT__FLOW_RUN_ID": run.id}


def test_write_read_round_trip(store_factory: PrefectFactory) -> None:
    store = store_factory()
    pool, block = (
        Address.pool(unique("pool")),
        json_block(unique("cfg"), {"nested": [1, 2.5, "x"], "ok": True}),
    )
    deployment = Address.deployment("etl", unique("daily"))
    assert store.write(block, expected_version=None) == 1
    assert (
        store.write(Resource(pool, pool_body(job_variables={"env": {"A": "1"}})), expected_version=None) == 1
    )
    resource = Resource(
        deployment, deployment_body(deployment.name.split("/")[1], pool.name), depends_on=(pool,)
    )
    assert store.write(resource, expected_version=None) == 1

    live = store_factory().read_all()  # a reopened store sees the same

    assert set(live.objects) == {pool, block.address, deployment}
    stored = live.get(deployment)
    assert stored is not None and stored.resource == resource and stored.version == 1
    assert stored.updated_at is not None and stored.updated_at.tzinfo is not None
    assert stored.drifted_at is None
    assert live.objects[block.address].resource == block
    assert live.objects[pool].resource.body == pool_body(job_variables={"env": {"A": "1"}})


def test_versions_increase_and_serial_counts_writes(store_factory: PrefectFactory) -> None:
    store = store_factory()
    pool, block = Address.pool(unique("pool")), json_block(unique("cfg"), 1)
    assert store.read_all().serial == 0
    assert store.write(Resource(pool, pool_body("1")), expected_version=None) == 1
    assert store.write(Resource(pool, pool_body("2")), expected_version=1) == 2
    assert store.write(Resource(pool, pool_body("3")), expected_version=2) == 3
    store.write(block, expected_version=None)
    store.delete(block.address, expected_version=1)

    live = store.read_all()
    assert live.serial == 5
    stored = live.get(pool)
    assert stored is not None and stored.version == 3 and stored.resource.body == pool_body("3")
    assert live.get(block.address) is None


def test_stale_write_raises(store_factory: PrefectFactory) -> None:
    store = store_factory()
    pool, other = Address.pool(unique("pool")), Address.pool(unique("pool"))
    store.write(Resource(pool, pool_body("1")), expected_version=None)
    store.write(Resource(pool, pool_body("2")), expected_version=1)

    with pytest.raises(StaleVersion) as moved:
        store.write(Resource(pool, pool_body("late")), expected_version=1)
    assert (moved.value.address, moved.value.expected, moved.value.actual) == (str(pool), 1, 2)
    with pytest.raises(StaleVersion) as exists:
        store.write(Resource(pool, pool_body("dup")), expected_version=None)
    assert (exists.value.expected, exists.value.actual) == (None, 2)
    with pytest.raises(StaleVersion) as absent:
        store.write(Resource(other, pool_body()), expected_version=3)
    assert (absent.value.expected, absent.value.actual) == (3, None)

    live = store.read_all()
    assert live.serial == 2  # refused writes do not count
    stored = live.get(pool)
    assert stored is not None and stored.resource.body == pool_body("2")


def test_stale_delete_raises(store_factory: PrefectFactory, api: httpx.Client) -> None:
    store = store_factory()
    pool = Address.pool(unique("pool"))
    store.write(Resource(pool, pool_body("1")), expected_version=None)
    store.write(Resource(pool, pool_body("2")), expected_version=1)

    with pytest.raises(StaleVersion) as moved:
        store.delete(pool, expected_version=1)
    assert moved.value.actual == 2
    with pytest.raises(StaleVersion) as absent:
        store.delete(Address.pool(unique("pool")), expected_version=1)
    assert absent.value.actual is None
    assert store.read_all().get(pool) is not None and store.read_all().serial == 2
    assert api.get(f"work_pools/{pool.name}").status_code == 200  # a refused delete leaves the server alone


def test_recreate_after_delete_starts_again(store_factory: PrefectFactory, api: httpx.Client) -> None:
    store = store_factory()
    pool = Address.pool(unique("pool"))
    store.write(Resource(pool, pool_body("1")), expected_version=None)
    store.delete(pool, expected_version=1)
    assert api.get(f"work_pools/{pool.name}").status_code == 404
    assert store.write(Resource(pool, pool_body("again")), expected_version=None) == 1
    assert store.read_all().serial == 3


def test_projects_are_isolated(store_factory: PrefectFactory) -> None:
    a, b = store_factory(project=unique("team-a")), store_factory(project=unique("team-b"))
    pool_a, pool_b = Address.pool(unique("pool")), Address.pool(unique("pool"))
    a.write(Resource(pool_a, pool_body("a")), expected_version=None)
    a.set_last_commit("aaaa")
    b.write(Resource(pool_b, pool_body("b")), expected_version=None)

    live_a, live_b = a.read_all(), b.read_all()
    assert (live_a.serial, live_b.serial) == (1, 1)
    assert set(live_a.objects) == {pool_a} and set(live_b.objects) == {pool_b}
    assert (live_a.last_commit, live_b.last_commit) == ("aaaa", None)
    assert b.history() == [] and b.list_runs() == []
    with a.lock(timeout=1, info=_info()), b.lock(timeout=1, info=_info()):
        pass  # locks are per project


def test_fingerprint_key_survives_reopen(store_factory: PrefectFactory) -> None:
    key = store_factory().fingerprint_key()
    assert store_factory().fingerprint_key() == key
    assert store_factory(project=unique("another")).fingerprint_key() != key  # one key per project


@pytest.mark.slow
def test_inventory_outgrows_one_variable(store_factory: PrefectFactory) -> None:
    """Enough objects that the inventory reshards (a Variable holds 5,000 characters): nothing is lost."""
    store = store_factory()
    pools = [Address.pool(unique(f"many-{i:03d}")) for i in range(150)]
    with store.lock(timeout=10, info=_info()):
        for address in pools:
            store.write(Resource(address, pool_body(address.name)), expected_version=None)
    live = store_factory().read_all()
    assert set(live.objects) == set(pools)
    assert live.serial == len(pools)
    assert all(
        live.objects[a].resource.body == pool_body(a.name) and live.objects[a].version == 1 for a in pools
    )


def test_secret_values_stay_out_of_the_inventory(store_factory: PrefectFactory, api: httpx.Client) -> None:
    value = f"never-in-a-variable-{unique('s')}"
    store = store_factory(project=unique("secrets"))
    store._environ["APP_TOKEN"] = value  # the environment a real apply resolves secrets from
    name = unique("token")
    from reconciler.objects import fingerprint

    secret = Secret("{{ $APP_TOKEN }}", fingerprint(store.fingerprint_key(), value))
    block = Resource(
        Address.block("secret", name), {"type": "secret", "name": name, "data": {"value": secret}}
    )
    store.write(block, expected_version=None)

    stored = store_factory(project=store.project).read_all().get(block.address)
    assert stored is not None and stored.resource == block and stored.drifted_at is None
    variables = api.post("variables/filter", json={}).text
    assert value not in variables and secret.fingerprint in variables
    document = api.get(
        f"block_types/slug/secret/block_documents/name/{name}", params={"include_secrets": True}
    )
    assert document.json()["data"]["value"] == value  # the server is where runs read it


# -- lock ------------------------------------------------------------------------------------------


def test_abandoned_lease_of_a_dead_process_is_taken_over(store_factory: PrefectFactory) -> None:
    holder = store_factory()
    dead = _dead_pid()
    ghost = _info("ghost@here", host=socket.gethostname(), pid=dead)
    with holder.lock(timeout=1, info=ghost), store_factory().lock(timeout=5, info=_info("bob@here")):
        pass  # taken over at once: its holder is gone from this host


def test_lease_of_a_live_holder_elsewhere_expires_by_the_server_clock(open_store: StoreOpener) -> None:
    policy = LeasePolicy(renew_every=3600, stale_after=2.0, max_poll=0.2)
    holder, waiter = open_store(lease_policy=policy), open_store(lease_policy=policy)
    with holder.lock(timeout=1, info=_info("dave@elsewhere", host="elsewhere", pid=1)):
        expected = r"dave@elsewhere \(pid 1, apply\)"
        with pytest.raises(LockTimeout, match=expected), waiter.lock(timeout=0.5, info=_info("bob@host")):
            pass
        started = time.monotonic()
        with waiter.lock(timeout=10, info=_info("bob@host")):
            assert time.monotonic() - started >= 1.0  # only once the lease went stale


def test_renewed_lease_is_kept(open_store: StoreOpener) -> None:
    policy = LeasePolicy(renew_every=0.3, stale_after=1.5, max_poll=0.2)
    holder, waiter = open_store(lease_policy=policy), open_store(lease_policy=policy)
    with (
        holder.lock(timeout=1, info=_info("carol@elsewhere", host="elsewhere", pid=1)),
        pytest.raises(LockTimeout, match="carol@elsewhere"),
        waiter.lock(timeout=3, info=_info("bob@host")),
    ):
        pass


def _dead_pid() -> int:
    import subprocess

    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# -- runs ------------------------------------------------------------------------------------------


@pytest.fixture
def deployment(store_factory: PrefectFactory) -> str:
    """An applied pool and deployment to create runs of; returns ``flow/name``."""
    store = store_factory()
    pool = Address.pool(unique("pool"))
    name = unique("daily")
    store.write(Resource(pool, pool_body()), expected_version=None)
    store.write(
        Resource(Address.deployment("etl", name), deployment_body(name, pool.name), depends_on=(pool,)),
        expected_version=None,
    )
    return f"etl/{name}"


def _run(deployment: str, *, key: str | None = None, **extra: Any) -> RunRecord:
    return RunRecord(
        id=str(__import__("uuid").uuid4()),
        deployment=deployment,
        pool=None,
        pool_type="process",
        state=RunState.SCHEDULED,
        parameters={"rows": 5, "nested": {"a": [1, 2]}},
        job_variables={"env": {"A": "1"}},
        reason="manual",
        idempotency_key=key,
        **extra,
    )


def _comparable(run: RunRecord) -> RunRecord:
    return replace(run, id="-", created_at=None, pool=None)


def test_run_round_trip(store_factory: PrefectFactory, deployment: str, api: httpx.Client) -> None:
    store = store_factory()
    scheduled = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    run = _run(deployment, key=f"schedule:{deployment}:slot", scheduled_for=scheduled, log_path="/tmp/x.log")
    created = store.create_run(run)

    assert _comparable(created) == _comparable(replace(run, version=1))
    assert created.id != run.id and created.created_at is not None
    assert store_factory().get_run(created.id) == created
    assert store.get_run("missing") is None and store.get_run(str(__import__("uuid").uuid4())) is None
    flow_run = api.get(f"flow_runs/{created.id}").json()
    assert flow_run["state_type"] == "SCHEDULED" and flow_run["idempotency_key"] == run.idempotency_key
    assert flow_run["labels"]["prefect-reconciler.reason"] == "manual"


def test_a_runs_waiting_reason_is_stored_and_cleared(store_factory: PrefectFactory, deployment: str) -> None:
    store = store_factory()
    created = store.create_run(_run(deployment))
    held = store.update_run(created.evolve(waiting="pool local concurrency limit 2 reached"))
    assert (
        store_factory().get_run(created.id) == held
        and held.waiting == "pool local concurrency limit 2 reached"
    )
    claimed = store.update_run(held.evolve(state=RunState.PENDING, waiting=None))
    assert claimed.waiting is None and store_factory().get_run(created.id).waiting is None  # type: ignore[union-attr]


def test_a_held_run_from_before_the_waiting_field_reads_as_waiting(
    store_factory: PrefectFactory, deployment: str, api: httpx.Client
) -> None:
    store = store_factory()
    created = store.create_run(_run(deployment))
    api.patch(
        f"flow_runs/{created.id}/labels", json={"prefect-reconciler.message": "waiting: deployment is paused"}
    )
    old = store.get_run(created.id)
    assert old is not None and (old.waiting, old.message) == ("deployment is paused", "")


def test_lineage_of_a_head_from_before_the_field_is_its_variables_id(
    store_factory: PrefectFactory, api: httpx.Client
) -> None:
    store = store_factory()
    assert store.lineage() is None  # reading never writes: no head yet
    store.set_last_commit("abc123")  # the first write makes the head
    variable = api.get(f"variables/name/{Names(store.project).head}").json()
    older = {k: v for k, v in variable["value"].items() if k != "lineage"}
    api.patch(f"variables/{variable['id']}", json={"value": older})
    assert store_factory().lineage() == variable["id"]  # stable: the Variable is made once


def test_run_idempotency_key_returns_existing(store_factory: PrefectFactory, deployment: str) -> None:
    store = store_factory()
    first = store.create_run(_run(deployment, key="k-1"))
    again = store.create_run(_run(deployment, key="k-1"))
    assert again == first
    assert [r.id for r in store.list_runs(deployment=deployment)] == [first.id]
    assert store.create_run(_run(deployment)).id != store.create_run(_run(deployment)).id  # no key: new runs


def test_run_idempotency_is_race_safe(store_factory: PrefectFactory, deployment: str) -> None:
    stores = [store_factory() for _ in range(6)]
    results: list[str] = []
    barrier = threading.Barrier(len(stores))

    def create(index: int) -> None:
        barrier.wait()
        results.append(stores[index].create_run(_run(deployment, key="same-slot")).id)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == len(stores) and len(set(results)) == 1
    assert len(stores[0].list_runs(deployment=deployment)) == 1


def test_duplicate_run_id_is_an_error(store_factory: PrefectFactory, deployment: str) -> None:
    store = store_factory()
    run = _run(deployment)
    store.create_run(run)
    with pytest.raises(StateError, match=run.id):
        store.create_run(run)


def test_update_run_is_optimistic_and_the_claim_is_the_servers(
    store_factory: PrefectFactory, deployment: str, api: httpx.Client
) -> None:
    store = store_factory()
    created = store.create_run(_run(deployment))
    claimed = store.update_run(created.evolve(state=RunState.PENDING))
    assert claimed.state is RunState.PENDING and claimed.version == 2
    with pytest.raises(StaleVersion) as stale:
        store.update_run(created.evolve(state=RunState.CRASHED))
    assert (stale.value.expected, stale.value.actual) == (1, 2)

    # A run some other submitter claimed (a worker: the server's PENDING, none of our labels) is refused.
    other = store.create_run(_run(deployment))
    accepted = api.post(
        f"flow_runs/{other.id}/set_state", json={"state": {"type": "PENDING"}, "force": False}
    )
    assert accepted.json()["status"] == "ACCEPT"
    with pytest.raises(StaleVersion):
        store.update_run(other.evolve(state=RunState.PENDING))

    t0 = datetime.now(UTC).replace(microsecond=0)
    submitted = store.update_run(claimed.evolve(infrastructure_id="process:h:1:2:x", started_at=t0))
    assert store.get_run(created.id) == submitted and submitted.version == 3
    crashed = store.update_run(submitted.evolve(state=RunState.FAILED, exit_code=3, ended_at=t0))
    assert crashed.state is RunState.CRASHED  # the infrastructure failed before the engine reported
    assert store_factory().get_run(created.id) == crashed
    assert "non-zero status code 3" in crashed.message
    with pytest.raises(StateError):
        store.update_run(replace(created, id=str(__import__("uuid").uuid4())))


def test_list_runs_newest_first_with_filter_and_limit(store_factory: PrefectFactory, deployment: str) -> None:
    store = store_factory()
    ids = [store.create_run(_run(deployment)).id for _ in range(3)]
    assert [r.id for r in store.list_runs(deployment=deployment)] == list(reversed(ids))
    assert [r.id for r in store.list_runs(deployment=deployment, limit=2)] == list(reversed(ids))[:2]
    assert store.list_runs(deployment="nope/none") == []


def test_an_object_deleted_outside_reads_as_absent_and_is_created_again(
    store_factory: PrefectFactory, api: httpx.Client
) -> None:
    store = store_factory()
    pool = Address.pool(unique("pool"))
    store.write(Resource(pool, pool_body()), expected_version=None)
    assert store.read_all().get(pool) is not None  # seen once, then deleted in the UI
    assert api.delete(f"work_pools/{pool.name}").status_code == 204

    assert store.read_all().get(pool) is None
    assert store.write(Resource(pool, pool_body()), expected_version=None) == 1
    stored = store_factory().read_all().get(pool)
    assert stored is not None and stored.resource.body == pool_body() and stored.drifted_at is None


def test_due_runs_are_the_servers_scheduled_runs_of_our_deployments(
    store_factory: PrefectFactory, deployment: str
) -> None:
    store = store_factory()
    pool = store.read_all().objects[Address(Kind.DEPLOYMENT, deployment)].resource.body["work_pool"]["name"]
    now = datetime.now(UTC)
    due = store.create_run(_run(deployment, scheduled_for=now - timedelta(minutes=1)))
    store.create_run(_run(deployment, scheduled_for=now + timedelta(hours=1)))
    assert [r.id for r in store.due_runs(pool, before=now)] == [due.id]
    claimed = store.update_run(due.evolve(state=RunState.PENDING))  # serve claims it like a worker
    assert claimed.state is RunState.PENDING and store.due_runs(pool, before=now) == []
    assert store.due_runs(unique("no-such-pool"), before=now) == []


def test_unmanaged_objects_are_discovered_for_import(
    store_factory: PrefectFactory, api: httpx.Client
) -> None:
    store = store_factory()
    ours, theirs = Address.pool(unique("ours")), unique("theirs")
    store.write(Resource(ours, pool_body()), expected_version=None)
    assert (
        api.post("work_pools/", json={"name": theirs, "type": "process", "description": "x"}).status_code
        == 201
    )
    flow = api.post("flows/", json={"name": "etl"}).json()
    dep = unique("dep")
    api.post(
        "deployments/",
        json={"flow_id": flow["id"], "name": dep, "work_pool_name": theirs, "parameters": {"a": 1}},
    )

    found = store.read_unmanaged()
    assert ours not in found
    assert found[Address.pool(theirs)] == pool_body("x", base_job_template={})  # as the server holds it
    body = found[Address.deployment("etl", dep)]
    assert body["parameters"] == {"a": 1} and body["work_pool"]["name"] == theirs
