"""Read ``prefect.yaml`` into canonical desired resources, reporting every problem at once.

Order of work: parse (fast path, see yamlfile) -> JSON Schema (shape) -> pydantic per item (meaning)
-> cross-item checks (names, references, pool-type variables, entrypoints) -> placeholder resolution
-> canonical bodies. Problems become ``FILE:LINE:COL: message`` diagnostics; line marks are computed
only when there is something to report, so a valid file never pays for them. One load's state
(what it collects and its caches) is a ``LoadContext`` (``context``), made afresh by each ``load``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path as FsPath
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel

from reconciler.desired import (
    check_deployments,
    check_pools,
    check_workspace,
    schema,
    templating,
)
from reconciler.desired.context import LoadContext
from reconciler.desired.desired import Desired, SourceInfo
from reconciler.desired.identity import lenient_name
from reconciler.desired.models import (
    Block,
    ConcurrencyLimit,
    Deployment,
    ProjectFile,
    Variable,
    WorkPool,
    WorkQueue,
)
from reconciler.desired.source import SourceTree
from reconciler.desired.yamlfile import (
    Path,
    format_path,
    huge_integers,
    key_as_written,
    non_string_keys,
    parse,
)
from reconciler.errors import Diagnostic, SpecError
from reconciler.infra import heap

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
    with heap.collector_paused():  # hundreds of thousands of small objects, no cycles
        data = parse(text, file=file)
        ctx = LoadContext(tree=tree, file=file, content=text, environ=environ, key=fingerprint_key)
        ctx.resolver.public = templating.public_env_names(environ, public_env)
        ctx.resolver.strict = strict_env
        ctx.allow_empty = allow_empty
        return _run(ctx, data, project)


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


def _run(ctx: LoadContext, data: Any, project: str | None) -> Desired:
    """The whole load of ``data`` (the parsed file): every check, then the desired state or one
    SpecError with every problem (the per-kind checks live in ``check_pools`` and
    ``check_deployments``, functions over the same ``ctx``)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        ctx.error((), "the file must be a mapping of top-level keys (deployments:, work_pools:, ...)")
        _raise(ctx)
    for path, key in non_string_keys(data):
        where = format_path(path) or "the file"
        ctx.error(
            (*path, key_as_written(ctx.marks.text, path, key) or str(key)),
            f"{where}: the key {key!r} is not a string (YAML reads it as {type(key).__name__}): quote it",
            at_key=True,
        )
    for path in huge_integers(data):
        ctx.error(
            path,
            f"{format_path(path) or 'the file'}: the number is too large (Prefect stores 64-bit integers)",
        )
    if ctx.problems:  # nothing below can read a mapping with such keys, nor encode such a number
        _raise(ctx)
    data = ctx.resolver.substitute(data)  # placeholders are checked as the values they stand for
    bad_items = _schema(ctx, data)
    ctx.model(ProjectFile, {k: v for k, v in data.items() if not isinstance(v, list)}, (), bad_items)
    ctx.project = project_name(data, ctx.tree, override=project)
    blocks = _section(ctx, data, "blocks", Block, bad_items)
    pools = _section(ctx, data, "work_pools", WorkPool, bad_items)
    deployments = _section(ctx, data, "deployments", Deployment, bad_items)
    has_blocks, has_pools = "blocks" in data, "work_pools" in data
    raw_pools = data.get("work_pools") if isinstance(data.get("work_pools"), list) else []
    # pools the file declares, valid or not: a pool with its own error is not also "unknown"
    ctx.declared_pools = {str(p["name"]) for p in raw_pools if isinstance(p, dict) and p.get("name")}
    for i, block in blocks:
        check_pools.block(ctx, i, block)
    for i, pool in pools:
        check_pools.pool(ctx, i, pool, has_blocks=has_blocks)
    for i, variable in _section(ctx, data, "variables", Variable, bad_items):
        check_workspace.variable(ctx, i, variable)
    for i, limit in _section(ctx, data, "concurrency_limits", ConcurrencyLimit, bad_items):
        check_workspace.concurrency_limit(ctx, i, limit)
    for i, queue in _section(ctx, data, "work_queues", WorkQueue, bad_items):
        check_workspace.work_queue(ctx, i, queue)
    top_pull = data.get("pull") if "pull" in data else None
    ctx.top_build = data.get("build")  # prefect deploy's default pull step depends on it
    raw_deployments = data.get("deployments") if isinstance(data.get("deployments"), list) else []
    deployable = check_deployments.deployments(
        ctx, deployments, raw_deployments, top_pull=top_pull, has_pools=has_pools
    )
    raw_automations = data.get("automations")
    if isinstance(raw_automations, list) and ("automations",) not in bad_items:
        from reconciler.desired import automations  # its models cost ~30 ms: only files that have some

        for i, raw in enumerate(raw_automations):  # after deployments: they name them by address
            if ("automations", i) not in bad_items:
                automations.check(ctx, i, raw)
    if not ctx.allow_empty:
        check_deployments.require_declarations(ctx, data, deployable=deployable)
    _placeholder_findings(ctx)
    if ctx.problems:
        _raise(ctx)
    return Desired(
        project=ctx.project,
        source=SourceInfo(project_dir=str(ctx.tree.root), file=ctx.file, git=ctx.tree.git),
        resources=ctx.resources,
        run_rules=ctx.rules,
        external_references=tuple(ctx.references),
        warnings=tuple(
            str(ctx.marks.diagnostic(p, ctx.resolver.redact(m, p), key=True)) for p, m in ctx.warnings
        )
        + tuple(str(ctx.marks.diagnostic(w.path, w.message)) for w in ctx.resolver.warnings),
        marks=ctx.marks,
    )


def _raise(ctx: LoadContext) -> NoReturn:
    """Every problem, and every warning found so far with them (a warning is no less true for the
    file also having errors: "did you mean 'tags'?" may be the fix)."""
    redact = ctx.resolver.redact
    found = [ctx.marks.diagnostic(p, redact(m, p), key=k) for p, m, k in ctx.problems]
    warned = [ctx.marks.diagnostic(p, redact(m, p), key=True) for p, m in ctx.warnings]
    warned += [ctx.marks.diagnostic(w.path, w.message) for w in ctx.resolver.warnings]
    raise SpecError(found, warned)


def _placeholder_findings(ctx: LoadContext) -> None:
    """The resolver's errors (its warnings are rendered at the placeholder, see ``_run``); a check's
    finding about a placeholder left unresolved (unset or reserved, so already reported) would
    only repeat it, or judge the template text."""
    unresolved = ctx.resolver.unresolved
    if unresolved:
        ctx.problems = [
            problem
            for problem in ctx.problems
            if not any(problem[0][: len(where)] == where for where in unresolved)
        ]
    for problem in ctx.resolver.problems:
        ctx.error(problem.path, problem.message)


# -- shape -----------------------------------------------------------------------------------------


def _schema(ctx: LoadContext, data: dict[str, Any]) -> set[Path]:
    """Schema problems; returns the items (``("deployments", 3)``) not to parse any further."""
    bad: set[Path] = set()
    for problem in schema.check(data):
        ctx.error(problem.path, problem.message, at_key=problem.at_key)
        bad.add(problem.path[:2] if len(problem.path) >= 2 else problem.path[:1])
    return bad


def _section(
    ctx: LoadContext, data: dict[str, Any], key: str, model: type[M], bad: set[Path]
) -> list[tuple[int, M]]:
    items = data.get(key)
    if not isinstance(items, list) or (key,) in bad:
        return []
    parsed = []
    for i, raw in enumerate(items):
        item = ctx.model(model, raw, (key, i), bad)
        if item is not None:
            parsed.append((i, item))
    return parsed
