"""Cloud Run preflight against the Cloud Run fake, through google-auth, the ``google-cloud-run`` REST
client and plain authorized HTTP for Artifact Registry and IAM (the fake serves their read routes).

The example project (examples/cloud-run) passes; each crafted break (refused key, unknown region,
missing image tag, missing service account, literal limits Cloud Run refuses) fails with its field named.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from reconciler import desired as desired_state
from reconciler import pooltypes
from reconciler.launch.base import Job
from reconciler.launch.cloud_run.gcp import ENDPOINT_ENV
from reconciler.launch.cloud_run.preflight import AR_ENDPOINT_ENV, IAM_ENDPOINT_ENV
from reconciler.launch.preflight import PreflightResult, Target, preflight_for, run_preflight
from tests.fakes.cloud_run import CloudRunFake, service_account
from tests.helpers import REPO
from tests.launch.test_preflight_ecs import name_of

pytestmark = pytest.mark.cloud

IMAGE = "europe-west1-docker.pkg.dev/acme-flows/flows/reports:1.0"
RUNNER = "flows@acme-flows.iam.gserviceaccount.com"


@pytest.fixture
def fake() -> Iterator[CloudRunFake]:
    with CloudRunFake(locations=frozenset({"europe-west1"})) as server:
        server.images.add(IMAGE)
        server.service_accounts.add(RUNNER)
        yield server


@pytest.fixture
def environ(fake: CloudRunFake) -> dict[str, str]:
    key = service_account(fake, project="acme-flows", email="launcher@acme-flows.iam.gserviceaccount.com")
    return {
        name_of("service_account_info", "cloud-run"): json.dumps(key),
        ENDPOINT_ENV: fake.url,
        AR_ENDPOINT_ENV: fake.url,
        IAM_ENDPOINT_ENV: fake.url,
    }


def preflight(
    tmp_path: Path, environ: Mapping[str, str], *edits: tuple[str, str]
) -> tuple[PreflightResult, ...]:
    project = tmp_path / f"cloud-run-{len(list(tmp_path.iterdir()))}"
    shutil.copytree(REPO / "examples" / "cloud-run", project)
    text = (project / "prefect.yaml").read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    (project / "prefect.yaml").write_text(text)
    desired = desired_state.load(
        desired_state.WorkingTree(project), environ=environ, fingerprint_key=b"k" * 32
    )
    return preflight_for(desired, environ)


def failures(results: tuple[PreflightResult, ...]) -> dict[str, PreflightResult]:
    return {r.field: r for r in results if not r.ok}


def test_the_example_pool_passes_every_check(fake, environ, tmp_path) -> None:
    results = preflight(tmp_path, environ)

    assert results and all(r.ok and not r.skipped for r in results), results
    checks = {(r.field, r.check) for r in results}
    assert checks >= {
        ("credentials", "credentials"),
        ("region", "region-exists"),
        ("image", "image-exists"),
        ("cpu", "cloud-run-size"),
    }
    # per key, not per deployment: the credentials check's token and the Cloud Run client's
    assert fake.count("token") == 2
    assert fake.count("get_docker_tag") == 1
    reads = {r.route for r in fake.requests}
    assert reads <= {"token", "list_jobs", "get_docker_tag", "get_service_account"}  # read-only


def test_a_refused_key_fails_on_the_credentials_field_only(fake, environ, tmp_path) -> None:
    fake.reject_tokens = True
    results = preflight(tmp_path, environ)

    assert [(r.field, r.ok) for r in results] == [("credentials", False)]
    assert "invalid_grant" in results[0].message and "gcp-credentials/prod" in results[0].message
    assert "PRIVATE KEY" not in results[0].message


def test_an_unknown_region_fails_on_the_region_field(fake, environ, tmp_path) -> None:
    failed = failures(preflight(tmp_path, environ, ("region: europe-west1", "region: europe-nowhere1")))

    assert set(failed) == {"region"}
    assert "locations/europe-nowhere1" in failed["region"].message


def test_a_missing_image_tag_fails_on_the_image_field(fake, environ, tmp_path) -> None:
    failed = failures(preflight(tmp_path, environ, ("reports:1.0", "reports:2.0")))

    assert set(failed) == {"image"}
    assert "reports:2.0 is not in Artifact Registry" in failed["image"].message
    assert "NOT_FOUND" in failed["image"].message


def test_an_image_digest_is_looked_up_as_a_version(fake, environ, tmp_path) -> None:
    digested = "europe-west1-docker.pkg.dev/acme-flows/flows/team/reports@sha256:" + "c" * 64
    fake.images.add(digested)
    results = preflight(tmp_path, environ, (IMAGE, digested))

    assert not failures(results)
    assert fake.count("get_docker_version") == 1


def test_an_image_elsewhere_is_reported_as_not_checkable(fake, environ, tmp_path) -> None:
    results = preflight(tmp_path, environ, (IMAGE, "docker.io/prefecthq/prefect:3-latest"))

    (image,) = [r for r in results if r.field == "image"]
    assert image.ok and image.skipped and "not in Artifact Registry" in image.message


def test_the_service_account_the_job_runs_as_must_exist(fake, environ, tmp_path) -> None:
    edit = ("# service_account_name: flows@", "service_account_name: flows@")
    assert not failures(preflight(tmp_path, environ, edit))

    fake.service_accounts.clear()
    failed = failures(preflight(tmp_path, environ, edit))
    assert set(failed) == {"service_account_name"}
    assert f"{RUNNER} does not exist" in failed["service_account_name"].message


def test_literal_limits_of_a_pasted_template_are_checked(fake, environ) -> None:
    # the loader checks the cpu/memory variables; a template's literal limits reach only preflight
    configuration = pooltypes.get("cloud-run-v2:push").render(
        pool_variables={"image": IMAGE, "region": "europe-west1"}, deployment_variables={}, run_variables={}
    )
    configuration["job_body"]["template"]["template"]["containers"][0]["resources"] = {
        "limits": {"cpu": "1", "memory": "8Gi"}
    }
    key = environ[name_of("service_account_info", "cloud-run")]
    configuration["credentials"] = {"service_account_info": key}
    job = Job(
        run_id="preflight",
        deployment="report/daily",
        flow_name="report",
        entrypoint="flows/report.py:report",
        parameters={},
        configuration=configuration,
        pool="pasted",
        pool_type="cloud-run-v2:push",
        project_dir=".",
        env={},
        command=("python", "-m", "reconciler.runtime"),
    )
    results = run_preflight(
        [Target("pasted", "cloud-run-v2:push", "cloud-run", "report/daily", job=job)], environ=environ
    )

    failed = failures(tuple(results))
    assert set(failed) == {"memory"}
    assert failed["memory"].check == "cloud-run-size" and "needs at least 2 vCPU" in failed["memory"].message
