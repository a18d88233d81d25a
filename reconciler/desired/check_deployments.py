"""Checks and canonical bodies for the ``deployments:`` section (part of the loader).

Functions over the load's ``LoadContext`` (``deployments`` checks the section,
``require_declarations`` refuses a file that declares nothing): entrypoints are read from their
syntax tree (never imported), pools and their job variables are checked, ``run_on`` rules are
collected. Every check of an entry runs even when another one failed (a missing flow file hides
nothing), and entries that ``prefect deploy --all`` would skip (no name, or no entrypoint, as
``prefect init`` leaves them) are skipped with a warning rather than refused. The caches of one
load (entrypoints, per-flow facts, CI checkouts) live in the context, so they last one load.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from pathlib import Path as FsPath
from typing import Any, TypeVar, cast

from reconciler.desired import canonical, check_pools, flow_version, flows, parameters, pull_steps
from reconciler.desired import variables as variable_refs
from reconciler.desired.context import LoadContext
from reconciler.desired.desired import Reference, RuleKind, RunRule
from reconciler.desired.models import Deployment, Schedule
from reconciler.desired.names import NameKind, problem, show
from reconciler.desired.source import SourceTree
from reconciler.desired.yamlfile import Path
from reconciler.objects import Address, Resource

_DEPLOYMENT_KEYS = frozenset(Deployment.model_fields) | {"sla", "flow_name"}
_SECTIONS = (
    "deployments",
    "work_pools",
    "blocks",
    "work_queues",
    "variables",
    "concurrency_limits",
    "automations",
)
T = TypeVar("T")


# -- the section -------------------------------------------------------------------------------


def deployments(
    ctx: LoadContext,
    parsed: list[tuple[int, Deployment]],
    raw_items: list[Any],
    *,
    top_pull: Any,
    has_pools: bool,
) -> int:
    """Check every entry; returns how many are deployable (not skipped placeholders).

    An entry the schema or the model refused is still checked for what can be checked on its own
    (its entrypoint), so one run reports every problem of the file.
    """
    models = dict(parsed)
    deployable = 0
    for i, raw in enumerate(raw_items):
        base: Path = ("deployments", i)
        if _is_placeholder(raw):
            _skip(ctx, base, raw)
            continue
        deployable += 1
        dep = models.get(i)
        if dep is not None:
            _deployment(ctx, i, dep, raw, top_pull=top_pull, has_pools=has_pools)
        elif isinstance(raw, dict):
            _unparsed(ctx, base, raw)
    return deployable


def _unparsed(ctx: LoadContext, base: Path, raw: dict[str, Any]) -> None:
    """What can still be checked of an entry whose shape was refused: its flow and its schedules
    (each one nothing was reported under yet), so fixing one problem never reveals another."""
    if isinstance(raw.get("entrypoint"), str):
        _flow_of(ctx, raw["entrypoint"], base)
    items: list[tuple[Path, Any]] = []
    if isinstance(raw.get("schedules"), list):
        items = [((*base, "schedules", j), item) for j, item in enumerate(raw["schedules"])]
    if isinstance(raw.get("schedule"), dict):
        items.append(((*base, "schedule"), raw["schedule"]))
    reported = [path for path, _, _ in ctx.problems]
    for path, item in items:
        if isinstance(item, dict) and item and not any(p[: len(path)] == path for p in reported):
            ctx.model(Schedule, item, path, set())


def require_declarations(ctx: LoadContext, data: Mapping[str, Any], *, deployable: int) -> None:
    """A file must declare something: an empty file is more likely a broken checkout than a wish
    to delete everything (write ``deployments: []`` to manage an empty project on purpose)."""
    sections = {key: data.get(key) for key in _SECTIONS if isinstance(data.get(key), list)}
    if deployable or any(sections.get(key) for key in _SECTIONS if key != "deployments"):
        return
    if sections.get("deployments"):
        ctx.error(
            ("deployments",),
            "nothing to deploy: every deployment entry lacks a name or an entrypoint",
            at_key=True,
        )
    elif not sections:
        ctx.error(
            (),
            "the file declares nothing: add deployments (or work_pools, blocks); "
            "write `deployments: []` to manage an empty project on purpose",
        )


def _skip(ctx: LoadContext, base: Path, raw: Any) -> None:
    name = raw.get("name") if isinstance(raw, dict) else None
    if isinstance(name, str) and name.strip():
        reason = f"deployment {name!r} has no entrypoint"
        shown = problem(name, NameKind.DEPLOYMENT)
        if shown is not None:  # never echo an unsafe name, even in a warning
            reason = "a deployment entry has no entrypoint"
    else:
        reason = "a deployment entry has no name"
    ctx.warnings.append((base, f"warning: {reason}: skipped (as `prefect deploy --all` does)"))


# -- deployments -------------------------------------------------------------------------------


def _deployment(
    ctx: LoadContext, i: int, dep: Deployment, raw: dict[str, Any], *, top_pull: Any, has_pools: bool
) -> None:
    base: Path = ("deployments", i)
    _warn_unknown_keys(ctx, raw, base)
    assert dep.entrypoint and dep.name
    info = _flow_of(ctx, dep.entrypoint, base)
    depends: list[Address] = []
    pool_body = None
    if dep.work_pool is not None and dep.work_pool.name:
        pool_body, depends = _deployment_pool(ctx, dep, base, has_pools=has_pools)
    schedules, duplicates = canonical.schedules_body(dep.all_schedules())
    for slug in duplicates:
        ctx.error((*base, "schedules"), f"two schedules have the slug {slug!r}")
    if info is None:
        return  # reported; the checks above still ran
    address = Address.deployment(info.name, dep.name)
    if not ctx.claim(address, base):
        return
    pull = _pull_steps(ctx, dep, raw, top_pull, pool_body, base)
    body = {
        "flow_name": info.name,
        "name": dep.name,
        "entrypoint": dep.entrypoint,
        "description": ctx.resolver.resolve(dep.description, (*base, "description")) or info.docstring,
        "version": ctx.text(dep.version, (*base, "version")) or _per_flow(ctx, flow_version.of, info),
        "tags": canonical.tags_body(ctx.resolver.resolve(dep.tags, (*base, "tags"))),
        "parameters": canonical.plain(ctx.resolver.resolve(dep.parameters, (*base, "parameters"))),
        "enforce_parameter_schema": dep.enforce_parameter_schema,
        # one schema object per flow, shared by its deployments: bodies are read-only values
        "parameter_openapi_schema": _per_flow(ctx, parameters.schema_of, info),
        "work_pool": pool_body,
        "schedules": ctx.resolver.resolve(schedules, (*base, "schedules")),
        "paused": bool(dep.paused),
        "concurrency_limit": canonical.concurrency_body(dep.concurrency_limit),
        "pull_steps": pull,
        "triggers": canonical.plain(dep.triggers or []),
    }
    depends.extend(variable_refs.references(ctx, body["parameters"], (*base, "parameters")))  # read at launch
    limit_field, limit_depends = _global_limit(ctx, dep, base)
    body.update(limit_field)  # only when set: bodies of deployments without one stay as they were
    depends.extend(limit_depends)
    if body["enforce_parameter_schema"] and body["parameter_openapi_schema"]:
        schema = body["parameter_openapi_schema"]
        for found in parameters.problems(schema, body["parameters"], require=False):
            key = found.parameter
            where = (*base, "parameters", key) if key is not None else (*base, "parameters")
            # A warning even when Prefect's server refuses it: Prefect's loader accepts the file
            refused = "the deployment and its runs are" if found.server_refuses else "its runs are"
            message = f"warning: deployment {dep.name!r}: {found.message} ({refused} refused)"
            ctx.warnings.append((where, message))
    ctx.resources[address] = Resource(address, body, depends_on=tuple(sorted(set(depends))))
    ctx.rules[address] = tuple(_rule(r) for r in dep.run_on)


def _pull_steps(
    ctx: LoadContext,
    dep: Deployment,
    raw: dict[str, Any],
    top_pull: Any,
    pool: dict[str, Any] | None,
    base: Path,
) -> list[Any] | None:
    """The file's pull steps, else the ones ``prefect deploy`` stores (see ``pull_steps``); a
    warning when those point at a CI runner's checkout, which Prefect's workers do not have."""
    pool_type = ctx.pool_types.get(pool["name"]) if pool else None
    steps = pull_steps.effective(
        own=canonical.steps_body(dep.pull) if "pull" in raw else None,
        has_own="pull" in raw,
        top=canonical.steps_body(top_pull),
        build=raw.get("build") if "build" in raw else ctx.top_build,
        job_variables=(pool or {}).get("job_variables") or {},
        project_dir=ctx.tree.root,
        container=pool_type is not None and pool_type.launcher != "process",
        resolved_dir=_resolved_root(ctx),
    )
    directory = pull_steps.working_directory(steps) if dep.pull is None and not top_pull else None
    shown_by = _ci_checkout(ctx, directory) if directory else None
    if directory and shown_by:
        message = pull_steps.ci_warning(str(dep.name), directory, shown_by)
        ctx.warnings.append((base, message))
    return steps


def _per_flow(
    ctx: LoadContext, compute: Callable[[SourceTree, flows.FlowInfo], T], info: flows.FlowInfo
) -> T:
    """``compute(tree, info)`` once per flow file and function per load: the flow's version and
    parameter schema depend on its file, not on the deployment, and thousands of deployments share
    a few flows (each call would otherwise confine, stat and look up the file again). The cache
    lives as long as the load, which reads one snapshot of the tree."""
    key = (compute, info.file, info.function)
    if key not in ctx.flow_facts:
        ctx.flow_facts[key] = compute(ctx.tree, info)
    return cast(T, ctx.flow_facts[key])


def _resolved_root(ctx: LoadContext) -> FsPath:
    """The project directory with symlinks followed, once per load (see ``_per_flow``)."""
    if ctx.resolved_root is None:
        ctx.resolved_root = FsPath(ctx.tree.root).resolve()
    return ctx.resolved_root


def _ci_checkout(ctx: LoadContext, directory: str) -> str | None:
    """``pull_steps.ci_checkout`` once per directory per load (the environment is the load's)."""
    if directory not in ctx.ci_checkouts:
        ctx.ci_checkouts[directory] = pull_steps.ci_checkout(directory, ctx.resolver.environ)
    return ctx.ci_checkouts[directory]


def _flow_of(ctx: LoadContext, entrypoint: str, base: Path) -> flows.FlowInfo | None:
    """The flow an entrypoint names, its name checked like any name; None (reported) otherwise."""
    info = _inspect(ctx, entrypoint)
    if isinstance(info, flows.EntrypointError):
        ctx.error((*base, "entrypoint"), str(info))
        return None
    reason = problem(info.name, NameKind.FLOW) if info.name else "flow name may not be empty"
    if reason is not None:
        ctx.error((*base, "entrypoint"), f"{reason} (set in {info.file}:{info.line})")
        return None
    if info.computed:
        ctx.warnings.append(
            (
                (*base, "entrypoint"),
                f"warning: the flow's name is computed in {info.file}:{info.line}, which is read, "
                f"never run: taken as {show(info.name)} (the function's name); give @flow a literal "
                "name so the plan names the flow as Prefect will",
            )
        )
    return info


def _inspect(ctx: LoadContext, entrypoint: str) -> flows.FlowInfo | flows.EntrypointError:
    """Each entrypoint is read once per load (thousands of deployments share a few flow files)."""
    if entrypoint not in ctx.entrypoints:
        try:
            ctx.entrypoints[entrypoint] = flows.inspect_entrypoint(ctx.tree, entrypoint)
        except flows.EntrypointError as exc:
            ctx.entrypoints[entrypoint] = exc
    return ctx.entrypoints[entrypoint]


def _deployment_pool(
    ctx: LoadContext, dep: Deployment, base: Path, *, has_pools: bool
) -> tuple[dict[str, Any], list[Address]]:
    assert dep.work_pool is not None and dep.work_pool.name
    ref = dep.work_pool
    pool_name = ref.name
    assert pool_name is not None
    jv_path = (*base, "work_pool", "job_variables")
    pool_address = Address.pool(pool_name)
    depends = [pool_address]
    pool_type = ctx.pool_types.get(pool_name)
    if pool_address not in ctx.resources:
        if pool_name in ctx.declared_pools:
            pass  # declared with an error of its own, reported at the pool
        elif has_pools:
            known = list(ctx.pool_types)
            hint = difflib.get_close_matches(pool_name, known, n=1)
            tip = f" (did you mean {hint[0]!r}?)" if hint else ""
            ctx.error((*base, "work_pool", "name"), f"unknown work pool {pool_name!r}{tip}")
        else:
            ctx.references.append(Reference(pool_address, (*base, "work_pool", "name")))
    variables = dict(ref.job_variables)
    as_typed = None
    if pool_type is not None:
        pool_variables = ctx.resources[pool_address].body["job_variables"]
        as_typed = canonical.coerce(canonical.plain(variables), pool_type.variables)
        for finding in pool_type.validate_job_variables(as_typed, beneath=pool_variables):
            message = f"deployment {dep.name!r}: {finding.message}"
            if finding.warning:
                ctx.warnings.append(((*jv_path, *finding.path), f"warning: {message}"))
                continue
            ctx.error((*jv_path, *finding.path), message, at_key=finding.at_key)
        for name in pool_type.secret_variables & set(variables):
            variables[name] = ctx.resolver.resolve_secret_field(variables[name], (*jv_path, name), what=name)
            as_typed = None  # a Secret replaced the value: the typed copy is not the body
    depends.extend(check_pools.references(ctx, variables, jv_path, has_blocks=False))
    if as_typed is not None and not ctx.resolver.active:
        resolved = as_typed  # nothing to resolve: the same walk would build the same copy again
    else:
        resolved = canonical.plain(ctx.resolver.resolve(variables, jv_path))
        if pool_type is not None:
            resolved = canonical.coerce(resolved, pool_type.variables)
    if pool_type is not None:
        check_pools.local_directory(ctx, pool_type, resolved, jv_path)
    queue_path = (*base, "work_pool", "work_queue_name")
    queue = ctx.text(ref.work_queue_name, queue_path)
    if queue is not None and queue != ref.work_queue_name and problem(queue, NameKind.WORK_QUEUE):
        # the value comes from the environment: say what is wrong, never what it is
        ctx.error(queue_path, "the work queue name this placeholder gives breaks the rules of names")
    depends.extend(_queue_reference(ctx, pool_name, queue or "default", queue_path))
    body = {
        "name": pool_name,
        "work_queue_name": queue or "default",
        "job_variables": resolved,
    }
    return body, depends


def _queue_reference(ctx: LoadContext, pool: str, queue: Any, path: Path) -> list[Address]:
    """The queue a deployment names, when the file declares that pool's queues: it must be one of
    them (or the pool's implicit ``default``). Without declared queues, Prefect creates the named
    queue on first use, and so does this tool (a file that never mentions queues stays valid)."""
    declared = ctx.declared_queues.get(pool)
    if not declared or not isinstance(queue, str):
        return []
    if queue in declared:
        return [Address.work_queue(pool, queue)]
    if queue != "default":
        hint = difflib.get_close_matches(queue, sorted(declared), n=1)
        tip = f" (did you mean {hint[0]!r}?)" if hint else ""
        ctx.error(path, f"unknown work queue {queue!r} of pool {pool!r}: not in work_queues:{tip}")
    return []


def _global_limit(ctx: LoadContext, dep: Deployment, base: Path) -> tuple[dict[str, Any], list[Address]]:
    """``global_concurrency_limit: NAME``: a limit of ``concurrency_limits:``, or one the store has."""
    if dep.global_concurrency_limit is None:
        return {}, []
    address = Address.concurrency_limit(dep.global_concurrency_limit)
    if address not in ctx.resources:
        ctx.references.append(Reference(address, (*base, "global_concurrency_limit")))
    return {"global_concurrency_limit": dep.global_concurrency_limit}, [address]


def _rule(rule: Any) -> RunRule:
    if rule.push is not None:
        return RunRule(RuleKind.PUSH, tuple(rule.push.branches or ()), tuple(rule.push.paths or ()))
    if rule.watch is not None:
        return RunRule(RuleKind.WATCH, (), tuple(rule.watch.paths))
    return RunRule(RuleKind.APPLY)


def _warn_unknown_keys(ctx: LoadContext, raw: dict[str, Any], base: Path) -> None:
    if raw.keys() <= _DEPLOYMENT_KEYS:
        return  # the usual entry: one set comparison in C
    for key in raw:
        if key not in _DEPLOYMENT_KEYS:
            hint = difflib.get_close_matches(key, sorted(_DEPLOYMENT_KEYS), n=1)
            tip = f" (did you mean {hint[0]!r}?)" if hint else ""
            ctx.warnings.append(
                ((*base, key), f"warning: unknown deployment key {show(str(key))} is ignored{tip}")
            )


def _is_placeholder(raw: Any) -> bool:
    """An entry ``prefect deploy --all`` skips or cannot deploy: no name, or no entrypoint."""
    if not isinstance(raw, dict):
        return False
    return not _filled(raw.get("name")) or not _filled(raw.get("entrypoint"))


def _filled(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())
