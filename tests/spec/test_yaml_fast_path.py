"""The fast YAML path must read every file exactly as PyYAML (and so Prefect) reads it."""

from __future__ import annotations

import datetime
import string

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.desired import yamlfile
from reconciler.errors import SpecError
from tests.strategies import word

# Plain scalars that YAML 1.1 and 1.2 may read differently, mixed with ordinary ones.
TRICKY = [
    "_0",
    "+_1",
    "._5",
    "_x",
    "yes",
    "No",
    "ON",
    "off",
    "y",
    "n",
    "true",
    "False",
    "null",
    "~",
    "0755",
    "-0755",
    "0o17",
    "0x1F",
    "0b101",
    "1_000",
    "1e3",
    "1.5e+3",
    "1.0e3",
    ".5",
    "-.inf",
    ".NaN",
    "1:20",
    "10:30:00",
    "190:20:30",
    "2024-01-01",
    "2024-01-01T10:30:00Z",
    "2024-01-01 10:30:00+02:00",
    "12",
    "-7",
    "3.25",
    "+4",
    "a1",
    "etl",
    "0",
    "00",
    "1.",
    "+.5",
    "0.",
    "=",
    "<<",
    "on-call",
    "yes please",
    "ghcr.io/acme/etl:1.4",
]
SAFE_WORDS = word(string.ascii_lowercase, string.ascii_lowercase + string.digits + "_-", 8)
PLAIN = st.one_of(st.sampled_from(TRICKY), SAFE_WORDS, st.integers(-(10**6), 10**6).map(str))
# Quoted scalars are strings in YAML 1.1 and 1.2 alike: "2024-01-01" must not come back as a date.
SCALARS = st.one_of(
    PLAIN,
    PLAIN.filter(lambda s: "'" not in s).map(lambda s: f"'{s}'"),
    PLAIN.filter(lambda s: '"' not in s and "\\" not in s).map(lambda s: f'"{s}"'),
)


def _emit(value: object, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:")
                lines.extend(_emit(item, indent + 2))
            else:
                lines.append(f"{pad}{key}: {_flow(item)}")
        return lines
    assert isinstance(value, list)
    lines = []
    for item in value:
        if isinstance(item, dict) and item:
            nested = _emit(item, indent + 2)
            lines.append(f"{pad}- {nested[0].lstrip()}")
            lines.extend(nested[1:])
        else:
            lines.append(f"{pad}- {_flow(item)}")
    return lines


def _flow(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return str(value)


documents = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=4),
        st.dictionaries(SAFE_WORDS, children, min_size=1, max_size=4),
    ),
    max_leaves=12,
).filter(lambda d: isinstance(d, dict))


@settings(max_examples=400, deadline=None)
@given(documents)
def test_fast_path_reads_what_pyyaml_reads(document: dict) -> None:
    text = "\n".join(_emit(document, 0)) + "\n"
    try:
        expected = yaml.safe_load(text)
    except yaml.YAMLError:
        with pytest.raises(SpecError):
            yamlfile.parse(text, file="f.yaml")
        return
    if isinstance(expected, dict) and len(expected) != len(document):
        return  # a generated duplicate key: PyYAML keeps the last one, we refuse (tested below)
    assert repr(yamlfile.parse(text, file="f.yaml")) == repr(expected)  # repr: nan != nan


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: yes\n", {"a": True}),
        ("a: 0755\n", {"a": 493}),
        ("a: 1:20\n", {"a": 80}),
        ("a: 1e3\n", {"a": "1e3"}),
        ("on: 1\n", {True: 1}),
        ("base: &b {x: 1}\nd: {<<: *b, y: 2}\n", {"base": {"x": 1}, "d": {"x": 1, "y": 2}}),
        ("a: 2024-01-01\n", {"a": datetime.date(2024, 1, 1)}),
        ("a: !!str 12\n", {"a": "12"}),
    ],
)
def test_yaml_1_1_semantics(text: str, expected: dict) -> None:
    assert repr(yamlfile.parse(text, file="f.yaml")) == repr(expected)  # repr: nan != nan


def test_a_typical_file_takes_the_fast_path() -> None:
    text = (
        "name: etl\ndeployments:\n  - name: dep-00001\n    entrypoint: flows/etl.py:etl\n"
        '    schedules: [{cron: "0 6 * * *", timezone: UTC}]\n    parameters: {rows: 10, ratio: 0.5}\n'
    )
    assert not yamlfile.needs_yaml11(text)


def test_duplicate_keys_are_refused_with_their_location() -> None:
    with pytest.raises(SpecError) as caught:
        yamlfile.parse("a: 1\nb:\n  c: 1\n  c: 2\n", file="f.yaml")
    assert str(caught.value) == "f.yaml:4:3: duplicate key 'c'"
