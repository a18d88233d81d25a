"""Automations on a store without a Prefect server (SQLite, PostgreSQL): serve is their event engine.

Such a store has no event stream; it has runs. A run that reached a terminal state is the event
Prefect's server would emit for it (``prefect.flow-run.Completed`` ...), with the resource and
related resources built the way the server builds them (``prefect.server.models.events``), named by
what this store knows instead of ids::

    resource  prefect.resource.id = prefect.flow-run.<run id>, prefect.state-name = Completed, ...
    related   prefect.flow.<flow name>               role flow        name <flow name>
              prefect.deployment.<flow>/<name>       role deployment  name <name>
              prefect.work-queue.<pool>/<queue>      role work-queue  name <queue>
              prefect.work-pool.<pool>               role work-pool   name <pool>
              prefect.tag.<tag>                      role tag         (the deployment's tags)

so a trigger names a deployment as ``match_related: {prefect.resource.id: prefect.deployment.etl/daily}``
(or by role and name). Matching is Prefect's (``ResourceSpecification``: every label of a spec must
match, a value is a glob, ``!`` negates, each ``match_related`` spec must match some related resource).

Only what :func:`reconciler.desired.automations.why_not_local` accepts runs here (the plan refuses
the rest on such a store): a Reactive event trigger on a run's end whose actions run a deployment.
Counting is Prefect's bucket rule (``prefect.server.events.triggers.evaluate``), replayed over the
stored runs at every pass, so it needs no memory of its own: per ``for_each`` key a window opens at
the first matching event and lasts ``within`` seconds (``within: 0``: no time limit); the event
that brings it to ``threshold`` fires, and nothing counts for ``within`` after it (Reactive
triggers fire eagerly, then wait out their period; Prefect's next window starts ``within`` after
the fired window's start, ours after the firing, so that a replay always finds the same firings). Events before the automation was last written do not count
(as a server starts an updated automation's buckets afresh), and an event older than serve's
``lookback`` is too late to act on (serve was down).

A firing creates one run per action under the idempotency key
``automation:<name>:<triggering run id>:<action index>``: the store keeps it unique, so a second
pass, a restart or another replica that decides the same firing gets the same run back. Deciding
(:func:`decide`) is pure; :func:`fire` is the one effect, called once per pass by the loop.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reconciler.desired import automations as desired_automations
from reconciler.errors import ReconcileError
from reconciler.launch import RunContext, runs
from reconciler.objects import Address, Kind, LiveState
from reconciler.state import RunRecord, RunState

Labels = Mapping[str, str]

STATE_NAMES: Mapping[RunState, str] = {
    RunState.COMPLETED: "Completed",
    RunState.FAILED: "Failed",
    RunState.CRASHED: "Crashed",
    RunState.CANCELLED: "Cancelled",
}
"""The state name in the event of a run's end (Prefect's ``prefect.flow-run.<state name>``)."""

KEY_PREFIX = "automation:"


@dataclass(frozen=True)
class Event:
    """A run's end, as the event Prefect's server would emit for it."""

    run_id: str
    deployment: str  # "flow/name" of the run
    name: str  # "prefect.flow-run.Completed"
    occurred: datetime
    resource: Labels
    related: tuple[Labels, ...]

    def label(self, name: str) -> str:
        """Prefect's ``find_resource_label``: ``related:<role>:<label>`` reads the first related
        resource in that role; any other name reads the event's own resource ("" when absent)."""
        if name.startswith("related:"):
            _, role, label = name.split(":", 2)
            for related in self.related:
                if related.get("prefect.resource.role") == role:
                    return related.get(label, "")
            return ""
        return self.resource.get(name, "")


@dataclass(frozen=True)
class Watch:
    """An automation serve runs: its canonical body, and when it was last written (None: unknown)."""

    name: str
    body: Mapping[str, Any]
    since: datetime | None = None


@dataclass(frozen=True)
class Firing:
    """One run an automation's action asks for."""

    automation: str
    action: int  # index in the automation's actions
    deployment: str  # "flow/name"
    parameters: Mapping[str, Any] | None
    job_variables: Mapping[str, Any] | None
    schedule_after: float  # seconds after the firing
    trigger_run: str  # the run whose end fired it

    @property
    def key(self) -> str:
        return f"{KEY_PREFIX}{self.automation}:{self.trigger_run}:{self.action}"

    @property
    def reason(self) -> str:
        return f"automation: {self.automation} (run {self.trigger_run})"


# -- events from runs ------------------------------------------------------------------------------


def events(runs_seen: Iterable[RunRecord], live: LiveState) -> list[Event]:
    """The end of every run that has one, oldest first (ties by run id); a later record of a run
    (as this pass followed it) replaces an earlier one."""
    latest = {run.id: run for run in runs_seen}
    found = [event_of(run, live) for run in latest.values()]
    return sorted((e for e in found if e is not None), key=lambda e: (e.occurred, e.run_id))


def event_of(run: RunRecord, live: LiveState) -> Event | None:
    """The event of ``run``'s end, or None while it has not ended."""
    state = STATE_NAMES.get(run.state)
    if state is None or run.ended_at is None:
        return None
    flow, _, name = run.deployment.partition("/")
    stored = live.get(Address.deployment(flow, name))
    body: Mapping[str, Any] = stored.resource.body if stored is not None else {}
    pool_ref = body.get("work_pool") or {}
    pool = pool_ref.get("name") or run.pool
    related: list[Labels] = [
        _related("flow", flow, flow),
        _related("deployment", run.deployment, name),
    ]
    if pool:
        queue = pool_ref.get("work_queue_name") or "default"
        pool_labels = {**_related("work-pool", pool, pool), "prefect.work-pool.type": run.pool_type or ""}
        related += [_related("work-queue", f"{pool}/{queue}", queue), pool_labels]
    related += [
        {"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"}
        for tag in sorted(body.get("tags") or ())
    ]
    resource = {
        "prefect.resource.id": f"prefect.flow-run.{run.id}",
        "prefect.resource.name": run.id,
        "prefect.state-name": state,
        "prefect.state-type": run.state.value,
        "prefect.state-message": run.message,
    }
    return Event(run.id, run.deployment, f"prefect.flow-run.{state}", run.ended_at, resource, tuple(related))


def _related(kind: str, ident: str, name: str) -> dict[str, str]:
    return {
        "prefect.resource.id": f"prefect.{kind}.{ident}",
        "prefect.resource.role": kind,
        "prefect.resource.name": name,
    }


# -- Prefect's matching ------------------------------------------------------------------------------


def label_matches(expected: str, value: str | None) -> bool:
    """A glob; ``!`` in front negates it; an absent label matches nothing."""
    if value is None:
        return False
    if expected.startswith("!"):
        return not fnmatch.fnmatchcase(value, expected[1:])
    return fnmatch.fnmatchcase(value, expected)


def spec_matches(spec: Mapping[str, Any], labels: Labels) -> bool:
    """Every label of the spec matches one of its values."""
    for label, wanted in spec.items():
        values = [wanted] if isinstance(wanted, str) else list(wanted)
        if not any(label_matches(v, labels.get(label)) for v in values):
            return False
    return True


def covers(trigger: Mapping[str, Any], event: Event) -> bool:
    """Whether an event trigger's ``expect``, ``match`` and ``match_related`` take ``event``."""
    expect = trigger["expect"]
    if expect and not any(label_matches(e, event.name) for e in expect):
        return False
    match = trigger["match"]
    if match and not spec_matches(match, event.resource):
        return False
    related = trigger["match_related"]
    for spec in related if isinstance(related, list) else [related]:
        if spec and not any(spec_matches(spec, r) for r in event.related):
            return False
    return True


# -- deciding ---------------------------------------------------------------------------------------


def watches(live: LiveState) -> list[Watch]:
    """The stored automations serve runs: enabled, and of the kinds it can run (others are refused
    by the plan on this store; one stored before that is left alone)."""
    found = []
    for address, stored in sorted(live.objects.items()):
        body = stored.resource.body
        if address.kind is not Kind.AUTOMATION or not body.get("enabled", True):
            continue
        if desired_automations.why_not_local(body) is None:
            found.append(Watch(address.name, body, stored.updated_at))
    return found


def decide(
    watched: Sequence[Watch],
    seen: Sequence[Event],
    *,
    now: datetime,
    lookback: timedelta,
    recorded: Collection[str] = (),
) -> list[Firing]:
    """Every firing of ``watched`` over ``seen`` (oldest first) whose triggering event is within
    ``lookback`` of ``now``. Pure: the same runs give the same firings in any process.

    ``recorded`` are the idempotency keys the store already holds: a recorded firing stays a firing
    in the replay, so a run's end that reaches the store late (after a later one was counted) can
    never move a window that already fired and make it fire a second time."""
    fired_before = {_trigger_of(key) for key in recorded if key.startswith(KEY_PREFIX)}
    fired: list[Firing] = []
    for watch in watched:
        for event in _triggering(watch, seen, fired_before):
            if event.occurred > now - lookback:
                fired.extend(_firings(watch, event))
    return fired


def _trigger_of(key: str) -> tuple[str, str]:
    """``(automation, triggering run id)`` of a firing's key (a name may hold ``:``, a run id not)."""
    head, run_id, _ = key.rsplit(":", 2)
    return head.removeprefix(KEY_PREFIX), run_id


def _triggering(
    watch: Watch, seen: Sequence[Event], fired_before: Collection[tuple[str, str]]
) -> list[Event]:
    """The events that fire ``watch``, by Prefect's bucket rule (see the module docstring).

    Per ``for_each`` key: a window opens at the first counted event and counts events for
    ``within`` seconds; the event that brings it to ``threshold`` fires, and nothing counts until
    ``within`` after it. Decisions already in the store are final: a recorded firing fires, and an
    event older than the key's last recorded firing (a run's end that reached the store late) is
    not counted."""
    trigger = watch.body["trigger"]
    within = timedelta(seconds=float(trigger["within"]))
    threshold = int(trigger["threshold"])
    for_each = sorted(trigger["for_each"])
    matching = [(e, tuple(e.label(label) for label in for_each)) for e in seen if _counts(watch, e)]
    last_fired: dict[tuple[str, ...], datetime] = {}
    for event, key in matching:
        if (watch.name, event.run_id) in fired_before:
            last_fired[key] = max(event.occurred, last_fired.get(key, event.occurred))
    windows: dict[tuple[str, ...], tuple[datetime, int]] = {}  # key -> (window start, count)
    spent: dict[tuple[str, ...], datetime] = {}  # key -> nothing counts before this
    firing: list[Event] = []
    for event, key in matching:
        at = event.occurred
        recorded = (watch.name, event.run_id) in fired_before
        if not recorded and (at < spent.get(key, at) or at < last_fired.get(key, at)):
            continue
        start, count = windows.get(key, (at, 0))
        if within and at >= start + within:  # the window expired short of the threshold
            start, count = at, 0
        count += 1
        if recorded or count >= threshold:
            firing.append(event)
            spent[key] = at + within
            windows.pop(key, None)
        else:
            windows[key] = (start, count)
    return firing


def _counts(watch: Watch, event: Event) -> bool:
    """Whether ``event`` is one ``watch`` counts: written after the automation, and covered."""
    if watch.since is not None and event.occurred < watch.since:
        return False
    return covers(watch.body["trigger"], event)


def _firings(watch: Watch, event: Event) -> list[Firing]:
    found = []
    for index, action in enumerate(watch.body["actions"]):
        if action["type"] != "run-deployment":
            continue
        target = action.get("deployment")
        deployment = (
            Address.parse(target).name if action["source"] == "selected" and target else event.deployment
        )
        found.append(
            Firing(
                automation=watch.name,
                action=index,
                deployment=deployment,
                parameters=action.get("parameters"),
                job_variables=action.get("job_variables"),
                schedule_after=float(action.get("schedule_after") or 0.0),
                trigger_run=event.run_id,
            )
        )
    return found


# -- the one effect ---------------------------------------------------------------------------------


def fire(
    ctx: RunContext,
    runs_seen: Iterable[RunRecord],
    *,
    now: datetime,
    lookback: float,
    say: Callable[[str], None],
) -> list[RunRecord]:
    """Record the runs this pass's firings ask for, each under its idempotency key; firings whose
    run the store already holds are not asked again (another replica racing for the same one gets
    the same run back from the store). The loop launches the new runs with the rest of the queue."""
    watched = watches(ctx.live)
    if not watched:
        return []
    seen = list(runs_seen)
    recorded = {run.idempotency_key for run in seen if run.idempotency_key}
    created: list[RunRecord] = []
    decided = decide(
        watched, events(seen, ctx.live), now=now, lookback=timedelta(seconds=lookback), recorded=recorded
    )
    for firing in decided:
        if firing.key in recorded:
            continue
        try:
            run = runs.create(
                ctx,
                firing.deployment,
                parameters=firing.parameters,
                job_variables=firing.job_variables,
                reason=firing.reason,
                idempotency_key=firing.key,
                scheduled_for=now + timedelta(seconds=firing.schedule_after),
            )
        except ReconcileError as exc:
            why = " ".join(str(exc).split())
            say(f"error: automation {firing.automation} cannot run {firing.deployment}: {why}")
            continue
        say(
            f"automation {firing.automation} fired on the end of run {firing.trigger_run}: run {run.id} of {run.deployment}"
        )
        created.append(run)
    return created
