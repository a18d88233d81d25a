"""The metrics and JSON-log pieces of ``serve`` on their own: readiness rules, labels, redaction."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from prometheus_client import generate_latest

from reconciler.serve import logformat, metrics
from reconciler.serve.rules import PassReport
from reconciler.state import RunRecord, RunState
from reconciler.state.memory import MemoryStore

AT = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)


class CountingStore(MemoryStore):
    """A store that counts its HTTP requests (as the Prefect store does)."""

    def __init__(self) -> None:
        super().__init__(project="svc", url="https://user:hunter2@prefect.example/api?api_key=sekrit")
        self.requests_made = 0
        self.requests_by_method: dict[str, int] = {}
        self.requests_retried = 0


def _run(state: RunState, **extra: object) -> RunRecord:
    return RunRecord(id="r1", deployment="hello/hi", pool="local", pool_type="process", state=state, **extra)  # type: ignore[arg-type]


def test_readiness_needs_a_recent_successful_pass() -> None:
    clock = [1000.0]
    observed = metrics.ServeMetrics(MemoryStore(), stale_after=30, now=lambda: clock[0])
    assert observed.readiness() == "no pass has succeeded yet"
    observed.observe_pass(PassReport(AT), 0.1)
    assert observed.readiness() is None
    clock[0] += 31
    assert "31s ago" in str(observed.readiness())
    observed.observe_pass(PassReport(AT, failed=True), 0.1)
    assert "failed" in str(observed.readiness())
    observed.observe_pass(PassReport(AT), 0.1)
    assert observed.readiness() is None


def test_counters_and_latency_follow_the_report_and_labels_hold_no_url() -> None:
    store = CountingStore()
    observed = metrics.ServeMetrics(store, stale_after=30)
    launched = _run(RunState.PENDING, scheduled_for=AT, started_at=AT + timedelta(seconds=4))
    store.requests_made = 7
    observed.observe_pass(PassReport(AT, launched=(launched,)), 0.2)
    ended = (_run(RunState.COMPLETED), _run(RunState.CRASHED))
    store.requests_made = 9
    observed.observe_pass(PassReport(AT, finished=ended), 0.2)
    text = generate_latest(observed.registry).decode()
    assert 'reconcile_serve_runs_launched_total{deployment="hello/hi",pool="local"} 1.0' in text
    assert 'reconcile_serve_runs_ended_total{deployment="hello/hi",pool="local",state="crashed"} 1.0' in text
    assert 'reconcile_serve_launch_latency_seconds_sum{pool="local"} 4.0' in text
    assert 'reconcile_store_requests_total{backend="prefect"} 9.0' in text
    assert "hunter2" not in text and "sekrit" not in text and "prefect.example" not in text


def test_backend_label_is_the_scheme_only() -> None:
    assert metrics.backend_of(MemoryStore(url="postgresql+psycopg://u:pw@db/x")) == "postgresql"
    assert metrics.backend_of(MemoryStore(url="sqlite:////tmp/x.db")) == "sqlite"


def test_json_lines_carry_fields_and_no_credentials() -> None:
    line = logformat.json_line("2024-06-03T10:00:00Z finished run r1 of hello/hi: FAILED (exit code 1): boom")
    doc = json.loads(line)
    assert doc["ts"] == "2024-06-03T10:00:00Z" and doc["level"] == "info"
    assert doc["fields"] == {"event": "finished", "run": "r1", "deployment": "hello/hi", "state": "FAILED"}
    error = json.loads(
        logformat.json_line("2024-06-03T10:00:00Z error: cannot reach postgresql://me:pw@db/x")
    )
    assert error["level"] == "error" and "pw@" not in error["msg"] and "me:***@db" in error["msg"]


def test_continuous_sync_totals_are_read_at_each_scrape() -> None:
    from reconciler.serve import sync

    observed = metrics.ServeMetrics(MemoryStore(), stale_after=30)
    totals = sync.SyncTotals()
    observed.follow_sync(lambda: totals)
    totals.add(sync.SyncReport(AT, "main", "abc", pending=3, drifted=2, applied=3))
    text = generate_latest(observed.registry).decode()
    assert "reconcile_sync_passes_total 1.0" in text and "reconcile_sync_drifted_objects_total 2.0" in text
    assert "reconcile_sync_pending_changes 3.0" in text and "reconcile_sync_applied_changes_total 3.0" in text
