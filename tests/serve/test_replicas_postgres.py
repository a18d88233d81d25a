"""Issue 12, "serve on more than one machine": three `reconcile serve` processes on one PostgreSQL
state, 300 due runs on a pool with ``concurrency_limit: 5``, a fake launcher recording when each run
started and ended: no run launched twice, never more than 5 running at one instant, and with one
replica SIGKILLed mid-pass every run still ends (the others adopt what it launched).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.serve import replica_launcher
from tests.serve.replicas import Replicas

RUNS = 300
LIMIT = 5


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_three_replicas_on_one_postgres_keep_the_pool_limit_and_survive_a_kill(
    tmp_path: Path, postgres_url: str
) -> None:
    replicas = Replicas.prepare(tmp_path, postgres_url, project="replicas-pg", limit=LIMIT)
    ids = {run.id for run in replicas.record_due_runs(RUNS)}
    try:
        replicas.start(3)
        replicas.wait_until(lambda: replicas.starts() >= RUNS // 5, timeout=90, what="the first launches")
        replicas.kill(0)  # in the middle of its passes: claims, launches, follow-ups in flight
        replicas.wait_until(lambda: replicas.ended(ids), timeout=180, what=f"all {RUNS} runs to end")
    finally:
        replicas.stop()
    starts, ends = replica_launcher.events(replicas.events)
    duplicates = {run_id: times for run_id, times in starts.items() if len(times) > 1}
    assert duplicates == {}
    assert replica_launcher.most_at_once(starts, ends) <= LIMIT
    states = replicas.final_states()
    assert set(states) == ids
    # every run ran; at most the few a killed replica had claimed but not yet handed to the launcher
    # end CRASHED ("the launcher stopped before the run reached its infrastructure"), never twice
    assert set(starts) <= ids
    never_started = ids - set(starts)
    assert all(states[r] == "CRASHED" for r in never_started)
    assert len(never_started) <= LIMIT
    assert all(states[r] == "COMPLETED" for r in starts)
