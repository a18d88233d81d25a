"""The plan: the single contract between deciding (diff) and acting (apply), and what every renderer reads.

Like Terraform's ``plans`` package: a closed set of actions, field-level before/after, the stored
version each change was planned against, and nothing that steers apply except the action and the
desired body (``reason`` is for people).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reconciler.desired.desired import SourceInfo
from reconciler.desired.source import GitInfo
from reconciler.objects import Address, Resource

# Where a plan's desired state came from: the loader's own records, carried as they are.
PlanSource = SourceInfo
GitSource = GitInfo


class Action(StrEnum):
    """What apply will do to one object. The values are the plan JSON's words."""

    CREATE = "create"
    ADOPT = "adopt"  # exists, managed by no project: taken over (only with --adopt), unset fields kept
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    NOOP = "no-op"
    ORPHANED = "orphaned"  # gone from the file, kept because --prune was not given

    @property
    def writes(self) -> bool:
        """Whether apply touches the store for this action."""
        return self not in (Action.NOOP, Action.ORPHANED)

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]


_SYMBOLS = {
    Action.CREATE: "+",
    Action.ADOPT: "<=",
    Action.UPDATE: "~",
    Action.REPLACE: "-/+",
    Action.DELETE: "-",
    Action.NOOP: " ",
    Action.ORPHANED: "!",
}
SUMMARY_KEYS = ("create", "update", "replace", "delete", "no-op", "orphaned")
OPTIONAL_SUMMARY_KEYS = ("adopt",)  # in a plan's summary only when non-zero: older plans stay as they were


@dataclass(frozen=True)
class FieldChange:
    """One changed leaf. A sensitive change carries no values at all, only that it changed and
    whether the field appears, disappears or changes (``change``)."""

    path: str
    before: Any = None
    after: Any = None
    sensitive: bool = False
    change: str = "update"  # "create" (the field appears), "delete" (it goes) or "update"

    @property
    def symbol(self) -> str:
        """``+``, ``-`` or ``~``: how the renderers mark this field."""
        if self.change == "create" or (not self.sensitive and self.before is None):
            return "+"
        if self.change == "delete" or (not self.sensitive and self.after is None):
            return "-"
        return "~"


@dataclass(frozen=True)
class Drift:
    """The live object was changed outside this tool (shown in plans; apply restores it)."""

    updated: str
    by: str = ""


@dataclass(frozen=True)
class Change:
    """One object's planned action.

    ``version`` is the stored version the change was planned against (None for a create or an adopt):
    apply refuses to write if the object moved since. ``after`` is the body to write (None for
    deletes); for an adopt it is the file's body, and ``fields`` go from what exists to what the
    server will hold (the file's fields over the existing object, unset ones kept).
    """

    address: Address
    action: Action
    version: int | None
    fields: tuple[FieldChange, ...] = ()
    after: Resource | None = None
    reason: str = ""
    drift: Drift | None = None


@dataclass(frozen=True)
class RunRequest:
    """A run that applying this plan will launch, and why."""

    deployment: str  # "flow/name"
    reason: str


@dataclass(frozen=True)
class PreflightResult:
    """One read-only cloud check of a push pool (``plan --preflight``): what would fail its first run.

    ``field`` names the pool's job variable the check is about (``image``, ``cluster``...);
    ``deployment`` is set when only that deployment's variables fail; ``skipped`` when the cloud
    offers no way to ask (the message says why).
    """

    pool: str
    field: str
    check: str
    ok: bool
    message: str = ""
    deployment: str | None = None
    skipped: bool = False


@dataclass(frozen=True)
class StateRef:
    url: str
    serial: int
    last_commit: str | None = None
    lineage: str | None = None  # the store's identity: a saved plan applies only to the store it was made on


@dataclass(frozen=True)
class Plan:
    """Everything an apply needs and every renderer shows. ``changes`` excludes no-ops (counted apart)."""

    project: str
    source: PlanSource
    state: StateRef
    changes: tuple[Change, ...]
    unchanged: int = 0
    prune: bool = False
    runs: tuple[RunRequest, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)
    preflight: tuple[PreflightResult, ...] | None = None  # None: not asked for (plan --preflight)

    @property
    def summary(self) -> dict[str, int]:
        counts = Counter(c.action.value for c in self.changes)
        counts[Action.NOOP.value] += self.unchanged
        summary = {key: counts.get(key, 0) for key in SUMMARY_KEYS}
        summary.update({key: counts[key] for key in OPTIONAL_SUMMARY_KEYS if counts.get(key)})
        return summary

    @property
    def has_changes(self) -> bool:
        """Whether applying would write anything (orphans alone do not count)."""
        return any(c.action.writes for c in self.changes)

    @property
    def writes(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action.writes)

    @property
    def adopts(self) -> tuple[Change, ...]:
        """Existing objects no project manages that applying would take over (needs consent)."""
        return tuple(c for c in self.changes if c.action is Action.ADOPT)


def apply_order(change: Change) -> tuple[int, int, str]:
    """Creates and updates go in kind rank order (blocks -> pools -> queues -> deployments ->
    automations); deletes go last, dependents first."""
    rank = change.address.kind.rank
    if change.action is Action.DELETE:
        return (1, -rank, str(change.address))
    return (0, rank, str(change.address))
