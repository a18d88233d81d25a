"""A saved plan applies only to the project and the store it was made against (issue: plan files).

Terraform refuses a plan of another state lineage; so do we. Each store gets a random lineage when it
is created; ``plan --out`` records it with the project, and ``apply PLANFILE`` compares both before
writing anything. Plan files name the store and every object: they are written 0600.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
from pathlib import Path

from tests.helpers import make_project, run_cli

PROJECT = """\
name: NAME
work_pools:
  - name: local
    type: process
deployments:
  - name: greet
    entrypoint: flows/hello.py:hello
    work_pool: {name: local}
"""


def _objects(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM objects").fetchone()[0]


def test_a_plan_made_in_one_project_is_refused_in_another(tmp_path: Path) -> None:
    a = make_project(tmp_path / "a", PROJECT.replace("NAME", "alpha"))
    b = make_project(tmp_path / "b", PROJECT.replace("NAME", "beta"))
    saved = tmp_path / "a.plan"
    assert run_cli("-C", str(a), "plan", "--out", str(saved)).returncode == 0
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600

    done = run_cli("-C", str(b), "apply", str(saved), "--yes")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "for project 'alpha', not 'beta'" in done.stderr and "Traceback" not in done.stderr
    assert _objects(b / ".reconcile" / "state.db") == 0


def test_a_plan_is_refused_by_another_store_of_the_same_project(tmp_path: Path) -> None:
    a = make_project(tmp_path / "a", PROJECT.replace("NAME", "alpha"))
    assert run_cli("-C", str(a), "apply", "--yes").returncode == 0  # the store exists: it has a lineage
    (a / "prefect.yaml").write_text(PROJECT.replace("NAME", "alpha").replace("name: greet", "name: hi"))
    saved = tmp_path / "a.plan"
    assert run_cli("-C", str(a), "plan", "--out", str(saved)).returncode == 0
    assert json.loads(saved.read_text())["state"]["lineage"]
    twin = tmp_path / "twin"
    shutil.copytree(a, twin, ignore=shutil.ignore_patterns(".reconcile"))
    assert run_cli("-C", str(twin), "apply", "--yes").returncode == 0  # its own store, its own lineage

    done = run_cli("-C", str(twin), "apply", str(saved), "--yes")
    assert done.returncode == 1 and "made against another store" in done.stderr, done.stdout + done.stderr
    # the store it was made for takes it
    applied = run_cli("-C", str(a), "apply", str(saved))
    assert applied.returncode == 0, applied.stdout + applied.stderr


def test_a_plan_file_without_a_lineage_is_refused_by_a_store_that_holds_something(tmp_path: Path) -> None:
    a = make_project(tmp_path / "a", PROJECT.replace("NAME", "alpha"))
    assert run_cli("-C", str(a), "apply", "--yes").returncode == 0
    (a / "prefect.yaml").write_text(PROJECT.replace("NAME", "alpha").replace("name: greet", "name: hi"))
    saved = tmp_path / "a.plan"
    assert run_cli("-C", str(a), "plan", "--out", str(saved)).returncode == 0
    doc = json.loads(saved.read_text())
    doc["state"].pop("lineage")
    saved.write_text(json.dumps(doc))
    done = run_cli("-C", str(a), "apply", str(saved), "--yes")
    assert done.returncode == 1 and "does not name the store" in done.stderr
    assert _objects(a / ".reconcile" / "state.db") == 2


def test_a_plan_made_before_the_store_existed_applies_to_it_once(tmp_path: Path) -> None:
    a = make_project(tmp_path / "a", PROJECT.replace("NAME", "alpha"))
    saved = tmp_path / "a.plan"
    assert run_cli("-C", str(a), "plan", "--out", str(saved)).returncode == 0
    assert not (a / ".reconcile" / "state.db").exists()  # planning never creates the store
    assert json.loads(saved.read_text())["state"]["lineage"] is None
    assert run_cli("-C", str(a), "apply", str(saved)).returncode == 0
    assert _objects(a / ".reconcile" / "state.db") == 2
    again = run_cli("-C", str(a), "apply", str(saved))  # now the store exists and holds objects
    assert again.returncode == 1 and "does not name the store" in again.stderr


def test_an_existing_plan_file_is_tightened_to_0600(tmp_path: Path) -> None:
    a = make_project(tmp_path / "a", PROJECT.replace("NAME", "alpha"))
    saved = tmp_path / "a.plan"
    saved.write_text("old")
    saved.chmod(0o644)
    assert run_cli("-C", str(a), "plan", "--out", str(saved)).returncode == 0
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
