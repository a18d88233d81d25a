"""The ``aci`` launcher against the in-repo Azure fake, through the real Azure SDK.

Tokens come from azure-identity's real client-credentials flow (MSAL's tenant discovery, then the
token endpoint) against the fake's authority; ARM calls go through ``ContainerInstanceManagementClient``
over TLS with the fake's self-signed certificate, trusted as a private endpoint's would be
(``REQUESTS_CA_BUNDLE``). Jobs are built from the pool type's own rendering with the block inlined,
as the run lifecycle builds them. The CLI tests are in ``test_aci_cli.py``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.identity import ClientSecretCredential
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance.models import ContainerGroup

from reconciler.errors import LaunchAuthError, LaunchError
from reconciler.launch import bootstrap
from reconciler.launch.aci import body as spec
from reconciler.launch.aci import launcher as aci_module
from reconciler.launch.aci.client import describe
from reconciler.launch.aci.launcher import AciLauncher
from reconciler.state import RunState
from tests.fakes.aci import AciFake, Outcome
from tests.launch.aci_support import (
    CLIENT_SECRET,
    DB_PASSWORD,
    FAST,
    KEEP_RUNNING,
    credentials,
    environ,
    make_job,
    poll_until_terminal,
)

pytestmark = pytest.mark.cloud


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[AciFake]:
    with AciFake.running(tmp_path / "fake", client_secret=CLIENT_SECRET) as fake:
        yield fake


@pytest.fixture
def launcher(fake: AciFake) -> Iterator[AciLauncher]:
    launcher = AciLauncher(environ=environ(fake), retry_policy=FAST)
    yield launcher
    launcher.close()


# -- the fake speaks ARM as the SDK expects -----------------------------------------------------


def test_fake_serves_arm_long_running_operations_to_the_real_client(fake: AciFake) -> None:
    credential = ClientSecretCredential(
        fake.tenant_id,
        fake.client_id,
        CLIENT_SECRET,
        authority=fake.url,
        disable_instance_discovery=True,
        connection_verify=str(fake.cert_path),
    )
    client = ContainerInstanceManagementClient(
        credential,
        fake.subscription_id,
        base_url=fake.url,
        retry_total=0,
        connection_verify=str(fake.cert_path),
    )
    body = {
        "location": "westeurope",
        "properties": {
            "osType": "Linux",
            "containers": [
                {
                    "name": "c",
                    "properties": {"image": "i", "resources": {"requests": {"cpu": 1, "memoryInGB": 1}}},
                }
            ],
        },
    }
    group = client.container_groups.begin_create_or_update(
        "rg-flows", "lro", ContainerGroup.deserialize(body), polling_interval=0
    ).result()
    assert group.provisioning_state == "Succeeded"
    assert group.containers[0].instance_view.current_state.state in ("Running", "Terminated")
    routes = [(r.method, r.route) for r in fake.requests if r.route not in ("openid", "token")]
    assert routes == [
        ("PUT", "put_group"),  # 201, provisioningState Creating, Azure-AsyncOperation
        ("GET", "operation_status"),  # InProgress (the image is pulled)
        ("GET", "operation_status"),  # InProgress
        ("GET", "operation_status"),  # Succeeded
        ("GET", "get_group"),  # the poller's final GET
    ]
    unversioned = client._send_request(
        HttpRequest("GET", f"/subscriptions/{fake.subscription_id}/resourceGroups/rg-flows")
    )
    assert unversioned.status_code == 400
    assert unversioned.json()["error"]["code"] == "MissingApiVersionParameter"
    fake.revoke_tokens()
    with pytest.raises(HttpResponseError) as caught:
        client.container_groups.get("rg-flows", "lro")
    assert caught.value.status_code == 401 and caught.value.error.code == "InvalidAuthenticationToken"
    client.close()
    credential.close()


# -- submit --------------------------------------------------------------------------------------


def test_submit_creates_one_container_group_carrying_the_run_contract(
    fake: AciFake, launcher: AciLauncher, tmp_path: Path
) -> None:
    job = make_job(fake, tmp_path, env={"DB_PASSWORD": DB_PASSWORD, "STAGE": "dev", "API_URL": "https://x"})
    infrastructure_id = launcher.submit(job)
    name = spec.group_name(job)
    assert infrastructure_id == (
        f"/subscriptions/{fake.subscription_id}/resourceGroups/rg-flows/providers/"
        f"Microsoft.ContainerInstance/containerGroups/{name}"
    )
    assert name == f"hello-{job.run_id}"
    group = fake.group(name)
    body = group.body
    assert body["location"] == "westeurope"  # the resource group's, as ARM's default means
    assert body["tags"]["reconcile.run-id"] == job.run_id
    assert body["tags"]["reconcile.deployment"] == "hello/greet"
    props = body["properties"]
    assert (props["osType"], props["restartPolicy"]) == ("Linux", "Never")
    container = props["containers"][0]
    assert container["name"] == "flow"
    assert container["properties"]["image"] == "ghcr.io/acme/flows:1"
    assert container["properties"]["command"] == list(RUNTIME)  # any Python image: the runtime travels
    assert container["properties"]["resources"]["requests"] == {"cpu": 0.5, "memoryInGB": 1.5}
    assert group.environment()["RECONCILE_RUN_ID"] == job.run_id
    assert group.environment()["DB_PASSWORD"] == DB_PASSWORD
    assert group.secure_names() == {"DB_PASSWORD"}
    token_scopes = {t["scope"] for t in fake.token_requests}
    assert token_scopes == {f"{fake.url}/.default"}
    assert fake.created == 1


def test_submit_again_adopts_the_group_and_never_rewrites_it(
    fake: AciFake, launcher: AciLauncher, tmp_path: Path
) -> None:
    job = make_job(fake, tmp_path)
    first = launcher.submit(job)
    poll_until_terminal(launcher, job, first)
    fake.outcome = Outcome(running_polls=KEEP_RUNNING)
    other = make_job(fake, tmp_path)
    second_id = launcher.submit(other)
    assert launcher.submit(other) == second_id
    assert launcher.submit(other) == second_id
    assert fake.count("PUT", "put_group") == 2  # one per run, none on repeats
    assert all(g.updates == 0 for g in fake.groups.values())


def test_throttled_create_is_retried_and_creates_exactly_one_group(
    fake: AciFake, launcher: AciLauncher, tmp_path: Path
) -> None:
    fake.inject("PUT", "put_group", 429, times=2, retry_after=0)
    job = make_job(fake, tmp_path)
    launcher.submit(job)
    assert fake.count("PUT", "put_group") == 3
    assert fake.created == 1
    assert [g.updates for g in fake.groups.values()] == [0]


def test_a_create_that_succeeded_behind_a_500_is_found_not_repeated(
    fake: AciFake, launcher: AciLauncher, tmp_path: Path
) -> None:
    fake.inject("PUT", "put_group", 500, after=True)  # the group exists, the answer says it failed
    job = make_job(fake, tmp_path)
    assert launcher.submit(job).endswith(spec.group_name(job))
    assert fake.count("PUT", "put_group") == 1
    assert fake.created == 1


def test_endless_throttling_gives_up_after_our_attempts_only(
    fake: AciFake, launcher: AciLauncher, tmp_path: Path
) -> None:
    fake.inject("PUT", "put_group", 429, times=100, retry_after=0)
    with pytest.raises(LaunchError) as caught:
        launcher.submit(make_job(fake, tmp_path))
    assert caught.value.retryable
    assert "HTTP 429" in str(caught.value) and "TooManyRequests" in str(caught.value)
    assert fake.count("PUT", "put_group") == FAST.attempts  # the SDK's own retries are off
    assert fake.created == 0


def test_a_missing_resource_group_is_a_clear_error_and_creates_nothing(
    fake: AciFake, launcher: AciLauncher, tmp_path: Path
) -> None:
    job = make_job(fake, tmp_path, pool={"resource_group_name": "rg-missing"})
    with pytest.raises(LaunchError) as caught:
        launcher.submit(job)
    assert "ResourceGroupNotFound" in str(caught.value) and "rg-missing" in str(caught.value)
    assert not caught.value.retryable
    assert fake.count("PUT", "put_group") == 0
    assert launcher.find(job) is None


def test_a_group_of_that_name_from_another_run_is_refused(
    fake: AciFake, launcher: AciLauncher, tmp_path: Path
) -> None:
    job = make_job(fake, tmp_path)
    launcher.submit(job)
    fake.group(spec.group_name(job)).body["tags"]["reconcile.run-id"] = "someone-else"
    with pytest.raises(LaunchError, match="was not created for run"):
        launcher.submit(job)
    assert fake.count("PUT", "put_group") == 1


def test_a_job_without_image_runs_prefects_image_as_prefects_worker_does(
    fake: AciFake, launcher: AciLauncher, tmp_path: Path
) -> None:
    job = make_job(fake, tmp_path, pool={"image": None})
    launcher.submit(job)
    group = fake.group(spec.group_name(job)).body
    assert group["properties"]["containers"][0]["properties"]["image"] == bootstrap.PREFECT_IMAGE


def test_an_unresolved_image_is_refused_before_any_create(
    fake: AciFake, launcher: AciLauncher, tmp_path: Path
) -> None:
    job = make_job(fake, tmp_path, pool={"image": "{{ build-image.image }}"})
    with pytest.raises(LaunchError, match="image of hello/greet is not resolved"):
        launcher.submit(job)
    assert fake.count("PUT", "put_group") == 0


RUNTIME = bootstrap.inline_command()


@pytest.mark.parametrize(
    "variables, command",
    [
        ({}, list(RUNTIME)),
        ({"entrypoint": "/usr/bin/tini"}, ["/usr/bin/tini", *RUNTIME]),
        (
            {"command": "python -m reconciler.runtime --verbose"},
            [spec.PREFECT_ENTRYPOINT, "python", "-m", "reconciler.runtime", "--verbose"],
        ),
        ({"command": "python flows/x.py", "entrypoint": None}, ["python", "flows/x.py"]),
    ],
)
def test_entrypoint_is_prefixed_as_prefect_does_except_its_script_before_our_runtime(
    fake: AciFake, tmp_path: Path, variables: dict[str, Any], command: list[str]
) -> None:
    job = make_job(fake, tmp_path, pool=variables)
    assert spec.command_and_environment(job)[0] == command
    prefect = make_job(fake, tmp_path, env={"PREFECT_API_URL": "http://prefect/api"})
    assert spec.command_and_environment(prefect)[0] == [
        spec.PREFECT_ENTRYPOINT,
        "prefect",
        "flow-run",
        "execute",
    ]


def test_prefect_contract_registry_identity_network_and_gpu(
    fake: AciFake, launcher: AciLauncher, tmp_path: Path
) -> None:
    identity = (
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pull"
    )
    job = make_job(
        fake,
        tmp_path,
        pool={
            "entrypoint": None,
            "image_registry": {"registry_url": "acme.azurecr.io", "identity": identity},
            "subnet_ids": [
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/a"
            ],
            "dns_servers": ["10.0.0.4"],
            "gpu_count": 1,
            "gpu_sku": "V100",
            "labels": {"team": "data", "prefect.io/odd": "x"},
        },
        env={
            "PREFECT_API_URL": "https://api.prefect.cloud/api/accounts/a/workspaces/w",
            "PREFECT_API_KEY": "pnu_x1",
        },
    )
    launcher.submit(job)
    group = fake.group(spec.group_name(job))
    props = group.body["properties"]
    cprops = props["containers"][0]["properties"]
    assert cprops["command"] == ["prefect", "flow-run", "execute"]
    assert group.environment()["PREFECT__FLOW_RUN_ID"] == job.run_id
    assert "PREFECT_API_KEY" in group.secure_names()
    assert props["imageRegistryCredentials"] == [{"server": "acme.azurecr.io", "identity": identity}]
    assert group.body["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {identity: {}}}
    assert props["subnetIds"][0]["id"].endswith("/subnets/a")
    assert props["dnsConfig"] == {"nameServers": ["10.0.0.4"]}
    assert cprops["resources"]["requests"]["gpu"] == {"count": 1, "sku": "V100"}
    assert group.body["tags"]["team"] == "data" and group.body["tags"]["prefect.io-odd"] == "x"


def test_registry_login_is_sent_but_never_read_back(
    fake: AciFake, launcher: AciLauncher, tmp_path: Path
) -> None:
    registry = {"registry_url": "ghcr.io", "username": "bot", "password": "ghp-CANARY-pw", "reauth": True}
    job = make_job(fake, tmp_path, pool={"image_registry": registry})
    infrastructure_id = launcher.submit(job)
    group = fake.group(spec.group_name(job))
    assert group.body["properties"]["imageRegistryCredentials"] == [
        {"server": "ghcr.io", "username": "bot", "password": "ghp-CANARY-pw"}
    ]
    assert "ghp-CANARY-pw" not in json.dumps(group.view())
    assert launcher.poll(job, infrastructure_id).state in (RunState.PENDING, RunState.RUNNING)


# -- names and environment (pure) ----------------------------------------------------------------


@pytest.mark.parametrize(
    "flow, name",
    [
        ("hello", None),
        ("ETL__Daily Load!!", None),
        ("x" * 80, None),
        ("ignored", "Nightly--Report"),
        ("___", None),
    ],
)
def test_group_names_are_valid_for_aci_and_deterministic(
    fake: AciFake, tmp_path: Path, flow: str, name: Any
) -> None:
    run_id = str(uuid.uuid4())
    job = make_job(fake, tmp_path, run_id=run_id, pool={"name": name} if name else None)
    job = dataclasses.replace(job, flow_name=flow)
    first, again = spec.group_name(job), spec.group_name(job)
    assert first == again and first.endswith(run_id) and len(first) <= 63
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", first) and "--" not in first


def test_sensitive_values_are_secure_by_name_and_by_value() -> None:
    env = {"DATABASE_URL": "postgres://u:launcher-pw-123@db/x", "GITHUB_TOKEN": "t", "STAGE": "dev"}
    variables = spec.environment_variables(
        env,
        template=[{"name": "FROM_TEMPLATE", "value": "1"}],
        sensitive=spec.sensitive_values({"DB_PASSWORD": "launcher-pw-123"}),
    )
    secure = {v["name"] for v in variables if "secureValue" in v}
    assert secure == {"DATABASE_URL", "GITHUB_TOKEN"}
    assert {"name": "FROM_TEMPLATE", "value": "1"} in variables and {
        "name": "STAGE",
        "value": "dev",
    } in variables


def test_infrastructure_ids_parse_back_and_reject_others() -> None:
    ref = spec.GroupRef("sub", "rg", "hello-1")
    assert spec.GroupRef.parse(ref.resource_id) == ref
    with pytest.raises(LaunchError, match="not an Azure container group id"):
        spec.GroupRef.parse("process:host:1:2:run")


def test_arm_endpoint_must_be_https(tmp_path: Path, fake: AciFake) -> None:
    launcher = AciLauncher(environ={"RECONCILE_AZURE_ARM_ENDPOINT": "http://127.0.0.1:1"})
    with pytest.raises(LaunchError, match="must be an https URL"):
        launcher.submit(make_job(fake, tmp_path))


# -- poll, logs, cleanup -------------------------------------------------------------------------


def test_a_successful_run_completes_keeps_its_log_and_deletes_its_group(
    fake: AciFake, launcher: AciLauncher, tmp_path: Path
) -> None:
    fake.outcome = Outcome(waiting_polls=1, running_polls=1, logs="line one\nline two\n")
    job = make_job(fake, tmp_path)
    infrastructure_id = launcher.submit(job)
    assert launcher.poll(job, infrastructure_id).state is RunState.PENDING
    running = launcher.poll(job, infrastructure_id)
    assert running.state is RunState.RUNNING and running.started_at is not None
    chunk = launcher.logs(job, infrastructure_id, cursor=0)
    assert chunk.text == "line one\n"
    done = launcher.poll(job, infrastructure_id)
    assert (done.state, done.exit_code) == (RunState.COMPLETED, 0)
    assert done.ended_at is not None and done.ended_at >= done.started_at
    assert fake.groups == {}  # deleted after the log was kept
    rest = launcher.logs(job, infrastructure_id, cursor=chunk.cursor)
    assert rest.text == "line two\n" and rest.location.endswith("log.txt")
    assert Path(job.log_path).read_text() == "line one\nline two\n"
    assert launcher.poll(job, infrastructure_id) == done  # read back from the run directory


def test_a_nonzero_exit_is_failed_with_its_code(fake: AciFake, launcher: AciLauncher, tmp_path: Path) -> None:
    fake.outcome = Outcome(exit_code=3)
    job = make_job(fake, tmp_path)
    status = poll_until_terminal(launcher, job, launcher.submit(job))
    assert (status.state, status.exit_code) == (RunState.FAILED, 3)
    assert "exited with code 3" in status.message


def test_an_image_that_cannot_be_pulled_crashes_the_run_with_azures_reason(
    fake: AciFake, launcher: AciLauncher, tmp_path: Path
) -> None:
    reason = 'Failed to pull image "ghcr.io/acme/flows:nope": manifest unknown'
    fake.outcome = Outcome(start_failure=reason)
    job = make_job(fake, tmp_path)
    status = poll_until_terminal(launcher, job, launcher.submit(job))
    assert status.state is RunState.CRASHED
    assert reason in status.message and "failed to start" in status.message
    assert fake.groups == {}


def test_a_group_that_never_starts_crashes_after_the_start_timeout_and_is_stopped(
    fake: AciFake, launcher: AciLauncher, tmp_path: Path
) -> None:
    fake.outcome = Outcome(waiting_polls=KEEP_RUNNING)
    job = make_job(fake, tmp_path, pool={"task_start_timeout_seconds": 0, "keep_container_group": True})
    status = launcher.poll(job, launcher.submit(job))
    assert status.state is RunState.CRASHED and "did not start within 0s" in status.message
    assert fake.group(spec.group_name(job)).stopped  # kept, but it must not start later


def test_cancel_deletes_the_group_and_waits_for_the_operation(
    fake: AciFake, launcher: AciLauncher, tmp_path: Path
) -> None:
    fake.outcome = Outcome(running_polls=KEEP_RUNNING, logs="working\n")
    job = make_job(fake, tmp_path)
    infrastructure_id = launcher.submit(job)
    launcher.poll(job, infrastructure_id)
    launcher.cancel(job, infrastructure_id)
    assert fake.groups == {}
    assert fake.count("GET", "operation_status") == 2  # the delete's LRO, polled to Succeeded
    assert launcher.poll(job, infrastructure_id).state is RunState.CANCELLED
    launcher.cancel(job, infrastructure_id)  # cancelling again is harmless


def test_cancel_with_keep_container_group_stops_it(
    fake: AciFake, launcher: AciLauncher, tmp_path: Path
) -> None:
    fake.outcome = Outcome(running_polls=KEEP_RUNNING)
    job = make_job(fake, tmp_path, pool={"keep_container_group": True})
    infrastructure_id = launcher.submit(job)
    launcher.cancel(job, infrastructure_id)
    assert fake.group(spec.group_name(job)).stopped
    assert fake.count("DELETE", "delete_group") == 0


def test_a_group_stopped_outside_is_cancelled_and_one_deleted_outside_is_crashed(
    fake: AciFake, launcher: AciLauncher, tmp_path: Path
) -> None:
    fake.outcome = Outcome(running_polls=KEEP_RUNNING)
    stopped = make_job(fake, tmp_path)
    stopped_id = launcher.submit(stopped)
    fake.group(spec.group_name(stopped)).stop()
    assert launcher.poll(stopped, stopped_id).state is RunState.CANCELLED
    deleted = make_job(fake, tmp_path)
    deleted_id = launcher.submit(deleted)
    fake.groups.clear()
    status = launcher.poll(deleted, deleted_id)
    assert status.state is RunState.CRASHED and "no longer exists" in status.message


def test_polls_faster_than_the_watch_interval_reuse_the_last_answer(
    fake: AciFake, launcher: AciLauncher, tmp_path: Path
) -> None:
    fake.outcome = Outcome(running_polls=KEEP_RUNNING)
    job = make_job(fake, tmp_path, pool={"task_watch_poll_interval": 60})
    infrastructure_id = launcher.submit(job)
    gets = fake.count("GET", "get_group")
    for _ in range(5):
        launcher.poll(job, infrastructure_id)
        launcher.logs(job, infrastructure_id)
    assert fake.count("GET", "get_group") == gets + 1
    assert fake.count("GET", "logs") == 1


def test_the_log_read_after_the_last_poll_is_whole_even_within_the_watch_interval(
    fake: AciFake, launcher: AciLauncher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run --wait` polls, then reads the log: the read right after the terminal poll must not be
    answered from a log cached moments before the container wrote its last line."""
    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(aci_module, "time", SimpleNamespace(monotonic=lambda: clock.now))
    fake.outcome = Outcome(waiting_polls=0, running_polls=1, logs="first\nlast\n")
    job = make_job(fake, tmp_path, pool={"task_watch_poll_interval": 5})
    infrastructure_id = launcher.submit(job)
    assert launcher.poll(job, infrastructure_id).state is RunState.RUNNING
    clock.now = 1.0
    first = launcher.logs(job, infrastructure_id)
    assert first.text == "first\n"
    clock.now = 5.0
    assert launcher.poll(job, infrastructure_id).state is RunState.COMPLETED
    assert launcher.logs(job, infrastructure_id, cursor=first.cursor).text == "last\n"


def test_find_adopts_by_name_or_by_run_tag(fake: AciFake, launcher: AciLauncher, tmp_path: Path) -> None:
    fake.outcome = Outcome(running_polls=KEEP_RUNNING)
    job = make_job(fake, tmp_path)
    assert launcher.find(job) is None
    infrastructure_id = launcher.submit(job)
    assert launcher.find(job) == infrastructure_id
    renamed = dataclasses.replace(job, configuration={**job.configuration, "name": "renamed"})
    assert launcher.find(renamed) == infrastructure_id  # found through list_by_resource_group
    assert fake.count("GET", "list_groups") == 2


# -- credentials ---------------------------------------------------------------------------------


def test_a_wrong_client_secret_is_an_auth_error_naming_the_block_not_the_secret(
    fake: AciFake, launcher: AciLauncher, tmp_path: Path
) -> None:
    wrong = "wrong-CANARY-secret-1234"
    job = make_job(fake, tmp_path, creds=credentials(fake, client_secret=wrong))
    with pytest.raises(LaunchAuthError) as caught:
        launcher.submit(job)
    message = str(caught.value)
    assert "azure-container-instance-credentials" in message and "aci-fake" in message
    assert fake.client_id in message and "AADSTS7000215" in message
    assert wrong not in message and CLIENT_SECRET not in message
    assert "\n" not in message
    assert fake.count("PUT", "put_group") == 0


def test_auth_errors_name_the_block_when_the_job_knows_it() -> None:
    data = {"client_id": "app-1", "tenant_id": "t", "client_secret": "s3cret-value"}
    named = describe(data, pool="aci-fake", block="prod")
    assert named.label.startswith("block azure-container-instance-credentials/prod ")
    assert "app-1" in named.label and "s3cret-value" not in named.label
    assert named.secrets == ("s3cret-value",)
    assert "DefaultAzureCredential" in describe(None, pool="aci-fake", block=None).label


def test_arm_rejecting_the_token_is_an_auth_error(
    fake: AciFake, launcher: AciLauncher, tmp_path: Path
) -> None:
    job = make_job(fake, tmp_path)
    infrastructure_id = launcher.submit(job)
    fake.revoke_tokens()
    with pytest.raises(LaunchAuthError, match="InvalidAuthenticationToken"):
        launcher.poll(job, infrastructure_id)


def test_a_block_without_secret_uses_default_azure_credential(
    fake: AciFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prefect-azure's rule: no client_secret -> DefaultAzureCredential(**credential_kwargs); here its
    EnvironmentCredential reads the service principal from the launching process's environment."""
    monkeypatch.setenv("AZURE_CLIENT_ID", fake.client_id)
    monkeypatch.setenv("AZURE_TENANT_ID", fake.tenant_id)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", CLIENT_SECRET)
    launcher = AciLauncher(environ=environ(fake), retry_policy=FAST)
    try:
        creds = {
            "credential_kwargs": {
                "disable_instance_discovery": True,
                "exclude_managed_identity_credential": True,
            }
        }
        job = make_job(fake, tmp_path, creds=creds)
        assert launcher.submit(job)
        assert fake.created == 1
    finally:
        launcher.close()
