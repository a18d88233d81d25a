"""``reconcile serve``: the push service loop. Due runs are launched, followed to their end, never twice.

Each pass (``run_pass``): read the stored state; recover launches another process interrupted
(``rules.to_recover`` chooses which, ``runs.recover`` acts); follow the runs in flight so finished
ones free their slots; find what is due (a store that schedules runs itself is asked, else the slots
of the stored schedules in ``(max(last pass, now - lookback), now]`` become runs under the slot's
idempotency key: one slot is one run however many serve processes see it); launch the queue oldest
by queue priority, then oldest first, within the concurrency limits. Admission is one path: the
limits of a run (``rules.limits``: serve's, the pool's, the work queue's, the deployment's, a
global one) are handed to the claim (``runs.submit``), which the store makes atomic (a database
transaction, a Prefect server's concurrency slots), so N replicas on one store never launch a run
twice nor overshoot a limit; ``rules.hold`` only spares claims bound to fail. Every write of a run
goes through ``launch.runs``. What the loop decides is in ``rules`` (pure functions); the README
describes the options and the log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from reconciler.errors import ReconcileError
from reconciler.infra import signals
from reconciler.launch import Job, RunContext, runs
from reconciler.objects import LiveState
from reconciler.serve import automations, rules, schedule
from reconciler.serve.rules import PassReport
from reconciler.state import Limit, RunRecord, RunState, Store

__all__ = ["DEFAULT_SERVE", "PassReport", "PoolDueRuns", "ScheduledRunsSource", "ServeLoop", "ServeOptions"]

RUNS_SCAN = 10_000  # runs read per pass to count what is in flight (as runs.recover reads them)


@runtime_checkable
class ScheduledRunsSource(Protocol):
    """A store whose server creates scheduled runs itself (a Prefect server's scheduler).

    ``scheduled_runs`` returns this project's SCHEDULED runs due before ``before``, oldest first (a
    Prefect store answers with ``get_scheduled_flow_runs`` of its pools). serve then launches those
    instead of computing slots.
    """

    def scheduled_runs(self, *, before: datetime, limit: int) -> list[RunRecord]: ...


@runtime_checkable
class PoolDueRuns(Protocol):
    """The same, asked pool by pool (the Prefect store's form, as a worker polls its pool): serve
    asks only for the pools it launches and that are not paused."""

    def due_runs(self, pool: str, *, before: datetime, limit: int = 100) -> list[RunRecord]: ...


@runtime_checkable
class ChecksLaunch(Protocol):
    """A launcher that can tell, before a run is claimed, that its launch cannot work here
    (``ProcessLauncher.check``): it raises LaunchError saying what is missing."""

    def check(self, job: Job) -> None: ...


@dataclass(frozen=True)
class ServeOptions:
    """How the loop behaves; the defaults are the CLI's."""

    interval: float = 10.0  # seconds between passes
    lookback: float = 300.0  # seconds: how late a missed slot may still be launched
    max_concurrent: int | None = None  # runs in flight at once on the pools serve launches
    batch: int = 200  # scheduled runs asked of a store that schedules itself, per pass
    once: bool = False  # one pass, then exit (cron-driven use)


DEFAULT_SERVE = ServeOptions()


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ServeLoop:
    """One serve session over one RunContext (its store and launchers live as long as the loop).

    ``now`` and ``sleep`` are the clock seams: tests pass a frozen clock whose sleep moves time on.
    By default the loop sleeps on ``stop``, so a signal ends the wait at once.
    """

    def __init__(
        self,
        ctx: RunContext,
        *,
        log: Callable[[str], None],
        options: ServeOptions = DEFAULT_SERVE,
        now: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], None] | None = None,
        stop: threading.Event | None = None,
        before_pass: Callable[[], object] | None = None,
        after_pass: Callable[[PassReport, float], object] | None = None,
    ) -> None:
        self.ctx, self.options, self.now = ctx, options, now
        self.stop = stop or threading.Event()
        self._sleep = sleep or (lambda seconds: self.stop.wait(seconds))
        self._log = log
        self._before_pass = before_pass  # e.g. a continuous-sync pass when due (serve/sync.py)
        self._after_pass = after_pass  # (report, seconds) of each pass: metrics (serve/metrics.py)
        self.store: Store = ctx.store
        self.source = self.store if isinstance(self.store, ScheduledRunsSource | PoolDueRuns) else None
        self.cloud = rules.on_cloud(self.store.url)  # a Prefect store's URL names its server's host
        self._until: datetime | None = None  # end of the last window that was scheduled
        self._watched: dict[str, tuple[int, datetime]] = {}  # PENDING run -> (version, unchanged since)
        self._said: set[tuple[str, ...]] = set()  # once-only log lines
        self.last: PassReport | None = None

    # -- the loop ------------------------------------------------------------------------------------

    def run(self) -> int:
        """Start, pass until stopped (or once), list what is left running; 0, or 1 if ``--once`` failed."""
        with signals.stop_on_signals(self.stop):
            self.say(
                f"serve: started on {rules.redact(self.store.url)} (project {self.store.project}; "
                f"{'store-scheduled runs' if self.source else 'schedules from the stored deployments'}; "
                + ("one pass" if self.options.once else f"every {self.options.interval:g}s")
                + f", lookback {self.options.lookback:g}s)"
            )
            self.start()
            while True:
                if self._before_pass is not None:
                    self._before_pass()
                report = self.run_pass()
                if self.options.once or self.stop.is_set():
                    break
                self._sleep(self.options.interval)
                if self.stop.is_set():
                    break
            self.shutdown(report)
        return 1 if self.options.once and report.failed else 0

    def start(self) -> list[RunRecord]:
        """Adopt or close the launches a previous process interrupted (runs on our pools only);
        every pass does it again for launches that were still in progress here."""
        try:
            self.ctx.live = self.store.read_all()
            stored = self.store.list_runs(limit=RUNS_SCAN)
        except ReconcileError as exc:
            self.say(f"error: recovery at start failed: {_one_line(exc)}")
            return []
        return self._recover(stored, self.now())

    def run_pass(self) -> PassReport:
        """One pass; an error is logged and the next pass tries again."""
        tally = rules.Tally(self.now())
        started = time.monotonic()
        try:
            self._pass(tally)
        except ReconcileError as exc:
            self.say(f"error: {_one_line(exc)}")
            self.last = tally.report(failed=True)
        else:
            self.last = tally.report()
        if self._after_pass is not None:
            self._after_pass(self.last, time.monotonic() - started)
        return self.last

    def shutdown(self, report: PassReport | None) -> None:
        left = report.in_flight if report else ()
        reason = "one pass done" if self.options.once else "stopping"
        self.say(f"serve: {reason}; {len(left)} run(s) left running")
        for run in left:
            where = f" on {run.infrastructure_id}" if run.infrastructure_id else ""
            self.say(f"left running: run {run.id} of {run.deployment} ({run.state.value}){where}")
        self.ctx.close()

    # -- one pass ------------------------------------------------------------------------------------

    def _pass(self, tally: rules.Tally) -> None:
        now = tally.at
        live = self.store.read_all()
        self.ctx.live = live
        targets = self.targets(live)
        stored = self.store.list_runs(limit=RUNS_SCAN)
        recovered = {r.id: r for r in self._recover(stored, now)}
        stored = [recovered.get(r.id, r) for r in stored]
        self._follow(stored, targets, tally)
        # the store frees the slots of runs that ended, whoever launched them, and keeps the others'
        runs.settle(self.ctx, [*stored, *tally.finished])
        if self.source is not None:
            queue = self._store_scheduled(targets, now)
        else:
            created = self._schedule(targets, tally)
            # automations run here, where serve is the event engine: a run's end fires them
            created += automations.fire(
                self.ctx,
                [*stored, *tally.finished],
                now=now,
                lookback=self.options.lookback,
                say=self.say_once,
            )
            known = {r.id: r for r in stored if r.state is RunState.SCHEDULED}
            known.update({r.id: r for r in created if r.state is RunState.SCHEDULED})
            queue = [r for r in known.values() if r.scheduled_for is None or r.scheduled_for <= now]
        queue.sort(key=lambda r: rules.launch_order(r, targets, now=now))
        self._launch(queue, targets, tally)

    def _store_scheduled(self, targets: Mapping[str, rules.Target], now: datetime) -> list[RunRecord]:
        """The due runs a store that schedules itself made (its pools' runs, for a per-pool store)."""
        limit = self.options.batch
        if isinstance(self.source, ScheduledRunsSource):
            return self.source.scheduled_runs(before=now, limit=limit)
        assert isinstance(self.source, PoolDueRuns)
        pools = sorted({t.pool.address.name for t in targets.values() if not t.pool.body.get("paused")})
        found: dict[str, RunRecord] = {}
        for pool in pools:
            found.update((r.id, r) for r in self.source.due_runs(pool, before=now, limit=limit))
        return list(found.values())

    def targets(self, live: LiveState) -> dict[str, rules.Target]:
        """Deployments on pools serve launches, each with the reason it is blocked (paused), if any."""
        found, notes = rules.targets(live, cloud=self.cloud)
        for note in notes:
            self.say_once(note.text, key=note.key)
        return found

    def _follow(
        self, stored: list[RunRecord], targets: Mapping[str, rules.Target], tally: rules.Tally
    ) -> None:
        """Refresh every run in flight on our pools; count what still occupies a slot."""
        launchable = {t.pool.address.name for t in targets.values()}
        for run in stored:
            if run.state not in rules.ACTIVE or self._pool(run) not in launchable:
                continue
            if run.infrastructure_id and run.deployment in targets:
                try:
                    run = runs.refresh(self.ctx, run)
                except ReconcileError as exc:
                    self.say_once(f"cannot follow run {run.id} of {run.deployment}: {_one_line(exc)}")
            if run.state.terminal:
                tally.finished.append(run)
                self.say(f"finished run {run.id} of {run.deployment}: {rules.outcome(run)}")
            else:
                tally.active[run.id] = run

    def _schedule(self, targets: Mapping[str, rules.Target], tally: rules.Tally) -> list[RunRecord]:
        """Runs for the slots in this pass's window (existing runs come back by idempotency key)."""
        now = tally.at
        lookback = timedelta(seconds=self.options.lookback)
        created: list[RunRecord] = []
        for name in sorted(targets):
            target = targets[name]
            after = rules.window_start(target, now=now, lookback=lookback, until=self._until)
            for slug, body in (target.deployment.body.get("schedules") or {}).items():
                try:
                    slots = schedule.schedule_slots(name, slug, body, after=after, until=now)
                except schedule.ScheduleError as exc:
                    self.say_once(f"not scheduling {name}: {exc}")
                    continue
                for slot in slots:
                    if target.blocked:
                        tally.skipped.append(slot)
                        self.say(
                            f"skipped slot {schedule.iso_utc(slot.at)} of {name} ({slot.reason}): {target.blocked}"
                        )
                        continue
                    try:
                        created.append(
                            runs.create(
                                self.ctx,
                                name,
                                parameters=slot.parameters,
                                reason=slot.reason,
                                idempotency_key=slot.key,
                                scheduled_for=slot.at,
                            )
                        )
                    except ReconcileError as exc:
                        self.say(f"error: cannot record the run of {name} for {slot.key}: {_one_line(exc)}")
        self._until = now
        return created

    def _launch(
        self, queue: list[RunRecord], targets: Mapping[str, rules.Target], tally: rules.Tally
    ) -> None:
        full: dict[str, Limit] = {}  # limits a claim of this pass found without room
        limits_of: dict[str, tuple[Limit, ...]] = {}  # per deployment, computed once a pass
        for run in queue:
            target = targets.get(run.deployment)
            if target is None or self._pool(run) != target.pool.address.name:
                self.say_once(f"not launching run {run.id} of {run.deployment}: not on a pool serve launches")
                continue
            if run.deployment not in limits_of:
                limits_of[run.deployment] = rules.limits(
                    target, targets, max_concurrent=self.options.max_concurrent
                )
            limits = limits_of[run.deployment]
            held = rules.hold(target, limits, active=tally.active.values(), full=full)
            if held is None:
                unmet = self._unmet(run)
                if unmet is not None:
                    tally.waiting.append(unmet)
                    continue
                launch = self._submit(run, limits)
                if launch is None:
                    continue
                if launch.full is not None:  # another replica took the last slot meanwhile
                    full[launch.full.key] = launch.full
                    held = rules.Hold(launch.full.reason, cancel=launch.full.cancel)
                else:
                    self._launched(launch, tally)
                    continue
            if held.cancel:
                self._cancel(run, held.reason, tally)
            else:
                tally.waiting.append(self._wait(run, held.reason))

    def _launched(self, launch: runs.Launch, tally: rules.Tally) -> None:
        if not launch.claimed:
            return  # another serve process won the claim: it launched the run and says so
        launched = launch.run
        if launched.state.terminal:
            tally.finished.append(launched)  # crashed at submit: it ended in this pass
        elif launched.state in rules.ACTIVE:
            tally.launched.append(launched)
            tally.active[launched.id] = launched

    # -- effects on one run --------------------------------------------------------------------------

    def _submit(self, run: RunRecord, limits: tuple[Limit, ...]) -> runs.Launch | None:
        """Claim (within ``limits``) and submit ``run``; None if the store failed (said in the log)."""
        try:
            launch = runs.submit(self.ctx, run, limits)
        except ReconcileError as exc:
            self.say(f"error: cannot launch run {run.id} of {run.deployment}: {_one_line(exc)}")
            return None
        if not launch.claimed:
            return launch
        launched = launch.run
        what = f"run {launched.id} of {launched.deployment} ({launched.reason or 'manual'})"
        if launched.state is RunState.CRASHED:
            self.say(f"crashed {what}: {launched.message}")
        elif launched.state in rules.ACTIVE:
            where = f" as {launched.infrastructure_id}" if launched.infrastructure_id else ""
            self.say(f"launched {what} on {self._pool(launched)}{where}")
        return launch

    def _unmet(self, run: RunRecord) -> RunRecord | None:
        """The run, held, if its launcher says the launch cannot work here (a ``process`` job whose
        interpreter lacks the module it runs); None when it may be submitted. Checked before the
        claim, so the run keeps waiting (said once) instead of crashing every pass until fixed."""
        try:
            launcher = self.ctx.launcher_for(run)
            if not isinstance(launcher, ChecksLaunch):
                return None
            launcher.check(self.ctx.job_for(run))
        except ReconcileError as exc:
            why = _one_line(exc)
            self.say_once(
                f"not launching runs of {run.deployment}: {why}", key=("unmet", run.deployment, why)
            )
            if self.source is not None:
                return run
            try:
                return runs.hold(self.ctx, run, why)
            except ReconcileError:
                return run
        return None

    def _wait(self, run: RunRecord, why: str) -> RunRecord:
        """Leave the run queued; mark it (where serve schedules) so a restart keeps its place."""
        self.say_once(f"waiting run {run.id} of {run.deployment}: {why}", key=("wait", run.id, why))
        if self.source is not None:
            return run  # the store's own queue keeps the run's place
        try:
            return runs.hold(self.ctx, run, why)
        except ReconcileError:
            return run  # the store failed: the next pass sees the run as it is

    def _cancel(self, run: RunRecord, why: str, tally: rules.Tally) -> None:
        try:
            cancelled = runs.cancel_queued(self.ctx, run, why, now=self.now())
        except ReconcileError as exc:
            self.say(f"error: cannot cancel run {run.id} of {run.deployment}: {_one_line(exc)}")
            return
        if cancelled is None:
            return  # claimed meanwhile by another serve process: it decided
        tally.cancelled.append(cancelled)
        self.say(f"cancelled run {run.id} of {run.deployment}: {why}")

    def _pool(self, run: RunRecord) -> str | None:
        return rules.placement(run, self.ctx.live)[0]

    def _recover(self, stored: list[RunRecord], now: datetime) -> list[RunRecord]:
        """``runs.recover`` over the runs it may touch now (see ``rules.recoverable``)."""
        chosen, self._watched = rules.to_recover(
            stored,
            watched=self._watched,
            live=self.ctx.live,
            cloud=self.cloud,
            store_schedules=self.source is not None,
            now=now,
            gone=runs.claimer_gone,
        )
        if not chosen:
            return []
        try:
            changed = runs.recover(self.ctx, now=now, candidates=chosen)
        except ReconcileError as exc:
            self.say_once(f"error: cannot recover interrupted launches: {_one_line(exc)}")
            return []
        for run in changed:
            self.say(f"recovered run {run.id} of {run.deployment}: {run.state.value} ({run.message})")
        return changed

    # -- log -----------------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self._log(f"{schedule.iso_utc(self.now().replace(microsecond=0))} {text}")

    def say_once(self, text: str, *, key: tuple[str, ...] | None = None) -> None:
        key = key or (text,)
        if key not in self._said:
            self._said.add(key)
            self.say(text)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
