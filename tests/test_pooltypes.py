"""The pool-type and block-type catalogue: schemas, templates, rendering and platform limits."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler import pooltypes
from reconciler.pooltypes import aci, blocks, cloud_run, ecs
from reconciler.pooltypes.base import PLACEHOLDER, PoolType

POOL_SLUGS = ["azure-container-instance:push", "cloud-run-v2:push", "cloud-run:push", "ecs:push", "process"]
BLOCK_SLUGS = [
    "aws-credentials",
    "azure-container-instance-credentials",
    "docker-registry-credentials",
    "gcp-credentials",
    "json",
    "secret",
    "string",
]
LAUNCHERS = {"process", "ecs", "cloud-run", "aci"}
REF = {"$ref": {"block_document_id": "2d3c5b1e-1111-2222-3333-444455556666"}}


def pool(slug: str) -> PoolType:
    found = pooltypes.get(slug)
    assert found is not None, slug
    return found


def block(slug: str) -> blocks.BlockType:
    found = pooltypes.block_type(slug)
    assert found is not None, slug
    return found


def placeholders(node: Any) -> Iterator[str]:
    """Every ``{{ name }}`` anywhere in a template (keys are never templated)."""
    if isinstance(node, str):
        yield from PLACEHOLDER.findall(node)
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from placeholders(value)
    elif isinstance(node, list):
        for value in node:
            yield from placeholders(value)


def is_simple(name: str) -> bool:
    return "." not in name and not name.startswith("$")


def messages(problems: list[pooltypes.VariableProblem]) -> str:
    return "\n".join(p.message for p in problems)


def without_required(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "required"}


# --- the registry ------------------------------------------------------------------------------


def test_registry_lists_the_five_pool_types_and_seven_block_types() -> None:
    assert pooltypes.names() == POOL_SLUGS
    assert pooltypes.block_type_names() == BLOCK_SLUGS
    assert pooltypes.get("kubernetes") is None
    assert pooltypes.block_type("s3-bucket") is None


# --- every pool type ---------------------------------------------------------------------------


@pytest.mark.parametrize("slug", POOL_SLUGS)
def test_variables_are_a_valid_schema_with_described_properties(slug: str) -> None:
    pool_type = pool(slug)
    jsonschema.Draft202012Validator.check_schema(dict(pool_type.variables))
    assert pool_type.launcher in LAUNCHERS
    assert {"name", "env", "labels", "command"} <= set(pool_type.properties)
    undescribed = [n for n, p in pool_type.properties.items() if not p.get("description")]
    assert undescribed == []
    assert pool_type.secret_variables <= set(pool_type.properties)


@pytest.mark.parametrize("slug", POOL_SLUGS)
def test_defaults_validate_against_their_own_schema(slug: str) -> None:
    pool_type = pool(slug)
    defaults = pool_type.defaults()
    assert pool_type.validate_job_variables(defaults) == []
    # An independent validator agrees (pool defaults may leave required variables out).
    jsonschema.Draft202012Validator(without_required(pool_type.variables)).validate(defaults)


@pytest.mark.parametrize("slug", POOL_SLUGS)
def test_every_placeholder_in_the_job_configuration_is_a_declared_variable(slug: str) -> None:
    pool_type = pool(slug)
    used = set(placeholders(pool_type.job_configuration))
    assert used, "a template with no placeholders renders nothing from the variables"
    assert all(is_simple(name) for name in used)
    assert used - set(pool_type.properties) == set()


@pytest.mark.parametrize("slug", POOL_SLUGS)
def test_prefect_server_accepts_the_base_job_template(slug: str) -> None:
    actions = pytest.importorskip("prefect.server.schemas.actions")
    template = pool(slug).base_job_template()
    created = actions.WorkPoolCreate(name="reconciled", type=slug, base_job_template=template)
    assert json.loads(json.dumps(created.base_job_template)) == template


@pytest.mark.parametrize("slug", POOL_SLUGS)
def test_prefect_validator_accepts_the_defaults(slug: str) -> None:
    validation = pytest.importorskip("prefect.utilities.schema_tools.validation")
    pool_type = pool(slug)
    assert validation.validate(pool_type.defaults(), dict(pool_type.variables), ignore_required=True) == []


@pytest.mark.parametrize("slug", POOL_SLUGS)
def test_rendering_the_defaults_leaves_no_simple_placeholder(slug: str) -> None:
    rendered = pool(slug).render(pool_variables={}, deployment_variables={}, run_variables={})
    assert [name for name in placeholders(rendered) if is_simple(name)] == []
    assert "{{" not in json.dumps(rendered)


@pytest.mark.parametrize(
    ("slug", "typo", "meant"),
    [
        ("ecs:push", "clustr", "cluster"),
        ("ecs:push", "task_role", "task_role_arn"),
        ("cloud-run-v2:push", "regoin", "region"),
        ("cloud-run:push", "service_account", "service_account_name"),
        ("azure-container-instance:push", "resource_group", "resource_group_name"),
        ("process", "working_directory", "working_dir"),
    ],
)
def test_an_unknown_variable_gets_a_did_you_mean(slug: str, typo: str, meant: str) -> None:
    problems = pool(slug).validate_job_variables({typo: "x"})
    assert [p.path for p in problems] == [(typo,)]
    assert f"did you mean {meant!r}" in problems[0].message


@pytest.mark.parametrize(
    ("slug", "values", "path"),
    [
        ("ecs:push", {"cpu": "lots"}, ("cpu",)),
        ("ecs:push", {"launch_type": "LAMBDA"}, ("launch_type",)),
        ("ecs:push", {"capacity_provider_strategy": [{"capacityProvider": "FARGATE"}]}, None),
        ("cloud-run-v2:push", {"timeout": "10m"}, ("timeout",)),
        ("cloud-run-v2:push", {"memory": "1GB"}, ("memory",)),
        ("cloud-run:push", {"env_from_secrets": {"TOKEN": {"secret": "t"}}}, None),
        ("azure-container-instance:push", {"cpu": "two"}, ("cpu",)),
        ("azure-container-instance:push", {"image_registry": {"registry_url": "acme.azurecr.io"}}, None),
        ("process", {"stream_output": "yes"}, ("stream_output",)),
    ],
)
def test_a_wrong_type_is_reported(slug: str, values: dict[str, Any], path: tuple[str, ...] | None) -> None:
    problems = pool(slug).validate_job_variables(values)
    assert problems
    name = next(iter(values))
    assert all(p.path[0] == name for p in problems)
    if path is not None:
        assert problems[0].path == path
        assert problems[0].message.startswith(".".join(path))


@pytest.mark.parametrize("slug", POOL_SLUGS)
def test_block_variables_name_known_block_types_and_take_references(slug: str) -> None:
    pool_type = pool(slug)
    definitions = pool_type.variables.get("definitions", {})
    for variable, block_slug in pool_type.block_variables.items():
        assert pooltypes.block_type(block_slug) is not None
        prop = pool_type.properties[variable]
        refs = [s["$ref"] for s in prop.get("allOf", []) + prop.get("anyOf", []) if "$ref" in s]
        slugs = {definitions[ref.rsplit("/", 1)[1]].get("block_type_slug") for ref in refs}
        assert block_slug in slugs
        reference = f"{{{{ prefect.blocks.{block_slug}.prod }}}}"
        assert pool_type.validate_job_variables({variable: reference}) == []


def test_a_block_reference_is_kept_for_the_launcher_when_rendering() -> None:
    reference = "{{ prefect.blocks.aws-credentials.prod }}"
    rendered = pool("ecs:push").render(
        pool_variables={"aws_credentials": reference, "cluster": "prod"},
        deployment_variables={"image": "ghcr.io/acme/etl:1.4", "cpu": 512, "memory": 1024},
        run_variables={"env": {"ROWS": "10"}},
    )
    assert rendered["aws_credentials"] == reference
    assert rendered["task_definition"]["containerDefinitions"] == [{"image": "ghcr.io/acme/etl:1.4"}]
    assert rendered["task_run_request"]["cluster"] == "prod"
    assert rendered["task_run_request"]["overrides"]["containerOverrides"][0]["environment"] == {"ROWS": "10"}
    assert rendered["task_run_request"]["launchType"] == "FARGATE"
    assert "taskDefinition" not in rendered["task_run_request"]
    assert rendered["task_watch_poll_interval"] == 5.0
    assert rendered["task_start_timeout_seconds"] == 300


def test_cloud_run_both_slugs_share_the_v2_variables() -> None:
    v1, v2 = pool("cloud-run:push"), pool("cloud-run-v2:push")
    assert v1.variables == v2.variables
    assert v1.job_configuration == v2.job_configuration
    assert v1.launcher == v2.launcher == "cloud-run"
    body = v2.render(pool_variables={}, deployment_variables={}, run_variables={})["job_body"]
    container = body["template"]["template"]["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "1000m", "memory": "512Mi"}
    assert container["image"] == "prefecthq/prefect:3-latest"
    assert body["launchStage"] == "BETA"
    assert body["client"] == "prefect"


def test_aci_requires_resource_group_and_subscription_only_for_a_run() -> None:
    pool_type = pool("azure-container-instance:push")
    assert pool_type.validate_job_variables({}) == []
    missing = messages(pool_type.validate_job_variables({}, require=True))
    assert "resource_group_name" in missing
    assert "subscription_id" in missing
    assert "subscription_id" not in pool_type.secret_variables
    complete = {"resource_group_name": "rg", "subscription_id": "0000-1111"}
    assert pool_type.validate_job_variables(complete, require=True) == []


def test_aci_arm_template_renders_the_container_request() -> None:
    rendered = pool("azure-container-instance:push").render(
        pool_variables={"resource_group_name": "rg", "subscription_id": "sub"},
        deployment_variables={"image": "acme.azurecr.io/etl:1", "cpu": 2, "memory": 3.5},
        run_variables={},
    )
    group = rendered["arm_template"]["resources"][0]
    assert group["properties"]["osType"] == "Linux"
    assert group["properties"]["restartPolicy"] == "Never"
    container = group["properties"]["containers"][0]["properties"]
    assert container["image"] == "acme.azurecr.io/etl:1"
    assert container["resources"]["requests"] == {"cpu": 2, "memoryInGB": 3.5}
    assert rendered["subscription_id"] == "sub"


# --- ECS: Fargate cpu/memory pairs -------------------------------------------------------------


def aws_fargate_allows(cpu: int, memory: int) -> bool:
    """AWS's table, written in GB the way the documentation states it."""
    gb, whole = divmod(memory, 1024)
    if cpu == 256:
        return memory in (512, 1024, 2048)
    ranges = {512: (1, 4, 1), 1024: (2, 8, 1), 2048: (4, 16, 1), 4096: (8, 30, 1), 8192: (16, 60, 4)}
    ranges[16384] = (32, 120, 8)
    if cpu not in ranges or whole:
        return False
    low, high, step = ranges[cpu]
    return low <= gb <= high and (gb - low) % step == 0


VALID_FARGATE = [
    (c, m) for c in ecs.FARGATE_MEMORY_BY_CPU for m in range(512, 122881, 512) if aws_fargate_allows(c, m)
]


def test_the_fargate_table_has_every_documented_pair() -> None:
    assert len(VALID_FARGATE) == 3 + 4 + 7 + 13 + 23 + 12 + 12
    assert sorted(VALID_FARGATE) == sorted((c, m) for c, ms in ecs.FARGATE_MEMORY_BY_CPU.items() for m in ms)


@pytest.mark.parametrize(("cpu", "memory"), VALID_FARGATE)
def test_every_valid_fargate_pair_passes(cpu: int, memory: int) -> None:
    assert ecs.check_fargate({"cpu": cpu, "memory": memory}) == []
    assert pool("ecs:push").validate_job_variables({"cpu": cpu, "memory": memory}) == []


@given(
    cpu=st.sampled_from([128, 256, 300, 512, 1000, 1024, 2048, 3072, 4096, 8192, 16384, 32768]),
    memory=st.integers(min_value=128, max_value=131072).map(lambda m: m - m % 128),
    launch_type=st.sampled_from([None, "FARGATE", "FARGATE_SPOT"]),
)
def test_every_other_pair_in_the_grid_fails_naming_the_valid_values(
    cpu: int, memory: int, launch_type: str | None
) -> None:
    values: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if launch_type is not None:
        values["launch_type"] = launch_type
    problems = ecs.check_fargate(values)
    if aws_fargate_allows(cpu, memory):
        assert problems == []
        return
    assert len(problems) == 1
    allowed = ecs.FARGATE_MEMORY_BY_CPU.get(cpu)
    expected = allowed if allowed is not None else tuple(ecs.FARGATE_MEMORY_BY_CPU)
    assert problems[0].message.endswith(", ".join(str(v) for v in expected))


def test_fargate_message_names_the_valid_memory_values() -> None:
    [problem] = ecs.check_fargate({"cpu": 512, "memory": 512})
    assert problem.path == ("memory",)
    assert problem.message == (
        "cpu 512 with memory 512 is not a valid Fargate pair; "
        "with cpu 512 memory must be one of 1024, 2048, 3072, 4096"
    )


def test_fargate_fills_the_missing_side_with_the_worker_default() -> None:
    assert ecs.check_fargate({"cpu": 512}) == []  # memory 2048
    assert ecs.check_fargate({"memory": 4096}) == []  # cpu 1024
    [problem] = ecs.check_fargate({"cpu": 4096})
    assert problem.path == ("cpu",)
    assert "memory 2048 (the default)" in problem.message
    assert "8192, 9216" in problem.message
    [problem] = ecs.check_fargate({"memory": 512})
    assert problem.path == ("memory",)
    assert "cpu 1024 (the default)" in problem.message


def test_fargate_rejects_an_unknown_cpu_naming_the_choices() -> None:
    [problem] = ecs.check_fargate({"cpu": 300, "memory": 1024})
    assert problem.path == ("cpu",)
    assert problem.message.endswith("one of 256, 512, 1024, 2048, 4096, 8192, 16384")


@pytest.mark.parametrize(
    "values",
    [
        {"cpu": 300, "memory": 777, "launch_type": "EC2"},
        {"cpu": 300, "launch_type": "EXTERNAL"},
        {"cpu": 300, "capacity_provider_strategy": [{"capacityProvider": "my-asg", "weight": 1, "base": 0}]},
        {},
        {"launch_type": "FARGATE"},
    ],
)
def test_fargate_rules_do_not_apply_off_fargate_or_without_sizes(values: dict[str, Any]) -> None:
    assert ecs.check_fargate(values) == []


def test_a_fargate_capacity_provider_brings_the_fargate_rules() -> None:
    strategy = [{"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}]
    assert ecs.check_fargate({"cpu": 512, "memory": 512, "capacity_provider_strategy": strategy})


def test_platform_limits_are_reported_through_validate_job_variables() -> None:
    problems = pool("ecs:push").validate_job_variables({"cpu": 512, "memory": 512, "cluster": "prod"})
    assert [p.path for p in problems] == [("memory",)]


# --- Cloud Run limits --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {"cpu": "1000m", "memory": "512Mi"},
        {"cpu": "80m"},
        {"cpu": "0.5", "memory": "1Gi"},
        {"cpu": "1", "memory": "4Gi"},
        {"cpu": "2", "memory": "8Gi"},
        {"cpu": "4000m", "memory": "16Gi"},
        {"cpu": "6", "memory": "24Gi"},
        {"cpu": "8", "memory": "32Gi"},
        {"memory": "4G"},
        {"timeout": 604800},
    ],
)
def test_cloud_run_accepts_values_within_its_limits(values: dict[str, Any]) -> None:
    assert cloud_run.check_limits(values) == []
    assert pool("cloud-run-v2:push").validate_job_variables(values) == []


@pytest.mark.parametrize(
    ("values", "path", "limit"),
    [
        ({"cpu": "50m"}, ("cpu",), "0.08 to 8 vCPU"),
        ({"cpu": "10"}, ("cpu",), "0.08 to 8 vCPU"),
        ({"cpu": "3"}, ("cpu",), "2, 4, 6 or 8"),
        ({"cpu": "1500m"}, ("cpu",), "2, 4, 6 or 8"),
        ({"cpu": "1 vCPU"}, ("cpu",), "'1000m'"),
        ({"memory": "256Mi"}, ("memory",), "512Mi to 32Gi"),
        ({"memory": "33Gi"}, ("memory",), "512Mi to 32Gi"),
        ({"memory": "6Gi"}, ("memory",), "more than 4Gi needs 2"),
        ({"cpu": "2", "memory": "10Gi"}, ("memory",), "more than 8Gi needs 4"),
        ({"cpu": "4", "memory": "20Gi"}, ("memory",), "more than 16Gi needs 6"),
        ({"cpu": "6", "memory": "25Gi"}, ("memory",), "more than 24Gi needs 8"),
        ({"cpu": "500m"}, None, None),
    ],
)
def test_cloud_run_rejects_values_beyond_its_limits_naming_them(
    values: dict[str, Any], path: tuple[str, ...] | None, limit: str | None
) -> None:
    problems = cloud_run.check_limits(values)
    if path is None:
        assert problems == []
        return
    assert [p.path for p in problems] == [path]
    assert limit in problems[0].message


def test_cloud_run_names_the_default_cpu_when_memory_alone_is_too_big() -> None:
    [problem] = cloud_run.check_limits({"memory": "6Gi"})
    assert "cpu is 1000m (the default)" in problem.message


def test_cloud_run_timeout_limit_is_in_the_schema_and_the_check() -> None:
    [problem] = cloud_run.check_limits({"timeout": 604801})
    assert "604800" in problem.message
    [problem] = pool("cloud-run-v2:push").validate_job_variables({"timeout": 604801})
    assert problem.path == ("timeout",)
    assert pool("cloud-run-v2:push").validate_job_variables({"timeout": 0})


@given(
    cpu=st.sampled_from(["1", "2", "4", "6", "8", "1000m", "2000m", "8000m"]),
    mebibytes=st.integers(min_value=512, max_value=32 * 1024),
)
def test_cloud_run_memory_needs_enough_cpu(cpu: str, mebibytes: int) -> None:
    vcpus = int(cpu[:-1]) / 1000 if cpu.endswith("m") else int(cpu)
    gib = mebibytes / 1024
    needed = 8 if gib > 24 else 6 if gib > 16 else 4 if gib > 8 else 2 if gib > 4 else 1
    problems = cloud_run.check_limits({"cpu": cpu, "memory": f"{mebibytes}Mi"})
    assert (problems == []) == (vcpus >= needed)


# --- ACI limits --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {"cpu": 0.1, "memory": 0.1},
        {"cpu": 4, "memory": 16},
        {"cpu": 1.5, "memory": 3.7},
        {"gpu_count": None, "gpu_sku": None},
    ],
)
def test_aci_accepts_values_within_its_limits(values: dict[str, Any]) -> None:
    assert aci.check_limits(values) == []
    assert pool("azure-container-instance:push").validate_job_variables(values) == []


@pytest.mark.parametrize("count", [1, 2, 4])
def test_aci_gpus_azure_still_documents_are_accepted_with_a_retirement_warning(count: int) -> None:
    problems = aci.check_limits({"gpu_count": count, "gpu_sku": "V100"})
    assert [(p.path, p.warning) for p in problems] == [(("gpu_count",), True)]
    assert "retired" in problems[0].message


@pytest.mark.parametrize(
    ("values", "path", "limit"),
    [
        ({"cpu": 4.5}, ("cpu",), "0.1 to 4 CPU"),
        ({"cpu": 0.05}, ("cpu",), "0.1 to 4 CPU"),
        ({"memory": 16.5}, ("memory",), "0.1 to 16 GB"),
        ({"memory": 0}, ("memory",), "0.1 to 16 GB"),
        ({"memory": 1.25}, ("memory",), "0.1 GB step"),
        ({"gpu_count": 3}, ("gpu_count",), "1, 2, 4"),
        ({"gpu_count": 1}, ("gpu_count",), "needs gpu_sku (V100)"),
        ({"gpu_sku": "K80"}, ("gpu_sku",), "retired"),
        ({"gpu_sku": "A100"}, ("gpu_sku",), "use V100"),
        ({"gpu_sku": "V100"}, ("gpu_sku",), "needs gpu_count (1, 2, 4)"),
    ],
)
def test_aci_rejects_values_beyond_its_limits_naming_them(
    values: dict[str, Any], path: tuple[str, ...], limit: str
) -> None:
    errors = [p for p in aci.check_limits(values) if not p.warning]
    assert errors and {p.path for p in errors} == {path}
    assert any(limit in p.message for p in errors)


@given(tenths=st.integers(min_value=1, max_value=160))
def test_aci_accepts_every_tenth_of_a_gigabyte(tenths: int) -> None:
    assert aci.check_limits({"memory": tenths / 10}) == []


# --- block types -------------------------------------------------------------------------------

GOOD_BLOCK_DATA: dict[str, dict[str, Any]] = {
    "aws-credentials": {
        "aws_access_key_id": "AKIAEXAMPLE",
        "aws_secret_access_key": "{{ $AWS_SECRET_ACCESS_KEY }}",
        "aws_session_token": None,
        "region_name": "us-east-1",
        "aws_client_parameters": {"endpoint_url": "http://localhost:5000", "use_ssl": False, "verify": False},
        "assume_role_arn": "arn:aws:iam::123456789012:role/prefect",
        "assume_role_kwargs": {"RoleSessionName": "reconciler"},
    },
    "gcp-credentials": {"service_account_info": "{{ $GCP_SERVICE_ACCOUNT_KEY }}", "project": "acme"},
    "azure-container-instance-credentials": {
        "client_id": "cid",
        "tenant_id": "tid",
        "client_secret": "{{ $AZURE_CLIENT_SECRET }}",
    },
    "docker-registry-credentials": {
        "username": "bot",
        "password": "{{ $REGISTRY_PASSWORD }}",
        "registry_url": "ghcr.io",
    },
    "secret": {"value": "{{ $API_TOKEN }}"},
    "string": {"value": "hello"},
    "json": {"value": {"rows": [1, 2, 3]}},
}


@pytest.mark.parametrize("slug", BLOCK_SLUGS)
def test_block_type_schemas_are_valid_and_described(slug: str) -> None:
    block_type = block(slug)
    jsonschema.Draft202012Validator.check_schema(dict(block_type.fields))
    assert block_type.slug == slug
    assert block_type.description
    assert block_type.secret_fields <= set(block_type.properties)
    assert set(block_type.required) <= set(block_type.properties)
    assert [n for n, p in block_type.properties.items() if not p.get("description")] == []
    definition = block_type.definition()
    assert definition["block_type_slug"] == slug
    assert definition["secret_fields"] == sorted(block_type.secret_fields)


def test_block_secret_fields_are_the_credentials() -> None:
    assert block("aws-credentials").secret_fields == {"aws_secret_access_key", "aws_session_token"}
    assert block("gcp-credentials").secret_fields == {"service_account_info"}
    assert block("azure-container-instance-credentials").secret_fields == {"client_secret"}
    assert block("docker-registry-credentials").secret_fields == {"password"}
    assert block("secret").secret_fields == {"value"}
    assert block("string").secret_fields == block("json").secret_fields == frozenset()


@pytest.mark.parametrize("slug", BLOCK_SLUGS)
def test_block_types_accept_good_data(slug: str) -> None:
    assert block(slug).validate(GOOD_BLOCK_DATA[slug]) == []


@pytest.mark.parametrize(
    ("slug", "typo", "meant"),
    [
        ("aws-credentials", "regon_name", "region_name"),
        ("aws-credentials", "aws_secret_key", "aws_secret_access_key"),
        ("gcp-credentials", "service_account_json", "service_account_info"),
        ("azure-container-instance-credentials", "clientsecret", "client_secret"),
        ("docker-registry-credentials", "registry", "registry_url"),
        ("string", "values", "value"),
    ],
)
def test_block_types_reject_unknown_fields_with_a_hint(slug: str, typo: str, meant: str) -> None:
    data = {**GOOD_BLOCK_DATA[slug], typo: "x"}
    [problem] = block(slug).validate(data)
    assert problem.path == (typo,)
    assert f"did you mean {meant!r}" in problem.message


@pytest.mark.parametrize(
    ("slug", "missing"),
    [
        ("docker-registry-credentials", "registry_url"),
        ("docker-registry-credentials", "password"),
        ("secret", "value"),
        ("string", "value"),
        ("json", "value"),
    ],
)
def test_block_types_report_missing_required_fields(slug: str, missing: str) -> None:
    data = {k: v for k, v in GOOD_BLOCK_DATA[slug].items() if k != missing}
    [problem] = block(slug).validate(data)
    assert problem.path == (missing,)
    assert "missing required field" in problem.message


@pytest.mark.parametrize(
    ("slug", "data", "path"),
    [
        ("docker-registry-credentials", {"reauth": "yes"}, ("reauth",)),
        ("aws-credentials", {"region_name": 1}, ("region_name",)),
        (
            "aws-credentials",
            {"aws_client_parameters": {"use_ssl": "no"}},
            ("aws_client_parameters", "use_ssl"),
        ),
        ("aws-credentials", {"aws_client_parameters": {"verify": None}}, ("aws_client_parameters", "verify")),
        ("aws-credentials", {"aws_client_parameters": {"endpoint": "http://x"}}, ("aws_client_parameters",)),
        ("gcp-credentials", {"service_account_info": "not-json"}, ("service_account_info",)),
        ("string", {"value": 3}, ("value",)),
    ],
)
def test_block_types_report_wrong_types(slug: str, data: dict[str, Any], path: tuple[str, ...]) -> None:
    problems = block(slug).validate({**GOOD_BLOCK_DATA[slug], **data})
    assert [p.path for p in problems] == [path]


def test_block_placeholders_count_as_present_and_are_not_type_checked() -> None:
    data = {
        "username": "{{ $U }}",
        "password": "{{ $P }}",
        "registry_url": "{{ prefect.variables.registry }}",
    }
    assert block("docker-registry-credentials").validate(data) == []
    nested = {"aws_client_parameters": {"use_ssl": "{{ $USE_SSL }}"}}
    assert block("aws-credentials").validate(nested) == []


def test_block_data_must_be_a_mapping() -> None:
    [problem] = block("string").validate(["hello"])  # type: ignore[arg-type]
    assert "must be a mapping" in problem.message


@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=10,
    )
)
def test_json_and_secret_blocks_accept_any_json_value(value: Any) -> None:
    assert block("json").validate({"value": value}) == []
    assert block("secret").validate({"value": value}) == []


@given(
    data=st.dictionaries(
        st.sampled_from(
            ["aws_access_key_id", "aws_session_token", "profile_name", "region_name", "assume_role_arn"]
        ),
        st.none() | st.text(),
    )
)
def test_aws_credentials_accept_any_strings_in_string_fields(data: dict[str, Any]) -> None:
    assert block("aws-credentials").validate(data) == []
