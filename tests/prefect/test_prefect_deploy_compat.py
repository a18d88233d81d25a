"""``prefect deploy`` still works on our files: Prefect's own loader reads every example.

Our ``blocks:`` and ``work_pools:`` sections and the ``run_on:`` key are extensions Prefect ignores;
everything else must validate with the models ``prefect deploy`` uses (``prefect.cli.deploy``), and
every schedule must convert with its schedule converter. No server is needed: nothing is deployed.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from tests.prefect.conftest import examples

prefect_models = pytest.importorskip("prefect.cli.deploy._models")
prefect_config = pytest.importorskip("prefect.cli.deploy._config")
prefect_schedules = pytest.importorskip("prefect.cli.deploy._schedules")


@pytest.mark.parametrize("example", examples(), ids=lambda p: p.name)
def test_prefect_deploy_loads_every_example(example: Path) -> None:
    from rich.console import Console

    path = example / "prefect.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    prefect_models.PrefectYamlModel.model_validate(raw)  # raises on anything Prefect would refuse

    output = io.StringIO()
    deployments, actions = prefect_config._load_deploy_configs_and_actions(
        path, console=Console(file=output, width=200)
    )
    assert "Skipping" not in output.getvalue(), output.getvalue()
    assert [d["name"] for d in deployments] == [d["name"] for d in raw.get("deployments") or []]
    for deployment in deployments:
        prefect_models.DeploymentConfig.model_validate(deployment)
        assert "run_on" not in prefect_models.DeploymentConfig.model_fields  # ours, and ignored
        for schedule in deployment.get("schedules") or []:
            converted = prefect_schedules._schedule_config_to_deployment_schedule(schedule)
            assert converted["schedule"] is not None
    assert set(actions) == {"build", "push", "pull"}
