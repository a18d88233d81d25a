"""``import``: write the file's missing sections for objects that exist in the state but not in the file.

The live objects the file does not declare (``state.read_all()`` minus the file's addresses: on the
SQL store the plan's orphans; on a Prefect server, what the workspace holds beyond the file) become
items of every section (blocks, variables, concurrency limits, work pools and queues, deployments,
automations) that load back into the same bodies, so after ``import --write`` a ``reconcile plan``
shows them unchanged. Secrets become env placeholders; the names of suggested ones are listed so
they can be set. Without ``--write`` the sections are printed.

What is left out says why on stderr: an object of a type this tool does not manage, one that needs
something not imported (a queue's pool, an automation's deployment), an automation acting on an id
that names nothing on the server. A Variable whose name looks secret is written only when its address
is given: its value would be plain text in Git's history.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import click

from reconciler import desired as desired_state
from reconciler import pooltypes
from reconciler.cli.app import App, pass_app
from reconciler.desired import export, templating, yamlfile
from reconciler.errors import ReconcileError, SpecError, UsageError
from reconciler.infra.install import install_hint
from reconciler.objects import ENV_PLACEHOLDER, Address, Kind, LiveState, Resource


@click.command("import")
@click.argument("addresses", nargs=-1, metavar="[ADDRESS]...")
@click.option("--write", is_flag=True, help="Add the items to the file in place (comments and layout kept).")
@pass_app
def import_cmd(app: App, addresses: tuple[str, ...], write: bool) -> int:
    """Write sections for objects in the state that the file does not declare.

    ADDRESS (e.g. deployment.etl/daily, work_pool.ecs) limits the import to those objects and what
    they need. Without --write the sections are printed; secrets are never written, only placeholders.
    """
    path = app.project_dir / app.file
    text = _read(path) if path.exists() else None
    declared, inherited_pull = _declared(app, text)
    live = app.live()
    candidates, skipped, held = _candidates(app, live, declared)
    chosen = _choose(candidates, skipped, held, declared, addresses, app, where=live.url)
    if not chosen:
        app.err(f"Nothing to import: every object in {app.store().url} is declared in {app.file}.")
        return 0
    pools = [o.resource for o in live.objects.values()] + list(candidates.values())
    pool_types = {r.address.name: str(r.body.get("type")) for r in pools if r.kind is Kind.WORK_POOL}
    result = export.export(chosen, inherited_pull=inherited_pull, pool_types=pool_types)
    warnings = [*result.warnings, *export.check(chosen, app.tree)]
    try:
        from reconciler.desired import yamledit
    except ModuleNotFoundError as exc:
        raise UsageError(f"import needs {exc.name}: {install_hint('import')}") from None
    if not write:
        app.out(yamledit.dump_sections(result.sections, style=yamledit.guess_style(text or "")).rstrip("\n"))
    else:
        original = text if text is not None else f"name: {app.project()}\n"
        edited = yamledit.append(original, result.sections, file=app.file)
        warnings += _load_problems(app, edited)
        _write(path, edited)
        app.err(f"Wrote {_counts(dict(result.sections))} to {path}.")
    for warning in warnings:
        app.err(f"warning: {warning}")
    if result.placeholders:
        names = ", ".join(result.placeholders)
        app.err(
            f"Secrets are written as placeholders; set these environment variables before planning: {names}"
        )
    return 0


_NOUNS = {section: kind.label for kind, section in export.SECTIONS.items()}


def _counts(sections: dict[str, list[dict[str, Any]]]) -> str:
    parts = [f"{len(items)} {_NOUNS[key]}{'' if len(items) == 1 else 's'}" for key, items in sections.items()]
    return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def _declared(app: App, text: str | None) -> tuple[set[Address], Any]:
    """The addresses the file declares, and its top-level ``pull`` (what deployments inherit)."""
    if text is None:
        return set(), None
    desired = desired_state.load(  # a file that declares nothing yet is where import starts
        app.tree,
        app.file,
        environ=app.environ,
        fingerprint_key=secrets.token_bytes(32),
        project=app.project_override,
        allow_empty=True,
    )
    data = yamlfile.parse(text, file=app.file) or {}
    return set(desired.resources), data.get("pull") if isinstance(data, dict) else None


@runtime_checkable
class UnmanagedObjects(Protocol):
    """A store that can also show what its server holds beyond the project's inventory (a Prefect
    server's workspace): those objects are imported too, so a team adopts a workspace in one step."""

    def read_unmanaged(self) -> Mapping[Address, Mapping[str, Any]]: ...


def _candidates(
    app: App, live: LiveState, declared: set[Address]
) -> tuple[dict[Address, Resource], dict[Address, str], dict[Address, str]]:
    """Undeclared objects (the store's own, and a server's unmanaged ones); those that cannot be
    written to the file, with the reason; and those written only when named (with the reason)."""
    found = {r.address: r for r in export.undeclared(live, declared)}
    store = app.store()
    if isinstance(store, UnmanagedObjects):
        for address, body in store.read_unmanaged().items():
            if address not in declared and address not in found:
                found[address] = Resource(address, body)
    skipped: dict[Address, str] = {}
    for resource in sorted(found.values(), key=lambda r: (r.kind.rank, r.address.name)):
        # judged in apply order: a queue after its pool, an automation after what it names
        problem = _unimportable(resource, declared | set(live.objects) | set(found))
        if problem:
            skipped[resource.address] = problem
            del found[resource.address]
    held = {a: why for a, r in found.items() if (why := _only_when_named(r)) is not None}
    ordered = dict(sorted(found.items(), key=lambda item: (item[0].kind.rank, item[0].name)))
    return ordered, skipped, held


def _unimportable(resource: Resource, available: set[Address]) -> str | None:
    """Why an object cannot be written to the file: a type this tool does not know, an id of an
    object the server does not have, or something it needs (its pool, queue, global limit, what an
    automation acts on) that is neither declared, stored nor imported itself."""
    kind_type = str(resource.body.get("type"))
    if resource.kind is Kind.WORK_POOL and pooltypes.get(kind_type) is None:
        return f"its type {kind_type!r} is not one this tool manages"
    if resource.kind is Kind.BLOCK and pooltypes.block_type(kind_type) is None:
        return f"its block type {kind_type!r} is not one this tool manages"
    if resource.kind in (Kind.VARIABLE, Kind.AUTOMATION):
        found = ENV_PLACEHOLDER.search(json.dumps(resource.body, default=str))
        if found:  # plain text on the server, a placeholder (refused here) in the file
            return (
                f"it holds the text {{{{ ${found.group(1)} }}}}, which the file would read as a placeholder"
            )
    if resource.kind is Kind.AUTOMATION:
        ids = export.raw_ids(resource.body)
        if ids:
            return f"it acts on {', '.join(ids)}, which names no object on the server"
    for needed in export.dependencies(resource):
        if resource.kind is not Kind.AUTOMATION and needed.kind in (Kind.BLOCK, Kind.WORK_QUEUE):
            continue  # a template's block, a deployment's queue: the file may leave them undeclared
        if needed not in available:
            return f"it needs {needed}, which is not imported"
    return None


def _only_when_named(resource: Resource) -> str | None:
    """Why an importable object is written only when its address is given: a Variable whose name
    looks secret. Its value is plain text on the server (anyone with API access reads it), but in
    prefect.yaml it would be in Git's history for good; a secret belongs in a Secret block."""
    if resource.kind is Kind.VARIABLE and templating.is_sensitive_env(resource.address.name):
        return (
            "its name looks secret and its value would be written to the file as plain text (keep "
            f"secrets in a secret block); `reconcile import {resource.address}` writes it anyway"
        )
    return None


def _choose(
    missing: dict[Address, Resource],
    skipped: dict[Address, str],
    held: dict[Address, str],
    declared: set[Address],
    addresses: tuple[str, ...],
    app: App,
    *,
    where: str,
) -> list[Resource]:
    """The undeclared objects (all but the held ones, or those named plus what they need that the
    file lacks)."""
    if not addresses:
        chosen = [r for a, r in missing.items() if a not in held]
        needed = {d: r.address for r in chosen for d in export.dependencies(r) if d in held}
        for address, why in {**skipped, **held}.items():
            if address not in needed:
                app.err(f"warning: not importing {address}: {why}")
        for address, reader in needed.items():  # what a written object reads must be there too
            app.err(
                f"warning: {address}: {reader} reads it, so its value is written to {app.file} as plain text"
            )
            chosen.append(missing[address])
        return sorted(chosen, key=lambda r: (r.kind.rank, r.address.name))
    wanted: dict[Address, Resource] = {}
    queue = [_address(text) for text in addresses]
    for address in queue:
        if address in wanted:
            continue
        if address in declared:
            app.err(f"{address} is already declared in {app.file}")
            continue
        if address in skipped:
            raise UsageError(f"cannot import {address}: {skipped[address]}")
        if address not in missing:
            raise UsageError(f"no {address} in {where}")
        if address in held:
            app.err(f"warning: {address}: its value is written to {app.file} as plain text")
        wanted[address] = missing[address]
        for needed in export.dependencies(missing[address]):
            if needed in missing and needed not in wanted:
                app.err(f"also importing {needed}: {address} needs it")
                queue.append(needed)
    return sorted(wanted.values(), key=lambda r: (r.kind.rank, r.address.name))


def _address(text: str) -> Address:
    try:
        return Address.parse(text)
    except ValueError:
        raise UsageError(
            f"not an address: {text!r} (use block.TYPE/NAME, work_pool.NAME, work_queue.POOL/NAME, "
            "deployment.FLOW/NAME, variable.NAME, concurrency_limit.NAME or automation.NAME)"
        ) from None


def _load_problems(app: App, text: str) -> list[str]:
    """Whether the edited file loads (placeholders filled with stand-ins, so only its shape counts)."""
    environ = dict(app.environ)
    for name in ENV_PLACEHOLDER.findall(text):
        environ.setdefault(name, "stand-in")
    tree = _Overlay(app.tree, app.file, text)
    try:
        desired_state.load(
            tree,
            app.file,
            environ=environ,
            fingerprint_key=secrets.token_bytes(32),
            project=app.project_override,
            allow_empty=True,
        )
    except SpecError as exc:
        return [f"the file does not load yet: {d}" for d in exc.diagnostics]
    except ReconcileError as exc:
        return [f"the file does not load yet: {exc}"]
    return []


class _Overlay:
    """The project's tree with the desired-state file replaced by the edited text."""

    def __init__(self, tree: desired_state.SourceTree, file: str, text: str) -> None:
        self._tree, self._file, self._text = tree, file, text
        self.root, self.git = tree.root, tree.git

    def read_text(self, relpath: str) -> str:
        return self._text if relpath == self._file else self._tree.read_text(relpath)

    def is_file(self, relpath: str) -> bool:
        return relpath == self._file or self._tree.is_file(relpath)

    def cache_key(self, relpath: str) -> tuple[object, ...] | str:
        return ("import-overlay", id(self)) if relpath == self._file else self._tree.cache_key(relpath)


def _write(path: Path, text: str) -> None:
    """Replace the file atomically, keeping its permissions."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


COMMANDS = [import_cmd]
