"""Contract tests for schemas/prefect.schema.json and schemas/plan.schema.json.

Both schemas must be valid draft 2020-12 for the Python reference implementation (jsonschema) and for
the validator the reconciler uses (jsonschema_rs), document every property (editors show those
descriptions on hover), accept the valid samples under tests/data/schema and reject the invalid ones
for the intended reason: each invalid sample names, in an ``# expect-error-at:`` comment, the JSON
pointer where both validators must report an error.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = ROOT / "schemas"
DATA = Path(__file__).resolve().parent / "data" / "schema"

PREFECT_SCHEMA_PATH = SCHEMA_DIR / "prefect.schema.json"
PLAN_SCHEMA_PATH = SCHEMA_DIR / "plan.schema.json"
SCHEMA_PATHS = [PREFECT_SCHEMA_PATH, PLAN_SCHEMA_PATH]

EXPECTED_IDS = {
    PREFECT_SCHEMA_PATH.name: "https://prefect-reconciler.dev/schemas/prefect.schema.json",
    PLAN_SCHEMA_PATH.name: "https://prefect-reconciler.dev/schemas/plan.schema.json",
}
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)


def sample_paths(*parts: str) -> list[Path]:
    folder = DATA.joinpath(*parts)
    return sorted(p for p in folder.iterdir() if p.suffix in {".yaml", ".yml", ".json"})


def load_sample(path: Path) -> Any:
    return load_json(path) if path.suffix == ".json" else load_yaml(path)


def expected_pointer(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# expect-error-at:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{path.name} has no '# expect-error-at:' line")


def pointer(parts: Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@pytest.fixture(scope="module")
def prefect_schema() -> dict[str, Any]:
    return load_json(PREFECT_SCHEMA_PATH)


@pytest.fixture(scope="module")
def plan_schema() -> dict[str, Any]:
    return load_json(PLAN_SCHEMA_PATH)


class Validators:
    """The same schema compiled by both implementations."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.py = jsonschema.Draft202012Validator(schema)
        self.rs = jsonschema_rs.Draft202012Validator(schema)

    def check_valid(self, instance: Any) -> None:
        py_errors = [f"{pointer(e.absolute_path)}: {e.message}" for e in self.py.iter_errors(instance)]
        rs_errors = [f"{pointer(e.instance_path)}: {e.message}" for e in self.rs.iter_errors(instance)]
        assert py_errors == [], "jsonschema rejects a valid document"
        assert rs_errors == [], "jsonschema_rs rejects a valid document"
        assert self.rs.is_valid(instance)

    def error_pointers(self, instance: Any) -> tuple[set[str], set[str]]:
        py = {pointer(e.absolute_path) for e in self.py.iter_errors(instance)}
        rs = {pointer(e.instance_path) for e in self.rs.iter_errors(instance)}
        return py, rs

    def check_invalid(self, instance: Any, at: str) -> None:
        assert not self.py.is_valid(instance), "jsonschema accepts an invalid document"
        assert not self.rs.is_valid(instance), "jsonschema_rs accepts an invalid document"
        py, rs = self.error_pointers(instance)
        assert at in py, f"jsonschema reports errors at {sorted(py)}, not at {at!r}"
        assert at in rs, f"jsonschema_rs reports errors at {sorted(rs)}, not at {at!r}"


@pytest.fixture(scope="module")
def prefect_validators(prefect_schema: dict[str, Any]) -> Validators:
    return Validators(prefect_schema)


@pytest.fixture(scope="module")
def plan_validators(plan_schema: dict[str, Any]) -> Validators:
    return Validators(plan_schema)


# --- the schemas themselves ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", SCHEMA_PATHS, ids=lambda p: p.name)
def test_schema_is_valid_draft_2020_12(path: Path) -> None:
    schema = load_json(path)
    assert schema["$schema"] == DRAFT_2020_12
    assert schema["$id"] == EXPECTED_IDS[path.name]
    assert schema["title"].strip()
    assert schema["description"].strip()
    jsonschema.Draft202012Validator.check_schema(schema)
    # (compare meta-schemas, not classes: importing Prefect registers its own 2020-12 validator class)
    assert jsonschema.validators.validator_for(schema).META_SCHEMA["$id"] == DRAFT_2020_12
    assert jsonschema_rs.meta.is_valid(schema)
    jsonschema_rs.meta.validate(schema)
    assert isinstance(jsonschema_rs.validator_for(schema), jsonschema_rs.Draft202012Validator)


@pytest.mark.parametrize("path", SCHEMA_PATHS, ids=lambda p: p.name)
def test_schema_file_is_two_space_indented_json(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert "\t" not in text
    for number, line in enumerate(text.splitlines(), 1):
        indent = len(line) - len(line.lstrip(" "))
        assert indent % 2 == 0, f"{path.name}:{number}: odd indentation"
        assert line == line.rstrip(), f"{path.name}:{number}: trailing whitespace"


_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
# Subschemas that an editor shows as a property (or a list element / map value) must be documented;
# branches of combinators and if/then/else only refine their parent and may stay terse.
_MUST_DESCRIBE = ("properties", "patternProperties", "$defs", "items", "additionalProperties")


def walk(schema: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any], bool]]:
    """Every subschema as (location, subschema, must have a description)."""
    if not isinstance(schema, dict):
        return
    for keyword in _SCHEMA_MAPS:
        for name, sub in schema.get(keyword, {}).items():
            loc = f"{where}/{keyword}/{name}"
            if isinstance(sub, dict):
                yield loc, sub, keyword in _MUST_DESCRIBE
            yield from walk(sub, loc)
    for keyword in _SCHEMA_ONE:
        sub = schema.get(keyword)
        if isinstance(sub, dict):
            yield f"{where}/{keyword}", sub, keyword in _MUST_DESCRIBE
            yield from walk(sub, f"{where}/{keyword}")
    for keyword in _SCHEMA_LISTS:
        for i, sub in enumerate(schema.get(keyword, [])):
            yield from walk(sub, f"{where}/{keyword}/{i}")


@pytest.mark.parametrize("path", SCHEMA_PATHS, ids=lambda p: p.name)
def test_every_property_has_a_description(path: Path) -> None:
    schema = load_json(path)
    missing = [
        loc
        for loc, sub, must in walk(schema)
        if must and not (isinstance(sub.get("description"), str) and sub["description"].strip())
    ]
    assert missing == []
    # Descriptions given anywhere (including combinator branches) are real sentences, not blanks.
    blank = [
        loc for loc, sub, _ in walk(schema) if "description" in sub and not str(sub["description"]).strip()
    ]
    assert blank == []


def test_walk_reaches_every_depth(prefect_schema: dict[str, Any]) -> None:
    locations = {loc for loc, _, _ in walk(prefect_schema)}
    assert "#/$defs/deployment/properties/concurrency_limit/properties/grace_period_seconds" in locations
    assert "#/$defs/run_on_rule/properties/push/properties/branches/items" in locations
    assert "#/$defs/template_variables/properties/properties/additionalProperties" in locations
    assert "#/$defs/deployment/then/properties/schedules" in locations


def _refs(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            elif key not in ("const", "enum", "examples", "default"):
                yield from _refs(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _refs(item)


@pytest.mark.parametrize("path", SCHEMA_PATHS, ids=lambda p: p.name)
def test_refs_resolve_and_every_def_is_used(path: Path) -> None:
    schema = load_json(path)
    refs = set(_refs(schema))
    assert all(ref.startswith("#/$defs/") for ref in refs), refs
    defined = set(schema["$defs"])
    assert {ref.removeprefix("#/$defs/") for ref in refs} == defined


# --- prefect.schema.json ------------------------------------------------------------------------------

PREFECT_VALID = sample_paths("prefect", "valid")
PREFECT_INVALID = sample_paths("prefect", "invalid")


def test_samples_exist() -> None:
    names = {p.name for p in PREFECT_VALID}
    assert {"plain-prefect3.yaml", "full-extensions.yaml", "design-example.yaml"} <= names
    assert len(PREFECT_INVALID) >= 9
    assert sample_paths("plan", "valid")


@pytest.mark.parametrize("path", PREFECT_VALID, ids=lambda p: p.name)
def test_valid_prefect_files(path: Path, prefect_validators: Validators) -> None:
    prefect_validators.check_valid(load_sample(path))


@pytest.mark.parametrize("path", PREFECT_INVALID, ids=lambda p: p.name)
def test_invalid_prefect_files(path: Path, prefect_validators: Validators) -> None:
    prefect_validators.check_invalid(load_sample(path), expected_pointer(path))


def test_full_file_covers_every_pool_type_and_rule(prefect_schema: dict[str, Any]) -> None:
    doc = load_yaml(DATA / "prefect" / "valid" / "full-extensions.yaml")
    pool_types = prefect_schema["$defs"]["work_pool"]["properties"]["type"]["enum"]
    assert sorted({p["type"] for p in doc["work_pools"]}) == sorted(pool_types)
    block_types = prefect_schema["$defs"]["block"]["properties"]["type"]["examples"]
    assert sorted({b["type"] for b in doc["blocks"]}) == sorted(block_types)
    rules = {key for d in doc["deployments"] for rule in d.get("run_on", []) for key in rule}
    assert rules == {"push", "watch", "apply"}


def test_plain_file_uses_anchors_and_every_schedule_kind() -> None:
    text = (DATA / "prefect" / "valid" / "plain-prefect3.yaml").read_text(encoding="utf-8")
    assert "&defaults" in text and "<<: *defaults" in text
    doc = load_yaml(DATA / "prefect" / "valid" / "plain-prefect3.yaml")
    assert {"build", "push", "pull", "definitions"} <= doc.keys()
    kinds = {
        k
        for d in doc["deployments"]
        for s in d.get("schedules") or []
        for k in ("cron", "interval", "rrule")
        if k in s
    }
    assert kinds == {"cron", "interval", "rrule"}
    assert any(d.get("schedule") for d in doc["deployments"])
    # The merge key brought the anchored defaults into the first deployment.
    assert doc["deployments"][0]["work_pool"]["name"] == "ecs-push"


@pytest.mark.parametrize(
    "interval",
    [60, 0.5, 3600.0, "PT10M", "P1DT2H", "PT1.5S", "01:30:00", "10:00", "1 day, 01:00:00", "{{ $EVERY }}"],
)
def test_interval_forms_accepted(interval: Any, prefect_validators: Validators) -> None:
    doc = {"deployments": [{"name": "d", "entrypoint": "f.py:f", "schedules": [{"interval": interval}]}]}
    prefect_validators.check_valid(doc)


@pytest.mark.parametrize("interval", [-5, 0, "ten minutes", "10m", True, None])
def test_interval_forms_rejected(interval: Any, prefect_validators: Validators) -> None:
    doc = {"deployments": [{"name": "d", "entrypoint": "f.py:f", "schedules": [{"interval": interval}]}]}
    assert not prefect_validators.py.is_valid(doc)
    assert not prefect_validators.rs.is_valid(doc)


@pytest.mark.parametrize(
    "step_key",
    [
        "prefect.deployments.steps.run_shell_script",
        "prefect_docker.deployments.steps.build_docker_image",
        "my_steps:build",
        "steps/build.py:build",
    ],
)
def test_step_names_accepted(step_key: str, prefect_validators: Validators) -> None:
    prefect_validators.check_valid({"build": [{step_key: {"id": "s", "requires": ["x>=1"]}}, {}]})


@pytest.mark.parametrize(
    "entrypoint",
    ["flows/etl.py:etl", "C:\\flows\\etl.py:etl", "pkg.module.etl", "flows/etl.py:Etl.run", "{{ $EP }}"],
)
def test_entrypoint_forms_accepted(entrypoint: str, prefect_validators: Validators) -> None:
    prefect_validators.check_valid({"deployments": [{"name": "d", "entrypoint": entrypoint}]})


@pytest.mark.parametrize("tags", [[], ["etl", "{{ $ENV }}"], "{{ $TAGS }}", None])
def test_tags_forms_accepted(tags: Any, prefect_validators: Validators) -> None:
    prefect_validators.check_valid({"deployments": [{"name": "d", "entrypoint": "f.py:f", "tags": tags}]})


def test_tags_plain_string_rejected(prefect_validators: Validators) -> None:
    # Prefect accepts a string only as a template that resolves to a list; "etl" fails at deploy time.
    doc = {"deployments": [{"name": "d", "entrypoint": "f.py:f", "tags": "etl"}]}
    prefect_validators.check_invalid(doc, "/deployments/0/tags")


def test_deployments_keep_unknown_keys_but_run_on_is_strict(prefect_validators: Validators) -> None:
    doc = {"deployments": [{"name": "d", "entrypoint": "f.py:f", "x-owner": {"team": "data"}}]}
    prefect_validators.check_valid(doc)
    doc["deployments"][0]["run_on"] = [{"push": {"branches": ["main"], "tags": ["v*"]}}]
    prefect_validators.check_invalid(doc, "/deployments/0/run_on/0/push")


def test_placeholders_allowed_in_free_objects(prefect_validators: Validators) -> None:
    doc = {
        "work_pools": [
            {"name": "ecs", "type": "ecs:push", "job_variables": {"cpu": "{{ $CPU }}", "memory": 512}}
        ],
        "deployments": [
            {
                "name": "{{ $ENV }}-etl",
                "entrypoint": "f.py:f",
                "parameters": {"n": "{{ prefect.variables.rows }}"},
                "work_pool": {"name": "ecs", "job_variables": {"cpu": "{{ $CPU }}"}},
            }
        ],
    }
    prefect_validators.check_valid(doc)


# --- plan.schema.json ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plan_sample() -> dict[str, Any]:
    return load_json(DATA / "plan" / "valid" / "plan.json")


@pytest.mark.parametrize("path", sample_paths("plan", "valid"), ids=lambda p: p.name)
def test_valid_plans(path: Path, plan_validators: Validators) -> None:
    plan_validators.check_valid(load_sample(path))


def test_plan_sample_covers_every_action(plan_sample: dict[str, Any], plan_schema: dict[str, Any]) -> None:
    actions = plan_schema["$defs"]["change"]["properties"]["action"]["enum"]
    assert sorted({c["action"] for c in plan_sample["changes"]}) == sorted(actions)
    assert {c["kind"] for c in plan_sample["changes"]} == {"block", "work_pool", "deployment"}


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation that sets (or, with value ``...``, deletes) the member at a JSON pointer."""

    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.strip("/").split("/")]
        node: Any = doc
        for part in parents:
            node = node[part]
        if value is ...:
            del node[last]
        else:
            node[last] = copy.deepcopy(value)

    return mutate


_SECRET = "/changes/0/after/data/aws_secret_access_key"
_FP = "hmac-sha256:" + "ab" * 32

PLAN_VARIANTS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "wrong-format-version": (_set("/format_version", "2"), "/format_version"),
    "format-version-not-string": (_set("/format_version", 1), "/format_version"),
    "unknown-top-level-key": (_set("/plan_id", "x"), ""),
    "missing-summary": (_set("/summary", ...), ""),
    "summary-without-no-op": (_set("/summary/no-op", ...), "/summary"),
    "negative-serial": (_set("/state/serial", -1), "/state/serial"),
    "short-commit": (_set("/source/git/commit", "4b825dc"), "/source/git/commit"),
    "wrong-tool": (_set("/tool/name", "terraform"), "/tool/name"),
    "unknown-action": (_set("/changes/0/action", "upsert"), "/changes/0/action"),
    "no-op-listed": (_set("/changes/0/action", "no-op"), "/changes/0/action"),
    "unknown-kind": (_set("/changes/0/kind", "flow_run"), "/changes/0/kind"),
    "unknown-change-key": (_set("/changes/0/diff", {}), "/changes/0"),
    "kind-address-mismatch": (_set("/changes/1/kind", "block"), "/changes/1/address"),
    "bad-address": (_set("/changes/1/address", "pool.ecs-push"), "/changes/1/address"),
    "create-with-version": (_set("/changes/2/version", 1), "/changes/2/version"),
    "update-without-version": (_set("/changes/0/version", None), "/changes/0/version"),
    "delete-with-body": (_set("/changes/3/after", {"name": "etl-hourly"}), "/changes/3/after"),
    "update-without-body": (_set("/changes/0/after", None), "/changes/0/after"),
    "drift-without-by": (_set("/changes/1/drift/by", ...), "/changes/1/drift"),
    "drift-bad-date": (_set("/changes/1/drift/updated", "yesterday"), "/changes/1/drift/updated"),
    "duplicate-dependency": (
        _set("/changes/1/depends_on", ["block.aws-credentials/prod"] * 2),
        "/changes/1/depends_on",
    ),
    "sensitive-with-before": (_set("/changes/0/fields/0/before", "hunter2"), "/changes/0/fields/0/before"),
    "sensitive-with-after": (_set("/changes/0/fields/0/after", None), "/changes/0/fields/0/after"),
    "sensitive-without-changed": (_set("/changes/0/fields/0/changed", ...), "/changes/0/fields/0"),
    "plain-field-with-changed": (_set("/changes/0/fields/1/changed", True), "/changes/0/fields/1/changed"),
    "plain-field-without-before": (_set("/changes/0/fields/1/before", ...), "/changes/0/fields/1"),
    "field-unknown-key": (_set("/changes/0/fields/1/value", "x"), "/changes/0/fields/1"),
    "secret-with-value": (
        _set(_SECRET, {"$secret": {"template": "{{ $K }}", "fingerprint": _FP, "value": "hunter2"}}),
        _SECRET + "/$secret",
    ),
    "secret-template-is-a-literal": (
        _set(_SECRET, {"$secret": {"template": "hunter2", "fingerprint": _FP}}),
        _SECRET + "/$secret/template",
    ),
    "secret-bad-fingerprint": (
        _set(_SECRET, {"$secret": {"template": "{{ $K }}", "fingerprint": "sha1:abc"}}),
        _SECRET + "/$secret/fingerprint",
    ),
    "secret-next-to-other-keys": (
        _set(_SECRET, {"$secret": {"template": "{{ $K }}", "fingerprint": _FP}, "plain": "hunter2"}),
        _SECRET,
    ),
    "secret-in-field-value": (
        _set("/changes/0/fields/1/after", [{"$secret": {"template": "x", "fingerprint": _FP}}]),
        "/changes/0/fields/1/after/0/$secret/template",
    ),
    "run-without-flow": (_set("/runs/0/deployment", "etl-daily"), "/runs/0/deployment"),
    "warning-not-string": (_set("/warnings/0", {"msg": "x"}), "/warnings/0"),
}


@pytest.mark.parametrize("name", sorted(PLAN_VARIANTS))
def test_invalid_plan_variants(name: str, plan_sample: dict[str, Any], plan_validators: Validators) -> None:
    mutate, at = PLAN_VARIANTS[name]
    doc = copy.deepcopy(plan_sample)
    mutate(doc)
    plan_validators.check_invalid(doc, at)


# --- speed --------------------------------------------------------------------------------------------


def generated_project(n: int) -> dict[str, Any]:
    """A realistic desired state with ``n`` deployments (every deployment-level feature used)."""
    deployments = []
    for i in range(n):
        deployments.append(
            {
                "name": f"dep-{i}",
                "version": "{{ $GIT_SHA }}",
                "tags": ["etl", f"team-{i % 7}"],
                "description": f"Deployment number {i}",
                "entrypoint": f"flows/flow_{i % 50}.py:flow_{i % 50}",
                "parameters": {"rows": i, "target": "s3"},
                "schedules": [
                    {"cron": "0 6 * * *", "timezone": "UTC", "slug": "daily"},
                    {"interval": "PT10M", "slug": "ten"},
                ],
                "concurrency_limit": {"limit": 2, "collision_strategy": "ENQUEUE"},
                "work_pool": {
                    "name": "ecs-push",
                    "job_variables": {"image": "ghcr.io/acme/etl:1.4", "cpu": 512},
                },
                "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": "/opt/flows"}}],
                "run_on": [
                    {"push": {"branches": ["main"], "paths": [f"flows/flow_{i % 50}/**"]}},
                    {"apply": "changed"},
                ],
            }
        )
    return {
        "name": "big",
        "blocks": [{"type": "aws-credentials", "name": "prod", "data": {"region_name": "us-east-1"}}],
        "work_pools": [{"name": "ecs-push", "type": "ecs:push", "job_variables": {"cluster": "prod"}}],
        "deployments": deployments,
    }


def test_validation_speed_10k_deployments(prefect_schema: dict[str, Any]) -> None:
    doc = generated_project(10_000)
    validator = jsonschema_rs.Draft202012Validator(prefect_schema)
    assert validator.is_valid(doc)
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        validator.validate(doc)
        timings.append(time.perf_counter() - start)
    best_ms = min(timings) * 1000
    print(f"\njsonschema_rs validate, 10,000 deployments: best {best_ms:.1f} ms of {len(timings)}")
    # The budget is ~20 ms; the bound leaves room for slow, shared CI machines.
    assert best_ms < 200
