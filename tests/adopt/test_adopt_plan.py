"""The plan is honest about objects that already exist: adopt (never create) what no project manages,
refuse what another project manages (naming it), offer a move for a renamed project; apply takes over
only with consent, and adopting keeps what the file leaves unset."""

from __future__ import annotations

import json

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import apply as applying
from reconciler import plan
from reconciler.desired import Desired, SourceInfo
from reconciler.objects import (
    Address,
    Claim,
    Kind,
    LiveState,
    Resource,
    StoredObject,
    is_unset,
    keep_unset,
)
from reconciler.plan import Action
from reconciler.plan.diff import OwnedElsewhere
from reconciler.state import MemoryStore
from tests.helpers import REPO

POOL = Address.pool("local")
DEPLOYMENT = Address.deployment("hello", "greet")
FILE_POOL = {"type": "process", "description": None, "concurrency_limit": None, "job_variables": {}}
FILE_DEPLOYMENT = {
    "flow_name": "hello",
    "name": "greet",
    "entrypoint": "flows/hello.py:hello",
    "version": None,
    "pull_steps": None,
    "tags": [],
    "parameters": {"name": "file"},
    "paused": False,
    "work_pool": {"name": "local", "work_queue_name": "default", "job_variables": {}},
}
EXISTING_DEPLOYMENT = {
    **FILE_DEPLOYMENT,
    "version": "abc123",
    "pull_steps": [{"prefect.deployments.steps.set_working_directory": {"directory": "/src"}}],
    "tags": ["team-a"],
    "parameters": {"name": "ui", "times": 2},
    "work_pool": {"name": "local", "work_queue_name": "default", "job_variables": {"env": {"A": "1"}}},
}


def desired(project: str = "proj", **bodies: dict) -> Desired:
    resources = {
        POOL: Resource(POOL, bodies.get("pool", FILE_POOL)),
        DEPLOYMENT: Resource(DEPLOYMENT, bodies.get("deployment", FILE_DEPLOYMENT), (POOL,)),
    }
    return Desired(project=project, source=SourceInfo(".", "prefect.yaml"), resources=resources)


def test_unmanaged_objects_are_adopted_not_created_with_the_diff_from_what_exists() -> None:
    store = MemoryStore("proj")
    store.space.unmanaged[POOL] = {**FILE_POOL, "concurrency_limit": 4}
    store.space.unmanaged[DEPLOYMENT] = EXISTING_DEPLOYMENT
    result = applying.plan_for(desired(), store.read_all(), store=store)
    assert {c.address: c.action for c in result.changes} == {POOL: Action.ADOPT, DEPLOYMENT: Action.ADOPT}
    assert result.summary["create"] == 0 and result.summary["adopt"] == 2
    deployment = next(c for c in result.changes if c.address == DEPLOYMENT)
    # only what the file declares differs; pull steps, version, tags, job variables are kept
    assert [(f.path, f.before, f.after) for f in deployment.fields] == [("parameters.name", "ui", "file")]
    pool = next(c for c in result.changes if c.address == POOL)
    assert pool.fields == ()  # the pool's limit is not declared: kept


def test_apply_refuses_adoption_without_consent_naming_objects_and_flag() -> None:
    store = MemoryStore("proj")
    store.space.unmanaged[DEPLOYMENT] = EXISTING_DEPLOYMENT
    result = applying.plan_for(desired(), store.read_all(), store=store)
    with pytest.raises(applying.AdoptionRefused) as refused:
        applying.check_adoption(result, allow=False)
    text = str(refused.value)
    assert "deployment.hello/greet" in text and "--adopt" in text and "nothing was applied" in text
    assert "work_pool.local" not in text  # the pool is a plain create: not an adoption
    applying.check_adoption(result, allow=True)
    applied = applying.execute(result, store)
    assert applied.describe() == "1 created, 1 adopted"
    assert DEPLOYMENT not in store.space.unmanaged
    again = applying.plan_for(desired(), store.read_all(), store=store)
    assert not again.has_changes and again.summary["no-op"] == 2


def test_an_object_of_another_project_is_an_error_naming_that_project() -> None:
    other = MemoryStore("billing")
    applying.execute(applying.plan_for(desired("billing"), other.read_all(), store=other), other)
    mine = other.sibling("proj")
    applying.execute(
        applying.plan_for(
            Desired(
                "proj",
                SourceInfo(".", "prefect.yaml"),
                {Address.pool("x"): Resource(Address.pool("x"), FILE_POOL)},
            ),
            mine.read_all(),
            store=mine,
        ),
        mine,
    )
    with pytest.raises(OwnedElsewhere) as owned:
        applying.plan_for(desired("proj"), mine.read_all(), store=mine)
    text = str(owned.value)
    assert "managed by project 'billing'" in text and "work_pool.local" in text
    assert "mv-project" not in text  # proj manages objects of its own: not a rename


def test_a_renamed_project_is_offered_a_move_and_the_move_converges() -> None:
    old = MemoryStore("old-name")
    applying.execute(applying.plan_for(desired("old-name"), old.read_all(), store=old), old)
    new = old.sibling("new-name")
    with pytest.raises(OwnedElsewhere) as owned:
        applying.plan_for(desired("new-name"), new.read_all(), store=new)
    assert "reconcile state mv-project old-name new-name" in str(owned.value)
    assert new.move_project("old-name", "new-name") == 2
    after = applying.plan_for(desired("new-name"), new.read_all(), store=new)
    assert not after.has_changes and after.summary["no-op"] == 2
    assert new.projects() == {"new-name": 2}


def test_an_adopt_plan_round_trips_and_is_schema_valid() -> None:
    store = MemoryStore("proj")
    store.space.unmanaged[DEPLOYMENT] = EXISTING_DEPLOYMENT
    result = applying.plan_for(desired(), store.read_all(), store=store)
    doc = plan.encode_plan(result)
    schema = json.loads((REPO / "schemas" / "plan.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert plan.decode_plan(json.loads(json.dumps(doc))).changes == result.changes
    assert "to adopt" in plan.render_text(result) and "<= deployment.hello/greet" in plan.render_text(result)
    assert "adopt" in plan.render_markdown(result)


def test_a_plan_without_adoption_keeps_its_old_summary_keys() -> None:
    store = MemoryStore("proj")
    doc = plan.encode_plan(applying.plan_for(desired(), store.read_all(), store=store))
    assert set(doc["summary"]) == {"create", "update", "replace", "delete", "no-op", "orphaned"}


JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=3)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(existing=JSON, wanted=JSON)
def test_keep_unset_never_drops_what_exists_and_keeps_every_declared_leaf(existing, wanted) -> None:
    merged = keep_unset(existing, wanted)
    if not is_unset(wanted) and not (isinstance(wanted, dict) and isinstance(existing, dict)):
        assert merged == wanted  # a declared leaf wins
    if isinstance(wanted, dict) and isinstance(existing, dict) and wanted:
        assert set(merged) == set(wanted) | set(existing)  # nothing that exists is dropped
    if is_unset(wanted) and existing is not None:
        assert merged == existing
    assert keep_unset(merged, wanted) == merged  # adopting twice changes nothing more


ADDRESSES = st.builds(
    Address, st.sampled_from([Kind.BLOCK, Kind.WORK_POOL, Kind.DEPLOYMENT]), st.sampled_from("abcdef")
)
BODIES = st.dictionaries(st.sampled_from(["x", "y", "z"]), JSON, max_size=3)
OWNERS = st.one_of(st.none(), st.sampled_from(["other", "third"]))


@settings(max_examples=200, deadline=None)
@given(
    wanted=st.dictionaries(ADDRESSES, BODIES, max_size=6),
    managed=st.sets(ADDRESSES, max_size=3),
    existing=st.dictionaries(ADDRESSES, st.tuples(OWNERS, BODIES), max_size=6),
)
def test_the_plan_never_creates_what_exists_and_never_takes_another_projects_object(
    wanted: dict, managed: set, existing: dict
) -> None:
    resources = {a: Resource(a, {"type": "process", **b}) for a, b in wanted.items()}
    desired_state = Desired("proj", SourceInfo(".", "prefect.yaml"), resources)
    live = LiveState(
        "memory://",
        len(managed),
        {a: StoredObject(Resource(a, {"type": "process"}), 1) for a in managed},
    )
    claims = {a: Claim(a, owner, None if owner else body) for a, (owner, body) in existing.items()}
    foreign = {a for a, c in claims.items() if c.owner and a in resources and a not in managed}
    if foreign:
        with pytest.raises(OwnedElsewhere) as owned:
            plan.diff(desired_state, live, claims=claims)
        assert all(str(a) in str(owned.value) for a in sorted(foreign)[:5] if len(foreign) <= 5)
        return
    result = plan.diff(desired_state, live, claims=claims)
    actions = {c.address: c.action for c in result.changes}
    for address in resources.keys() - managed:
        expected = Action.ADOPT if address in claims else Action.CREATE
        assert actions[address] is expected
    for change in result.adopts:
        assert change.version is None and change.after == resources[change.address]
