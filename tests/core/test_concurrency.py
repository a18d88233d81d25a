"""Concurrent applies and crashes through the real CLI: nothing lost, nothing duplicated."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import REPO, make_project, run_cli


def _project(root: Path, n: int) -> Path:
    lines = ["name: busy", "work_pools: [{name: local, type: process}]", "deployments:"]
    for i in range(n):
        lines.append(f"  - {{name: d{i:04d}, entrypoint: flows/hello.py:hello, work_pool: {{name: local}}}}")
    return make_project(root, "\n".join(lines) + "\n")


def _objects(project: Path) -> list[str]:
    with sqlite3.connect(project / ".reconcile" / "state.db") as conn:
        return [row[0] for row in conn.execute("SELECT address FROM objects ORDER BY address")]


def _spawn(project: Path, *args: str, log: Path | None = None) -> subprocess.Popen[str]:
    """A reconcile process writing to a file (a pipe nobody reads would block it mid-print)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", "-C", str(project), *args],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_applies_at_once_end_consistent(tmp_path: Path) -> None:
    project = _project(tmp_path / "p", 300)
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    procs = [_spawn(project, "apply", "--yes", log=log) for log in logs]
    for proc in procs:
        proc.wait(timeout=300)
    outputs = [log.read_text() for log in logs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    created = [out for out in outputs if "Apply complete: 301 created." in out]
    assert len(created) == 1, outputs  # exactly one of them did the work; the other found nothing to do
    assert any("No changes" in out for out in outputs)
    assert len(_objects(project)) == 301 == len(set(_objects(project)))
    assert run_cli("-C", str(project), "plan", "--detailed-exitcode").returncode == 0
    history = json.loads(run_cli("-C", str(project), "history", "--json").stdout)
    assert len(history) == 1


def test_an_apply_killed_mid_way_converges_on_the_next_one(tmp_path: Path) -> None:
    project = _project(tmp_path / "p", 1500)
    victim = _spawn(project, "apply", "--yes")
    db = project / ".reconcile" / "state.db"
    deadline = time.monotonic() + 120
    written = 0
    while time.monotonic() < deadline:
        if db.exists():
            try:
                written = len(_objects(project))
            except sqlite3.OperationalError:
                written = 0
        if written >= 50:
            break
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    partial = _objects(project)
    assert 50 <= len(partial) < 1501, len(partial)  # killed mid-way

    plan = run_cli("-C", str(project), "plan", "--json")
    assert plan.returncode == 0, plan.stderr
    remaining = json.loads(plan.stdout)["summary"]["create"]
    assert remaining == 1501 - len(partial)  # every written object is whole and counted once

    again = run_cli("-C", str(project), "apply", "--yes", "--lock-timeout", "10", timeout=300)
    assert again.returncode == 0, again.stderr  # the dead holder's lock is taken over
    assert _objects(project) == sorted(set(_objects(project))) and len(_objects(project)) == 1501
    assert run_cli("-C", str(project), "plan", "--detailed-exitcode").returncode == 0


HOLD_LOCK = """
import sys, time
from reconciler import apply, state
store = state.open_store(sys.argv[1], project="busy")
with store.lock(timeout=5, info=apply.lock_info("test holder")):
    print("locked", flush=True)
    time.sleep(30)
"""


def test_a_held_lock_makes_apply_wait_then_fail_naming_the_holder(tmp_path: Path) -> None:
    project = _project(tmp_path / "p", 3)
    assert run_cli("-C", str(project), "apply", "--yes").returncode == 0
    url = f"sqlite:///{project / '.reconcile' / 'state.db'}"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, url],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        (project / "prefect.yaml").write_text(
            (project / "prefect.yaml").read_text().replace("d0000", "d9999")
        )
        started = time.monotonic()
        result = run_cli("-C", str(project), "apply", "--yes", "--lock-timeout", "1.5")
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert result.returncode == 1
    assert "locked by" in result.stderr and "test holder" in result.stderr, result.stderr
    assert waited >= 1.5
    assert "deployment.hello/d9999" not in _objects(project)
