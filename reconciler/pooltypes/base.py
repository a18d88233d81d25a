"""What a work-pool type is: its variables schema, its job-configuration template, and its rules.

A pool type mirrors Prefect's ``base_job_template``: ``variables`` is a JSON Schema object whose
property defaults are the type's defaults, and ``job_configuration`` is a template whose
``{{ name }}`` placeholders are filled from the merged variables when a run is rendered. Everything
here is pure (no I/O, no environment): ``desired`` validates with it, ``launch`` renders with it.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
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
    at_key: bool = False  # the name itself is wrong (unknown variable), not its value
    warning: bool = False  # accepted, but worth telling (a deprecated variable)


Check = Callable[[Mapping[str, Any]], list[VariableProblem]]


class _Deferred:
    """The value a platform check sees for a variable resolved later (an env or block placeholder):
    present, but of no type a limit applies to."""

    def __repr__(self) -> str:
        return "DEFERRED"


DEFERRED: Any = _Deferred()


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
    # Rules over a deployment's merged variables (pool's beneath the deployment's): what one layer
    # alone may leave to another, e.g. a role that a log setting needs.
    merged_check: Check = no_platform_checks
    # Variables of older Prefect templates this type no longer declares: name -> what to do instead.
    # Accepted with a warning (``VariableProblem.warning``); their value still reaches the job
    # configuration at top level, where older templates put it.
    deprecated_variables: Mapping[str, str] = field(default_factory=dict)

    @property
    def properties(self) -> Mapping[str, Any]:
        return self.variables.get("properties", {})

    def defaults(self) -> dict[str, Any]:
        """Every variable's default, as Prefect starts a render."""
        props = self.properties
        return {name: copy.deepcopy(prop["default"]) for name, prop in props.items() if "default" in prop}

    def base_job_template(self, job_variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A Prefect ``base_job_template`` whose variable defaults include the pool's job_variables."""
        variables = copy.deepcopy(dict(self.variables))
        props = variables.setdefault("properties", {})
        for name, value in (job_variables or {}).items():
            if name in props:
                props[name]["default"] = copy.deepcopy(value)
        return {"job_configuration": copy.deepcopy(dict(self.job_configuration)), "variables": variables}

    @functools.cached_property
    def _validator(self) -> Any:
        """The variables schema compiled once per pool type (``required`` is checked apart, on the
        merged layers). Cached on the instance, so a pool's own template gets its own validator."""
        schema = copy.deepcopy(dict(self.variables))
        schema.setdefault("type", "object")
        schema.pop("required", None)
        return jsonschema_rs.Draft202012Validator(schema)

    def with_template(self, template: Mapping[str, Any]) -> PoolType:
        """This type with a pool's own ``base_job_template`` (its variables and job configuration)."""
        return dataclasses.replace(
            self, variables=template["variables"], job_configuration=template["job_configuration"]
        )

    def validate_job_variables(
        self,
        values: Mapping[str, Any],
        *,
        require: bool = False,
        beneath: Mapping[str, Any] | None = None,
    ) -> list[VariableProblem]:
        """Problems with ``values``: unknown names (with a hint), wrong types, platform limits.

        Values that are whole template placeholders (``{{ prefect.blocks... }}``, ``{{ step.out }}``)
        or block ``$ref`` objects are resolved later: they count as present but are not type-checked.
        ``beneath`` is the layer these values override (a deployment's pool's job_variables): the
        platform limits apply to the merged values, since a valid cpu/memory pair may be split
        across the two. ``require`` also reports missing required variables (a run needs them).
        """
        problems: list[VariableProblem] = []
        known = self.properties
        concrete: dict[str, Any] = {}
        for name, value in values.items():
            if name not in known and name in self.deprecated_variables:
                message = f"variable {name!r} of older Prefect templates is deprecated for pool type {self.slug}: {self.deprecated_variables[name]}"
                problems.append(VariableProblem((name,), message, at_key=True, warning=True))
            elif name not in known:
                hint = difflib.get_close_matches(name, list(known), n=1)
                tip = f" (did you mean {hint[0]!r}?)" if hint else f"; known: {', '.join(sorted(known))}"
                message = f"unknown variable {name!r} for pool type {self.slug}{tip}"
                problems.append(VariableProblem((name,), message, at_key=True))
            elif not is_placeholder(value):
                concrete[name] = strip_placeholders(value)
        if require:
            merged = {**(beneath or {}), **values}
            for name in self.variables.get("required", []):
                if merged.get(name) is None and self.properties.get(name, {}).get("default") is None:
                    problems.append(VariableProblem((name,), f"missing required variable {name!r}"))
        validator = self._validator
        for error in () if validator.is_valid(concrete) else validator.iter_errors(concrete):
            message = schema_message(error, self.variables)
            problems.append(VariableProblem(tuple(error.instance_path), message))
        platform_check, merged_check = self.platform_check, self.merged_check
        if beneath is None:  # a pool: the merged rules are a deployment's
            merged_check = no_platform_checks
        if (platform_check, merged_check) == (no_platform_checks, no_platform_checks):
            return problems  # no rule over merged values (a process pool): nothing to merge for
        if not [p for p in problems if not p.warning]:
            merged = {**(beneath or {}), **values}
            concrete_merged = {
                k: DEFERRED if is_placeholder(v) else strip_placeholders(v) for k, v in merged.items()
            }
            problems.extend(platform_check(concrete_merged))
            if beneath is not None:  # a deployment: its pool's template defaults lie beneath too
                problems.extend(merged_check({**self.defaults(), **concrete_merged}))
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
        rendered = substitute(self.job_configuration, values)
        for name in self.deprecated_variables:
            if name not in self.properties and values.get(name) is not None:
                rendered[name] = copy.deepcopy(values[name])  # where older templates put it
        return rendered


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


def is_placeholder(value: Any) -> bool:
    """A value resolved later: a whole ``{{ ... }}`` string, or a Prefect block ``{"$ref": ...}``."""
    kind = type(value)
    if kind is str:
        return "{{" in value and PLACEHOLDER.fullmatch(value.strip()) is not None
    return kind is dict and len(value) == 1 and "$ref" in value


def strip_placeholders(value: Any) -> Any:
    """Drop nested placeholder values so a schema checks only what is concrete."""
    kind = type(value)
    if kind is dict:
        return {k: strip_placeholders(v) for k, v in value.items() if not is_placeholder(v)}
    if kind is list:
        return [strip_placeholders(v) for v in value if not is_placeholder(v)]
    return value


def schema_message(error: Any, schema: Mapping[str, Any]) -> str:
    """A jsonschema-rs error as a sentence that never repeats the offending value (it may be secret)."""
    path = list(error.instance_path)
    where = ".".join(str(p) for p in path) or "value"
    kind = type(error.kind).__name__
    got = json_type(error.instance)
    if kind in ("Type", "AnyOf", "OneOfNotValid"):
        declared = sorted(declared_types(_schema_for(schema, path)), key=lambda t: (t == "null", t))
        expected = " or ".join(declared) or "another form"
        return f"{where}: expected {expected}, got {got}"
    if kind == "Enum":
        options = ", ".join(str(o) for o in error.kind.options)
        return f"{where}: must be one of {options}"
    if kind in ("Minimum", "Maximum", "ExclusiveMinimum", "ExclusiveMaximum"):
        words = {"Minimum": ">=", "Maximum": "<=", "ExclusiveMinimum": ">", "ExclusiveMaximum": "<"}
        return f"{where}: must be {words[kind]} {error.kind.limit}"
    if kind == "Pattern":
        return f"{where}: does not match the pattern {error.kind.pattern}"
    if kind == "Required":
        return f"{where}: missing required field {error.kind.property!r}"
    if kind == "AdditionalProperties":
        return f"{where}: unknown field(s) {', '.join(map(repr, error.kind.unexpected))}"
    return f"{where}: invalid {got} ({kind})"


def _schema_for(schema: Mapping[str, Any], path: list[Any]) -> Mapping[str, Any]:
    node: Any = schema
    for part in path:
        if not isinstance(node, Mapping):
            return {}
        if isinstance(part, int):
            node = node.get("items", {})
        else:
            props = node.get("properties", {})
            extra = node.get("additionalProperties")
            node = props.get(part) or (extra if isinstance(extra, Mapping) else {})
    return node if isinstance(node, Mapping) else {}


def declared_types(schema: Mapping[str, Any]) -> set[str]:
    """The JSON types a schema allows, through ``anyOf``/``oneOf`` (a ``$ref`` option counts as object)."""
    found: set[str] = set()
    declared = schema.get("type")
    if isinstance(declared, str):
        found.add(declared)
    elif isinstance(declared, list):
        found.update(declared)
    for option in list(schema.get("anyOf", [])) + list(schema.get("oneOf", [])):
        if isinstance(option, Mapping):
            found |= declared_types(option)
            if "$ref" in option or "allOf" in option:
                found.add("object")
    return found


def json_type(value: Any) -> str:
    """The JSON Schema type name of a value (messages name types, never values)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"
