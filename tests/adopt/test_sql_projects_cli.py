"""Two projects in one SQL store, a renamed project, a broken file: through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import make_project, run_cli

FILE = """
name: {name}
work_pools:
  - name: {pool}
    type: process
deployments:
  - name: greet
    entrypoint: flows/hello.py:hello
    work_pool:
      name: {pool}
"""


def project(root: Path, name: str, pool: str = "local") -> Path:
    return make_project(root, FILE.format(name=name, pool=pool))


def state(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shared.db'}"


def test_two_projects_in_one_store_cannot_manage_the_same_pool(tmp_path: Path) -> None:
    url = state(tmp_path)
    billing = project(tmp_path / "billing", "billing")
    assert run_cli("--state", url, "apply", "--yes", cwd=billing).returncode == 0
    other = project(tmp_path / "reports", "reports")
    planned = run_cli("--state", url, "plan", cwd=other)
    assert planned.returncode == 1, planned.stdout
    assert "work_pool.local" in planned.stderr and "managed by project 'billing'" in planned.stderr
    assert "Traceback" not in planned.stderr
    applied = run_cli("--state", url, "apply", "--yes", cwd=other)
    assert applied.returncode == 1 and "managed by project 'billing'" in applied.stderr
    listed = run_cli("--state", url, "--project", "reports", "state", "list", cwd=other)
    assert "work_pool.local" not in listed.stdout  # nothing was written for the second project


@pytest.mark.slow
def test_a_renamed_project_is_offered_a_move_and_converges_after_it(tmp_path: Path) -> None:
    url = state(tmp_path)
    root = project(tmp_path / "p", "old-name")
    assert run_cli("--state", url, "apply", "--yes", cwd=root).returncode == 0
    project(root, "new-name")  # the file's name: edited
    planned = run_cli("--state", url, "plan", cwd=root)
    assert planned.returncode == 1
    assert "reconcile state mv-project old-name new-name" in planned.stderr
    listed = run_cli("--state", url, "state", "list", cwd=root)
    assert listed.returncode == 1 and "'old-name' (2 objects)" in listed.stderr
    moved = run_cli("--state", url, "state", "mv-project", "old-name", "new-name", cwd=root)
    assert moved.returncode == 0, moved.stderr
    assert "2 objects" in moved.stderr
    again = run_cli("--state", url, "plan", "--json", cwd=root)
    assert again.returncode == 0, again.stderr
    assert '"create": 0' in again.stdout.replace("\n", " ") or '"create":0' in again.stdout
    history = run_cli("--state", url, "history", cwd=root)
    assert history.returncode == 0 and "#" in history.stdout  # the apply moved with the project


def test_state_commands_read_a_broken_file_name_and_never_show_lost_state(tmp_path: Path) -> None:
    url = state(tmp_path)
    root = project(tmp_path / "dir-name", "real-name")
    assert run_cli("--state", url, "apply", "--yes", cwd=root).returncode == 0
    good = (root / "prefect.yaml").read_text()
    (root / "prefect.yaml").write_text(good + "deployments: [unclosed\n  - : :\n")  # mid-edit
    listed = run_cli("--state", url, "state", "list", cwd=root)
    assert listed.returncode == 0, listed.stderr
    assert "'real-name'" in listed.stdout and "work_pool.local" in listed.stdout
    assert run_cli("--state", url, "history", cwd=root).stdout.startswith("#")
    assert run_cli("--state", url, "runs", cwd=root).returncode == 0
    (root / "prefect.yaml").write_text("")  # emptied: the name is gone, the state is not
    for command in (("state", "list"), ("history",), ("runs",)):
        shown = run_cli("--state", url, *command, cwd=root)
        assert shown.returncode == 1, (command, shown.stdout)
        assert "'real-name' (2 objects)" in shown.stderr and "--project" in shown.stderr
        assert "(empty)" not in shown.stdout and "No applies yet" not in shown.stdout
