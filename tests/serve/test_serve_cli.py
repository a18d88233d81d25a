"""``reconcile serve`` as users run it: real processes, a SQLite store, the process launcher."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reconciler.state import RunState
from reconciler.state.sql.store import SqlStore
from tests.helpers import REPO, make_project, run_cli
from tests.serve.support import backdate_file

TOKEN = "tok-5e1f0c0ffee-do-not-print"

FLOWS = {
    "flows/hello.py": '''
        import os


        def hello(name: str = "world") -> str:
            """Say hello."""
            print(f"hello {name}; token set: {bool(os.environ.get('API_TOKEN'))}", flush=True)
            return name
        ''',
    "flows/slow.py": '''
        import time


        def slow(seconds: float = 60) -> None:
            """Take a while."""
            time.sleep(seconds)
        ''',
}


def iso(at: datetime) -> str:
    return at.astimezone(UTC).replace(microsecond=0).isoformat()


def hourly_project(root: Path, *, anchor: datetime) -> Path:
    """One deployment due once an hour from ``anchor``, with a secret in its job environment."""
    return make_project(
        root,
        f"""
        name: svc
        work_pools:
          - name: local
            type: process
        deployments:
          - name: hourly
            entrypoint: flows/hello.py:hello
            schedules:
              - interval: 3600
                anchor_date: "{iso(anchor)}"
                slug: hourly
            work_pool:
              name: local
              job_variables:
                env:
                  API_TOKEN: "{{{{ $API_TOKEN }}}}"
        """,
        FLOWS,
    )


def applied_earlier(root: Path) -> None:
    """Date the applied objects an hour back: these tests launch slots due before they ran ``apply``,
    which serve does only for a deployment that existed then."""
    backdate_file(root / ".reconcile" / "state.db", "svc", datetime.now(UTC) - timedelta(hours=1))


def runs_of(root: Path) -> list[dict[str, object]]:
    listed = run_cli("-C", str(root), "runs", "--json", env={"API_TOKEN": TOKEN})
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def test_serve_once_launches_the_due_slot_recovers_and_follows_runs_to_completed(tmp_path: Path) -> None:
    root = hourly_project(tmp_path / "proj", anchor=datetime.now(UTC) - timedelta(seconds=20))
    env = {"API_TOKEN": TOKEN}
    assert run_cli("-C", str(root), "apply", "--yes", env=env).returncode == 0
    applied_earlier(root)
    store = SqlStore(f"sqlite:///{root / '.reconcile' / 'state.db'}", project="svc")
    from reconciler.state import RunRecord

    orphan = store.create_run(
        RunRecord(
            id="orphan-1",
            deployment="hello/hourly",
            pool="local",
            pool_type="process",
            state=RunState.PENDING,
            created_at=datetime.now(UTC) - timedelta(minutes=10),  # its launcher died long ago
        )
    )
    store.close()

    first = run_cli("-C", str(root), "serve", "--once", "--lookback", "60", env=env)
    assert first.returncode == 0, first.stderr
    launched = [line for line in first.stderr.splitlines() if " launched run " in line]
    assert len(launched) == 1 and "(schedule: hourly) on local" in launched[0]
    assert f"recovered run {orphan.id} of hello/hourly: CRASHED" in first.stderr
    assert TOKEN not in first.stderr + first.stdout

    deadline = time.monotonic() + 60
    finished = ""
    while not finished and time.monotonic() < deadline:
        time.sleep(0.3)
        again = run_cli("-C", str(root), "serve", "--once", "--lookback", "60", env=env)
        assert again.returncode == 0, again.stderr
        assert " launched run " not in again.stderr  # the same slot, seen again: never a second run
        finished = next((line for line in again.stderr.splitlines() if " finished run " in line), "")
        assert TOKEN not in again.stderr + again.stdout
    assert finished.endswith("COMPLETED (exit code 0)")
    scheduled = [r for r in runs_of(root) if r["reason"] == "schedule: hourly"]
    assert len(scheduled) == 1 and scheduled[0]["state"] == "COMPLETED"
    log = Path(str(scheduled[0]["log_path"])).read_text(encoding="utf-8")
    assert "token set: True" in log and TOKEN not in log


def test_two_serve_processes_over_one_window_launch_each_slot_once(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "proj",
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
              - interval: 20
                slug: every-20s
            work_pool: {name: local}
        """,
        FLOWS,
    )
    assert run_cli("-C", str(root), "apply", "--yes").returncode == 0
    applied_earlier(root)
    command = [sys.executable, "-m", "reconciler", "-C", str(root), "serve", "--once", "--lookback", "130"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    procs = [subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    launched = [line for out in outputs for line in out.splitlines() if " launched run " in line]
    listed = runs_of(root)
    keys = [r["id"] for r in listed]
    assert len(listed) >= 7  # 6 or 7 interval slots and 2 or 3 minute marks in 130 s
    assert len(launched) == len(listed) == len(set(keys))  # every slot launched, by exactly one process
    started = [d for d in (root / ".reconcile" / "runs").iterdir() if (d / "pid").exists()]
    assert len(started) == len(listed)


def test_serve_stops_on_sigterm_and_leaves_its_runs_running(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "proj",
        """
        name: svc
        work_pools:
          - name: local
            type: process
            concurrency_limit: 1
        deployments:
          - name: slow
            entrypoint: flows/slow.py:slow
            schedules: [{interval: 1, slug: every-second}]
            work_pool: {name: local}
        """,
        FLOWS,
    )
    assert run_cli("-C", str(root), "apply", "--yes").returncode == 0
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    command = [
        sys.executable,
        "-m",
        "reconciler",
        "-C",
        str(root),
        "serve",
        "--interval",
        "0.2",
        "--lookback",
        "2",
    ]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any(" waiting run " in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.1)  # one run holds the pool's only slot; the next slot waits for it
        assert any(" launched run " in line for line in lines), lines
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
    text = "".join(lines)
    assert "serve: stopping; 1 run(s) left running" in text
    left = [line for line in lines if " left running: run " in line]
    assert len(left) == 1
    pids = []
    for pid_file in (root / ".reconcile" / "runs").glob("*/pid"):
        pids.append(int(pid_file.read_text(encoding="utf-8").split(":")[2]))
    assert len(pids) == 1
    try:
        os.kill(pids[0], 0)  # still running after serve exited
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pids[0], signal.SIGTERM)


def test_serve_rejects_bad_options_with_one_line(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", "name: svc\n", FLOWS)
    result = run_cli("-C", str(root), "serve", "--interval", "0")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
