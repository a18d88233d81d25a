"""``automations:``: Prefect's automation shape with address references, its canonical body, located
errors, refusals (raw ids, sensitive placeholders, loops Prefect's server refuses), and the mapping
to and from Prefect's JSON checked against Prefect's own server models (no server needed)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from reconciler.desired import automation_actions, automations
from reconciler.objects import Address, Kind, Resource
from reconciler.state.prefect import automations as mapping
from tests.desired.automations_support import examples, load_automations

# -- the canonical body ----------------------------------------------------------------------------


def test_a_body_has_every_server_default_explicit_and_names_objects_by_address() -> None:
    loaded = examples()
    resource = loaded.resources[Address.automation("rerun-after-extract")]
    assert resource.body == {
        "name": "rerun-after-extract",
        "description": "Run the load once an extract completes",
        "enabled": True,
        "tags": ["etl", "gitops"],
        "trigger": {
            "type": "event",
            "match": {},
            "match_related": {"prefect.resource.role": "flow", "prefect.resource.id": "prefect.flow.extract"},
            "after": [],
            "expect": ["prefect.flow-run.Completed"],
            "for_each": ["prefect.resource.id"],
            "posture": "Reactive",
            "threshold": 1,
            "within": 0.0,
        },
        "actions": [
            {
                "type": "run-deployment",
                "source": "selected",
                "deployment": "deployment.etl/etl-daily",
                "parameters": {"rows": 1000, "day": "{{ event.occurred }}"},
                "job_variables": {"cpu": 512},
                "schedule_after": 60.0,
            },
            {"type": "pause-deployment", "source": "selected", "deployment": "deployment.etl/etl-daily"},
            {"type": "resume-deployment", "source": "inferred", "deployment": None},
        ],
        "actions_on_trigger": [],
        "actions_on_resolve": [],
    }
    assert resource.depends_on == (Address.deployment("etl", "etl-daily"),)


def test_defaults_prefect_fills_in_are_explicit() -> None:
    bodies = {a.name: r.body for a, r in examples().resources.items()}
    quiet = bodies["pool-went-quiet"]
    assert quiet["actions_on_trigger"][0]["subject"] == "Prefect automated notification"
    assert quiet["actions_on_resolve"][0]["payload"] == '{\n  "text": "resolved"\n}'  # as the server keeps it
    compound = bodies["any-two-signals"]["trigger"]
    assert compound["within"] is None and compound["triggers"][1]["within"] is None
    assert bodies["slow-runs"]["trigger"]["metric"]["firing_for"] == 300.0
    proactive = load_automations(
        "automations:\n  - {name: a, trigger: {posture: Proactive, expect: [x]}, actions: []}\n"
    ).resources[Address.automation("a")]
    assert proactive.body["trigger"]["within"] == 10.0  # Prefect raises a Proactive window of 0 to 10 s


def test_the_examples_cover_every_trigger_kind_and_action_type() -> None:
    bodies = [r.body for r in examples().resources.values()]
    kinds: set[str] = set()

    def walk(trigger: dict[str, Any]) -> None:
        kinds.add(trigger["type"])
        for child in trigger.get("triggers", []):
            walk(child)

    for body in bodies:
        walk(body["trigger"])
    types = {a["type"] for b in bodies for key in automations.ACTION_LISTS for a in b[key]}
    assert kinds == {"event", "metric", "compound", "sequence"}
    assert types == set(automation_actions.ACTION_MODELS)


def test_undeclared_objects_become_references_and_declared_ones_only_dependencies() -> None:
    pool = Resource(Address.pool("ecs-push"), {})
    text = "automations:\n  - {name: a, trigger: {}, actions: [{type: pause-work-pool, work_pool: ecs-push}, {type: pause-deployment, deployment: f/d}]}\n"
    loaded = load_automations(text, declared=[pool])
    assert loaded.errors == []
    assert [(r.target, r.path) for r in loaded.references] == [
        (Address.deployment("f", "d"), ("automations", 0, "actions", 1, "deployment"))
    ]
    assert loaded.resources[Address.automation("a")].depends_on == (
        Address.deployment("f", "d"),
        Address.pool("ecs-push"),
    )


def test_a_sandbox_rename_follows_the_addresses_inside_the_body() -> None:
    body = examples().resources[Address.automation("rerun-after-extract")].body
    moved = {Address.deployment("etl", "etl-daily"): Address.deployment("etl", "pr-7-etl-daily")}
    renamed = automations.rename_references(body, moved)
    assert renamed["actions"][0]["deployment"] == "deployment.etl/pr-7-etl-daily"
    assert automations.depends_on(renamed) == (Address.deployment("etl", "pr-7-etl-daily"),)
    assert body["actions"][0]["deployment"] == "deployment.etl/etl-daily"  # the input is not changed


# -- located errors ------------------------------------------------------------------------------------


def _item(trigger: str = "{}", actions: str = "[]", extra: str = "") -> str:
    return f"automations:\n  - name: a\n    trigger: {trigger}\n    actions: {actions}\n{extra}"


ERRORS = [
    (_item(trigger="{type: webhook}"), "3:21: automations[0].trigger.type: unknown trigger type 'webhook' (known: event, metric, compound, sequence)"),
    (_item(trigger="{within: -1}"), "3:23: automations[0].trigger.within: within may not be negative"),
    (_item(trigger="{within: soon}"), "3:23: automations[0].trigger.within: a duration is a number of seconds or ISO 8601 text such as PT5M"),
    (_item(trigger="{posture: Proactive, within: 5}"), "3:14: automations[0].trigger: within for a Proactive trigger must be at least 10 seconds"),
    (_item(trigger="{posture: Sometimes}"), "3:24: automations[0].trigger.posture: Input should be 'Reactive' or 'Proactive'"),
    (_item(trigger="{whitin: 5}"), "3:15: automations[0].trigger.whitin: unknown key 'whitin'"),
    (_item(trigger="{match: {prefect.resource.id: 3}}"), "3:22: automations[0].trigger.match: label 'prefect.resource.id': give a pattern (text) or a list of patterns"),
    (_item(trigger="{require: 3, triggers: [{}, {}]}"), "3:14: automations[0].trigger: require must be between 1 and the number of triggers (2)"),
    (_item(trigger="{type: sequence, triggers: []}"), "3:31: automations[0].trigger.triggers: List should have at least 1 item after validation, not 0"),
    (_item(trigger="{type: metric, metric: {name: lateness, threshold: 1, operator: '>', range: 60}}"), "3:90: automations[0].trigger.metric.range: must be at least 300 seconds (5 minutes)"),
    (_item(trigger="[]"), "3:5: automations[0].trigger: a trigger is a mapping with a type: event, metric, compound or sequence"),
    (_item(actions="[{type: run-deployment, deployment_id: 0b6f4a1e-4a5b-4c8e-9b53-5a1f0d8c2f11}]"), "4:53: automations[0].actions[0].deployment_id: ids differ between servers and say nothing in review: write the address, deployment: FLOW/NAME"),
    (_item(actions="[{type: send-notification, block_document_id: x, body: hi}]"), "4:60: automations[0].actions[0].block_document_id: ids differ between servers and say nothing in review: write the address, block: TYPE/NAME"),
    (_item(actions="[{type: run-deployment}]"), "4:15: automations[0].actions[0]: deployment is required (or source: inferred, to act on the event's own)"),
    (_item(actions="[{type: pause-work-pool, source: inferred, work_pool: p}]"), "4:15: automations[0].actions[0]: work_pool is not allowed with source: inferred"),
    (_item(actions="[{type: pause-deployment, deployment: etl}]"), "4:52: automations[0].actions[0].deployment: deployment is written FLOW/NAME, not 'etl'"),
    (_item(actions="[{type: resume-work-queue, work_queue: pool/a/b}]"), "4:53: automations[0].actions[0].work_queue: work queue name 'a/b' may not contain /"),
    (_item(actions="[{type: call-webhook, block: slack-webhook/ops}]"), "4:43: automations[0].actions[0].block: call-webhook calls a webhook block (webhook/NAME), not 'slack-webhook/ops'"),
    (_item(actions="[{type: send-notification, block: Slack/ops, body: x}]"), "4:48: automations[0].actions[0].block: block type 'Slack' may only contain lowercase letters, digits and dashes"),
    (_item(actions="[{type: send-notification, block: slack-webhook/ops}]"), "4:15: automations[0].actions[0].body: Field required"),
    (_item(actions="[{type: change-flow-run-state, state: DONE}]"), "4:52: automations[0].actions[0].state: Input should be 'SCHEDULED', 'PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED', 'PAUSED' or 'CANCELLING'"),
    (_item(actions="[{type: run-deployment, source: inferred, schedule_after: -5}]"), "4:72: automations[0].actions[0].schedule_after: schedule_after may not be negative"),
    (_item(actions="[{type: declare-incident}]"), "4:22: automations[0].actions[0].type: unknown action type 'declare-incident' (known: call-webhook, cancel-flow-run, change-flow-run-state, delete-flow-run, do-nothing, pause-automation, pause-deployment, pause-work-pool, pause-work-queue, resume-automation, resume-deployment, resume-flow-run, resume-work-pool, resume-work-queue, run-deployment, send-notification, suspend-flow-run)"),
    (_item(actions="[{deployment: f/d}]"), "4:15: automations[0].actions[0]: an action needs a type: call-webhook, cancel-flow-run, change-flow-run-state, delete-flow-run, do-nothing, pause-automation, pause-deployment, pause-work-pool, pause-work-queue, resume-automation, resume-deployment, resume-flow-run, resume-work-pool, resume-work-queue, run-deployment, send-notification, suspend-flow-run"),
    ("automations:\n  - {name: '', trigger: {}, actions: []}\n", "2:6: automations[0].name: automation name may not be empty"),
    ('automations:\n  - {name: "a\\u202eb", trigger: {}, actions: []}\n', "2:12: automations[0].name: automation name 'a\\u202eb' may not contain the control character U+202E (right-to-left override)"),
    ("automations:\n  - {name: a, trigger: {}}\n", "2:5: automations[0].actions: Field required"),
    ("automations:\n  - just-a-name\n", "2:5: automations[0]: an automation is a mapping (name, trigger, actions, ...)"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), ERRORS)
def test_each_problem_is_located_at_its_key(text: str, expected: str) -> None:
    assert load_automations(text).errors == [f"prefect.yaml:{expected}"]


def test_a_duplicate_name_is_refused_at_the_second() -> None:
    text = "automations:\n  - {name: a, trigger: {}, actions: []}\n  - {name: a, trigger: {}, actions: []}\n"
    loaded = load_automations(text)
    assert loaded.errors == ["prefect.yaml:3:12: duplicate automation 'a'"]


# -- what must never be in an automation -----------------------------------------------------------


@pytest.mark.parametrize("strict", [True, False], ids=["plan", "validate"])
def test_a_sensitive_placeholder_is_refused_even_at_validate(strict: bool) -> None:
    text = _item(
        actions='[{type: send-notification, block: slack-webhook/ops, body: "token {{ $OPS_TOKEN }}"}]'
    )
    loaded = load_automations(text, environ={"OPS_TOKEN": "hunter2-very-secret"}, strict=strict)
    assert len(loaded.errors) == 1, loaded.errors
    assert loaded.errors[0].startswith("prefect.yaml:4:")
    assert "$OPS_TOKEN is not a public environment variable" in loaded.errors[0]
    assert "readable by anyone with API access" in loaded.errors[0]
    assert "hunter2" not in "".join(loaded.errors + loaded.warnings)
    assert loaded.resources == {}


def test_a_public_placeholder_is_a_plain_value() -> None:
    text = _item(actions='[{type: send-notification, block: slack-webhook/ops, body: "env {{ $STAGE }}"}]')
    loaded = load_automations(text, environ={"STAGE": "prod"}, public=["STAGE"])
    assert loaded.errors == []
    assert loaded.resources[Address.automation("a")].body["actions"][0]["body"] == "env prod"


LOOPS = [
    ("{expect: ['prefect.flow-run.*']}", "[{type: run-deployment, source: inferred}]", "4:46: automation 'a': running the inferred deployment"),
    ("{expect: [prefect.flow-run.Running]}", "[{type: run-deployment, deployment: f/d}]", "4:15: automation 'a': running a deployment on every flow run's state events"),
    ("{expect: [prefect.flow-run.Pending], match: {prefect.resource.id: 'prefect.flow-run.*'}}", "[{type: run-deployment, deployment: f/d}]", "4:15: automation 'a': running a deployment on every flow run's state events"),
]  # fmt: skip


@pytest.mark.parametrize(("trigger", "actions", "expected"), LOOPS)
def test_a_run_deployment_loop_prefects_server_refuses_is_refused_first(
    trigger: str, actions: str, expected: str
) -> None:
    errors = load_automations(_item(trigger=trigger, actions=actions)).errors
    assert len(errors) == 1 and errors[0].startswith(f"prefect.yaml:{expected}"), errors


@pytest.mark.parametrize(
    ("trigger", "extra"),
    [
        ("{expect: [prefect.flow-run.Running], match_related: {prefect.resource.id: prefect.flow.x}}", ""),
        ("{expect: [prefect.flow-run.Completed]}", ""),  # not a state every run passes
        ("{expect: [prefect.flow-run.Running]}", "    enabled: false\n"),
    ],
)
def test_a_narrowed_disabled_or_harmless_trigger_may_run_a_deployment(trigger: str, extra: str) -> None:
    text = _item(trigger=trigger, actions="[{type: run-deployment, deployment: f/d}]", extra=extra)
    assert load_automations(text).errors == []


def test_an_automation_naming_itself_or_a_cycle_is_refused() -> None:
    itself = _item(actions="[{type: pause-automation, automation: a}]")
    assert load_automations(itself).errors == [
        "prefect.yaml:4:52: automation 'a': an automation cannot name itself (its id does not exist "
        "before it is created): use source: inferred to act on the automation of the triggering event"
    ]
    cycle = (
        "automations:\n"
        "  - {name: a, trigger: {}, actions: [{type: pause-automation, automation: b}]}\n"
        "  - {name: b, trigger: {}, actions: [{type: resume-automation, automation: a}]}\n"
    )
    assert load_automations(cycle).errors == [
        "prefect.yaml:3:5: automation 'b': automations that name each other cannot be created "
        "(automation.b -> automation.a -> automation.b)"
    ]


# -- the mapping, checked against Prefect's own models ---------------------------------------------


def _ids() -> tuple[dict[Address, str], Any, Any]:
    ids: dict[Address, str] = {}

    def resolve(address: Address) -> str:
        return ids.setdefault(address, str(uuid.uuid4()))

    def name_of(kind: Kind, value: str) -> Address | None:
        return next((a for a, i in ids.items() if i == value and a.kind is kind), None)

    return ids, resolve, name_of


@pytest.mark.parametrize(
    "name", ["rerun-after-extract", "pool-went-quiet", "failures-then-crash", "any-two-signals"]
)
def test_every_example_round_trips_through_prefects_server_model(name: str) -> None:
    from prefect.server.events.schemas.automations import Automation, AutomationCreate

    body = examples().resources[Address.automation(name)].body
    _, resolve, name_of = _ids()
    sent = mapping.to_api(body, resolve)
    created = AutomationCreate.model_validate(sent)  # what POST /automations/ accepts
    stored = Automation.model_validate({**created.model_dump(exclude={"owner_resource"}), "id": uuid.uuid4()})
    assert mapping.from_api(stored.model_dump(mode="json"), name_of) == body


def test_a_metric_trigger_round_trips_through_prefect_clouds_client_model() -> None:
    from prefect.events.schemas.automations import AutomationCore

    body = examples().resources[Address.automation("slow-runs")].body
    _, resolve, name_of = _ids()
    read = AutomationCore.model_validate(mapping.to_api(body, resolve)).model_dump(mode="json")
    assert mapping.from_api(read, name_of) == body
    assert "Prefect Cloud only" in (mapping.needs_cloud(body) or "")
    assert all(
        mapping.needs_cloud(r.body) is None for a, r in examples().resources.items() if a.name != "slow-runs"
    )


def test_an_unresolved_address_is_an_error_naming_it() -> None:
    body = examples().resources[Address.automation("pool-went-quiet")].body

    def resolve(address: Address) -> str:
        raise KeyError(address)

    with pytest.raises(mapping.UnresolvedReference, match=r"names work_pool\.ecs-push, which does not exist"):
        mapping.to_api(body, resolve)


def test_an_id_that_names_none_of_ours_stays_visible_and_the_marker_tag_is_ours() -> None:
    body = examples().resources[Address.automation("rerun-after-extract")].body
    _, resolve, name_of = _ids()
    sent = mapping.to_api(body, resolve, marker="managed-by:prefect-reconciler/p")
    assert "managed-by:prefect-reconciler/p" in sent["tags"]
    foreign = str(uuid.uuid4())
    sent["actions"][1]["deployment_id"] = foreign  # changed in the UI
    read = mapping.from_api(sent, name_of, marker="managed-by:prefect-reconciler/p")
    assert read["tags"] == ["etl", "gitops"]
    assert read["actions"][1]["deployment"] == f"deployment_id:{foreign}"
    assert read["actions"][0] == body["actions"][0]
    again = mapping.to_api(read, resolve)  # a read-back body can be written back as it is
    assert again["actions"][1]["deployment_id"] == foreign


def test_a_template_prefects_server_would_refuse_is_located() -> None:
    text = """automations:
  - name: a
    trigger: {}
    actions:
      - {type: send-notification, block: slack-webhook/ops, body: "Run {{ flow_run.name "}
      - {type: call-webhook, block: webhook/x, payload: "{% for a in b %}{% for c in a %}{% for d in c %}{% endfor %}{% endfor %}{% endfor %}"}
      - {type: run-deployment, deployment: f/d, parameters: {x: {y: ["{{ oops }"]}, ok: "{{ event.id }}"}}
"""
    assert load_automations(text).errors == [
        "prefect.yaml:5:67: automation 'a': body is not a valid template: unexpected end of template, "
        "expected 'end of print statement' (line 1 of the template)",
        "prefect.yaml:6:57: automation 'a': payload is not a valid template: for loops nested 3 deep, "
        "Prefect allows at most 2",
        "prefect.yaml:7:70: automation 'a': parameters.x.y[0] is not a valid template: unexpected '}' "
        "(line 1 of the template)",
    ]


def test_an_unknown_key_that_looks_like_a_union_tag_is_still_located_at_itself() -> None:
    errors = load_automations(_item(trigger="{Within: 5}", actions="[{type: do-nothing, Event: 1}]")).errors
    assert errors == [
        "prefect.yaml:3:15: automations[0].trigger.Within: unknown key 'Within'",
        "prefect.yaml:4:34: automations[0].actions[0].Event: unknown key 'Event'",
    ]
