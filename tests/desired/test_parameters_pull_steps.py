"""Pull steps as `prefect deploy` computes them, and the plan's warning for a CI runner's checkout."""

from __future__ import annotations

import asyncio
import io
import shutil
from pathlib import Path
from typing import Any

import pytest

from reconciler.desired import pull_steps
from tests.helpers import make_project, run_cli

actions = pytest.importorskip("prefect.cli.deploy._actions")

CLONE = [{"prefect.deployments.steps.git_clone": {"repository": "https://example.com/r.git"}}]
OTHER = [{"prefect.deployments.steps.set_working_directory": {"directory": "/srv/code"}}]
AUTO_BUILD = [
    {"prefect_docker.deployments.steps.build_docker_image": {"image_name": "x", "dockerfile": "auto"}}
]


def prefects_default(project: Path, build: Any, job_variables: dict[str, Any], monkeypatch) -> list[Any]:
    """Prefect's own default pull action, computed in ``project`` as `prefect deploy` runs there."""
    from rich.console import Console

    monkeypatch.chdir(project)
    config = {"entrypoint": "flows/f.py:f", "build": build, "work_pool": {"job_variables": job_variables}}
    return asyncio.run(
        actions._generate_default_pull_action(
            Console(file=io.StringIO()),
            deploy_config=config,
            actions={"build": None, "push": None, "pull": None},
            is_interactive=lambda: False,
        )
    )


@pytest.mark.parametrize(
    ("build", "job_variables"),
    [(None, {}), (AUTO_BUILD, {}), (None, {"image": "repo/flows:1"}), (AUTO_BUILD, {"image": "x"})],
)
def test_default_is_prefects(tmp_path: Path, monkeypatch, build: Any, job_variables: dict[str, Any]) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    ours = pull_steps.effective(
        own=None,
        has_own=False,
        top=None,
        build=build,
        job_variables=job_variables,
        project_dir=project,
        container=False,
    )
    assert ours == prefects_default(project, build, job_variables, monkeypatch)


@pytest.mark.parametrize(
    ("own", "has_own", "top", "expected"),
    [
        (CLONE, True, OTHER, CLONE),  # the deployment's own steps win
        (None, True, OTHER, OTHER),  # `pull: null` on the deployment falls back to the file's
        ([], True, OTHER, []),  # an explicit empty list means none
        (None, False, [], []),  # ... also at the top when the deployment says nothing
        (None, False, CLONE, CLONE),
        ({"prefect.deployments.steps.git_clone": {"repository": "r"}}, True, None, None),  # a lone step
    ],
)
def test_the_files_steps_win(own: Any, has_own: bool, top: Any, expected: Any) -> None:
    found = pull_steps.effective(
        own=own,
        has_own=has_own,
        top=top,
        build=None,
        job_variables={},
        project_dir=Path("/p"),
        container=True,
    )
    if isinstance(own, dict):
        expected = [own]
    assert found == expected


def test_container_pool_without_steps_gets_none() -> None:
    found = pull_steps.effective(
        own=None,
        has_own=False,
        top=None,
        build=None,
        job_variables={},
        project_dir=Path("/p"),
        container=True,
    )
    assert found is None


PROJECT = """
name: ci
work_pools:
  - name: local
    type: process
deployments:
  - name: d
    entrypoint: flows/hello.py:hello
    work_pool: {name: local}
"""


@pytest.mark.parametrize(
    ("extra", "env_of", "warned"),
    [
        ("", lambda root: {"GITHUB_WORKSPACE": str(root.parent)}, True),
        ("", lambda root: {"RUNNER_TEMP": str(root)}, True),
        ("", lambda root: {}, False),
        (
            "pull:\n  - prefect.deployments.steps.git_clone: {repository: 'https://x/r.git'}\n",
            lambda root: {"GITHUB_WORKSPACE": str(root.parent)},
            False,
        ),
    ],
)
def test_plan_warns_when_workers_would_look_in_a_ci_checkout(
    tmp_path: Path, extra: str, env_of, warned: bool
) -> None:
    root = make_project(tmp_path / "checkout" / "repo", PROJECT + extra)
    result = run_cli("-C", str(root), "plan", env=env_of(root))
    assert result.returncode in (0, 2), result.stderr
    output = result.stdout + result.stderr
    assert ("a CI runner's checkout" in output) is warned, output
    if warned:
        assert "git_clone" in output and "prefect.yaml:" in output


def test_a_run_from_another_checkout_executes_that_checkout(tmp_path: Path) -> None:
    """Applied from one checkout, run from another with a shared store: the default pull step (the
    first checkout, stored for Prefect's workers) does not send our local run there."""
    state = f"sqlite:///{tmp_path / 'shared.db'}"
    first = make_project(tmp_path / "alice" / "repo", PROJECT)
    applied = run_cli("--state", state, "-C", str(first), "apply", "--yes")
    assert applied.returncode == 0, applied.stderr
    second = tmp_path / "bob" / "repo"
    shutil.copytree(first, second)
    shutil.rmtree(first)  # the directory apply ran in is gone
    result = run_cli("--state", state, "-C", str(second), "run", "hello/d", "--wait", "--timeout", "60")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "COMPLETED" in result.stdout


def test_local_runs_keep_steps_inside_the_checkout(tmp_path: Path) -> None:
    inside = [{pull_steps.SET_WORKING_DIRECTORY: {"directory": str(tmp_path / "sub")}}]
    outside = [{pull_steps.SET_WORKING_DIRECTORY: {"directory": "/elsewhere/repo"}}]
    assert pull_steps.for_local_run(inside, tmp_path, boundary=tmp_path) == inside
    assert pull_steps.for_local_run(outside, tmp_path, boundary=tmp_path) is None
    assert pull_steps.for_local_run(CLONE, tmp_path, boundary=tmp_path) == CLONE
