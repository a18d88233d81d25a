"""ACI preflight against the Azure fake (Entra ID token endpoint + ARM over HTTPS), through
azure-identity and the ``azure-mgmt-containerinstance`` client's pipeline.

The example project (examples/aci) passes; each crafted break (a refused secret, an unknown
subscription or resource group, a missing or undelegated subnet, a size ACI refuses) fails with
its field named; an image missing from ACR too. Images elsewhere are reported as not checkable.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from reconciler import desired as desired_state
from reconciler.launch.aci.preflight import ACR_ENDPOINT_ENV
from reconciler.launch.preflight import PreflightResult, Target, preflight_for, run_preflight
from tests.fakes.aci import AciFake
from tests.helpers import REPO
from tests.launch.aci_support import credentials, environ, make_job
from tests.launch.test_preflight_ecs import name_of

pytestmark = pytest.mark.cloud

IMAGE = "acme.azurecr.io/flows:1.0"
SUBNET = (
    "/subscriptions/{sub}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/aci"
)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[AciFake]:
    groups = {"rg-prefect-flows": "westeurope", "rg-net": "westeurope", "rg-flows": "westeurope"}
    with AciFake.running(tmp_path / "fake", resource_groups=groups) as server:
        server.acr.images.add(IMAGE)
        yield server


def example_environ(fake: AciFake, **changes: str) -> dict[str, str]:
    values = {
        "client_id": fake.client_id,
        "tenant_id": fake.tenant_id,
        "client_secret": fake.client_secret,
        "subscription_id": fake.subscription_id,
        "image": IMAGE,
        **changes,
    }
    return {
        **environ(fake),
        ACR_ENDPOINT_ENV: fake.url,  # the fake plays acme.azurecr.io
        **{name_of(field, "aci"): value for field, value in values.items()},
        name_of("INVENTORY_API_TOKEN", "aci"): "inventory-token",
    }


def preflight(tmp_path: Path, env: Mapping[str, str], *edits: tuple[str, str]) -> tuple[PreflightResult, ...]:
    project = tmp_path / f"aci-{len(list(tmp_path.glob('aci-*')))}"
    shutil.copytree(REPO / "examples" / "aci", project)
    text = (project / "prefect.yaml").read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    (project / "prefect.yaml").write_text(text)
    desired = desired_state.load(desired_state.WorkingTree(project), environ=env, fingerprint_key=b"k" * 32)
    return preflight_for(desired, env)


def failures(results: tuple[PreflightResult, ...]) -> dict[str, PreflightResult]:
    return {r.field: r for r in results if not r.ok}


def subnet_edit(subnet_id: str) -> tuple[str, str]:
    return (
        "# subnet_ids: [/subscriptions/<sub>/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/aci]",
        f"subnet_ids: [{subnet_id}]",
    )


def test_the_example_pool_passes_every_check(fake, tmp_path) -> None:
    results = preflight(tmp_path, example_environ(fake))

    assert results and all(r.ok for r in results), [r for r in results if not r.ok]
    checks = {(r.field, r.check) for r in results}
    assert checks >= {
        ("aci_credentials", "credentials"),
        ("resource_group_name", "resource-group-exists"),
        ("image", "image-exists"),
        ("cpu", "aci-size"),
    }
    assert not any(r.skipped for r in results)
    assert fake.count("GET", "resource_group") == 1  # shared by both deployments
    assert fake.count("GET", "acr_manifest") == 1
    reads = {
        "openid",
        "instance_discovery",
        "token",
        "resource_group",
        "acr_exchange",
        "acr_token",
        "acr_manifest",
    }
    assert {r.route for r in fake.requests} <= reads  # read-only


def test_an_image_missing_from_acr_fails_on_the_image_field(fake, tmp_path) -> None:
    failed = failures(preflight(tmp_path, example_environ(fake, image="acme.azurecr.io/flows:2.0")))

    assert set(failed) == {"image"}
    assert "MANIFEST_UNKNOWN" in failed["image"].message


def test_an_image_outside_acr_is_reported_as_not_checkable(fake, tmp_path) -> None:
    results = preflight(tmp_path, example_environ(fake, image="ghcr.io/acme/flows:1.0"))

    (image,) = [r for r in results if r.field == "image"]
    assert image.ok and image.skipped and "ghcr.io cannot be asked" in image.message


def test_a_refused_secret_fails_on_the_credentials_field_only(fake, tmp_path) -> None:
    env = example_environ(fake, client_secret="not-the-secret")
    results = preflight(tmp_path, env)

    assert [(r.field, r.ok) for r in results] == [("aci_credentials", False)]
    assert "azure-container-instance-credentials/prod" in results[0].message
    assert "not-the-secret" not in results[0].message


def test_an_unknown_resource_group_fails_on_its_field(fake, tmp_path) -> None:
    failed = failures(preflight(tmp_path, example_environ(fake), ("rg-prefect-flows", "rg-missing")))

    assert set(failed) == {"resource_group_name"}
    assert "ResourceGroupNotFound" in failed["resource_group_name"].message


def test_an_unknown_subscription_fails_on_its_field(fake, tmp_path) -> None:
    other = "99999999-2222-3333-4444-555555555555"
    failed = failures(preflight(tmp_path, example_environ(fake, subscription_id=other)))

    assert set(failed) == {"subscription_id"}
    assert "SubscriptionNotFound" in failed["subscription_id"].message


def test_a_subnet_must_exist_and_be_delegated_to_aci(fake, tmp_path) -> None:
    subnet = SUBNET.format(sub=fake.subscription_id)
    env = example_environ(fake)

    failed = failures(preflight(tmp_path, env, subnet_edit(subnet)))
    assert set(failed) == {"subnet_ids"} and "does not exist" in failed["subnet_ids"].message

    fake.subnets[subnet.lower()] = ["Microsoft.Web/serverFarms"]
    failed = failures(preflight(tmp_path, env, subnet_edit(subnet)))
    assert set(failed) == {"subnet_ids"}
    assert "not delegated to Microsoft.ContainerInstance/containerGroups" in failed["subnet_ids"].message

    fake.subnets[subnet.lower()] = ["Microsoft.ContainerInstance/containerGroups"]
    assert not failures(preflight(tmp_path, env, subnet_edit(subnet)))


def test_literal_requests_outside_aci_limits_fail_on_cpu(fake, tmp_path) -> None:
    # the loader refuses such variables; a pasted template can still render them
    job = make_job(
        fake,
        tmp_path,
        deployment={"cpu": 8.0, "memory": 4.0},
        creds=credentials(fake, client_secret=fake.client_secret),
    )
    target = Target("aci-fake", "azure-container-instance:push", "aci", "hello/greet", job=job)
    failed = failures(tuple(run_preflight([target], environ=environ(fake))))

    assert set(failed) == {"cpu"}
    assert failed["cpu"].check == "aci-size" and "outside ACI's limits" in failed["cpu"].message
