"""Work-pool and block types: their variables, defaults, secret fields and job-configuration rendering.

Facade: other layers use ``pooltypes.get(slug)``, ``pooltypes.names()``, ``pooltypes.block_type(slug)``.
"""

from reconciler.pooltypes.base import PoolType, VariableProblem, merge_variables, substitute
from reconciler.pooltypes.registry import block_type, block_type_names, get, names

__all__ = [
    "PoolType",
    "VariableProblem",
    "block_type",
    "block_type_names",
    "get",
    "merge_variables",
    "names",
    "substitute",
]
