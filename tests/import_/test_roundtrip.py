"""export is the loader's inverse: any body the loader makes, written out and loaded again, is the same."""

from __future__ import annotations

import string
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import desired as desired_state
from reconciler.desired import export, yamledit
from reconciler.objects import Kind, Resource, Secret
from tests.helpers import QUICKSTART
from tests.strategies import word

KEY = b"k" * 32
FLOWS = {
    "flows/a.py": '''
        def alpha(x: int = 1) -> int:
            """Alpha's docstring."""
            return x
        ''',
    "flows/b.py": """
        def beta_flow() -> None:
            pass
        """,
    "flows/c.py": """
        from prefect import flow


        @flow(name="custom-name")
        def gamma() -> None:
            pass
        """,
}
ENTRYPOINTS = ["flows/a.py:alpha", "flows/b.py:beta_flow", "flows/c.py:gamma"]
ENVIRON = {
    f"{prefix}_{i}": f"value-{prefix.lower()}-{i}"
    for prefix in ("API_KEY", "PLAIN", "TOKEN")
    for i in range(3)
}
ENVIRON["FLOW_AWS_SECRET_ACCESS_KEY"] = "s3cr3t/value"

# Text that stresses YAML: indicators, quotes, numbers-as-text, 1.1 booleans, unicode, line breaks.
SPICY = st.sampled_from(
    [
        "yes",
        "no",
        "on",
        "null",
        "~",
        "1.0",
        "0o17",
        "1e3",
        "1_000",
        "_0",
        "+_1",
        "._5",
        "2024-01-01",
        "12:30",
        "- x",
        "a: b",
        "#c",
        "",
    ]
)
TEXT = st.one_of(
    SPICY,
    st.text(alphabet=string.ascii_letters + string.digits + " _-.:#'\"&*!|>%@`,[]é\u00a0", max_size=20),
    st.text(alphabet=string.ascii_letters + " \n", min_size=1, max_size=30),
).filter(lambda t: "{{" not in t)
NAME = word(string.ascii_lowercase, string.ascii_lowercase + string.digits + "-", 10).filter(
    lambda n: not n.startswith("prefect")
)
KEYS = st.one_of(
    SPICY, word(string.ascii_letters + "_", string.ascii_letters + string.digits + "_ .-", 8)
).filter(lambda k: k != "$secret")
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
)
ENV_VALUES = st.one_of(
    TEXT,
    st.sampled_from(
        ["{{ $API_KEY_0 }}", "Bearer {{ $TOKEN_1 }}", "{{ $PLAIN_2 }}", "{{ prefect.variables.x }}"]
    ),
)
TIMEZONES = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"])


def schedules() -> st.SearchStrategy[dict[str, Any]]:
    common = {
        "timezone": st.none() | TIMEZONES,
        "active": st.booleans(),
        "parameters": st.dictionaries(KEYS, JSON, max_size=2),
        "slug": st.none() | NAME,
    }
    cron = st.fixed_dictionaries(
        {"cron": st.sampled_from(["0 6 * * *", "*/5 * * * 1-5", "0 0 1 * *"])},
        optional={**common, "day_or": st.booleans()},
    )
    interval = st.fixed_dictionaries(
        {"interval": st.sampled_from([60, 90.5, 3600, "PT10M", "01:00:00"])},
        optional={
            **common,
            "anchor_date": st.sampled_from(["2024-01-01T09:00:00", "2023-06-01T00:00:00+0200"]),
        },
    )
    rrule = st.fixed_dictionaries(
        {"rrule": st.sampled_from(["FREQ=DAILY;BYHOUR=9", "FREQ=WEEKLY;BYDAY=MO,FR"])}, optional=common
    )
    return st.one_of(cron, interval, rrule)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": "roundtrip"}
    blocks: list[dict[str, Any]] = []
    for i, name in enumerate(draw(st.lists(NAME, max_size=3, unique=True))):
        kind = draw(st.sampled_from(["aws-credentials", "secret", "string", "json"]))
        if kind == "aws-credentials":
            data = {
                "aws_access_key_id": draw(TEXT),
                "aws_secret_access_key": "{{ $FLOW_AWS_SECRET_ACCESS_KEY }}",
                "region_name": draw(st.sampled_from(["us-east-1", "eu-west-1"])),
            }
        elif kind == "secret":
            data = {"value": f"Bearer {{{{ $TOKEN_{i} }}}}"}
        elif kind == "string":
            data = {"value": draw(TEXT)}
        else:
            data = {"value": draw(JSON)}
        blocks.append({"type": kind, "name": name, "data": data})
    if blocks or draw(st.booleans()):
        doc["blocks"] = blocks
    pools = []
    for name in draw(st.lists(NAME, min_size=1, max_size=3, unique=True)):
        pool: dict[str, Any] = {"name": name, "type": "process"}
        extra = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "description": st.none() | TEXT,
                    "concurrency_limit": st.none() | st.integers(0, 50),
                    "paused": st.booleans(),
                    "job_variables": st.fixed_dictionaries(
                        {},
                        optional={
                            "env": st.dictionaries(
                                word(string.ascii_uppercase, string.ascii_uppercase + "_", 6),
                                ENV_VALUES,
                                max_size=3,
                            ),
                            "working_dir": TEXT,
                            "stream_output": st.booleans(),
                            "labels": st.dictionaries(KEYS, TEXT, max_size=2),
                        },
                    ),
                },
            )
        )
        pools.append({**pool, **extra})
    doc["work_pools"] = pools
    deployments = []
    for name in draw(st.lists(NAME, min_size=1, max_size=4, unique=True)):
        dep: dict[str, Any] = {"name": name, "entrypoint": draw(st.sampled_from(ENTRYPOINTS))}
        extra = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "description": TEXT.filter(bool),
                    "version": st.none() | TEXT.filter(bool),
                    "tags": st.lists(TEXT.filter(lambda t: t.strip() == t and t), max_size=3),
                    "parameters": st.dictionaries(KEYS, JSON, max_size=3),
                    "enforce_parameter_schema": st.booleans(),
                    "schedules": st.lists(schedules(), max_size=3),
                    "paused": st.booleans(),
                    "concurrency_limit": st.none()
                    | st.integers(0, 9)
                    | st.fixed_dictionaries(
                        {"limit": st.integers(0, 9)},
                        optional={
                            "collision_strategy": st.sampled_from(["ENQUEUE", "CANCEL_NEW"]),
                            "grace_period_seconds": st.none() | st.integers(60, 600),
                        },
                    ),
                    "work_pool": st.fixed_dictionaries(
                        {"name": st.sampled_from([p["name"] for p in pools])},
                        optional={
                            "work_queue_name": st.none() | NAME,
                            "job_variables": st.fixed_dictionaries(
                                {}, optional={"env": st.dictionaries(st.just("K"), ENV_VALUES, max_size=1)}
                            ),
                        },
                    ),
                    "pull": st.none()
                    | st.lists(
                        st.fixed_dictionaries(
                            {
                                "prefect.deployments.steps.run_shell_script": st.fixed_dictionaries(
                                    {"script": TEXT}
                                )
                            }
                        ),
                        max_size=2,
                    ),
                    "triggers": st.lists(
                        st.fixed_dictionaries(
                            {"enabled": st.booleans(), "match": st.dictionaries(KEYS, TEXT, max_size=2)}
                        ),
                        max_size=2,
                    ),
                },
            )
        )
        deployments.append({**dep, **extra})
    doc["deployments"] = _unique_schedule_slugs(deployments)
    if draw(st.booleans()):
        doc["pull"] = [{"prefect.deployments.steps.set_working_directory": {"directory": "/opt/flows"}}]
    return doc


def _unique_schedule_slugs(deployments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for dep in deployments:
        seen: set[str] = set()
        for schedule in dep.get("schedules") or []:
            if schedule.get("slug") in seen:
                schedule["slug"] = None
            if schedule.get("slug"):
                seen.add(schedule["slug"])
        # derived slugs (cron-1, ...) must not collide with given ones either
        if any(
            s.get("slug") and s["slug"].split("-")[0] in ("cron", "interval", "rrule")
            for s in dep.get("schedules") or []
        ):
            dep.pop("schedules")
    return deployments


def load_text(root: Path, text: str) -> desired_state.Desired:
    (root / "prefect.yaml").write_text(text, encoding="utf-8")
    return desired_state.load(desired_state.WorkingTree(root), environ=ENVIRON, fingerprint_key=KEY)


def write_flows(root: Path) -> None:
    for relpath, source in FLOWS.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")


def exported_text(desired: desired_state.Desired, header: str, *, inherited_pull: Any) -> str:
    resources = sorted(desired.resources.values(), key=lambda r: (r.kind.rank, r.address.name))
    pool_types = {r.address.name: r.body["type"] for r in resources if r.kind is Kind.WORK_POOL}
    result = export.export(resources, inherited_pull=inherited_pull, pool_types=pool_types)
    assert result.placeholders == ()  # every secret here has a template to keep
    return yamledit.append(header, result.sections)


@pytest.mark.slow
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(doc=documents())
def test_property_loaded_bodies_survive_export_and_reload(tmp_path: Path, doc: dict[str, Any]) -> None:
    write_flows(tmp_path)
    # The input is dumped as import dumps: PyYAML's dumper leaves `_0` plain, which the loader's fast
    # parser reads as a number (a loader bug, reported); import's dumper quotes what either misreads.
    sections = {k: doc[k] for k in ("pull", "blocks", "work_pools", "deployments") if k in doc}
    first = load_text(tmp_path, "name: roundtrip\n" + yamledit.dump_sections(sections))
    header = "name: roundtrip\n" + (yamledit.dump_sections({"pull": doc["pull"]}) if "pull" in doc else "")
    text = exported_text(first, header, inherited_pull=doc.get("pull"))
    second = load_text(tmp_path, text)
    assert dict(second.resources) == dict(first.resources)
    for name, value in ENVIRON.items():
        if desired_state.is_sensitive_env(name):
            assert value not in text  # secrets as placeholders only, never what they resolve to


def test_the_quickstart_survives_export_and_reload(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "qs"
    shutil.copytree(QUICKSTART, root, ignore=shutil.ignore_patterns(".reconcile"))
    first = desired_state.load(desired_state.WorkingTree(root), environ={}, fingerprint_key=KEY)
    text = exported_text(first, "name: quickstart\n", inherited_pull=None)
    second = load_text(root, text)
    assert dict(second.resources) == dict(first.resources)


def test_secrets_without_a_known_template_get_a_suggested_placeholder_and_never_a_value() -> None:
    block = Resource(
        export.Address.block("aws-credentials", "prod"),
        {
            "type": "aws-credentials",
            "name": "prod",
            "data": {
                "aws_access_key_id": "AKIA1",
                "aws_secret_access_key": "the-real-secret",
                "region_name": "x",
            },
        },
    )
    pool = Resource(
        export.Address.pool("local"),
        {
            "type": "process",
            "description": None,
            "concurrency_limit": None,
            "paused": False,
            "job_variables": {
                "env": {"API": Secret("", "hmac-sha256:00"), "KEEP": Secret("{{ $KEEP_TOKEN }}", "x")}
            },
            "base_job_template": None,
        },
    )
    result = export.export([block, pool])
    assert result.sections["blocks"][0]["data"]["aws_secret_access_key"] == (
        "{{ $FLOW_AWS_CREDENTIALS_PROD_AWS_SECRET_ACCESS_KEY }}"
    )
    env = result.sections["work_pools"][0]["job_variables"]["env"]
    assert env == {"API": "{{ $LOCAL_ENV_API_SECRET }}", "KEEP": "{{ $KEEP_TOKEN }}"}
    assert result.placeholders == ("FLOW_AWS_CREDENTIALS_PROD_AWS_SECRET_ACCESS_KEY", "LOCAL_ENV_API_SECRET")
    assert "the-real-secret" not in repr(result.sections)


def test_defaults_are_left_out_and_limits_keep_their_short_form() -> None:
    body = {
        "flow_name": "hello",
        "name": "d",
        "entrypoint": "flows/hello.py:hello",
        "description": None,
        "version": None,
        "tags": [],
        "parameters": {},
        "enforce_parameter_schema": True,
        "work_pool": {"name": "local", "work_queue_name": "default", "job_variables": {}},
        "schedules": {
            "cron-1": {
                "cron": "0 6 * * *",
                "timezone": "UTC",
                "day_or": True,
                "active": True,
                "parameters": {},
            }
        },
        "paused": False,
        "concurrency_limit": {"limit": 2, "collision_strategy": "ENQUEUE", "grace_period_seconds": None},
        "pull_steps": None,
        "triggers": [],
    }
    item = export.export([Resource(export.Address.deployment("hello", "d"), body)]).sections["deployments"][0]
    assert item == {
        "name": "d",
        "entrypoint": "flows/hello.py:hello",
        "schedules": [{"cron": "0 6 * * *", "timezone": "UTC", "slug": "cron-1"}],
        "concurrency_limit": 2,
        "work_pool": {"name": "local"},
    }
