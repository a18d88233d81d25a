"""Automations on a SQLite state: serve fires a run-deployment action when a run of the watched
deployment ends, exactly once whatever the passes, restarts and replicas; the plan refuses the
automations serve cannot run, at their place in the file.

The loop runs in process on a frozen clock with a fake launcher (tests/serve/support.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.launch import runs
from reconciler.serve import automations
from reconciler.state import RunRecord, RunState
from reconciler.state.sql.store import SqlStore
from tests.helpers import make_project, run_cli
from tests.serve.support import FLOW, T0, Harness, apply_file, project, yaml

FILE = yaml(
    """
    name: auto
    work_pools:
      - name: local
        type: process
    deployments:
      - name: extract
        entrypoint: flows/hello.py:hello
        work_pool: {name: local}
      - name: load
        entrypoint: flows/hello.py:hello
        work_pool: {name: local}
    automations:
      - name: load-after-extract
        trigger:
          expect: [prefect.flow-run.Completed]
          match_related: {prefect.resource.id: prefect.deployment.hello/extract}
        actions:
          - {type: run-deployment, deployment: hello/load, parameters: {name: from-automation}}
    """
)


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    store = SqlStore(f"sqlite:///{tmp_path / 'state.db'}", project="auto")
    root = project(tmp_path / "proj", FILE)
    apply_file(store, root)
    harness = Harness(store, root)
    yield harness
    store.close()


def _of(h: Harness, deployment: str) -> list[RunRecord]:
    return [r for r in h.store.list_runs(limit=1000) if r.deployment == deployment]


def _extract_ends(h: Harness, state: RunState) -> RunRecord:
    """A run of hello/extract launched by serve and ended (between two passes) in ``state``."""
    run = runs.create(h.loop.ctx, "hello/extract", reason="manual")
    h.loop.run_pass()
    assert run.id in h.launcher.submitted
    h.launcher.finish(run.id, state, exit_code=0 if state is RunState.COMPLETED else 1)
    h.clock.advance(seconds=10)
    return run


def test_a_completed_run_of_the_watched_deployment_runs_the_action_once(h: Harness) -> None:
    extract = _extract_ends(h, RunState.COMPLETED)
    h.loop.run_pass()  # follows extract to its end: the automation fires, its run launches at once

    loads = _of(h, "hello/load")
    assert len(loads) == 1
    load = loads[0]
    assert load.idempotency_key == f"automation:load-after-extract:{extract.id}:0"
    assert load.parameters == {"name": "from-automation"}
    assert load.id in h.launcher.submitted
    assert any("automation load-after-extract fired" in line for line in h.log)

    h.clock.advance(seconds=10)
    h.loop.run_pass()  # a second pass
    h.restart()
    h.loop.run_pass()  # a new serve process, its memory gone
    other = Harness(h.store, h.root, clock=h.clock)
    other.loop.run_pass()  # another replica on the same store
    assert [r.id for r in _of(h, "hello/load")] == [load.id]
    assert h.launcher.submitted.count(load.id) == 1
    assert load.id not in other.launcher.submitted


def test_a_failed_run_or_a_run_of_another_deployment_fires_nothing(h: Harness) -> None:
    _extract_ends(h, RunState.FAILED)
    h.loop.run_pass()
    load = runs.create(h.loop.ctx, "hello/load", reason="manual")
    h.loop.run_pass()
    h.launcher.finish(load.id)
    h.clock.advance(seconds=10)
    h.loop.run_pass()
    assert [r.id for r in _of(h, "hello/load")] == [load.id]  # only the manual one
    assert not any("fired" in line for line in h.log)


def test_an_end_older_than_the_lookback_is_too_late_to_act_on(h: Harness) -> None:
    _extract_ends(h, RunState.COMPLETED)  # the fake launcher ends runs at T0
    h.clock.advance(seconds=h.options.lookback + 1)
    h.loop.run_pass()
    assert _of(h, "hello/load") == []


# -- deciding, unit ------------------------------------------------------------------------------------


def _event(run_id: str, at: float, *, deployment: str = "hello/extract", state: str = "Completed") -> Any:
    flow, _, name = deployment.partition("/")
    return automations.Event(
        run_id=run_id,
        deployment=deployment,
        name=f"prefect.flow-run.{state}",
        occurred=T0 + timedelta(seconds=at),
        resource={"prefect.resource.id": f"prefect.flow-run.{run_id}", "prefect.state-name": state},
        related=(
            {
                "prefect.resource.id": f"prefect.flow.{flow}",
                "prefect.resource.role": "flow",
                "prefect.resource.name": flow,
            },
            {
                "prefect.resource.id": f"prefect.deployment.{deployment}",
                "prefect.resource.role": "deployment",
                "prefect.resource.name": name,
            },
        ),
    )


def _watch(since: datetime | None = None, **trigger: Any) -> automations.Watch:
    body = {
        "name": "w",
        "enabled": True,
        "trigger": {
            "type": "event",
            "match": {},
            "match_related": {"prefect.resource.role": "deployment", "prefect.resource.name": "extract"},
            "after": [],
            "expect": ["prefect.flow-run.Completed"],
            "for_each": [],
            "posture": "Reactive",
            "threshold": 1,
            "within": 0.0,
            **trigger,
        },
        "actions": [
            {"type": "run-deployment", "source": "inferred", "deployment": None, "parameters": None},
            {"type": "run-deployment", "source": "selected", "deployment": "deployment.hello/load"},
        ],
    }
    return automations.Watch("w", body, since)


def _fired(watch: automations.Watch, seen: list[Any], now: float = 1000) -> list[tuple[str, str]]:
    found = automations.decide(
        [watch], seen, now=T0 + timedelta(seconds=now), lookback=timedelta(seconds=3600)
    )
    return [(f.trigger_run, f.deployment) for f in found if f.action == 1]


def test_threshold_and_within_follow_prefects_buckets() -> None:
    seen = [_event(f"r{i}", at) for i, at in enumerate([0, 10, 20, 30, 100, 200, 230])]
    watch = _watch(threshold=2, within=60.0)
    # [0,60): r0, r1 -> fires at r1; the rest of the window (r2, r3) is spent; [60,120): r4 alone;
    # expired -> a window at 200: r5, r6 -> fires at r6
    assert _fired(watch, seen) == [("r1", "hello/load"), ("r6", "hello/load")]
    # within 0: no time limit, every second event
    assert [r for r, _ in _fired(_watch(threshold=2), seen)] == ["r1", "r3", "r5"]
    # threshold 1, within 0: every event
    assert len(_fired(_watch(), seen)) == len(seen)


def test_matching_is_prefects() -> None:
    seen = [
        _event("a", 1),
        _event("b", 2, state="Failed"),
        _event("c", 3, deployment="other/extract"),
        _event("d", 4, deployment="hello/load"),
    ]
    assert [r for r, _ in _fired(_watch(), seen)] == ["a", "c"]  # by role and name
    by_id = _watch(match_related={"prefect.resource.id": "prefect.deployment.hello/*"})
    assert [r for r, _ in _fired(by_id, seen)] == ["a", "d"]
    negated = _watch(
        match_related={"prefect.resource.id": ["prefect.deployment.*"], "prefect.resource.name": "!load"},
        expect=["prefect.flow-run.Completed", "prefect.flow-run.Failed"],
    )
    assert [r for r, _ in _fired(negated, seen)] == ["a", "b", "c"]
    each = _watch(threshold=2, for_each=["related:flow:prefect.resource.name"], match_related={})
    both = [
        _event("x1", 1),
        _event("y1", 2, deployment="other/x"),
        _event("x2", 3),
        _event("y2", 4, deployment="other/x"),
    ]
    assert [r for r, _ in _fired(each, both)] == ["x2", "y2"]


def test_inferred_source_runs_the_triggering_runs_deployment_and_old_events_do_not_count() -> None:
    found = automations.decide(
        [_watch()], [_event("a", 1)], now=T0 + timedelta(seconds=5), lookback=timedelta(seconds=60)
    )
    assert [(f.deployment, f.key) for f in found] == [
        ("hello/extract", "automation:w:a:0"),
        ("hello/load", "automation:w:a:1"),
    ]
    # written after the event: a server starts an updated automation's buckets afresh
    assert _fired(_watch(since=T0 + timedelta(seconds=2)), [_event("a", 1)]) == []
    assert _fired(_watch(), [_event("a", 1)], now=5000) == []  # past the lookback


def _passes(watch: automations.Watch, arrivals: list[list[Any]]) -> list[str]:
    """The firings recorded over passes that each see the events arrived so far (keys of action 1)."""
    recorded: set[str] = set()
    arrived: list[Any] = []
    for batch in arrivals:
        arrived += batch
        seen = sorted(arrived, key=lambda e: (e.occurred, e.run_id))
        found = automations.decide(
            [watch], seen, now=T0 + timedelta(days=1), lookback=timedelta(days=2), recorded=recorded
        )
        recorded |= {f.key for f in found}
    return sorted(k for k in recorded if k.endswith(":1"))


def test_a_late_run_end_never_fires_a_window_twice() -> None:
    watch = _watch(threshold=2, within=60.0)
    on_time = _passes(watch, [[_event("r0", 0), _event("r2", 20)], [_event("r1", 10)]])
    assert on_time == ["automation:w:r2:1"]  # r1 reached the store after r2 fired: not counted


@given(
    times=st.lists(st.integers(0, 600), min_size=1, max_size=12, unique=True),
    threshold=st.integers(1, 3),
    within=st.sampled_from([0.0, 30.0, 120.0]),
    order=st.randoms(use_true_random=False),
    cuts=st.lists(st.integers(0, 12), max_size=4),
)
def test_passes_in_any_arrival_order_fire_each_window_once(
    times: list[int], threshold: int, within: float, order: Any, cuts: list[int]
) -> None:
    watch = _watch(threshold=threshold, within=within)
    events = [_event(f"r{t:04d}", t) for t in times]
    in_order = sorted(events, key=lambda e: e.occurred)
    bounds = sorted({0, len(events), *(min(c, len(events)) for c in cuts)})
    batches = [in_order[a:b] for a, b in itertools.pairwise(bounds)]
    # arriving in time order, over any passes: the same firings as one pass over everything
    assert _passes(watch, batches) == _passes(watch, [in_order])
    shuffled = list(events)
    order.shuffle(shuffled)
    fired = [
        int(k.split(":")[2][1:])
        for k in _passes(watch, [shuffled[a:b] for a, b in itertools.pairwise(bounds)])
    ]
    # in any arrival order: firings at least `within` apart, never more than the events allow
    assert all(b - a >= within for a, b in itertools.pairwise(fired))
    assert len(fired) <= len(events) // threshold


# -- the plan on SQLite ------------------------------------------------------------------------------


UNSUPPORTED = """
name: auto
work_pools:
  - name: local
    type: process
deployments:
  - name: extract
    entrypoint: flows/hello.py:hello
    work_pool: {name: local}
automations:
  - name: fine
    trigger:
      expect: [prefect.flow-run.Failed]
      match_related: {prefect.resource.id: prefect.deployment.hello/extract}
    actions:
      - {type: run-deployment, deployment: hello/extract}
  - name: page-me
    trigger:
      expect: [prefect.flow-run.Failed]
    actions:
      - {type: send-notification, block: slack-webhook/ops, body: failed}
"""


@pytest.mark.parametrize(
    ("automation", "located"),
    [
        (
            "      - {type: send-notification, block: slack-webhook/ops, body: failed}",
            "prefect.yaml:20:16: automation 'page-me': a send-notification action needs a Prefect server",
        ),
        (
            "      - {type: pause-deployment, deployment: hello/extract}",
            "prefect.yaml:20:16: automation 'page-me': a pause-deployment action needs a Prefect server",
        ),
    ],
)
def test_an_automation_serve_cannot_run_is_a_located_plan_error_on_sqlite(
    tmp_path: Path, automation: str, located: str
) -> None:
    text = UNSUPPORTED.replace(
        "      - {type: send-notification, block: slack-webhook/ops, body: failed}", automation
    )
    root = make_project(tmp_path / "p", text, {"flows/hello.py": FLOW})
    assert run_cli("-C", str(root), "validate").returncode == 0  # a Prefect server would take it
    for command in (["plan"], ["apply", "--yes"]):
        result = run_cli("-C", str(root), *command)
        assert result.returncode == 1, result.stdout
        assert result.stderr.startswith(located), result.stderr
        assert "--state prefect+http://HOST/api" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (root / ".reconcile" / "state.db").exists()  # nothing was written


@pytest.mark.parametrize(
    ("trigger", "where"),
    [
        (
            "{type: metric, match: {prefect.resource.id: prefect.flow.*}, "
            "metric: {name: duration, threshold: 1, operator: '>', range: 300, firing_for: 300}}",
            "17:21: automation 'page-me': a metric trigger",
        ),
        (
            "{posture: Proactive, expect: [prefect.flow-run.Completed], within: 60}",
            "17:24: automation 'page-me': a Proactive trigger",
        ),
        (
            "{expect: [prefect.flow-run.Running], match_related: {prefect.resource.role: deployment}}",
            "17:23: automation 'page-me': the event 'prefect.flow-run.Running'",
        ),
    ],
)
def test_other_triggers_need_a_prefect_server(tmp_path: Path, trigger: str, where: str) -> None:
    text = UNSUPPORTED.replace(
        "    trigger:\n      expect: [prefect.flow-run.Failed]\n    actions:\n      - {type: send-notification",
        f"    trigger: {trigger}\n    actions:\n      - {{type: send-notification",
    ).replace(
        "{type: send-notification, block: slack-webhook/ops, body: failed}",
        "{type: run-deployment, deployment: hello/extract}",
    )
    root = make_project(tmp_path / "p", text, {"flows/hello.py": FLOW})
    result = run_cli("-C", str(root), "plan")
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith(f"prefect.yaml:{where} needs a Prefect server as the state"), (
        result.stderr
    )
