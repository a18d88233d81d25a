"""Properties of the pure diff engine, the plan codec and the renderers (hypothesis)."""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import apply as applying
from reconciler import plan
from reconciler.desired import Desired, RuleKind, RunRule, SourceInfo
from reconciler.objects import Address, Kind, LiveState, Resource, Secret, StoredObject
from reconciler.plan import Action
from reconciler.state import MemoryStore
from tests.strategies import word

NAMES = word(string.ascii_lowercase, string.ascii_lowercase + string.digits + "-", 6)
SECRETS = st.builds(
    Secret,
    template=st.sampled_from(["{{ $API_TOKEN }}", "{{ $DB_PASSWORD }}", "Bearer {{ $TOKEN }}"]),
    fingerprint=st.binary(min_size=32, max_size=32).map(lambda digest: "hmac-sha256:" + digest.hex()),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=8), SECRETS)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(NAMES, inner, max_size=3)),
    max_leaves=10,
)
BODIES = st.dictionaries(NAMES, VALUES, min_size=1, max_size=5)
ADDRESSES = st.builds(Address, st.sampled_from(list(Kind)), NAMES)


@st.composite
def resource_sets(draw: st.DrawFn) -> dict[Address, Resource]:
    addresses = draw(st.sets(ADDRESSES, max_size=8))
    out = {}
    for address in addresses:
        body = draw(BODIES)
        if address.kind is Kind.WORK_POOL:
            body["type"] = draw(st.sampled_from(["process", "ecs:push"]))
        out[address] = Resource(address, body)
    return out


def desired_of(resources: dict[Address, Resource], *, apply_rule: bool = False) -> Desired:
    rules = {a: (RunRule(RuleKind.APPLY),) for a in resources if a.kind is Kind.DEPLOYMENT and apply_rule}
    return Desired(
        project="p",
        source=SourceInfo(project_dir=".", file="prefect.yaml"),
        resources=resources,
        run_rules=rules,
    )


def live_of(resources: dict[Address, Resource]) -> LiveState:
    objects = {a: StoredObject(r, 1, datetime.now(UTC)) for a, r in resources.items()}
    return LiveState(url="memory://", serial=len(objects), objects=objects)


@settings(max_examples=200, deadline=None)
@given(resource_sets())
def test_a_state_equal_to_the_file_plans_no_changes(resources: dict[Address, Resource]) -> None:
    result = plan.diff(desired_of(resources), live_of(resources), prune=True)
    assert result.changes == ()
    assert result.summary["no-op"] == len(resources)
    assert not result.has_changes


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(resource_sets(), resource_sets(), st.booleans())
def test_applying_a_plan_converges(desired: dict, live: dict, prune: bool) -> None:
    store = MemoryStore(project="p")
    for resource in live.values():
        store.write(resource, expected_version=None)
    first = plan.diff(desired_of(desired), store.read_all(), prune=prune)
    for change in first.changes:
        if change.address not in live:
            assert change.action is Action.CREATE
        elif change.address not in desired:
            assert change.action is (Action.DELETE if prune else Action.ORPHANED)
        else:
            assert change.action in (Action.UPDATE, Action.REPLACE)
    applying.execute(first, store, options=applying.ApplyOptions(allow_empty=True))
    again = plan.diff(desired_of(desired), store.read_all(), prune=prune)
    assert not again.has_changes
    remaining = {c.address for c in again.changes}
    assert remaining == (set() if prune else set(live) - set(desired))  # only orphans remain


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(resource_sets(), resource_sets(), st.booleans())
def test_plan_json_round_trips(desired: dict, live: dict, prune: bool) -> None:
    result = plan.diff(desired_of(desired, apply_rule=True), live_of(live), prune=prune)
    encoded = plan.encode_plan(result)
    text = json.dumps(encoded)
    decoded = plan.decode_plan(json.loads(text))
    assert plan.encode_plan(decoded) == encoded
    assert decoded.summary == result.summary


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(resource_sets(), resource_sets())
def test_renderers_never_show_a_fingerprint_or_a_secret_template(desired: dict, live: dict) -> None:
    result = plan.diff(desired_of(desired), live_of(live), prune=True)
    rendered = plan.render_text(result) + plan.render_markdown(result)
    for resources in (desired, live):
        for resource in resources.values():
            for secret in _secrets(resource.body):
                assert secret.fingerprint not in rendered
                assert secret.template not in rendered


@settings(max_examples=100, deadline=None)
@given(resource_sets(), resource_sets())
def test_changes_are_in_dependency_order(desired: dict, live: dict) -> None:
    result = plan.diff(desired_of(desired), live_of(live), prune=True)
    keys = [plan.apply_order(c) for c in result.changes]
    assert keys == sorted(keys)
    deletes = [c for c in result.changes if c.action is Action.DELETE]
    writes = [c for c in result.changes if c.action is not Action.DELETE]
    assert result.changes[: len(writes)] == tuple(writes)  # deletes come last
    ranks = [c.address.kind.rank for c in deletes]
    assert ranks == sorted(ranks, reverse=True)  # dependents first


def test_secret_rotation_is_sensitive_changed_without_values() -> None:
    address = Address.block("secret", "api")
    old = Resource(address, {"data": {"value": Secret("{{ $API_TOKEN }}", "hmac-sha256:" + "a" * 64)}})
    new = Resource(address, {"data": {"value": Secret("{{ $API_TOKEN }}", "hmac-sha256:" + "b" * 64)}})
    result = plan.diff(desired_of({address: new}), live_of({address: old}))
    (change,) = result.changes
    assert change.action is Action.UPDATE
    assert change.fields == (plan.FieldChange("data.value", sensitive=True),)
    assert "data.value = (sensitive, changed)" in plan.render_text(result)
    encoded = plan.encode_plan(result)["changes"][0]["fields"][0]
    assert encoded == {"path": "data.value", "sensitive": True, "changed": True}


def test_pool_type_change_is_replace_and_apply_changed_rule_requests_a_run() -> None:
    pool = Address.pool("p")
    dep = Address.deployment("f", "d")
    live = {pool: Resource(pool, {"type": "process"}), dep: Resource(dep, {"x": 1})}
    desired = {pool: Resource(pool, {"type": "ecs:push"}), dep: Resource(dep, {"x": 2})}
    result = plan.diff(desired_of(desired, apply_rule=True), live_of(live))
    actions = {c.address: c.action for c in result.changes}
    assert actions == {pool: Action.REPLACE, dep: Action.UPDATE}
    assert [r.deployment for r in result.runs] == ["f/d"]


def _secrets(value: object) -> list[Secret]:
    if isinstance(value, Secret):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _secrets(v)]
    if isinstance(value, list):
        return [s for v in value for s in _secrets(v)]
    return []
