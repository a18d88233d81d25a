"""``{{ prefect.variables.NAME }}`` in parameters and job variables is resolved when a run is
launched, from the variables in the stored state (SQLite here), by Prefect's rule: a whole-string
placeholder keeps the value's JSON type, one inside text becomes ``str(value)``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.desired import variables
from reconciler.errors import LaunchError
from reconciler.launch import run_inputs
from tests.helpers import make_project, run_cli

FLOW = '''
import os


def greet(name: str = "world", times: int = 1, options: dict | None = None) -> None:
    """Print what the run was given."""
    for _ in range(times):
        print(f"hello {name} stage={os.environ.get('STAGE', '')} options={options}", flush=True)
'''

PROJECT = """
name: vars
variables:
  - name: greeting
    value: {greeting}
  - name: repeat
    value: 2
  - name: opts
    value: {{retries: 3, fast: true}}
work_pools:
  - name: local
    type: process
    job_variables:
      env: {{STAGE: "{{{{ prefect.variables.greeting }}}}-{{{{ prefect.variables.repeat }}}}"}}
deployments:
  - name: hi
    entrypoint: flows/greet.py:greet
    parameters:
      name: "{{{{ prefect.variables.greeting }}}}"
      times: "{{{{ prefect.variables.repeat }}}}"
      options: "{{{{ prefect.variables.opts }}}}"
    work_pool: {{name: local}}
"""


def _write(root: Path, greeting: str) -> None:
    (root / "prefect.yaml").write_text(PROJECT.format(greeting=greeting).lstrip(), encoding="utf-8")


def _run(root: Path) -> str:
    result = run_cli("-C", str(root), "run", "greet/hi", "--wait", "--timeout", "60")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_run_receives_the_variables_values_and_a_changed_variable_changes_the_next_run(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path / "p", "name: vars\n", {"flows/greet.py": FLOW})
    _write(root, "alpha")
    assert run_cli("-C", str(root), "apply", "--yes").returncode == 0

    first = _run(root)
    # whole-string placeholders keep their type (an int, a mapping); inside text: str(value)
    assert first.count("hello alpha stage=alpha-2 options={'fast': True, 'retries': 3}") == 2

    _write(root, "beta")
    plan = run_cli("-C", str(root), "plan", "--json")
    changed = [c["address"] for c in json.loads(plan.stdout)["changes"] if c["action"] != "no-op"]
    assert changed == ["variable.greeting"]  # the deployment itself does not change
    assert run_cli("-C", str(root), "apply", "--yes").returncode == 0

    second = _run(root)
    assert second.count("hello beta stage=beta-2") == 2
    assert "alpha" not in second


def test_an_undeclared_variable_missing_from_the_store_is_a_located_plan_error(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        """
        name: vars
        work_pools:
          - name: local
            type: process
        deployments:
          - name: hi
            entrypoint: flows/greet.py:greet
            parameters: {name: "{{ prefect.variables.nowhere }}"}
            work_pool: {name: local}
        """,
        {"flows/greet.py": FLOW},
    )
    assert run_cli("-C", str(root), "validate").returncode == 0  # the store may have it
    for command in (["plan"], ["apply", "--yes"]):
        result = run_cli("-C", str(root), *command)
        assert result.returncode == 1
        assert (
            result.stderr.strip()
            == "prefect.yaml:8:24: unknown variable 'nowhere': not declared in the file and not in the stored state"
        )
    state = root / ".reconcile" / "state.db"
    if state.exists():  # nothing was written
        with sqlite3.connect(state) as db:
            tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
            if "objects" in tables:
                assert db.execute("select count(*) from objects").fetchone() == (0,)


def test_a_variable_that_is_in_the_store_may_be_read_without_being_declared(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", "name: vars\n", {"flows/greet.py": FLOW})
    _write(root, "gamma")
    assert run_cli("-C", str(root), "apply", "--yes").returncode == 0
    text = (root / "prefect.yaml").read_text()
    # the variables stay in the store (no --prune), the file no longer declares them
    _, _, rest = text.partition("work_pools:")
    (root / "prefect.yaml").write_text("name: vars\nwork_pools:" + rest)
    plan = run_cli("-C", str(root), "plan")
    assert plan.returncode == 0, plan.stderr
    assert "hello gamma stage=gamma-2" in _run(root)


# -- the rule, unit ----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@given(json_values)
def test_a_whole_string_placeholder_is_the_value_itself(value: Any) -> None:
    assert variables.resolve("{{ prefect.variables.v }}", {"v": value}.__getitem__) == value
    assert variables.resolve(["{{prefect.variables.v}}"], {"v": value}.__getitem__) == [value]


@given(json_values)
def test_a_placeholder_inside_text_is_the_values_str(value: Any) -> None:
    resolved = variables.resolve({"k": "a {{ prefect.variables.v }} b"}, {"v": value}.__getitem__)
    assert resolved == {"k": f"a {value!s} b"}


def test_other_placeholders_and_plain_values_are_left_as_they_are() -> None:
    template = {"image": "{{ build-image.image }}", "n": 3, "block": "{{ prefect.blocks.t.n }}"}
    assert variables.resolve(template, {}.__getitem__) == template
    assert variables.names(
        ["{{ prefect.variables.a }} {{ prefect.variables.b }}", {"x": "{{ prefect.variables.a }}"}]
    ) == [
        "a",
        "b",
    ]


def test_a_variable_gone_from_the_store_refuses_the_launch_by_name() -> None:
    with pytest.raises(
        LaunchError, match="a parameter of f/d reads variable 'gone', which is not in the stored state"
    ):
        run_inputs.with_variables({"p": "{{ prefect.variables.gone }}"}, {}, what="a parameter of f/d")
