"""The desired state as the loader returns it: canonical resources plus what plans and triggers need."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from reconciler.desired.marks import Marks
from reconciler.desired.source import GitInfo
from reconciler.desired.yamlfile import Path
from reconciler.errors import Diagnostic
from reconciler.objects import Address, Kind, Resource


class RuleKind(StrEnum):
    PUSH = "push"
    WATCH = "watch"
    APPLY = "apply"


@dataclass(frozen=True)
class RunRule:
    """One ``run_on`` rule of a deployment: which event launches a run of it."""

    kind: RuleKind
    branches: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind is RuleKind.APPLY:
            return "apply: changed"
        parts = []
        if self.branches:
            parts.append(f"branches {', '.join(self.branches)}")
        if self.paths:
            parts.append(f"paths {', '.join(self.paths)}")
        return f"{self.kind.value}: {'; '.join(parts) or 'any'}"


@dataclass(frozen=True)
class SourceInfo:
    """Where a desired state came from (recorded in plans and history)."""

    project_dir: str
    file: str
    git: GitInfo | None = None


@dataclass(frozen=True)
class Reference:
    """A pool or block named by an object but not declared in the file: checked against the store."""

    target: Address
    path: Path


@dataclass(frozen=True)
class Desired:
    """Everything the file asks for, in canonical form."""

    project: str
    source: SourceInfo
    resources: Mapping[Address, Resource]
    run_rules: Mapping[Address, tuple[RunRule, ...]] = field(default_factory=dict)
    external_references: tuple[Reference, ...] = ()
    warnings: tuple[str, ...] = ()
    marks: Marks | None = None

    def of_kind(self, kind: Kind) -> list[Resource]:
        return [r for r in self.resources.values() if r.kind is kind]

    def unresolved_references(self, known: set[Address]) -> list[Diagnostic]:
        """Diagnostics for references to objects neither declared here nor present in ``known``."""
        problems = []
        for ref in self.external_references:
            if ref.target in known or ref.target in self.resources:
                continue
            message = (
                f"unknown {ref.target.kind.label} {ref.target.name!r}: not declared in the file "
                "and not in the stored state"
            )
            if self.marks is not None:
                problems.append(self.marks.diagnostic(ref.path, message))
            else:
                problems.append(Diagnostic(self.source.file, 1, 1, message))
        return problems
