"""examples/aci/role-definition.json allows exactly what the ACI launcher and its preflight do, no more.

The Azure fake records every request the real ``azure-mgmt-containerinstance`` client sends through
a full run: submit (resource group read, container group PUT with a managed identity and a
subnet), poll to the end and cleanup (logs kept, group deleted), find after deletion (list), a run
cancelled with ``keep_container_group`` (stop) and one cancelled without (delete, polled to the
end), and a preflight (an ACR image looked up through ACR's token exchange). Each ARM method + path (the fake's route) maps to the RBAC action Azure
checks for it (https://learn.microsoft.com/azure/role-based-access-control/permissions/containers);
a PUT also needs ``assign/action`` on each user-assigned identity and ``join/action`` on each subnet.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import pytest

from reconciler.launch.aci.launcher import AciLauncher
from reconciler.launch.aci.preflight import ACR_ENDPOINT_ENV
from reconciler.launch.preflight import Target, run_preflight
from reconciler.state import RunState
from tests.fakes.aci import AciFake, Outcome, Seen
from tests.helpers import REPO
from tests.launch.aci_support import FAST, KEEP_RUNNING, credentials, environ, make_job, poll_until_terminal

pytestmark = pytest.mark.cloud

ROLE = REPO / "examples" / "aci" / "role-definition.json"
CI = "Microsoft.ContainerInstance"
ACTION = {
    ("GET", "resource_group"): "Microsoft.Resources/subscriptions/resourceGroups/read",
    ("GET", "list_groups"): f"{CI}/containerGroups/read",
    ("PUT", "put_group"): f"{CI}/containerGroups/write",
    ("GET", "get_group"): f"{CI}/containerGroups/read",
    ("DELETE", "delete_group"): f"{CI}/containerGroups/delete",
    ("POST", "stop_group"): f"{CI}/containerGroups/stop/action",
    ("GET", "logs"): f"{CI}/containerGroups/containers/logs/read",
    ("GET", "operation_status"): f"{CI}/locations/operations/read",
    ("GET", "get_subnet"): "Microsoft.Network/virtualNetworks/subnets/read",
    ("GET", "acr_manifest"): "Microsoft.ContainerRegistry/registries/pull/read",
}
# Entra ID, and ACR's token exchange (it checks the token; the pull is what RBAC decides): no action
IDENTITY_ROUTES = frozenset({"openid", "instance_discovery", "token", "acr_exchange", "acr_token"})


def needs(seen: Seen) -> set[str]:
    """The RBAC actions one request needs (what a PUT body references included)."""
    if seen.route in IDENTITY_ROUTES:
        return set()
    assert (seen.method, seen.route) in ACTION, f"no action known for {seen.method} {seen.path}"
    found = {ACTION[(seen.method, seen.route)]}
    if seen.route == "put_group":
        body = json.loads(seen.body or b"{}")
        if (body.get("identity") or {}).get("userAssignedIdentities"):
            found.add("Microsoft.ManagedIdentity/userAssignedIdentities/assign/action")
        if (body.get("properties") or {}).get("subnetIds"):
            found.add("Microsoft.Network/virtualNetworks/subnets/join/action")
    return found


def allowed(role: dict, action: str) -> bool:
    def matches(patterns: list[str]) -> bool:
        return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in patterns)

    return matches(role["Actions"]) and not matches(role["NotActions"])


def full_run(fake: AciFake, tmp_path: Path) -> None:
    subnet = (
        f"/subscriptions/{fake.subscription_id}/resourceGroups/rg-net/providers/Microsoft.Network"
        "/virtualNetworks/vnet/subnets/aci"
    )
    fake.subnets[subnet.lower()] = [f"{CI}/containerGroups"]
    identity = (
        f"/subscriptions/{fake.subscription_id}/resourceGroups/rg-flows/providers"
        "/Microsoft.ManagedIdentity/userAssignedIdentities/acr-pull"
    )
    pool = {
        "image_registry": {"registry_url": "acme.azurecr.io", "identity": identity},
        "subnet_ids": [subnet],
    }
    creds = credentials(fake, client_secret=fake.client_secret)
    launcher = AciLauncher(environ=environ(fake), retry_policy=FAST)
    try:
        done = make_job(fake, tmp_path, pool=pool, creds=creds)
        infrastructure_id = launcher.submit(done)
        assert poll_until_terminal(launcher, done, infrastructure_id).state is RunState.COMPLETED
        assert launcher.find(done) is None  # deleted after the run: looked for by listing
        assert "hello from aci" in launcher.logs(done, infrastructure_id).text

        fake.outcome = Outcome(running_polls=KEEP_RUNNING)
        kept = make_job(fake, tmp_path, pool={**pool, "keep_container_group": True}, creds=creds)
        launcher.cancel(kept, launcher.submit(kept))
        cancelled = make_job(fake, tmp_path, pool=pool, creds=creds)
        other = launcher.submit(cancelled)
        launcher.poll(cancelled, other)
        launcher.cancel(cancelled, other)
    finally:
        launcher.close()
    fake.acr.images.add("acme.azurecr.io/flows:1")
    job = make_job(fake, tmp_path, pool={**pool, "image": "acme.azurecr.io/flows:1"}, creds=creds)
    target = Target("aci-fake", "azure-container-instance:push", "aci", "hello/greet", job=job)
    results = run_preflight([target], environ={**environ(fake), ACR_ENDPOINT_ENV: fake.url})
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    routes = {r.route for r in fake.requests}
    assert routes >= {"put_group", "delete_group", "stop_group", "logs", "operation_status", "list_groups"}
    assert {"get_subnet", "acr_manifest"} <= routes


@pytest.fixture
def fake(tmp_path: Path):
    groups = {"rg-flows": "westeurope", "rg-net": "westeurope"}
    with AciFake.running(tmp_path / "fake", resource_groups=groups) as server:
        yield server


def test_the_role_covers_every_request_of_a_full_run(fake, tmp_path) -> None:
    full_run(fake, tmp_path)
    role = json.loads(ROLE.read_text())

    missing = {(r.method, r.path, a) for r in fake.requests for a in needs(r) if not allowed(role, a)}
    assert not missing, f"not allowed by {ROLE.name}: {sorted(missing)}"


def test_the_role_grants_nothing_the_launcher_does_not_use(fake, tmp_path) -> None:
    full_run(fake, tmp_path)
    role = json.loads(ROLE.read_text())

    used = {a.lower() for r in fake.requests for a in needs(r)}
    granted = {a.lower() for a in role["Actions"]}
    assert granted == used, f"granted but unused: {granted - used}; used but not granted: {used - granted}"
    assert role["DataActions"] == [] and role["IsCustom"] is True


def test_every_route_of_the_fake_has_an_action() -> None:
    from tests.fakes.aci import ROUTES

    assert {(method, name) for method, name, _ in ROUTES if name not in IDENTITY_ROUTES} == set(ACTION)
