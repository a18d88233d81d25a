"""Checks and canonical body for the ``automations:`` section (part of the loader).

An item is Prefect's automation (``automation_models``); :func:`check` validates one, refuses what
Prefect's server would refuse (a run-deployment loop on flow-run events, a Proactive window under
10 s) and what must not be in it (a sensitive placeholder: automations are readable by anyone with
API access; a raw id), and adds its resource. The canonical body holds every field with the default
Prefect's server fills in made explicit, so that a server's read-back compares equal::

    {"name": "page-on-failure", "description": "", "enabled": True, "tags": [],
     "trigger": {"type": "event", "match": {"prefect.resource.id": "prefect.flow-run.*"},
                 "match_related": {}, "after": [], "expect": ["prefect.flow-run.Failed"],
                 "for_each": [], "posture": "Reactive", "threshold": 1, "within": 0.0},
     "actions": [{"type": "run-deployment", "source": "selected", "deployment": "deployment.etl/daily",
                  "parameters": None, "job_variables": None, "schedule_after": 0.0}],
     "actions_on_trigger": [], "actions_on_resolve": []}

An action names what it acts on by address (:data:`REFERENCES`): the body keeps the address text,
``depends_on`` lists the addresses (so the plan orders the automation after them), and an address
the file does not declare becomes a :class:`Reference`, checked against the store. The state layer
turns addresses into ids when it writes (``state.prefect.automations``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import ValidationError

from reconciler.desired import automation_actions as actions
from reconciler.desired import automation_models, check_workspace, user_templates
from reconciler.desired import automation_triggers as triggers
from reconciler.desired.context import LoadContext
from reconciler.desired.desired import Desired, Reference
from reconciler.desired.yamlfile import Path, format_path
from reconciler.errors import Diagnostic
from reconciler.objects import Address, Kind, Resource

Json = Any

REFERENCES: dict[str, tuple[Kind, str]] = {
    "deployment": (Kind.DEPLOYMENT, "deployment_id"),
    "work_pool": (Kind.WORK_POOL, "work_pool_id"),
    "work_queue": (Kind.WORK_QUEUE, "work_queue_id"),
    "automation": (Kind.AUTOMATION, "automation_id"),
    "block": (Kind.BLOCK, "block_document_id"),
}
"""An action's reference key in the file and body -> the kind it names and Prefect's id field."""

ACTION_LISTS = ("actions", "actions_on_trigger", "actions_on_resolve")

# Every flow run a deployment creates passes these states (AutomationCore.prevent_run_deployment_loops)
_LOOPING_EVENTS = frozenset(
    {
        "prefect.flow-run.Scheduled",
        "prefect.flow-run.Pending",
        "prefect.flow-run.Running",
        "prefect.flow-run.*",
    }
)


def check(ctx: LoadContext, index: int, raw: Any) -> None:
    """Validate ``automations[index]``; on success add its resource (a duplicate name is refused)."""
    base: Path = ("automations", index)
    if not isinstance(raw, dict):
        ctx.error(base, f"automations[{index}]: an automation is a mapping (name, trigger, actions, ...)")
        return
    name = raw.get("name")
    what = f"automation {name!r}" if isinstance(name, str) else f"automations[{index}]"
    if not check_workspace.public_only(ctx, base, raw, what=what):
        return
    automation = _validated(ctx, raw, base)
    if automation is None:
        return
    address = Address.automation(automation.name)
    if not ctx.claim(address, base):
        return
    body = canonical_body(automation)
    problems = _loop_problems(body) + _template_problems(body) + _self_references(body, address)
    for path, message in problems:
        ctx.error((*base, *path), f"{what}: {message}")
    if problems:
        return
    depends: list[Address] = []
    for path, target in references(body):
        depends.append(target)
        if target not in ctx.resources:
            ctx.references.append(Reference(target, (*base, *path)))
    cycle = _cycle(ctx, address, depends)
    if cycle:
        chain = " -> ".join(str(a) for a in cycle)
        ctx.error(base, f"{what}: automations that name each other cannot be created ({chain})")
        return
    ctx.resources[address] = Resource(address, body, depends_on=tuple(sorted(set(depends))))


def _validated(ctx: LoadContext, raw: dict[str, Any], base: Path) -> automation_models.Automation | None:
    """The item as a model, or None with each problem at its place: an unknown key at the key."""
    try:
        return automation_models.Automation.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_input=False):
            loc = _file_location(err["loc"])
            where = format_path((*base, *loc))
            if err["type"] == "extra_forbidden":
                ctx.error((*base, *loc), f"{where}: unknown key {loc[-1]!r}", at_key=True)
            else:
                message = str(err["msg"]).removeprefix("Value error, ")
                ctx.error((*base, *loc), f"{where}: {message}")
        return None


def _file_location(loc: tuple[Any, ...]) -> Path:
    """A pydantic location without the union tags it adds after a trigger or an action."""
    kept: list[str | int] = []
    tag_allowed = False  # a tag comes right after "trigger" or a list index, once
    for part in loc:
        if tag_allowed and part in _UNION_TAGS:
            tag_allowed = False
            continue
        kept.append(part)
        tag_allowed = part == "trigger" or isinstance(part, int)
    return tuple(kept)


_UNION_TAGS = triggers.TAGS | actions.TAGS


# -- the canonical body -------------------------------------------------------------------------------


def canonical_body(automation: automation_models.Automation) -> dict[str, Json]:
    """The body of a valid item: every default explicit, durations in seconds, sets sorted."""
    return {
        "name": automation.name,
        "description": automation.description,
        "enabled": automation.enabled,
        "tags": sorted(set(automation.tags)),
        "trigger": trigger_body(automation.trigger),
        **{key: [action_body(a) for a in getattr(automation, key)] for key in ACTION_LISTS},
    }


def trigger_body(trigger: Any) -> dict[str, Json]:
    if isinstance(trigger, triggers.EventTrigger):
        return {
            "type": "event",
            "match": trigger.match,
            "match_related": trigger.match_related,
            "after": sorted(set(trigger.after)),
            "expect": sorted(set(trigger.expect)),
            "for_each": sorted(set(trigger.for_each)),
            "posture": trigger.posture,
            "threshold": trigger.threshold,
            "within": trigger.window,
        }
    if isinstance(trigger, triggers.MetricTrigger):
        query = trigger.metric
        return {
            "type": "metric",
            "match": trigger.match,
            "match_related": trigger.match_related,
            "posture": "Metric",
            "metric": {
                "name": query.name,
                "threshold": float(query.threshold),
                "operator": query.operator,
                "range": query.range,
                "firing_for": query.firing_for,
            },
        }
    children = [trigger_body(t) for t in trigger.triggers]
    if isinstance(trigger, triggers.CompoundTrigger):
        return {
            "type": "compound",
            "triggers": children,
            "require": trigger.require,
            "within": trigger.within,
        }
    return {"type": "sequence", "triggers": children, "within": trigger.within}


def action_body(action: Any) -> dict[str, Json]:
    body: dict[str, Json] = {"type": action.type}
    if isinstance(action, actions.Targeted):
        body["source"] = action.source
        body[action.target] = _address_text(action.target, getattr(action, action.target))
    if isinstance(action, actions.RunDeployment):
        body.update(
            parameters=action.parameters,
            job_variables=action.job_variables,
            schedule_after=action.schedule_after,
        )
    elif isinstance(action, actions.SendNotification):
        body.update(block=_address_text("block", action.block), subject=action.subject, body=action.body)
    elif isinstance(action, actions.CallWebhook):
        body.update(block=_address_text("block", action.block), payload=webhook_payload(action.payload))
    elif isinstance(action, actions.ChangeFlowRunState):
        body.update(state=action.state, name=action.name, message=action.message, force=action.force)
    return body


def webhook_payload(payload: str | Mapping[str, Any]) -> str:
    """A call-webhook payload given as a mapping is JSON text, as Prefect's server stores it
    (``CallWebhook.ensure_payload_is_a_string``: orjson, indented by two)."""
    if isinstance(payload, str):
        return payload
    return orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode()


def _address_text(key: str, written: str | None) -> str | None:
    if written is None:
        return None
    kind, _ = REFERENCES[key]
    return str(Address(kind, written))


# -- what a body names -------------------------------------------------------------------------------


def references(body: Mapping[str, Any]) -> list[tuple[Path, Address]]:
    """``(path in the item, address)`` of every object the body's actions name by address."""
    found: list[tuple[Path, Address]] = []
    for key in ACTION_LISTS:
        for i, action in enumerate(body.get(key) or ()):
            for ref in REFERENCES:
                text = action.get(ref)
                if isinstance(text, str) and text.startswith(REFERENCES[ref][0].value + "."):
                    found.append(((key, i, ref), Address.parse(text)))
    return found


def depends_on(body: Mapping[str, Any]) -> tuple[Address, ...]:
    """The addresses a canonical body names, as :func:`check` records them (for a store's read-back)."""
    return tuple(sorted({address for _, address in references(body)}))


def rename_references(body: Mapping[str, Any], moved: Mapping[Address, Address]) -> dict[str, Json]:
    """``body`` with each address it names replaced by its entry in ``moved`` (a sandbox renames)."""
    result = dict(body)
    for key in ACTION_LISTS:
        renamed = []
        for action in body.get(key) or ():
            action = dict(action)
            for ref, (kind, _) in REFERENCES.items():
                text = action.get(ref)
                if isinstance(text, str) and text.startswith(kind.value + "."):
                    action[ref] = str(moved.get(Address.parse(text), Address.parse(text)))
            renamed.append(action)
        result[key] = renamed
    return result


# -- what Prefect's server refuses -------------------------------------------------------------------


def _loop_problems(body: Mapping[str, Any]) -> list[tuple[Path, str]]:
    """A Reactive trigger on the states every flow run passes that runs a deployment would run it
    again and again: Prefect's server refuses the automation (422), so the plan does first."""
    trigger = body["trigger"]
    if not body["enabled"] or trigger["type"] != "event" or trigger["posture"] != "Reactive":
        return []
    expect = set(trigger["expect"])
    if not any(e.startswith("prefect.flow-run.") for e in expect) or not expect & _LOOPING_EVENTS:
        return []
    related = trigger["match_related"]
    unfiltered = _every_flow_run(trigger["match"]) and any(
        _every_flow_run(r) for r in (related if isinstance(related, list) else [related])
    )
    problems: list[tuple[Path, str]] = []
    for i, action in enumerate(body["actions"]):
        if action["type"] != "run-deployment":
            continue
        if action["source"] == "inferred":
            problems.append(
                (
                    ("actions", i, "source"),
                    "running the inferred deployment on a flow run's state events runs it again on "
                    "its own run's events, forever: name a deployment and narrow the trigger's match",
                )
            )
        elif unfiltered:
            problems.append(
                (
                    ("actions", i),
                    "running a deployment on every flow run's state events may run it again on its "
                    "own run's events, forever: narrow the trigger's match or match_related (as "
                    "Prefect's server requires)",
                )
            )
    return problems


def _template_problems(body: Mapping[str, Any]) -> list[tuple[Path, str]]:
    """Templates Prefect's server would refuse: notification subject and body, webhook payload,
    run-deployment parameters (see ``user_templates``)."""
    found: list[tuple[Path, str]] = []
    for key in ACTION_LISTS:
        for i, action in enumerate(body[key]):
            texts: list[tuple[Path, str]] = []
            if action["type"] == "send-notification":
                texts = [(("subject",), action["subject"]), (("body",), action["body"])]
            elif action["type"] == "call-webhook":
                texts = [(("payload",), action["payload"])]
            elif action["type"] == "run-deployment" and action["parameters"]:
                texts = [
                    (("parameters", *p), t)
                    for p, t in user_templates.parameter_templates(action["parameters"])
                ]
            for where, text in texts:
                reason = user_templates.problem(text)
                if reason is not None:
                    found.append(((key, i, *where), f"{format_path(where)} is {reason}"))
    return found


def _every_flow_run(labels: Mapping[str, Any]) -> bool:
    """Prefect's ``ResourceSpecification.matches_every_resource_of_kind("prefect.flow-run")``."""
    if not labels:
        return True
    if len(labels) != 1 or not labels.get("prefect.resource.id"):
        return False
    ids = labels["prefect.resource.id"]
    return "prefect.flow-run.*" in ([ids] if isinstance(ids, str) else ids)


def _self_references(body: Mapping[str, Any], address: Address) -> list[tuple[Path, str]]:
    return [
        (
            path,
            "an automation cannot name itself (its id does not exist before it is created): "
            "use source: inferred to act on the automation of the triggering event",
        )
        for path, target in references(body)
        if target == address
    ]


def _cycle(ctx: LoadContext, start: Address, depends: list[Address]) -> list[Address]:
    """A chain of automations back to ``start`` through the ones already checked, or []."""
    stack: list[tuple[Address, list[Address]]] = [
        (d, [start, d]) for d in depends if d.kind is Kind.AUTOMATION
    ]
    seen: set[Address] = set()
    while stack:
        current, chain = stack.pop()
        if current == start:
            return chain
        if current in seen or current not in ctx.resources:
            continue
        seen.add(current)
        for nxt in ctx.resources[current].depends_on:
            if nxt.kind is Kind.AUTOMATION:
                stack.append((nxt, [*chain, nxt]))
    return []


# -- what serve runs without a Prefect server -----------------------------------------------------------

LOCAL_EVENTS = frozenset(
    {
        "prefect.flow-run.Completed",
        "prefect.flow-run.Failed",
        "prefect.flow-run.Crashed",
        "prefect.flow-run.Cancelled",
    }
)
"""The events a store without a Prefect server has: a run reaching a terminal state (its RunRecord)."""

LOCAL_ACTIONS = frozenset({"run-deployment"})

_NEEDS_SERVER = (
    "needs a Prefect server as the state (--state prefect+http://HOST/api): without one, serve runs "
    "only Reactive event triggers on a flow run's end (expect: prefect.flow-run.Completed, Failed, "
    "Crashed or Cancelled) whose actions run a deployment"
)


def why_not_local(body: Mapping[str, Any]) -> tuple[Path, str] | None:
    """Why ``serve`` cannot run this automation on a store that has no Prefect server (SQLite,
    PostgreSQL), with the place in the item that says so; None when it can.

    Such a store has no event stream: what serve sees is its runs, so an event trigger on the end of
    a flow run (Reactive, with threshold, within and for_each) maps exactly, and its action runs a
    deployment through the store like any run. Everything else would be stored and never happen."""
    trigger = body["trigger"]
    name = body.get("name")
    if trigger["type"] != "event":
        return ("trigger", "type"), f"automation {name!r}: a {trigger['type']} trigger {_NEEDS_SERVER}"
    if trigger["posture"] != "Reactive":
        return ("trigger", "posture"), f"automation {name!r}: a Proactive trigger {_NEEDS_SERVER}"
    if trigger["after"]:
        return ("trigger", "after"), f"automation {name!r}: a trigger with after: {_NEEDS_SERVER}"
    others = sorted(set(trigger["expect"]) - LOCAL_EVENTS)
    if not trigger["expect"] or others:
        what = f"the event {others[0]!r}" if others else "a trigger without expect: (any event)"
        return ("trigger", "expect"), f"automation {name!r}: {what} {_NEEDS_SERVER}"
    for key in ACTION_LISTS:
        for i, action in enumerate(body.get(key) or ()):
            if key != "actions":
                return (key,), f"automation {name!r}: {key} {_NEEDS_SERVER}"
            if action["type"] not in LOCAL_ACTIONS:
                return (key, i, "type"), f"automation {name!r}: a {action['type']} action {_NEEDS_SERVER}"
            templated = [
                f for f in ("parameters", "job_variables") if "{{" in orjson.dumps(action[f]).decode()
            ]
            if templated:
                return (
                    (key, i, templated[0]),
                    f"automation {name!r}: a templated {templated[0]} ({{{{ event... }}}}) {_NEEDS_SERVER}",
                )
    return None


def local_problems(desired: Desired) -> list[Diagnostic]:
    """:func:`why_not_local` of every automation the file declares, located in the file (the loader
    adds automations in file order and refuses a file with a bad one: the n-th automation resource
    is ``automations[n]``)."""
    found: list[Diagnostic] = []
    for index, resource in enumerate(desired.of_kind(Kind.AUTOMATION)):
        why = why_not_local(resource.body)
        if why is None:
            continue
        path, message = why
        if desired.marks is not None:
            found.append(desired.marks.diagnostic(("automations", index, *path), message))
        else:
            found.append(Diagnostic(desired.source.file, 1, 1, message))
    return found
