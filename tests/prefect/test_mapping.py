"""The pure parts of the Prefect store: mapping, overlays, secrets, inventory encoding. No server."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import pooltypes
from reconciler.objects import Secret
from reconciler.state.prefect import mapping, values
from reconciler.state.prefect import triggers as prefect_triggers
from reconciler.state.prefect.inventory import (
    ABSENT,
    Entry,
    Names,
    OverlayRecord,
    SecretRecord,
    Shard,
    apply_overlay,
    compute_overlay,
    digest,
    slug,
)

KEY = b"k" * 32


def _server_pool(body: dict[str, Any], template: Any) -> dict[str, Any]:
    """What the server answers after a create (it stores the template verbatim)."""
    return {
        "name": "p",
        "type": body["type"],
        "description": body["description"],
        "is_paused": body["paused"],
        "concurrency_limit": body["concurrency_limit"],
        "base_job_template": copy.deepcopy(template),
        "status": "NOT_READY",
    }


@pytest.mark.parametrize("pool_type", pooltypes.names())
def test_pool_bodies_round_trip_for_every_type(pool_type: str) -> None:
    variables = {"env": {"A": "1"}, "name": "job"}
    body = {
        "type": pool_type,
        "description": "d",
        "concurrency_limit": 3,
        "paused": False,
        "job_variables": variables,
        "base_job_template": None,
    }
    template, originals = mapping.pool_template("p", body, variables)
    assert originals is None and template["variables"]["properties"]["env"]["default"] == {"A": "1"}
    read = mapping.pool_body(_server_pool(body, template), names=tuple(variables), originals=None)
    assert read == body


def test_a_variable_set_to_its_default_reads_back_thanks_to_the_recorded_names() -> None:
    variables = {"launch_type": "FARGATE", "cluster": "prod"}  # FARGATE is the type's default
    body = {
        "type": "ecs:push",
        "description": None,
        "concurrency_limit": None,
        "paused": True,
        "job_variables": variables,
        "base_job_template": None,
    }
    template, _ = mapping.pool_template("p", body, variables)
    server = _server_pool(body, template)
    assert mapping.pool_body(server, names=("launch_type", "cluster"), originals=None) == body
    unmanaged = mapping.pool_body(server, names=None, originals=None)  # a pool we never wrote
    assert unmanaged["job_variables"] == {"cluster": "prod"} and unmanaged["base_job_template"] is None


def test_a_pools_own_template_round_trips_with_its_replaced_defaults() -> None:
    own = {
        "job_configuration": {"command": "{{ command }}", "working_dir": "{{ working_dir }}"},
        "variables": {
            "type": "object",
            "properties": {"command": {"type": "string", "default": "x"}, "working_dir": {"type": "string"}},
        },
    }
    body = {
        "type": "process",
        "description": None,
        "concurrency_limit": None,
        "paused": False,
        "job_variables": {"command": "y", "working_dir": "/srv"},
        "base_job_template": own,
    }
    template, originals = mapping.pool_template("p", body, body["job_variables"])
    assert originals == {"command": "x", "working_dir": ABSENT}
    assert template["variables"]["properties"]["working_dir"]["default"] == "/srv"
    assert (
        mapping.pool_body(_server_pool(body, template), names=("command", "working_dir"), originals=originals)
        == body
    )
    with pytest.raises(Exception, match="not declared"):
        mapping.pool_template("p", body, {"unknown": 1})


def test_server_schedules_read_back_in_canonical_form() -> None:
    server = [
        {
            "created": "1",
            "slug": "every",
            "active": True,
            "parameters": {},
            "schedule": {"interval": 60.0, "anchor_date": "2026-01-01T00:00:00Z", "timezone": "UTC"},
        },
        {
            "created": "2",
            "slug": "weekly",
            "active": False,
            "parameters": {"a": 1},
            "schedule": {"rrule": "DTSTART:20200101T000000\nFREQ=WEEKLY", "timezone": "UTC"},
        },
        {
            "created": "3",
            "slug": None,
            "active": True,
            "parameters": {},
            "schedule": {"cron": "0 6 * * *", "timezone": None, "day_or": True},
        },
        {
            "created": "4",
            "slug": None,
            "active": True,
            "parameters": {},
            "schedule": {"interval": 0.5, "timezone": "UTC"},
        },
    ]
    assert mapping.schedules_body(server) == {
        "every": {
            "timezone": "UTC",
            "interval": 60,
            "anchor_date": "2026-01-01T00:00:00+00:00",
            "active": True,
            "parameters": {},
        },
        "weekly": {"timezone": "UTC", "rrule": "FREQ=WEEKLY", "active": False, "parameters": {"a": 1}},
        "cron-1": {"timezone": "UTC", "cron": "0 6 * * *", "day_or": True, "active": True, "parameters": {}},
        "interval-2": {
            "timezone": "UTC",
            "interval": 0.5,
            "anchor_date": None,
            "active": True,
            "parameters": {},
        },
    }
    wanted = {
        "timezone": "UTC",
        "interval": 60,
        "anchor_date": None,
        "active": True,
        "parameters": {},
        "replaces": "old",
    }
    assert mapping.schedule_matches(wanted, server[0])  # an anchor the server filled in is no change
    assert not mapping.schedule_matches({**wanted, "interval": 120}, server[0])


def test_deployment_projection_only_patches_what_differs() -> None:
    body = {
        "flow_name": "etl",
        "name": "d",
        "entrypoint": "f.py:etl",
        "description": None,
        "version": "1",
        "tags": ["a"],
        "parameters": {"x": 1},
        "enforce_parameter_schema": True,
        "parameter_openapi_schema": {"title": "Parameters", "type": "object", "properties": {}},
        "work_pool": {"name": "p", "work_queue_name": "default", "job_variables": {}},
        "schedules": {},
        "paused": False,
        "concurrency_limit": {"limit": 2, "collision_strategy": "ENQUEUE", "grace_period_seconds": None},
        "pull_steps": None,
        "triggers": [],
    }
    marker = "managed-by:prefect-reconciler/x"
    server = {
        "name": "d",
        **mapping.deployment_fields(body, marker=marker),
        "concurrency_limit": None,  # the server moves the limit to the global concurrency limit
        "global_concurrency_limit": {"limit": 2},
        "schedules": [],
        "labels": {"prefect.flow.id": "f"},
    }
    assert (
        mapping.changed_fields(
            mapping.deployment_fields(body, marker=marker), mapping.deployment_projection(server)
        )
        == {}
    )
    assert mapping.deployment_body(server, flow_name="etl", marker=marker, triggers=[]) == body
    changed = {**body, "parameters": {"x": 2}}
    assert mapping.changed_fields(
        mapping.deployment_fields(changed, marker=marker), mapping.deployment_projection(server)
    ) == {"parameters": {"x": 2}}


def test_triggers_become_automations_as_prefect_deploy_makes_them() -> None:
    [automation] = prefect_triggers.automation_payloads(
        [{"expect": ["prefect.flow-run.Completed"], "parameters": {"a": 1}}],
        deployment_name="d",
        deployment_id="id-1",
        marker="m",
    )
    assert automation["name"] == "d__automation_1" and automation["tags"] == ["m"]
    assert automation["trigger"]["type"] == "event" and automation["trigger"]["posture"] == "Reactive"
    assert automation["actions"][0] == {
        "type": "run-deployment",
        "source": "selected",
        "deployment_id": "id-1",
        "parameters": {"a": 1},
        "job_variables": None,
        "schedule_after": 0,
    }
    server = {**automation, "id": "a", "created": "1"}
    assert prefect_triggers.owned_automations(
        [server, {**server, "tags": []}], deployment_id="id-1", marker="m"
    ) == [server]


def test_secrets_go_out_as_values_and_come_back_as_secrets() -> None:
    secret = Secret("Bearer {{ $TOKEN }}", "hmac-sha256:abc")
    body = {"data": {"token": secret, "plain": 1}}
    raw, found = values.resolve(body, {"TOKEN": "t0k"}, what="x")
    assert raw == {"data": {"token": "Bearer t0k", "plain": 1}} and found == ["Bearer t0k"]
    records = values.secret_records(KEY, body, raw)
    assert values.restore_secrets(KEY, raw, records) == body
    rotated = values.restore_secrets(KEY, {"data": {"token": "Bearer other", "plain": 1}}, records)
    assert rotated["data"]["token"].template == secret.template and rotated["data"]["token"] != secret
    with pytest.raises(Exception, match="TOKEN is not set"):
        values.resolve(body, {}, what="x")


def test_block_references_become_ids_and_back() -> None:
    variables = {"aws_credentials": "{{ prefect.blocks.aws-credentials.prod }}", "cluster": "c"}
    sent = values.references_to_ids(variables, frozenset({"aws_credentials"}), lambda t, n: f"{t}:{n}")
    assert sent == {
        "aws_credentials": {"$ref": {"block_document_id": "aws-credentials:prod"}},
        "cluster": "c",
    }
    assert values.ids_to_references(sent, {"aws-credentials:prod": ("aws-credentials", "prod")}) == variables
    assert values.referenced_ids(sent) == {"aws-credentials:prod"}


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(
    ours=st.dictionaries(st.text(max_size=4), _JSON, max_size=4),
    theirs=st.dictionaries(st.text(max_size=4), _JSON, max_size=4),
)
def test_an_overlay_turns_the_servers_view_into_ours(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    overlay = compute_overlay(KEY, ours, theirs)
    assert apply_overlay(KEY, theirs, overlay) == ours
    assert compute_overlay(KEY, ours, ours) == ()


def test_an_overlay_steps_aside_when_the_server_changed_since() -> None:
    overlay = compute_overlay(KEY, {"a": {"anchor": None}}, {"a": {"anchor": "2026-01-01"}})
    assert apply_overlay(KEY, {"a": {"anchor": "2026-01-01"}}, overlay) == {"a": {"anchor": None}}
    assert apply_overlay(KEY, {"a": {"anchor": "2030-01-01"}}, overlay) == {"a": {"anchor": "2030-01-01"}}


def test_inventory_entries_and_names_encode() -> None:
    entry = Entry(
        version=3,
        hash=digest(KEY, {"x": 1}),
        depends=("work_pool.p",),
        secrets=(SecretRecord(("data", "value"), "{{ $X }}", "fp", "sh"),),
        overlay=(OverlayRecord(("schedules", "s", "anchor_date"), None, "h"),),
        names=("env",),
        originals={"env": ABSENT},
        triggers=True,
    )
    assert Entry.decode(entry.encode()) == entry
    shard = Shard(name="s", writes=2, entries={"work_pool.p": entry})
    assert Shard.from_variable({"name": "s", "id": "i", "value": shard.value()}).entries == shard.entries
    assert slug("Acme ETL") != slug("acme-etl") and slug("acme-etl") == "acme-etl"
    assert Names("Acme ETL").marker == "managed-by:prefect-reconciler/Acme ETL"
    assert Names("a-b").history_key == "reconciler-a-b-history"
    assert Names("a_b").history_key != Names("a-b").history_key
