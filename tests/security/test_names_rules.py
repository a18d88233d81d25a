"""Issue 9 item 11: names follow Prefect's rules plus ours (no control character, no newline, none of
Prefect's banned characters), refused at validate with ``prefect.yaml:LINE:COL`` — flow names read
from ``@flow(name=...)`` included (reported at the entrypoint) — and never echoed raw."""

from __future__ import annotations

import json
import re
from pathlib import Path
from subprocess import CompletedProcess

import jsonschema_rs
from hypothesis import given
from hypothesis import strategies as st

from reconciler.desired.names import BANNED_CHARACTERS, NameKind, is_unsafe_char, problem, show
from reconciler.desired.schema import SCHEMA_FILE
from tests.helpers import make_project, run_cli

FLOW = "def hello():\n    return 1\n"


def _validate(tmp_path: Path, text: str, flows: dict[str, str] | None = None) -> CompletedProcess[str]:
    project = make_project(tmp_path / "p", text, flows or {"flows/hello.py": FLOW})
    return run_cli("-C", str(project), "validate")


def test_a_newline_in_a_deployment_name_cannot_fake_a_plan_line(tmp_path: Path) -> None:
    result = _validate(
        tmp_path,
        'deployments:\n  - name: "x\\nPlan: 0 to create, 0 to update, 0 to replace, 0 to delete."\n'
        "    entrypoint: flows/hello.py:hello\n",
    )
    assert result.returncode == 1
    assert result.stderr.startswith("prefect.yaml:2:11: deployments[0].name: may not contain")
    assert "\nPlan:" not in result.stderr and "\nPlan:" not in result.stdout


def test_a_flow_name_from_the_decorator_is_checked_at_the_entrypoint(tmp_path: Path) -> None:
    flow = 'from prefect import flow\n\n\n@flow(name="etl\\u202e/evil")\ndef hello():\n    pass\n'
    result = _validate(
        tmp_path,
        "deployments:\n  - name: d\n    entrypoint: flows/hello.py:hello\n",
        {"flows/hello.py": flow},
    )
    assert result.returncode == 1
    assert result.stderr.startswith("prefect.yaml:3:17: flow name 'etl\\u202e/evil' may not contain")
    assert "flows/hello.py:4" in result.stderr
    assert "\u202e" not in result.stderr


def test_slugs_pools_queues_and_blocks_follow_the_rules(tmp_path: Path) -> None:
    result = _validate(
        tmp_path,
        "blocks:\n  - {type: secret, name: Bad_Name, data: {value: x}}\n"
        "work_pools:\n  - {name: 'pool&co', type: process}\n"
        "deployments:\n  - name: d\n    entrypoint: flows/hello.py:hello\n"
        "    work_pool: {name: 'pool&co', work_queue_name: \"q\\x07\"}\n"
        "    schedules: [{cron: '0 6 * * *', slug: 'a>b'}]\n",
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any(line.startswith("prefect.yaml:2:") and "blocks[0].name" in line for line in lines)
    assert any(line.startswith("prefect.yaml:4:") and "work_pools[0].name" in line for line in lines)
    assert any("work_queue_name" in line for line in lines)
    assert any("slug" in line for line in lines)
    assert "\x07" not in result.stderr
    assert not re.search(r"\^\[|\]\+\$", result.stderr), "no raw regex in messages"


_NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)


@given(_NAMES)
def test_the_schema_and_the_loader_agree_on_names(name: str) -> None:
    """The schema's pattern (as jsonschema-rs, the loader's validator, and ECMA editors read it) and the
    loader's rule accept exactly the same deployment names. (Python's ``re`` lets ``$`` match before a
    final newline, so the Python reference validator is not the judge here.)"""
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    pattern = schema["$defs"]["deployment"]["properties"]["name"]["pattern"]
    by_schema = jsonschema_rs.Draft202012Validator({"pattern": pattern}).is_valid(name)
    assert by_schema == (problem(name, NameKind.DEPLOYMENT) is None)


@given(_NAMES)
def test_messages_never_hold_an_unsafe_character(name: str) -> None:
    for kind in NameKind:
        message = problem(name, kind) or ""
        assert not any(is_unsafe_char(c) for c in message)
    assert not any(is_unsafe_char(c) for c in show(name))


def test_prefects_own_banned_characters() -> None:
    from prefect.types.names import BANNED_CHARACTERS as PREFECTS

    assert set(BANNED_CHARACTERS) == set(PREFECTS)
