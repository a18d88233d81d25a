"""The project name of a file that does not parse: read from its top-level ``name:`` line alone."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import desired as desired_state
from reconciler.desired.identity import lenient_name
from tests.strategies import word


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("name: etl\ndeployments: [\n", "etl"),
        ("# header\nname: 'quoted name'  # comment\n  bad: [", "quoted name"),
        ('prefect-version: 3\nname: "double"\n', "double"),
        ("name: plain # trailing comment\n", "plain"),
        ("  name: indented\n", None),  # not top-level (a deployment's name)
        ("deployments:\n- name: greet\n", None),
        ("name:\n", None),
        ("name: # only a comment\n", None),
        ("name: '{{ $PROJECT }}'\n", None),
        ("name: |\n  block\n", None),
        ("", None),
    ],
)
def test_lenient_name(text: str, name: str | None) -> None:
    assert lenient_name(text) == name


SAFE = word(
    string.ascii_lowercase,
    string.ascii_lowercase + string.digits + " _.-",
    20,
    last=string.ascii_lowercase + string.digits,
)


@settings(max_examples=200, deadline=None)
@given(name=SAFE, quote=st.sampled_from(["", "'", '"']))
def test_lenient_name_agrees_with_yaml_when_the_file_parses(name: str, quote: str) -> None:
    text = f"name: {quote}{name}{quote}\nprefect-version: 3.9.1\n"
    assert lenient_name(text) == yaml.safe_load(text)["name"].strip()


def test_project_of_a_broken_file_is_its_name_line_not_the_directory(tmp_path: Path) -> None:
    root = tmp_path / "directory-name"
    root.mkdir()
    (root / "prefect.yaml").write_text("name: real-name\ndeployments: [unclosed\n", encoding="utf-8")
    tree = desired_state.WorkingTree(root)
    assert desired_state.project_of(tree, "prefect.yaml") == "real-name"
    (root / "prefect.yaml").write_text("deployments: [unclosed\n", encoding="utf-8")
    assert desired_state.project_of(tree, "prefect.yaml") == "directory-name"  # nothing better to go on
