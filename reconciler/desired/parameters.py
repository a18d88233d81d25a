"""A flow's ``parameter_openapi_schema``, read from its source: the flow module is never imported.

``prefect deploy`` imports the flow and calls ``prefect.utilities.callables.parameter_schema``: a
pydantic model with one field per parameter (title = the parameter's name, ``position``, the
docstring's description, the default), turned into a JSON schema whose ``$defs`` are also given as
``definitions`` and whose arbitrary classes become ``{}``. Prefect's server checks run parameters
against it and its UI draws the run form from it, so ours must be the same document.

We get there without running user code: the signature comes from the syntax tree, and each
annotation is rebuilt as a real Python type from what can be known statically:

* builtins, and names from a fixed set of installed, side-effect free modules (``typing``,
  ``datetime``, ``uuid``, ``pathlib``, ``decimal``, ``enum``, ``pydantic`` ...), which we import;
* classes of the flow's own file: ``Enum``s (their literal members), pydantic models, dataclasses and
  ``TypedDict``s (rebuilt from their annotated fields), any other class as an opaque class (Prefect
  gives those ``{}``); module-level aliases (``Mode = Literal["a", "b"]``) and literal constants.

What cannot be rebuilt (a class imported from another module of the project or a third-party
package) becomes ``Any``, as Prefect itself does for an annotation it cannot evaluate
(``parameter_schema_from_entrypoint``). A default that is not a literal (or built from the above) is
left out of the schema, and the parameter stays optional.
"""

from __future__ import annotations

import ast
import builtins
import copy
import dataclasses
import difflib
import enum
import importlib
import inspect
import json
import logging
import re
import typing
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema_rs
import pydantic
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from reconciler.desired.flows import FlowInfo, dotted_name
from reconciler.desired.source import SourceTree
from reconciler.objects import iter_secrets
from reconciler.pooltypes.base import schema_message

Json = Any

# Installed modules whose names an annotation may use: importing them runs no user code.
_SAFE_MODULES = frozenset(
    {
        "typing",
        "typing_extensions",
        "collections",
        "collections.abc",
        "datetime",
        "decimal",
        "enum",
        "ipaddress",
        "pathlib",
        "uuid",
        "re",
        "annotated_types",
        "pydantic",
        "pydantic.types",
        "pydantic.networks",
        "pydantic.fields",
        "pydantic_core",
    }
)
_BUILTIN_TYPES = {
    name: getattr(builtins, name)
    for name in (
        "int",
        "str",
        "float",
        "bool",
        "bytes",
        "complex",
        "list",
        "dict",
        "tuple",
        "set",
        "frozenset",
        "object",
        "type",
        "bytearray",
    )
}
_SAFE_ROOTS = frozenset(m.split(".")[0] for m in _SAFE_MODULES)
_LITERALS = tuple(
    {typing.Literal, getattr(importlib.import_module("typing_extensions"), "Literal", typing.Literal)}
)
_FACTORIES = (
    pydantic.Field,
    pydantic.conint,
    pydantic.confloat,
    pydantic.constr,
    pydantic.conlist,
    pydantic.conset,
    pydantic.confrozenset,
    pydantic.conbytes,
    pydantic.condecimal,
    pydantic.condate,
    enum.auto,
)
_PSEUDO_PARAMETERS = ("self", "cls")
_TYPE_ALIAS: Any = getattr(ast, "TypeAlias", None)
# The titles of the Google-style sections griffe reads as parameters ("Args:", "Parameters:" ...).
_PARAMETER_SECTION = re.compile(r"^\s*(args|arguments|params|parameters)\s*:", re.IGNORECASE | re.MULTILINE)
_TYPED_DICTS = (
    typing.TypedDict,
    importlib.import_module("typing_extensions").TypedDict,
)  # Prefect drops these: they are not flow parameters


# Thousands of deployments share a few flow functions: each schema is built once per file version.
_CACHE: dict[object, dict[str, Json]] = {}
_CACHE_SIZE = 4096


class Unresolvable(Exception):
    """An annotation or default that cannot be rebuilt without importing user code."""


class _NoDefault:
    """A default we cannot compute: left out of the schema, the parameter stays optional."""


_UNKNOWN_DEFAULT = _NoDefault()


class _EmptyForUserClasses(GenerateJsonSchema):
    """Arbitrary classes (``isinstance`` checks) are ``{}``, as Prefect's schema generator makes them."""

    def is_instance_schema(self, schema: core_schema.IsInstanceSchema) -> JsonSchemaValue:
        return {}


def schema_of(tree: SourceTree, info: FlowInfo) -> dict[str, Json]:
    """The parameter schema Prefect computes for the flow ``info`` names; ``{}`` (no schema: runs are
    not checked) if the function cannot be read again (the loader has reported why) or rebuilt."""
    try:
        key: object = (tree.cache_key(info.file), info.function)
    except (OSError, ValueError):
        return {}
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        try:
            _CACHE[key] = _read_schema(tree, info)
        except Exception:  # a construct not foreseen must not stop a plan: no schema, as before
            _CACHE[key] = {}
    return copy.deepcopy(_CACHE[key])


def _read_schema(tree: SourceTree, info: FlowInfo) -> dict[str, Json]:
    try:
        module = ast.parse(tree.read_text(info.file))
    except (OSError, SyntaxError, ValueError):
        return {}
    function = _function(module, info.function)
    if function is None:
        return {}
    return function_schema(module, function)


def function_schema(module: ast.Module, function: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, Json]:
    """The schema of ``function`` (defined in ``module``), built as Prefect builds it."""
    namespace = _Namespace(module)
    docstrings = parameter_docstrings(ast.get_docstring(function))
    fields: dict[str, tuple[Any, FieldInfo]] = {}
    unknown_defaults: list[str] = []
    for position, (arg, kind, default) in enumerate(_parameters(function.args)):
        name = arg.arg
        if name in _PSEUDO_PARAMETERS:
            continue
        annotation = namespace.annotation(arg.annotation)
        value = namespace.default(default) if default is not None else inspect.Parameter.empty
        if value is _UNKNOWN_DEFAULT:
            unknown_defaults.append(name)
            value = None
        field_name, field = _field(name, annotation, value, kind, position=position, docstrings=docstrings)
        fields[field_name] = field
    schema = _model_schema("Parameters", fields)
    result: dict[str, Json] = {
        "title": schema.get("title", "Parameters"),
        "type": schema.get("type", "object"),
        "properties": schema.get("properties", {}),
    }
    if "required" in schema:
        result["required"] = schema["required"]
    if "$defs" in schema:
        result["definitions"] = schema["$defs"]
    for name in unknown_defaults:
        result["properties"].get(name, {}).pop("default", None)
    return result


def parameter_docstrings(docstring: str | None) -> dict[str, str]:
    """Parameter descriptions from a Google-style ``Args:`` section, parsed as Prefect parses it."""
    if not docstring or not _PARAMETER_SECTION.search(docstring):
        return {}  # no section griffe could read as parameters: skip importing it (plan start-up time)
    from griffe import Docstring, DocstringSectionKind, Parser, parse

    griffe_log = logging.getLogger("griffe")
    level, griffe_log.disabled = griffe_log.disabled, True
    try:
        found: dict[str, str] = {}
        for section in parse(Docstring(docstring), Parser.google):
            if section.kind == DocstringSectionKind.parameters:
                found = {p.name: p.description for p in section.value}
        return found
    finally:
        griffe_log.disabled = level


# -- the signature ---------------------------------------------------------------------------------


def _function(module: ast.Module, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The function the way Prefect's source reader finds it: the first definition with that name."""
    top = [n for n in module.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == name]
    if top:
        return top[-1]  # a later definition replaces an earlier one at import
    for node in ast.walk(module):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return node
    return None


def _parameters(args: ast.arguments) -> Iterator[tuple[ast.arg, inspect._ParameterKind, ast.expr | None]]:
    """Every parameter in signature order with its kind and default expression."""
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for i, arg in enumerate(positional):
        kind = (
            inspect.Parameter.POSITIONAL_ONLY
            if i < len(args.posonlyargs)
            else inspect.Parameter.POSITIONAL_OR_KEYWORD
        )
        yield arg, kind, defaults[i]
    if args.vararg is not None:
        yield args.vararg, inspect.Parameter.VAR_POSITIONAL, None
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        yield arg, inspect.Parameter.KEYWORD_ONLY, default
    if args.kwarg is not None:
        yield args.kwarg, inspect.Parameter.VAR_KEYWORD, None


def _field(
    name: str,
    annotation: Any,
    default: Any,
    kind: inspect._ParameterKind,
    *,
    position: int,
    docstrings: Mapping[str, str],
) -> tuple[str, tuple[Any, FieldInfo]]:
    """One model field as Prefect makes it for a parameter (name, title, position, description)."""
    field_name = name + "__" if hasattr(pydantic.BaseModel, name) else name
    existing = default if isinstance(default, FieldInfo) else None
    value = existing.default if existing is not None else default
    description = (
        existing.description if existing is not None and existing.description else docstrings.get(name)
    )
    extra: dict[str, Any] = {}
    if existing is not None and isinstance(existing.json_schema_extra, dict):
        extra.update(existing.json_schema_extra)
    extra.setdefault("position", position)
    if kind is inspect.Parameter.VAR_POSITIONAL:
        annotation, value = list[annotation], []  # type: ignore[valid-type]
    elif kind is inspect.Parameter.VAR_KEYWORD:
        annotation, value = dict[str, annotation], {}  # type: ignore[valid-type]
    field = pydantic.Field(
        default=... if value is inspect.Parameter.empty else value,
        title=name,
        description=description,
        alias=name if field_name != name else None,
        json_schema_extra=extra,
    )
    try:
        _model_schema("CheckParameter", {field_name: (annotation, field)})
    except Exception:  # a type pydantic cannot describe: Prefect falls back to Any for it
        annotation = Any
    return field_name, (annotation, field)


def _model_schema(name: str, fields: Mapping[str, tuple[Any, FieldInfo]]) -> dict[str, Json]:
    model = pydantic.create_model(  # type: ignore[call-overload]
        name, __config__=pydantic.ConfigDict(arbitrary_types_allowed=True), **fields
    )
    return pydantic.TypeAdapter(model).json_schema(
        by_alias=True, ref_template="#/definitions/{model}", schema_generator=_EmptyForUserClasses
    )


# -- names of the module, rebuilt ------------------------------------------------------------------


class _Namespace:
    """The module-level names an annotation or default may use, each rebuilt on first use."""

    def __init__(self, module: ast.Module) -> None:
        self.definitions: dict[str, ast.stmt] = {}
        for stmt in _module_level(module.body):
            for name in _bound_names(stmt):
                self.definitions[name] = stmt
        self.values: dict[str, Any] = {}
        self.building: set[str] = set()
        self.postponed = any(
            isinstance(s, ast.ImportFrom)
            and s.module == "__future__"
            and any(a.name == "annotations" for a in s.names)
            for s in module.body
        )

    # annotations

    def annotation(self, node: ast.expr | None) -> Any:
        """The type an annotation names; ``inspect.Parameter.empty`` (so ``Any``) when unresolvable."""
        if node is None:
            return Any
        try:
            return self.evaluate(node, annotation=True)
        except Unresolvable:
            return Any
        except Exception:  # a construct typing refuses (Literal of a list, say): Prefect ends at Any too
            return Any

    def default(self, node: ast.expr) -> Any:
        try:
            return ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            pass
        try:
            return self.evaluate(node, annotation=False)
        except Exception:
            return _UNKNOWN_DEFAULT

    def evaluate(self, node: ast.expr, *, annotation: bool) -> Any:
        """An expression built only from literals, safe-module objects and rebuilt local classes."""
        match node:
            case ast.Constant(value=str() as text) if annotation:
                if self.postponed:  # under `from __future__ import annotations` Prefect sees a str
                    raise Unresolvable(text)
                return self.evaluate(ast.parse(text, mode="eval").body, annotation=True)
            case ast.Constant(value=value):
                return value
            case ast.Name(id=name):
                return self.name(name)
            case ast.Attribute(value=base, attr=attr):
                owner = self.evaluate(base, annotation=False)
                if inspect.ismodule(owner) or (
                    isinstance(owner, type) and (_rebuilt(owner) or _from_safe_module(owner))
                ):
                    return getattr(owner, attr)  # a module's name, a class's member: never an instance's
                raise Unresolvable(attr)
            case ast.Subscript(value=base, slice=index):
                origin = self.evaluate(base, annotation=annotation)
                if origin in _LITERALS:
                    items = index.elts if isinstance(index, ast.Tuple) else [index]
                    return origin[tuple(self.evaluate(i, annotation=False) for i in items)]
                if isinstance(index, ast.Tuple):
                    args = tuple(self._argument(i, origin) for i in index.elts)
                    return origin[args]
                return origin[self._argument(index, origin)]
            case ast.BinOp(left=left, op=ast.BitOr(), right=right):
                return self.evaluate(left, annotation=annotation) | self.evaluate(
                    right, annotation=annotation
                )
            case ast.List(elts=items):
                return [self.evaluate(i, annotation=annotation) for i in items]
            case ast.Tuple(elts=items):
                return tuple(self.evaluate(i, annotation=annotation) for i in items)
            case ast.Dict(keys=keys, values=values) if all(k is not None for k in keys):
                return {
                    self.evaluate(k, annotation=False): self.evaluate(v, annotation=False)
                    for k, v in zip(keys, values, strict=True)
                    if k is not None
                }
            case ast.UnaryOp(op=ast.USub(), operand=ast.Constant(value=int() | float() as number)):
                return -number
            case ast.Call(func=func, args=args, keywords=keywords):
                callee = self.evaluate(func, annotation=False)
                if not _callable(callee):
                    raise Unresolvable("call")
                positional = [self.evaluate(a, annotation=False) for a in args]
                named = {k.arg: self.evaluate(k.value, annotation=False) for k in keywords if k.arg}
                if len(named) != len(keywords):
                    raise Unresolvable("**kwargs")
                return callee(*positional, **named)
        raise Unresolvable(type(node).__name__)

    def _argument(self, node: ast.expr, origin: Any) -> Any:
        """A subscript argument: ``Annotated``'s metadata after the first item are values, not types."""
        return self.evaluate(node, annotation=origin is not typing.Annotated)

    def name(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        statement = self.definitions.get(name)
        if statement is None:
            if name in _BUILTIN_TYPES:
                return _BUILTIN_TYPES[name]
            if name in ("None",):
                return None
            raise Unresolvable(name)
        if name in self.building:  # a class that refers to itself: not rebuilt statically
            raise Unresolvable(name)
        self.building.add(name)
        try:
            value = self._build(name, statement)
        finally:
            self.building.discard(name)
        self.values[name] = value
        return value

    def _build(self, name: str, statement: ast.stmt) -> Any:
        match statement:
            case ast.Import(names=aliases):
                for alias in aliases:
                    bound = alias.asname or alias.name.split(".")[0]
                    if bound != name:
                        continue
                    if alias.name not in _SAFE_MODULES:
                        raise Unresolvable(alias.name)
                    module = importlib.import_module(alias.name)
                    return module if alias.asname else importlib.import_module(alias.name.split(".")[0])
            case ast.ImportFrom(module=module_name, names=aliases, level=0) if module_name in _SAFE_MODULES:
                for alias in aliases:
                    if (alias.asname or alias.name) == name:
                        return getattr(importlib.import_module(module_name), alias.name)
            case ast.ClassDef():
                return _ClassBuilder(self, statement).build()
            case ast.Assign(value=value) | ast.AnnAssign(value=value) if value is not None:
                try:
                    return ast.literal_eval(value)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    return self.evaluate(value, annotation=True)
        if _TYPE_ALIAS is not None and isinstance(statement, _TYPE_ALIAS):  # `type X = ...` (3.12+)
            return self.evaluate(statement.value, annotation=True)
        raise Unresolvable(name)


class _ClassBuilder:
    """A class of the flow's file rebuilt from its definition (enum, model, dataclass, TypedDict)."""

    def __init__(self, namespace: _Namespace, node: ast.ClassDef) -> None:
        self.ns, self.node = namespace, node

    def build(self) -> Any:
        bases = [self.ns.evaluate(b, annotation=True) for b in self.node.bases]
        doc = ast.get_docstring(self.node, clean=False)
        if any(isinstance(b, type) and issubclass(b, enum.Enum) for b in bases):
            return self._enum(bases)
        if any(isinstance(b, type) and issubclass(b, pydantic.BaseModel) for b in bases):
            return self._model(bases, doc)
        if any(b in _TYPED_DICTS or _is_typeddict(b) for b in bases):
            return self._typeddict(doc)
        if any(dotted_name(d) in ("dataclass", "dataclasses.dataclass") for d in self.node.decorator_list):
            return self._dataclass(doc)
        namespace: dict[str, Any] = {"__doc__": doc, "__module__": __name__, "_reconcile_rebuilt": True}
        return type(self.node.name, (), namespace)  # an arbitrary class: Prefect's schema gives {}

    def _annotated_fields(self) -> Iterator[tuple[str, Any, Any]]:
        for stmt in self.node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                annotation = self.ns.evaluate(stmt.annotation, annotation=True)
                if stmt.value is None:
                    yield stmt.target.id, annotation, inspect.Parameter.empty
                else:
                    value = self.ns.default(stmt.value)
                    if value is _UNKNOWN_DEFAULT:
                        raise Unresolvable(stmt.target.id)
                    yield stmt.target.id, annotation, value

    def _enum(self, bases: list[Any]) -> Any:
        members: list[tuple[str, Any]] = []
        auto_index = 0
        for stmt in self.node.body:
            if (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
            ):
                member = stmt.targets[0].id
                if member.startswith("_"):
                    continue
                value = stmt.value
                if isinstance(value, ast.Call) and dotted_name(value.func) in ("auto", "enum.auto"):
                    auto_index += 1
                    members.append((member, enum.auto()))
                    continue
                members.append((member, ast.literal_eval(value)))
        enum_bases = tuple(b for b in bases if isinstance(b, type))
        mixin = next((b for b in enum_bases if not issubclass(b, enum.Enum)), None)
        enum_base = next(b for b in enum_bases if issubclass(b, enum.Enum))
        options: dict[str, Any] = {"module": __name__}
        if mixin is not None:  # `class Color(str, Enum)`: the members are strings too
            options["type"] = mixin
        created = enum_base(self.node.name, members, **options)
        created.__doc__ = ast.get_docstring(self.node, clean=False)
        created._reconcile_rebuilt = True
        return created

    def _model(self, bases: list[Any], doc: str | None) -> Any:
        fields: dict[str, Any] = {}
        for name, annotation, value in self._annotated_fields():
            fields[name] = (annotation, ... if value is inspect.Parameter.empty else value)
        model_bases = tuple(b for b in bases if isinstance(b, type) and issubclass(b, pydantic.BaseModel))
        model = pydantic.create_model(  # type: ignore[call-overload]
            self.node.name, __base__=model_bases, __doc__=doc, __module__=__name__, **fields
        )
        model._reconcile_rebuilt = True
        return model

    def _dataclass(self, doc: str | None) -> Any:
        spec: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        for name, annotation, value in self._annotated_fields():
            if value is inspect.Parameter.empty:
                spec.append((name, annotation))
            else:
                spec.append((name, annotation, dataclasses.field(default=value)))
        created = dataclasses.make_dataclass(self.node.name, spec, namespace={"__module__": __name__})
        if doc is not None:
            created.__doc__ = doc
        created._reconcile_rebuilt = True  # type: ignore[attr-defined]
        return created

    def _typeddict(self, doc: str | None) -> Any:
        fields = {name: annotation for name, annotation, _ in self._annotated_fields()}
        total = next(
            (
                ast.literal_eval(k.value)
                for k in self.node.keywords
                if k.arg == "total" and isinstance(k.value, ast.Constant)
            ),
            True,
        )
        typed_dict = importlib.import_module("typing_extensions").TypedDict  # pydantic needs this one
        created = typed_dict(self.node.name, fields, total=total)
        created.__doc__ = doc
        created.__module__ = __name__
        return created


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that bind module names, looking into ``if``/``try`` (guarded imports)."""
    for stmt in body:
        if isinstance(stmt, ast.If):
            if _is_type_checking(stmt.test):
                continue  # never true at run time: Prefect cannot see these names either
            yield from _module_level(stmt.body)
            yield from _module_level(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            yield from _module_level(stmt.body)
        else:
            yield stmt


def _bound_names(stmt: ast.stmt) -> list[str]:
    match stmt:
        case ast.Import(names=aliases):
            return [a.asname or a.name.split(".")[0] for a in aliases]
        case ast.ImportFrom(names=aliases):
            return [a.asname or a.name for a in aliases if a.name != "*"]
        case ast.ClassDef(name=name):
            return [name]
        case ast.Assign(targets=targets):
            return [t.id for t in targets if isinstance(t, ast.Name)]
        case ast.AnnAssign(target=ast.Name(id=name)):
            return [name]
    if _TYPE_ALIAS is not None and isinstance(stmt, _TYPE_ALIAS) and isinstance(stmt.name, ast.Name):
        return [stmt.name.id]
    return []


def _is_type_checking(test: ast.expr) -> bool:
    return dotted_name(test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _from_safe_module(value: Any) -> bool:
    module = getattr(value, "__module__", None)
    if not isinstance(module, str):
        return False
    return module == "builtins" or module.split(".")[0] in _SAFE_ROOTS


def _callable(value: Any) -> bool:
    """What a default or annotation may call: a class (a value's constructor: a date, a UUID, a
    rebuilt model) or one of pydantic's field and constrained-type factories. Never a method or
    another function, which could read files or the clock."""
    if isinstance(value, type):
        return _rebuilt(value) or _from_safe_module(value)
    return value in _FACTORIES


def _rebuilt(value: Any) -> bool:
    return bool(getattr(value, "_reconcile_rebuilt", False))


def _is_typeddict(value: Any) -> bool:
    return isinstance(value, type) and typing.is_typeddict(value)


# -- checking parameters against a schema ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Problem:
    """One parameter the flow's call or Prefect's server would refuse."""

    parameter: str | None  # None: about the parameters as a whole
    message: str
    server_refuses: bool  # Prefect's server refuses a deployment with it (a wrong type), not only runs


def problems(schema: Mapping[str, Any], parameters: Mapping[str, Any], *, require: bool) -> list[Problem]:
    """What the flow's call or Prefect's server would refuse in ``parameters``.

    Beyond the schema itself (which the server checks when a deployment is written and when a run is
    created): a name the flow does not take (unless its last parameter may be ``**kwargs``) and, with
    ``require``, a required parameter left out (a run needs them all; a deployment's own may leave
    some to the run). Values resolved when the run starts (Secrets, Prefect's ``__prefect_kind``
    values) are not type-checked.
    """
    compiled = _compiled(schema)
    properties = compiled.properties
    found: list[Problem] = []
    for key in parameters:
        if key not in properties and not compiled.open_ended:
            hint = difflib.get_close_matches(key, list(properties), n=1)
            tip = f" (did you mean {hint[0]!r}?)" if hint else ""
            takes = ", ".join(sorted(properties)) or "no parameters"
            found.append(Problem(key, f"unknown parameter {key!r}{tip}; the flow takes: {takes}", False))
    if require:
        missing = [key for key in schema.get("required") or () if key not in parameters]
        found.extend(Problem(None, f"missing required parameter {key!r}", False) for key in missing)
    checked = {k: v for k, v in parameters.items() if k in properties and _checkable(v)}
    if not checked or compiled.validator.is_valid(checked):
        return found
    for error in compiled.validator.iter_errors(checked):
        where = str(error.instance_path[0]) if error.instance_path else None
        found.append(Problem(where, f"parameter {schema_message(error, schema)}", True))
    return found


@dataclasses.dataclass(frozen=True)
class _Compiled:
    """What checking parameters needs of one schema, worked out once per schema."""

    properties: Mapping[str, Any]
    open_ended: bool  # the flow may take any keyword (see ``_may_take_any_keyword``)
    validator: Any


_VALIDATORS: dict[str, Any] = {}  # by schema text: deployments of one flow share one validator
# By the schema object: a flow's deployments share one schema object (see ``check_deployments``), so
# the text above (a JSON dump per call) is made once per schema, not once per deployment. Each entry
# keeps the schema alive (its id cannot be reused) and a copy of it, compared on every hit (a C-level
# equality, far cheaper than the dump), so a schema changed in place is compiled again.
_BY_OBJECT: dict[int, tuple[Mapping[str, Any], Mapping[str, Any], _Compiled]] = {}


def _compiled(schema: Mapping[str, Any]) -> _Compiled:
    cached = _BY_OBJECT.get(id(schema))
    if cached is not None and cached[0] is schema and cached[1] == schema:
        return cached[2]
    properties: Mapping[str, Any] = schema.get("properties") or {}
    compiled = _Compiled(properties, _may_take_any_keyword(properties), _validator(schema))
    if len(_BY_OBJECT) >= _CACHE_SIZE:
        _BY_OBJECT.clear()
    _BY_OBJECT[id(schema)] = (schema, copy.deepcopy(schema), compiled)
    return compiled


def _validator(schema: Mapping[str, Any]) -> Any:
    """A validator of the schema without its ``required`` (checked separately, with better words)."""
    text = json.dumps({**schema, "required": []}, sort_keys=True)
    validator = _VALIDATORS.get(text)
    if validator is None:
        if len(_VALIDATORS) >= _CACHE_SIZE:
            _VALIDATORS.clear()
        validator = _VALIDATORS[text] = jsonschema_rs.Draft202012Validator(json.loads(text))
    return validator


def _may_take_any_keyword(properties: Mapping[str, Any]) -> bool:
    """Whether the last parameter may be ``**kwargs`` (Prefect gathers unknown names into it).

    The schema shows ``**kwargs`` as an object parameter defaulting to ``{}`` in the last position,
    exactly as it shows such a keyword parameter: both are given the benefit of the doubt.
    """
    if not properties:
        return False
    last = max(properties.values(), key=lambda p: p.get("position", -1) if isinstance(p, Mapping) else -1)
    return isinstance(last, Mapping) and last.get("type") == "object" and last.get("default") == {}


def _checkable(value: Any) -> bool:
    """Whether the value is final: Secrets, placeholders left for later (``{{ $X }}`` unset under
    ``validate``) and Prefect's ``__prefect_kind`` values are resolved after this check."""
    kind = type(value)
    if kind is str:  # the common case, decided without walking (a Secret is never a plain str)
        return "{{" not in value
    if kind is int or kind is float or kind is bool or value is None:
        return True
    if next(iter_secrets(value), None) is not None or _has_placeholder(value):
        return False
    return not (isinstance(value, Mapping) and "__prefect_kind" in value)


def _has_placeholder(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value
    if isinstance(value, Mapping):
        return any(_has_placeholder(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_placeholder(v) for v in value)
    return False
