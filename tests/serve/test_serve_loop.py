"""The serve loop in process, on a frozen clock: what is launched, what waits, what is never launched twice."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from reconciler.launch import runs
from reconciler.serve import loop as serve
from reconciler.serve import rules as serve_rules
from reconciler.state import MemoryStore, RunRecord, RunState, Store
from reconciler.state.sql.store import SqlStore
from tests.serve.support import T0, Clock, Harness, apply_file, project, yaml

MINUTELY = yaml(
    """
    name: svc
    work_pools:
      - name: local
        type: process
    deployments:
      - name: tick
        entrypoint: flows/hello.py:hello
        schedules:
          - cron: "* * * * *"
            slug: minutely
            parameters: {name: scheduled}
        work_pool: {name: local}
    """
)


def harness(
    tmp_path: Path, text: str = MINUTELY, *, store: Store | None = None, **options: object
) -> Harness:
    root = project(tmp_path / "proj", text)
    store = store or MemoryStore(project="svc")
    apply_file(store, root)
    h = Harness(store, root)
    if options:
        h.options = serve.ServeOptions(**{"lookback": 300, **options})  # type: ignore[arg-type]
    return h


def keys(store: Store) -> list[str]:
    return sorted(r.idempotency_key or "" for r in store.list_runs(limit=1000))


def test_due_slots_become_runs_with_the_slot_key_and_launch_once(tmp_path: Path) -> None:
    h = harness(tmp_path)
    report = h.loop.run_pass()
    # the window is (T0 - 300 s, T0]: five minute marks
    assert [r.scheduled_for for r in report.launched] == [T0 - timedelta(minutes=m) for m in (4, 3, 2, 1, 0)]
    marks = ["09:56", "09:57", "09:58", "09:59", "10:00"]
    assert keys(h.store) == [f"schedule:hello/tick:minutely:2024-06-03T{m}:00Z" for m in marks]
    run = report.launched[0]
    assert run.reason == "schedule: minutely" and run.parameters == {"name": "scheduled"}
    assert run.state is RunState.PENDING and run.infrastructure_id == f"fake:{run.id}"
    assert len(h.lines("launched")) == 5

    assert h.loop.run_pass().launched == ()  # the same instant again: nothing new
    h.clock.advance(seconds=60)
    assert [r.scheduled_for for r in h.loop.run_pass().launched] == [T0 + timedelta(minutes=1)]
    assert len(h.launcher.submitted) == len(set(h.launcher.submitted)) == 6


def test_a_restarted_serve_does_not_launch_a_slot_again(tmp_path: Path) -> None:
    h = harness(tmp_path)
    h.loop.run_pass()
    h.clock.advance(seconds=30)
    h.restart()  # a new process: its window reaches back over the five slots already launched
    h.loop.start()
    assert h.loop.run_pass().launched == ()
    h.clock.advance(seconds=40)
    assert len(h.loop.run_pass().launched) == 1
    assert len(h.launcher.submitted) == len(set(h.launcher.submitted)) == 6
    assert len(h.store.list_runs(limit=100)) == 6


def test_two_serve_loops_racing_on_one_sqlite_store_launch_each_slot_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    first = harness(tmp_path, store=SqlStore(url, project="svc"))
    second = Harness(SqlStore(url, project="svc"), first.root)
    reports: list[serve.PassReport] = []
    barrier = threading.Barrier(2, timeout=60)  # a thread that fails first must not hang the other

    def one_pass(h: Harness) -> None:
        loop = h.loop
        barrier.wait()
        reports.append(loop.run_pass())

    threads = [threading.Thread(target=one_pass, args=(h,)) for h in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    submitted = first.launcher.submitted + second.launcher.submitted
    assert len(submitted) == len(set(submitted)) == 5
    assert len(first.store.list_runs(limit=100)) == 5
    assert not any(r.failed for r in reports)
    for h in (first, second):
        h.store.close()


def test_after_downtime_only_the_lookback_is_launched(tmp_path: Path) -> None:
    h = harness(tmp_path, lookback=120)
    assert len(h.loop.run_pass().launched) == 2  # (T0 - 120 s, T0]
    h.clock.advance(hours=3)  # the machine slept: 180 slots were missed
    assert len(h.loop.run_pass().launched) == 2


def test_inactive_schedules_make_no_runs(tmp_path: Path) -> None:
    h = harness(tmp_path, MINUTELY.replace("slug: minutely", "slug: minutely\n        active: false"))
    report = h.loop.run_pass()
    assert report.launched == () and report.skipped_slots == ()
    assert h.store.list_runs() == []


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (("type: process", "type: process\n    paused: true"), "pool local is paused"),
        (
            ("entrypoint: flows/hello.py:hello", "entrypoint: flows/hello.py:hello\n    paused: true"),
            "deployment is paused",
        ),
    ],
)
def test_paused_pools_and_deployments_get_no_runs_and_their_queue_waits(
    tmp_path: Path, edit: tuple[str, str], why: str
) -> None:
    h = harness(tmp_path, MINUTELY.replace(*edit))
    queued = runs.create(h.loop.ctx, "hello/tick", reason="manual")  # due at once (no scheduled time)
    report = h.loop.run_pass()
    assert report.launched == ()
    assert len(report.skipped_slots) == 5
    assert h.lines("skipped")[0].endswith(f"(schedule: minutely): {why}")
    assert [r.id for r in report.waiting] == [queued.id]
    assert h.store.get_run(queued.id).waiting == why  # type: ignore[union-attr]
    assert [r.id for r in h.store.list_runs()] == [queued.id]


POOL_LIMIT = MINUTELY.replace("type: process", "type: process\n    concurrency_limit: 2")


def test_the_pool_concurrency_limit_holds_runs_back_until_a_slot_frees(tmp_path: Path) -> None:
    h = harness(tmp_path, POOL_LIMIT)
    first = h.loop.run_pass()
    assert [r.scheduled_for for r in first.launched] == [T0 - timedelta(minutes=4), T0 - timedelta(minutes=3)]
    assert len(first.waiting) == 3
    assert all(r.waiting == "pool local concurrency limit 2 reached" for r in first.waiting)
    assert len(h.lines("waiting")) == 3
    assert h.loop.run_pass().launched == ()  # still full: nothing new, and no new log lines
    assert len(h.lines("waiting")) == 3
    h.launcher.finish(first.launched[0].id)
    second = h.loop.run_pass()
    assert [r.id for r in second.finished] == [first.launched[0].id]
    assert [r.scheduled_for for r in second.launched] == [T0 - timedelta(minutes=2)]  # oldest first


def deployment_limit(strategy: str) -> str:
    return MINUTELY.replace(
        "work_pool: {name: local}",
        f"work_pool: {{name: local}}\n    concurrency_limit: {{limit: 1, collision_strategy: {strategy}}}",
    )


def test_enqueue_waits_for_the_deployment_limit(tmp_path: Path) -> None:
    h = harness(tmp_path, deployment_limit("ENQUEUE"))
    first = h.loop.run_pass()
    assert len(first.launched) == 1 and len(first.waiting) == 4 and first.cancelled == ()
    h.launcher.finish(first.launched[0].id)
    assert [r.scheduled_for for r in h.loop.run_pass().launched] == [T0 - timedelta(minutes=3)]
    assert {r.state for r in h.store.list_runs()} == {
        RunState.COMPLETED,
        RunState.PENDING,
        RunState.SCHEDULED,
    }


def test_cancel_new_cancels_what_exceeds_the_deployment_limit(tmp_path: Path) -> None:
    h = harness(tmp_path, deployment_limit("CANCEL_NEW"))
    first = h.loop.run_pass()
    assert len(first.launched) == 1 and first.waiting == () and len(first.cancelled) == 4
    cancelled = h.store.get_run(first.cancelled[0].id)
    assert cancelled is not None and cancelled.state is RunState.CANCELLED
    assert cancelled.message == "cancelled: deployment concurrency limit 1 reached (CANCEL_NEW)"
    h.clock.advance(seconds=60)
    assert len(h.loop.run_pass().cancelled) == 1  # the first one still runs
    h.launcher.finish(first.launched[0].id)
    h.clock.advance(seconds=60)
    assert len(h.loop.run_pass().launched) == 1


def test_max_concurrent_caps_runs_in_flight(tmp_path: Path) -> None:
    h = harness(tmp_path, max_concurrent=3)
    report = h.loop.run_pass()
    assert len(report.launched) == 3 and len(report.waiting) == 2
    assert report.waiting[0].waiting == "serve --max-concurrent 3 reached"


def test_runs_are_followed_to_their_end(tmp_path: Path) -> None:
    h = harness(tmp_path, lookback=60)
    launched = h.loop.run_pass().launched
    assert len(launched) == 1
    h.launcher.finish(launched[0].id)
    report = h.loop.run_pass()
    assert [r.state for r in report.finished] == [RunState.COMPLETED] and report.in_flight == ()
    assert h.lines("finished")[0].endswith(
        f"finished run {launched[0].id} of hello/tick: COMPLETED (exit code 0)"
    )
    h.clock.advance(seconds=60)
    crashed = h.loop.run_pass().launched[0]
    h.launcher.finish(crashed.id, RunState.FAILED, exit_code=3)
    h.loop.run_pass()
    assert h.store.get_run(crashed.id).state is RunState.FAILED  # type: ignore[union-attr]


def test_a_failed_submission_crashes_that_run_and_the_loop_goes_on(tmp_path: Path) -> None:
    h = harness(tmp_path, lookback=60)
    h.launcher.fail_submit = True
    report = h.loop.run_pass()
    assert report.launched == () and not report.failed
    run = h.store.list_runs()[0]
    assert run.state is RunState.CRASHED and "no capacity" in run.message
    assert h.lines("crashed")
    h.launcher.fail_submit = False
    h.clock.advance(seconds=60)
    assert len(h.loop.run_pass().launched) == 1


def pending_without_infrastructure(h: Harness, **changes: object) -> RunRecord:
    run = runs.create(h.loop.ctx, "hello/tick", reason="manual")
    return h.store.update_run(run.evolve(state=RunState.PENDING, **changes))


def test_start_recovers_interrupted_launches(tmp_path: Path) -> None:
    h = harness(tmp_path)
    orphan = pending_without_infrastructure(h, created_at=T0 - timedelta(minutes=10))
    adopted = pending_without_infrastructure(h, created_at=T0 - timedelta(minutes=10))
    h.launcher.orphans[adopted.id] = "fake:found-by-tag"
    changed = {r.id: r for r in h.loop.start()}
    assert changed[orphan.id].state is RunState.CRASHED
    assert changed[adopted.id].infrastructure_id == "fake:found-by-tag"
    assert any(f"recovered run {orphan.id} of hello/tick: CRASHED" in line for line in h.log)
    h.launcher.finish(adopted.id)
    assert [r.id for r in h.loop.run_pass().finished] == [adopted.id]


def test_a_launch_in_progress_elsewhere_is_left_alone_until_it_is_surely_orphaned(tmp_path: Path) -> None:
    h = harness(tmp_path, lookback=0)
    claimed = pending_without_infrastructure(h, created_at=T0 - timedelta(seconds=5))  # another serve's
    assert h.loop.start() == []
    h.clock.advance(seconds=90)
    h.loop.run_pass()
    assert h.store.get_run(claimed.id).state is RunState.PENDING  # type: ignore[union-attr]
    h.clock.advance(seconds=31)  # unchanged for two minutes now: its launcher is gone
    h.loop.run_pass()
    assert h.store.get_run(claimed.id).state is RunState.CRASHED  # type: ignore[union-attr]


def test_a_launch_that_completes_elsewhere_is_not_recovered(tmp_path: Path) -> None:
    h = harness(tmp_path, lookback=0)
    claimed = pending_without_infrastructure(h, created_at=T0 - timedelta(seconds=5))
    h.loop.start()
    h.clock.advance(seconds=90)
    h.store.update_run(claimed.evolve(message="still submitting"))  # the other launcher moves it on
    h.clock.advance(seconds=60)
    h.loop.run_pass()
    assert h.store.get_run(claimed.id).state is RunState.PENDING  # type: ignore[union-attr]


def test_a_queued_run_keeps_its_place_across_a_restart(tmp_path: Path) -> None:
    h = harness(tmp_path, deployment_limit("ENQUEUE"))
    first = h.loop.run_pass()
    h.clock.advance(minutes=30)  # serve stops for half an hour; the queued runs are old now
    h.restart(lookback=0)
    h.loop.start()
    assert {r.state for r in h.store.list_runs()} == {RunState.PENDING, RunState.SCHEDULED}
    h.launcher.finish(first.launched[0].id)
    assert [r.scheduled_for for r in h.loop.run_pass().launched] == [T0 - timedelta(minutes=3)]


class SchedulingStore(MemoryStore):
    """A store whose server schedules runs itself, like a Prefect server (serve's store-driven path)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.asked: list[datetime] = []

    def scheduled_runs(self, *, before: datetime, limit: int) -> list[RunRecord]:
        self.asked.append(before)
        due = [
            r
            for r in self.list_runs(limit=10_000)
            if r.state is RunState.SCHEDULED and r.scheduled_for is not None and r.scheduled_for <= before
        ]
        return sorted(due, key=lambda r: r.scheduled_for or before)[:limit]


def test_a_store_that_schedules_runs_itself_is_asked_instead(tmp_path: Path) -> None:
    store = SchedulingStore(project="svc")
    h = harness(tmp_path, store=store)
    assert isinstance(store, serve.ScheduledRunsSource) and h.loop.source is store
    made = runs.create(
        h.loop.ctx, "hello/tick", reason="server schedule", scheduled_for=T0 - timedelta(seconds=5)
    )
    later = runs.create(
        h.loop.ctx, "hello/tick", reason="server schedule", scheduled_for=T0 + timedelta(minutes=5)
    )
    report = h.loop.run_pass()
    assert [r.id for r in report.launched] == [made.id]  # the slots of the cron are not serve's to make
    assert store.asked == [T0]
    assert h.store.get_run(later.id).state is RunState.SCHEDULED  # type: ignore[union-attr]
    assert "store-scheduled runs" not in "".join(h.log)  # (run() says it; run_pass does not)


def test_store_scheduled_runs_on_a_paused_pool_wait_unmarked(tmp_path: Path) -> None:
    store = SchedulingStore(project="svc")
    h = harness(tmp_path, MINUTELY.replace("type: process", "type: process\n    paused: true"), store=store)
    made = runs.create(h.loop.ctx, "hello/tick", reason="server schedule", scheduled_for=T0)
    report = h.loop.run_pass()
    assert [r.id for r in report.waiting] == [made.id]
    assert h.store.get_run(made.id).message == ""  # type: ignore[union-attr]  # server runs are not rewritten


class PerPoolStore(MemoryStore):
    """The Prefect store's form: due runs asked pool by pool, as a worker polls its pool."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.asked: list[str] = []

    def due_runs(self, pool: str, *, before: datetime, limit: int = 100) -> list[RunRecord]:
        self.asked.append(pool)
        return [
            r
            for r in self.list_runs(limit=10_000)
            if r.pool == pool and r.state is RunState.SCHEDULED and (r.scheduled_for or before) <= before
        ][:limit]


def test_a_store_that_schedules_per_pool_is_asked_for_the_unpaused_pools(tmp_path: Path) -> None:
    text = (
        MINUTELY.replace(
            "deployments:",
            "  - name: held\n    type: process\n    paused: true\ndeployments:",
        )
        + "  - name: waits\n    entrypoint: flows/hello.py:hello\n    work_pool: {name: held}\n"
    )
    store = PerPoolStore(project="svc")
    h = harness(tmp_path, text, store=store)
    assert isinstance(store, serve.PoolDueRuns) and h.loop.source is store
    assert h.loop.targets(store.read_all())["hello/waits"].blocked == "pool held is paused"
    made = runs.create(
        h.loop.ctx, "hello/tick", reason="server schedule", scheduled_for=T0 - timedelta(seconds=1)
    )
    assert [r.id for r in h.loop.run_pass().launched] == [made.id]
    assert store.asked == ["local"]  # the paused pool is not polled


CLOUD = yaml(
    """
    name: svc
    work_pools:
      - name: local
        type: process
      - name: ecs
        type: ecs:push
    deployments:
      - name: tick
        entrypoint: flows/hello.py:hello
        schedules: [{cron: "* * * * *", slug: minutely}]
        work_pool: {name: local}
      - name: pushed
        entrypoint: flows/hello.py:hello
        schedules: [{cron: "* * * * *", slug: minutely}]
        work_pool: {name: ecs}
    """
)


def test_on_prefect_cloud_push_pools_are_left_to_cloud(tmp_path: Path) -> None:
    store = MemoryStore(project="svc", url="prefect+https://api.prefect.cloud/api/accounts/a/workspaces/w")
    h = harness(tmp_path, CLOUD, store=store, lookback=60)
    theirs = pending_without_infrastructure(h)  # a run Cloud is pushing: not serve's to recover
    h.store.update_run(
        h.store.get_run(theirs.id).evolve(deployment="hello/pushed", pool="ecs", pool_type="ecs:push")
    )  # type: ignore[union-attr]
    assert h.loop.start() == []
    assert [r.deployment for r in h.loop.run_pass().launched] == ["hello/tick"]
    h.clock.advance(seconds=60)
    h.loop.run_pass()
    notes = [line for line in h.log if "Prefect Cloud pushes those itself" in line]
    assert len(notes) == 1 and "ecs:push" in notes[0]
    assert h.store.get_run(theirs.id).state is RunState.PENDING  # type: ignore[union-attr]


def test_a_schedule_that_cannot_fire_is_reported_once_and_the_others_run(tmp_path: Path) -> None:
    text = MINUTELY.replace(
        "    work_pool: {name: local}",
        '      - cron: "0 0 30 2 *"\n        slug: never\n    work_pool: {name: local}',
    )
    h = harness(tmp_path, text, lookback=60)
    assert len(h.loop.run_pass().launched) == 1
    h.clock.advance(seconds=60)
    assert len(h.loop.run_pass().launched) == 1
    assert len([line for line in h.log if "'never'" in line]) == 1


def test_run_stops_after_the_pass_in_progress_and_lists_what_runs(tmp_path: Path) -> None:
    h = harness(tmp_path, lookback=60, interval=5)
    clock = Clock()
    passes = 0

    def sleep(seconds: float) -> None:
        nonlocal passes
        passes += 1
        clock.sleep(seconds)
        if passes == 2:
            loop.stop.set()  # as SIGTERM does

    h.clock = clock
    loop = serve.ServeLoop(h.context(), log=h.log.append, options=h.options, now=clock.now, sleep=sleep)
    assert loop.run() == 0
    assert clock.slept == [5, 5]
    assert h.log[0].endswith("(project svc; schedules from the stored deployments; every 5s, lookback 60s)")
    left = [line for line in h.log if " left running: " in line]
    assert len(left) == 1 and "(RUNNING)" in left[0]
    assert "1 run(s) left running" in h.log[-2]


def test_once_fails_when_the_pass_fails(tmp_path: Path) -> None:
    h = harness(tmp_path, once=True)

    def broken() -> object:
        from reconciler.errors import StateError

        raise StateError("database is gone")

    assert h.loop is not None  # built (and its context read) before the database goes
    h.store.read_all = broken  # type: ignore[method-assign]
    assert h.loop.run() == 1
    assert any(line.endswith("error: database is gone") for line in h.log)


def test_state_urls_are_logged_without_passwords() -> None:
    assert (
        serve_rules.redact("postgresql+psycopg://app:s3cret@db:5432/state")
        == "postgresql+psycopg://app:***@db:5432/state"
    )
    assert serve_rules.redact("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
