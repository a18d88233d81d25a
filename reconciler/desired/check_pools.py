"""Checks and canonical bodies for the ``blocks:`` and ``work_pools:`` sections (part of the loader).

Functions over the load's ``LoadContext``: they read its ``resources``, ``resolver`` and ``tree``,
add the resources, ``pool_types`` and ``references`` they find, and report through ``ctx.error``.
``block`` and ``pool`` check one entry each; ``references`` and ``local_directory`` are shared with
``check_deployments`` (a deployment's job variables follow the same rules as its pool's).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path as FsPath
from typing import Any

from reconciler import pooltypes
from reconciler.desired import canonical, templating
from reconciler.desired import variables as variable_refs
from reconciler.desired.context import LoadContext
from reconciler.desired.desired import Reference
from reconciler.desired.models import Block, WorkPool
from reconciler.desired.source import OutsideProject, confine
from reconciler.desired.yamlfile import Path
from reconciler.objects import Address, Resource

# -- blocks ------------------------------------------------------------------------------------


def block(ctx: LoadContext, i: int, block: Block) -> None:
    base: Path = ("blocks", i)
    block_type = pooltypes.block_type(block.type)
    if block_type is None:
        known = ", ".join(pooltypes.block_type_names())
        ctx.error((*base, "type"), f"unknown block type {block.type!r} (known: {known})")
        return
    address = Address.block(block.type, block.name)
    if not ctx.claim(address, base):
        return
    data: dict[str, Any] = {}
    checkable: dict[str, Any] = {}
    for field, value in block.data.items():
        path = (*base, "data", field)
        if field in block_type.secret_fields:
            data[field] = ctx.resolver.resolve_secret_field(value, path, what=f"{address} field {field}")
            checkable[field] = "{{ secret }}"
        else:
            data[field] = ctx.resolver.resolve(value, path)
            checkable[field] = value
    for problem in block_type.validate(checkable):
        ctx.error((*base, "data", *problem.path), f"{address}: {problem.message}", at_key=problem.at_key)
    body = {"type": block.type, "name": block.name, "data": canonical.coerce(data, block_type.fields)}
    ctx.resources[address] = Resource(address, body)


# -- work pools --------------------------------------------------------------------------------


def pool(ctx: LoadContext, i: int, pool: WorkPool, *, has_blocks: bool) -> None:
    base: Path = ("work_pools", i)
    pool_type = pooltypes.get(pool.type)
    if pool_type is None:
        ctx.error(
            (*base, "type"),
            f"unknown work pool type {pool.type!r} (known: {', '.join(pooltypes.names())})",
        )
        return
    address = Address.pool(pool.name)
    if not ctx.claim(address, base):
        return
    template = None
    if pool.base_job_template:
        template = canonical.plain(ctx.resolver.resolve(pool.base_job_template, (*base, "base_job_template")))
        if _check_template(ctx, template, (*base, "base_job_template")):
            pool_type = pool_type.with_template(template)  # variables are the template's own
    elif pool.base_job_template is not None:
        template = {}
    ctx.pool_types[pool.name] = pool_type
    jv_path = (*base, "job_variables")
    as_typed = canonical.coerce(canonical.plain(pool.job_variables), pool_type.variables)  # "512" is 512
    for problem in pool_type.validate_job_variables(as_typed):
        if problem.warning:
            message = f"warning: work pool {pool.name!r}: {problem.message}"
            ctx.warnings.append(((*jv_path, *problem.path), message))
            continue
        ctx.error(
            (*jv_path, *problem.path),
            f"work pool {pool.name!r}: {problem.message}",
            at_key=problem.at_key,
        )
    depends = _block_variables(ctx, pool_type, pool.job_variables, jv_path, has_blocks=has_blocks)
    variables: dict[str, Any] = {}
    for name, value in pool.job_variables.items():
        if name in pool_type.secret_variables:
            variables[name] = ctx.resolver.resolve_secret_field(
                value, (*jv_path, name), what=f"variable {name}"
            )
        else:
            variables[name] = ctx.resolver.resolve(value, (*jv_path, name))
    variables = canonical.coerce(canonical.plain(variables), pool_type.variables)
    local_directory(ctx, pool_type, variables, jv_path)
    body = {
        "type": pool.type,
        "description": pool.description,
        "concurrency_limit": pool.concurrency_limit,
        "paused": pool.paused,
        "job_variables": variables,
        "base_job_template": template,
    }
    ctx.resources[address] = Resource(address, body, depends_on=tuple(sorted(set(depends))))


def _block_variables(
    ctx: LoadContext,
    pool_type: pooltypes.PoolType,
    variables: Mapping[str, Any],
    path: Path,
    *,
    has_blocks: bool,
) -> list[Address]:
    """Credentials variables must be block references of the right type; returns their addresses."""
    depends: list[Address] = []
    for name, value in variables.items():
        wanted = pool_type.block_variables.get(name)
        if wanted is None or value is None:
            depends.extend(references(ctx, value, (*path, name), has_blocks=has_blocks))
            continue
        refs = templating.block_references(value)
        if not isinstance(value, str) or len(refs) != 1:
            ctx.error(
                (*path, name),
                f"variable {name} takes a block reference such as "
                f'"{{{{ prefect.blocks.{wanted}.NAME }}}}", not an inline value',
            )
            continue
        if refs[0][0] != wanted:
            ctx.error((*path, name), f"variable {name} needs a {wanted} block, not {refs[0][0]}")
            continue
        depends.extend(references(ctx, value, (*path, name), has_blocks=has_blocks))
    return depends


def references(ctx: LoadContext, value: Any, path: Path, *, has_blocks: bool) -> list[Address]:
    if not ctx.templated:
        return []  # both kinds of reference are placeholders
    addresses = variable_refs.references(ctx, value, path)  # {{ prefect.variables.NAME }}, read at launch
    for block_type, name in templating.block_references(value):
        address = Address.block(block_type, name)
        addresses.append(address)
        if address in ctx.resources:
            continue
        if has_blocks:
            ctx.error(path, f"unknown block {block_type}/{name}: declare it under blocks:")
        else:
            ctx.references.append(Reference(address, path))
    return addresses


def local_directory(
    ctx: LoadContext, pool_type: pooltypes.PoolType, variables: Mapping[str, Any], path: Path
) -> None:
    """A local pool runs its jobs in ``working_dir``, relative to the project: it must stay inside
    the project's tree like every file the file names (a placeholder is checked when launched)."""
    value = variables.get("working_dir")
    if pool_type.launcher != "process" or not isinstance(value, str) or not value or "{{" in value:
        return
    try:
        confine(FsPath(ctx.tree.root), value)
    except OutsideProject as exc:
        ctx.error((*path, "working_dir"), f"working_dir {exc}")


def _check_template(ctx: LoadContext, template: dict[str, Any], path: Path) -> bool:
    """What Prefect's server checks (else 422): every placeholder in job_configuration is a variable."""
    declared = set((template.get("variables") or {}).get("properties", {}))
    undeclared = sorted(_simple_placeholders(template.get("job_configuration")) - declared)
    for name in undeclared:
        ctx.error((*path, "job_configuration"), f"placeholder {{{{ {name} }}}} is not declared in variables")
    return not undeclared


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
