"""The diff engine: desired + live -> Plan. Pure: no I/O, no clock, no environment, no logging.

Objects are paired by address (never by position). Equal canonical bodies are a no-op, checked first
with one dictionary comparison, so a plan over 10,000 unchanged deployments costs a few milliseconds
here. Changed bodies are compared leaf by leaf; lists are compared whole (their order is meaningful
in Prefect: steps, args), and a Secret leaf is compared by template and fingerprint only.

An address the project does not manage may still be taken (``claims``, read by the caller from the
store): by no project (made by ``prefect deploy``, the UI) it is an ``adopt`` showing the field-level
diff from what exists, never a ``create``; by another project it is an error naming that project.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from reconciler.desired.desired import Desired, RuleKind
from reconciler.errors import ReconcileError
from reconciler.infra.redact import redact_url
from reconciler.objects import (
    Address,
    Claim,
    Kind,
    LiveState,
    Resource,
    Secret,
    StoredObject,
    keep_unset,
)
from reconciler.plan.model import (
    Action,
    Change,
    Drift,
    FieldChange,
    Plan,
    RunRequest,
    StateRef,
    apply_order,
)

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_\-]+$")


class OwnedElsewhere(ReconcileError):
    """The file declares objects another project manages: nothing is planned (Argo CD's "resource is
    managed by another application"). When this project manages nothing and another manages what the
    file declares, the project was probably renamed: the message offers the move."""


class Pair(NamedTuple):
    """One address with what the file wants and what the store has (either may be missing), and what
    exists there outside this project (``claim``)."""

    address: Address
    desired: Resource | None
    live: StoredObject | None
    claim: Claim | None = None


def diff(
    desired: Desired,
    live: LiveState,
    *,
    prune: bool = False,
    claims: Mapping[Address, Claim] | None = None,
) -> Plan:
    """The plan that takes ``live`` to ``desired``; ``claims`` are the objects that exist at addresses
    the project does not manage (see :class:`~reconciler.objects.Claim`)."""
    claims = claims or {}
    refuse_foreign(desired, live, claims)
    changes: list[Change] = []
    unchanged = 0
    for pair in pair_by_address(desired.resources, live.objects):
        if unchanged_pair(pair):  # change_for's no-op, counted without building its Change
            unchanged += 1
            continue
        if pair.live is None:
            pair = pair._replace(claim=claims.get(pair.address))
        change = change_for(pair, prune=prune)
        if change.action is Action.NOOP:
            unchanged += 1
        else:
            changes.append(change)
    changes.sort(key=apply_order)
    return Plan(
        project=desired.project,
        source=desired.source,
        state=StateRef(url=redact_url(live.url), serial=live.serial, last_commit=live.last_commit),
        changes=tuple(changes),
        unchanged=unchanged,
        prune=prune,
        runs=tuple(runs_after_apply(desired, changes)),
        warnings=tuple(desired.warnings),
    )


def pair_by_address(
    desired: Mapping[Address, Resource], live: Mapping[Address, StoredObject]
) -> Iterator[Pair]:
    for address in desired.keys() | live.keys():
        yield Pair(address, desired.get(address), live.get(address))


def refuse_foreign(desired: Desired, live: LiveState, claims: Mapping[Address, Claim]) -> None:
    """Raise :class:`OwnedElsewhere` when the file declares objects another project manages."""
    foreign = sorted(
        (c for a, c in claims.items() if c.owner and a in desired.resources and a not in live.objects),
        key=lambda c: (c.address.kind.rank, c.address.name),
    )
    if not foreign:
        return
    owners = sorted({str(c.owner) for c in foreign})
    parts = []
    for owner in owners:
        mine = [str(c.address) for c in foreign if c.owner == owner]
        listed = ", ".join(mine[:5]) + (f" (and {len(mine) - 5} more)" if len(mine) > 5 else "")
        parts.append(f"{listed} {'is' if len(mine) == 1 else 'are'} managed by project {owner!r}")
    text = "; ".join(parts) + f" in {redact_url(live.url)}: a project never takes another's objects"
    if not live.objects and len(owners) == 1:
        text += (
            f". If the project was renamed, move its state: "
            f"`reconcile state mv-project {owners[0]} {desired.project}`"
        )
    else:
        text += " (rename the objects in one of the files, or remove them from the other project first)"
    raise OwnedElsewhere(text)


def change_for(pair: Pair, *, prune: bool) -> Change:
    """Decide one object's action. The only place that decides."""
    desired, live = pair.desired, pair.live
    if live is None:
        assert desired is not None
        claim = pair.claim
        if claim is not None and claim.owner is None and claim.body is not None:
            written = keep_unset(claim.body, desired.body)
            fields = tuple(field_changes(claim.body, written))
            reason = "exists, managed by no project: apply --adopt takes it over"
            return Change(pair.address, Action.ADOPT, None, fields, desired, reason)
        return Change(pair.address, Action.CREATE, None, tuple(field_changes({}, desired.body)), desired)
    if desired is None:
        action = Action.DELETE if prune else Action.ORPHANED
        reason = "" if prune else "removed from the file; would delete with --prune"
        return Change(pair.address, action, live.version, (), None, reason)
    if unchanged_pair(pair):
        return Change(pair.address, Action.NOOP, live.version, (), desired)
    before, after = live.resource.body, desired.body
    fields = tuple(field_changes(before, after))
    drift = Drift(live.drifted_at, live.updated_by) if live.drifted_at else None
    if pair.address.kind is Kind.WORK_POOL and before.get("type") != after.get("type"):
        old_type, new_type = before.get("type"), after.get("type")
        reason = f"type changed: {old_type} -> {new_type} (a pool's type cannot change in place)"
        return Change(pair.address, Action.REPLACE, live.version, fields, desired, reason, drift)
    return Change(pair.address, Action.UPDATE, live.version, fields, desired, drift=drift)


def unchanged_pair(pair: Pair) -> bool:
    """Whether the file and the store agree on the object: equal canonical bodies and dependencies
    (one dictionary comparison, the usual answer for almost every object of a large plan)."""
    desired, live = pair.desired, pair.live
    return (
        desired is not None
        and live is not None
        and live.resource.body == desired.body
        and live.resource.depends_on == desired.depends_on
    )


def field_changes(before: Any, after: Any, prefix: str = "") -> Iterator[FieldChange]:
    """Leaf-level differences between two JSON-shaped values (mappings recurse, lists are leaves)."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in sorted(before.keys() | after.keys(), key=str):
            b, a = before.get(key, _ABSENT), after.get(key, _ABSENT)
            if b == a:
                continue
            yield from field_changes(
                None if b is _ABSENT else b, None if a is _ABSENT else a, _join(prefix, str(key))
            )
        return
    if isinstance(before, Mapping) and after is None and before:
        yield from field_changes(before, {}, prefix)
        return
    if isinstance(after, Mapping) and before is None and after:
        yield from field_changes({}, after, prefix)
        return
    if before == after:
        return
    if _sensitive(before) or _sensitive(after):
        change = "create" if before is None else "delete" if after is None else "update"
        yield FieldChange(prefix, sensitive=True, change=change)
        return
    yield FieldChange(prefix, before, after)


def _sensitive(value: Any) -> bool:
    if isinstance(value, Secret):
        return True
    if isinstance(value, list):
        return any(_sensitive(v) for v in value)
    if isinstance(value, Mapping):
        return any(_sensitive(v) for v in value.values())
    return False


_ABSENT = object()


def _join(prefix: str, key: str) -> str:
    part = key if _PLAIN_KEY.match(key) else f"[{key!r}]"
    if not prefix:
        return part
    return f"{prefix}{part}" if part.startswith("[") else f"{prefix}.{part}"


def runs_after_apply(desired: Desired, changes: list[Change]) -> Iterator[RunRequest]:
    """Deployments with an ``apply: changed`` rule whose create/update/replace is in the plan."""
    for change in changes:
        if change.address.kind is not Kind.DEPLOYMENT or change.action not in _CHANGED:
            continue
        rules = desired.run_rules.get(change.address, ())
        if any(rule.kind is RuleKind.APPLY for rule in rules):
            yield RunRequest(change.address.name, "apply: changed")


_CHANGED = frozenset({Action.CREATE, Action.ADOPT, Action.UPDATE, Action.REPLACE})
