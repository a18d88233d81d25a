"""The closed set of pool and block types this tool knows. Unknown slugs are user errors."""

from __future__ import annotations

from reconciler.pooltypes import aci, blocks, cloud_run, ecs, process
from reconciler.pooltypes.base import PoolType
from reconciler.pooltypes.blocks import BlockType

_POOL_TYPES: dict[str, PoolType] = {
    t.slug: t
    for t in (
        process.POOL_TYPE,
        ecs.POOL_TYPE,
        cloud_run.POOL_TYPE,
        cloud_run.POOL_TYPE_V2,
        aci.POOL_TYPE,
    )
}
_BLOCK_TYPES: dict[str, BlockType] = {t.slug: t for t in blocks.BLOCK_TYPES}


def get(slug: str) -> PoolType | None:
    return _POOL_TYPES.get(slug)


def names() -> list[str]:
    return sorted(_POOL_TYPES)


def block_type(slug: str) -> BlockType | None:
    return _BLOCK_TYPES.get(slug)


def block_type_names() -> list[str]:
    return sorted(_BLOCK_TYPES)
