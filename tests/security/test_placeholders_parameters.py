"""Secret placeholders in deployment ``parameters`` work (issue 9 item 10).

The choice: they are resolved at launch from the launcher's environment (like secret job variables),
passed to the flow, and never rendered: plans show them as sensitive, the run record keeps the
template, and the runtime's own log line prints ``***``. Before, ``run`` crashed with
``TypeError: Object of type Secret is not JSON serializable`` and left the run PENDING.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import make_project, run_cli

SECRET = "s3cr3t-param-Q7vX"
ENV = {"WHO": SECRET, "STAGE": "stage-from-env"}
PROJECT = """\
work_pools: [{name: local, type: process, job_variables: {env: {STAGE: "{{ $STAGE }}"}}}]
deployments:
  - name: greet
    entrypoint: flows/hello.py:hello
    parameters: {name: "{{ $WHO }}", times: 1}
    work_pool: {name: local}
"""


def test_a_secret_parameter_reaches_the_flow_and_nothing_else(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", PROJECT)
    applied = run_cli("-C", str(project), "apply", "--yes", env=ENV)
    assert applied.returncode == 0, applied.stderr
    assert SECRET not in applied.stdout + applied.stderr

    run = run_cli("-C", str(project), "run", "hello/greet", "--wait", "--timeout", "60", env=ENV)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "internal error" not in run.stderr
    # the flow got the real values, of the parameter and of the pool's env variable (and printed them)
    assert f"hello {SECRET} stage-from-env" in run.stdout
    ours = [line for line in run.stdout.splitlines() if line.startswith("[reconcile] run ")]
    assert ours and all(SECRET not in line for line in ours)
    assert '"name": "***"' in ours[0]
    assert "COMPLETED (exit code 0)" in run.stdout

    listed = run_cli("-C", str(project), "runs", "--json", env=ENV)
    assert SECRET not in listed.stdout
    (record,) = json.loads(listed.stdout)
    assert record["state"] == "COMPLETED"
    assert record["parameters"]["name"]["template"] == "{{ $WHO }}"


def test_a_secret_parameter_missing_at_launch_is_a_clear_error(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", PROJECT)
    assert run_cli("-C", str(project), "apply", "--yes", env=ENV).returncode == 0
    run = run_cli("-C", str(project), "run", "hello/greet", "--wait", "--timeout", "60", env={"STAGE": "s"})
    assert run.returncode == 1
    assert "internal error" not in run.stderr and "Traceback" not in run.stderr
    assert "a parameter of hello/greet needs environment variable WHO at launch time" in run.stderr
    (record,) = json.loads(run_cli("-C", str(project), "runs", "--json").stdout)
    assert record["state"] == "CRASHED"  # not left PENDING


def test_a_param_given_on_the_command_line_replaces_the_secret(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", PROJECT)
    assert run_cli("-C", str(project), "apply", "--yes", env=ENV).returncode == 0
    run = run_cli(
        "-C",
        str(project),
        "run",
        "hello/greet",
        "--param",
        "name=plain",
        "--wait",
        "--timeout",
        "60",
        env={"STAGE": "s"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "hello plain" in run.stdout
