"""The state of one load of ``prefect.yaml``, shared by the loader and its per-section checks.

``load`` creates one ``LoadContext`` per call and passes it to the plain functions of
``check_pools`` and ``check_deployments``: everything a check reads or adds (problems, warnings,
resources, rules, references, pool types) and the per-load caches are fields here, so each check
names what it touches and a cache can never outlive the load (it reads one snapshot of the tree).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import InitVar, dataclass, field
from pathlib import Path as FsPath
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from reconciler import pooltypes
from reconciler.desired import flows, templating
from reconciler.desired.desired import Reference, RunRule
from reconciler.desired.marks import Marks
from reconciler.desired.source import SourceTree
from reconciler.desired.yamlfile import Path, format_path
from reconciler.objects import SECRET_KEY, Address, Resource

M = TypeVar("M", bound=BaseModel)


@dataclass(eq=False, kw_only=True, slots=True)
class LoadContext:
    """One load: what it reads (``tree``, ``file``, ``marks``, ``resolver``), what it collects, and
    the caches that spare thousands of deployments re-reading the few flow files they share."""

    tree: SourceTree
    file: str
    content: InitVar[str]
    environ: InitVar[Mapping[str, str]]
    key: InitVar[bytes | Callable[[str], bytes]]
    marks: Marks = field(init=False)
    resolver: templating.EnvResolver = field(init=False)
    templated: bool = field(init=False)  # whether the text holds any "{{": else no value can reference
    project: str = ""
    allow_empty: bool = False
    top_build: Any = None  # the file's top-level build:, on which prefect deploy's default pull step depends
    # collected
    problems: list[tuple[Path, str, bool]] = field(default_factory=list)
    warnings: list[tuple[Path, str]] = field(default_factory=list)
    resources: dict[Address, Resource] = field(default_factory=dict)
    rules: dict[Address, tuple[RunRule, ...]] = field(default_factory=dict)
    references: list[Reference] = field(default_factory=list)
    pool_types: dict[str, pooltypes.PoolType] = field(default_factory=dict)
    # pools the file declares, valid or not: a pool with its own error is not also "unknown"
    declared_pools: set[str] = field(default_factory=set)
    # work queues the file declares, by pool: a deployment on such a pool names one of them
    declared_queues: dict[str, set[str]] = field(default_factory=dict)
    queue_priorities: dict[str, dict[int, str]] = field(default_factory=dict)  # pool -> priority -> queue
    # per-load caches (see check_deployments)
    entrypoints: dict[str, flows.FlowInfo | flows.EntrypointError] = field(default_factory=dict)
    flow_facts: dict[tuple[object, str, str], object] = field(default_factory=dict)
    ci_checkouts: dict[str, str | None] = field(default_factory=dict)
    resolved_root: FsPath | None = None

    def __post_init__(
        self, content: str, environ: Mapping[str, str], key: bytes | Callable[[str], bytes]
    ) -> None:
        self.marks = Marks(content, self.file)
        self.resolver = templating.EnvResolver(
            environ, lambda: key if isinstance(key, bytes) else key(self.project)
        )
        # Most large files hold no placeholder at all: then no value needs walking. A value holds
        # "{{" only if the text does, or writes it with a backslash escape ("\x7b{", or a
        # double-quoted line continuation): those files are walked like any other.
        self.templated = "{{" in content or "\\" in content
        self.resolver.active = self.templated or SECRET_KEY in content

    def error(self, path: Path, message: str, *, at_key: bool = False) -> None:
        self.problems.append((path, message, at_key))

    def claim(self, address: Address, path: Path) -> bool:
        """True if ``address`` is not taken yet (the caller then adds it); else a duplicate error."""
        if address in self.resources:
            self.error((*path, "name"), f"duplicate {address.kind.value.replace('_', ' ')} {address.name!r}")
            return False
        return True

    def text(self, value: Any, path: Path) -> Any:
        """A text field: the string, or a Secret when it came from a non-public placeholder."""
        if value is None:
            return None
        return self.resolver.resolve(str(value), path)

    def model(self, model: type[M], raw: Any, path: Path, bad: set[Path]) -> M | None:
        """``raw`` validated as ``model``; None, with every problem reported, when it is not valid
        (or when ``path`` is in ``bad``: the schema already reported it)."""
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
