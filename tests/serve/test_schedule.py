"""Due slots of cron, interval and rrule schedules: DST-correct, and never a duplicate or a gap."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.serve import schedule

BERLIN = ZoneInfo("Europe/Berlin")
SPRING = datetime(2024, 3, 31, tzinfo=BERLIN)  # 02:00 CET -> 03:00 CEST
FALL = datetime(2024, 10, 27, tzinfo=BERLIN)  # 03:00 CEST -> 02:00 CET


def cron(expression: str, tz: str = "Europe/Berlin", **extra: object) -> dict[str, object]:
    return {"cron": expression, "timezone": tz, "day_or": True, "active": True, "parameters": {}, **extra}


def local(times: list[datetime]) -> list[str]:
    return [t.astimezone(BERLIN).strftime("%m-%d %H:%M%z") for t in times]


def window(day: datetime, *, days: int = 1) -> dict[str, datetime]:
    """The local calendar day(s) from ``day``: midnight included, the next midnight not."""
    return {
        "after": day.astimezone(UTC) - timedelta(seconds=1),
        "until": (day + timedelta(days=days)).astimezone(UTC) - timedelta(seconds=1),
    }


def test_daily_cron_keeps_its_local_time_and_fires_once_on_both_dst_days() -> None:
    body = cron("30 2 * * *")
    spring = schedule.fire_times(
        body, after=datetime(2024, 3, 29, tzinfo=UTC), until=datetime(2024, 4, 2, tzinfo=UTC)
    )
    # 02:30 does not exist on the 31st: shifted forward by the gap, never dropped
    assert local(spring) == ["03-29 02:30+0100", "03-30 02:30+0100", "03-31 03:30+0200", "04-01 02:30+0200"]
    fall = schedule.fire_times(
        body, after=datetime(2024, 10, 26, tzinfo=UTC), until=datetime(2024, 10, 29, tzinfo=UTC)
    )
    # 02:30 happens twice on the 27th: one slot, at the first occurrence
    assert local(fall) == ["10-26 02:30+0200", "10-27 02:30+0200", "10-28 02:30+0100"]


def test_hourly_cron_on_the_spring_forward_day_has_one_slot_per_real_hour() -> None:
    times = schedule.fire_times(cron("0 * * * *"), **window(SPRING))
    assert len(times) == 23 == len(set(times))
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(times))


def test_hourly_cron_on_the_fall_back_day_fires_each_wall_hour_once() -> None:
    """Prefect's rule: every new schedule hour, not every elapsed hour (the repeated 02:00 is skipped)."""
    times = schedule.fire_times(cron("0 * * * *"), **window(FALL))
    assert len(times) == 24 == len(set(times))
    hours = [t.astimezone(BERLIN).hour for t in times]
    assert hours == list(range(24))
    assert times[3] - times[2] == timedelta(hours=2)  # 02:00 CEST -> 03:00 CET


def test_quarter_hour_cron_through_the_gap_has_no_duplicates() -> None:
    times = schedule.fire_times(cron("*/15 * * * *"), **window(SPRING))
    assert len(times) == 23 * 4 == len(set(times))


@pytest.mark.parametrize("expression", ["30 2 * * *", "0 * * * *", "*/20 1-3 * * *", "15 2,3 * * 0"])
@pytest.mark.parametrize("day", [SPRING, FALL])
def test_windows_split_anywhere_give_the_same_slots(expression: str, day: datetime) -> None:
    """A pass boundary never drops or repeats a slot, even inside the gap or the repeated hour."""
    body = cron(expression)
    start, end = day.astimezone(UTC) - timedelta(hours=2), day.astimezone(UTC) + timedelta(hours=30)
    whole = schedule.fire_times(body, after=start, until=end)
    for step in (timedelta(minutes=7), timedelta(minutes=60), timedelta(minutes=95)):
        pieces: list[datetime] = []
        cursor = start
        while cursor < end:
            nxt = min(cursor + step, end)
            pieces += schedule.fire_times(body, after=cursor, until=nxt)
            cursor = nxt
        assert pieces == whole


BODIES = st.one_of(
    st.builds(
        lambda m, h, tz: cron(f"{m} {h} * * *", tz),
        st.sampled_from(["0", "*/10", "5,35", "59"]),
        st.sampled_from(["*", "1-3", "2", "*/3", "0,2,23"]),
        st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC", "Asia/Tehran"]),
    ),
    st.builds(
        lambda seconds, minute, tz: {
            "interval": seconds,
            "anchor_date": f"2024-01-01T01:{minute:02d}:00",
            "timezone": tz,
            "active": True,
            "parameters": {},
        },
        st.sampled_from([600, 3600, 5400, 86400, 172800]),
        st.integers(0, 59),
        st.sampled_from(["Europe/Berlin", "America/New_York", "UTC"]),
    ),
    st.builds(
        lambda rule, tz: {"rrule": rule, "timezone": tz, "active": True, "parameters": {}},
        st.sampled_from(
            ["FREQ=HOURLY;INTERVAL=2", "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "FREQ=MINUTELY;INTERVAL=45"]
        ),
        st.sampled_from(["Europe/Berlin", "America/New_York", "UTC"]),
    ),
)


@settings(max_examples=60, deadline=None)
@given(
    body=BODIES,
    start=st.datetimes(datetime(2024, 3, 8), datetime(2024, 11, 5)).map(lambda d: d.replace(tzinfo=UTC)),
    cuts=st.lists(st.integers(1, 36 * 60), min_size=1, max_size=6),
)
def test_property_consecutive_windows_partition_the_slots(
    body: dict[str, object], start: datetime, cuts: list[int]
) -> None:
    points = [start]
    for minutes in sorted(cuts):
        points.append(start + timedelta(minutes=minutes))
    whole = schedule.fire_times(body, after=points[0], until=points[-1])
    pieces = [t for a, b in itertools.pairwise(points) for t in schedule.fire_times(body, after=a, until=b)]
    assert pieces == whole
    assert len(set(whole)) == len(whole)
    assert all(points[0] < t <= points[-1] for t in whole)


@settings(max_examples=40, deadline=None)
@given(
    minute=st.sampled_from(["0", "*/15", "30", "5,50"]),
    hour=st.sampled_from(["*", "2", "1-3", "*/2", "23"]),
    tz=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"]),
    start=st.datetimes(datetime(2024, 3, 8), datetime(2024, 11, 4)).map(
        lambda d: d.replace(second=0, tzinfo=UTC)
    ),
    hours=st.integers(1, 72),
)
def test_property_cron_matches_prefects_own_scheduler(
    minute: str, hour: str, tz: str, start: datetime, hours: int
) -> None:
    """The same instants Prefect's server schedules (its CronSchedule is the reference)."""
    from prefect.server.schemas.schedules import CronSchedule

    expression = f"{minute} {hour} * * *"
    end = start + timedelta(hours=hours)
    theirs = CronSchedule(cron=expression, timezone=tz)._get_dates_generator(
        start=start + timedelta(seconds=1), end=end
    )
    ours = schedule.fire_times(cron(expression, tz), after=start, until=end)
    assert ours == sorted(t.astimezone(UTC) for t in theirs)


def test_interval_counts_from_the_anchor_in_elapsed_time() -> None:
    body = {"interval": 3600, "anchor_date": "2024-03-31T00:15:00+01:00", "timezone": "Europe/Berlin"}
    times = schedule.fire_times(body, **window(SPRING))
    assert len(times) == 23  # one per elapsed hour on a 23-hour day
    assert {t.minute for t in times} == {15}


def test_daily_interval_keeps_the_anchor_wall_time_across_dst() -> None:
    body = {"interval": 86400, "anchor_date": "2024-01-01T09:00:00", "timezone": "Europe/Berlin"}
    times = schedule.fire_times(
        body, after=datetime(2024, 3, 29, tzinfo=UTC), until=datetime(2024, 4, 2, tzinfo=UTC)
    )
    assert local(times) == ["03-29 09:00+0100", "03-30 09:00+0100", "03-31 09:00+0200", "04-01 09:00+0200"]


def test_interval_without_anchor_counts_from_2020_in_its_timezone() -> None:
    body = {"interval": 5400, "anchor_date": None, "timezone": "UTC"}
    times = schedule.fire_times(
        body, after=datetime(2024, 5, 1, tzinfo=UTC), until=datetime(2024, 5, 1, 6, tzinfo=UTC)
    )
    first = datetime(2020, 1, 1, tzinfo=UTC)
    assert times and all((t - first) % timedelta(seconds=5400) == timedelta(0) for t in times)


def test_rrule_runs_on_wall_times_of_its_timezone() -> None:
    body = {"rrule": "FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9;BYMINUTE=0", "timezone": "Europe/Berlin"}
    times = schedule.fire_times(
        body, after=datetime(2024, 3, 24, tzinfo=UTC), until=datetime(2024, 4, 4, tzinfo=UTC)
    )
    assert local(times) == ["03-25 09:00+0100", "03-27 09:00+0100", "04-01 09:00+0200", "04-03 09:00+0200"]


@pytest.mark.parametrize("active", [False, "false", "False"])
def test_inactive_schedules_have_no_slots(active: object) -> None:
    body = cron("* * * * *", active=active)
    assert schedule.schedule_slots("f/d", "s", body, after=SPRING, until=SPRING + timedelta(hours=1)) == []


def test_slot_keys_name_deployment_slug_and_utc_instant() -> None:
    window = {"after": datetime(2024, 6, 1, tzinfo=UTC), "until": datetime(2024, 6, 2, tzinfo=UTC)}
    slots = [
        *schedule.schedule_slots("etl/daily", "morning", cron("0 6 * * *", parameters={"rows": 5}), **window),
        *schedule.schedule_slots("etl/daily", "evening", cron("0 18 * * *"), **window),
    ]
    assert [s.key for s in slots] == [
        "schedule:etl/daily:morning:2024-06-01T04:00:00Z",
        "schedule:etl/daily:evening:2024-06-01T16:00:00Z",
    ]
    assert slots[0].parameters == {"rows": 5} and slots[0].reason == "schedule: morning"


def test_bad_schedules_raise_a_named_error() -> None:
    with pytest.raises(schedule.ScheduleError, match=r"'feb' of f/d.*never fires"):
        schedule.schedule_slots(
            "f/d", "feb", cron("0 0 30 2 *", "UTC"), after=SPRING, until=SPRING + timedelta(days=400)
        )
    with pytest.raises(schedule.ScheduleError, match="unknown time zone"):
        schedule.fire_times(cron("* * * * *", "Mars/Base"), after=SPRING, until=SPRING + timedelta(hours=1))


def test_naive_window_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.schedule_slots(
            "f/d", "s", cron("* * * * *"), after=datetime(2024, 1, 1), until=datetime(2024, 1, 2)
        )


@settings(max_examples=50, deadline=None)
@given(
    rule=st.sampled_from(
        [
            "FREQ=MINUTELY;INTERVAL=45",
            "FREQ=MINUTELY;INTERVAL=7;BYHOUR=2,3",
            "FREQ=HOURLY;INTERVAL=5",
            "FREQ=DAILY;INTERVAL=3;BYHOUR=2,14;BYMINUTE=30",
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SU;BYHOUR=2",
            "FREQ=MONTHLY;BYMONTHDAY=-1;BYHOUR=2",
            "FREQ=DAILY;COUNT=500",
        ]
    ),
    tz=st.sampled_from(["Europe/Berlin", "America/New_York", "UTC"]),
    start=st.datetimes(datetime(2020, 3, 1), datetime(2021, 11, 30)).map(lambda d: d.replace(tzinfo=UTC)),
    hours=st.integers(1, 24 * 20),
)
def test_property_rrule_fast_forward_keeps_the_occurrences_of_dtstart_2020(
    rule: str, tz: str, start: datetime, hours: int
) -> None:
    """Starting dateutil near the window (not in 2020) is only a speed-up: same instants."""
    from dateutil.rrule import rrulestr

    zone = ZoneInfo(tz) if tz != "UTC" else UTC
    end = start + timedelta(hours=hours)
    full = rrulestr(rule, dtstart=schedule.DEFAULT_ANCHOR)
    walls = full.between(schedule.DEFAULT_ANCHOR, end.replace(tzinfo=None) + timedelta(days=1), inc=True)
    expected = sorted({i for w in walls if start < (i := schedule.local_instant(w, zone)) <= end})
    assert schedule.fire_times({"rrule": rule, "timezone": tz}, after=start, until=end) == expected


def test_a_minutely_rrule_years_after_its_2020_start() -> None:
    """Without the fast-forward this walks ~5 million minutes from 2020 (about 15 s)."""
    times = schedule.fire_times(
        {"rrule": "FREQ=MINUTELY", "timezone": "UTC"},
        after=datetime(2030, 1, 1, tzinfo=UTC),
        until=datetime(2030, 1, 1, 0, 10, tzinfo=UTC),
    )
    assert len(times) == 10
