"""The pure decisions of the watch loop: which paths matter, which globs match, how bursts coalesce."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import desired as desired_state
from reconciler.triggers.watch_events import (
    Coalescer,
    ProjectFilter,
    compile_globs,
    describe,
    entrypoint_files,
    spec_files,
    state_files,
)
from tests.helpers import make_project


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        (["flows/**"], "flows/a.py", True),
        (["flows/**"], "flows/etl/deep/b.py", True),
        (["flows/**"], "flowsx/a.py", False),
        (["flows/*.py"], "flows/a.py", True),
        (["flows/*.py"], "flows/etl/a.py", False),  # `*` stays inside one directory
        (["flows/**/*.py"], "flows/a.py", True),  # `**/` is zero or more directories
        (["flows/**/*.py"], "flows/x/y/a.py", True),
        (["flows/**/*.py"], "flows/x/y/a.txt", False),
        (["**.sql"], "db/migrations/001.sql", True),  # GitHub-style `**` inside a segment crosses dirs
        (["**/*.csv"], "top.csv", True),
        (["data/[ab].csv"], "data/b.csv", True),
        (["data/[ab].csv"], "data/c.csv", False),
        (["flows/etl"], "flows/etl", True),  # GitHub's syntax: a plain path is that path only
        (["flows/etl"], "flows/etl/run.py", False),
        (["flows/etl/**"], "flows/etl/sub/run.py", True),
        (["./flows/a.py"], "flows/a.py", True),
        (["flows/**", "!flows/**/*.md"], "flows/x/README.md", False),  # the last match wins
        (["flows/**", "!flows/**/*.md", "flows/keep.md"], "flows/keep.md", True),
        (["a.b (1).py"], "a.b (1).py", True),  # regex characters are literal
        (["a.b (1).py"], "axb (1).py", False),
        ([], "anything", False),
    ],
)
def test_compile_globs(patterns: list[str], path: str, expected: bool) -> None:
    assert compile_globs(patterns)(path) is expected


@pytest.mark.parametrize(
    ("path", "kept"),
    [
        ("prefect.yaml", "prefect.yaml"),
        ("flows/etl/a.py", "flows/etl/a.py"),
        (".reconcile/state.db", None),
        (".reconcile/runs/1/log.txt", None),
        (".git/index", None),
        ("flows/__pycache__/a.cpython-311.pyc", None),
        ("flows/.a.py.swp", None),
        ("flows/.a.py.swx", None),
        ("docs/logo.svg", "docs/logo.svg"),
        ("prefect.yaml~", None),
        ("flows/.#a.py", None),
        ("flows/#a.py#", None),
        ("4913", None),
        ("flows/4913", None),
        ("flows/a.py___jb_tmp___", None),
        ("node_modules/x/index.js", None),
        ("state/local.db", None),  # the SQLite state file given as `ignored`
        ("state/local.db-journal", None),
        ("../outside.txt", None),
        ("../shared/prefect.yaml", "../shared/prefect.yaml"),  # the -f file outside the project
    ],
)
def test_project_filter(tmp_path: Path, path: str, kept: str | None) -> None:
    root = tmp_path / "proj"
    project_filter = ProjectFilter(
        root, ignored=("state/local.db",), outside=frozenset({"../shared/prefect.yaml"})
    )
    assert project_filter.wanted(root / path) == kept


def test_filter_looks_only_below_the_root(tmp_path: Path) -> None:
    """A project that itself lives under a directory named like an ignored one is still watched."""
    root = tmp_path / ".git" / "work" / "proj"
    assert ProjectFilter(root).wanted(root / "prefect.yaml") == "prefect.yaml"


def test_entrypoint_files() -> None:
    assert entrypoint_files("flows/etl.py:etl") == ("flows/etl.py",)
    assert entrypoint_files("./flows/etl.py:etl") == ("flows/etl.py",)
    assert entrypoint_files("pkg.jobs.etl") == ("pkg/jobs.py", "pkg/jobs/__init__.py")
    assert entrypoint_files("etl") == ()


def test_spec_files_are_the_file_and_the_entrypoints(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        """
        work_pools: [{name: local, type: process}]
        deployments:
          - {name: a, entrypoint: flows/hello.py:hello, work_pool: {name: local}}
          - {name: b, entrypoint: flows/other.py:other, work_pool: {name: local}}
        """,
        {"flows/hello.py": "def hello():\n    pass\n", "flows/other.py": "def other():\n    pass\n"},
    )
    desired = desired_state.load(desired_state.WorkingTree(root), environ={}, fingerprint_key=b"k" * 32)
    assert spec_files(desired, "prefect.yaml") == {"prefect.yaml", "flows/hello.py", "flows/other.py"}
    assert spec_files(None, "prefect.yaml") == {"prefect.yaml"}


def test_coalescer_one_trigger_per_key_per_burst() -> None:
    c = Coalescer(quiet=0.4, max_delay=5.0)
    assert c.add("etl/a", "data/1.csv", 0.0) is True
    for i in range(1, 20):  # 20 saves, 50 ms apart
        assert c.add("etl/a", f"data/{i}.csv", i * 0.05) is False
    c.add("etl/b", "other/x", 0.6)
    assert c.due(0.95) == []  # a's last save was at 0.95: its burst is still going
    assert c.due(1.01) == [("etl/b", "other/x")]  # b has been quiet for 0.41 s
    assert c.due(1.30) == []
    assert c.due(1.36) == [("etl/a", "data/1.csv")]  # one trigger; the reason is the burst's first path
    assert c.due(5.0) == []
    assert len(c) == 0


def test_coalescer_fires_a_burst_that_never_ends() -> None:
    c = Coalescer(quiet=0.4, max_delay=2.0)
    t = 0.0
    fired = []
    while t < 5.0:
        c.add("etl/a", "log", t)
        fired += c.due(t)
        t += 0.1
    assert len(fired) == 2  # at 2.0 s and 4.0+ s: runs keep coming, but not one per save


def test_coalescer_clear_returns_what_was_waiting() -> None:
    c = Coalescer(quiet=0.4, max_delay=5.0)
    c.add("b", "y", 0.0)
    c.add("a", "x", 0.0)
    assert c.clear() == [("a", "x"), ("b", "y")]
    assert c.due(10.0) == []


def test_state_files_inside_the_project_are_ignored(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    assert state_files(f"sqlite:///{root}/.reconcile/state.db", root) == (".reconcile/state.db",)
    assert state_files(f"sqlite:///{root}/state/local.db?timeout=5", root) == ("state/local.db",)
    assert state_files(f"sqlite+pysqlite:///{root}/s.db", root) == ("s.db",)
    assert state_files(f"sqlite:///{root.parent}/elsewhere.db", root) == ()
    assert state_files("postgresql+psycopg://u@h/db", root) == ()
    assert state_files("memory://", root) == ()


def test_describe() -> None:
    assert describe(["prefect.yaml"]) == "prefect.yaml changed"
    assert describe([f"f{i}" for i in range(5)]) == "f0, f1, f2 (+2 more) changed"
