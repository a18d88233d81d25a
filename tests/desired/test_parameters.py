"""The parameter schema we read from source equals the one Prefect computes by importing the flow."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.desired import parameters
from tests.desired import parameter_corpus

callables = pytest.importorskip("prefect.utilities.callables")

CORPUS = Path(parameter_corpus.__file__)
FUNCTIONS = [
    name
    for name, value in vars(parameter_corpus).items()
    if inspect.isfunction(value) and value.__module__ == parameter_corpus.__name__
]


def ours(function: str, source: str | None = None) -> dict:
    module = ast.parse(source if source is not None else CORPUS.read_text(encoding="utf-8"))
    node = parameters._function(module, function)
    assert node is not None
    return parameters.function_schema(module, node)


def prefects(fn) -> dict:
    return callables.parameter_schema(fn).model_dump(exclude_unset=True)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_schema_equals_prefects(function: str) -> None:
    assert ours(function) == prefects(getattr(parameter_corpus, function))


PREAMBLE = '''
import datetime
from enum import Enum
from typing import Any, Literal, Optional, Union
from pydantic import BaseModel


class Color(str, Enum):
    RED = "red"
    BLUE = "blue"


class Point(BaseModel):
    """A point."""

    x: int
    y: int = 0
'''
# (annotation, defaults that suit it): combined at random into signatures
KINDS = [
    ("int", ["1", "-3", "None"]),
    ("str", ['"a"', "None"]),
    ("float", ["1.5", "2"]),
    ("bool", ["True"]),
    ("list[int]", ["[]", "[1, 2]"]),
    ("dict[str, Any]", ["{}", '{"k": 1}']),
    ("Optional[int]", ["None", "3"]),
    ("Union[int, str]", ["1", '"x"']),
    ("int | None", ["None"]),
    ('Literal["a", "b"]', ['"a"']),
    ("Color", ["Color.RED", '"blue"']),
    ("Optional[Point]", ["None"]),
    ("Point", []),
    ("datetime.date", ["datetime.date(2024, 1, 1)"]),
    ("tuple[int, ...]", ["()"]),
    ("'int'", ["1"]),
    ("", ["1", "None", '"s"']),
    ("Unknown", ["None"]),
]


@given(
    st.lists(
        st.tuples(st.integers(0, len(KINDS) - 1), st.integers(0, 3), st.booleans()),
        max_size=6,
    ),
    st.booleans(),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_signatures_match_prefect(tmp_path_factory, specs, documented) -> None:
    """Random signatures (typed or not, with or without defaults, documented or not) give Prefect's schema."""
    params, seen_default = [], False
    for i, (kind, choice, with_default) in enumerate(specs):
        annotation, defaults = KINDS[kind]
        text = f"p{i}" + (f": {annotation}" if annotation else "")
        if (with_default and defaults) or seen_default:
            if not defaults:
                continue
            text += f" = {defaults[choice % len(defaults)]}"
            seen_default = True
        params.append(text)
    doc = ""
    if documented and params:
        doc = (
            '    """Run.\n\n    Args:\n'
            + "".join(f"        p{i}: parameter {i}\n" for i in range(len(params)))
            + '    """\n'
        )
    source = PREAMBLE + "Unknown = object\n" + f"\n\ndef flow_fn({', '.join(params)}):\n{doc}    pass\n"
    path = tmp_path_factory.mktemp("corpus") / "generated.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"generated_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert ours("flow_fn", source) == prefects(module.flow_fn)
