"""`reconcile run` checks parameters and job variables against the deployment's schema before
anything is recorded or launched (SQL store here; the Prefect store in tests/prefect)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import make_project, run_cli

PROJECT = """
name: params
work_pools:
  - name: local
    type: process
deployments:
  - name: strict
    entrypoint: flows/hello.py:hello
    work_pool: {name: local}
  - name: loose
    entrypoint: flows/hello.py:hello
    enforce_parameter_schema: false
    work_pool: {name: local}
  - name: open
    entrypoint: flows/hello.py:anything
    work_pool: {name: local}
"""
FLOWS = {
    "flows/hello.py": '''
def hello(name: str = "world", times: int = 1) -> str:
    """Say hello."""
    return name * times


def anything(label: str = "x", **options) -> None:
    """Takes any keyword."""
'''
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_project(tmp_path_factory.mktemp("params") / "p", PROJECT, FLOWS)
    applied = run_cli("-C", str(root), "apply", "--yes")
    assert applied.returncode == 0, applied.stderr
    return root


def runs_of(project: Path) -> list[dict]:
    return json.loads(run_cli("-C", str(project), "runs", "--json").stdout)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--param", "bogus=1"], "unknown parameter 'bogus'"),
        (["--param", "nmae=x"], "(did you mean 'name'?)"),
        (["--param", "times=abc"], "parameter times: expected integer, got string"),
        (["--job-variable", "nope=1"], "unknown variable 'nope'"),
        (["--job-variable", "env=3"], "env: expected object"),
    ],
)
def test_bad_inputs_are_refused_before_a_run_exists(project: Path, args: list[str], expected: str) -> None:
    result = run_cli("-C", str(project), "run", "hello/strict", *args)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: run of hello/strict: "), result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr
    assert runs_of(project) == []


def test_schema_off_or_kwargs_flow_accepts_other_names(project: Path) -> None:
    loose = run_cli(
        "-C", str(project), "run", "hello/loose", "--param", "bogus=1", "--wait", "--timeout", "60"
    )
    assert "unknown parameter" not in loose.stderr
    assert any(r["deployment"] == "hello/loose" for r in runs_of(project))
    extra = run_cli(
        "-C", str(project), "run", "anything/open", "--param", "colour=red", "--wait", "--timeout", "60"
    )
    assert "unknown parameter" not in extra.stderr, extra.stderr
    assert any(r["deployment"] == "anything/open" for r in runs_of(project))


def test_validate_reports_each_parameter_at_its_line(tmp_path: Path) -> None:
    """A wrong type (Prefect's server refuses such a deployment) and a name the flow does not take
    (Prefect stores it, then refuses its runs) are warnings at the parameter's line: Prefect's loader
    accepts the file. A placeholder left unset under validate is not checked."""
    text = """
name: warn
work_pools:
  - name: local
    type: process
deployments:
  - name: d
    entrypoint: flows/hello.py:hello
    parameters:
      times: abc
      colour: red
      name: "{{ $WHO }}"
    work_pool: {name: local}
"""
    root = make_project(tmp_path / "p", text, FLOWS)
    result = run_cli("-C", str(root), "validate")
    assert result.returncode == 0, result.stderr  # Prefect's loader accepts the file: so do we
    output = result.stdout + result.stderr
    assert "prefect.yaml:9:" in output and "parameter times: expected integer, got string" in output, output
    assert "(the deployment and its runs are refused)" in output
    assert "prefect.yaml:10:" in output and "warning: deployment 'd': unknown parameter 'colour'" in output
    assert "(its runs are refused)" in output
    assert "parameter name" not in output
