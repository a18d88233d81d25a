"""Execute a Plan against a Store: verify, write in dependency order, record history.

Reads like gitops-engine's ``engine.Sync``: one call per step. The caller holds the store lock for
the whole plan -> confirm -> apply sequence (as Terraform does), so nobody can slip a write in
between. Every write is still checked against the version the plan saw: a saved plan applied later
is refused as a whole, before the first write, if any object it touches has moved. A crash (even
``kill -9``) leaves every object either written or not; the next plan picks up the rest.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from reconciler import desired as desired_state
from reconciler import plan as planning
from reconciler.errors import ReconcileError, SpecError, StaleVersion
from reconciler.objects import Address, Claim, Kind, LiveState
from reconciler.plan import Action, Change, Plan
from reconciler.state import HistoryEntry, KnowsClaims, LockInfo, ObjectStore, WaveWrite, WritesInWaves


class EmptyDesiredState(ReconcileError):
    """The file declares nothing while the store manages objects: most likely a broken checkout."""


class AdoptionRefused(ReconcileError):
    """The plan takes over existing objects no project manages, and the operator did not consent."""


class StalePlan(ReconcileError):
    """A saved plan touches objects that moved since it was made; it is refused as a whole."""


DEFAULT_PARALLELISM = 8


@dataclass(frozen=True)
class ApplyOptions:
    allow_empty: bool = False
    parallelism: int = DEFAULT_PARALLELISM  # writes of one wave in flight at once (stores that take waves)


DEFAULT_APPLY = ApplyOptions()


@dataclass(frozen=True)
class ObjectResult:
    address: Address
    action: Action
    version: int | None  # the version written (None after a delete)


@dataclass(frozen=True)
class ApplyResult:
    plan: Plan
    results: tuple[ObjectResult, ...]
    history: HistoryEntry | None

    @property
    def changed(self) -> bool:
        return bool(self.results)

    def counts(self) -> dict[str, int]:
        """How many objects each action touched, in apply order: ``{"create": 3, "update": 1}``."""
        counts: dict[str, int] = {}
        for result in self.results:
            counts[result.action.value] = counts.get(result.action.value, 0) + 1
        return counts

    def describe(self) -> str:
        """``3 created, 1 updated`` (or ``nothing to do``), for people."""
        done = {
            "create": "created",
            "adopt": "adopted",
            "update": "updated",
            "replace": "replaced",
            "delete": "deleted",
        }
        return ", ".join(f"{n} {done[a]}" for a, n in self.counts().items()) or "nothing to do"


def lock_info(purpose: str = "apply") -> LockInfo:
    """Who we are, for the lock row and for history."""
    user = _user()
    host = socket.gethostname()
    return LockInfo(holder=f"{user}@{host}", pid=os.getpid(), host=host, purpose=purpose)


def check_not_empty(plan: Plan, *, options: ApplyOptions) -> None:
    """Refuse to act on a file that declares nothing while the store manages objects."""
    s = plan.summary
    declared = s["create"] + s.get("adopt", 0) + s["update"] + s["replace"] + s["no-op"]
    managed = s["delete"] + s["orphaned"]
    if declared == 0 and managed > 0 and not options.allow_empty:
        raise EmptyDesiredState(
            f"the file declares no objects while the state manages {managed}; refusing "
            "(pass --allow-empty if you really mean to empty the project)"
        )


def plan_for(
    desired: desired_state.Desired,
    live: LiveState,
    *,
    prune: bool = False,
    store: ObjectStore | None = None,
) -> Plan:
    """Desired + live -> Plan, after checking the file's references to pools and blocks it does not
    declare against the store (the one way every command plans). With the ``store``, what the file
    declares but the project does not manage is looked up first: an existing object is adopted or,
    when another project manages it, refused (see :func:`claims_for`)."""
    problems = desired.unresolved_references(known_addresses(desired, live, store))
    if problems:
        raise SpecError(problems)
    claims = claims_for(store, desired, live) if store is not None else {}
    return planning.diff(desired, live, prune=prune, claims=claims)


def known_addresses(
    desired: desired_state.Desired, live: LiveState, store: ObjectStore | None
) -> set[Address]:
    """Where the file's references to undeclared objects may point: what the project manages, every
    pool's implicit ``default`` queue and, for automations only, what the store says exists outside
    the project (another project's deployment, a notification block made in the UI): the server
    resolves an automation's references by name when it is written, whereas a pool, a block of a
    pool or a limit must be this project's, because the launcher and ``serve`` read them from it."""
    known = set(live.objects)
    pools = {a.name for a in (*live.objects, *desired.resources) if a.kind is Kind.WORK_POOL}
    asked = [
        r.target
        for r in desired.external_references
        if r.path[:1] == ("automations",) and r.target not in known
    ]
    if isinstance(store, KnowsClaims) and asked:
        known.update(store.claims(asked))
    pools.update(a.name for a in known if a.kind is Kind.WORK_POOL)
    known.update(Address.work_queue(pool, "default") for pool in pools)
    return known


def claims_for(store: ObjectStore, desired: desired_state.Desired, live: LiveState) -> dict[Address, Claim]:
    """What exists at the addresses the file declares and this project does not manage: asked only
    for those (a plan without creates asks nothing), of stores that can tell (:class:`KnowsClaims`)."""
    unmanaged = [a for a in desired.resources if a not in live.objects]
    if not unmanaged or not isinstance(store, KnowsClaims):
        return {}
    return dict(store.claims(unmanaged))


def check_adoption(plan: Plan, *, allow: bool) -> None:
    """Refuse, before anything is written, a plan that takes over objects no project manages unless
    the operator consented (``apply --adopt``): adopting makes this project the owner of something
    made by ``prefect deploy``, the UI or a script, and its next apply may change it."""
    adopts = plan.adopts
    if not adopts or allow:
        return
    listed = ", ".join(str(c.address) for c in adopts[:10])
    more = f" (and {len(adopts) - 10} more)" if len(adopts) > 10 else ""
    raise AdoptionRefused(
        f"nothing was applied: {len(adopts)} object{'s' if len(adopts) != 1 else ''} already "
        f"exist{'s' if len(adopts) == 1 else ''} and no project manages "
        f"{'it' if len(adopts) == 1 else 'them'}: {listed}{more}. Review the plan's adopt entries, then "
        "run `reconcile apply --adopt` to take them over (fields the file leaves unset are kept)"
    )


def verify(plan: Plan, live: LiveState) -> None:
    """Every object the plan writes must still be at the version it was planned against."""
    stale = []
    for change in plan.writes:
        current = live.get(change.address)
        actual = current.version if current else None
        if actual != change.version:
            stale.append(StaleVersion(str(change.address), change.version, actual))
    if stale:
        listed = "; ".join(str(e) for e in stale[:5])
        more = f" (and {len(stale) - 5} more)" if len(stale) > 5 else ""
        raise StalePlan(
            f"the saved plan is stale, nothing was applied: {listed}{more}. Run `reconcile plan` again."
        )


def execute(
    plan: Plan,
    store: ObjectStore,
    *,
    options: ApplyOptions = DEFAULT_APPLY,
    on_change: Callable[[Change], None] | None = None,
) -> ApplyResult:
    """Write the plan's changes wave by wave and record one history row. The caller holds the lock."""
    check_not_empty(plan, options=options)
    results: list[ObjectResult] = []
    for wave in waves(plan.writes):
        results.extend(_write_wave(wave, store, parallelism=options.parallelism))
        for change in wave:
            if on_change is not None:
                on_change(change)
    history = None
    if results:
        history = _record(plan, store, results)
    if plan.source.git is not None:
        store.set_last_commit(plan.source.git.commit)
    return ApplyResult(plan=plan, results=tuple(results), history=history)


def waves(changes: Sequence[Change]) -> list[list[Change]]:
    """Consecutive changes of one kind and direction, split so that no change of a wave depends on
    another of it: kinds are in dependency order already (``Kind.rank``; deletes in reverse), and
    within a kind (an automation that pauses another) a dependency goes a wave earlier, a dependent
    a wave earlier when deleting."""
    grouped: list[list[Change]] = []
    for change in changes:
        key = (change.address.kind, change.action is Action.DELETE)
        if grouped and (grouped[-1][0].address.kind, grouped[-1][0].action is Action.DELETE) == key:
            grouped[-1].append(change)
        else:
            grouped.append([change])
    return [wave for group in grouped for wave in _layers(group)]


def _layers(group: list[Change]) -> list[list[Change]]:
    """``group`` (one kind, one direction) in layers of changes independent of each other."""
    members = {c.address: c for c in group}
    level: dict[Address, int] = {}

    def depth(address: Address, seen: frozenset[Address]) -> int:
        if address not in level:
            change = members[address]
            inside = [
                d
                for d in (change.after.depends_on if change.after else ())
                if d in members and d not in seen  # a cycle is refused by the loader; never loop here
            ]
            level[address] = 1 + max((depth(d, seen | {address}) for d in inside), default=-1)
        return level[address]

    for change in group:
        depth(change.address, frozenset())
    if max(level.values()) == 0:
        return [group]
    layers: list[list[Change]] = [[] for _ in range(max(level.values()) + 1)]
    for change in group:
        layers[level[change.address]].append(change)
    return layers


def _write_wave(wave: list[Change], store: ObjectStore, *, parallelism: int) -> list[ObjectResult]:
    """A store that pays round trips per write takes the wave at once; others write one by one."""
    if len(wave) > 1 and isinstance(store, WritesInWaves):
        writes = [
            WaveWrite(c.address, c.version, c.after if c.action is not Action.DELETE else None) for c in wave
        ]
        versions = store.write_wave(writes, parallelism=parallelism)
        return [ObjectResult(c.address, c.action, v) for c, v in zip(wave, versions, strict=True)]
    return [_write(change, store) for change in wave]


def _write(change: Change, store: ObjectStore) -> ObjectResult:
    if change.action is Action.DELETE:
        assert change.version is not None
        store.delete(change.address, expected_version=change.version)
        return ObjectResult(change.address, change.action, None)
    assert change.after is not None, f"{change.address}: {change.action} without a body"
    version = store.write(change.after, expected_version=change.version)
    return ObjectResult(change.address, change.action, version)


def _record(plan: Plan, store: ObjectStore, results: list[ObjectResult]) -> HistoryEntry:
    info = lock_info()
    entry = HistoryEntry(
        serial=plan.state.serial + len(results),  # each write moved the serial by one (we hold the lock)
        applied_at=datetime.now(UTC),
        user=info.holder.split("@")[0],
        host=info.host,
        commit=plan.source.git.commit if plan.source.git else None,
        summary=plan.summary,
        changes=tuple(f"{r.action.value} {r.address}" for r in results),
    )
    store.record_apply(entry)
    return entry


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")
