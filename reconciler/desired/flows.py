"""Flow names from entrypoints, read from the source's AST: user code is never imported to plan.

Prefect names a deployment ``FLOW/NAME`` where FLOW is ``@flow(name=...)`` or the function name with
``_`` turned into ``-``. We find the function the way Prefect's ``import_object`` would
(``prefect/utilities/importtools.py``), but in the file's syntax tree, so planning has no side
effects and works without Prefect or the flow's dependencies installed:

* ``path/to/file.py:func`` (or ``:Class.method``): a script, by path;
* ``package.module:func`` and ``package.module.func``: a module, found like Python's import system
  finds it with the project directory first on ``sys.path`` (a package's ``__init__.py`` before a
  module file, a directory without ``__init__.py`` as a namespace package), following
  ``from X import func`` re-exports to the file that defines the function.

Every file is read through the source tree, which refuses paths outside the project. Results are
cached per file (by content identity) because thousands of deployments share a handful of flow files.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from reconciler.desired.source import OutsideProject, SourceTree, WorkingTree, boundary_of, confine

_MAX_HOPS = 8  # re-exports followed before giving up (and the guard against import cycles)


@dataclass(frozen=True)
class FlowInfo:
    """What an entrypoint tells us without running it."""

    name: str
    function: str
    file: str  # relative to the project directory
    docstring: str | None
    is_flow: bool  # decorated with Prefect's @flow
    line: int = 1  # where the function (or its @flow(name=...)) is written in ``file``
    computed: bool = False  # @flow(name=...) is computed at import time: ``name`` is the function's


class EntrypointError(ValueError):
    """The entrypoint cannot be resolved to a function in a file of the project."""


@dataclass(frozen=True)
class _Module:
    """One parsed file: its definitions and its ``from X import name`` re-exports."""

    file: str
    package: str | None  # the dotted package relative imports start from (None for a script)
    functions: dict[str, FlowInfo]
    classes: dict[str, dict[str, FlowInfo]]
    imports: dict[str, tuple[str, int, str]]  # local name -> (module, level, imported name)


_CACHE: dict[tuple[tuple[object, ...] | str, str | None], _Module | SyntaxError] = {}

_FORMS = "path/to/file.py:function or package.module:function"
_FLOW_DECORATORS = frozenset({"flow", "prefect.flow"})


def inspect_entrypoint(tree: SourceTree, entrypoint: str) -> FlowInfo:
    """Resolve an entrypoint in the project's source tree, as ``prefect deploy`` would."""
    try:
        module, object_path = _locate(tree, entrypoint)
        return _find(tree, module, object_path, hops=0)
    except OutsideProject as exc:  # the path only: nothing from beyond it, nor what it names there
        raise EntrypointError(f"entrypoint file {exc}") from None


def entrypoint_file(tree: SourceTree, entrypoint: str) -> str:
    """The project file an entrypoint runs (checked inside the project): for launchers."""
    try:
        module, _ = _locate(tree, entrypoint)
    except OutsideProject as exc:  # the path only: nothing from beyond it, nor what it names there
        raise EntrypointError(f"entrypoint file {exc}") from None
    return module.file


def check_runnable(
    project_dir: Path, entrypoint: str, *, working_dir: str | None, pull_steps: list[Any] | None, local: bool
) -> None:
    """Refuse (EntrypointError) to run an entrypoint whose code lies outside the project.

    A stored deployment may come from anywhere (another tool, an edited store), so the launcher checks
    again what ``validate`` checked. A local run resolves the file on this disk from the directory it
    will run in (``working_dir``, then any ``set_working_directory`` pull step); code that another
    pull step brings (``git_clone``) and code inside a container image cannot be seen from here, so
    only the form is checked there: never an absolute path.
    """
    path, _, _ = entrypoint.rpartition(":") if ".py:" in entrypoint else ("", "", "")
    if path and (PurePosixPath(path).is_absolute() or PureWindowsPath(path).is_absolute()):
        raise EntrypointError(
            f"entrypoint file {path} is an absolute path: it must be relative to the project"
        )
    if not local:
        return
    boundary = boundary_of(project_dir)
    directories = [working_dir] if working_dir else []
    for step in pull_steps or []:
        function, inputs = next(
            ((k, v) for k, v in dict(step).items() if k not in ("id", "requires")), ("", None)
        )
        if not str(function).endswith("set_working_directory"):
            return  # the code comes from elsewhere (a clone, a bucket): nothing on this disk to check
        directories.append(str((inputs or {}).get("directory") or "."))
    directory = Path(project_dir)
    for target in directories:
        try:
            directory = confine(directory, os.path.expandvars(target), boundary=boundary)
        except OutsideProject as exc:
            raise EntrypointError(f"the run's working directory {exc}") from None
    entrypoint_file(WorkingTree(directory, within=boundary), entrypoint)


def _short(text: str) -> str:
    return repr(text if len(text) <= 120 else text[:117] + "...")


# -- where the code is -------------------------------------------------------------------------------


def _locate(tree: SourceTree, entrypoint: str) -> tuple[_Module, list[str]]:
    """The module an entrypoint names and the attribute path inside it (``["Class", "method"]``)."""
    if ".py:" in entrypoint:
        file, _, object_path = entrypoint.rpartition(":")
        return _script(tree, file), _object_path(entrypoint, object_path)
    if ":" in entrypoint:
        module_name, _, object_path = entrypoint.rpartition(":")
    else:
        module_name, _, object_path = entrypoint.rpartition(".")
    if not module_name:
        raise EntrypointError(f"entrypoint {_short(entrypoint)} must look like {_FORMS}")
    if not all(part.isidentifier() for part in module_name.split(".")):
        raise EntrypointError(f"entrypoint {_short(entrypoint)} must look like {_FORMS}")
    return _module(tree, module_name, entrypoint), _object_path(entrypoint, object_path)


def _object_path(entrypoint: str, object_path: str) -> list[str]:
    parts = object_path.split(".")
    if not all(part.isidentifier() for part in parts) or len(parts) > 2:
        raise EntrypointError(
            f"entrypoint {_short(entrypoint)} must end with :function or :Class.method after the file or module"
        )
    return parts


def _script(tree: SourceTree, file: str) -> _Module:
    if PurePosixPath(file).is_absolute() or PureWindowsPath(file).is_absolute():
        raise EntrypointError(f"entrypoint file {file} must be a path relative to the project directory")
    if not tree.is_file(file):
        raise EntrypointError(f"entrypoint file {file} does not exist in the project")
    return _parse(tree, file, package=None)


def _module(tree: SourceTree, module_name: str, entrypoint: str) -> _Module:
    """Python's path-based finder, one package level at a time, from the project directory."""
    found = _module_source(tree, module_name)
    if found is None:
        looked = module_name.replace(".", "/")
        raise EntrypointError(
            f"entrypoint {_short(entrypoint)}: module {module_name} is not in the project "
            f"(looked for {looked}.py and {looked}/__init__.py); flows are read from the project's files only"
        )
    file, package = found
    return _parse(tree, file, package=package)


def _module_source(tree: SourceTree, module_name: str) -> tuple[str, str] | None:
    """``(file, package)`` of a dotted module, or None when the import system would not find it here."""
    parts = module_name.split(".")
    base = ""
    for i, part in enumerate(parts):
        here = f"{base}{part}"
        last = i == len(parts) - 1
        if tree.is_file(f"{here}/__init__.py"):  # a regular package wins over a module file
            if last:
                return f"{here}/__init__.py", module_name
        elif tree.is_file(f"{here}.py"):
            if last:
                return f"{here}.py", module_name.rpartition(".")[0]
            return None  # a plain module is not a package: ``here.x`` cannot be imported
        elif last:
            return None  # nothing, or a namespace package (no source, no functions)
        base = f"{here}/"
    return None


def _parse(tree: SourceTree, file: str, *, package: str | None) -> _Module:
    try:
        key = (tree.cache_key(file), package)  # a script or a module: relative imports differ
        cached = _CACHE.get(key)
        if cached is None:
            try:
                # a UTF-8 byte-order mark is allowed at the start of Python source; ast.parse of str is not
                source = tree.read_text(file).removeprefix("\ufeff")
                cached = _index(ast.parse(source, filename=file), file, package)
            except SyntaxError as exc:
                cached = exc
            _CACHE[key] = cached
    except UnicodeDecodeError:
        raise EntrypointError(f"{file}: cannot read flow: not UTF-8 text") from None
    except OSError as exc:
        raise EntrypointError(f"{file}: cannot read flow: {exc.strerror or exc}") from None
    if isinstance(cached, SyntaxError):
        raise EntrypointError(f"{file}:{cached.lineno}: cannot read flow: {cached.msg}")
    return cached


# -- what the code defines ---------------------------------------------------------------------------


def _find(tree: SourceTree, module: _Module, object_path: list[str], *, hops: int) -> FlowInfo:
    head = object_path[0]
    if len(object_path) == 1 and head in module.functions:
        return module.functions[head]
    if len(object_path) == 2 and head in module.classes:
        method = module.classes[head].get(object_path[1])
        if method is not None:
            return method
        raise EntrypointError(f"method {object_path[1]!r} not found in class {head} of {module.file}")
    if head in module.imports and hops < _MAX_HOPS:
        imported_from, level, imported = module.imports[head]
        source = _imported_module(tree, module, imported_from, level)
        if source is not None:
            return _find(tree, source, [imported, *object_path[1:]], hops=hops + 1)
    known = ", ".join(sorted(module.functions)) or "none"
    what = "function" if len(object_path) == 1 else "class"
    raise EntrypointError(f"{what} {head!r} not found in {module.file} (top-level functions: {known})")


def _imported_module(tree: SourceTree, module: _Module, name: str, level: int) -> _Module | None:
    """The project module a ``from NAME import ...`` refers to, or None (outside the project)."""
    if level:
        if module.package is None:
            return None  # a script has no package: Prefect's import fails there too
        anchor = module.package.split(".") if module.package else []
        if level - 1 > len(anchor):
            return None
        anchor = anchor[: len(anchor) - (level - 1)]
        name = ".".join([*anchor, *([name] if name else [])])
    candidates = [name] if name else []
    if module.package is None and name:
        # a script runs with its own directory first on sys.path (prefect's load_script_as_module)
        parent = str(PurePosixPath(module.file).parent)
        if parent not in ("", "."):
            candidates.insert(0, f"{parent.replace('/', '.')}.{name}")
    for candidate in candidates:
        if not all(part.isidentifier() for part in candidate.split(".")):
            continue
        found = _module_source(tree, candidate)
        if found is not None:
            return _parse(tree, found[0], package=found[1])
    return None


def _index(node: ast.Module, file: str, package: str | None) -> _Module:
    functions: dict[str, FlowInfo] = {}
    classes: dict[str, dict[str, FlowInfo]] = {}
    imports: dict[str, tuple[str, int, str]] = {}
    constants: dict[str, str] = {}  # module-level string constants, for @flow(name=NAME)
    decorators = _flow_decorators(node.body)
    for stmt in _module_level(node.body):
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            functions[stmt.name] = _info(stmt, file, constants, decorators)
        elif isinstance(stmt, ast.ClassDef):
            classes[stmt.name] = {
                item.name: _info(item, file, constants, decorators)
                for item in stmt.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            }
        elif isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                if alias.name != "*":
                    imports[alias.asname or alias.name] = (stmt.module or "", stmt.level, alias.name)
        elif isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if len(targets) == 1 and isinstance(targets[0], ast.Name):
                target = targets[0].id
                text = _string(stmt.value, constants)
                if isinstance(text, str):
                    constants[target] = text
                made = _assigned_flow(stmt.value, functions, constants, decorators)
                if made is not None:
                    functions[target] = made
    return _Module(file, package, functions, classes, imports)


class _Computed:
    """A name Prefect would compute at import time (a call, an attribute...): not readable here."""


_COMPUTED = _Computed()


def _string(value: ast.expr, constants: dict[str, str]) -> str | _Computed:
    """A string expression made of literals and module-level string constants, as Python evaluates it."""
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value
    if isinstance(value, ast.Name) and value.id in constants:
        return constants[value.id]
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add):
        left, right = _string(value.left, constants), _string(value.right, constants)
        if isinstance(left, str) and isinstance(right, str):
            return left + right
    if isinstance(value, ast.JoinedStr):
        parts = []
        for part in value.values:
            if isinstance(part, ast.FormattedValue):
                if part.conversion != -1 or part.format_spec is not None:
                    return _COMPUTED
                part = part.value
            text = _string(part, constants)
            if not isinstance(text, str):
                return _COMPUTED
            parts.append(text)
        return "".join(parts)
    return _COMPUTED


def _assigned_flow(
    value: ast.expr, functions: dict[str, FlowInfo], constants: dict[str, str], decorators: frozenset[str]
) -> FlowInfo | None:
    """A flow made by assignment from a function defined above: ``f = flow(g)``,
    ``f = flow(name="x")(g)``, ``f = g.with_options(name="x")`` or ``f = g``; None otherwise."""
    if isinstance(value, ast.Name):
        return functions.get(value.id)
    if not isinstance(value, ast.Call):
        return None
    func = value.func
    if isinstance(func, ast.Attribute) and func.attr == "with_options" and isinstance(func.value, ast.Name):
        base = functions.get(func.value.id)
        name = _name_keyword(value.keywords, constants)
        return None if base is None else _renamed(base, name, value.lineno, is_flow=base.is_flow)
    keywords = list(value.keywords)
    if isinstance(func, ast.Call) and dotted_name(func.func) in decorators:
        keywords = list(func.keywords)
    elif dotted_name(func) not in decorators:
        return None
    if len(value.args) != 1 or not isinstance(value.args[0], ast.Name):
        return None
    base = functions.get(value.args[0].id)
    if base is None:
        return None
    name = _name_keyword(keywords, constants)
    return _renamed(
        base, name if name is not None else _default_name(base.function), value.lineno, is_flow=True
    )


def _renamed(base: FlowInfo, name: str | _Computed | None, line: int, *, is_flow: bool) -> FlowInfo:
    if name is None:
        return FlowInfo(
            base.name, base.function, base.file, base.docstring, is_flow, base.line, base.computed
        )
    if isinstance(name, _Computed):
        return FlowInfo(
            _default_name(base.function), base.function, base.file, base.docstring, is_flow, line, True
        )
    return FlowInfo(name, base.function, base.file, base.docstring, is_flow, line)


def _name_keyword(keywords: list[ast.keyword], constants: dict[str, str]) -> str | _Computed | None:
    """The ``name=`` argument: its text, ``_COMPUTED`` when only running the code could tell, or None."""
    for keyword in keywords:
        if keyword.arg == "name":
            return _string(keyword.value, constants)
    return None


def _default_name(function: str) -> str:
    return function.replace("_", "-")


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run at import time: the body, and the branches of top-level if/try/with."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, ast.If):
            yield from _module_level(stmt.body)
            yield from _module_level(stmt.orelse)
        elif isinstance(stmt, ast.Try | ast.TryStar):
            for block in (stmt.body, stmt.orelse, stmt.finalbody, *(h.body for h in stmt.handlers)):
                yield from _module_level(block)
        elif isinstance(stmt, ast.With | ast.AsyncWith):
            yield from _module_level(stmt.body)


def _flow_decorators(body: list[ast.stmt]) -> frozenset[str]:
    """How this module spells Prefect's ``flow``: ``flow``, ``prefect.flow``, and any import alias
    (``from prefect import flow as task_flow``, ``import prefect as pf`` then ``pf.flow``)."""
    names = set(_FLOW_DECORATORS)
    for stmt in _module_level(body):
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "prefect" and not stmt.level:
            names.update(a.asname or a.name for a in stmt.names if a.name == "flow")
        elif isinstance(stmt, ast.Import):
            names.update(f"{a.asname}.flow" for a in stmt.names if a.name == "prefect" and a.asname)
    return frozenset(names)


def _info(
    node: ast.FunctionDef | ast.AsyncFunctionDef,
    file: str,
    constants: dict[str, str],
    decorators: frozenset[str],
) -> FlowInfo:
    is_flow, name, line = False, None, node.lineno
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if dotted_name(target) in decorators:  # @flow, @flow(...), @prefect.flow(...), aliases
            is_flow = True
            name = _name_keyword(decorator.keywords, constants) if isinstance(decorator, ast.Call) else None
            if name is not None:
                line = decorator.lineno
            break
    computed = isinstance(name, _Computed)
    return FlowInfo(
        name=name if isinstance(name, str) else _default_name(node.name),
        function=node.name,
        file=file,
        docstring=ast.get_docstring(node),
        is_flow=is_flow,
        line=line,
        computed=computed,
    )


def dotted_name(node: ast.expr) -> str:
    """``a.b.c`` for a name or attribute chain (a call stands for what it calls); "" for anything else."""
    if isinstance(node, ast.Call):
        return dotted_name(node.func)
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted_name(node.value)}.{node.attr}"
    return ""
