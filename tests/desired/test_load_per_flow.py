"""What depends on a flow's file (its version, its parameter schema, the file's place in the project)
is worked out once per flow per load, not once per deployment: 10,000 deployments of 10 flows spent
most of their plan confining, stat-ing and copying the same 10 files. The results are unchanged."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.desired import flow_version, flows, parameters
from reconciler.desired.load import load
from reconciler.desired.source import WorkingTree

FLOW = '''
def etl_{i}(rows: int = 10, source: str = "s3://bucket"):
    """Move some rows."""
    return rows
'''


@dataclass
class CountingTree:
    """A working tree that counts the reads and look-ups the loader makes, by path."""

    inner: WorkingTree
    calls: Counter[str] = field(default_factory=Counter)

    @property
    def root(self) -> Path:
        return self.inner.root

    @property
    def git(self) -> None:
        return None

    def path(self, relpath: str) -> Path:
        self.calls[relpath] += 1
        return self.inner.path(relpath)

    def read_text(self, relpath: str) -> str:
        self.calls[relpath] += 1
        return self.inner.read_text(relpath)

    def is_file(self, relpath: str) -> bool:
        self.calls[relpath] += 1
        return self.inner.is_file(relpath)

    def cache_key(self, relpath: str) -> tuple[object, ...] | str:
        self.calls[relpath] += 1
        return self.inner.cache_key(relpath)


def _project(root: Path, deployments: int) -> None:
    (root / "flows").mkdir(parents=True)
    for i in range(2):
        (root / "flows" / f"etl_{i}.py").write_text(FLOW.format(i=i))
    lines = ["name: per-flow", "work_pools: [{name: pool, type: process}]", "deployments:"]
    for n in range(deployments):
        lines.append(
            f"  - {{name: d{n}, entrypoint: flows/etl_{n % 2}.py:etl_{n % 2}, work_pool: {{name: pool}}, "
            f"parameters: {{rows: {n}}}}}"
        )
    (root / "prefect.yaml").write_text("\n".join(lines) + "\n")


def test_flow_files_are_looked_at_a_fixed_number_of_times_whatever_the_deployments(tmp_path: Path) -> None:
    counts = {}
    for n in (4, 200):
        root = tmp_path / str(n)
        _project(root, n)
        tree = CountingTree(WorkingTree(root))
        load(tree, environ={}, fingerprint_key=b"k" * 32)
        counts[n] = {path: c for path, c in tree.calls.items() if path.startswith("flows/")}
    assert counts[200] == counts[4], counts  # 50 times the deployments, not one more look at a flow


def test_each_deployment_gets_what_its_flow_gives_it(tmp_path: Path) -> None:
    _project(tmp_path, 6)
    tree = WorkingTree(tmp_path)
    desired = load(tree, environ={}, fingerprint_key=b"k" * 32)
    bodies = [r.body for r in desired.resources.values() if r.address.kind.value == "deployment"]
    assert len(bodies) == 6
    for body in bodies:
        info = flows.inspect_entrypoint(tree, body["entrypoint"])
        assert body["version"] == flow_version.of(tree, info)
        assert body["parameter_openapi_schema"] == parameters.schema_of(tree, info)
        assert body["pull_steps"] == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(tmp_path.resolve())}}
        ]
