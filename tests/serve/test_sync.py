"""``serve --sync-interval --self-heal``: continuous sync of a Git ref, through the CLI, on real Git repos.

The project is a clone of an "origin" repository: commits land in origin, and only a sync pass that
fetches sees them (the clone's working tree never moves). Drift is made behind the tool's back with
the store's own API.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from reconciler.objects import Address, Kind
from reconciler.state.sql.store import SqlStore
from tests.helpers import HELLO_FLOW, REPO, run_cli
from tests.triggers.conftest import GitRepo

DEPLOYMENT = Address(Kind.DEPLOYMENT, "hello/nightly")


def project_yaml(description: str) -> str:
    return f"""
        name: svc
        work_pools:
          - name: local
            type: process
        deployments:
          - name: nightly
            entrypoint: flows/hello.py:hello
            description: {description}
            work_pool: {{name: local}}
        """


def origin_and_clone(tmp_path: Path) -> tuple[GitRepo, Path]:
    origin = GitRepo(tmp_path / "origin")
    origin.commit("first", {"prefect.yaml": project_yaml("first"), "flows/hello.py": HELLO_FLOW})
    clone = tmp_path / "clone"
    origin.git("clone", "-q", str(origin.root), str(clone))
    return origin, clone


def stored(clone: Path) -> tuple[str | None, str | None, int]:
    """The deployment's description, the last applied commit and the store's serial."""
    store = SqlStore(f"sqlite:///{clone / '.reconcile' / 'state.db'}", project="svc")
    try:
        live = store.read_all()
    finally:
        store.close()
    obj = live.objects.get(DEPLOYMENT)
    return (obj.resource.body.get("description") if obj else None), live.last_commit, live.serial


def sync_once(clone: Path) -> subprocess.CompletedProcess[str]:
    done = run_cli("-C", str(clone), "serve", "--once", "--sync-interval", "1", "--self-heal")
    assert done.returncode == 0, done.stderr
    return done


def sync_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " sync: " in line]


def test_a_pushed_commit_is_fetched_and_applied_and_a_broken_one_applies_nothing(tmp_path: Path) -> None:
    origin, clone = origin_and_clone(tmp_path)

    first = sync_once(clone)
    (line,) = sync_lines(first.stderr)
    assert "sync: main at " in line and "self-healed: 2 applied" in line, line
    assert stored(clone)[:2] == ("first", origin.head())

    second = origin.commit("second", {"prefect.yaml": project_yaml("second")})
    done = sync_once(clone)
    (line,) = sync_lines(done.stderr)
    assert (
        f"main at {second[:12]}" in line and "self-healed: 1 applied; 1 change(s) pending, 0 drifted" in line
    )
    assert stored(clone)[:2] == ("second", second)
    assert "description: first" in (clone / "prefect.yaml").read_text()  # fetched, never checked out

    before = stored(clone)
    origin.commit("broken", {"prefect.yaml": project_yaml("third").replace("type: process", "type: nope")})
    done = sync_once(clone)
    (line,) = sync_lines(done.stderr)
    assert "error: invalid desired state: prefect.yaml:" in line, line
    assert line.endswith("; nothing applied")  # a new process has applied no commit yet
    assert stored(clone) == before  # same body, same last commit, same serial: nothing written

    quiet = sync_once(clone)  # still broken: still reported, still nothing written
    assert "error: invalid desired state" in sync_lines(quiet.stderr)[0]
    assert stored(clone) == before


def test_drift_made_behind_the_tools_back_is_repaired_on_the_next_sync_pass(tmp_path: Path) -> None:
    origin, clone = origin_and_clone(tmp_path)
    sync_once(clone)
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    env = {k: v for k, v in env.items() if not k.startswith("RECONCILE_")}
    # serve passes once a minute; sync keeps its own 1 s interval between them
    command = [sys.executable, "-m", "reconciler", "-C", str(clone), "serve", "--interval", "60"]
    command += ["--sync-interval", "1", "--self-heal"]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(x.rstrip("\n") for x in iter(proc.stderr.readline, "")), daemon=True
    )  # type: ignore[union-attr]
    reader.start()

    def wait_for(text: str, after: int = 0) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = [line for line in lines[after:] if text in line]
            if found:
                return found[0]
            assert proc.poll() is None, lines
            time.sleep(0.1)
        raise AssertionError(f"no {text!r} in {lines}")

    try:
        wait_for("in sync; 0 change(s) pending")
        store = SqlStore(f"sqlite:///{clone / '.reconcile' / 'state.db'}", project="svc")
        try:
            obj = store.read_all().objects[DEPLOYMENT]
            body = {**obj.resource.body, "description": "changed by hand"}
            store.write(dataclasses.replace(obj.resource, body=body), expected_version=obj.version)
        finally:
            store.close()
        seen = len(lines)
        healed = wait_for("self-healed", after=seen)
        assert "1 applied; 1 change(s) pending, 1 drifted" in healed, healed
        assert stored(clone)[0] == "first"
        wait_for("in sync", after=lines.index(healed) + 1)  # and it stays repaired
        assert stored(clone)[0] == "first"

        good = origin.head()
        before = stored(clone)
        bad = origin.commit("broken", {"prefect.yaml": "name: svc\ndeployments: [{name: x}]\n"})
        broken = wait_for("error: invalid desired state", after=len(lines))
        assert f"sync: main at {bad[:12]}: error: invalid desired state: prefect.yaml:2:1: " in broken
        assert broken.endswith(f"; nothing applied, the store keeps {good[:12]}"), broken
        assert stored(clone) == before
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        reader.join(timeout=5)
    errors = [line for line in lines if " error: " in line]  # only the broken commit's, once a pass
    assert errors and all(line.split(" ", 1)[1] == broken.split(" ", 1)[1] for line in errors), lines


def test_sync_options_need_a_sync_interval(tmp_path: Path) -> None:
    _, clone = origin_and_clone(tmp_path)
    done = run_cli("-C", str(clone), "serve", "--once", "--self-heal")
    assert done.returncode != 0
    assert "error: --self-heal needs --sync-interval" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_local_branch_is_read_without_a_remote_and_deletes_wait_for_prune(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "proj")
    repo.commit("first", {"prefect.yaml": project_yaml("first"), "flows/hello.py": HELLO_FLOW})
    repo.git("branch", "release")
    sync_once(repo.root)
    no_deployment = project_yaml("gone").split("        deployments:")[0]
    repo.commit("drop the deployment", {"prefect.yaml": no_deployment})

    pinned = run_cli("-C", str(repo.root), "serve", "--once", "--sync-interval", "1", "--sync-ref", "release")
    assert "sync: release at " in pinned.stderr and "in sync" in pinned.stderr  # the ref asked, not HEAD

    kept = sync_once(repo.root)
    (line,) = sync_lines(kept.stderr)
    assert "sync: main at " in line and "0 change(s) pending, 0 drifted, 1 orphaned (not pruned)" in line
    assert stored(repo.root)[0] == "first"

    pruned = run_cli(
        "-C", str(repo.root), "serve", "--once", "--sync-interval", "1", "--self-heal", "--prune"
    )
    assert "self-healed: 1 applied; 1 change(s) pending" in sync_lines(pruned.stderr)[0]
    assert stored(repo.root)[0] is None


def test_a_fetch_that_fails_is_reported_without_the_remotes_password_and_the_rollback_guard_holds(
    tmp_path: Path,
) -> None:
    origin, clone = origin_and_clone(tmp_path)
    sync_once(clone)
    second = origin.commit("second", {"prefect.yaml": project_yaml("second")})
    sync_once(clone)

    back = run_cli(
        "-C", str(clone), "serve", "--once", "--sync-interval", "1", "--self-heal", "--sync-ref", "HEAD"
    )
    (line,) = sync_lines(back.stderr)  # the clone's HEAD is the first commit: behind the one applied
    assert "error: " in line and "nothing applied" in line and second[:12] in line, line
    assert stored(clone)[:2] == ("second", second)

    secret = "hunter2-do-not-print"
    GitRepo.existing(clone).git("remote", "set-url", "origin", f"http://deploy:{secret}@127.0.0.1:9/none.git")
    failed = sync_once(clone)
    (line,) = sync_lines(failed.stderr)
    assert "sync: main: error: cannot fetch from 'origin'" in line and line.endswith("nothing applied"), line
    assert secret not in failed.stderr + failed.stdout
    assert stored(clone)[:2] == ("second", second)
