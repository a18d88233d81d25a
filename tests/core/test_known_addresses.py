"""What a file's references to objects it does not declare may point at (``apply.known_addresses``)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from reconciler import apply as applying
from reconciler.desired.desired import Desired, Reference, SourceInfo
from reconciler.objects import Address, Claim, LiveState, Resource, StoredObject

POOL = Address.pool("shared")
OTHER_DEPLOYMENT = Address.deployment("etl", "nightly")
SLACK = Address.block("slack-webhook", "ops")


class Claims:
    """A store that knows what exists outside the project (the part of KnowsClaims used here)."""

    url = "memory://"

    def __init__(self, existing: Collection[Address]) -> None:
        self.existing, self.asked = set(existing), []

    def claims(self, addresses: Collection[Address]) -> dict[Address, Claim]:
        self.asked.extend(addresses)
        return {a: Claim(a, owner="other") for a in addresses if a in self.existing}


def _desired(*references: Reference) -> Desired:
    return Desired(
        project="p",
        source=SourceInfo(str(Path.cwd()), "prefect.yaml"),
        resources={},
        external_references=references,
    )


def _live(*addresses: Address) -> LiveState:
    return LiveState("memory://", 1, {a: StoredObject(Resource(a, {}), 1) for a in addresses})


def test_an_automation_may_name_an_existing_object_of_another_project_or_the_ui() -> None:
    store = Claims({OTHER_DEPLOYMENT, SLACK})
    desired = _desired(
        Reference(OTHER_DEPLOYMENT, ("automations", 0, "actions", 0, "deployment")),
        Reference(SLACK, ("automations", 0, "actions", 1, "block")),
        Reference(Address.automation("missing"), ("automations", 0, "actions", 2, "automation")),
    )
    known = applying.known_addresses(desired, _live(), store)  # type: ignore[arg-type]
    assert {OTHER_DEPLOYMENT, SLACK} <= known
    assert desired.unresolved_references(known)[0].message.startswith("unknown automation 'missing'")


def test_a_pool_reference_must_still_be_this_projects() -> None:
    """The launcher and serve read a deployment's pool from the project's own state: another
    project's pool stays an unknown pool (the store is not even asked)."""
    store = Claims({POOL})
    desired = _desired(Reference(POOL, ("deployments", 0, "work_pool", "name")))
    known = applying.known_addresses(desired, _live(), store)  # type: ignore[arg-type]
    assert POOL not in known and store.asked == []


def test_every_known_pool_has_its_default_queue() -> None:
    known = applying.known_addresses(_desired(), _live(POOL), None)
    assert Address.work_queue("shared", "default") in known
    assert Address.work_queue("shared", "other") not in known
