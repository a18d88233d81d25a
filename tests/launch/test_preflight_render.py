"""The plan's preflight section: JSON (schema-valid, round-trips), text and PR-comment rendering,
and plans made without ``--preflight`` unchanged."""

from __future__ import annotations

import dataclasses
import json

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.desired import SourceInfo
from reconciler.plan import decode_plan, encode_plan, render_markdown, render_text
from reconciler.plan.model import Plan, PreflightResult, StateRef
from reconciler.plan.render_preflight import ordered
from tests.helpers import REPO

SCHEMA = json.loads((REPO / "schemas" / "plan.schema.json").read_text())
FINDINGS = (
    PreflightResult(
        "ecs-push", "aws_credentials", "credentials", True, "authenticated as arn:aws:iam::1:user/ci"
    ),
    PreflightResult("ecs-push", "image", "image-exists", False, "acme/flows:9 is not in ECR | ImageNotFound"),
    PreflightResult(
        "ecs-push", "memory", "fargate-size", False, "memory 8192 with cpu 512", deployment="etl/big"
    ),
    PreflightResult("aci", "image", "image-exists", True, "not looked up", skipped=True),
)


def plan(preflight: tuple[PreflightResult, ...] | None) -> Plan:
    return Plan(
        project="demo",
        source=SourceInfo(project_dir=".", file="prefect.yaml", git=None),
        state=StateRef(url="sqlite:///x.db", serial=3),
        changes=(),
        unchanged=2,
        preflight=preflight,
    )


def test_the_section_is_schema_valid_and_round_trips() -> None:
    doc = encode_plan(plan(FINDINGS))

    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert doc["preflight"][2] == {
        "pool": "ecs-push",
        "deployment": "etl/big",
        "field": "memory",
        "check": "fargate-size",
        "ok": False,
        "skipped": False,
        "message": "memory 8192 with cpu 512",
    }
    assert decode_plan(json.loads(json.dumps(doc))).preflight == FINDINGS


def test_a_plan_without_preflight_has_no_section_anywhere() -> None:
    doc = encode_plan(plan(None))

    assert "preflight" not in doc
    assert decode_plan(doc).preflight is None
    assert "Preflight" not in render_text(plan(None))
    assert "Preflight" not in render_markdown(plan(None))


def test_a_malformed_section_is_refused_by_the_schema() -> None:
    doc = encode_plan(plan(FINDINGS))
    del doc["preflight"][0]["field"]

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(doc)


def test_text_lists_failures_first_with_pool_deployment_and_field() -> None:
    text = render_text(plan(FINDINGS))
    lines = text[text.index("Preflight (") :].splitlines()

    assert lines[1].startswith("  FAIL ecs-push image [image-exists]: acme/flows:9 is not in ECR")
    assert lines[2].startswith("  FAIL ecs-push (etl/big) memory [fargate-size]")
    assert lines[3].startswith("  ok   ecs-push aws_credentials")
    assert lines[4].startswith("  skip aci image")
    assert lines[-1] == "Preflight: 2 failed, 1 passed, 1 not checkable."


def test_markdown_is_a_table_whose_cells_cannot_break_it() -> None:
    markdown = render_markdown(plan(FINDINGS))

    assert "| | Pool | Field | Check | Finding |" in markdown
    row = next(line for line in markdown.splitlines() if "acme/flows:9" in line)
    assert row.startswith("| ❌ | ecs-push | image | image-exists |")
    assert "\\| ImageNotFound" in row and row.count(" | ") == 4


def test_an_empty_section_says_there_was_nothing_to_check() -> None:
    assert "no push pool to check" in render_text(plan(()))
    assert encode_plan(plan(()))["preflight"] == []


@given(
    st.lists(
        st.builds(
            PreflightResult,
            pool=st.sampled_from(["a", "b"]),
            field=st.sampled_from(["image", "cpu"]),
            check=st.just("c"),
            ok=st.booleans(),
            message=st.text(max_size=20),
            deployment=st.none() | st.just("f/d"),
            skipped=st.booleans(),
        ),
        max_size=8,
    )
)
def test_any_section_round_trips_and_orders_failures_first(findings: list[PreflightResult]) -> None:
    findings = [dataclasses.replace(f, skipped=f.skipped and f.ok) for f in findings]
    doc = encode_plan(plan(tuple(findings)))

    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert decode_plan(doc).preflight == tuple(findings)
    ranks = [(r.ok, r.skipped) for r in ordered(findings)]
    assert ranks == sorted(ranks)
