"""Bad input: every problem reported as FILE:LINE:COL, exit 1, no traceback, stored state untouched."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import textwrap
from pathlib import Path

import pytest

from tests.helpers import make_project, run_cli

GOOD = """
name: proj
work_pools:
  - name: local
    type: process
deployments:
  - name: greet
    entrypoint: flows/hello.py:hello
    work_pool: {name: local}
"""

DIAGNOSTIC = re.compile(r"^prefect\.yaml:(\d+):(\d+): (.+)$")

# (case id, file text, [(line, col, message fragment), ...])
CASES = [
    ("malformed yaml", "deployments:\n  - name: [unclosed\n", [(3, 1, "invalid YAML")]),
    (
        "wrong types",
        """
        work_pools:
          - name: local
            type: process
            concurrency_limit: many
            paused: "sometimes"
        deployments:
          - name: greet
            entrypoint: flows/hello.py:hello
            tags: 7
        """,
        [
            (4, 24, "concurrency_limit: expected integer or null, got string"),
            (5, 13, "paused: expected boolean"),
            (9, 11, "tags: expected array or string or null, got integer"),
        ],
    ),
    (
        "unknown keys in our sections",
        """
        blocks:
          - type: string
            name: greeting
            data: {value: hi}
            colour: red
        work_pools:
          - name: local
            type: process
            job_varaibles: {}
        """,
        [
            (5, 5, "unknown key 'colour'"),
            (9, 5, "unknown key 'job_varaibles' (did you mean 'job_variables'?)"),
        ],
    ),
    (
        "unknown pool",
        """
        work_pools:
          - name: local
            type: process
        deployments:
          - name: greet
            entrypoint: flows/hello.py:hello
            work_pool: {name: locl}
        """,
        [(7, 23, "unknown work pool 'locl' (did you mean 'local'?)")],
    ),
    (
        "duplicate names",
        """
        work_pools:
          - name: local
            type: process
          - name: local
            type: process
        deployments:
          - name: greet
            entrypoint: flows/hello.py:hello
          - name: greet
            entrypoint: flows/hello.py:hello
        """,
        [(4, 11, "duplicate work pool 'local'"), (9, 11, "duplicate deployment 'hello/greet'")],
    ),
    (
        "bad cron",
        """
        deployments:
          - name: greet
            entrypoint: flows/hello.py:hello
            schedules:
              - cron: "61 25 * * *"
        """,
        [(5, 15, "invalid cron expression '61 25 * * *'")],
    ),
    (
        "missing env var",
        """
        deployments:
          - name: greet
            entrypoint: flows/hello.py:hello
            parameters: {name: "{{ $TEST_UNSET_VAR_9F3B }}"}
        """,
        [(4, 24, "environment variable TEST_UNSET_VAR_9F3B is not set")],
    ),
    (
        "missing entrypoint file",
        """
        deployments:
          - name: greet
            entrypoint: flows/nope.py:hello
        """,
        [(3, 17, "entrypoint file flows/nope.py does not exist")],
    ),
    (
        "missing entrypoint function",
        """
        deployments:
          - name: greet
            entrypoint: flows/hello.py:nope
        """,
        [(3, 17, "function 'nope' not found in flows/hello.py")],
    ),
    (
        "unknown block type and pool type",
        """
        blocks:
          - type: vault-credentials
            name: x
            data: {}
        work_pools:
          - name: k8s
            type: kubernetes
        """,
        [(2, 11, "unknown block type 'vault-credentials'"), (7, 11, "type: must be one of")],
    ),
    (
        "pool variables that do not fit the type",
        """
        work_pools:
          - name: fargate
            type: ecs:push
            job_variables:
              cpu: 512
              memory: 512
              clustr: prod
        """,
        [(7, 7, "unknown variable 'clustr' for pool type ecs:push (did you mean 'cluster'?)")],
    ),
    (
        "schedule with two kinds",
        """
        deployments:
          - name: greet
            entrypoint: flows/hello.py:hello
            schedules:
              - {cron: "* * * * *", interval: 60}
        """,
        [(5, 9, "schedules[0]: does not match any allowed form")],
    ),
]


def _state_digest(project: Path) -> str:
    """Every row the store holds (objects, projects, history, runs), straight from the SQLite file."""
    db = project / ".reconcile" / "state.db"
    with sqlite3.connect(db) as conn:
        rows = [
            conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("objects", "projects", "history", "runs")
        ]
    return hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.mark.parametrize(("case", "text", "expected"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", ["validate", "plan", "apply"])
def test_bad_input_is_located_and_changes_nothing(
    tmp_path: Path, case: str, text: str, expected: list[tuple[int, int, str]], command: str
) -> None:
    project = make_project(tmp_path / "p", GOOD)
    assert run_cli("-C", str(project), "apply", "--yes").returncode == 0
    before = _state_digest(project)
    (project / "prefect.yaml").write_text(textwrap.dedent(text).lstrip())

    args = [command, "--yes"] if command == "apply" else [command]
    result = run_cli("-C", str(project), *args)

    if case == "missing env var" and command == "validate":  # validate needs no environment (issue 10)
        assert result.returncode == 0 and "warning: not checked: $TEST_UNSET_VAR_9F3B unset" in result.stderr
        assert _state_digest(project) == before
        return
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines and all(DIAGNOSTIC.match(line) for line in lines), result.stderr
    for line, col, fragment in expected:
        located = [text for text in lines if text.startswith(f"prefect.yaml:{line}:{col}: ")]
        assert any(fragment in text for text in located), f"{line}:{col} {fragment!r}:\n{result.stderr}"
    assert _state_digest(project) == before


def test_all_errors_are_reported_at_once(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        """
        deployments:
          - name: a
            entrypoint: flows/nope.py:x
          - name: b
            entrypoint: flows/hello.py:hello
            schedules: [{cron: "nope"}]
          - name: c
            entrypoint: flows/hello.py:hello
            parameters: {x: "{{ $TEST_UNSET_VAR_9F3B }}"}
        """,
    )
    result = run_cli("-C", str(project), "plan")  # plan: an unset variable is an error there too
    assert result.returncode == 1
    errors = [line for line in result.stderr.strip().splitlines() if ": warning: " not in line]
    assert len(errors) == 3, result.stderr


def test_secret_literal_is_refused_without_echoing_it(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        """
        blocks:
          - type: aws-credentials
            name: prod
            data:
              aws_access_key_id: AKIAEXAMPLE
              aws_secret_access_key: wJalrXUtnFEMI-literal-canary
        """,
    )
    result = run_cli("-C", str(project), "validate")
    assert result.returncode == 1
    assert "prefect.yaml:6:30: " in result.stderr
    assert "aws_secret_access_key is secret" in result.stderr
    assert "literal-canary" not in result.stderr + result.stdout


def test_mistyped_secret_is_not_echoed(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        """
        work_pools:
          - name: p
            type: process
            job_variables:
              env: {TOKEN_X: ["canary-list-value-123"]}
        """,
    )
    result = run_cli("-C", str(project), "validate")
    assert result.returncode == 1
    assert "canary-list-value-123" not in result.stderr


def test_plain_prefect_file_without_our_sections_validates(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        """
        name: plain
        prefect-version: 3.9.1
        build:
          - prefect_docker.deployments.steps.build_docker_image:
              id: build-image
              requires: prefect-docker>=0.6
              image_name: ghcr.io/acme/etl
              tag: latest
        push: null
        pull:
          - prefect.deployments.steps.set_working_directory:
              directory: /opt/prefect/flows
        definitions:
          schedules:
            daily: &daily {cron: "0 6 * * *", timezone: UTC}
        deployments:
          - name: etl
            version: "1.2"
            tags: [etl]
            entrypoint: flows/hello.py:hello
            parameters: {name: etl}
            schedules: [*daily]
            work_pool:
              name: ecs-prod
              work_queue_name: default
              job_variables: {image: "{{ build-image.image }}"}
        """,
    )
    result = run_cli("-C", str(project), "validate")
    assert result.returncode == 0, result.stderr
    plan = run_cli("-C", str(project), "plan")
    # the pool is managed elsewhere: a plan against an empty store says so, at the reference
    assert plan.returncode == 1
    assert "unknown work pool 'ecs-prod'" in plan.stderr and plan.stderr.startswith("prefect.yaml:24:")
