"""Read ``prefect.yaml`` into canonical desired resources, reporting every problem at once.

Order of work: parse (fast path, see yamlfile) -> JSON Schema (shape) -> pydantic per item (meaning)
-> cross-item checks (names, references, pool-type variables, entrypoints) -> placeholder resolution
-> canonical bodies. Problems become ``FILE:LINE:COL: message`` diagnostics; line marks are computed
only when there is something to report, so a valid file never pays for them.
"""

from __future__ import annotations

import contextlib
import difflib
import gc
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path as FsPath
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from reconciler import pooltypes
from reconciler.errors import Diagnostic, SpecError
from reconciler.objects import SECRET_KEY, Address, Resource
from reconciler.spec import canonical, flows, schema, templating
from reconciler.spec.desired import Desired, Reference, RuleKind, RunRule, SourceInfo
from reconciler.spec.marks import Marks
from reconciler.spec.models import Block, Deployment, ProjectFile, WorkPool
from reconciler.spec.source import SourceTree
from reconciler.spec.yamlfile import Path, format_path, parse

M = TypeVar("M", bound=BaseModel)
_DEPLOYMENT_KEYS = frozenset(Deployment.model_fields) | {"sla", "flow_name"}


def load(
    tree: SourceTree,
    file: str = "prefect.yaml",
    *,
    environ: Mapping[str, str],
    fingerprint_key: bytes | Callable[[str], bytes],
    project: str | None = None,
) -> Desired:
    """The desired state of the project in ``tree``; raises SpecError listing every problem.

    ``fingerprint_key`` is the store's HMAC key, or a function of the project name that gives it
    (called only if the file has a secret, so validating a file never needs the store).
    """
    text = _read(tree, file)
    with _gc_paused():
        data = parse(text, file=file)
        return _Loader(tree, file, text, environ, fingerprint_key).run(data, project)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Loading builds hundreds of thousands of small objects and no cycles: without this, Python's
    cycle collector runs over the growing heap again and again and doubles the time of a large load."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def project_name(data: Any, tree: SourceTree, *, override: str | None = None) -> str:
    """``--project``, else the file's top-level ``name:``, else the project directory's name."""
    if override:
        return override
    if isinstance(data, dict) and isinstance(data.get("name"), str) and data["name"].strip():
        return data["name"].strip()
    return FsPath(tree.root).resolve().name


def project_of(tree: SourceTree, file: str, *, override: str | None = None) -> str:
    """The project name without loading the whole desired state (for runs, history, state list)."""
    if override:
        return override
    try:
        data = parse(tree.read_text(file), file=file)
    except (OSError, SpecError):
        data = None
    return project_name(data, tree)


def _read(tree: SourceTree, file: str) -> str:
    try:
        return tree.read_text(file)
    except FileNotFoundError:
        raise SpecError([Diagnostic(file, 1, 1, f"no such file: {FsPath(tree.root) / file}")]) from None
    except UnicodeDecodeError as exc:
        raise SpecError([Diagnostic(file, 1, 1, f"not UTF-8 text: {exc.reason}")]) from None


class _Loader:
    """One load: collects diagnostics and resources as it walks the file."""

    def __init__(
        self,
        tree: SourceTree,
        file: str,
        text: str,
        environ: Mapping[str, str],
        key: bytes | Callable[[str], bytes],
    ) -> None:
        self.tree, self.file = tree, file
        self.marks = Marks(text, file)
        self.project = ""
        self.resolver = templating.EnvResolver(
            environ, lambda: key if isinstance(key, bytes) else key(self.project)
        )
        # Most large files hold no placeholder at all: then no value needs walking.
        self.resolver.active = "{{" in text or SECRET_KEY in text
        self.entrypoints: dict[str, flows.FlowInfo | flows.EntrypointError] = {}
        self.problems: list[tuple[Path, str, bool]] = []
        self.warnings: list[tuple[Path, str]] = []
        self.resources: dict[Address, Resource] = {}
        self.rules: dict[Address, tuple[RunRule, ...]] = {}
        self.references: list[Reference] = []
        self.pool_types: dict[str, pooltypes.PoolType] = {}

    def error(self, path: Path, message: str, *, at_key: bool = False) -> None:
        self.problems.append((path, message, at_key))

    def run(self, data: Any, project: str | None) -> Desired:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.error((), "the file must be a mapping of top-level keys (deployments:, work_pools:, ...)")
            self._raise()
        bad_items = self._schema(data)
        self._model(ProjectFile, {k: v for k, v in data.items() if not isinstance(v, list)}, (), bad_items)
        self.project = project_name(data, self.tree, override=project)
        blocks = self._section(data, "blocks", Block, bad_items)
        pools = self._section(data, "work_pools", WorkPool, bad_items)
        deployments = self._section(data, "deployments", Deployment, bad_items)
        has_blocks, has_pools = "blocks" in data, "work_pools" in data
        for i, block in blocks:
            self._block(i, block)
        for i, pool in pools:
            self._pool(i, pool, has_blocks=has_blocks)
        top_pull = data.get("pull") if "pull" in data else None
        raw_deployments = data.get("deployments") or []
        for i, deployment in deployments:
            self._deployment(i, deployment, raw_deployments[i], top_pull=top_pull, has_pools=has_pools)
        for problem in self.resolver.problems:
            self.error(problem.path, problem.message)
        if self.problems:
            self._raise()
        return Desired(
            project=self.project,
            source=SourceInfo(project_dir=str(self.tree.root), file=self.file, git=self.tree.git),
            resources=self.resources,
            run_rules=self.rules,
            external_references=tuple(self.references),
            warnings=tuple(str(self.marks.diagnostic(p, m, key=True)) for p, m in self.warnings),
            marks=self.marks,
        )

    def _raise(self) -> None:
        raise SpecError([self.marks.diagnostic(p, m, key=k) for p, m, k in self.problems])

    # -- shape -------------------------------------------------------------------------------------

    def _schema(self, data: dict[str, Any]) -> set[Path]:
        """Schema problems; returns the items (``("deployments", 3)``) not to parse any further."""
        bad: set[Path] = set()
        for problem in schema.check(data):
            self.error(problem.path, problem.message, at_key=problem.at_key)
            bad.add(problem.path[:2] if len(problem.path) >= 2 else problem.path[:1])
        return bad

    def _section(self, data: dict[str, Any], key: str, model: type[M], bad: set[Path]) -> list[tuple[int, M]]:
        items = data.get(key)
        if not isinstance(items, list) or (key,) in bad:
            return []
        parsed = []
        for i, raw in enumerate(items):
            item = self._model(model, raw, (key, i), bad)
            if item is not None:
                parsed.append((i, item))
        return parsed

    def _model(self, model: type[M], raw: Any, path: Path, bad: set[Path]) -> M | None:
        if path in bad:
            return None
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors(include_url=False, include_input=False):
                loc = tuple(
                    part
                    for part in err["loc"]
                    if not isinstance(part, str) or not part.startswith("function")
                )
                loc = _strip_union_tags(loc)
                message = str(err["msg"]).removeprefix("Value error, ")
                where = format_path((*path, *loc))
                self.error((*path, *loc), f"{where}: {message}")
            return None

    # -- blocks ------------------------------------------------------------------------------------

    def _block(self, i: int, block: Block) -> None:
        base: Path = ("blocks", i)
        block_type = pooltypes.block_type(block.type)
        if block_type is None:
            known = ", ".join(pooltypes.block_type_names())
            self.error((*base, "type"), f"unknown block type {block.type!r} (known: {known})")
            return
        address = Address.block(block.type, block.name)
        if not self._claim(address, base):
            return
        data: dict[str, Any] = {}
        checkable: dict[str, Any] = {}
        for field, value in block.data.items():
            path = (*base, "data", field)
            if field in block_type.secret_fields:
                data[field] = self.resolver.resolve_secret_field(value, path, what=f"{address} field {field}")
                checkable[field] = "{{ secret }}"
            else:
                data[field] = self.resolver.resolve(value, path)
                checkable[field] = value
        for problem in block_type.validate(checkable):
            self.error((*base, "data", *problem.path), f"{address}: {problem.message}", at_key=problem.at_key)
        body = {"type": block.type, "name": block.name, "data": canonical.coerce(data, block_type.fields)}
        self.resources[address] = Resource(address, body)

    # -- work pools --------------------------------------------------------------------------------

    def _pool(self, i: int, pool: WorkPool, *, has_blocks: bool) -> None:
        base: Path = ("work_pools", i)
        pool_type = pooltypes.get(pool.type)
        if pool_type is None:
            self.error(
                (*base, "type"),
                f"unknown work pool type {pool.type!r} (known: {', '.join(pooltypes.names())})",
            )
            return
        address = Address.pool(pool.name)
        if not self._claim(address, base):
            return
        template = None
        if pool.base_job_template:
            template = canonical.plain(
                self.resolver.resolve(pool.base_job_template, (*base, "base_job_template"))
            )
            if self._check_template(template, (*base, "base_job_template")):
                pool_type = pool_type.with_template(template)  # variables are the template's own
        elif pool.base_job_template is not None:
            template = {}
        self.pool_types[pool.name] = pool_type
        jv_path = (*base, "job_variables")
        as_typed = canonical.coerce(canonical.plain(pool.job_variables), pool_type.variables)  # "512" is 512
        for problem in pool_type.validate_job_variables(as_typed):
            self.error(
                (*jv_path, *problem.path),
                f"work pool {pool.name!r}: {problem.message}",
                at_key=problem.at_key,
            )
        depends = self._block_variables(pool_type, pool.job_variables, jv_path, has_blocks=has_blocks)
        variables: dict[str, Any] = {}
        for name, value in pool.job_variables.items():
            if name in pool_type.secret_variables:
                variables[name] = self.resolver.resolve_secret_field(
                    value, (*jv_path, name), what=f"variable {name}"
                )
            else:
                variables[name] = self.resolver.resolve(value, (*jv_path, name))
        variables = canonical.coerce(canonical.plain(variables), pool_type.variables)
        body = {
            "type": pool.type,
            "description": pool.description,
            "concurrency_limit": pool.concurrency_limit,
            "paused": pool.paused,
            "job_variables": variables,
            "base_job_template": template,
        }
        self.resources[address] = Resource(address, body, depends_on=tuple(sorted(set(depends))))

    def _block_variables(
        self, pool_type: pooltypes.PoolType, variables: Mapping[str, Any], path: Path, *, has_blocks: bool
    ) -> list[Address]:
        """Credentials variables must be block references of the right type; returns their addresses."""
        depends: list[Address] = []
        for name, value in variables.items():
            wanted = pool_type.block_variables.get(name)
            if wanted is None or value is None:
                depends.extend(self._references(value, (*path, name), has_blocks=has_blocks))
                continue
            refs = templating.block_references(value)
            if not isinstance(value, str) or len(refs) != 1:
                self.error(
                    (*path, name),
                    f"variable {name} takes a block reference such as "
                    f'"{{{{ prefect.blocks.{wanted}.NAME }}}}", not an inline value',
                )
                continue
            if refs[0][0] != wanted:
                self.error((*path, name), f"variable {name} needs a {wanted} block, not {refs[0][0]}")
                continue
            depends.extend(self._references(value, (*path, name), has_blocks=has_blocks))
        return depends

    def _references(self, value: Any, path: Path, *, has_blocks: bool) -> list[Address]:
        addresses = []
        for block_type, name in templating.block_references(value):
            address = Address.block(block_type, name)
            addresses.append(address)
            if address in self.resources:
                continue
            if has_blocks:
                self.error(path, f"unknown block {block_type}/{name}: declare it under blocks:")
            else:
                self.references.append(Reference(address, path))
        return addresses

    def _check_template(self, template: dict[str, Any], path: Path) -> bool:
        """What Prefect's server checks (else 422): every placeholder in job_configuration is a variable."""
        declared = set((template.get("variables") or {}).get("properties", {}))
        undeclared = sorted(_simple_placeholders(template.get("job_configuration")) - declared)
        for name in undeclared:
            self.error(
                (*path, "job_configuration"), f"placeholder {{{{ {name} }}}} is not declared in variables"
            )
        return not undeclared

    # -- deployments -------------------------------------------------------------------------------

    def _deployment(
        self, i: int, dep: Deployment, raw: dict[str, Any], *, top_pull: Any, has_pools: bool
    ) -> None:
        base: Path = ("deployments", i)
        self._warn_unknown_keys(raw, base)
        if not dep.entrypoint:
            self.error(base, f"deployment {dep.name!r} has no entrypoint (path/to/file.py:function)")
            return
        info = self._inspect(dep.entrypoint)
        if isinstance(info, flows.EntrypointError):
            self.error((*base, "entrypoint"), str(info))
            return
        address = Address.deployment(info.name, dep.name)
        if not self._claim(address, base):
            return
        depends: list[Address] = []
        pool_body = None
        if dep.work_pool is not None and dep.work_pool.name:
            pool_body, depends = self._deployment_pool(dep, base, has_pools=has_pools)
        schedules, duplicates = canonical.schedules_body(dep.all_schedules())
        for slug in duplicates:
            self.error((*base, "schedules"), f"two schedules have the slug {slug!r}")
        pull = dep.pull if "pull" in raw else top_pull
        body = {
            "flow_name": info.name,
            "name": dep.name,
            "entrypoint": dep.entrypoint,
            "description": self.resolver.resolve(dep.description, (*base, "description")) or info.docstring,
            "version": self._text(dep.version, (*base, "version")),
            "tags": canonical.tags_body(self.resolver.resolve(dep.tags, (*base, "tags"))),
            "parameters": canonical.plain(self.resolver.resolve(dep.parameters, (*base, "parameters"))),
            "enforce_parameter_schema": dep.enforce_parameter_schema,
            "work_pool": pool_body,
            "schedules": self.resolver.resolve(schedules, (*base, "schedules")),
            "paused": bool(dep.paused),
            "concurrency_limit": canonical.concurrency_body(dep.concurrency_limit),
            "pull_steps": canonical.steps_body(pull),
            "triggers": canonical.plain(dep.triggers or []),
        }
        self.resources[address] = Resource(address, body, depends_on=tuple(sorted(set(depends))))
        self.rules[address] = tuple(self._rule(r) for r in dep.run_on)

    def _inspect(self, entrypoint: str) -> flows.FlowInfo | flows.EntrypointError:
        """Each entrypoint is read once per load (thousands of deployments share a few flow files)."""
        if entrypoint not in self.entrypoints:
            try:
                self.entrypoints[entrypoint] = flows.inspect_entrypoint(self.tree, entrypoint)
            except flows.EntrypointError as exc:
                self.entrypoints[entrypoint] = exc
        return self.entrypoints[entrypoint]

    def _deployment_pool(
        self, dep: Deployment, base: Path, *, has_pools: bool
    ) -> tuple[dict[str, Any], list[Address]]:
        assert dep.work_pool is not None and dep.work_pool.name
        ref = dep.work_pool
        pool_name = ref.name
        assert pool_name is not None
        jv_path = (*base, "work_pool", "job_variables")
        pool_address = Address.pool(pool_name)
        depends = [pool_address]
        pool_type = self.pool_types.get(pool_name)
        if pool_address not in self.resources:
            if has_pools:
                known = list(self.pool_types)
                hint = difflib.get_close_matches(pool_name, known, n=1)
                tip = f" (did you mean {hint[0]!r}?)" if hint else ""
                self.error((*base, "work_pool", "name"), f"unknown work pool {pool_name!r}{tip}")
            else:
                self.references.append(Reference(pool_address, (*base, "work_pool", "name")))
        variables = dict(ref.job_variables)
        if pool_type is not None:
            pool_variables = self.resources[pool_address].body["job_variables"]
            as_typed = canonical.coerce(canonical.plain(variables), pool_type.variables)
            for problem in pool_type.validate_job_variables(as_typed, beneath=pool_variables):
                message = f"deployment {dep.name!r}: {problem.message}"
                self.error((*jv_path, *problem.path), message, at_key=problem.at_key)
            for name in pool_type.secret_variables & set(variables):
                variables[name] = self.resolver.resolve_secret_field(
                    variables[name], (*jv_path, name), what=name
                )
        depends.extend(self._references(variables, jv_path, has_blocks=False))
        resolved = canonical.plain(self.resolver.resolve(variables, jv_path))
        if pool_type is not None:
            resolved = canonical.coerce(resolved, pool_type.variables)
        body = {
            "name": pool_name,
            "work_queue_name": self._text(ref.work_queue_name, (*base, "work_pool", "work_queue_name"))
            or "default",
            "job_variables": resolved,
        }
        return body, depends

    def _rule(self, rule: Any) -> RunRule:
        if rule.push is not None:
            return RunRule(RuleKind.PUSH, tuple(rule.push.branches or ()), tuple(rule.push.paths or ()))
        if rule.watch is not None:
            return RunRule(RuleKind.WATCH, (), tuple(rule.watch.paths))
        return RunRule(RuleKind.APPLY)

    def _warn_unknown_keys(self, raw: dict[str, Any], base: Path) -> None:
        for key in raw:
            if key not in _DEPLOYMENT_KEYS:
                hint = difflib.get_close_matches(key, sorted(_DEPLOYMENT_KEYS), n=1)
                tip = f" (did you mean {hint[0]!r}?)" if hint else ""
                self.warnings.append(
                    ((*base, key), f"warning: unknown deployment key {key!r} is ignored{tip}")
                )

    # -- shared ------------------------------------------------------------------------------------

    def _claim(self, address: Address, path: Path) -> bool:
        if address in self.resources:
            self.error((*path, "name"), f"duplicate {address.kind.value.replace('_', ' ')} {address.name!r}")
            return False
        return True

    def _text(self, value: Any, path: Path) -> str | None:
        if value is None:
            return None
        resolved = self.resolver.resolve(str(value), path)
        return resolved if isinstance(resolved, str) else str(value)


def _simple_placeholders(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, str):
        for match in templating.PLACEHOLDER.finditer(node):
            name = match.group(1)
            if "." not in name and not name.startswith("$"):
                found.add(name)
    elif isinstance(node, Mapping):
        for value in node.values():
            found |= _simple_placeholders(value)
    elif isinstance(node, list):
        for value in node:
            found |= _simple_placeholders(value)
    return found


def _strip_union_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Pydantic adds union member names (``int``, ``ConcurrencyOptions``) to locations; drop them."""
    return tuple(
        part
        for part in loc
        if not (
            isinstance(part, str)
            and (part[:1].isupper() or part in {"int", "str", "float", "bool", "list[str]"})
        )
    )
