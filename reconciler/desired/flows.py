"""Flow names from entrypoints, read from the source's AST: user code is never imported to plan.

Prefect names a deployment ``FLOW/NAME`` where FLOW is ``@flow(name=...)`` or the function name with
``_`` turned into ``-``. We find the function in the file's syntax tree, so planning has no side
effects and works without Prefect or the flow's dependencies installed. Results are cached per file
(by size and mtime) because thousands of deployments often share a handful of flow files.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from reconciler.desired.source import SourceTree


@dataclass(frozen=True)
class FlowInfo:
    """What an entrypoint tells us without running it."""

    name: str
    function: str
    file: str  # relative to the project directory
    docstring: str | None
    is_flow: bool  # decorated with Prefect's @flow


class EntrypointError(ValueError):
    """The entrypoint cannot be resolved to a function in a file of the project."""


_CACHE: dict[tuple[object, ...] | str, dict[str, FlowInfo] | SyntaxError] = {}


def inspect_entrypoint(tree: SourceTree, entrypoint: str) -> FlowInfo:
    """Resolve ``path/file.py:func`` or ``package.module.func`` in the project's source tree."""
    file, function = _split(tree, entrypoint)
    functions = _functions_in(tree, file)
    info = functions.get(function)
    if info is None:
        known = ", ".join(sorted(functions)) or "none"
        raise EntrypointError(f"function {function!r} not found in {file} (top-level functions: {known})")
    return info


def _split(tree: SourceTree, entrypoint: str) -> tuple[str, str]:
    if ":" in entrypoint:
        file, _, function = entrypoint.rpartition(":")
        if not file or not function:
            raise EntrypointError(f"entrypoint {entrypoint!r} must look like path/to/file.py:function")
        if not tree.is_file(file):
            raise EntrypointError(f"entrypoint file {file} does not exist in {tree.root}")
        return file, function
    module, _, function = entrypoint.rpartition(".")
    if not module:
        raise EntrypointError(
            f"entrypoint {entrypoint!r} must be path/file.py:function or package.module.function"
        )
    base = module.replace(".", "/")
    for candidate in (f"{base}.py", f"{base}/__init__.py"):
        if tree.is_file(candidate):
            return candidate, function
    raise EntrypointError(f"entrypoint module {module} not found under {tree.root}")


def _functions_in(tree: SourceTree, file: str) -> dict[str, FlowInfo]:
    key = tree.cache_key(file)
    cached = _CACHE.get(key)
    if cached is None:
        try:
            module = ast.parse(tree.read_text(file), filename=file)
            cached = _index_functions(module, file)
        except SyntaxError as exc:
            cached = exc
        _CACHE[key] = cached
    if isinstance(cached, SyntaxError):
        raise EntrypointError(f"{file}:{cached.lineno}: cannot read flow: {cached.msg}")
    return cached


def _index_functions(tree: ast.Module, file: str) -> dict[str, FlowInfo]:
    found: dict[str, FlowInfo] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            flow_name, is_flow = _flow_decoration(node)
            found[node.name] = FlowInfo(
                name=flow_name or node.name.replace("_", "-"),
                function=node.name,
                file=file,
                docstring=ast.get_docstring(node),
                is_flow=is_flow,
            )
    return found


def _flow_decoration(node: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[str | None, bool]:
    """``(name given to @flow, whether it is a flow)`` for ``@flow``, ``@flow(...)``, ``@prefect.flow``."""
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if _dotted_name(target) in {"flow", "prefect.flow"}:
            keywords = decorator.keywords if isinstance(decorator, ast.Call) else []
            for keyword in keywords:
                value = keyword.value
                if keyword.arg == "name" and isinstance(value, ast.Constant) and isinstance(value.value, str):
                    return value.value, True
            return None, True
    return None, False


def _dotted_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted_name(node.value)}.{node.attr}"
    return ""
