"""Attacks through the YAML reader, end to end through the CLI (issue 9 items 1, 8, 10)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.helpers import make_project, run_cli
from tests.security.test_yaml_reader import _bomb

TWO_DEPLOYMENTS = """\
work_pools: [{name: local, type: process}]
deployments:
  - name: first
    entrypoint: flows/hello.py:hello
    work_pool: {name: local}
  # note
  - name: second
    entrypoint: flows/hello.py:hello
    work_pool: {name: local}
"""


def _applied(project: Path) -> set[str]:
    listed = run_cli("-C", str(project), "state", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return {o["address"] for o in json.loads(listed.stdout)["objects"]}


def test_a_nul_byte_cannot_hide_a_deployment_from_the_plan_and_prune_it(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", TWO_DEPLOYMENTS)
    assert run_cli("-C", str(project), "apply", "--yes").returncode == 0
    before = _applied(project)
    assert "deployment.hello/second" in before

    (project / "prefect.yaml").write_text(TWO_DEPLOYMENTS.replace("# note", "# note\x00"), encoding="utf-8")
    checked = run_cli("-C", str(project), "validate")
    assert checked.returncode == 1
    assert checked.stderr.startswith("prefect.yaml:6:9: invalid YAML: control character U+0000"), (
        checked.stderr
    )
    pruned = run_cli("-C", str(project), "apply", "--yes", "--prune")
    assert pruned.returncode == 1
    assert "prefect.yaml:6:9:" in pruned.stderr
    assert _applied(project) == before


@pytest.mark.parametrize("depth", [7, 11])
@pytest.mark.parametrize("command", ["validate", "plan"])
def test_an_alias_bomb_exits_1_at_once_with_its_location(tmp_path: Path, depth: int, command: str) -> None:
    project = make_project(tmp_path / "p", _bomb(depth))
    started = time.perf_counter()
    result = run_cli("-C", str(project), command, timeout=60)
    elapsed = time.perf_counter() - started
    assert result.returncode == 1
    assert result.stderr.startswith("prefect.yaml:"), result.stderr
    assert "excessive aliasing" in result.stderr
    assert "internal error" not in result.stderr
    assert elapsed < 10  # the interpreter's start-up included; the parse itself is unit-tested < 0.5 s


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("1: x\ndeployments: []\n", "prefect.yaml:1:1: the file: the key 1 is not a string"),
        (
            "deployments:\n  - name: a\n    entrypoint: flows/hello.py:hello\n    parameters: {2: x}\n",
            "prefect.yaml:4:18: deployments[0].parameters: the key 2 is not a string",
        ),
        (
            "deployments:\n  - name: a\n    entrypoint: flows/hello.py:hello\n    tags: [a]\n    on: 1\n",
            "prefect.yaml:5:5: deployments[0]: the key True is not a string",
        ),
    ],
)
def test_a_non_string_key_is_a_located_error_not_an_internal_one(
    tmp_path: Path, text: str, where: str
) -> None:
    project = make_project(tmp_path / "p", text)
    result = run_cli("-C", str(project), "validate")
    assert result.returncode == 1
    assert result.stderr.startswith(where), result.stderr
    assert "internal error" not in result.stderr


def test_a_hundred_thousand_brackets_do_not_crash_the_process(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", "deployments: " + "[" * 100_000 + "]" * 100_000 + "\n")
    result = run_cli("-C", str(project), "validate", timeout=60)
    assert result.returncode == 1  # was a segmentation fault (-11) in the recursive composer
    assert result.stderr.startswith("prefect.yaml:1:"), result.stderr
    assert "nesting deeper than 64 levels" in result.stderr
