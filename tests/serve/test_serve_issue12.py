"""Issue 12 defects 1, 11 and 13, as a user meets them through the CLI (plus the rules underneath)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.errors import LaunchError
from reconciler.launch import interpreter
from reconciler.launch.process import failure_line
from reconciler.state.memory import MemoryStore
from tests.helpers import make_project, run_cli
from tests.serve.support import Harness, apply_file, backdate_file, project, yaml

HELLO = {
    "flows/hello.py": '''
        def hello(name: str = "world") -> None:
            """Say hello."""
            print(f"hello {name}", flush=True)
        ''',
}


def _runs(root: Path) -> list[dict[str, object]]:
    listed = run_cli("-C", str(root), "runs", "--json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def _project(root: Path, *, pool: str = "", job_variables: str = "", schedules: str = "") -> Path:
    return make_project(
        root,
        f"""
        name: svc
        work_pools:
          - name: local
            type: process{pool}
        deployments:
          - name: hi
            entrypoint: flows/hello.py:hello{schedules}
            work_pool:
              name: local{job_variables}
        """,
        HELLO,
    )


# -- defect 1: no back-dated runs for a deployment that did not exist -------------------------------


def test_serve_once_right_after_apply_launches_no_slot_from_before_the_apply(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", schedules="\n            schedules: [{interval: 10}]")
    applied = datetime.now(UTC)
    assert run_cli("-C", str(root), "apply", "--yes").returncode == 0
    served = run_cli("-C", str(root), "serve", "--once")
    assert served.returncode == 0, served.stderr
    listed = _runs(root)
    # the old window reached 300 s back: 30 runs, for slots before the deployment existed
    assert len(listed) <= 1, served.stderr
    for run in listed:
        assert datetime.fromisoformat(str(run["scheduled_for"])) > applied - timedelta(seconds=1)


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
        work_pool: {name: local}
    """
)


def test_the_window_starts_when_the_deployment_or_its_schedule_was_written(tmp_path: Path) -> None:
    root = project(tmp_path / "p", MINUTELY)
    h = Harness(MemoryStore(project="svc"), root)
    apply_file(h.store, root, written_at=h.clock.at - timedelta(seconds=50))
    assert len(h.loop.run_pass().launched) == 1  # written 09:59:10: only 10:00, not 09:56..09:59
    h.clock.advance(minutes=3)
    assert len(h.loop.run_pass().launched) == 3
    # a new schedule is written at 10:03:30; a restarted serve at 10:05:30 with a 5-minute lookback
    # launches 10:04 and 10:05 (its slots since), nothing of the old rule's 10:00..10:03 window again
    (root / "prefect.yaml").write_text(
        MINUTELY.replace("slug: minutely", "slug: every-minute"), encoding="utf-8"
    )
    apply_file(h.store, root, written_at=h.clock.at + timedelta(seconds=30))
    h.clock.advance(minutes=2, seconds=30)
    launched = h.restart().run_pass().launched
    assert sorted(str(r.scheduled_for.time()) for r in launched if r.scheduled_for) == [
        "10:04:00",
        "10:05:00",
    ]


# -- defect 11: a paused pool's run waits, and the user is told ------------------------------------


def test_run_on_a_paused_pool_is_recorded_scheduled_and_says_it_waits(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", pool="\n            paused: true")
    assert run_cli("-C", str(root), "apply", "--yes").returncode == 0
    ran = run_cli("-C", str(root), "run", "hello/hi")
    assert ran.returncode == 0, ran.stderr
    assert "'local' is paused" in ran.stderr and "resumed" in ran.stderr
    [run] = _runs(root)
    assert run["state"] == "SCHEDULED"
    assert not (root / ".reconcile" / "runs" / str(run["id"]) / "pid").exists()  # nothing started
    waited = run_cli("-C", str(root), "run", "hello/hi", "--wait")
    assert waited.returncode == 1 and "error: not waiting" in waited.stderr


# -- defect 13: what a launch needs is checked first; a failure says why --------------------------


def test_a_process_job_whose_module_is_not_installed_is_refused_with_what_to_install(tmp_path: Path) -> None:
    command = f"{sys.executable} -m no_such_module_xyz"
    root = _project(tmp_path / "p", job_variables=f"\n              job_variables: {{command: {command!r}}}")
    assert run_cli("-C", str(root), "apply", "--yes").returncode == 0
    ran = run_cli("-C", str(root), "run", "hello/hi")
    assert ran.returncode == 1
    assert "no_such_module_xyz is not installed" in ran.stderr and "pip install" in ran.stderr, ran.stderr
    [run] = _runs(root)
    assert not (root / ".reconcile" / "runs" / str(run["id"]) / "pid").exists()  # refused, not started


def test_serve_holds_runs_whose_launch_cannot_work_and_says_so_once(tmp_path: Path) -> None:
    command = f"{sys.executable} -m no_such_module_xyz"
    root = _project(
        tmp_path / "p",
        schedules="\n            schedules: [{interval: 10}]",
        job_variables=f"\n              job_variables: {{command: {command!r}}}",
    )
    assert run_cli("-C", str(root), "apply", "--yes").returncode == 0
    backdate_file(root / ".reconcile" / "state.db", "svc", datetime.now(UTC) - timedelta(hours=1))
    served = run_cli("-C", str(root), "serve", "--once", "--lookback", "60")
    assert served.returncode == 0, served.stderr
    assert " launched run " not in served.stderr and " crashed run " not in served.stderr
    assert served.stderr.count("no_such_module_xyz is not installed") == 1, served.stderr
    listed = _runs(root)
    assert len(listed) >= 5 and {r["state"] for r in listed} == {"SCHEDULED"}  # they wait for the fix


def test_a_failed_command_reports_the_exception_from_its_log(tmp_path: Path) -> None:
    command = f"{sys.executable} -c 'import no_such_module_xyz'"
    root = _project(tmp_path / "p", job_variables=f"\n              job_variables: {{command: {command!r}}}")
    assert run_cli("-C", str(root), "apply", "--yes").returncode == 0
    ran = run_cli("-C", str(root), "run", "hello/hi", "--wait", "--timeout", "60")
    assert ran.returncode == 1
    assert "No module named 'no_such_module_xyz'" in ran.stderr, ran.stderr
    [run] = _runs(root)
    assert "ModuleNotFoundError: No module named 'no_such_module_xyz'" in str(run["message"])


def test_prefect_missing_for_another_interpreter_is_named_with_its_pip(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    interpreter.forget()
    with pytest.raises(LaunchError) as caught:
        interpreter.check_command([python, "-m", "prefect", "flow-run", "execute"], cwd=str(tmp_path))
    assert "prefect is not installed" in str(caught.value)
    assert f"{python} -m pip install prefect" in str(caught.value)
    interpreter.check_command(
        [sys.executable, "-m", "prefect", "version"], cwd=str(tmp_path)
    )  # installed here


def test_failure_line_prefers_the_last_traceback_then_the_first_line(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    log.write_text(
        'starting\nTraceback (most recent call last):\n  File "x", line 1, in <module>\n'
        "    import prefect\nModuleNotFoundError: No module named 'prefect'\n",
        encoding="utf-8",
    )
    assert failure_line(log) == "ModuleNotFoundError: No module named 'prefect'"
    log.write_text("\n\nerror: no such pool\nmore\n", encoding="utf-8")
    assert failure_line(log) == "error: no such pool"
    log.write_text("", encoding="utf-8")
    assert failure_line(log) is None
    assert failure_line(tmp_path / "missing.txt") is None
