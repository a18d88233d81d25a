"""What ``reconcile serve`` decides, as pure functions: which deployments it launches, what holds a run
back, which runs recovery may touch; and the records of a pass. ``loop.py`` acts on these answers;
nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from reconciler import pooltypes
from reconciler.objects import Address, Kind, LiveState, Resource
from reconciler.serve import schedule
from reconciler.state import RunRecord, RunState

ACTIVE = frozenset({RunState.PENDING, RunState.RUNNING, RunState.CANCELLING})
CLOUD_HOST = "api.prefect.cloud"
# A launch takes seconds (a cloud call with retries, at most a minute or so): a run PENDING without
# infrastructure for longer than this was left by a launcher that stopped.
RECOVER_AFTER = timedelta(minutes=2)


@dataclass(frozen=True)
class Target:
    """A deployment serve may launch, with its pool; ``blocked`` says why it may not right now."""

    deployment: Resource
    pool: Resource
    blocked: str | None = None
    since: datetime | None = None  # when the store last wrote the deployment (created or changed)

    @property
    def name(self) -> str:
        return self.deployment.address.name


@dataclass(frozen=True)
class Hold:
    """Why a due run does not start now: it waits, or (``cancel``) it is cancelled (CANCEL_NEW)."""

    reason: str
    cancel: bool = False


@dataclass(frozen=True)
class Note:
    """Something the log should say once per process (``key`` identifies it)."""

    key: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class PassReport:
    """What one pass did (for tests and the final summary; the log already said it line by line)."""

    at: datetime
    launched: tuple[RunRecord, ...] = ()
    finished: tuple[RunRecord, ...] = ()
    cancelled: tuple[RunRecord, ...] = ()
    waiting: tuple[RunRecord, ...] = ()
    skipped_slots: tuple[schedule.Slot, ...] = ()
    in_flight: tuple[RunRecord, ...] = ()
    failed: bool = False


@dataclass
class Tally:
    """Mutable tallies of the pass in progress (frozen into a PassReport at its end)."""

    at: datetime
    launched: list[RunRecord] = field(default_factory=list)
    finished: list[RunRecord] = field(default_factory=list)
    cancelled: list[RunRecord] = field(default_factory=list)
    waiting: list[RunRecord] = field(default_factory=list)
    skipped: list[schedule.Slot] = field(default_factory=list)
    active: dict[str, RunRecord] = field(default_factory=dict)

    def report(self, *, failed: bool = False) -> PassReport:
        return PassReport(
            self.at,
            tuple(self.launched),
            tuple(self.finished),
            tuple(self.cancelled),
            tuple(self.waiting),
            tuple(self.skipped),
            tuple(self.active.values()),
            failed,
        )


def on_cloud(url: str) -> bool:
    """Whether the store is Prefect Cloud (its state URL names the API host)."""
    return CLOUD_HOST in url


def launches(pool_type: str | None, *, cloud: bool) -> bool:
    """Whether serve launches runs of this pool type: every type we know, except push types on Cloud."""
    known = pooltypes.get(pool_type or "") is not None
    return known and not (cloud and str(pool_type).endswith(":push"))


def placement(run: RunRecord, live: LiveState) -> tuple[str | None, str | None]:
    """A run's pool and pool type. A run a server scheduled may not carry them: its deployment does."""
    if run.pool and run.pool_type:
        return run.pool, run.pool_type
    flow, _, name = run.deployment.partition("/")
    deployment = live.get(Address.deployment(flow, name))
    pool_name = run.pool or (
        (deployment.resource.body.get("work_pool") or {}).get("name") if deployment else None
    )
    pool = live.get(Address.pool(str(pool_name))) if pool_name else None
    return pool_name, run.pool_type or (str(pool.resource.body.get("type")) if pool else None)


def targets(live: LiveState, *, cloud: bool) -> tuple[dict[str, Target], list[Note]]:
    """Deployments on pools serve launches (by ``flow/name``), and what the log should say about the rest."""
    found: dict[str, Target] = {}
    notes: list[Note] = []
    for address, stored in live.objects.items():
        if address.kind is not Kind.DEPLOYMENT:
            continue
        body = stored.resource.body
        pool_name = (body.get("work_pool") or {}).get("name")
        pool = live.get(Address.pool(pool_name)) if pool_name else None
        if pool is None:
            if body.get("schedules"):
                text = f"not scheduling {address.name}: its work pool is not in the stored state"
                notes.append(Note((text,), text))
            continue
        pool_type = str(pool.resource.body.get("type", ""))
        if not launches(pool_type, cloud=cloud):
            if cloud and pool_type.endswith(":push"):
                text = f"not launching runs on {pool_type} pools: Prefect Cloud pushes those itself"
                notes.append(Note(("cloud-push",), text))
            continue
        blocked = None
        if pool.resource.body.get("paused"):
            blocked = f"pool {pool_name} is paused"
        elif body.get("paused"):
            blocked = "deployment is paused"
        found[address.name] = Target(stored.resource, pool.resource, blocked, stored.updated_at)
    return found, notes


def window_start(target: Target, *, now: datetime, lookback: timedelta, until: datetime | None) -> datetime:
    """Where this pass's slot window ``(start, now]`` of ``target`` begins.

    ``now - lookback`` (a missed slot is still launched that late), moved on to the end of the last
    window this process scheduled, and never before the store last wrote the deployment: a slot due
    before the deployment existed, or before its schedule was what it is now, is not a missed run
    (Prefect's scheduler likewise starts a new or changed schedule from the moment it is saved).
    The store's write time stands for "schedule changed" because an apply rewrites a deployment
    only when its desired state changed; a change of another field forgoes at most ``lookback`` of
    back-filling, never launches a run twice.
    """
    start = now - lookback
    if until is not None:
        start = max(start, until)
    if target.since is not None:
        start = max(start, target.since)
    return start


def hold(
    target: Target,
    *,
    active: int,
    pools: Mapping[str | None, int],
    deployments: Mapping[str, int],
    max_concurrent: int | None,
) -> Hold | None:
    """Why ``target``'s next run may not start with these runs in flight (None: it may)."""
    if target.blocked:
        return Hold(target.blocked)
    if max_concurrent is not None and active >= max_concurrent:
        return Hold(f"serve --max-concurrent {max_concurrent} reached")
    pool = target.pool.address.name
    pool_limit = target.pool.body.get("concurrency_limit")
    if pool_limit is not None and pools.get(pool, 0) >= int(pool_limit):
        return Hold(f"pool {pool} concurrency limit {pool_limit} reached")
    limit = target.deployment.body.get("concurrency_limit") or {}
    if limit.get("limit") is not None and deployments.get(target.name, 0) >= int(limit["limit"]):
        reason = f"deployment concurrency limit {limit['limit']} reached"
        if str(limit.get("collision_strategy") or "ENQUEUE") == "CANCEL_NEW":
            return Hold(f"{reason} (CANCEL_NEW)", cancel=True)
        return Hold(reason)
    return None


def recoverable(
    run: RunRecord,
    *,
    live: LiveState,
    cloud: bool,
    store_schedules: bool,
    now: datetime,
    watched_since: datetime | None = None,
) -> bool:
    """Whether ``runs.recover`` may adopt or close ``run`` now.

    Only runs on pools serve launches, of deployments still stored. A SCHEDULED run, unless serve
    will still launch it (one it queued, or any a store that schedules runs itself made): recover
    closes those left for more than its own five minutes. A PENDING run without infrastructure only
    once it is surely not a launch in progress in another serve process: one this process has been
    watching (``watched_since``: unchanged since then) after ``RECOVER_AFTER`` of no change; one it
    sees for the first time (at start, or every pass of ``--once``) if it was claimed that long ago
    (a run that waited in the queue is claimed long after it was recorded).
    """
    if not launches(placement(run, live)[1], cloud=cloud):
        return False
    flow, _, name = run.deployment.partition("/")
    if live.get(Address.deployment(flow, name)) is None:
        return False  # nothing to rebuild its job from: `reconcile runs --reconcile` reports it
    if run.state is RunState.SCHEDULED:
        return not store_schedules and run.waiting is None
    if run.state is not RunState.PENDING or run.infrastructure_id:
        return False
    if watched_since is not None:
        return now - watched_since >= RECOVER_AFTER
    claimed = run.started_at or run.created_at
    return claimed is not None and now - claimed >= RECOVER_AFTER


Watched = Mapping[
    str, tuple[int, datetime]
]  # PENDING run without infrastructure -> (version, unchanged since)


def to_recover(
    stored: list[RunRecord],
    *,
    watched: Watched,
    live: LiveState,
    cloud: bool,
    store_schedules: bool,
    now: datetime,
) -> tuple[list[RunRecord], dict[str, tuple[int, datetime]]]:
    """The runs ``runs.recover`` may touch now, and what to watch until the next pass: each PENDING
    run without infrastructure, unchanged since when (a run that moved is being worked on)."""
    chosen: list[RunRecord] = []
    still: dict[str, tuple[int, datetime]] = {}
    for run in stored:
        since: datetime | None = None  # None: first sight, judged by its age
        if run.state is RunState.PENDING and not run.infrastructure_id:
            if run.id in watched:
                version, seen = watched[run.id]
                since = seen if version == run.version else now
            still[run.id] = (run.version, since or now)
        if recoverable(
            run, live=live, cloud=cloud, store_schedules=store_schedules, now=now, watched_since=since
        ):
            chosen.append(run)
    return chosen, still


def outcome(run: RunRecord) -> str:
    """``COMPLETED (exit code 0)``, ``CRASHED: why``, for the log."""
    code = "" if run.exit_code is None else f" (exit code {run.exit_code})"
    message = f": {run.message}" if run.message and run.state is not RunState.COMPLETED else ""
    return f"{run.state.value}{code}{message}"


_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^:/@]*):[^@/]*@")


def redact(url: str) -> str:
    """A state URL fit for a log: any password in it replaced by ``***``."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:***@", url)
