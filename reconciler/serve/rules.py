"""What ``reconcile serve`` decides, as pure functions: which deployments it launches, what holds a run
back, which runs recovery may touch; and the records of a pass. ``loop.py`` acts on these answers;
nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from reconciler import pooltypes
from reconciler.objects import Address, Kind, LiveState, Resource
from reconciler.serve import schedule
from reconciler.state import ACTIVE_STATES, Limit, RunRecord, RunState

ACTIVE = ACTIVE_STATES
DEFAULT_QUEUE = "default"  # the queue every pool has, and a deployment's when it names none
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
    queue: str = DEFAULT_QUEUE  # the work queue of its runs, in its pool
    priority: int = 1  # the queue's priority in its pool (Prefect's rule: lower launches first)
    queue_limit: int | None = None  # the queue's concurrency_limit
    gcl: Resource | None = None  # the global concurrency limit the deployment names, if stored

    @property
    def name(self) -> str:
        return self.deployment.address.name

    @property
    def pool_name(self) -> str:
        return self.pool.address.name


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
        queue_name = str((body.get("work_pool") or {}).get("work_queue_name") or DEFAULT_QUEUE)
        queue = live.get(Address.work_queue(str(pool_name), queue_name))
        queue_body = queue.resource.body if queue else {}
        blocked = None
        if pool.resource.body.get("paused"):
            blocked = f"pool {pool_name} is paused"
        elif queue_body.get("paused"):
            blocked = f"work queue {queue_name} is paused"
        elif body.get("paused"):
            blocked = "deployment is paused"
        gcl_name = body.get("global_concurrency_limit")
        gcl = live.get(Address.concurrency_limit(str(gcl_name))) if gcl_name else None
        limit = queue_body.get("concurrency_limit")
        found[address.name] = Target(
            stored.resource,
            pool.resource,
            blocked,
            stored.updated_at,
            queue=queue_name,
            priority=queue_priorities(live, str(pool_name)).get(queue_name, 1),
            queue_limit=None if limit is None else int(limit),
            gcl=gcl.resource if gcl else None,
        )
    return found, notes


def queue_priorities(live: LiveState, pool: str) -> dict[str, int]:
    """Each stored work queue of ``pool`` with its priority, by Prefect's rule.

    A declared priority is kept (lower number launches first). A queue without one takes, as
    Prefect's server assigns it at creation, the first priority no other queue of the pool holds:
    the ``default`` queue first (it is created with the pool: priority 1 unless a declared queue
    holds 1), then the others in name order. A queue the store does not hold (the implicit
    ``default``) gets the same rule through ``default``.
    """
    queues: dict[str, int | None] = {DEFAULT_QUEUE: None}
    prefix = f"{pool}/"
    for address, stored in live.objects.items():
        if address.kind is Kind.WORK_QUEUE and address.name.startswith(prefix):
            declared = stored.resource.body.get("priority")
            queues[address.name.removeprefix(prefix)] = None if declared is None else int(declared)
    ranks = {name: p for name, p in queues.items() if p is not None}
    taken = set(ranks.values())
    for name in sorted((n for n, p in queues.items() if p is None), key=lambda n: (n != DEFAULT_QUEUE, n)):
        rank = 1
        while rank in taken:
            rank += 1
        ranks[name] = rank
        taken.add(rank)
    return ranks


def launch_order(run: RunRecord, targets: Mapping[str, Target], *, now: datetime) -> tuple[object, ...]:
    """Where a due run stands in the launch queue: its queue's priority first (Prefect's rule, as a
    worker polls a pool), then due time, then when it was recorded."""
    target = targets.get(run.deployment)
    priority = target.priority if target is not None else 0
    due = run.scheduled_for or run.created_at or now
    return (priority, due, run.created_at or now, run.id)


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


def limits(target: Target, targets: Mapping[str, Target], *, max_concurrent: int | None) -> tuple[Limit, ...]:
    """Every concurrency limit a run of ``target`` must find room in, each under a key that every
    ``serve`` replica computes alike (the store serializes claims by key): ``serve --max-concurrent``
    over the pools serve launches, the pool's ``concurrency_limit``, the work queue's, the
    deployment's (CANCEL_NEW cancels instead of waiting), and the global concurrency limit it names
    (an inactive one does not limit)."""
    found: list[Limit] = []
    if max_concurrent is not None:
        pools = frozenset(t.pool_name for t in targets.values()) | {target.pool_name}
        found.append(
            Limit("serve", max_concurrent, f"serve --max-concurrent {max_concurrent} reached", pools)
        )
    pool_limit = target.pool.body.get("concurrency_limit")
    if pool_limit is not None:
        reason = f"pool {target.pool_name} concurrency limit {pool_limit} reached"
        found.append(
            Limit(f"pool:{target.pool_name}", int(pool_limit), reason, frozenset({target.pool_name}))
        )
    if target.queue_limit is not None:
        same = _deployments(
            targets, target, lambda t: (t.pool_name, t.queue) == (target.pool_name, target.queue)
        )
        reason = f"work queue {target.queue} concurrency limit {target.queue_limit} reached"
        found.append(
            Limit(f"queue:{target.pool_name}/{target.queue}", target.queue_limit, reason, deployments=same)
        )
    concurrency = target.deployment.body.get("concurrency_limit") or {}
    if concurrency.get("limit") is not None:
        cancel = str(concurrency.get("collision_strategy") or "ENQUEUE") == "CANCEL_NEW"
        reason = f"deployment concurrency limit {concurrency['limit']} reached" + (
            " (CANCEL_NEW)" if cancel else ""
        )
        found.append(
            Limit(
                f"deployment:{target.name}",
                int(concurrency["limit"]),
                reason,
                deployments=frozenset({target.name}),
                cancel=cancel,
            )
        )
    gcl = target.gcl
    if gcl is not None and gcl.body.get("active", True) and gcl.body.get("limit") is not None:
        name = gcl.address.name
        same = _deployments(targets, target, lambda t: t.gcl is not None and t.gcl.address.name == name)
        reason = f"global concurrency limit {name} ({gcl.body['limit']}) reached"
        found.append(Limit(f"gcl:{name}", int(gcl.body["limit"]), reason, deployments=same))
    return tuple(found)


def _deployments(
    targets: Mapping[str, Target], target: Target, same: Callable[[Target], bool]
) -> frozenset[str]:
    """``target`` and every deployment sharing a limit with it (``same``)."""
    return frozenset({target.name, *(name for name, t in targets.items() if same(t))})


def hold(
    target: Target, limits: Iterable[Limit], *, active: Iterable[RunRecord], full: Mapping[str, Limit]
) -> Hold | None:
    """Why ``target``'s next run may not start now (None: it may be claimed).

    ``active`` are the runs this process knows in flight and ``full`` the limits a claim of this
    pass found without room: both only spare the store a claim bound to fail; the claim itself
    (``runs.submit``) is what keeps a limit across replicas.
    """
    if target.blocked:
        return Hold(target.blocked)
    running = list(active)
    for limit in limits:
        if limit.key in full or sum(1 for run in running if limit.covers(run)) >= limit.limit:
            return Hold(limit.reason, cancel=limit.cancel)
    return None


def recoverable(
    run: RunRecord,
    *,
    live: LiveState,
    cloud: bool,
    store_schedules: bool,
    now: datetime,
    watched_since: datetime | None = None,
    gone: Callable[[RunRecord], bool] = lambda run: False,
) -> bool:
    """Whether ``runs.recover`` may adopt or close ``run`` now.

    Only runs on pools serve launches, of deployments still stored. A SCHEDULED run, unless serve
    will still launch it (one it queued, or any a store that schedules runs itself made): recover
    closes those left for more than its own five minutes. A PENDING run without infrastructure only
    once it is surely not a launch in progress in another serve process: one this process has been
    watching (``watched_since``: unchanged since then) after ``RECOVER_AFTER`` of no change; one it
    sees for the first time (at start, or every pass of ``--once``) if it was claimed that long ago
    (a run that waited in the queue is claimed long after it was recorded). At once, one whose
    claiming process is ``gone`` (a replica killed mid-launch on this host: the caller asks the OS).
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
    if gone(run):
        return True  # its claimer was killed mid-launch (on this host): adopt now, not in minutes
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
    gone: Callable[[RunRecord], bool] = lambda run: False,
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
            run,
            live=live,
            cloud=cloud,
            store_schedules=store_schedules,
            now=now,
            watched_since=since,
            gone=gone,
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
