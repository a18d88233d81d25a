"""Appending to a hand-written prefect.yaml keeps every byte a person wrote, in place."""

from __future__ import annotations

import difflib
import textwrap

import pytest

from reconciler.desired import yamledit, yamlfile

COMMENTED = textwrap.dedent(
    """\
    # yaml-language-server: $schema=../../schemas/prefect.schema.json
    # Our project.   Keep this header!
    name: demo    # the project name
    prefect-version: 3.9.1

    work_pools:
      # the one pool we have
      - name: local   # a comment after a value
        type: 'process'
        job_variables:
          env: {STAGE: "dev", EMPTY: ""}
      #  - name: old-pool     (a commented-out item stays in the section)

    # Deployments follow.
    # Two lines of introduction.
    deployments:
      - name: greet
        entrypoint: flows/hello.py:hello
        tags: [demo,   spaced]
        parameters:
          name:    world   # odd spacing is kept
        schedules:
          - cron: "0 6 * * *"
            slug: morning


    pull:
      - prefect.deployments.steps.set_working_directory:
          directory: /opt/flows
    # trailing comment at the very end
    """
)
NEW_POOL = {
    "name": "batch",
    "type": "process",
    "concurrency_limit": 3,
    "job_variables": {"env": {"A": "yes"}},
}
NEW_DEPLOYMENT = {
    "name": "nightly",
    "entrypoint": "flows/report.py:daily_report",
    "description": "Builds the report.\nTwo lines.",
    "tags": ["reports"],
    "schedules": [{"cron": "30 2 * * *", "timezone": "Europe/Berlin", "slug": "night"}],
    "work_pool": {"name": "batch", "job_variables": {"env": {"TOKEN": "{{ $REPORT_TOKEN }}"}}},
}
NEW_BLOCK = {"type": "secret", "name": "api", "data": {"value": "{{ $API_TOKEN }}"}}


def inserted(before: str, after: str) -> list[str]:
    """The lines ``after`` adds, asserting it removes or changes none of ``before``'s."""
    ops = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(), autojunk=False).get_opcodes()
    added: list[str] = []
    for tag, i1, i2, j1, j2 in ops:
        assert tag in ("equal", "insert"), (tag, before.splitlines()[i1:i2], after.splitlines()[j1:j2])
        if tag == "insert":
            added += after.splitlines()[j1:j2]
    return added


def test_every_original_line_stays_in_order_and_items_land_in_their_sections() -> None:
    sections = {"blocks": [NEW_BLOCK], "work_pools": [NEW_POOL], "deployments": [NEW_DEPLOYMENT]}
    after = yamledit.append(COMMENTED, sections)
    added = inserted(COMMENTED, after)
    assert "".join(line + "\n" for line in added if line) and all(not line.startswith("#") for line in added)
    lines = after.splitlines()
    # the new pool follows the commented-out item, before the blank line and the next section's comments
    at = lines.index("  - name: batch")
    assert lines[at - 1] == "  #  - name: old-pool     (a commented-out item stays in the section)"
    assert lines[at + 5] == '        A: "yes"'
    # the new deployment follows the last one, before the blank lines that lead to pull:
    at = lines.index("  - name: nightly")
    assert lines[at - 1] == "        slug: morning"
    assert lines[at + 2 : at + 5] == ["    description: |-", "      Builds the report.", "      Two lines."]
    # a missing section goes before the first section that comes after it in apply order
    assert after.index("blocks:\n  - type: secret") < after.index("work_pools:")
    doc = yamlfile.parse(after, file="prefect.yaml")
    assert [p["name"] for p in doc["work_pools"]] == ["local", "batch"]
    assert [d["name"] for d in doc["deployments"]] == ["greet", "nightly"]
    assert doc["deployments"][1] == NEW_DEPLOYMENT and doc["pull"][0]


def test_the_files_own_indentation_is_used() -> None:
    flush = "name: x\ndeployments:\n- name: a\n  entrypoint: f.py:a\n  schedules:\n  - cron: '* * * * *'\n"
    after = yamledit.append(
        flush, {"deployments": [{"name": "b", "entrypoint": "f.py:b", "tags": ["t"] * 30}]}
    )
    assert after.startswith(flush)
    assert after[len(flush) :].startswith("- name: b\n  entrypoint: f.py:b\n  tags:\n  - t\n")
    wide = "deployments:\n    -   name: a\n        entrypoint: f.py:a\n"
    after = yamledit.append(wide, {"deployments": [{"name": "b", "entrypoint": "f.py:b"}]})
    assert after == wide + "    -   name: b\n        entrypoint: f.py:b\n"


@pytest.mark.parametrize(
    ("text", "expected_head"),
    [
        ("name: x\ndeployments:    # none yet\nblocks: []\n", "deployments:  # none yet\n  - name: b\n"),
        ("name: x\ndeployments: null\n", "deployments:\n  - name: b\n"),
        ("name: x\ndeployments: [ ]   # empty\n", "deployments:  # empty\n  - name: b\n"),
    ],
)
def test_empty_sections_are_filled(text: str, expected_head: str) -> None:
    after = yamledit.append(text, {"deployments": [{"name": "b", "entrypoint": "f.py:b"}]})
    assert expected_head in after
    assert yamlfile.parse(after, file="prefect.yaml")["deployments"] == [
        {"name": "b", "entrypoint": "f.py:b"}
    ]


def test_a_new_file_and_a_file_without_final_newline() -> None:
    assert yamledit.append("", {"work_pools": [{"name": "p", "type": "process"}]}) == (
        "work_pools:\n  - name: p\n    type: process\n"
    )
    after = yamledit.append("name: x", {"work_pools": [{"name": "p", "type": "process"}]})
    assert after == "name: x\n\nwork_pools:\n  - name: p\n    type: process\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("deployments: [{name: a, entrypoint: 'f.py:a'}]\n", "not a block list"),
        ("- just\n- a list\n", "top level is not a mapping"),
        ("deployments:\n  - name: a\n  bad: [\n", "cannot edit"),
    ],
)
def test_files_it_cannot_edit_safely_are_refused(text: str, message: str) -> None:
    with pytest.raises(yamledit.EditError, match=message):
        yamledit.append(text, {"deployments": [{"name": "b", "entrypoint": "f.py:b"}]})


@pytest.mark.parametrize(
    "value",
    [
        "yes",
        "No",
        "on",
        "null",
        "~",
        "1.0",
        "0o17",
        "0x1F",
        "1e3",
        "1_000",
        "_0",
        "+_1",
        "._5",
        "1e+16",
        "12:30",
        "2024-01-01",
        "2024-06-01T09:00:00",
        "- x",
        "a: b",
        "#c",
        "",
        " padded ",
        "{{ $X }}",
        "*",
        "&a",
        "!t",
        "%x",
        "@x",
        "`x",
        "'q'",
        '"q"',
        "multi\nline\n",
    ],
)
def test_strings_read_back_as_the_same_strings(value: str) -> None:
    text = yamledit.dump_sections({"deployments": [{"name": value, value: [value], "tags": [value, "x"]}]})
    assert yamlfile.parse(text, file="prefect.yaml") == {
        "deployments": [{"name": value, value: [value], "tags": [value, "x"]}]
    }


def test_guess_style_defaults_to_the_examples_style() -> None:
    assert yamledit.guess_style("") == yamledit.Style(mapping=2, sequence=4, offset=2)
    assert yamledit.guess_style("a:\n- b: 1\n  c: 2\n") == yamledit.Style(mapping=2, sequence=2, offset=0)
