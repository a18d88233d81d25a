"""export for the workspace kinds (work queues, variables, global concurrency limits, automations):
each body the loader makes, written out as ``import`` writes it and loaded again, is the same body,
and Prefect's defaults are left out of the file. No server: bodies come from the loader."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import desired as desired_state
from reconciler.desired import export, yamledit
from reconciler.objects import Address, Kind, Resource
from tests.desired.automations_support import EXAMPLES, examples, load_automations
from tests.desired.test_automations_properties import items
from tests.strategies import word

KEY = b"k" * 32
SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
NAME = word(string.ascii_lowercase, string.ascii_lowercase + string.digits + "_-", 10).filter(
    lambda n: not n.startswith("prefect")
)
TEXT = st.one_of(
    st.sampled_from(["yes", "null", "1.0", "2024-01-01", "a: b", "#c", "", "{{ prefect.variables.x }}"]),
    st.text(alphabet=string.ascii_letters + string.digits + " _-.:#'\"é", max_size=20),
).filter(lambda t: "{{ $" not in t)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
FLOW = "def hello(name: str = 'world') -> str:\n    return name\n"


@st.composite
def workspaces(draw: st.DrawFn) -> dict[str, Any]:
    """A file with a pool, its queues, variables, limits and a deployment using a queue and a limit."""
    queues = [
        {"pool": "local", "name": name}
        | draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "description": TEXT,
                    "priority": st.integers(1, 50),
                    "concurrency_limit": st.none() | st.integers(0, 9),
                    "paused": st.booleans(),
                },
            )
        )
        for name in draw(st.lists(NAME, min_size=1, max_size=3, unique=True))
    ]
    for queue, priority in zip(queues, draw(st.permutations(range(1, 51))), strict=False):
        if "priority" in queue:  # Prefect keeps a pool's priorities unique; so does the loader
            queue["priority"] = priority
    variables = [
        {"name": name, "value": draw(JSON)}
        | draw(st.fixed_dictionaries({}, optional={"tags": st.lists(NAME, max_size=3)}))
        for name in draw(st.lists(NAME, max_size=3, unique=True))
    ]
    limits = [
        {"name": name, "limit": draw(st.integers(0, 20))}
        | draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "active": st.booleans(),
                    "slot_decay_per_second": st.sampled_from([0, 0.5, 1, 2.25]),
                },
            )
        )
        for name in draw(st.lists(NAME, min_size=1, max_size=3, unique=True))
    ]
    deployment: dict[str, Any] = {
        "name": "greet",
        "entrypoint": "flows/hello.py:hello",
        "work_pool": {"name": "local", "work_queue_name": draw(st.sampled_from(queues))["name"]},
        "global_concurrency_limit": draw(st.sampled_from(limits))["name"],
    }
    return {
        "work_pools": [{"name": "local", "type": "process"}],
        "work_queues": queues,
        "variables": variables,
        "concurrency_limits": limits,
        "deployments": [deployment],
    }


def _load(root: Path, text: str) -> desired_state.Desired:
    (root / "prefect.yaml").write_text(text, encoding="utf-8")
    return desired_state.load(desired_state.WorkingTree(root), environ={}, fingerprint_key=KEY)


def _exported(resources: list[Resource], header: str = "name: ws\n") -> str:
    ordered = sorted(resources, key=lambda r: (r.kind.rank, r.address.name))
    result = export.export(ordered, pool_types={"local": "process"})
    assert result.warnings == ()
    return yamledit.append(header, result.sections)


@SETTINGS
@given(doc=workspaces())
def test_property_workspace_bodies_survive_export_and_reload(tmp_path: Path, doc: dict[str, Any]) -> None:
    (tmp_path / "flows").mkdir(exist_ok=True)
    (tmp_path / "flows" / "hello.py").write_text(FLOW, encoding="utf-8")
    first = _load(tmp_path, "name: ws\n" + yamledit.dump_sections(doc))
    text = _exported(list(first.resources.values()))
    second = _load(tmp_path, text)
    assert dict(second.resources) == dict(first.resources)


@SETTINGS
@given(item=items())
def test_property_automation_bodies_survive_export_and_reload(item: dict[str, Any]) -> None:
    first = load_automations(yaml.safe_dump({"automations": [item]}, sort_keys=False))
    if first.errors:  # a run-deployment loop Prefect refuses: not a body the loader makes
        return
    (resource,) = first.resources.values()
    text = yamledit.dump_sections(export.export([resource]).sections)
    second = load_automations(text)
    assert second.errors == []
    assert second.resources == first.resources


def test_every_example_automation_survives_export_and_reload_in_one_file() -> None:
    loaded = examples()
    resources = sorted(loaded.resources.values(), key=lambda r: r.address.name)
    header = "# hand-written\nname: examples\n"
    text = yamledit.append(header, export.export(resources).sections)
    assert text.startswith(header)
    again = load_automations(text)
    assert again.errors == []
    assert again.resources == loaded.resources
    assert EXAMPLES.exists()


def test_defaults_are_left_out_and_references_are_written_as_the_file_names_them() -> None:
    queue = Resource(
        Address.work_queue("ecs", "high"),
        {
            "pool": "ecs",
            "name": "high",
            "description": "",
            "priority": None,
            "concurrency_limit": None,
            "paused": False,
        },
    )
    variable = Resource(Address.variable("region"), {"name": "region", "value": None, "tags": []})
    limit = Resource(
        Address.concurrency_limit("db"),
        {"name": "db", "limit": 3, "active": True, "slot_decay_per_second": 0.0},
    )
    automation = Resource(
        Address.automation("rerun"),
        {
            "name": "rerun",
            "description": "",
            "enabled": True,
            "tags": [],
            "trigger": {
                "type": "event",
                "match": {"prefect.resource.id": "prefect.flow-run.*"},
                "match_related": {"prefect.resource.id": "prefect.deployment.x"},
                "after": [],
                "expect": ["prefect.flow-run.Failed"],
                "for_each": [],
                "posture": "Proactive",
                "threshold": 1,
                "within": 10.0,
            },
            "actions": [
                {
                    "type": "run-deployment",
                    "source": "selected",
                    "deployment": "deployment.etl/daily",
                    "parameters": None,
                    "job_variables": None,
                    "schedule_after": 0.0,
                },
                {"type": "resume-deployment", "source": "inferred", "deployment": None},
                {
                    "type": "send-notification",
                    "block": "block.slack-webhook/ops",
                    "subject": "Prefect automated notification",
                    "body": "failed",
                },
            ],
            "actions_on_trigger": [],
            "actions_on_resolve": [],
        },
    )
    sections = export.export([variable, limit, queue, automation]).sections
    assert sections["work_queues"] == [{"pool": "ecs", "name": "high"}]
    assert sections["variables"] == [{"name": "region", "value": None}]
    assert sections["concurrency_limits"] == [{"name": "db", "limit": 3}]
    assert sections["automations"] == [
        {
            "name": "rerun",
            "trigger": {
                "type": "event",
                "match": {"prefect.resource.id": "prefect.flow-run.*"},
                "match_related": {"prefect.resource.id": "prefect.deployment.x"},
                "expect": ["prefect.flow-run.Failed"],
                "posture": "Proactive",
            },
            "actions": [
                {"type": "run-deployment", "deployment": "etl/daily"},
                {"type": "resume-deployment", "source": "inferred"},
                {"type": "send-notification", "block": "slack-webhook/ops", "body": "failed"},
            ],
        }
    ]


def test_what_an_object_needs_is_listed_so_import_brings_it_along() -> None:
    deployment = Resource(
        Address.deployment("hello", "greet"),
        {
            "name": "greet",
            "work_pool": {"name": "local", "work_queue_name": "high", "job_variables": {}},
            "global_concurrency_limit": "db",
            "parameters": {"region": "{{ prefect.variables.region }}"},
        },
    )
    queue = Resource(Address.work_queue("local", "high"), {"pool": "local", "name": "high"})
    automation = Resource(
        Address.automation("a"),
        {
            "name": "a",
            "trigger": {"type": "event"},
            "actions": [{"type": "pause-work-queue", "work_queue": "work_queue.local/high"}],
            "actions_on_trigger": [{"type": "send-notification", "block": "block.slack-webhook/ops"}],
            "actions_on_resolve": [],
        },
    )
    assert export.dependencies(deployment) == [
        Address.variable("region"),
        Address.pool("local"),
        Address.work_queue("local", "high"),
        Address.concurrency_limit("db"),
    ]
    assert export.dependencies(queue) == [Address.pool("local")]
    assert export.dependencies(automation) == [
        Address.work_queue("local", "high"),
        Address.block("slack-webhook", "ops"),
    ]
    unknown = {**automation.body, "actions": [{"type": "pause-deployment", "deployment": "deployment_id:1"}]}
    assert export.raw_ids(unknown) == ["deployment_id:1"]
    assert export.raw_ids(automation.body) == []
    assert Kind.AUTOMATION in export.SECTIONS
