"""Block types: the credentials and values a ``blocks:`` section may declare.

Each :class:`BlockType` mirrors a Prefect block schema (field names as in prefect-aws, prefect-gcp,
prefect-azure and Prefect core) so the data we store is the data Prefect's own block classes load.
``secret_fields`` are the top-level fields whose *whole* value is sensitive: ``desired`` turns them into
:class:`~reconciler.objects.Secret` leaves, so they must come from env placeholders.

Two deliberate differences from Prefect's schemas: ``aws_session_token`` is secret for us (it is a
live credential, Prefect stores it in clear), and ``service_account_info`` is secret as a whole
(Prefect marks ``service_account_info.*``, i.e. every key, which is the same thing for a JSON key
file). ``string`` and ``json`` are Prefect 2 core blocks that a Prefect 3 server no longer
registers; a store that writes to a Prefect server has to create those block types first.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs

from reconciler.pooltypes.base import VariableProblem, is_placeholder, schema_message, strip_placeholders


@dataclass(frozen=True)
class BlockType:
    """One block type: its JSON Schema (``fields``), which fields are secret, and a short description.

    ``fields`` is an object schema with ``title`` (Prefect's class name, used as the definition name
    when a pool variable refers to this type), ``properties`` and ``required``.
    """

    slug: str
    fields: Mapping[str, Any]
    secret_fields: frozenset[str] = frozenset()
    description: str = ""
    _validator: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Top-level ``required`` is checked by hand: a required field given as a placeholder is
        # present even though its value is not type-checked.
        schema = copy.deepcopy(dict(self.fields))
        schema.pop("required", None)
        object.__setattr__(self, "_validator", jsonschema_rs.Draft202012Validator(schema))

    @property
    def title(self) -> str:
        return str(self.fields.get("title", self.slug))

    @property
    def properties(self) -> Mapping[str, Any]:
        return self.fields.get("properties", {})

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self.fields.get("required", ()))

    def validate(self, data: Mapping[str, Any]) -> list[VariableProblem]:
        """Problems with a block's ``data``: unknown fields (with a hint), wrong types, missing fields.

        Whole ``{{ ... }}`` placeholders (env values, other blocks, step outputs) are resolved later,
        so they count as present but are not type-checked, the same rule pool variables follow.
        """
        if not isinstance(data, Mapping):
            return [VariableProblem((), f"data for block type {self.slug} must be a mapping")]
        problems: list[VariableProblem] = []
        known = self.properties
        concrete: dict[str, Any] = {}
        for name, value in data.items():
            if name not in known:
                problems.append(VariableProblem((name,), self._unknown(name), at_key=True))
            elif not is_placeholder(value):
                concrete[name] = strip_placeholders(value)
        for name in self.required:
            if name not in data:
                problems.append(
                    VariableProblem((name,), f"missing required field {name!r} for block type {self.slug}")
                )
        for error in self._validator.iter_errors(concrete):
            problems.append(VariableProblem(tuple(error.instance_path), schema_message(error, self.fields)))
        return problems

    def definition(self) -> dict[str, Any]:
        """This type as a JSON Schema definition inside a pool's ``variables``, shaped like Prefect's.

        Prefect's UI and server recognise a block-typed variable by ``block_type_slug`` on the
        definition it refers to, so the pool templates we write keep that marker.
        """
        schema = copy.deepcopy(dict(self.fields))
        schema["block_type_slug"] = self.slug
        schema["secret_fields"] = sorted(self.secret_fields)
        return schema

    def _unknown(self, name: str) -> str:
        hint = difflib.get_close_matches(name, list(self.properties), n=1)
        tip = f" (did you mean {hint[0]!r}?)" if hint else f"; known: {', '.join(sorted(self.properties))}"
        return f"unknown field {name!r} for block type {self.slug}{tip}"


def _optional(kind: str, title: str, description: str, **extra: Any) -> dict[str, Any]:
    """A nullable field, as pydantic writes ``Optional[T] = None``."""
    return {"title": title, "description": description, "anyOf": [{"type": kind, **extra}, {"type": "null"}]}


def _any_json(title: str, description: str) -> dict[str, Any]:
    return {"title": title, "description": description}


_AWS_CLIENT_PARAMETERS: dict[str, Any] = {
    "title": "AWS Client Parameters",
    "description": "Extra arguments for every boto3 client built from these credentials.",
    "type": "object",
    # Prefect's model ignores unknown keys; we reject them so a typo does not silently do nothing.
    "additionalProperties": False,
    "properties": {
        "api_version": _optional(
            "string", "API Version", "Pin an older service API version; unset is latest."
        ),
        "use_ssl": {
            "title": "Use SSL",
            "description": "Talk to AWS over TLS; ignored when endpoint_url is set.",
            "type": "boolean",
            "default": True,
        },
        "verify": {
            "title": "Verify",
            "description": "Verify TLS certificates (true/false) or a CA bundle path. Never null: "
            "Prefect Cloud rejects a null here.",
            "anyOf": [{"type": "boolean"}, {"type": "string"}],
            "default": True,
        },
        "verify_cert_path": _optional("string", "CA Bundle Path", "A CA bundle to verify certificates with."),
        "endpoint_url": _optional("string", "Endpoint URL", "A full URL replacing the service's endpoint."),
        "config": _optional("object", "Botocore Config", "Keyword arguments for botocore's Config."),
    },
}

AWS_CREDENTIALS = BlockType(
    slug="aws-credentials",
    description="AWS credentials and client options (prefect-aws AwsCredentials).",
    secret_fields=frozenset({"aws_secret_access_key", "aws_session_token"}),
    fields={
        "title": "AwsCredentials",
        "type": "object",
        "properties": {
            "aws_access_key_id": _optional("string", "AWS Access Key ID", "The access key ID."),
            "aws_secret_access_key": _optional(
                "string", "AWS Access Key Secret", "The secret access key.", format="password", writeOnly=True
            ),
            "aws_session_token": _optional(
                "string", "AWS Session Token", "Session token, needed only with temporary credentials."
            ),
            "profile_name": _optional("string", "Profile Name", "A profile from the AWS config files."),
            "region_name": _optional("string", "Region Name", "The AWS region clients connect to."),
            "aws_client_parameters": _AWS_CLIENT_PARAMETERS,
            "assume_role_arn": _optional(
                "string", "Assume Role ARN", "A role to assume with these credentials."
            ),
            "assume_role_kwargs": {
                "title": "Assume Role Arguments",
                "description": "Extra arguments for STS AssumeRole (RoleSessionName, ExternalId, ...).",
                "type": "object",
            },
        },
    },
)

GCP_CREDENTIALS = BlockType(
    slug="gcp-credentials",
    description="Google Cloud credentials (prefect-gcp GcpCredentials).",
    secret_fields=frozenset({"service_account_info"}),
    fields={
        "title": "GcpCredentials",
        "type": "object",
        "properties": {
            "service_account_file": _optional(
                "string", "Service Account File", "Path to a service account key file on the launcher."
            ),
            "service_account_info": _optional(
                "object", "Service Account Info", "The service account key itself, as its JSON object."
            ),
            "project": _optional("string", "Project", "The project runs are launched in."),
        },
    },
)

AZURE_CONTAINER_INSTANCE_CREDENTIALS = BlockType(
    slug="azure-container-instance-credentials",
    description="Service principal for Azure Container Instances (prefect-azure).",
    secret_fields=frozenset({"client_secret"}),
    fields={
        "title": "AzureContainerInstanceCredentials",
        "type": "object",
        "properties": {
            "client_id": _optional("string", "Client ID", "The service principal's client ID."),
            "tenant_id": _optional("string", "Tenant ID", "The service principal's tenant ID."),
            "client_secret": _optional(
                "string",
                "Client Secret",
                "The service principal's secret.",
                format="password",
                writeOnly=True,
            ),
            "credential_kwargs": {
                "title": "Additional Credential Keyword Arguments",
                "description": "Extra arguments for DefaultAzureCredential when no secret is given.",
                "type": "object",
            },
        },
    },
)

DOCKER_REGISTRY_CREDENTIALS = BlockType(
    slug="docker-registry-credentials",
    description="Login for a private image registry (Prefect's DockerRegistryCredentials).",
    secret_fields=frozenset({"password"}),
    fields={
        "title": "DockerRegistryCredentials",
        "type": "object",
        "properties": {
            "username": {"title": "Username", "description": "Registry user name.", "type": "string"},
            "password": {
                "title": "Password",
                "description": "Registry password or token.",
                "type": "string",
                "format": "password",
                "writeOnly": True,
            },
            "registry_url": {
                "title": "Registry URL",
                "description": "The registry host, e.g. index.docker.io.",
                "type": "string",
            },
            "reauth": {
                "title": "Reauth",
                "description": "Log in again even when a login is cached.",
                "type": "boolean",
                "default": True,
            },
        },
        "required": ["username", "password", "registry_url"],
    },
)

SECRET = BlockType(
    slug="secret",
    description="One sensitive value, a string or any JSON (Prefect's Secret).",
    secret_fields=frozenset({"value"}),
    fields={
        "title": "Secret",
        "type": "object",
        "properties": {"value": _any_json("Value", "The sensitive value: a string or any JSON value.")},
        "required": ["value"],
    },
)

STRING = BlockType(
    slug="string",
    description="One plain string (Prefect 2's String block).",
    fields={
        "title": "String",
        "type": "object",
        "properties": {"value": {"title": "Value", "description": "The string.", "type": "string"}},
        "required": ["value"],
    },
)

JSON = BlockType(
    slug="json",
    description="Any JSON value (Prefect 2's JSON block).",
    fields={
        "title": "JSON",
        "type": "object",
        "properties": {"value": _any_json("Value", "Any JSON value.")},
        "required": ["value"],
    },
)

BLOCK_TYPES: tuple[BlockType, ...] = (
    AWS_CREDENTIALS,
    GCP_CREDENTIALS,
    AZURE_CONTAINER_INSTANCE_CREDENTIALS,
    DOCKER_REGISTRY_CREDENTIALS,
    SECRET,
    STRING,
    JSON,
)


def definitions(*types: BlockType) -> dict[str, dict[str, Any]]:
    """``variables.definitions`` entries for the block types a pool's variables refer to."""
    return {t.title: t.definition() for t in types}


def variable(block_type: BlockType, *, title: str, description: str) -> dict[str, Any]:
    """A block-typed pool variable, shaped as Prefect writes one (``allOf`` of the definition)."""
    return {
        "title": title,
        "description": description,
        "allOf": [{"$ref": f"#/definitions/{block_type.title}"}],
    }
