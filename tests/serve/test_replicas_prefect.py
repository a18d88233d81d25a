"""Issue 12, "serve on more than one machine", on a Prefect server as the state: three `reconcile
serve --max-concurrent 3` processes, due runs on a pool with ``concurrency_limit: 5``, a fake launcher
that reports the flow runs' ends as Prefect's engine would. The limits hold across replicas through
Prefect's own global concurrency limits (a slot of each per run, by lease): no run launched twice,
never more than 3 running (the server's own pool gating alone lets each replica take up to 5), one
replica SIGKILLed mid-pass and every run still ends, and no slot is left taken.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.state.prefect import admission
from tests.fixtures.prefect_server import PrefectServer
from tests.prefect.conftest import unique
from tests.serve import replica_launcher
from tests.serve.replicas import Replicas

pytestmark = pytest.mark.prefect_server

# Fewer than PostgreSQL's 300: every run costs the server ~15 requests (claim, slot, state, labels,
# release) on one SQLite file shared with other tests, which answers 503 while it is locked: three
# replicas get about one run a second through it (measured), so 50 runs keep the test near a minute.
# RECONCILE_TEST_REPLICA_RUNS=300 runs the full count (about five minutes; see BENCHMARKS.md).
RUNS = int(os.environ.get("RECONCILE_TEST_REPLICA_RUNS", "50"))
LIMIT = 5  # the pool's
SERVE_LIMIT = 3  # serve --max-concurrent: one limit for all replicas of the project


@pytest.mark.slow
@pytest.mark.timeout(max(300, RUNS * 4) + int(admission.LEASE_SECONDS) + 60)  # see "slots freed"
def test_three_replicas_on_one_prefect_server_keep_the_pool_limit_and_survive_a_kill(
    tmp_path: Path, prefect_server: PrefectServer
) -> None:
    project, pool = unique("replicas"), unique("pool")
    replicas = Replicas.prepare(
        tmp_path, prefect_server.state_url, project=project, limit=LIMIT, pool=pool, deployment=unique("job")
    )
    replicas.run_seconds = 1.0  # long enough for the slots to be the bottleneck
    ids = {run.id for run in replicas.record_due_runs(RUNS)}
    try:
        replicas.start(3, interval=0.2, extra=("--max-concurrent", str(SERVE_LIMIT)))
        replicas.wait_until(lambda: replicas.starts() >= RUNS // 5, timeout=120, what="the first launches")
        replicas.kill(0)
        replicas.wait_until(
            lambda: replicas.ended(ids), timeout=max(240, RUNS * 3), what=f"all {RUNS} runs to end"
        )
        # Freed when each run ends, or, for a slot the killed replica took in the instant before it
        # recorded the run's lease, when that lease expires: the guarantee is "at the latest then"
        freed_by = admission.LEASE_SECONDS + 60
        replicas.wait_until(
            lambda: slots_taken(prefect_server, project) == 0, timeout=freed_by, what="slots freed"
        )
    finally:
        replicas.stop()
    starts, ends = replica_launcher.events(replicas.events)
    assert {run_id: times for run_id, times in starts.items() if len(times) > 1} == {}
    assert replica_launcher.most_at_once(starts, ends) <= SERVE_LIMIT
    states = replicas.final_states()
    assert ids <= set(states)
    never_started = ids - set(starts)
    assert len(never_started) <= LIMIT  # claimed by the killed replica, not yet launched: CRASHED
    assert all(states[r] == "CRASHED" for r in never_started)
    assert all(states[r] == "COMPLETED" for r in starts)


def slots_taken(server: PrefectServer, project: str) -> int:
    """Active slots of this project's admission limits (ours are prefixed; the pool's is one of them)."""
    with server.client() as api:
        limits = api.post("v2/concurrency_limits/filter", json={}).json()
    ours = [gcl for gcl in limits if gcl["name"].startswith(f"{admission.PREFIX}{project}:")]
    assert sorted(gcl["limit"] for gcl in ours) == [SERVE_LIMIT, LIMIT]  # serve's and the pool's
    return sum(int(gcl["active_slots"]) for gcl in ours)
