"""What a work-pool type is: its variables schema, its job-configuration template, and its rules.

A pool type mirrors Prefect's ``base_job_template``: ``variables`` is a JSON Schema object whose
property defaults are the type's defaults, and ``job_configuration`` is a template whose
``{{ name }}`` placeholders are filled from the merged variables when a run is rendered. Everything
here is pure (no I/O, no environment): ``spec`` validates with it, ``launch`` renders with it.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs

PLACEHOLDER = re.compile(r"\{\{\s*([\w\.\-\[\]$]+)\s*\}\}")


@dataclass(frozen=True)
class VariableProblem:
    """A job variable that does not fit its pool type. ``path`` is relative to ``job_variables``."""

    path: tuple[str | int, ...]
    message: str


Check = Callable[[Mapping[str, Any]], list[VariableProblem]]


def no_platform_checks(_: Mapping[str, Any]) -> list[VariableProblem]:
    return []


@dataclass(frozen=True)
class PoolType:
    """One work-pool type (``process``, ``ecs:push``, ...).

    ``launcher`` names the module in ``reconciler.launch`` that submits its runs.
    ``block_variables`` maps a variable to the block type slug it takes
    (``aws_credentials`` -> ``aws-credentials``); its value is a ``{{ prefect.blocks.T.N }}`` reference.
    ``secret_variables`` are variables whose values must come from env placeholders.
    ``platform_check`` adds the limits a JSON Schema cannot say (Fargate cpu/memory pairs...).
    """

    slug: str
    launcher: str
    variables: Mapping[str, Any]
    job_configuration: Mapping[str, Any]
    block_variables: Mapping[str, str] = field(default_factory=dict)
    secret_variables: frozenset[str] = frozenset()
    platform_check: Check = no_platform_checks
    description: str = ""

    @property
    def properties(self) -> Mapping[str, Any]:
        return self.variables.get("properties", {})

    def defaults(self) -> dict[str, Any]:
        """Every variable's default, as Prefect starts a render."""
        return {
            name: copy.deepcopy(prop["default"]) for name, prop in self.properties.items() if "default" in prop
        }

    def base_job_template(self, job_variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A Prefect ``base_job_template`` whose variable defaults include the pool's job_variables."""
        variables = copy.deepcopy(dict(self.variables))
        props = variables.setdefault("properties", {})
        for name, value in (job_variables or {}).items():
            if name in props:
                props[name]["default"] = copy.deepcopy(value)
        return {"job_configuration": copy.deepcopy(dict(self.job_configuration)), "variables": variables}

    def validate_job_variables(
        self, values: Mapping[str, Any], *, require: bool = False
    ) -> list[VariableProblem]:
        """Problems with ``values``: unknown names (with a hint), wrong types, platform limits.

        Values that are whole template placeholders (``{{ prefect.blocks... }}``, ``{{ step.out }}``)
        are resolved later, so they are not type-checked here. ``require`` also reports missing
        required variables (a run needs them; a pool or deployment default may leave them out).
        """
        problems: list[VariableProblem] = []
        known = self.properties
        concrete: dict[str, Any] = {}
        for name, value in values.items():
            if name not in known:
                hint = difflib.get_close_matches(name, list(known), n=1)
                tip = f" (did you mean {hint[0]!r}?)" if hint else f"; known: {', '.join(sorted(known))}"
                problems.append(VariableProblem((name,), f"unknown variable {name!r} for pool type {self.slug}{tip}"))
                continue
            if _is_placeholder(value):
                continue
            concrete[name] = _strip_placeholders(value)
        for error in _validator(self, require).iter_errors(concrete):
            problems.append(VariableProblem(tuple(error.instance_path), _schema_message(error)))
        if not any(len(p.path) <= 1 and p.path and p.path[0] in concrete for p in problems):
            problems.extend(self.platform_check(concrete))
        return problems

    def render(
        self,
        *,
        pool_variables: Mapping[str, Any],
        deployment_variables: Mapping[str, Any],
        run_variables: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The job configuration for one run, by Prefect's rules (``BaseJobConfiguration``).

        Defaults <- pool job_variables <- deployment job_variables <- run overrides; ``env`` dicts
        are merged key-wise (later wins, ``None`` removes); a placeholder with no value makes its key
        disappear. Block references and secrets stay as they are: the launcher resolves them.
        """
        values = merge_variables(self.defaults(), pool_variables, deployment_variables, run_variables)
        return substitute(self.job_configuration, values)


def merge_variables(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Overlay variable layers; ``env`` is merged key by key and dotted ``env.X`` keys expand."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if key.startswith("env.") and len(key) > 4:
                merged.setdefault("env", {})
                merged["env"] = {**(merged["env"] or {}), key[4:]: value}
            elif key == "env" and isinstance(value, Mapping) and isinstance(merged.get("env"), Mapping):
                merged["env"] = {**merged["env"], **value}
            else:
                merged[key] = copy.deepcopy(value)
    if isinstance(merged.get("env"), Mapping):
        merged["env"] = {k: v for k, v in merged["env"].items() if v is not None}
    return merged


_MISSING = object()


def substitute(template: Any, values: Mapping[str, Any]) -> Any:
    """Fill ``{{ name }}`` placeholders in a job-configuration template.

    A string that is exactly one placeholder takes the value itself (any JSON type); placeholders
    inside longer strings are formatted in. A whole-string placeholder with no value removes its key
    (or list item). Unknown dotted names (``prefect.blocks...``) are left verbatim for the launcher.
    """
    result = _substitute(template, values)
    return {} if result is _MISSING else result


def _substitute(node: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(node, str):
        match = PLACEHOLDER.fullmatch(node.strip())
        if match:
            name = match.group(1)
            if name in values:
                return copy.deepcopy(values[name])
            return node if "." in name else _MISSING
        return PLACEHOLDER.sub(lambda m: _inline(m, values), node)
    if isinstance(node, Mapping):
        out = {}
        for key, value in node.items():
            rendered = _substitute(value, values)
            if rendered is not _MISSING:
                out[key] = rendered
        return out
    if isinstance(node, list):
        return [r for r in (_substitute(v, values) for v in node) if r is not _MISSING]
    return node


def _inline(match: re.Match[str], values: Mapping[str, Any]) -> str:
    name = match.group(1)
    if values.get(name) is not None:
        return str(values[name])
    return match.group(0) if "." in name else ""


def _is_placeholder(value: Any) -> bool:
    return isinstance(value, str) and PLACEHOLDER.fullmatch(value.strip()) is not None


def _strip_placeholders(value: Any) -> Any:
    """Drop nested whole-placeholder values so the schema checks only what is concrete."""
    if isinstance(value, Mapping):
        return {k: _strip_placeholders(v) for k, v in value.items() if not _is_placeholder(v)}
    if isinstance(value, list):
        return [_strip_placeholders(v) for v in value if not _is_placeholder(v)]
    return value


_VALIDATORS: dict[tuple[str, bool], Any] = {}


def _validator(pool_type: PoolType, require: bool) -> Any:
    """Compiled (and cached) schema validator; required-ness only when a run is rendered."""
    key = (pool_type.slug, require)
    if key not in _VALIDATORS:
        schema = copy.deepcopy(dict(pool_type.variables))
        schema.setdefault("type", "object")
        if not require:
            schema.pop("required", None)
        _VALIDATORS[key] = jsonschema_rs.Draft202012Validator(schema)
    return _VALIDATORS[key]


def _schema_message(error: Any) -> str:
    where = ".".join(str(p) for p in error.instance_path) or "job_variables"
    return f"{where}: {error.message}"
