"""Loads the ``automations:`` of a file text the way ``desired.load`` does (placeholders first, then
each item's check, then the resolver's findings), returning resources and located messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.desired import automations
from reconciler.desired.context import LoadContext
from reconciler.desired.desired import Reference
from reconciler.desired.source import WorkingTree
from reconciler.desired.yamlfile import parse
from reconciler.objects import Address, Resource

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "automations" / "prefect.yaml"


@dataclass
class Loaded:
    resources: dict[Address, Resource]
    references: list[Reference]
    errors: list[str]
    warnings: list[str]


def load_automations(
    text: str,
    *,
    environ: Mapping[str, str] | None = None,
    public: Iterable[str] = (),
    strict: bool = True,
    declared: Iterable[Resource] = (),
) -> Loaded:
    """``declared`` are resources the file's other sections would have added before this one."""
    ctx = LoadContext(
        tree=WorkingTree(Path(".")), file="prefect.yaml", content=text, environ=environ or {}, key=b"k" * 32
    )
    ctx.resolver.public = frozenset(public)
    ctx.resolver.strict = strict
    for resource in declared:
        ctx.resources[resource.address] = resource
    data: Any = ctx.resolver.substitute(parse(text, file="prefect.yaml"))
    for index, raw in enumerate(data.get("automations") or []):
        automations.check(ctx, index, raw)
    for problem in ctx.resolver.problems:
        ctx.error(problem.path, problem.message)
    errors = [str(ctx.marks.diagnostic(p, ctx.resolver.redact(msg, p), key=k)) for p, msg, k in ctx.problems]
    warnings = [str(ctx.marks.diagnostic(w.path, w.message)) for w in ctx.resolver.warnings]
    return Loaded(dict(ctx.resources), list(ctx.references), errors, warnings)


def examples() -> Loaded:
    loaded = load_automations(EXAMPLES.read_text())
    assert loaded.errors == []
    return loaded
