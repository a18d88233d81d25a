"""Issue 9 item 6: no file outside the project is read, parsed or run on the file's say-so.

Absolute, ``../`` and symlinked-out entrypoints are refused by ``validate`` with ``prefect.yaml:LINE:COL``;
the outside file's contents (its function names) never appear in any message; inside a Git work tree
the boundary is the work tree; a stored entrypoint outside the project is refused before a run starts.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import desired as desired_state
from reconciler.desired import flows
from reconciler.desired.source import OutsideProject, confine_posix
from tests.helpers import make_project, run_cli

OUTSIDE = "def outside_secret_function_name():\n    pass\n"
FLOW = "def hello():\n    return 1\n"


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A project and, next to it, a directory it must never read."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil.py").write_text(OUTSIDE)
    project = make_project(tmp_path / "proj", "deployments: []\n", {"flows/hello.py": FLOW})
    return project, outside


def _validate(project: Path, entrypoint: str) -> subprocess.CompletedProcess[str]:
    (project / "prefect.yaml").write_text(
        f"deployments:\n  - name: ok\n    entrypoint: flows/hello.py:hello\n"
        f"  - name: bad\n    entrypoint: {entrypoint}\n"
    )
    return run_cli("-C", str(project), "validate")


@pytest.mark.parametrize(
    "entrypoint",
    ["../outside/evil.py:nope", "flows/../../outside/evil.py:nope", "{abs}/evil.py:nope"],
    ids=["dotdot", "dotdot-nested", "absolute"],
)
def test_outside_entrypoints_are_refused_at_their_line(layout: tuple[Path, Path], entrypoint: str) -> None:
    project, outside = layout
    result = _validate(project, entrypoint.format(abs=outside))
    assert result.returncode == 1
    assert result.stderr.startswith("prefect.yaml:5:17: entrypoint file "), result.stderr
    assert "outside_secret_function_name" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_a_symlink_out_of_the_project_is_refused(layout: tuple[Path, Path]) -> None:
    project, outside = layout
    (project / "flows" / "link.py").symlink_to(outside / "evil.py")
    result = _validate(project, "flows/link.py:nope")
    assert result.returncode == 1
    assert "prefect.yaml:5:17:" in result.stderr and "symbolic link" in result.stderr
    assert "outside_secret_function_name" not in result.stderr


def test_a_symlinked_directory_out_of_the_project_is_refused(layout: tuple[Path, Path]) -> None:
    project, outside = layout
    (project / "vendored").symlink_to(outside, target_is_directory=True)
    result = _validate(project, "vendored/evil.py:nope")
    assert result.returncode == 1 and "outside" in result.stderr
    assert "outside_secret_function_name" not in result.stderr


def test_a_module_entrypoint_through_a_symlinked_package_is_refused(layout: tuple[Path, Path]) -> None:
    project, outside = layout
    (outside / "__init__.py").write_text("")
    (project / "pkg").symlink_to(outside, target_is_directory=True)
    result = _validate(project, "pkg.evil:nope")
    assert result.returncode == 1 and "outside" in result.stderr
    assert "outside_secret_function_name" not in result.stderr


def test_inside_a_git_work_tree_the_work_tree_is_the_boundary(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "shared").mkdir(parents=True)
    (repo / "shared" / "common.py").write_text("def common():\n    pass\n")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    project = make_project(repo / "project", "deployments: []\n", {"flows/hello.py": FLOW})
    result = _validate(project, "../shared/common.py:common")
    assert result.returncode == 0, result.stderr  # a monorepo sibling: inside the work tree
    (tmp_path / "beyond.py").write_text(OUTSIDE)
    result = _validate(project, "../../beyond.py:nope")
    assert result.returncode == 1 and "outside the project's Git work tree" in result.stderr


def test_plan_never_parses_a_file_outside(layout: tuple[Path, Path]) -> None:
    project, outside = layout
    (outside / "broken.py").write_text("def (:\n")  # a parse would report this syntax error
    (project / "prefect.yaml").write_text(
        "deployments:\n  - name: x\n    entrypoint: ../outside/broken.py:f\n"
    )
    result = run_cli("-C", str(project), "plan")
    assert result.returncode == 1
    assert "cannot read flow" not in result.stderr and "outside" in result.stderr


def test_the_rule_holds_for_every_read_of_the_tree(layout: tuple[Path, Path]) -> None:
    project, outside = layout
    tree = desired_state.WorkingTree(project)
    for relpath in ("../outside/evil.py", str(outside / "evil.py")):
        for read in (tree.read_text, tree.is_file, tree.cache_key):
            with pytest.raises(OutsideProject):
                read(relpath)
    assert tree.read_text("flows/hello.py") == FLOW


@pytest.mark.parametrize("working_dir", [None, "../outside"])
def test_a_stored_entrypoint_outside_is_never_launched(
    layout: tuple[Path, Path], working_dir: str | None
) -> None:
    project, outside = layout
    entrypoint = "../outside/evil.py:outside_secret_function_name" if working_dir is None else "evil.py:f"
    with pytest.raises(flows.EntrypointError):
        flows.check_runnable(project, entrypoint, working_dir=working_dir, pull_steps=None, local=True)
    with pytest.raises(flows.EntrypointError):
        flows.check_runnable(project, f"{outside}/evil.py:f", working_dir=None, pull_steps=None, local=False)
    steps = [{"prefect.deployments.steps.set_working_directory": {"directory": str(outside)}}]
    with pytest.raises(flows.EntrypointError):
        flows.check_runnable(project, "evil.py:f", working_dir=None, pull_steps=steps, local=True)
    flows.check_runnable(project, "flows/hello.py:hello", working_dir=None, pull_steps=None, local=True)


def test_run_wait_refuses_an_outside_entrypoint_stored_by_someone_else(layout: tuple[Path, Path]) -> None:
    """The store says ``../outside/evil.py`` (written by another tool): the run crashes, nothing runs."""
    project, outside = layout
    marker = outside / "ran"
    (outside / "evil.py").write_text(f"def evil():\n    open({str(marker)!r}, 'w').write('x')\n")
    (project / "prefect.yaml").write_text(
        "work_pools:\n  - {name: local, type: process}\n"
        "deployments:\n  - name: d\n    entrypoint: flows/hello.py:hello\n    work_pool: {name: local}\n"
    )
    assert run_cli("-C", str(project), "apply", "--yes").returncode == 0
    db = project / ".reconcile" / "state.db"
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select rowid, body from objects where address like 'deployment.%'").fetchall()
        assert rows, "the deployment is stored"
        for rowid, body in rows:
            conn.execute(
                "update objects set body = ? where rowid = ?",
                (body.replace("flows/hello.py:hello", "../outside/evil.py:evil"), rowid),
            )
    result = run_cli("-C", str(project), "run", "hello/d", "--wait", "--timeout", "60")
    assert result.returncode != 0
    assert "outside" in (result.stderr + result.stdout)
    assert not marker.exists()
    assert sorted(os.listdir(outside)) == ["evil.py"]


def test_reading_a_git_ref_keeps_the_same_rule(tmp_path: Path) -> None:
    outside = tmp_path / "evil.py"
    outside.write_text(OUTSIDE)
    repo = make_project(
        tmp_path / "repo",
        "deployments:\n  - name: a\n    entrypoint: flows/link.py:f\n  - name: b\n    entrypoint: ../evil.py:f\n",
        {"flows/hello.py": FLOW},
    )
    (repo / "flows" / "link.py").symlink_to("../../evil.py")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    result = run_cli("-C", str(repo), "validate", "--ref", "HEAD")
    assert result.returncode == 1
    assert (
        "prefect.yaml:3:17: entrypoint file flows/link.py is a symbolic link that leads outside"
        in result.stderr
    )
    assert (
        "prefect.yaml:5:17: entrypoint file ../evil.py is outside the project's Git work tree"
        in result.stderr
    )
    assert "outside_secret_function_name" not in result.stderr


@pytest.mark.parametrize("where", ["pool", "deployment"])
def test_a_local_working_dir_outside_the_project_is_refused_at_validate(
    layout: tuple[Path, Path], where: str
) -> None:
    project, _outside = layout
    pool_vars = "{working_dir: ../outside}" if where == "pool" else "{}"
    dep_vars = "{working_dir: ../outside}" if where == "deployment" else "{}"
    (project / "prefect.yaml").write_text(
        f"work_pools:\n  - {{name: local, type: process, job_variables: {pool_vars}}}\n"
        "deployments:\n  - name: d\n    entrypoint: flows/hello.py:hello\n"
        f"    work_pool: {{name: local, job_variables: {dep_vars}}}\n"
    )
    result = run_cli("-C", str(project), "validate")
    assert result.returncode == 1
    assert "working_dir ../outside is outside the project directory" in result.stderr
    line = 2 if where == "pool" else 6
    assert result.stderr.startswith(f"prefect.yaml:{line}:"), result.stderr


_PARTS = st.sampled_from(["..", ".", "flows", "hello.py", "link", "out", "", "/"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_PARTS, min_size=1, max_size=6))
def test_every_path_resolves_inside_or_is_refused(
    tmp_path_factory: pytest.TempPathFactory, parts: list[str]
) -> None:
    """Whatever path a file names (absolute, climbing, through symlinks), the tree either gives a
    file inside the boundary or refuses it; the Git form agrees on paths without symlinks."""
    base = tmp_path_factory.getbasetemp() / "prop"
    project = base / "proj"
    if not project.exists():
        (project / "flows").mkdir(parents=True)
        (project / "flows" / "hello.py").write_text(FLOW)
        (base / "out").mkdir()
        (project / "link").symlink_to(base / "out", target_is_directory=True)
    relpath = "/".join(parts)
    tree = desired_state.WorkingTree(project)
    try:
        resolved = tree.path(relpath)
    except OutsideProject:
        resolved = None
    if resolved is not None:
        assert resolved.is_relative_to(project.resolve())
    if "link" not in parts:
        try:
            inside_git = confine_posix("", relpath)
        except OutsideProject:
            inside_git = None
        assert (inside_git is None) == (resolved is None), relpath
