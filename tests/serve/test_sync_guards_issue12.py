"""``serve --sync-interval --self-heal`` against the engine's guards (issue 12): a rollback refused
with a remedy serve's operator can follow, and the time a pass waits for the state lock in
``reconcile_lock_wait_seconds`` on ``/metrics``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from reconciler import engine
from reconciler.apply import lock_info
from reconciler.engine import gitrules
from reconciler.serve import metrics, sync
from reconciler.state.sql.store import SqlStore
from reconciler.triggers import github, watch
from tests.helpers import REPO, run_cli
from tests.serve.test_sync import origin_and_clone, project_yaml, stored, sync_lines, sync_once


def _store(clone: Path) -> SqlStore:
    return SqlStore(f"sqlite:///{clone / '.reconcile' / 'state.db'}", project="svc")


def _lock_waits(url: str) -> tuple[float, float]:
    """``(count, sum)`` of the lock-wait histogram, scraped from ``url`` (a ``/metrics`` page)."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    found = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("reconcile_lock_wait_seconds")
    }
    return found.get("reconcile_lock_wait_seconds_count", 0.0), found.get(
        "reconcile_lock_wait_seconds_sum", 0.0
    )


def test_a_refused_rollback_names_what_serves_operator_can_do_and_that_remedy_works(tmp_path: Path) -> None:
    origin, clone = origin_and_clone(tmp_path)
    first = origin.head()
    sync_once(clone)
    second = origin.commit("second", {"prefect.yaml": project_yaml("second")})
    sync_once(clone)
    assert stored(clone)[:2] == ("second", second)

    origin.git("reset", "-q", "--hard", first)  # main force-moved back to an older commit
    done = sync_once(clone)
    (line,) = sync_lines(done.stderr)
    assert f"refusing to apply commit {first[:12]}" in line, line
    assert "serve never rolls back on its own" in line and "reconcile apply --allow-rollback" in line
    assert "pass --allow-rollback" not in line  # serve has no such option
    assert stored(clone)[:2] == ("second", second)  # nothing applied

    # the remedy, as the line says: apply the older commit once, on purpose; sync follows from there
    rolled = run_cli("-C", str(clone), "apply", "--allow-rollback", "--yes")
    assert rolled.returncode == 0, rolled.stderr
    assert stored(clone)[:2] == ("first", first)
    (line,) = sync_lines(sync_once(clone).stderr)
    assert "in sync" in line, line


def test_apply_still_names_its_own_option() -> None:
    assert engine.ReconcileOptions().rollback_remedy == "pass --allow-rollback if that is what you mean"


@pytest.mark.parametrize(
    "remedy", [sync.rollback_remedy("main"), watch.ROLLBACK_REMEDY, github.ROLLBACK_REMEDY]
)
def test_commands_without_allow_rollback_point_to_apply_instead(remedy: str) -> None:
    """serve, watch and the GitHub Action have no --allow-rollback: each says what its operator can do."""
    with pytest.raises(gitrules.RollbackRefused) as refused:
        gitrules.refuse_rollback(gitrules.Relation.BEHIND, "a" * 40, "b" * 40, allow=False, remedy=remedy)
    assert "pass --allow-rollback" not in str(refused.value)
    assert str(refused.value).endswith(remedy) and "`reconcile apply --allow-rollback`" in remedy


def test_a_pass_that_waits_for_a_held_lock_shows_in_the_lock_wait_histogram(tmp_path: Path) -> None:
    origin, clone = origin_and_clone(tmp_path)
    sync_once(clone)
    origin.commit("second", {"prefect.yaml": project_yaml("second")})
    holder, ws = _store(clone), engine.Workspace(clone)
    observed = metrics.ServeMetrics(holder, stale_after=60)
    server = metrics.MetricsServer(observed, host="127.0.0.1", port=0).start()
    options = sync.SyncOptions(interval=1, self_heal=True, lock_timeout=1.0)
    syncer = sync.Syncer(ws, options, log=lambda _: None, on_lock_wait=observed.observe_lock_wait)
    try:
        assert _lock_waits(server.url) == (0, 0)
        with holder.lock(timeout=5, info=lock_info("someone else's apply")):
            refused = syncer.sync()  # waits its whole lock timeout, then gives up
        assert refused.error is not None and "state is locked by" in refused.error
        count, waited = _lock_waits(server.url)
        assert count == 1 and waited >= options.lock_timeout

        healed = syncer.sync()  # the lock is free now
        assert healed.error is None and healed.applied == 1
        assert _lock_waits(server.url)[0] == 2
    finally:
        server.close()
        ws.close()
        holder.close()


def test_serve_feeds_its_metrics_with_the_lock_waits_of_its_sync_passes(tmp_path: Path) -> None:
    """The wiring, through the CLI: a self-heal pass of a real serve process shows on its /metrics."""
    _, clone = origin_and_clone(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILE_")}
    env.update(PYTHONPATH=str(REPO), NO_COLOR="1")
    command = [sys.executable, "-m", "reconciler", "-C", str(clone), "serve", "--interval", "60"]
    command += ["--sync-interval", "60", "--self-heal", "--metrics-port", "0"]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        url = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not url:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "serve ended early"
            if "serve: metrics on " in line:
                url = line.rsplit("metrics on ", 1)[1].strip()
        assert url, "serve never said where its metrics are"
        while time.monotonic() < deadline and _lock_waits(url)[0] < 1:
            time.sleep(0.3)
        assert _lock_waits(url)[0] == 1  # the first sync pass took the lock to apply
    finally:
        proc.terminate()
        proc.wait(timeout=60)
