"""The Cloud Run launcher, driven through the real ``google-cloud-run`` REST clients and google-auth
against the in-repo Cloud Run v2 fake (tests/fakes/cloud_run.py) on loopback."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import pooltypes
from reconciler.errors import LaunchAuthError, LaunchError
from reconciler.launch import bootstrap
from reconciler.launch.base import Job
from reconciler.launch.cloud_run import body as cloud_run_body
from reconciler.launch.cloud_run.gcp import ENDPOINT_ENV
from reconciler.launch.cloud_run.launcher import CloudRunLauncher
from reconciler.state import RunState
from tests.fakes.cloud_run import CloudRunFake, Outcome, iter_env, service_account

pytestmark = pytest.mark.cloud

JOB_ID = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
EXECUTION = re.compile(r"^projects/demo-project/locations/[a-z0-9-]+/jobs/[a-z0-9-]+/executions/[a-z0-9-]+$")


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


def make_job(
    credentials: Mapping[str, Any] | None,
    *,
    run_id: str = "run-1",
    deployment: str = "hello/greet",
    variables: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Job:
    """A Job as ``jobs.build_job`` makes it: the pool type's render, the block inlined, env resolved."""
    values = {"image": "europe-docker.pkg.dev/demo-project/flows/etl:1.0", **(variables or {})}
    configuration = pooltypes.get("cloud-run-v2:push").render(
        pool_variables=values, deployment_variables={}, run_variables={}
    )
    if credentials is not None:
        configuration["credentials"] = dict(credentials)
    contract = {
        "RECONCILE_RUN_ID": run_id,
        "RECONCILE_DEPLOYMENT": deployment,
        "RECONCILE_FLOW_NAME": deployment.split("/")[0],
        "RECONCILE_ENTRYPOINT": "flows/hello.py:hello",
        "RECONCILE_PARAMETERS": "{}",
    }
    return Job(
        run_id=run_id,
        deployment=deployment,
        flow_name=deployment.split("/")[0],
        entrypoint="flows/hello.py:hello",
        parameters={},
        configuration=configuration,
        pool="cloud-run",
        pool_type="cloud-run-v2:push",
        project_dir="/nonexistent",
        env={**contract, **(env or {})},
        command=bootstrap.inline_command(),
    )


def block(info: Mapping[str, str], **extra: Any) -> dict[str, Any]:
    """The gcp-credentials block's data as launch sees it: the key as the JSON string the env held."""
    return {"service_account_info": json.dumps(info), "project": "demo-project", **extra}


def created_body(fake: CloudRunFake) -> dict[str, Any]:
    (call,) = fake.calls("create_job", status=200)
    return call.body


# -- the run's life ------------------------------------------------------------------------------


def test_success_creates_one_job_runs_it_and_cleans_up(
    fake: CloudRunFake, info: dict, launcher: CloudRunLauncher
):
    job = make_job(block(info), env={"STAGE": "prod"})
    execution = launcher.submit(job)

    assert EXECUTION.match(execution)
    job_id = execution.split("/")[5]
    assert JOB_ID.match(job_id) and job_id.startswith("cloud-run-hello-greet-")
    (created,) = fake.jobs()
    assert created["labels"] == {"reconcile-pool": "cloud-run", "reconcile-deployment": "hello-greet"}
    (run_call,) = fake.calls("run_job")
    env = dict(iter_env(fake.execution(execution)))
    assert env["RECONCILE_RUN_ID"] == "run-1" and env["STAGE"] == "prod"
    assert run_call.body["overrides"]["timeout"] == "600s"
    assert "env" not in created_body(fake)["template"]["template"]["containers"][0]  # plain env: per run only

    status = launcher.poll(job, execution)
    assert status.state is RunState.COMPLETED and status.exit_code == 0
    assert status.started_at is not None and status.ended_at is not None
    assert fake.executions() == [] and fake.jobs() == []  # keep_job is false
    (delete_call,) = fake.calls("delete_job")
    assert delete_call.query.get("etag")  # a run started meanwhile would have changed it
    assert launcher.poll(job, execution).state is RunState.COMPLETED  # remembered after cleanup
    assert fake.count("token") == 1  # one access token for every call


def test_api_calls_carry_the_access_token_from_the_key(
    fake: CloudRunFake, info: dict, launcher: CloudRunLauncher
):
    launcher.submit(make_job(block(info)))
    (token_call,) = fake.calls("token")
    assert token_call.body["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert all(r.status != 401 for r in fake.requests)


def test_nonzero_exit_is_failed_with_the_exit_code(
    fake: CloudRunFake, info: dict, launcher: CloudRunLauncher
):
    fake.outcome = Outcome.fail(3)
    job = make_job(block(info))
    status = launcher.poll(job, launcher.submit(job))
    assert status.state is RunState.FAILED
    assert status.exit_code == 3
    assert "exited with code 3" in status.message


def test_failure_to_start_is_crashed_with_cloud_runs_reason(
    fake: CloudRunFake, info: dict, launcher: CloudRunLauncher
):
    fake.outcome = Outcome.no_start("Image 'europe-docker.pkg.dev/demo-project/flows/etl:1.0' not found.")
    job = make_job(block(info))
    status = launcher.poll(job, launcher.submit(job))
    assert status.state is RunState.CRASHED
    assert status.exit_code is None
    assert "could not start" in status.message and "not found" in status.message


def test_running_until_the_outcome(fake: CloudRunFake, info: dict, launcher: CloudRunLauncher):
    fake.outcome = Outcome.succeed(after=3)
    job = make_job(block(info))
    execution = launcher.submit(job)
    assert launcher.poll(job, execution).state is RunState.RUNNING
    assert launcher.poll(job, execution).state is RunState.RUNNING
    assert launcher.poll(job, execution).state is RunState.COMPLETED


def test_task_timeout_from_the_timeout_variable_crashes(
    fake: CloudRunFake, info: dict, launcher: CloudRunLauncher
):
    fake.outcome = Outcome.hang()
    job = make_job(block(info), variables={"timeout": 1})
    execution = launcher.submit(job)
    assert fake.calls("run_job")[0].body["overrides"]["timeout"] == "1s"
    assert created_body(fake)["template"]["template"]["timeout"] == "1s"
    assert launcher.poll(job, execution).state is RunState.RUNNING
    time.sleep(1.1)
    status = launcher.poll(job, execution)
    assert status.state is RunState.CRASHED
    assert "timeout was reached" in status.message


def test_cancel_stops_the_execution_and_cleans_up(fake: CloudRunFake, info: dict, launcher: CloudRunLauncher):
    fake.outcome = Outcome.hang()
    job = make_job(block(info))
    execution = launcher.submit(job)
    assert launcher.poll(job, execution).state is RunState.RUNNING
    launcher.cancel(job, execution)
    assert fake.count("cancel_execution", status=200) == 1
    assert fake.executions() == [] and fake.jobs() == []
    launcher.cancel(job, execution)  # again: already gone, no error


def test_cancel_with_keep_job_leaves_a_cancelled_execution(
    fake: CloudRunFake, info: dict, launcher: CloudRunLauncher
):
    fake.outcome = Outcome.hang()
    job = make_job(block(info), variables={"keep_job": True})
    execution = launcher.submit(job)
    launcher.cancel(job, execution)
    assert launcher.poll(job, execution).state is RunState.CANCELLED
    assert len(fake.jobs()) == 1 and len(fake.executions()) == 1


def test_logs_point_to_cloud_logging(fake: CloudRunFake, info: dict, launcher: CloudRunLauncher):
    fake.outcome = Outcome.hang()
    job = make_job(block(info))
    execution = launcher.submit(job)
    chunk = launcher.logs(job, execution, cursor=0)
    assert chunk.text == "" and chunk.cursor == 0
    assert chunk.location == fake.execution(execution)["logUri"]
    assert chunk.location.startswith("https://console.cloud.google.com/logs/viewer?project=demo-project")
    reads = fake.count("get_execution")
    assert launcher.logs(job, execution).location == chunk.location
    assert fake.count("get_execution") == reads  # remembered: no call per --wait tick


# -- idempotency and retries ---------------------------------------------------------------------


def test_throttled_run_is_retried_and_starts_exactly_one_execution(
    fake: CloudRunFake, info: dict, launcher: CloudRunLauncher
):
    fake.outcome = Outcome.hang()
    fake.throttle("run_job", 2)
    execution = launcher.submit(make_job(block(info)))
    assert fake.count("run_job", status=429) == 2
    assert fake.count("run_job", status=200) == 1
    assert [e["name"] for e in fake.executions()] == [execution]
    assert fake.count("list_executions") >= 2  # looked for this run before each retry


def test_ambiguous_run_failure_finds_the_execution_instead_of_running_again(
    fake: CloudRunFake, info: dict, launcher: CloudRunLauncher
):
    fake.outcome = Outcome.hang()
    fake.fail_after_effect("run_job", 1)  # the execution starts, the answer is a 503
    execution = launcher.submit(make_job(block(info)))
    assert fake.count("run_job") == 1
    assert [e["name"] for e in fake.executions()] == [execution]


def test_ambiguous_create_reuses_the_job(fake: CloudRunFake, info: dict, launcher: CloudRunLauncher):
    fake.outcome = Outcome.hang()
    fake.fail_after_effect("create_job", 1)
    fake.throttle("get_job", 1, status=503, retry_after=None)
    launcher.submit(make_job(block(info)))
    assert fake.count("create_job", status=409) == 1  # the retry met the job the first try made
    assert len(fake.jobs()) == 1 and len(fake.executions()) == 1


def test_repeated_submit_for_one_run_returns_the_same_execution(
    fake: CloudRunFake, info: dict, launcher: CloudRunLauncher
):
    fake.outcome = Outcome.hang()
    job = make_job(block(info))
    first = launcher.submit(job)
    assert CloudRunLauncher(environ={ENDPOINT_ENV: fake.url}).submit(job) == first
    assert fake.count("run_job") == 1


def test_pending_create_operation_is_polled(fake: CloudRunFake, info: dict, launcher: CloudRunLauncher):
    fake.pending_polls = 2
    launcher.submit(make_job(block(info)))
    assert fake.count("get_operation") == 2
    assert len(fake.jobs()) == 1


def test_runs_of_one_deployment_version_share_a_job(
    fake: CloudRunFake, info: dict, launcher: CloudRunLauncher
):
    fake.outcome = Outcome.hang()
    first_job, second_job = make_job(block(info), run_id="run-1"), make_job(block(info), run_id="run-2")
    first, second = launcher.submit(first_job), launcher.submit(second_job)
    assert first != second and fake.count("create_job") == 1
    fake.set_outcome(first, Outcome.succeed())
    assert launcher.poll(first_job, first).state is RunState.COMPLETED
    assert len(fake.jobs()) == 1 and [e["name"] for e in fake.executions()] == [second]  # still in use
    fake.set_outcome(second, Outcome.fail(2))
    assert launcher.poll(second_job, second).state is RunState.FAILED
    assert fake.jobs() == []


def test_a_changed_body_is_a_new_job_and_find_still_adopts_the_old_one(
    fake: CloudRunFake, info: dict, launcher: CloudRunLauncher
):
    fake.outcome = Outcome.hang()
    execution = launcher.submit(make_job(block(info), variables={"cpu": "1"}))
    changed = make_job(block(info), variables={"cpu": "2"})
    other = make_job(block(info), run_id="run-2", variables={"cpu": "2"})
    launcher.submit(other)
    assert len(fake.jobs()) == 2
    assert launcher.find(changed) == execution
    assert launcher.find(make_job(block(info), run_id="never-launched")) is None


def test_a_job_deleted_under_the_launcher_is_created_again(
    fake: CloudRunFake, info: dict, launcher: CloudRunLauncher
):
    fake.outcome = Outcome.hang()
    original = fake.model.run_job

    def vanish_once(*args: Any, **kwargs: Any) -> Any:  # another run's cleanup wins the race once
        fake.model.run_job = original  # type: ignore[method-assign]
        fake.model.jobs.clear()
        return original(*args, **kwargs)

    fake.model.run_job = vanish_once  # type: ignore[method-assign]
    execution = launcher.submit(make_job(block(info)))
    assert fake.count("run_job", status=404) == 1
    assert fake.count("create_job", status=200) == 2
    assert [e["name"] for e in fake.executions()] == [execution]


# -- credentials ---------------------------------------------------------------------------------


def test_refused_key_is_an_auth_error_naming_the_pool_never_the_key(
    fake: CloudRunFake, info: dict, launcher: CloudRunLauncher
):
    fake.reject_tokens = True
    with pytest.raises(LaunchAuthError) as caught:
        launcher.submit(make_job(block(info)))
    message = str(caught.value)
    assert "work pool cloud-run" in message and "invalid_grant" in message
    for secret in (info["private_key"], info["private_key_id"], "BEGIN PRIVATE KEY", json.dumps(info)):
        assert secret not in message
    assert fake.count("create_job") == 0


def test_untrusted_key_is_refused_by_the_token_endpoint(fake: CloudRunFake, launcher: CloudRunLauncher):
    from cryptography.hazmat.primitives.asymmetric import rsa

    stranger = service_account(fake, email="stranger@other.iam.gserviceaccount.com")
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fake.trust(stranger["client_email"], other_key.public_key())  # the fake knows another key
    with pytest.raises(LaunchAuthError, match="Invalid JWT Signature"):
        launcher.submit(make_job(block(stranger)))


def test_permission_denied_is_an_auth_error(fake: CloudRunFake, info: dict, launcher: CloudRunLauncher):
    fake.deny = True
    with pytest.raises(LaunchAuthError, match="PERMISSION_DENIED"):
        launcher.submit(make_job(block(info)))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("not json at all: -----BEGIN PRIVATE KEY----- s3cr3t", "not a JSON service account key"),
        ('{"private_key": "s3cr3t", "client_email": "a@b"}', "missing token_uri"),
        ('["s3cr3t"]', "must be a JSON object"),
    ],
)
def test_malformed_key_info_is_explained_without_its_content(
    launcher: CloudRunLauncher, value: str, expected: str
):
    job = make_job({"service_account_info": value, "project": "demo-project"})
    with pytest.raises(LaunchAuthError, match=expected) as caught:
        launcher.submit(job)
    assert "s3cr3t" not in str(caught.value)


def test_key_info_may_be_an_object(fake: CloudRunFake, info: dict, launcher: CloudRunLauncher):
    job = make_job({"service_account_info": info})  # project from the key's project_id
    assert launcher.submit(job).startswith("projects/demo-project/")


def test_key_file_and_application_default_credentials(
    fake: CloudRunFake,
    info: dict,
    launcher: CloudRunLauncher,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(info))
    assert launcher.submit(make_job({"service_account_file": str(key_file)}, run_id="a"))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    assert launcher.submit(make_job(None, run_id="b")).startswith("projects/demo-project/")
    with pytest.raises(LaunchAuthError, match="cannot read service_account_file"):
        launcher.submit(make_job({"service_account_file": str(tmp_path / "missing.json"), "project": "p"}))


def test_unreachable_endpoint_is_a_retryable_error_in_the_end(info: dict):
    launcher = CloudRunLauncher(environ={ENDPOINT_ENV: "http://127.0.0.1:9"})
    info = {**info, "token_uri": "http://127.0.0.1:9/token"}
    started = time.monotonic()
    with pytest.raises(LaunchError) as caught:
        launcher.submit(make_job(block(info)))
    assert caught.value.retryable
    assert time.monotonic() - started < 60
    launcher.close()


def test_invalid_job_body_reports_cloud_runs_message(
    fake: CloudRunFake, info: dict, launcher: CloudRunLauncher
):
    job = make_job(block(info), variables={"memory": "lots"})
    with pytest.raises(LaunchError, match=r"INVALID_ARGUMENT.*memory"):
        launcher.submit(job)


# -- the Job body --------------------------------------------------------------------------------


def test_job_variables_reach_the_job_body(fake: CloudRunFake, info: dict, launcher: CloudRunLauncher):
    variables = {
        "cpu": "2",
        "memory": "4Gi",
        "max_retries": 2,
        "timeout": 900,
        "service_account_name": "flows@demo-project.iam.gserviceaccount.com",
        "vpc_connector_name": "projects/demo-project/locations/europe-west1/connectors/egress",
        "args": ["--verbose"],
        "labels": {"Team": "Data.Platform", "cost/center": "42"},
        "env_from_secrets": {"DB_PASSWORD": {"secret": "db-password", "version": "3"}},
        "prefect_api_key_secret": {"secret": "prefect-key", "version": "latest"},
        "cloudsql_instances": ["demo-project:europe-west1:main"],
        "launch_stage": "GA",
    }
    launcher.submit(
        make_job(block(info), variables=variables, env={"PREFECT_API_KEY": "plain-should-not-be-sent"})
    )
    body = created_body(fake)
    task = body["template"]["template"]
    container = task["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "4Gi"}
    assert task["maxRetries"] == 2 and task["timeout"] == "900s"
    assert task["serviceAccount"] == "flows@demo-project.iam.gserviceaccount.com"
    assert task["vpcAccess"] == {
        "connector": "projects/demo-project/locations/europe-west1/connectors/egress"
    }
    assert container["args"] == ["--verbose"]
    assert container["command"] == list(bootstrap.inline_command())
    assert {v["name"]: v["valueSource"]["secretKeyRef"] for v in container["env"]} == {
        "DB_PASSWORD": {"secret": "db-password", "version": "3"},
        "PREFECT_API_KEY": {"secret": "prefect-key", "version": "latest"},
    }
    assert task["volumes"] == [
        {"name": "cloudsql", "cloudSqlInstance": {"instances": ["demo-project:europe-west1:main"]}}
    ]
    assert container["volumeMounts"] == [{"name": "cloudsql", "mountPath": "/cloudsql"}]
    assert body["labels"]["team"] == "data-platform" and body["labels"]["cost-center"] == "42"
    assert body["template"]["labels"] == body["labels"]
    assert body["launchStage"] in ("GA", 4)
    override_env = fake.calls("run_job")[0].body["overrides"]["containerOverrides"][0]["env"]
    assert "PREFECT_API_KEY" not in {v["name"] for v in override_env}  # the secret reference wins


def test_unset_optional_variables_are_dropped(fake: CloudRunFake, info: dict, launcher: CloudRunLauncher):
    launcher.submit(make_job(block(info)))
    task = created_body(fake)["template"]["template"]
    assert "vpcAccess" not in task and "serviceAccount" not in task and "volumes" not in task
    assert task["containers"][0]["resources"]["limits"] == {"cpu": "1000m", "memory": "512Mi"}


def test_prefect_contract_when_the_job_talks_to_a_prefect_api(info: dict):
    job = make_job(block(info), env={"PREFECT_API_URL": "https://prefect.example/api"})
    target = cloud_run_body.plan(job, project="demo-project")
    container = target.body["template"]["template"]["containers"][0]
    assert container["command"] == ["prefect", "flow-run", "execute"]
    env = {v["name"]: v["value"] for v in target.overrides["containerOverrides"][0]["env"]}
    assert env["PREFECT__FLOW_RUN_ID"] == "run-1"
    custom = make_job(block(info), variables={"command": "python -m my.entry --flag 'a b'"})
    assert cloud_run_body.plan(custom, project="p").body["template"]["template"]["containers"][0][
        "command"
    ] == [
        "python",
        "-m",
        "my.entry",
        "--flag",
        "a b",
    ]


def test_the_job_id_follows_the_body_and_not_the_run(info: dict):
    first = cloud_run_body.plan(make_job(block(info), run_id="a"), project="p")
    again = cloud_run_body.plan(make_job(block(info), run_id="b", env={"X": "1"}), project="p")
    changed = cloud_run_body.plan(make_job(block(info), variables={"memory": "1Gi"}), project="p")
    assert first.job_id == again.job_id
    assert changed.job_id != first.job_id
    assert json.dumps(info["private_key"]) not in json.dumps(first.body)


@settings(max_examples=200, deadline=None)
@given(
    pool=st.text(min_size=1, max_size=80),
    flow=st.text(min_size=1, max_size=80),
    name=st.text(min_size=1, max_size=80),
    labels=st.dictionaries(st.text(max_size=80), st.text(max_size=80), max_size=70),
)
def test_job_ids_and_labels_are_always_valid_for_cloud_run(pool: str, flow: str, name: str, labels: dict):
    job = make_job(None, deployment=f"{flow}/{name}", variables={"labels": labels})
    job = dataclasses.replace(job, pool=pool)
    target = cloud_run_body.plan(job, project="p")
    assert JOB_ID.match(target.job_id), target.job_id
    assert len(target.body["labels"]) <= 64
    for key, value in target.body["labels"].items():
        assert re.match(r"^[a-z][a-z0-9_-]{0,62}$", key) and re.match(r"^[a-z0-9_-]{0,63}$", value)


def test_the_fake_refuses_calls_without_an_access_token(fake: CloudRunFake):
    """The stand-in checks what the launcher relies on: no valid bearer token, no answer."""
    import requests

    url = f"{fake.url}/v2/projects/demo-project/locations/europe-west1/jobs/anything"
    for headers in ({}, {"Authorization": "Bearer made-up"}):
        answer = requests.get(url, headers=headers, timeout=5)
        assert answer.status_code == 401
        assert answer.json()["error"]["status"] == "UNAUTHENTICATED"


def test_an_expired_access_token_is_renewed(fake: CloudRunFake, info: dict, launcher: CloudRunLauncher):
    fake.outcome = Outcome.hang()
    launcher.submit(make_job(block(info), run_id="run-1"))
    fake.expire_tokens()
    launcher.submit(make_job(block(info), run_id="run-2"))
    assert fake.count("token") == 2
    assert len(fake.executions()) == 2
