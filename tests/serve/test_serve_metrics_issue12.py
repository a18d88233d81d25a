"""``serve --metrics-port``/``--log-format json`` as an operator runs it: a real serve process on the
``process`` pool, scraped while its runs start and end; readiness lost when the store breaks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import REPO, make_project, run_cli

TOKEN = "tok-metrics-5ecret-do-not-print"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def _samples(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    status, text = _get(f"{base}/metrics")
    assert status == 200
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _until(check: Callable[[], bool], *, timeout: float = 60, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_metrics_follow_the_runs_and_readyz_fails_when_the_store_breaks(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        """
        name: svc
        work_pools:
          - name: local
            type: process
        deployments:
          - name: hi
            entrypoint: flows/hello.py:hello
            schedules: [{interval: 2, slug: every-2s}]
            work_pool:
              name: local
              job_variables:
                env: {API_TOKEN: "{{ $API_TOKEN }}"}
          - name: boom
            entrypoint: flows/boom.py:boom
            schedules: [{interval: 2, slug: every-2s}]
            work_pool: {name: local}
        """,
        {
            "flows/hello.py": '''
                def hello() -> None:
                    """Say hello."""
                    print("hello", flush=True)
                ''',
            "flows/boom.py": '''
                def boom() -> None:
                    """Fail."""
                    raise RuntimeError("boom")
                ''',
        },
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "API_TOKEN": TOKEN}
    assert run_cli("-C", str(root), "apply", "--yes", env={"API_TOKEN": TOKEN}).returncode == 0
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "reconciler", "-C", str(root), "serve", "--interval", "1"]
    command += ["--metrics-port", str(port), "--log-format", "json"]
    serving = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        _until(lambda: _get(f"{base}/healthz")[0] == 200, what="/healthz")
        _until(lambda: _get(f"{base}/readyz")[0] == 200, what="/readyz after the first pass")
        hi = {"pool": "local", "deployment": "hello/hi"}
        boom = {"pool": "local", "deployment": "boom/boom"}

        def moved() -> bool:
            now = _samples(base)
            return (
                _value(now, "reconcile_serve_runs_launched_total", **hi) >= 2
                and _value(now, "reconcile_serve_runs_ended_total", **hi, state="completed") >= 1
                and _value(now, "reconcile_serve_runs_ended_total", **boom, state="failed") >= 1
            )

        _until(moved, what="runs launched, completed and failed in the metrics")
        first = _samples(base)
        _until(
            lambda: (
                _value(_samples(base), "reconcile_serve_runs_launched_total", **hi)
                > _value(first, "reconcile_serve_runs_launched_total", **hi)
            ),
            what="the launched counter to move with the next slot",
        )
        now = _samples(base)
        assert _value(now, "reconcile_serve_passes_total", outcome="ok") >= 2
        assert _value(now, "reconcile_serve_last_success_timestamp_seconds") > time.time() - 30
        assert _value(now, "reconcile_serve_launch_latency_seconds_count", pool="local") >= 2
        assert _value(now, "reconcile_serve_pass_duration_seconds_count") >= 2
        _, text = _get(f"{base}/metrics")
        assert TOKEN not in text and str(tmp_path) not in text  # no secret, no path or URL in a label

        with open(root / ".reconcile" / "state.db", "r+b") as db:  # the store breaks under serve
            db.write(b"this is not a database any more" * 4)
        _until(lambda: _get(f"{base}/readyz")[0] == 503, what="/readyz to turn unready")
        assert "the last pass failed" in _get(f"{base}/readyz")[1]
        assert _get(f"{base}/healthz")[0] == 200  # the process is up: not a reason to restart it
    finally:
        serving.send_signal(signal.SIGTERM)
        _, stderr = serving.communicate(timeout=60)
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]  # every line is JSON
    assert all(set(line) == {"ts", "level", "msg", "fields"} for line in lines)
    launched = [line for line in lines if line["fields"].get("event") == "launched"]
    assert launched and launched[0]["fields"]["deployment"] in ("hello/hi", "boom/boom")
    assert any(line["level"] == "error" for line in lines)  # the broken store, said as an error
    assert TOKEN not in stderr
