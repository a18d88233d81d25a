"""Checks and canonical bodies for the ``blocks:`` and ``work_pools:`` sections (part of the loader).

A mixin of the loader's ``_Loader``: it reads the loader's state (``resources``, ``resolver``,
``pool_types``, ``references``) and reports through ``error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path as FsPath
from typing import TYPE_CHECKING, Any

from reconciler import pooltypes
from reconciler.desired import canonical, templating
from reconciler.desired.desired import Reference
from reconciler.desired.models import Block, WorkPool
from reconciler.desired.source import OutsideProject, SourceTree, confine
from reconciler.desired.yamlfile import Path
from reconciler.objects import Address, Resource


class PoolAndBlockChecks:
    """Blocks and work pools: types, names, credentials references, secrets, templates."""

    tree: SourceTree
    resources: dict[Address, Resource]
    resolver: templating.EnvResolver
    pool_types: dict[str, pooltypes.PoolType]
    references: list[Reference]

    if TYPE_CHECKING:  # provided by the loader (and the other mixin); no stubs at run time

        def error(self, path: Path, message: str, *, at_key: bool = False) -> None: ...
        def _claim(self, address: Address, path: Path) -> bool: ...

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
            if problem.warning:
                message = f"warning: work pool {pool.name!r}: {problem.message}"
                self.warnings.append(((*jv_path, *problem.path), message))
                continue
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
        self._local_directory(pool_type, variables, jv_path)
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

    def _local_directory(
        self, pool_type: pooltypes.PoolType, variables: Mapping[str, Any], path: Path
    ) -> None:
        """A local pool runs its jobs in ``working_dir``, relative to the project: it must stay inside
        the project's tree like every file the file names (a placeholder is checked when launched)."""
        value = variables.get("working_dir")
        if pool_type.launcher != "process" or not isinstance(value, str) or not value or "{{" in value:
            return
        try:
            confine(FsPath(self.tree.root), value)
        except OutsideProject as exc:
            self.error((*path, "working_dir"), f"working_dir {exc}")

    def _check_template(self, template: dict[str, Any], path: Path) -> bool:
        """What Prefect's server checks (else 422): every placeholder in job_configuration is a variable."""
        declared = set((template.get("variables") or {}).get("properties", {}))
        undeclared = sorted(_simple_placeholders(template.get("job_configuration")) - declared)
        for name in undeclared:
            self.error(
                (*path, "job_configuration"), f"placeholder {{{{ {name} }}}} is not declared in variables"
            )
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
