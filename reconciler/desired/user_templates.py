"""Jinja templates in automation actions, judged as Prefect's server judges them on create.

Prefect renders a notification's subject and body, a webhook's payload and a run-deployment's
string parameters with Jinja when the automation fires, and refuses the automation (422) when one
does not parse or has more loops than it allows (``prefect.server.utilities.user_templates``:
``validate_user_template``, and ``RunDeployment.validate_parameters`` for parameters). The same
check here makes that a located error at validate, not a failed apply.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_LOOP_COUNT = 10  # prefect.server.utilities.user_templates.MAX_LOOP_COUNT
MAX_NESTED_LOOP_DEPTH = 2  # ... MAX_NESTED_LOOP_DEPTH
Path = tuple[str | int, ...]


@functools.cache
def _environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment()


def maybe_template(text: str) -> bool:
    """Prefect's own test for a string that is a template (``maybe_template``)."""
    return "{{" in text or "{%" in text


def problem(template: str) -> str | None:
    """Why Prefect's server refuses ``template``, or None."""
    try:
        root = _environment().parse(template)
    except TemplateSyntaxError as exc:
        reason = (exc.message or "syntax error").rstrip(".")
        return f"not a valid template: {reason} (line {exc.lineno} of the template)"
    loops = list(root.find_all(nodes.For))
    if len(loops) > MAX_LOOP_COUNT:
        return f"not a valid template: {len(loops)} for loops, Prefect allows at most {MAX_LOOP_COUNT}"
    depth = max((_loop_depth(loop) for loop in loops), default=0)
    if depth > MAX_NESTED_LOOP_DEPTH:
        return f"not a valid template: for loops nested {depth} deep, Prefect allows at most {MAX_NESTED_LOOP_DEPTH}"
    return None


def _loop_depth(node: nodes.Node, depth: int = 0) -> int:
    if isinstance(node, nodes.For):
        depth += 1
    return max([depth, *(_loop_depth(child, depth) for child in node.iter_child_nodes())])


def parameter_templates(parameters: dict[str, Any], path: Path = ()) -> Iterator[tuple[Path, str]]:
    """The strings of run-deployment parameters Prefect treats as templates (its v1 upgrade: any
    string value of a mapping, at any depth, and of a list; a ``__prefect_kind`` value is its own)."""
    for key, value in parameters.items():
        if isinstance(value, dict):
            if "__prefect_kind" not in value:
                yield from parameter_templates(value, (*path, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    yield from parameter_templates(item, (*path, key, i))
                elif isinstance(item, str) and maybe_template(item):
                    yield (*path, key, i), item
        elif isinstance(value, str) and maybe_template(value):
            yield (*path, key), value
