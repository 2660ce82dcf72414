from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intunedd.policy.durations import DurationError, parse_duration_ms
from intunedd.policy.schedule import ScheduleError, jitter_for, next_fire, parse_schedule


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "ms"),
    [("30m", 1_800_000), ("1h", 3_600_000), ("7d", 604_800_000), ("1.5h", 5_400_000), ("500ms", 500),
     ("10 seconds", 10_000), (60000, 60000), ("2500", 2500), ("1w", 604_800_000)],
)  # fmt: skip
def test_durations(raw: object, ms: int) -> None:
    assert parse_duration_ms(raw) == ms


@pytest.mark.parametrize("raw", ["soon", "5 fortnights", -1, True, None, [], "1h30m"])
def test_bad_durations(raw: object) -> None:
    with pytest.raises(DurationError):
        parse_duration_ms(raw)


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ({"intervals": [{"every": "1h"}]}, utc(2026, 1, 1, 10, 30), utc(2026, 1, 1, 11)),
        ({"intervals": [{"every": "1h"}]}, utc(2026, 1, 1, 11), utc(2026, 1, 1, 12)),
        ({"intervals": [{"every": "1h", "offset": "15m"}]}, utc(2026, 1, 1, 10, 30), utc(2026, 1, 1, 11, 15)),
        ({"intervals": [{"every": 30000}]}, utc(2026, 1, 1, 10, 0, 10), utc(2026, 1, 1, 10, 0, 30)),
        ({"calendars": [{"hour": 9}]}, utc(2026, 1, 1, 10), utc(2026, 1, 2, 9)),
        ({"calendars": [{"hour": 9, "minute": 30}]}, utc(2026, 1, 1, 9, 29, 59), utc(2026, 1, 1, 9, 30)),
        # 2026-01-03 is a Saturday: the next weekday 09:00 is Monday the 5th.
        (
            {"calendars": [{"hour": 9, "dayOfWeek": {"start": "MONDAY", "end": "FRIDAY"}}]},
            utc(2026, 1, 2, 10),
            utc(2026, 1, 5, 9),
        ),
        ({"calendars": [{"dayOfMonth": 31, "month": ["FEB", "APRIL"]}]}, utc(2026, 1, 1), None),
        ({"calendars": [{"dayOfMonth": 29, "month": "FEBRUARY"}]}, utc(2026, 3, 1), utc(2028, 2, 29)),
        ({"calendars": [{"minute": {"start": 0, "end": 59, "step": 15}, "hour": "*"}]}, utc(2026, 1, 1, 0, 20),
         utc(2026, 1, 1, 0, 30)),
        ({"calendars": [{"second": "*", "minute": "*", "hour": "*"}]}, utc(2026, 1, 1), utc(2026, 1, 1, 0, 0, 1)),
        ({"calendars": [{"year": 2025}]}, utc(2026, 1, 1), None),
        ({"intervals": [{"every": "1d"}], "calendars": [{"hour": 6}]}, utc(2026, 1, 1, 1), utc(2026, 1, 1, 6)),
        # Europe/Paris is UTC+1 in January: 09:00 local is 08:00 UTC.
        ({"calendars": [{"hour": 9}], "timezone": "Europe/Paris"}, utc(2026, 1, 1, 9), utc(2026, 1, 2, 8)),
    ],
)  # fmt: skip
def test_next_fire(schedule: dict, after: datetime, expected: datetime | None) -> None:  # type: ignore[type-arg]
    assert next_fire(parse_schedule(schedule), after) == expected


def test_dst_gap_is_skipped_and_repeat_fires_once() -> None:
    paris = {"calendars": [{"hour": 2, "minute": 30}], "timezone": "Europe/Paris"}
    # 2026-03-29 02:30 does not exist in Paris (clocks jump 02:00 -> 03:00).
    assert next_fire(parse_schedule(paris), utc(2026, 3, 28, 12)) == utc(2026, 3, 30, 0, 30)
    # 2026-10-25 02:30 happens twice; it fires at the first (00:30 UTC), then the next day.
    first = next_fire(parse_schedule(paris), utc(2026, 10, 24, 12))
    assert first == utc(2026, 10, 25, 0, 30)
    assert next_fire(parse_schedule(paris), first) == utc(2026, 10, 26, 1, 30)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({}, "schedule"),
        ({"intervals": [{"every": "soon"}]}, "schedule.intervals[0].every"),
        ({"intervals": [{"every": 10}]}, "schedule.intervals[0].every"),
        ({"calendars": [{"hour": 24}]}, "schedule.calendars[0].hour"),
        ({"calendars": [{"month": "SMARCH"}]}, "schedule.calendars[0].month"),
        ({"calendars": [{"minute": {"start": 10, "end": 5}}]}, "schedule.calendars[0].minute"),
        ({"calendars": [{"minute": {"start": 1, "step": 0}}]}, "schedule.calendars[0].minute.step"),
        ({"calendars": [{"hours": 3}]}, "schedule.calendars[0].hours"),
        ({"calendars": [{"hour": 3}], "timezone": "Mars/Olympus"}, "schedule.timezone"),
        ({"intervals": [{"every": "1h"}], "jitter": "lots"}, "schedule.jitter"),
        ({"cron": "* * * * *"}, "schedule.cron"),
    ],
)
def test_bad_schedules_name_the_field(raw: object, field: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(raw)
    assert caught.value.field == field


def test_jitter_is_bounded_and_stable() -> None:
    schedule = parse_schedule({"intervals": [{"every": "1h"}], "jitter": "5m"})
    slot = utc(2026, 1, 1, 10)
    delay = jitter_for(schedule, slot, "job-a")
    assert timedelta(0) <= delay < timedelta(minutes=5)
    assert jitter_for(schedule, slot, "job-a") == delay
    assert jitter_for(parse_schedule({"intervals": [{"every": "1h"}]}), slot, "job-a") == timedelta(0)


# -- properties ---------------------------------------------------------------------------

moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC))


def _values(low: int, high: int) -> st.SearchStrategy[object]:
    single = st.integers(low, high)
    ranged = st.tuples(st.integers(low, high), st.integers(0, high - low), st.integers(1, 5)).map(
        lambda t: {"start": t[0], "end": min(high, t[0] + t[1]), "step": t[2]}
    )
    return st.one_of(st.just("*"), single, ranged, st.lists(st.one_of(single, ranged), min_size=1, max_size=3))


calendars = st.fixed_dictionaries(
    {},
    optional={
        "second": _values(0, 59),
        "minute": _values(0, 59),
        "hour": _values(0, 23),
        "dayOfMonth": _values(1, 31),
        "month": _values(1, 12),
        "dayOfWeek": _values(0, 6),
    },
)


def _matches(schedule_raw: dict, moment: datetime) -> bool:  # type: ignore[type-arg]
    calendar = parse_schedule(schedule_raw).calendars[0]
    return (
        moment.second in calendar.second
        and moment.minute in calendar.minute
        and moment.hour in calendar.hour
        and moment.day in calendar.day_of_month
        and moment.month in calendar.month
        and (moment.weekday() + 1) % 7 in calendar.day_of_week
    )


@given(calendar=calendars, after=moments)
@settings(max_examples=300, deadline=None)
def test_next_fire_is_later_and_matches(calendar: dict, after: datetime) -> None:  # type: ignore[type-arg]
    raw = {"calendars": [calendar]}
    fire = next_fire(parse_schedule(raw), after)
    if fire is not None:
        assert fire > after
        assert fire.microsecond == 0
        assert _matches(raw, fire)


@given(every=st.integers(1000, 10**9), offset=st.integers(0, 10**9), after=moments)
def test_intervals_are_epoch_aligned_and_next(every: int, offset: int, after: datetime) -> None:
    fire = next_fire(parse_schedule({"intervals": [{"every": every, "offset": offset}]}), after)
    assert fire is not None
    ms = (fire - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    assert (ms - offset % every) % every == 0
    assert timedelta(0) < fire - after <= timedelta(milliseconds=every)


@given(
    second=_values(0, 59),
    minute=_values(0, 59),
    start=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)),
)
@settings(max_examples=40, deadline=None)
def test_no_firing_skipped_or_doubled_over_an_hour(second: object, minute: object, start: datetime) -> None:
    raw = {"calendars": [{"second": second, "minute": minute, "hour": "*"}]}
    schedule = parse_schedule(raw)
    start = start.replace(microsecond=0)
    end = start + timedelta(hours=1)
    expected = [start + timedelta(seconds=s) for s in range(1, 3601) if _matches(raw, start + timedelta(seconds=s))]
    fired, at = [], start
    while (at := next_fire(schedule, at)) is not None and at <= end:  # type: ignore[assignment]
        fired.append(at)
    assert fired == expected


@given(after=moments)
@settings(max_examples=100, deadline=None)
def test_time_zone_calendars_fire_at_local_time(after: datetime) -> None:
    zone = ZoneInfo("America/New_York")
    fire = next_fire(parse_schedule({"calendars": [{"hour": 9, "minute": 15}], "timezone": "America/New_York"}), after)
    assert fire is not None
    local = fire.astimezone(zone)
    assert (local.hour, local.minute, local.second) == (9, 15, 0)
    assert fire - after <= timedelta(days=1, hours=1)


def test_latest_missed_and_catch_up() -> None:
    from intunedd.policy.schedule import catch_up, latest_missed

    hourly = parse_schedule({"intervals": [{"every": "1h"}]})
    assert latest_missed(hourly, utc(2026, 1, 1, 9, 30), utc(2026, 1, 1, 12, 10)) == utc(2026, 1, 1, 12)
    assert latest_missed(hourly, utc(2026, 1, 1, 12, 0), utc(2026, 1, 1, 12, 10)) is None
    dense = parse_schedule({"intervals": [{"every": "1s"}]})
    assert latest_missed(dense, utc(2026, 1, 1), utc(2026, 1, 9)) == utc(2026, 1, 9)
    now = utc(2026, 1, 1, 12, 10)
    assert catch_up(utc(2026, 1, 1, 12), now, None) is True
    assert catch_up(utc(2026, 1, 1, 12), now, 300) is False
    assert catch_up(utc(2026, 1, 1, 12), now, 3600) is True
    assert catch_up(utc(2026, 1, 1, 12), now, 0) is False
    assert catch_up(None, now, None) is False


# -- bounds: what passes validation can always be planned ------------------------------------


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"intervals": [{"every": "10000y"}]}, "schedule.intervals[0].every"),
        ({"intervals": [{"every": "11y"}]}, "schedule.intervals[0].every"),
        ({"intervals": [{"every": 10**30}]}, "schedule.intervals[0].every"),
        ({"intervals": [{"every": "9" * 400 + "d"}]}, "schedule.intervals[0].every"),
        ({"intervals": [{"every": "1h", "offset": "20y"}]}, "schedule.intervals[0].offset"),
        ({"intervals": [{"every": "1h"}], "jitter": "2d"}, "schedule.jitter"),
        ({"calendars": [{"hour": "1" * 4400}]}, "schedule.calendars[0].hour"),
        ({"calendars": [{"hour": "²"}]}, "schedule.calendars[0].hour"),
        ({"calendars": [{"year": {"start": 2026, "end": "9" * 4400}}]}, "schedule.calendars[0].year.end"),
        ({"calendars": [{"minute": list(range(60)) * 10}]}, "schedule.calendars[0].minute"),
        ({"calendars": [{"hour": 1}] * 101}, "schedule.calendars"),
        ({"intervals": [{"every": "1h"}] * 101}, "schedule.intervals"),
        ({"intervals": [{"every": "1h"}], "timezone": "x" * 5000}, "schedule.timezone"),
    ],
)
def test_out_of_range_schedules_are_refused(raw: object, field: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(raw)
    assert caught.value.field == field
    assert len(str(caught.value)) < 200  # the input is echoed cut short, not 4,400 digits of it


def test_the_longest_interval_and_jitter_are_accepted() -> None:
    schedule = parse_schedule({"intervals": [{"every": "10y", "offset": "10y"}], "jitter": "1d"})
    assert next_fire(schedule, utc(2026, 1, 1)) is not None


durations = st.one_of(
    st.integers(0, 10 * 31_557_600_000),
    st.builds(lambda n, u: f"{n}{u}", st.integers(0, 4000), st.sampled_from(["ms", "s", "m", "h", "d", "w", "y"])),
)
any_values = st.one_of(st.integers(-5, 10_000), st.text(max_size=8), _values(0, 59), _values(1970, 2300))
wild_calendars = st.dictionaries(
    st.sampled_from(["second", "minute", "hour", "dayOfMonth", "month", "dayOfWeek", "year"]), any_values, max_size=7
)
wild_schedules = st.fixed_dictionaries(
    {},
    optional={
        "intervals": st.lists(st.fixed_dictionaries({"every": durations}, optional={"offset": durations}), max_size=3),
        "calendars": st.lists(wild_calendars, max_size=2),
        "jitter": durations,
        "timezone": st.sampled_from(["UTC", "Europe/Paris", "Pacific/Kiritimati", "America/St_Johns"]),
    },
)
any_moment = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC))


@given(raw=wild_schedules, after=any_moment, now=any_moment)
@settings(max_examples=400, deadline=None)
def test_a_valid_schedule_never_raises_when_planned(raw: dict, after: datetime, now: datetime) -> None:  # type: ignore[type-arg]
    try:
        schedule = parse_schedule(raw)
    except ScheduleError:
        return
    fire = next_fire(schedule, after)
    assert fire is None or fire > after
    from intunedd.policy.schedule import latest_missed

    missed = latest_missed(schedule, after, now)
    assert missed is None or after < missed <= now
    assert timedelta(0) <= jitter_for(schedule, fire or after, "k") <= timedelta(days=1)
