"""Read ``prefect.yaml`` into canonical desired resources, reporting every problem at once.

Order of work: parse (fast path, see yamlfile) -> JSON Schema (shape) -> pydantic per item (meaning)
-> cross-item checks (names, references, pool-type variables, entrypoints) -> placeholder resolution
-> canonical bodies. Problems become ``FILE:LINE:COL: message`` diagnostics; line marks are computed
only when there is something to report, so a valid file never pays for them.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path as FsPath
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from reconciler import pooltypes
from reconciler.desired import flows, schema, templating
from reconciler.desired.check_deployments import DeploymentChecks
from reconciler.desired.check_pools import PoolAndBlockChecks
from reconciler.desired.desired import Desired, Reference, RunRule, SourceInfo
from reconciler.desired.identity import lenient_name
from reconciler.desired.marks import Marks
from reconciler.desired.models import Block, Deployment, ProjectFile, WorkPool
from reconciler.desired.source import SourceTree
from reconciler.desired.yamlfile import Path, format_path, key_as_written, non_string_keys, parse
from reconciler.errors import Diagnostic, SpecError
from reconciler.objects import SECRET_KEY, Address, Resource

M = TypeVar("M", bound=BaseModel)


def load(
    tree: SourceTree,
    file: str = "prefect.yaml",
    *,
    environ: Mapping[str, str],
    fingerprint_key: bytes | Callable[[str], bytes],
    project: str | None = None,
    allow_empty: bool = False,
    public_env: Iterable[str] = frozenset(),
    strict_env: bool = True,
) -> Desired:
    """The desired state of the project in ``tree``; raises SpecError listing every problem.

    ``fingerprint_key`` is the store's HMAC key, or a function of the project name that gives it
    (called only if the file has a secret, so validating a file never needs the store).
    ``allow_empty`` accepts a file that declares nothing (``import`` starts from one).
    ``public_env`` names the environment variables the operator allows to be shown (``--public-env``),
    besides those ``RECONCILE_PUBLIC_ENV`` in ``environ`` lists (``templating.public_env_names``);
    every other ``{{ $NAME }}`` value is a Secret. ``strict_env``
    False (``validate``) reports unset variables as "not checked" warnings instead of errors.
    """
    text = _read(tree, file)
    with _gc_paused():
        data = parse(text, file=file)
        loader = _Loader(tree, file, text, environ, fingerprint_key)
        loader.resolver.public = templating.public_env_names(environ, public_env)
        loader.resolver.strict = strict_env
        loader.allow_empty = allow_empty
        return loader.run(data, project)


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
        text = tree.read_text(file)
    except (OSError, UnicodeDecodeError):
        return project_name(None, tree)
    try:
        data = parse(text, file=file)
    except SpecError:  # mid-edit: the name line usually still reads (identity.lenient_name)
        data = {"name": lenient_name(text)}
    return project_name(data, tree)


def _read(tree: SourceTree, file: str) -> str:
    try:
        return tree.read_text(file)
    except FileNotFoundError:
        raise SpecError([Diagnostic(file, 1, 1, f"no such file: {FsPath(tree.root) / file}")]) from None
    except UnicodeDecodeError as exc:
        raise SpecError([Diagnostic(file, 1, 1, f"not UTF-8 text: {exc.reason}")]) from None
    except IsADirectoryError:
        raise SpecError([Diagnostic(file, 1, 1, "is a directory, not a prefect.yaml file")]) from None
    except OSError as exc:
        raise SpecError([Diagnostic(file, 1, 1, f"cannot read the file: {exc.strerror or exc}")]) from None


class _Loader(PoolAndBlockChecks, DeploymentChecks):
    """One load: collects diagnostics and resources as it walks the file (the per-kind checks live in
    ``check_pools`` and ``check_deployments``)."""

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
        self.flow_facts: dict[tuple[object, str, str], object] = {}
        self.ci_checkouts: dict[str, str | None] = {}
        self.problems: list[tuple[Path, str, bool]] = []
        self.warnings: list[tuple[Path, str]] = []
        self.resources: dict[Address, Resource] = {}
        self.rules: dict[Address, tuple[RunRule, ...]] = {}
        self.references: list[Reference] = []
        self.pool_types: dict[str, pooltypes.PoolType] = {}
        self.declared_pools: set[str] = set()
        self.allow_empty = False

    def error(self, path: Path, message: str, *, at_key: bool = False) -> None:
        self.problems.append((path, message, at_key))

    def run(self, data: Any, project: str | None) -> Desired:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.error((), "the file must be a mapping of top-level keys (deployments:, work_pools:, ...)")
            self._raise()
        for path, key in non_string_keys(data):
            where = format_path(path) or "the file"
            self.error(
                (*path, key_as_written(self.marks.text, path, key) or str(key)),
                f"{where}: the key {key!r} is not a string (YAML reads it as {type(key).__name__}): quote it",
                at_key=True,
            )
        if self.problems:  # nothing below can read a mapping with such keys
            self._raise()
        data = self.resolver.substitute(data)  # placeholders are checked as the values they stand for
        bad_items = self._schema(data)
        self._model(ProjectFile, {k: v for k, v in data.items() if not isinstance(v, list)}, (), bad_items)
        self.project = project_name(data, self.tree, override=project)
        blocks = self._section(data, "blocks", Block, bad_items)
        pools = self._section(data, "work_pools", WorkPool, bad_items)
        deployments = self._section(data, "deployments", Deployment, bad_items)
        has_blocks, has_pools = "blocks" in data, "work_pools" in data
        raw_pools = data.get("work_pools") if isinstance(data.get("work_pools"), list) else []
        # pools the file declares, valid or not: a pool with its own error is not also "unknown"
        self.declared_pools = {str(p["name"]) for p in raw_pools if isinstance(p, dict) and p.get("name")}
        for i, block in blocks:
            self._block(i, block)
        for i, pool in pools:
            self._pool(i, pool, has_blocks=has_blocks)
        top_pull = data.get("pull") if "pull" in data else None
        self.top_build = data.get("build")  # prefect deploy's default pull step depends on it
        raw_deployments = data.get("deployments") if isinstance(data.get("deployments"), list) else []
        deployable = self._deployments(deployments, raw_deployments, top_pull=top_pull, has_pools=has_pools)
        if not self.allow_empty:
            self._require_declarations(data, deployable=deployable)
        self._placeholder_findings()
        if self.problems:
            self._raise()
        return Desired(
            project=self.project,
            source=SourceInfo(project_dir=str(self.tree.root), file=self.file, git=self.tree.git),
            resources=self.resources,
            run_rules=self.rules,
            external_references=tuple(self.references),
            warnings=tuple(
                str(self.marks.diagnostic(p, self.resolver.redact(m, p), key=True)) for p, m in self.warnings
            )
            + tuple(str(self.marks.diagnostic(w.path, w.message)) for w in self.resolver.warnings),
            marks=self.marks,
        )

    def _raise(self) -> None:
        """Every problem, and every warning found so far with them (a warning is no less true for the
        file also having errors: "did you mean 'tags'?" may be the fix)."""
        redact = self.resolver.redact
        found = [self.marks.diagnostic(p, redact(m, p), key=k) for p, m, k in self.problems]
        warned = [self.marks.diagnostic(p, redact(m, p), key=True) for p, m in self.warnings]
        warned += [self.marks.diagnostic(w.path, w.message) for w in self.resolver.warnings]
        raise SpecError(found, warned)

    def _placeholder_findings(self) -> None:
        """The resolver's errors (its warnings are rendered at the placeholder, see ``run``); a check's
        finding about a placeholder left unresolved (unset or reserved, so already reported) would
        only repeat it, or judge the template text."""
        unresolved = self.resolver.unresolved
        if unresolved:
            self.problems = [
                problem
                for problem in self.problems
                if not any(problem[0][: len(where)] == where for where in unresolved)
            ]
        for problem in self.resolver.problems:
            self.error(problem.path, problem.message)

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

    # -- shared ------------------------------------------------------------------------------------

    def _claim(self, address: Address, path: Path) -> bool:
        if address in self.resources:
            self.error((*path, "name"), f"duplicate {address.kind.value.replace('_', ' ')} {address.name!r}")
            return False
        return True

    def _text(self, value: Any, path: Path) -> Any:
        """A text field: the string, or a Secret when it came from a non-public placeholder."""
        if value is None:
            return None
        return self.resolver.resolve(str(value), path)


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
