"""Cloud Run: Prefect's v1 job body, a template's own command and sidecars, ``~`` in a key file path,
and correctness that never rests on behaviour Cloud Run does not document.

The fake can take each undocumented behaviour away (``executions_show_override_env``,
``run_changes_etag``, ``run_answer_has_metadata``); with it gone a wrong assumption may cost an extra
API call, never a second execution or a crash.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import LaunchError
from reconciler.launch.cloud_run import body as body_mod
from reconciler.launch.cloud_run import v1
from reconciler.launch.cloud_run.gcp import ENDPOINT_ENV
from reconciler.launch.cloud_run.launcher import CloudRunLauncher
from reconciler.state import RunState
from tests.fakes.cloud_run import CloudRunFake, Outcome, service_account
from tests.launch.test_cloud_run import block, make_job

pytestmark = pytest.mark.cloud


@pytest.fixture
def fake() -> Iterator[CloudRunFake]:
    with CloudRunFake() as server:
        yield server


@pytest.fixture
def info(fake: CloudRunFake) -> dict[str, str]:
    return service_account(fake)


@pytest.fixture
def launcher(fake: CloudRunFake) -> Iterator[CloudRunLauncher]:
    instance = CloudRunLauncher(environ={ENDPOINT_ENV: fake.url})
    yield instance
    instance.close()


V1_BODY: dict[str, Any] = {
    "apiVersion": "run.googleapis.com/v1",
    "kind": "Job",
    "metadata": {
        "name": "etl",
        "annotations": {"run.googleapis.com/launch-stage": "BETA"},
        "labels": {"team": "data"},
    },
    "spec": {
        "template": {
            "metadata": {
                "annotations": {
                    "run.googleapis.com/vpc-access-connector": "projects/p/locations/l/connectors/c",
                    "run.googleapis.com/vpc-access-egress": "all-traffic",
                    "run.googleapis.com/execution-environment": "gen2",
                    "run.googleapis.com/cloudsql-instances": "p:l:db",
                }
            },
            "spec": {
                "taskCount": 1,
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "image": "europe-docker.pkg.dev/p/r/etl:1",
                                "command": "python -m etl",
                                "resources": {
                                    "limits": {"cpu": "1000m", "memory": "512Mi"},
                                    "requests": {"cpu": "1000m", "memory": "512Mi"},
                                },
                                "env": [
                                    {"name": "MODE", "value": "batch"},
                                    {
                                        "name": "DB",
                                        "valueFrom": {"secretKeyRef": {"name": "db-pass", "key": "3"}},
                                    },
                                ],
                            }
                        ],
                        "timeoutSeconds": "900",
                        "serviceAccountName": "flows@p.iam.gserviceaccount.com",
                        "maxRetries": 2,
                    }
                },
            },
        }
    },
}


def test_a_v1_body_becomes_the_same_v2_job() -> None:
    converted = v1.to_v2(V1_BODY)
    assert converted["launchStage"] == "BETA" and converted["labels"] == {"team": "data"}
    task = converted["template"]["template"]
    assert task["timeout"] == "900s" and task["maxRetries"] == 2
    assert task["serviceAccount"] == "flows@p.iam.gserviceaccount.com"
    assert task["vpcAccess"] == {"connector": "projects/p/locations/l/connectors/c", "egress": "ALL_TRAFFIC"}
    assert task["executionEnvironment"] == "EXECUTION_ENVIRONMENT_GEN2"
    assert task["volumes"] == [{"name": "cloudsql", "cloudSqlInstance": {"instances": ["p:l:db"]}}]
    (container,) = task["containers"]
    assert container["resources"] == {"limits": {"cpu": "1000m", "memory": "512Mi"}}  # v2 has no requests
    assert container["env"] == [
        {"name": "MODE", "value": "batch"},
        {"name": "DB", "valueSource": {"secretKeyRef": {"secret": "db-pass", "version": "3"}}},
    ]
    assert container["volumeMounts"] == [{"name": "cloudsql", "mountPath": "/cloudsql"}]
    assert "annotations" not in converted["template"]  # v2 refuses run.googleapis.com/* annotations
    assert v1.is_v1(V1_BODY) and not v1.is_v1(converted)


def _job_with_body(info: dict[str, str], job_body: dict[str, Any], **variables: Any) -> Any:
    job = make_job(block(info), variables=variables)
    return type(job)(**{**job.__dict__, "configuration": {**job.configuration, "job_body": job_body}})


def test_a_templates_own_command_is_honoured_and_a_string_is_split(info: dict[str, str]) -> None:
    body = body_mod.job_body(_job_with_body(info, v1.to_v2(V1_BODY)), prefect_contract=False)
    assert body["template"]["template"]["containers"][0]["command"] == ["python", "-m", "etl"]
    no_command = json.loads(json.dumps(V1_BODY))
    del no_command["spec"]["template"]["spec"]["template"]["spec"]["containers"][0]["command"]
    body = body_mod.job_body(_job_with_body(info, v1.to_v2(no_command)), prefect_contract=False)
    assert body["template"]["template"]["containers"][0]["command"][:2] == ["python", "-c"]  # our runtime


def test_sidecars_are_kept_and_the_first_container_runs_the_flow(info: dict[str, str]) -> None:
    job_body = {
        "template": {
            "template": {
                "containers": [
                    {"image": "europe-docker.pkg.dev/p/r/etl:1"},
                    {"image": "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2", "args": ["p:l:db"]},
                ]
            }
        }
    }
    plan = body_mod.plan(_job_with_body(info, job_body), project="demo-project")
    flow, sidecar = plan.body["template"]["template"]["containers"]
    assert flow["name"] == "flow" and flow["command"][:2] == ["python", "-c"]
    assert sidecar == {
        "image": "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2",
        "args": ["p:l:db"],
        "name": "sidecar-1",
    }
    assert plan.overrides["containerOverrides"][0]["name"] == "flow"


def test_a_job_body_without_containers_is_a_clear_error(info: dict[str, str]) -> None:
    with pytest.raises(LaunchError, match="no container"):
        body_mod.job_body(
            _job_with_body(info, {"template": {"template": {"containers": []}}}), prefect_contract=False
        )


def test_service_account_file_expands_the_home_directory(
    fake: CloudRunFake, info: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "sa.json").write_text(json.dumps(info), encoding="utf-8")
    fake.outcome = Outcome.hang()
    launcher = CloudRunLauncher(environ={ENDPOINT_ENV: fake.url})
    try:
        credentials = {"service_account_file": "~/keys/sa.json", "project": "demo-project"}
        assert launcher.submit(make_job(credentials))
    finally:
        launcher.close()


# -- undocumented behaviour, taken away ----------------------------------------------------------------


def test_the_execution_name_comes_from_the_operation_even_when_the_first_answer_lacks_it(
    fake: CloudRunFake, info: dict[str, str], launcher: CloudRunLauncher
) -> None:
    fake.outcome = Outcome.hang()
    fake.model.run_answer_has_metadata = False
    fake.model.executions_show_override_env = False  # and the env fallback could not find it
    execution = launcher.submit(make_job(block(info)))
    assert [e["name"] for e in fake.executions()] == [execution]
    assert fake.count("get_operation") == 1  # the one extra call
    assert fake.count("run_job") == 1


def test_an_ambiguous_failure_is_not_retried_when_executions_do_not_show_their_run(
    fake: CloudRunFake, info: dict[str, str], launcher: CloudRunLauncher
) -> None:
    fake.outcome = Outcome.hang()
    fake.model.executions_show_override_env = False
    fake.fail_after_effect("run_job", 1)  # the execution starts, the answer is a 503
    with pytest.raises(LaunchError, match="not retrying"):
        launcher.submit(make_job(block(info)))
    assert fake.count("run_job") == 1 and len(fake.executions()) == 1  # never a second execution


def test_cleanup_keeps_a_job_another_run_started_even_if_running_leaves_the_etag(
    fake: CloudRunFake, info: dict[str, str], launcher: CloudRunLauncher
) -> None:
    fake.model.run_changes_etag = False
    fake.outcome = Outcome.succeed(after=1)
    first = make_job(block(info), run_id="run-1")
    first_execution = launcher.submit(first)
    fake.outcome = Outcome.hang()
    second_execution = launcher.submit(make_job(block(info), run_id="run-2"))  # same deployment: same job

    assert launcher.poll(first, first_execution).state in (RunState.RUNNING, RunState.COMPLETED)
    while launcher.poll(first, first_execution).state is not RunState.COMPLETED:
        pass
    assert len(fake.jobs()) == 1  # run-2's execution keeps the job
    assert [e["name"] for e in fake.executions()] == [second_execution]


def test_env_over_cloud_runs_documented_limits_fails_before_any_call(
    fake: CloudRunFake, info: dict[str, str], launcher: CloudRunLauncher
) -> None:
    with pytest.raises(LaunchError, match="over Cloud Run's 32768"):
        launcher.submit(make_job(block(info), env={"BIG": "x" * 40000}))
    assert fake.count("create_job") == 0 and fake.count("run_job") == 0
