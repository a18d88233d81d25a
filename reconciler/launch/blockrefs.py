"""Block references by document id (``{"$ref": {"block_document_id": ...}}``) that reach a launch.

Prefect Cloud and the Prefect UI store a block picked for a pool variable as a ``$ref`` to the block
document's id. A Prefect server store turns every id it can name back into
``{{ prefect.blocks.TYPE.NAME }}`` when it reads the state, and the lifecycle inlines those blocks'
data. A ``$ref`` still present when a run is built is one nothing could resolve: a SQL store has no
block documents at all, or the document is gone from the server. Launching anyway would hand the
launcher a credentials variable it cannot read, and boto3, Google's ADC or ``DefaultAzureCredential``
would quietly use *this machine's* credentials: another account, or an auth failure that never names
the block. So the run is refused before anything is submitted, naming the block id and the field.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from reconciler.errors import LaunchAuthError, LaunchError

Path = tuple[str | int, ...]


def reference_id(value: Any) -> str | None:
    """The block document id of a ``$ref`` value (``{"$ref": {"block_document_id": id}}`` or ``{"$ref": id}``)."""
    if isinstance(value, Mapping) and set(value) == {"$ref"}:
        inner = value["$ref"]
        if isinstance(inner, Mapping):
            found = inner.get("block_document_id")
            return str(found) if found is not None else repr(dict(inner))
        return str(inner)
    return None


def credentials_block(value: Any, *, who: str, block_type: str, fallback: str) -> Mapping[str, Any]:
    """The credentials block data a pool variable holds ({} when unset), or ``LaunchAuthError``.

    A ``$ref`` nothing resolved, or anything that is not block data, is refused by name (``who``: the
    variable and its pool): the SDK would otherwise fall back to ``fallback``, this machine's own
    credentials, without a word."""
    if value in (None, {}):
        return {}
    block_id = reference_id(value)
    if block_id is not None or not isinstance(value, Mapping):
        what = f"block document {block_id} (unresolved)" if block_id else f"not {block_type} block data"
        raise LaunchAuthError(f"{who} is {what}: refusing to fall back to {fallback}")
    return value


def references(value: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """Every ``$ref`` in a JSON-shaped value, with its path and block document id."""
    found = reference_id(value)
    if found is not None:
        yield path, found
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from references(item, (*path, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from references(item, (*path, index))


def refuse_unresolved(
    configuration: Mapping[str, Any],
    *,
    pool: str,
    deployment: str,
    layers: Mapping[str, Mapping[str, Any]],
) -> None:
    """Raise a ``LaunchError`` naming each unresolved ``$ref`` and where it was set.

    ``layers`` maps a description of where variables come from (``"work pool 'ecs' job_variables"``)
    to those variables, so the message names the field the user has to change; a reference that only
    the rendered configuration shows came from the pool's base job template.
    """
    unresolved = list(references(configuration))
    if not unresolved:
        return
    origins: dict[str, str] = {}
    for where, variables in layers.items():
        for path, block_id in references(variables):
            origins.setdefault(block_id, f"{where}.{_dotted(path)}")
    details = []
    for path, block_id in unresolved:
        origin = origins.get(block_id, f"the base job template of work pool {pool!r} ({_dotted(path)})")
        details.append(f"block document {block_id} in {origin}")
    raise LaunchError(
        f"run of {deployment} on work pool {pool!r} not launched: {'; '.join(details)} is a block reference "
        'by id ({"$ref": {"block_document_id": ...}}, as Prefect Cloud stores a picked block) that this '
        "state cannot resolve. Declare the block under `blocks:` and use {{ prefect.blocks.TYPE.NAME }} "
        "instead; the run would otherwise fall back to this machine's own cloud credentials."
    )


def _dotted(path: Path) -> str:
    return ".".join(str(p) for p in path)
