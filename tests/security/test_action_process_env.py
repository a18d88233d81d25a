"""Flow code a push launches from the Action on a ``process`` pool sees only the environment its job
needs: never the GitHub token, the runner's tokens, the state URL or cloud keys of the step."""

from __future__ import annotations

import json

from reconciler.launch.process_env import base_environment
from tests.triggers import conftest as trigger_fixtures
from tests.triggers import test_github_action as action_fixtures
from tests.triggers.conftest import wait_runs
from tests.triggers.test_github_action import SECRETS, Runner, _yaml, push_payload

repo = trigger_fixtures.repo
fake_github = trigger_fixtures.fake_github
runner = action_fixtures.runner

SPY = (
    "import json, os\n\n\ndef etl(rows: int = 1):\n"
    "    print('ENV=' + json.dumps(dict(os.environ), sort_keys=True), flush=True)\n"
)
STEP_SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "aws-step-CANARY-1",
    "ACTIONS_RUNTIME_TOKEN": "runtime-CANARY-2",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "oidc-CANARY-3",
    "PREFECT_API_KEY": "pnu-CANARY-4",
    "DATABASE_PASSWORD": "db-CANARY-5",
}


def test_a_process_run_launched_by_the_action_gets_only_its_jobs_environment(runner: Runner) -> None:
    repo = runner.repo
    before = repo.head()
    repo.checkout("-b", "feature")
    repo.commit("spy", {"deploy/prefect.yaml": _yaml(rows=2), "deploy/flows/etl/etl.py": SPY})
    repo.checkout("main")
    repo.git("merge", "-q", "--no-ff", "-m", "Merge pull request #9", "feature")
    outputs, _, console = runner.run("push", push_payload(before=before, after=repo.head()), **STEP_SECRETS)
    assert "Runs launched: 1." in outputs["summary"], console
    wait_runs(repo.root / "deploy")
    logs = "".join(p.read_text() for p in (repo.root / "deploy" / ".reconcile" / "runs").glob("*/log.txt"))
    seen = json.loads(logs.split("ENV=", 1)[1].splitlines()[0])

    assert seen["API_TOKEN"] == SECRETS["API_TOKEN"]  # declared by the pool: the job needs it
    assert "PATH" in seen and seen["RECONCILE_RUN_ID"]  # a working process and the run contract
    step_only = {"GITHUB_TOKEN", "RECONCILE_STATE", "INPUT_STATE", "GITHUB_OUTPUT", "RUNNER_TEMP"}
    assert not (step_only | set(STEP_SECRETS) | {"ETL_AWS_SECRET", "ETL_AWS_KEY_ID"}) & set(seen)
    assert runner.fake.token not in logs and runner.state not in logs
    assert not [v for v in STEP_SECRETS.values() if v in logs]


def test_the_allow_list_and_when_it_applies() -> None:
    step = {
        "PATH": "/usr/bin",
        "HOME": "/home/runner",
        "LC_ALL": "C.UTF-8",
        "PYTHONPATH": "/src",
        "VIRTUAL_ENV": "/venv",
        "GITHUB_TOKEN": "ghs_x",
        "RECONCILE_STATE": "postgresql://u:p@h/db",
        "AWS_SECRET_ACCESS_KEY": "k",
        "INPUT_STATE": "s",
    }
    kept = {"PATH", "HOME", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV"}
    assert set(base_environment({**step, "GITHUB_ACTIONS": "true"})) == kept
    assert set(base_environment({**step, "RECONCILE_PROCESS_ENV": "isolated"})) == kept
    assert base_environment(step) == step  # a developer's machine: Prefect's process worker inherits
