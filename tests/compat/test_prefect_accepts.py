"""Prefect accepts ⇒ we accept, checked against Prefect's own loader for every file of our corpus.

``tests/data/compat/`` holds prefect.yaml files written after the patterns of public projects
(``prefect init`` templates, git_clone / pip / docker / s3 steps, ``definitions:`` with anchors and
merge keys, legacy ``schedule:`` stanzas, ``schedules:`` lists, module-path entrypoints, triggers,
placeholders...), each with the flow files it names. For each one:

* Prefect 3.9.1's own loader accepts it: ``PrefectYamlModel`` (what ``prefect deploy`` validates the
  file with, ``prefect/cli/deploy/_config.py``) plus at least one deployment with a name and an
  entrypoint — the corpus is checked, not assumed;
* ``reconcile validate`` exits 0 (the env placeholders of ``12-env-placeholders`` are given values
  here: that ``validate`` needs no environment at all is the placeholder rule's own test);
* every deployment we see has the FLOW/NAME Prefect gives it: the flow name Prefect's own
  ``load_flow_from_entrypoint`` reads by importing the flow (in a child process, in the project
  directory), next to the one we read from the source without importing it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler import desired as desired_state
from reconciler.desired import flows
from tests.helpers import run_cli

CORPUS = Path(__file__).resolve().parents[1] / "data" / "compat"
CASES = sorted(p for p in CORPUS.iterdir() if p.is_dir())

# The env placeholders of the corpus, with CI-like values.
PLACEHOLDER_ENV = {
    "DEPLOY_ENV": "prod",
    "GIT_SHA": "4b825dc",
    "GIT_BRANCH": "main",
    "DATA_BUCKET": "s3://example-data",
    "ECR_REGISTRY": "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
    # the deployment name is shown in plans: the operator says its variable may be shown
    "RECONCILE_PUBLIC_ENV": "DEPLOY_ENV",
}


def _raw(case: Path) -> Any:
    return yaml.safe_load((case / "prefect.yaml").read_text(encoding="utf-8"))


def _prefect_deployables(case: Path) -> list[dict[str, Any]]:
    """What Prefect's loader keeps from the file: its model, then the entries it can deploy."""
    from prefect.cli.deploy._models import PrefectYamlModel

    model = PrefectYamlModel.model_validate(_raw(case))
    dumped = [d.model_dump(exclude_unset=True, mode="json") for d in model.deployments]
    return [d for d in dumped if d.get("name") and d.get("entrypoint")]


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_prefect_accepts_and_so_does_validate(case: Path, tmp_path: Path) -> None:
    assert _prefect_deployables(case), f"{case.name}: Prefect's loader does not accept this file"
    project = tmp_path / case.name
    shutil.copytree(case, project)
    result = run_cli("-C", str(project), "validate", env=PLACEHOLDER_ENV)
    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stdout


_PREFECT_NAMES = """
import json, sys
from prefect.flows import load_flow_from_entrypoint
print(json.dumps({ep: load_flow_from_entrypoint(ep).name for ep in sys.argv[1:]}))
"""


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_flow_names_are_the_ones_prefect_gives(case: Path) -> None:
    entrypoints = sorted({d["entrypoint"] for d in _prefect_deployables(case)})
    tree = desired_state.WorkingTree(case)
    ours = {ep: flows.inspect_entrypoint(tree, ep).name for ep in entrypoints}
    child = subprocess.run(
        [sys.executable, "-c", _PREFECT_NAMES, *entrypoints],
        cwd=case,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PREFECT_LOGGING_LEVEL": "ERROR", "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert child.returncode == 0, child.stderr
    assert ours == json.loads(child.stdout.strip().splitlines()[-1])
