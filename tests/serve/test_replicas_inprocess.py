"""Two serve loops on one SQLite state, in process (the replica tests' behaviours, without processes):
both follow every run in flight without tripping over each other, and a run claimed by a process that
was killed on this host is adopted at once, not after the two-minute grace for a launch in progress.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.launch import lifecycle, runs
from reconciler.serve import loop as serve
from reconciler.state import RunState
from reconciler.state.sql.store import SqlStore
from tests.serve.support import T0, Harness, apply_file, project, yaml

FILE = yaml(
    """
    name: svc
    work_pools:
      - name: local
        type: process
    deployments:
      - name: job
        entrypoint: flows/hello.py:hello
        work_pool: {name: local}
    """
)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Harness, Harness]]:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    first, second = SqlStore(url, project="svc"), SqlStore(url, project="svc")
    root = project(tmp_path / "proj", FILE)
    apply_file(first, root)
    one = Harness(first, root)
    two = Harness(second, root, clock=one.clock, launcher=one.launcher)  # one clock, one "cloud"
    yield one, two
    first.close()
    second.close()


def test_a_follower_that_saves_an_end_second_reads_it_back(
    pair: tuple[Harness, Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replicas follow every run in flight: two may see one job end at once. The one that saves second
    gets the run as the first saved it, not an error (the log said "cannot follow" for each)."""
    one, two = pair
    run = runs.create(one.loop.ctx, "hello/job", reason="manual", scheduled_for=T0)
    assert len(one.loop.run_pass().launched) == 1
    seen = two.store.get_run(run.id)  # replica two reads the run in flight...
    assert seen is not None and seen.state is RunState.PENDING
    one.launcher.finish(run.id)
    assert len(one.loop.run_pass().finished) == 1  # ...replica one saves its end first...
    reads = iter([seen, seen])  # ...while two's reads (before and after its poll) came just before
    real = two.store.get_run
    monkeypatch.setattr(two.store, "get_run", lambda run_id: next(reads, None) or real(run_id))
    followed = runs.refresh(two.loop.ctx, seen)
    assert followed.state is RunState.COMPLETED and followed.version == real(run.id).version


def test_a_claim_of_a_killed_process_on_this_host_is_adopted_at_once(pair: tuple[Harness, Harness]) -> None:
    one, two = pair
    ctx = one.loop.ctx
    run = runs.create(ctx, "hello/job", reason="manual", scheduled_for=T0)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    killed = f"{socket.gethostname()}/{int(dead.stdout)}"
    # the killed replica claimed the run and handed it to the infrastructure, then died before saving
    claimed = lifecycle.claim(one.store, run, (), started_at=T0, claimed_by=killed).run
    one.launcher.orphans[run.id] = "fake:orphan"
    two.loop.options = serve.ServeOptions(lookback=300)
    recovered = two.loop.start()  # at T0: the claim is seconds old, its process is gone
    assert [(r.id, r.infrastructure_id) for r in recovered] == [(claimed.id, "fake:orphan")]
    assert any("adopted after an interrupted launch" in line for line in two.log)


def test_a_claim_read_before_its_labels_are_written_is_as_young_as_its_pending_state() -> None:
    """On a Prefect server the claim is two requests (PENDING, then our labels). Read in between,
    the run's claim time was its creation: another replica's recovery, minutes into a long queue,
    took a claim being submitted for one older than its grace and crashed a run that was starting
    (seen as 4 running under a limit of 3 with 300 runs on three replicas)."""
    from datetime import UTC, datetime, timedelta

    from reconciler.launch.runs import CLAIM_GRACE, _claim_expired
    from reconciler.state.prefect.runs import record

    created = datetime.now(UTC) - timedelta(minutes=6)
    pending_since = datetime.now(UTC) - timedelta(seconds=1)
    flow_run = {
        "id": "0b7c0d0e-0000-4000-8000-000000000001",
        "created": created.isoformat(),
        "state_type": "PENDING",
        "state": {"type": "PENDING", "timestamp": pending_since.isoformat()},
        "labels": {},
        "parameters": {},
    }
    run = record(flow_run, key=None, deployment_name=lambda _id: "f/d", parameter_secrets=lambda _id: {})
    assert run.started_at == pending_since
    assert not _claim_expired(run, datetime.now(UTC), CLAIM_GRACE)
