"""A pool's own base_job_template: its variables are the ones job variables are checked against."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import make_project, run_cli

TEMPLATE_POOL = """
work_pools:
  - name: custom
    type: process
    base_job_template:
      job_configuration: {command: "{{ command }}", env: "{{ env }}", nice: "{{ nice_level }}"}
      variables:
        type: object
        properties:
          command: {type: [string, "null"]}
          env: {type: object}
          nice_level: {type: integer, default: 0}
    job_variables: {nice_level: 5}
deployments:
  - name: greet
    entrypoint: flows/hello.py:hello
    work_pool: {name: custom, job_variables: {nice_level: "7"}}
"""


def test_template_variables_are_accepted_and_coerced(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", TEMPLATE_POOL)
    assert run_cli("-C", str(project), "validate").returncode == 0
    assert run_cli("-C", str(project), "apply", "--yes").returncode == 0
    assert run_cli("-C", str(project), "plan", "--detailed-exitcode").returncode == 0  # "7" == 7


def test_a_variable_only_the_pool_type_knows_is_rejected(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", TEMPLATE_POOL.replace("nice_level: 5", "working_dir: /tmp"))
    result = run_cli("-C", str(project), "validate")
    assert result.returncode == 1
    assert "unknown variable 'working_dir'" in result.stderr


def test_undeclared_placeholders_are_refused_like_prefects_server(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", TEMPLATE_POOL.replace('"{{ nice_level }}"', '"{{ niceness }}"'))
    result = run_cli("-C", str(project), "validate")
    assert result.returncode == 1
    assert "placeholder {{ niceness }} is not declared in variables" in result.stderr
