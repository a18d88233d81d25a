"""The plan as a pull-request comment: reading order, risky changes, blast-radius graph, size limit."""

from __future__ import annotations

import re

from reconciler import plan as planning
from reconciler.objects import Address, Kind, Resource, Secret
from reconciler.plan.model import (
    Action,
    Change,
    FieldChange,
    GitSource,
    Plan,
    PlanSource,
    RunRequest,
    StateRef,
)
from reconciler.plan.render_markdown import (
    COMMENT_LIMIT,
    GRAPH_LIMIT,
    MarkdownOptions,
    markdown_table,
    risky_changes,
    size,
)

POOL = Address.pool("ecs-push")
BLOCK = Address.block("aws-credentials", "prod")
ETL = Address.deployment("etl", "daily")
OLD = Address.deployment("legacy", "gone")


def _plan(changes: list[Change], runs: tuple[RunRequest, ...] = ()) -> Plan:
    return Plan(
        project="acme",
        source=PlanSource(".", "prefect.yaml", GitSource("a" * 40, "feature/x", False)),
        state=StateRef("sqlite:///x", 3),
        changes=tuple(changes),
        unchanged=4,
        runs=runs,
    )


def _sample() -> Plan:
    pool = Resource(POOL, {"type": "process"}, depends_on=(BLOCK,))
    etl = Resource(ETL, {"name": "daily"}, depends_on=(POOL,))
    return _plan(
        [
            Change(
                BLOCK, Action.UPDATE, 2, (FieldChange("data.aws_secret_access_key", sensitive=True),), None
            ),
            Change(
                POOL,
                Action.REPLACE,
                1,
                (FieldChange("type", "ecs:push", "process"),),
                pool,
                reason="type changed: ecs:push -> process (a pool's type cannot change in place)",
            ),
            Change(
                ETL,
                Action.UPDATE,
                5,
                (
                    FieldChange("schedules.morning.cron", "0 6 * * *", None),
                    FieldChange("paused", False, True),
                    FieldChange("description", "a ``` fence", "b"),
                ),
                etl,
            ),
            Change(OLD, Action.DELETE, 1),
        ],
        runs=(RunRequest("etl/daily", "apply: changed"),),
    )


def test_reading_order_marker_verdict_risky_details_runs_graph() -> None:
    options = MarkdownOptions(
        marker="<!-- prefect-reconciler plan: . -->",
        extra_runs=(RunRequest("report/nightly", "push: flows/report/** matched flows/report/a.py"),),
        runs_title="Runs merging would launch",
    )
    text = planning.render_markdown(_sample(), options=options)
    assert text.startswith("<!-- prefect-reconciler plan: . -->\n")
    order = [
        "### Reconcile plan for `acme`: ⚠️ 4 objects to change, 4 risky",
        "Desired state at commit `aaaaaaaaaaaa` (`feature/x`)",
        "| create | update | replace | delete | no-op | orphaned |",
        "> [!WARNING]",
        "<details><summary>🟡 update <code>block.aws-credentials/prod</code>",
        "**Runs merging would launch**",
        "```mermaid",
    ]
    positions = [text.index(part) for part in order]
    assert positions == sorted(positions)
    for note in (
        "**deletes** `deployment.legacy/gone`",
        "**changes the type of** `work_pool.ecs-push`",
        "removes schedule `morning` of `deployment.etl/daily`",
        "pauses `deployment.etl/daily`",
    ):
        assert f"> - {note}" in text
    assert "- `etl/daily` (apply: changed)" in text and "- `report/nightly` (push: flows/report/**" in text
    assert "~ data.aws_secret_access_key = (sensitive, changed)" in text
    assert "````diff" in text  # a value holding ``` gets a longer fence


def test_mermaid_graph_has_changed_objects_dependency_edges_and_colours() -> None:
    lines = planning.render_markdown(_sample()).split("```mermaid\n", 1)[1].split("```", 1)[0].splitlines()
    nodes = dict(re.findall(r'^\s+(n\d+)\["[^"]*<br/>([^"]+)"\]', "\n".join(lines), re.M))
    ids = {address: node for node, address in nodes.items()}
    assert set(ids) == {str(BLOCK), str(POOL), str(ETL), str(OLD)}
    assert f"  {ids[str(BLOCK)]} --> {ids[str(POOL)]}" in lines  # dependency -> dependent
    assert f"  {ids[str(POOL)]} --> {ids[str(ETL)]}" in lines
    assert any(line.endswith(":::replace") and "work_pool.ecs-push" in line for line in lines)
    assert any(line.endswith(":::delete") and "legacy/gone" in line for line in lines)
    assert any(line.strip().startswith("classDef replace fill:") for line in lines)

    # an unchanged dependency appears, greyed; above the limit there is no graph at all
    only_etl = _plan([Change(ETL, Action.CREATE, None, (), Resource(ETL, {}, depends_on=(POOL,)))])
    assert ":::unchanged" in planning.render_markdown(only_etl)
    many = [
        Change(Address.deployment("f", f"d{i}"), Action.CREATE, None, (), None)
        for i in range(GRAPH_LIMIT + 1)
    ]
    assert "```mermaid" not in planning.render_markdown(_plan(many))
    assert "No changes" not in planning.render_markdown(_plan([]))
    assert ": no changes" in planning.render_markdown(_plan([]))


def test_the_limit_drops_whole_objects_and_says_where_the_rest_is() -> None:
    fields = tuple(FieldChange(f"parameters.p{j}", None, "v" * 150) for j in range(40))
    changes = [
        Change(Address(Kind.DEPLOYMENT, f"etl/d{i:03}"), Action.CREATE, None, fields, None)
        for i in range(120)
    ]
    options = MarkdownOptions(marker="<!-- m -->", limit=COMMENT_LIMIT, overflow="See the job summary.")
    text = planning.render_markdown(_plan(changes), options=options)
    assert size(text) <= COMMENT_LIMIT
    shown = text.count("<details><summary>")
    assert 0 < shown < 120
    note = f"_{120 - shown} more objects not shown: this comment is limited to 65,536 characters."
    assert f"{note} See the job summary._" in text
    assert text.count("<details>") == text.count("</details>")  # never cut inside an object
    assert text.count("```") % 2 == 0
    full = planning.render_markdown(_plan(changes))
    assert size(full) > COMMENT_LIMIT and full.count("<details><summary>") == 120


def test_secrets_never_reach_markdown() -> None:
    secret = Secret("{{ $API_TOKEN }}", "hmac-sha256:abc")
    block = Resource(BLOCK, {"data": {"aws_secret_access_key": secret}})
    change = Change(
        BLOCK, Action.CREATE, None, (FieldChange("data.aws_secret_access_key", sensitive=True),), block
    )
    text = planning.render_markdown(_plan([change]))
    assert "(sensitive)" in text and "hmac-sha256" not in text and "API_TOKEN" not in text


def test_user_strings_in_the_comment_are_escaped_where_they_stand() -> None:
    change = Change(
        Address.deployment("etl", "d"),
        Action.UPDATE,
        1,
        (FieldChange("description", "a", "</details> @here ```"),),
        None,
        reason="<b>bold</b> #4",
    )
    text = planning.render_markdown(_plan([change]), options=MarkdownOptions(marker="<!-- m -->"))
    assert "&lt;b&gt;bold&lt;/b&gt; #\u200b4" in text  # in the HTML summary: entities
    assert '+ description = "<\u200b/details> @\u200bhere ```"' in text  # in the diff: zero-width
    assert "````diff" in text and text.count("</details>") == text.count("<details")


def test_markdown_table_cells_cannot_add_columns_rows_or_markup() -> None:
    lines = markdown_table(
        ("run", "reason"), [("r1", "a | b\n| x | y |"), ("", "@team <img>"), ("p|q", "")], code=(0,)
    )
    assert lines[2] == "| `r1` | a &#124; b\\n&#124; x &#124; y &#124; |"
    assert lines[3] == "|  | @\u200bteam &lt;img&gt; |"
    assert lines[4] == "| `p\\|q` |  |"  # a | inside a code cell is escaped for the table
    assert len(lines) == 5 and all(line.count(" | ") == 1 for line in lines if line.startswith("| "))


def test_risky_notes_name_the_kind_that_is_paused_or_turned_off() -> None:
    """A paused queue is not a "pool"; disabling an automation or a global limit is worth a note."""
    queue = Address.work_queue("ecs-push", "critical")
    automation = Address.automation("rerun")
    limit = Address.concurrency_limit("db")
    plan = _plan(
        [
            Change(queue, Action.UPDATE, 1, (FieldChange("paused", False, True),), Resource(queue, {})),
            Change(
                automation, Action.UPDATE, 1, (FieldChange("enabled", True, False),), Resource(automation, {})
            ),
            Change(limit, Action.UPDATE, 1, (FieldChange("active", True, False),), Resource(limit, {})),
        ]
    )
    notes = risky_changes(plan)
    assert "pauses queue `work_queue.ecs-push/critical`" in notes
    assert "turns off `automation.rerun`" in notes
    assert "turns off `concurrency_limit.db`" in notes
