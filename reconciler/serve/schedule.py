"""When a deployment's schedules are due: pure functions of (schedules, window), no clock, no I/O.

A slot is one instant a schedule fires. ``reconcile serve`` asks for the slots inside a window
``(after, until]`` (half-open, so consecutive windows never share a slot) and records one run per
slot under the slot's idempotency key ``schedule:<flow/name>:<slug>:<instant in ISO UTC>``: the key
depends only on the schedule and the instant, so every serve process, before or after a restart,
names a slot the same way and the store's unique key refuses a second run for it.

The bodies are the canonical ``schedules`` of a deployment (``desired/canonical.py`` ``schedule_body``),
and the rules follow Prefect's server (``prefect.server.schemas.schedules``) so a schedule fires at
the same instants whether our serve loop or a Prefect server runs it:

* **cron** is matched against wall-clock times in its ``timezone`` (``day_or`` as croniter has it).
  Each wall time is placed at its *first* occurrence: on the autumn fall-back day a 02:30 job runs
  once, and an hourly job skips the repeated hour (Prefect: "fires on every new schedule hour, not
  every elapsed hour"). A wall time that does not exist (the spring-forward gap) is shifted forward
  by the gap (02:30 -> 03:30), and instants that coincide are one slot: never a missing day, never a
  duplicate.
* **interval** counts from ``anchor_date`` (naive anchors are in the schedule's timezone; without
  one, 2020-01-01T00:00 local, so restarts agree). Whole days are calendar days in the timezone (a
  daily 09:00 stays 09:00 across DST); anything else is elapsed time.
* **rrule** (RFC 5545 via dateutil) runs on wall times in the schedule's timezone from a default
  DTSTART of 2020-01-01T00:00, placed like cron times. A time zone inside the rule is ignored, as
  Prefect ignores it in favour of the schedule's ``timezone``.
* An inactive schedule (``active: false``) has no slots.
"""

from __future__ import annotations

import re
import threading
import zoneinfo
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from croniter import CroniterError, croniter
from dateutil.rrule import rrulestr

MAX_SLOTS = 1000  # per schedule and window: a guard against a runaway rule, not a policy
DEFAULT_ANCHOR = datetime(2020, 1, 1)  # Prefect's default DTSTART for rrules; our default interval anchor
_DAY = 86_400
# No time zone has ever moved its clocks by more than this at once; wall times this far outside the
# window are enough to find every slot a DST gap shifts into it.
_DST_MARGIN = timedelta(hours=3)


class ScheduleError(ValueError):
    """A schedule body this module cannot evaluate (named by slug; the rest of the deployment runs)."""


@dataclass(frozen=True)
class Slot:
    """One due firing of one schedule."""

    deployment: str  # "flow/name"
    slug: str
    at: datetime  # aware, UTC
    parameters: Mapping[str, Any] = field(default_factory=dict)  # the schedule's parameter overrides

    @property
    def key(self) -> str:
        return slot_key(self.deployment, self.slug, self.at)

    @property
    def reason(self) -> str:
        return f"schedule: {self.slug}"


def slot_key(deployment: str, slug: str, at: datetime) -> str:
    """The idempotency key of a slot: the same for every process that ever computes it."""
    return f"schedule:{deployment}:{slug}:{iso_utc(at)}"


def iso_utc(at: datetime) -> str:
    """``2024-03-31T01:30:00Z`` (microseconds only when there are some)."""
    at = at.astimezone(UTC)
    text = at.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{at.microsecond:06d}Z" if at.microsecond else f"{text}Z"


def is_active(body: Mapping[str, Any]) -> bool:
    """``active`` as written (a bool, or the string a templated value resolved to)."""
    active = body.get("active", True)
    if isinstance(active, str):
        return active.strip().lower() in ("true", "yes", "on", "1")
    return bool(active)


def schedule_slots(
    deployment: str,
    slug: str,
    body: Mapping[str, Any],
    *,
    after: datetime,
    until: datetime,
    limit: int = MAX_SLOTS,
) -> list[Slot]:
    """The slots of one schedule inside ``(after, until]``."""
    _check_aware(after, "after")
    _check_aware(until, "until")
    if not is_active(body) or until <= after:
        return []
    try:
        times = fire_times(body, after=after, until=until, limit=limit)
    except ScheduleError as exc:
        raise ScheduleError(f"schedule {slug!r} of {deployment}: {exc}") from None
    parameters = dict(body.get("parameters") or {})
    return [Slot(deployment, slug, at, parameters) for at in times]


def fire_times(
    body: Mapping[str, Any], *, after: datetime, until: datetime, limit: int = MAX_SLOTS
) -> list[datetime]:
    """The instants (UTC) one schedule fires inside ``(after, until]``, ignoring ``active``."""
    tz = _zone(body.get("timezone"))
    if body.get("cron") is not None:
        walls = _cron_walls(body, tz, after, until)
        return _place(walls, tz, after=after, until=until, limit=limit)
    if body.get("interval") is not None:
        return _interval_times(body, tz, after=after, until=until, limit=limit)
    if body.get("rrule") is not None:
        walls = _rrule_walls(body, tz, after, until)
        return _place(walls, tz, after=after, until=until, limit=limit)
    raise ScheduleError("needs one of cron, interval or rrule")


# -- wall-clock schedules (cron, rrule) ------------------------------------------------------------


def _place(
    walls: Iterable[datetime], tz: tzinfo, *, after: datetime, until: datetime, limit: int
) -> list[datetime]:
    """Wall times (ascending) to distinct instants inside the window.

    A wall time maps to its first occurrence, or past a gap; so a later wall time's instant is never
    more than one DST jump (< ``_DST_MARGIN``) before an earlier one's, which bounds the scan.
    """
    found: set[datetime] = set()
    stop = until + _DST_MARGIN
    for wall in walls:
        instant = local_instant(wall, tz)
        if instant > stop:
            break
        if after < instant <= until:
            found.add(instant)
            if len(found) >= limit:
                break
    return sorted(found)


def local_instant(wall: datetime, tz: tzinfo) -> datetime:
    """A naive wall time in ``tz`` as a UTC instant: first occurrence, gaps shifted forward (PEP 495 fold=0)."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _wall_bounds(tz: tzinfo, after: datetime, until: datetime) -> tuple[datetime, datetime]:
    """Naive wall times to scan from and to: every wall time whose instant is in the window.

    A wall time is its instant plus the UTC offset in force there (for a time in a DST gap: the
    offset before the gap), so the smallest and largest offsets around the window bound it. Away
    from a DST change both are the same and the bounds are the window itself.
    """
    points = (after - _DST_MARGIN, after, until, until + _DST_MARGIN)
    offsets = [p.astimezone(tz).utcoffset() or timedelta(0) for p in points]
    start = (after.astimezone(UTC) + min(offsets)).replace(tzinfo=None)
    end = (until.astimezone(UTC) + max(offsets)).replace(tzinfo=None)
    return start, end


def _cron_walls(body: Mapping[str, Any], tz: tzinfo, after: datetime, until: datetime) -> Iterator[datetime]:
    expression = str(body["cron"])
    day_or = body.get("day_or")
    start, end = _wall_bounds(tz, after, until)
    try:
        # croniter on naive times: plain wall-clock arithmetic, DST is handled by local_instant.
        cron = _parsed_cron(expression, True if day_or is None else bool(day_or))
        cron.set_current(start, force=True)
    except (ValueError, KeyError, TypeError) as exc:
        raise ScheduleError(f"invalid cron expression {expression!r}: {exc}") from None
    while True:
        try:
            wall = cron.get_next(datetime)
        except CroniterError as exc:  # e.g. "0 0 30 2 *": no such date within croniter's search
            raise ScheduleError(f"cron expression {expression!r} never fires: {exc}") from None
        yield wall
        if wall > end:
            return


_CRONS = threading.local()


def _parsed_cron(expression: str, day_or: bool) -> croniter:
    """A croniter per expression and thread, reused: parsing costs four times a step (~180 us), and
    a serve pass asks the same few expressions for every deployment."""
    cache: dict[tuple[str, bool], croniter] = _CRONS.__dict__.setdefault("cache", {})
    key = (expression, day_or)
    if key not in cache:
        if len(cache) > 1024:
            cache.clear()
        cache[key] = croniter(expression, DEFAULT_ANCHOR, day_or=day_or)
    return cache[key]


def _rrule_walls(body: Mapping[str, Any], tz: tzinfo, after: datetime, until: datetime) -> Iterator[datetime]:
    text = str(body["rrule"])
    start, end = _wall_bounds(tz, after, until)
    try:
        rule = rrulestr(text, dtstart=_fast_forward(text, start), forceset=True, ignoretz=True, cache=False)
    except (ValueError, TypeError) as exc:
        raise ScheduleError(f"invalid rrule {text!r}: {exc}") from None
    for wall in rule.xafter(start, inc=True):
        yield wall.replace(tzinfo=None)
        if wall.replace(tzinfo=None) > end:
            return


_PERIODS = {"SECONDLY": 1, "MINUTELY": 60, "HOURLY": 3600, "DAILY": _DAY, "WEEKLY": 7 * _DAY}
_RULE_PART = re.compile(r"(?:^|;)(FREQ|INTERVAL)=([A-Z0-9]+)")


def _fast_forward(text: str, start: datetime) -> datetime:
    """A DTSTART close before ``start`` that gives the same occurrences after it as 2020-01-01 does.

    dateutil iterates from DTSTART, so a minutely rule would walk millions of minutes since 2020 on
    every pass. For a lone ``RRULE`` (no DTSTART of its own, no COUNT, no sets) with a fixed-length
    period, moving DTSTART forward by whole periods keeps every later occurrence (the BY* parts
    select within a period). Anything else starts from 2020, as Prefect does.
    """
    rule = text.strip().upper().removeprefix("RRULE:")
    if any(c in rule for c in ("\n", ":", "COUNT=", "DTSTART")):
        return DEFAULT_ANCHOR
    parts = dict(_RULE_PART.findall(rule))
    unit = _PERIODS.get(parts.get("FREQ", ""))
    if unit is None or not parts.get("INTERVAL", "1").isdigit():
        return DEFAULT_ANCHOR
    period = timedelta(seconds=unit * max(int(parts.get("INTERVAL", "1")), 1))
    periods = (start - DEFAULT_ANCHOR) // period - 1
    return DEFAULT_ANCHOR + period * max(periods, 0)


# -- interval ----------------------------------------------------------------------------------------


def _interval_times(
    body: Mapping[str, Any], tz: tzinfo, *, after: datetime, until: datetime, limit: int
) -> list[datetime]:
    try:
        seconds = float(body["interval"])
    except (TypeError, ValueError):
        raise ScheduleError(f"interval must be a number of seconds, got {body['interval']!r}") from None
    if not seconds > 0:
        raise ScheduleError(f"interval must be positive, got {seconds:g}")
    anchor = _anchor(body.get("anchor_date"), tz)
    step = timedelta(seconds=seconds)
    if step < timedelta(microseconds=1):
        raise ScheduleError(f"interval {seconds!r} s is too small")
    if seconds % _DAY == 0:
        return _calendar_days(anchor, int(seconds // _DAY), tz, after=after, until=until, limit=limit)
    anchor = anchor.astimezone(UTC)  # elapsed time: aware arithmetic in a zone would add wall time
    times: list[datetime] = []
    k = (after - anchor) // step + 1  # first k with anchor + k*step > after
    while len(times) < limit:
        at = anchor + step * k
        if at > until:
            break
        times.append(at)
        k += 1
    return times


def _calendar_days(
    anchor: datetime, days: int, tz: tzinfo, *, after: datetime, until: datetime, limit: int
) -> list[datetime]:
    """Every ``days`` calendar days at the anchor's wall time (each day placed on its own)."""
    wall = anchor.astimezone(tz).replace(tzinfo=None)
    step = timedelta(days=days)
    k = (after - anchor) // step - 1  # a step early: DST may move the wall time's instant by an hour
    times: list[datetime] = []
    while len(times) < limit:
        at = local_instant(wall + step * k, tz)
        if at > until:
            break
        if at > after:
            times.append(at)
        k += 1
    return times


def _anchor(value: Any, tz: tzinfo) -> datetime:
    if value is None:
        return DEFAULT_ANCHOR.replace(tzinfo=tz)
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ScheduleError(f"anchor_date {value!r} is not an ISO 8601 date-time") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz, fold=0)


# -- helpers ------------------------------------------------------------------------------------------


def _zone(name: Any) -> tzinfo:
    if name in (None, "", "UTC"):
        return UTC
    try:
        return zoneinfo.ZoneInfo(str(name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r}") from None


def _check_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware")
