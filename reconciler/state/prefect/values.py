"""Values that change form on the way to a Prefect server and back: secrets and block references.

Secrets: the canonical body holds :class:`~reconciler.objects.Secret` leaves (a template and a
fingerprint). The server is where runs read their configuration, so it gets the real value, resolved
from this process's environment at write time. On the way back the value at each recorded secret path
becomes a Secret again: with the recorded fingerprint while the server still holds what we wrote
(compared through a keyed hash, never the value), with a fresh one when someone changed it.

Block references: a pool variable typed as a block (``aws_credentials``) must hold
``{"$ref": {"block_document_id": ...}}`` on the server (a ``{{ prefect.blocks... }}`` string fails its
validation with 422), while the file says ``{{ prefect.blocks.aws-credentials.prod }}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from reconciler.errors import StateError
from reconciler.objects import Secret
from reconciler.state.prefect.inventory import SecretRecord, digest, get_path, missing, set_path

Path = tuple[str | int, ...]
WHOLE_BLOCK = re.compile(r"^\{\{\s*prefect\.blocks\.([\w\-]+)\.([\w\-]+)\s*\}\}$")


def secret_leaves(value: Any, path: Path = ()) -> Iterator[tuple[Path, Secret]]:
    """Every Secret leaf with its path."""
    if isinstance(value, Secret):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from secret_leaves(item, (*path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from secret_leaves(item, (*path, index))


def resolve(value: Any, environ: Mapping[str, str], *, what: str) -> tuple[Any, list[str]]:
    """``value`` with every Secret replaced by its real value, and the values (to redact from errors)."""
    found: list[str] = []

    def walk(node: Any) -> Any:
        if isinstance(node, Secret):
            missing_names = [n for n in node.env_names if n not in environ]
            if missing_names:
                raise StateError(
                    f"cannot write {what}: environment variable {missing_names[0]} is not set "
                    "(a secret the Prefect server needs to hold)"
                )
            resolved = node.resolve(environ)
            found.append(resolved)
            return resolved
        if isinstance(node, Mapping):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list | tuple):
            return [walk(v) for v in node]
        return node

    return walk(value), found


def secret_records(key: bytes, body: Mapping[str, Any], raw: Mapping[str, Any]) -> tuple[SecretRecord, ...]:
    """What to remember of each Secret leaf of ``body``, given ``raw`` (the server's view, real values)."""
    records = []
    for path, secret in secret_leaves(body):
        held = get_path(raw, path)
        server = digest(key, None if held is missing() else held)
        records.append(SecretRecord(path, secret.template, secret.fingerprint, server))
    return tuple(records)


def restore_secrets(key: bytes, raw: Mapping[str, Any], records: tuple[SecretRecord, ...]) -> Any:
    """The server's view with each recorded secret path turned back into a Secret (no value kept)."""
    body: Any = raw
    for record in records:
        held = get_path(body, record.path)
        if held is missing():
            continue  # removed on the server: the diff shows the secret as changed
        server = digest(key, held)
        fingerprint = record.fingerprint if server == record.server else f"changed-on-server:{server}"
        body = set_path(body, record.path, Secret(record.template, fingerprint))
    return body


# -- block references ----------------------------------------------------------------------------


def whole_reference(value: Any) -> tuple[str, str] | None:
    """``(type, name)`` when ``value`` is exactly ``{{ prefect.blocks.TYPE.NAME }}``."""
    if isinstance(value, str):
        match = WHOLE_BLOCK.match(value.strip())
        if match:
            return match.group(1), match.group(2)
    return None


def references_to_ids(
    variables: Mapping[str, Any], block_variables: frozenset[str], block_id: Callable[[str, str], str]
) -> dict[str, Any]:
    """Block-typed variables holding a whole reference become ``{"$ref": {"block_document_id": id}}``."""
    result = dict(variables)
    for name in block_variables & set(variables):
        ref = whole_reference(variables[name])
        if ref is not None:
            result[name] = {"$ref": {"block_document_id": block_id(*ref)}}
    return result


def reference_id(value: Any) -> str | None:
    """The block document id of a ``$ref`` value (both forms Prefect accepts)."""
    if isinstance(value, Mapping) and set(value) == {"$ref"}:
        inner = value["$ref"]
        if isinstance(inner, Mapping) and set(inner) == {"block_document_id"}:
            return str(inner["block_document_id"])
        if isinstance(inner, str):
            return inner
    return None


def ids_to_references(variables: Mapping[str, Any], names: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    """The inverse of :func:`references_to_ids` for the ids we can name; unknown ids stay as they are."""
    result = dict(variables)
    for name, value in variables.items():
        block_id = reference_id(value)
        if block_id is not None and block_id in names:
            block_type, block_name = names[block_id]
            result[name] = f"{{{{ prefect.blocks.{block_type}.{block_name} }}}}"
    return result


def referenced_ids(variables: Mapping[str, Any] | None) -> set[str]:
    return {i for v in (variables or {}).values() if (i := reference_id(v)) is not None}
