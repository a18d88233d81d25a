"""Every option that takes a count or a duration has a range: a negative one is a usage error (exit 1)
before anything is read, written or launched."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import make_project, run_cli

PROJECT = """\
work_pools:
  - name: local
    type: process
deployments:
  - name: greet
    entrypoint: flows/hello.py:hello
    work_pool: {name: local}
"""


@pytest.mark.parametrize(
    "args",
    [
        ("run", "hello/greet", "--wait", "--timeout", "-1"),
        ("run", "hello/greet", "--wait", "--timeout", "0"),
        ("runs", "--limit", "-5"),
        ("runs", "--reconcile", "--grace", "-1"),
        ("history", "--limit", "0"),
        ("apply", "--yes", "--lock-timeout", "-3"),
        ("apply", "--yes", "--parallelism", "0"),
        ("trigger", "push", "--before", "a", "--after", "b", "--lock-timeout", "-1"),
        ("watch", "--lock-timeout", "-1"),
    ],
)
def test_negative_counts_and_durations_are_usage_errors(tmp_path: Path, args: tuple[str, ...]) -> None:
    project = make_project(tmp_path / "p", PROJECT)
    done = run_cli("-C", str(project), *args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Invalid value" in done.stderr and "Traceback" not in done.stderr
    assert not (project / ".reconcile" / "runs").exists()  # nothing launched


def test_a_project_name_with_control_characters_is_a_usage_error(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", PROJECT)
    for name in ("a\nb", "x\x1b[2J", ""):
        done = run_cli("-C", str(project), "--project", name, "plan")
        assert done.returncode == 1 and "a project name is printable text" in done.stderr, done.stderr
        assert "\x1b" not in done.stderr


def test_a_plan_file_that_cannot_be_written_is_an_error_not_a_crash(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", PROJECT)
    done = run_cli("-C", str(project), "plan", "--out", str(tmp_path / "missing" / "dir" / "p.plan"))
    assert done.returncode == 1 and "cannot write the plan to" in done.stderr
    assert "internal error" not in done.stderr
