"""A deployment's version is the flow's, as Prefect computes it: ``@flow(version=...)`` or the MD5 of
the flow's file (line endings included), unless the file sets ``version:``."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.desired import flow_version, flows
from reconciler.desired.source import WorkingTree

prefect_flows = pytest.importorskip("prefect.flows")

SOURCES = {
    "plain": "from prefect import flow\n\n\n@flow\ndef f(x: int = 1):\n    return x\n",
    "named": "from prefect import flow\n\n\n@flow(name='other', version='2.0')\ndef f():\n    pass\n",
    "crlf": "from prefect import flow\r\n\r\n\r\n@flow\r\ndef f():\r\n    pass\r\n",
    "module": "import prefect\n\n\n@prefect.flow(version='v7')\ndef f():\n    pass\n",
    "alias": "from prefect import flow as pf\n\n\n@pf(version='v8')\ndef f():\n    pass\n",
}


@pytest.mark.parametrize("case", sorted(SOURCES))
def test_version_is_prefects(tmp_path: Path, case: str) -> None:
    path = tmp_path / "flows" / f"{case}.py"
    path.parent.mkdir()
    path.write_bytes(SOURCES[case].encode())
    tree = WorkingTree(tmp_path)
    info = flows.inspect_entrypoint(tree, f"flows/{case}.py:f")
    theirs = prefect_flows.load_flow_from_entrypoint(f"{path}:f").version
    assert flow_version.of(tree, info) == theirs


def test_the_files_version_wins_and_an_edit_changes_the_hash(tmp_path: Path) -> None:
    from tests.helpers import make_project, run_cli

    project = """
name: v
work_pools: [{name: local, type: process}]
deployments:
  - {name: pinned, entrypoint: flows/hello.py:hello, version: "1.2", work_pool: {name: local}}
  - {name: hashed, entrypoint: flows/hello.py:hello, work_pool: {name: local}}
"""
    root = make_project(tmp_path / "p", project)
    assert run_cli("-C", str(root), "apply", "--yes").returncode == 0
    flow = root / "flows" / "hello.py"
    flow.write_text(flow.read_text() + "\n# edited\n")
    plan = run_cli("-C", str(root), "plan")
    assert "hello/hashed" in plan.stdout and "hello/pinned" not in plan.stdout, plan.stdout
    assert "version" in plan.stdout
