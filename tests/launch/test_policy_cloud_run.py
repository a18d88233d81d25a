"""examples/cloud-run/iam-role.yaml holds exactly the permissions the Cloud Run launcher and its
preflight need, no more.

The Cloud Run fake records every request the real ``google-cloud-run`` client (and preflight's
authorized HTTP) sends through a full run: submit (job created, run with overrides), poll to the
end and cleanup (execution and job deleted), logs, find, a cancelled run, and a preflight. Each
request's method and path (the fake's route) maps to the IAM permission Google checks for it
(https://cloud.google.com/run/docs/reference/iam/permissions); creating a job also needs ``actAs``
on the service account it runs as, and running it with overrides ``runWithOverrides``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from reconciler.launch.cloud_run.gcp import ENDPOINT_ENV
from reconciler.launch.cloud_run.launcher import CloudRunLauncher
from reconciler.launch.cloud_run.preflight import AR_ENDPOINT_ENV, IAM_ENDPOINT_ENV
from reconciler.launch.preflight import Target, run_preflight
from reconciler.state import RunState
from tests.fakes.cloud_run import CloudRunFake, Outcome, Request, service_account
from tests.helpers import REPO
from tests.launch.test_cloud_run import block, make_job

pytestmark = pytest.mark.cloud

ROLE = REPO / "examples" / "cloud-run" / "iam-role.yaml"
IMAGE = "europe-docker.pkg.dev/demo-project/flows/etl:1.0"  # what test_cloud_run.make_job renders
DIGESTED = "europe-docker.pkg.dev/demo-project/flows/etl@sha256:" + "d" * 64
RUNNER = "flows@demo-project.iam.gserviceaccount.com"
# The fake's route (method + path template) -> the permission Google checks for that request.
PERMISSION = {
    "create_job": "run.jobs.create",
    "get_job": "run.jobs.get",
    "list_jobs": "run.jobs.list",
    "update_job": "run.jobs.update",
    "delete_job": "run.jobs.delete",
    "run_job": "run.jobs.run",
    "list_executions": "run.executions.list",
    "get_execution": "run.executions.get",
    "delete_execution": "run.executions.delete",
    "cancel_execution": "run.executions.cancel",
    "list_tasks": "run.tasks.list",
    "get_operation": "run.operations.get",
    "get_docker_tag": "artifactregistry.tags.get",
    "get_docker_version": "artifactregistry.versions.get",
    "get_service_account": "iam.serviceAccounts.get",
}
NO_PERMISSION = frozenset({"token"})  # the OAuth token endpoint: the key itself is the proof


def needs(request: Request) -> set[str]:
    """Every permission one request needs (what its body implies included)."""
    if request.route in NO_PERMISSION:
        return set()
    assert request.route in PERMISSION, f"no permission known for {request.method} {request.path}"
    found = {PERMISSION[request.route]}
    body = request.body if isinstance(request.body, dict) else {}
    if request.route == "run_job" and body.get("overrides"):
        found.add("run.jobs.runWithOverrides")
    if request.route == "create_job":
        found.add("iam.serviceAccounts.actAs")  # on the job's service account (default or named)
    return found


@pytest.fixture
def fake() -> Iterator[CloudRunFake]:
    with CloudRunFake(pending_polls=1) as server:  # operations are polled, as on Cloud Run
        server.images.add(IMAGE)
        server.images.add(DIGESTED)
        server.service_accounts.add(RUNNER)
        yield server


def full_run(fake: CloudRunFake) -> None:
    info = service_account(fake)
    credentials = block(info)
    variables = {"service_account_name": RUNNER}
    environ = {ENDPOINT_ENV: fake.url, AR_ENDPOINT_ENV: fake.url, IAM_ENDPOINT_ENV: fake.url}
    launcher = CloudRunLauncher(environ=environ)
    try:
        done = make_job(credentials, run_id="run-done", variables=variables)
        execution = launcher.submit(done)
        assert launcher.find(done) == execution
        launcher.logs(done, execution)
        for _ in range(10):
            if launcher.poll(done, execution).state.terminal:
                break
        assert launcher.poll(done, execution).state is RunState.COMPLETED

        fake.outcome = Outcome.fail(3)  # a failed run: its tasks are read for the exit code
        failed = make_job(credentials, run_id="run-failed", variables=variables)
        execution = launcher.submit(failed)
        for _ in range(10):
            if launcher.poll(failed, execution).state.terminal:
                break
        assert launcher.poll(failed, execution).exit_code == 3

        fake.outcome = Outcome.hang()
        cancelled = make_job(credentials, run_id="run-cancelled", variables=variables)
        other = launcher.submit(cancelled)
        launcher.poll(cancelled, other)
        launcher.cancel(cancelled, other)
        assert launcher.find(make_job(credentials, run_id="never-ran", variables=variables)) is None
    finally:
        launcher.close()
    targets = [
        Target("cloud-run", "cloud-run-v2:push", "cloud-run", f"hello/{image}", job=job)
        for image in (IMAGE, DIGESTED)
        for job in [make_job(credentials, run_id="preflight", variables={**variables, "image": image})]
    ]
    results = run_preflight(targets, environ=environ)
    assert results and all(r.ok and not r.skipped for r in results), results
    routes = {r.route for r in fake.requests}
    assert routes >= {
        "create_job",
        "run_job",
        "delete_execution",
        "delete_job",
        "cancel_execution",
        "list_jobs",
    }
    assert routes >= {"get_docker_tag", "get_docker_version", "get_service_account", "list_tasks"}


def role_permissions() -> set[str]:
    return set(yaml.safe_load(ROLE.read_text())["includedPermissions"])


def test_the_custom_role_covers_every_request_of_a_full_run(fake) -> None:
    full_run(fake)

    missing = {(r.method, r.path, p) for r in fake.requests for p in needs(r) if p not in role_permissions()}
    assert not missing, f"not in {ROLE.name}: {sorted(missing)}"


def test_the_custom_role_grants_nothing_the_launcher_does_not_use(fake) -> None:
    full_run(fake)

    used = {p for r in fake.requests for p in needs(r)}
    assert role_permissions() == used, (
        f"granted but unused: {role_permissions() - used}; used but not granted: {used - role_permissions()}"
    )


def test_every_route_of_the_fake_has_a_permission() -> None:
    from tests.fakes.cloud_run import ROUTES

    assert {route for _, _, route in ROUTES} - NO_PERMISSION == set(PERMISSION)
