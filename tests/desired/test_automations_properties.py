"""Properties of ``automations:`` checked against Prefect's own models (hypothesis):

* every automation our checks accept, Prefect's server accepts, and reads back (after ``to_api``,
  the server's model and ``from_api``) as exactly our canonical body;
* for the numbers of a trigger (posture, within, threshold, require, a metric's windows) we accept
  exactly what Prefect accepts, and make the same defaults explicit.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.desired import automation_actions, automation_triggers, automations
from reconciler.objects import Address, Kind
from reconciler.state.prefect import automations as mapping
from tests.desired.automations_support import load_automations

pytest.importorskip("prefect")

from prefect.events.schemas.automations import MetricTriggerQuery
from prefect.server.events.schemas.automations import (
    Automation as ServerAutomation,
)
from prefect.server.events.schemas.automations import (
    AutomationCreate,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=8)
events = st.sampled_from(
    ["prefect.flow-run.Completed", "prefect.flow-run.Failed", "prefect.deployment.*", "x.y"]
)
labels = st.dictionaries(
    st.sampled_from(["prefect.resource.id", "prefect.resource.role", "team"]),
    st.one_of(names, st.lists(names, min_size=1, max_size=2)),
    max_size=2,
)
# what the loader lets through to an automation's check: beyond 64 bits is refused for the whole file
ints = st.integers(-(2**63), 2**63 - 1)
durations = st.one_of(st.integers(0, 4000), st.sampled_from(["PT10S", "PT5M", "PT1H", 12.5]))


@st.composite
def event_triggers(draw: st.DrawFn) -> dict[str, Any]:
    trigger: dict[str, Any] = {"type": "event"}
    for key, strategy in [
        ("match", labels),
        ("match_related", st.one_of(labels, st.lists(labels, max_size=2))),
        ("expect", st.lists(events, max_size=3)),
        ("after", st.lists(events, max_size=2)),
        (
            "for_each",
            st.lists(
                st.sampled_from(["prefect.resource.id", "related:flow:prefect.resource.id"]), max_size=2
            ),
        ),
        ("posture", st.sampled_from(["Reactive", "Proactive"])),
        ("threshold", st.integers(0, 5)),
        ("within", durations),
    ]:
        if draw(st.booleans()):
            trigger[key] = draw(strategy)
    if (
        trigger.get("posture") == "Proactive"
        and isinstance(trigger.get("within"), int)
        and 0 < trigger["within"] < 10
    ):
        trigger["within"] = 10
    if trigger.get("within") == 12.5 and trigger.get("posture") != "Proactive":
        trigger["within"] = 12.5
    return trigger


def triggers(depth: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    if depth == 0:
        return event_triggers()
    children = st.lists(triggers(depth - 1), min_size=1, max_size=3)

    @st.composite
    def composite(draw: st.DrawFn) -> dict[str, Any]:
        kids = draw(children)
        trigger: dict[str, Any] = {"type": draw(st.sampled_from(["compound", "sequence"])), "triggers": kids}
        if trigger["type"] == "compound":
            trigger["require"] = draw(st.one_of(st.sampled_from(["any", "all"]), st.integers(1, len(kids))))
        if draw(st.booleans()):
            trigger["within"] = draw(durations)
        return trigger

    return st.one_of(event_triggers(), composite())


REFERENCED = {
    "deployment": "etl/daily",
    "work_pool": "ecs",
    "work_queue": "ecs/high",
    "automation": "other",
}


@st.composite
def actions(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(automation_actions.ACTION_MODELS)))
    action: dict[str, Any] = {"type": kind}
    model = automation_actions.ACTION_MODELS[kind]
    target = getattr(model, "target", None)
    if target is not None:
        if draw(st.booleans()):
            action["source"] = "inferred"
        else:
            action[target] = REFERENCED[target]
    if kind == "run-deployment":
        action.update(draw(st.fixed_dictionaries({}, optional={
            "parameters": st.none() | st.dictionaries(names, ints | names, max_size=2),
            "job_variables": st.none() | st.dictionaries(names, ints, max_size=2),
            "schedule_after": durations,
        })))  # fmt: skip
    elif kind == "send-notification":
        action.update(block="slack-webhook/ops", body=draw(names))
        if draw(st.booleans()):
            action["subject"] = draw(names)
    elif kind == "call-webhook":
        action["block"] = "webhook/hook"
        if draw(st.booleans()):
            action["payload"] = draw(st.one_of(names, st.dictionaries(names, ints, max_size=2)))
    elif kind == "change-flow-run-state":
        action["state"] = draw(st.sampled_from(automation_actions.STATE_TYPES))
        action.update(
            draw(
                st.fixed_dictionaries({}, optional={"name": names, "message": names, "force": st.booleans()})
            )
        )
    return action


@st.composite
def items(draw: st.DrawFn) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": draw(names),
        "trigger": draw(triggers()),
        "actions": draw(st.lists(actions(), max_size=3)),
    }
    for key in ("actions_on_trigger", "actions_on_resolve"):
        if draw(st.booleans()):
            item[key] = draw(st.lists(actions(), max_size=2))
    if draw(st.booleans()):
        item["enabled"] = False  # a disabled automation may run a deployment on any flow-run event
    return item


def _load_one(item: dict[str, Any]) -> Any:
    text = yaml.safe_dump({"automations": [item]}, sort_keys=False)
    return load_automations(text)


@SETTINGS
@given(items())
def test_what_we_accept_prefects_server_accepts_and_reads_back_as_our_body(item: dict[str, Any]) -> None:
    loaded = _load_one(item)
    if loaded.errors:  # only a loop Prefect's server refuses too, or a self-reference
        assert all("forever" in e or "name itself" in e for e in loaded.errors), loaded.errors
        return
    body = loaded.resources[Address.automation(item["name"])].body
    ids: dict[Address, str] = {}

    def resolve(address: Address) -> str:
        return ids.setdefault(address, str(uuid.uuid4()))

    def name_of(kind: Kind, value: str) -> Address | None:
        return next((a for a, i in ids.items() if i == value and a.kind is kind), None)

    created = AutomationCreate.model_validate(mapping.to_api(body, resolve))
    stored = ServerAutomation.model_validate(
        {**created.model_dump(exclude={"owner_resource"}), "id": uuid.uuid4()}
    )
    assert mapping.from_api(stored.model_dump(mode="json"), name_of) == body
    assert set(loaded.resources[Address.automation(item["name"])].depends_on) == {
        a for _, a in automations.references(body)
    }


numbers = st.one_of(
    st.integers(-20, 700),
    st.floats(-5, 700, allow_nan=False),
    st.sampled_from(["PT5S", "PT1M", "-PT1S", "P1D"]),
)


@SETTINGS
@given(
    posture=st.sampled_from(["Reactive", "Proactive"]),
    within=st.one_of(st.none(), numbers),
    threshold=st.integers(-3, 5),
)
def test_event_trigger_numbers_are_accepted_exactly_as_prefect_accepts_them(
    posture: str, within: Any, threshold: int
) -> None:
    trigger: dict[str, Any] = {"type": "event", "posture": posture, "threshold": threshold, "expect": ["x"]}
    if within is not None:
        trigger["within"] = within
    _same_verdict(trigger)


@SETTINGS
@given(
    require=st.one_of(st.integers(-1, 4), st.sampled_from(["any", "all", "most"])),
    count=st.integers(1, 3),
    within=st.one_of(st.none(), numbers),
)
def test_compound_require_is_accepted_exactly_as_prefect_accepts_it(
    require: Any, count: int, within: Any
) -> None:
    trigger = {
        "type": "compound",
        "require": require,
        "triggers": [{"expect": ["x"], "posture": "Reactive"}] * count,
    }
    if within is not None:
        trigger["within"] = within
    _same_verdict(trigger)


def _same_verdict(trigger: dict[str, Any]) -> None:
    item = {"name": "n", "trigger": trigger, "actions": []}
    ours = _load_one(item)
    try:
        theirs = AutomationCreate.model_validate(
            {
                **item,
                "trigger": {**trigger, "within": trigger.get("within")}
                if trigger["type"] != "event"
                else trigger,
            }
        )
    except ValueError:
        theirs = None
    assert (not ours.errors) == (theirs is not None), (trigger, ours.errors)
    if theirs is not None:
        body = ours.resources[Address.automation("n")].body
        assert body["trigger"] == mapping.trigger_from_api(theirs.model_dump(mode="json")["trigger"])


@SETTINGS
@given(window=numbers, firing_for=numbers)
def test_metric_windows_are_accepted_exactly_as_prefect_cloud_accepts_them(
    window: Any, firing_for: Any
) -> None:
    query = {"name": "lateness", "threshold": 1, "operator": ">=", "range": window, "firing_for": firing_for}
    ours = automation_triggers.MetricQuery.model_validate  # the file's model, as the loader uses it
    try:
        ours(query)
        accepted = True
    except ValueError:
        accepted = False
    try:
        MetricTriggerQuery.model_validate(query)
        theirs = True
    except ValueError:
        theirs = False
    assert accepted == theirs, query


flow_run_events = st.sampled_from(
    [
        "prefect.flow-run.Scheduled",
        "prefect.flow-run.Running",
        "prefect.flow-run.*",
        "prefect.flow-run.Completed",
        "x.y",
    ]
)
narrowing = st.sampled_from(
    [
        {},
        {"prefect.resource.id": "prefect.flow-run.*"},
        {"prefect.resource.id": ["prefect.flow-run.*", "a"]},
        {"team": "t"},
    ]
)


@SETTINGS
@given(
    expect=st.lists(flow_run_events, max_size=3),
    posture=st.sampled_from(["Reactive", "Proactive"]),
    match=narrowing,
    match_related=st.one_of(narrowing, st.lists(narrowing, min_size=1, max_size=2)),
    inferred=st.booleans(),
    enabled=st.booleans(),
)
def test_a_run_deployment_loop_is_refused_exactly_when_prefects_server_refuses_it(
    expect: list[str], posture: str, match: Any, match_related: Any, inferred: bool, enabled: bool
) -> None:
    trigger = {
        "type": "event",
        "expect": expect,
        "posture": posture,
        "match": match,
        "match_related": match_related,
    }
    action: dict[str, Any] = {"type": "run-deployment"}
    action.update({"source": "inferred"} if inferred else {"deployment": "f/d"})
    ours = _load_one({"name": "n", "enabled": enabled, "trigger": trigger, "actions": [action]})
    theirs_action = {"type": "run-deployment", "source": "inferred" if inferred else "selected"}
    if not inferred:
        theirs_action["deployment_id"] = str(uuid.uuid4())
    try:
        AutomationCreate.model_validate(
            {"name": "n", "enabled": enabled, "trigger": trigger, "actions": [theirs_action]}
        )
        refused = False
    except ValueError:
        refused = True
    assert bool(ours.errors) == refused, (trigger, ours.errors)


fragments = st.sampled_from(
    ["text ", "{{ x }}", "{{ x.y | upper }}", "{{", "}}", "{%", "%}", "{% for i in xs %}", "{% endfor %}",
     "{% if a %}", "{% endif %}", "{# c #}", "{{ a(", ")", " ", "'", "{{ 'q' }}"]
)  # fmt: skip


@SETTINGS
@given(st.lists(fragments, max_size=12).map("".join))
def test_a_template_is_refused_exactly_when_prefects_server_refuses_it(template: str) -> None:
    import jinja2
    from prefect.server.utilities.user_templates import TemplateSecurityError, validate_user_template

    from reconciler.desired import user_templates

    try:
        validate_user_template(template)
        refused = False
    except (jinja2.TemplateSyntaxError, TemplateSecurityError):
        refused = True
    assert (user_templates.problem(template) is not None) == refused, template
