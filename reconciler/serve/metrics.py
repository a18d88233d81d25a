"""``serve --metrics-port``: Prometheus metrics and Kubernetes-style probes for the push service.

One HTTP server on a daemon thread answers

* ``/metrics``: prometheus_client's own WSGI exposition of this process's registry (text format,
  gzip when asked): passes and their duration, runs launched and ended by pool and deployment,
  launch latency (due -> submitted), the store's API requests by backend (stores that count them:
  ``state.CountsRequests``), the last successful pass, lock waits;
* ``/healthz``: 200 while the process is up (liveness);
* ``/readyz``: 200 when the last pass succeeded (so the store answered) and it is recent (at most
  ``stale_after`` seconds old), else 503 with the reason (readiness).

Labels carry only names from the project (pool, deployment, run state) and the store's backend
(``sqlite``, ``postgresql``, ``prefect``): never a URL, so never a credential. Metric names follow
Prometheus conventions (``reconcile_`` prefix, base units, ``_total`` for counters).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from reconciler.serve.rules import PassReport
from reconciler.state import CountsRequests, RunState, Store

# A pass is a few reads and writes; a launch is seconds (a cloud call with retries).
_PASS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_LATENCY_BUCKETS = (0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600)
_LOCK_BUCKETS = (0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300)
_ENDED = {
    RunState.COMPLETED: "completed",
    RunState.FAILED: "failed",
    RunState.CRASHED: "crashed",
    RunState.CANCELLED: "cancelled",
}

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def backend_of(store: Store) -> str:
    """The store's kind for a label: its URL's scheme without driver (``postgresql+psycopg`` ->
    ``postgresql``; Prefect's ``http(s)`` -> ``prefect``), never the URL itself."""
    scheme = store.url.partition("://")[0].partition("+")[0].lower()
    return "prefect" if scheme in ("http", "https") else scheme or "unknown"


class ServeMetrics:
    """The metrics of one serve process, fed by :meth:`observe_pass` after every pass."""

    def __init__(self, store: Store, *, stale_after: float, now: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        self.store, self.stale_after, self._now = store, stale_after, now
        self.backend = backend_of(store)
        r = self.registry
        self.passes = Counter("reconcile_serve_passes", "serve passes, by outcome", ["outcome"], registry=r)
        self.pass_seconds = Histogram(
            "reconcile_serve_pass_duration_seconds",
            "How long a serve pass took",
            buckets=_PASS_BUCKETS,
            registry=r,
        )
        self.launched = Counter(
            "reconcile_serve_runs_launched", "Runs serve submitted", ["pool", "deployment"], registry=r
        )
        self.ended = Counter(
            "reconcile_serve_runs_ended",
            "Runs serve saw end, by final state (completed, failed, crashed, cancelled)",
            ["pool", "deployment", "state"],
            registry=r,
        )
        self.waiting = Gauge(
            "reconcile_serve_runs_waiting", "Due runs held back at the last pass", registry=r
        )
        self.in_flight = Gauge(
            "reconcile_serve_runs_in_flight", "Runs in flight after the last pass", registry=r
        )
        self.latency = Histogram(
            "reconcile_serve_launch_latency_seconds",
            "From when a run was due to when serve submitted it",
            ["pool"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "reconcile_store_requests",
            "API requests the store sent (retries included)",
            ["backend"],
            registry=r,
        )
        self.last_success = Gauge(
            "reconcile_serve_last_success_timestamp_seconds",
            "When the last successful pass ended",
            registry=r,
        )
        self.lock_waits = Histogram(
            "reconcile_lock_wait_seconds",
            "Time spent waiting for the store's lock",
            buckets=_LOCK_BUCKETS,
            registry=r,
        )
        self._requests_seen = self._requests_now()
        self._last_ok: float | None = None
        self._last_failed = False
        self._guard = threading.Lock()

    # -- fed by the loop ----------------------------------------------------------------------------

    def observe_pass(self, report: PassReport, seconds: float) -> None:
        """Count what one pass did (the loop calls this after each pass, failed or not)."""
        self.passes.labels("failed" if report.failed else "ok").inc()
        self.pass_seconds.observe(seconds)
        for run in report.launched:
            self.launched.labels(_label(run.pool), run.deployment).inc()
            due = run.scheduled_for or run.created_at
            if due is not None and run.started_at is not None:
                self.latency.labels(_label(run.pool)).observe(
                    max(0.0, (run.started_at - due).total_seconds())
                )
        for run in (*report.finished, *report.cancelled):
            state = _ENDED.get(run.state)
            if state is not None:
                self.ended.labels(_label(run.pool), run.deployment, state).inc()
        self.waiting.set(len(report.waiting))
        self.in_flight.set(len(report.in_flight))
        now = self._now()
        with self._guard:
            self._last_failed = report.failed
            if not report.failed:
                self._last_ok = now
                self.last_success.set(now)
        count = self._requests_now()
        if count > self._requests_seen:
            self.requests.labels(self.backend).inc(count - self._requests_seen)
        self._requests_seen = max(count, self._requests_seen)

    def observe_lock_wait(self, seconds: float) -> None:
        """Time a caller took to get the store's lock, or to give up on it: a self-heal sync pass
        applying through the engine, which reports it (``ReconcileOptions.on_lock_wait``)."""
        self.lock_waits.observe(seconds)

    def follow_sync(self, totals: Callable[[], SyncTotals]) -> None:
        """Expose continuous sync's totals (``serve --sync-interval``), read at each scrape."""
        self.registry.register(_SyncCollector(totals))

    def _requests_now(self) -> int:
        return int(self.store.requests_made) if isinstance(self.store, CountsRequests) else 0

    # -- probes -------------------------------------------------------------------------------------

    def readiness(self) -> str | None:
        """None when ready; else why not (no pass yet, the last pass failed, or it is too old)."""
        with self._guard:
            last_ok, failed = self._last_ok, self._last_failed
        if failed:
            return "the last pass failed (is the store reachable?)"
        if last_ok is None:
            return "no pass has succeeded yet"
        age = self._now() - last_ok
        if age > self.stale_after:
            return f"the last successful pass was {age:.0f}s ago (more than {self.stale_after:g}s)"
        return None

    def app(self) -> WsgiApp:
        """The WSGI app: probes here, everything else to prometheus_client's exposition."""
        metrics = make_wsgi_app(self.registry)

        def route(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/healthz":
                return _text(start_response, "200 OK", "ok\n")
            if path == "/readyz":
                why = self.readiness()
                if why is None:
                    return _text(start_response, "200 OK", "ready\n")
                return _text(start_response, "503 Service Unavailable", f"not ready: {why}\n")
            return metrics(environ, start_response)

        return route


class SyncTotals(Protocol):
    """What ``serve/sync.py``'s ``SyncTotals`` holds (read only)."""

    passes: int
    failures: int
    drifted: int
    applied: int

    @property
    def last(self) -> Any: ...  # SyncReport | None: its ``pending`` and ``drifted`` counts


class _SyncCollector(Collector):
    """Sync's counters as Prometheus counters and the last pass's counts as gauges."""

    def __init__(self, totals: Callable[[], SyncTotals]) -> None:
        self._totals = totals

    def collect(self) -> Iterator[Metric]:
        totals = self._totals()
        for name, value, text in (
            ("reconcile_sync_passes", totals.passes, "Continuous-sync passes"),
            (
                "reconcile_sync_failures",
                totals.failures,
                "Sync passes that applied nothing because of an error",
            ),
            ("reconcile_sync_drifted_objects", totals.drifted, "Drifted objects seen by sync passes"),
            ("reconcile_sync_applied_changes", totals.applied, "Changes written by self-heal"),
        ):
            yield CounterMetricFamily(name, text, value=value)
        last = totals.last
        yield GaugeMetricFamily(
            "reconcile_sync_pending_changes",
            "Changes pending at the last sync pass",
            value=last.pending if last else 0,
        )
        yield GaugeMetricFamily(
            "reconcile_sync_drifted",
            "Drifted objects at the last sync pass",
            value=last.drifted if last else 0,
        )


def _text(start_response: Callable[..., Any], status: str, body: str) -> list[bytes]:
    data = body.encode()
    start_response(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))]
    )
    return [data]


def _label(pool: str | None) -> str:
    return pool or ""


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr: serve's log is for events, and a scrape every 15 s is not one."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class MetricsServer:
    """The HTTP server of :class:`ServeMetrics` on ``host:port``, served by a daemon thread."""

    def __init__(self, metrics: ServeMetrics, *, host: str, port: int) -> None:
        self._server = make_server(
            host, port, metrics.app(), server_class=_Server, handler_class=_QuietHandler
        )
        self.host, self.port = host, int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="reconcile-metrics", daemon=True
        )

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"
