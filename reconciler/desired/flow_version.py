"""A flow's version as Prefect gives it: ``@flow(version=...)``, else a hash of the flow's file.

``prefect deploy`` stores the flow's version on a deployment whose file sets no ``version:``
(``RunnerDeployment._set_defaults_from_flow``), and Prefect's ``Flow`` defaults that version to the
MD5 of the file that defines the function (``prefect.utilities.hashing.file_hash``). Read here from
the file without importing it, so an edit to the flow's file shows in the plan as a new version.
"""

from __future__ import annotations

import ast
import hashlib

from reconciler.desired import flows
from reconciler.desired.flows import FlowInfo
from reconciler.desired.source import SourceTree

_CACHE: dict[object, str] = {}  # per file version: thousands of deployments share a few files
_CACHE_SIZE = 4096


def of(tree: SourceTree, info: FlowInfo) -> str | None:
    """The version ``prefect deploy`` would give a deployment of ``info``'s flow (None if unreadable)."""
    try:
        key: object = (tree.cache_key(info.file), info.function)
        if key not in _CACHE:
            if len(_CACHE) >= _CACHE_SIZE:
                _CACHE.clear()
            data = _read_bytes(tree, info.file)
            _CACHE[key] = (
                _declared(data, info.function) or hashlib.md5(data, usedforsecurity=False).hexdigest()
            )
    except (OSError, ValueError):
        return None
    return _CACHE[key]


def _read_bytes(tree: SourceTree, relpath: str) -> bytes:
    """The file's bytes as on disk (the hash is of bytes: line endings count)."""
    path_of = getattr(tree, "path", None)
    if callable(path_of):
        return path_of(relpath).read_bytes()
    return tree.read_text(relpath).encode("utf-8")


def _declared(data: bytes, function: str) -> str | None:
    """A literal ``version=`` given to the function's ``@flow`` decorator."""
    try:
        module = ast.parse(data)
    except (SyntaxError, ValueError):
        return None
    spellings = flows._flow_decorators(module.body)  # flow, prefect.flow and their import aliases
    for node in ast.walk(module):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
            for decorator in node.decorator_list:
                if not isinstance(decorator, ast.Call) or flows.dotted_name(decorator.func) not in spellings:
                    continue
                for keyword in decorator.keywords:
                    value = keyword.value
                    if (
                        keyword.arg == "version"
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                    ):
                        return value.value
    return None
