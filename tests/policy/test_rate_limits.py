from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intunedd.errors import BadRequest
from intunedd.policy.rate_limits import (
    PauseSchedule,
    RandomWait,
    RateLimit,
    RateLimitConfig,
    Wait,
    draw_random_wait,
    earliest_admission,
    next_start,
    parse_config,
    pause_until,
    prune,
)

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday
MINUTE = timedelta(minutes=1)
US = timedelta(microseconds=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def _admit_greedily(limits: tuple[RateLimit, ...], count: int) -> list[datetime]:
    """A consumer that always has the next item ready and starts it as soon as it may."""
    history: list[datetime] = []
    for _ in range(count):
        history.append(earliest_admission(history, limits, history[-1] if history else T0))
    return history


# -- parsing ----------------------------------------------------------------------------


def test_parses_the_wire_shapes() -> None:
    config = parse_config(
        [{"limit": 10, "duration": "1h"}, {"limit": 2.0, "duration": 60000}],
        {"pause": "0 18 * * *", "resume": "0 8 * * 1-5", "timezone": "Europe/Paris"},
        {"min": "1s", "max": 2500},
    )
    assert config == RateLimitConfig(
        limits=(RateLimit(10, 3600.0), RateLimit(2, 60.0)),
        pause=PauseSchedule("0 18 * * *", "0 8 * * 1-5", "Europe/Paris"),
        random_wait=RandomWait(1.0, 2.5),
    )
    assert parse_config(None, None, None) == RateLimitConfig()
    assert parse_config([], None, None).limits == ()
    assert parse_config(None, {"pause": "@daily", "resume": "0 6 * * *"}, None).pause == PauseSchedule(
        "@daily", "0 6 * * *"
    )


@pytest.mark.parametrize(
    ("rate_limits", "schedule", "random_wait", "field"),
    [
        ({"limit": 1}, None, None, "configuration.rateLimits"),
        ([{"limit": 1, "duration": "1s"}] * 21, None, None, "configuration.rateLimits"),
        ([{"limit": 1, "duration": "1s"}, {"limit": 1, "duration": "soon"}], None, None,
         "configuration.rateLimits[1].duration"),
        ([{"limit": 0, "duration": "1s"}], None, None, "configuration.rateLimits[0].limit"),
        ([{"limit": 1.5, "duration": "1s"}], None, None, "configuration.rateLimits[0].limit"),
        ([{"limit": True, "duration": "1s"}], None, None, "configuration.rateLimits[0].limit"),
        ([{"limit": 1_000_001, "duration": "1s"}], None, None, "configuration.rateLimits[0].limit"),
        ([{"limit": 1, "duration": 0}], None, None, "configuration.rateLimits[0].duration"),
        ([{"limit": 1, "duration": "32d"}], None, None, "configuration.rateLimits[0].duration"),
        ([{"limit": 1}], None, None, "configuration.rateLimits[0].duration"),
        ([{"limit": 1, "duration": "1s", "burst": 2}], None, None, "configuration.rateLimits[0].burst"),
        ([7], None, None, "configuration.rateLimits[0]"),
        (None, {"pause": "0 18 * * *"}, None, "configuration.schedule.resume"),
        (None, "0 18 * * *", None, "configuration.schedule"),
        (None, {"pause": "0 18 * *", "resume": "0 8 * * *"}, None, "configuration.schedule.pause"),
        (None, {"pause": "0 18 * * *", "resume": "61 8 * * *"}, None, "configuration.schedule.resume"),
        (None, {"pause": "0 0 30 2 *", "resume": "0 8 * * *"}, None, "configuration.schedule.pause"),
        (None, {"pause": "H 18 * * *", "resume": "0 8 * * *"}, None, "configuration.schedule.pause"),
        (None, {"pause": "0 18 * * * 2030", "resume": "0 8 * * *"}, None, "configuration.schedule.pause"),
        (None, {"pause": "0 " * 100 + "*", "resume": "0 8 * * *"}, None, "configuration.schedule.pause"),
        (None, {"pause": 5, "resume": "0 8 * * *"}, None, "configuration.schedule.pause"),
        (None, {"pause": "0 18 * * *", "resume": "0 8 * * *", "timezone": "Mars/Olympus"}, None,
         "configuration.schedule.timezone"),
        (None, {"pause": "0 18 * * *", "resume": "0 8 * * *", "timezone": "America"}, None,
         "configuration.schedule.timezone"),
        (None, None, {"min": "2s", "max": "1s"}, "configuration.randomWait.min"),
        (None, None, {"min": "1s"}, "configuration.randomWait.max"),
        (None, None, {"min": 0, "max": "2d"}, "configuration.randomWait.max"),
        (None, None, {"min": -1, "max": 5}, "configuration.randomWait.min"),
        (None, None, [1, 2], "configuration.randomWait"),
    ],
)  # fmt: skip
def test_bad_input_names_the_field(rate_limits: Any, schedule: Any, random_wait: Any, field: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_config(rate_limits, schedule, random_wait)
    assert caught.value.details == {"field": field}
    assert field in caught.value.message


def test_field_prefix() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_config([{"limit": 0, "duration": "1s"}], None, None, field_prefix="item")
    assert caught.value.details == {"field": "item.rateLimits[0].limit"}


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=10),
       st.sampled_from(["rateLimits", "schedule", "randomWait"]))  # fmt: skip
def test_any_input_parses_or_is_a_bad_request(raw: Any, where: str) -> None:
    arguments = {"rateLimits": None, "schedule": None, "randomWait": None, where: raw}
    try:
        parse_config(arguments["rateLimits"], arguments["schedule"], arguments["randomWait"])
    except BadRequest as e:
        assert str(e.details["field"]).startswith(f"configuration.{where}")


# -- rate windows -----------------------------------------------------------------------


def test_ten_an_hour_and_two_a_minute() -> None:
    limits = parse_config([{"limit": 10, "duration": "1h"}, {"limit": 2, "duration": "1m"}], None, None).limits
    starts = _admit_greedily(limits, 12)
    minutes = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert starts[:10] == [T0 + m * MINUTE for m in minutes]
    assert starts[10] == T0 + timedelta(hours=1)  # the first of the hour has left its window
    assert starts[11] == T0 + timedelta(hours=1)  # ...and so has the second, at the same moment


def test_an_admission_counts_while_younger_than_the_window() -> None:
    limits = (RateLimit(1, 60.0),)
    assert earliest_admission([T0], limits, T0 + MINUTE - US) == T0 + MINUTE
    assert earliest_admission([T0], limits, T0 + MINUTE) == T0 + MINUTE
    assert earliest_admission([T0], limits, T0 + 2 * MINUTE) == T0 + 2 * MINUTE
    assert earliest_admission([], limits, T0) == T0
    assert earliest_admission([T0, T0], (), T0) == T0


def test_prune_keeps_what_a_window_can_see() -> None:
    history = [T0 + i * MINUTE for i in range(10)]
    limits = (RateLimit(3, 3600.0), RateLimit(1, 300.0))
    # At +9m: the 3 most recent count for 3/h; 1/5m needs only the latest.
    assert prune(history, limits, T0 + 9 * MINUTE) == history[-3:]
    # Two hours later nothing is inside any window.
    assert prune(history, limits, T0 + timedelta(hours=2)) == []
    assert prune(history, (), T0) == []


# -- pause windows ----------------------------------------------------------------------

NIGHTS = PauseSchedule(pause="0 18 * * *", resume="0 8 * * *")


@pytest.mark.parametrize(
    ("schedule", "now", "expected"),
    [
        (NIGHTS, utc(2026, 3, 2, 12), None),
        (NIGHTS, utc(2026, 3, 2, 18), utc(2026, 3, 3, 8)),  # paused from the fire itself
        (NIGHTS, utc(2026, 3, 2, 17, 59, 59), None),
        (NIGHTS, utc(2026, 3, 3, 7, 59), utc(2026, 3, 3, 8)),
        (NIGHTS, utc(2026, 3, 3, 8), None),  # resumed at the fire itself
        # Weekends off: paused Friday 18:00 until Monday 08:00 in Paris (UTC+1 in March before the 29th).
        (PauseSchedule("0 18 * * 5", "0 8 * * 1", "Europe/Paris"), utc(2026, 3, 7, 12), utc(2026, 3, 9, 7)),
        (PauseSchedule("0 18 * * 5", "0 8 * * 1", "Europe/Paris"), utc(2026, 3, 6, 16, 59), None),
        (PauseSchedule("0 18 * * 5", "0 8 * * 1", "Europe/Paris"), utc(2026, 3, 6, 17), utc(2026, 3, 9, 7)),
        # After the change to summer time Paris is UTC+2.
        (PauseSchedule("0 18 * * 5", "0 8 * * 1", "Europe/Paris"), utc(2026, 4, 4), utc(2026, 4, 6, 6)),
        # Both fire at once: not paused.
        (PauseSchedule("0 12 * * *", "0 12 * * *"), utc(2026, 3, 2, 13), None),
        # A pause that last fired more than a year ago no longer counts.
        (PauseSchedule("0 0 29 2 *", "0 0 30 2,4 *"), utc(2026, 3, 2), None),
        # At its own resume fire (a fifth Monday, 2031-03-31) the queue runs again: croniter once
        # found no earlier fire of this expression when asked to look back only two years.
        (PauseSchedule("* * L 2,4 *", "0,30 9-17 30 JAN-MAR 1#5"), utc(2031, 3, 31, 9), None),
        (PauseSchedule("* * L 2,4 *", "0,30 9-17 30 JAN-MAR 1#5"), utc(2031, 3, 1), utc(2031, 3, 31, 9)),
        # Feb 29 2028 paused, and nothing resumes until April 30th.
        (PauseSchedule("0 0 29 2 *", "0 0 30 4 *"), utc(2028, 3, 2), utc(2028, 4, 30)),
    ],
)
def test_pause_until(schedule: PauseSchedule, now: datetime, expected: datetime | None) -> None:
    assert pause_until(schedule, now) == expected


# -- combined ---------------------------------------------------------------------------


def test_next_start_gives_the_latest_constraint_and_its_reason() -> None:
    config = RateLimitConfig(limits=(RateLimit(1, 60.0),), pause=NIGHTS, random_wait=RandomWait(0, 120))
    noon = utc(2026, 3, 2, 12)
    assert next_start(config, [], None, None, noon) == Wait(at=noon, reason=None)
    assert next_start(config, [noon], None, None, noon) == Wait(at=noon + MINUTE, reason="rate_limit")
    assert next_start(config, [noon], noon, 90.0, noon) == Wait(at=noon + timedelta(seconds=90), reason="random_wait")
    assert next_start(config, [noon], noon, 90.0, noon + timedelta(seconds=95)) == Wait(
        at=noon + timedelta(seconds=95), reason=None
    )
    night = utc(2026, 3, 2, 23)
    assert next_start(config, [night], night, 90.0, night) == Wait(at=utc(2026, 3, 3, 8), reason="pause_window")


def test_a_wait_that_ends_inside_a_pause_window_waits_for_the_resume() -> None:
    config = RateLimitConfig(limits=(RateLimit(1, 3600.0),), pause=NIGHTS)
    start = utc(2026, 3, 2, 17, 30)
    assert next_start(config, [start], None, None, start) == Wait(at=utc(2026, 3, 3, 8), reason="pause_window")


def test_random_wait_draws_within_bounds() -> None:
    rng = random.Random(7)
    draws = [draw_random_wait(RandomWait(1.0, 3.0), rng) for _ in range(200)]
    assert all(1.0 <= d <= 3.0 for d in draws)
    assert max(draws) - min(draws) > 1.5
    assert draw_random_wait(RandomWait(2.0, 2.0), rng) == 2.0


# -- properties -------------------------------------------------------------------------

limit_sets = st.lists(
    st.builds(RateLimit, st.integers(1, 5), st.integers(1, 5000).map(lambda ms: ms / 1000)), min_size=1, max_size=4
)
arrivals = st.lists(st.integers(0, 3000), min_size=1, max_size=40).map(
    lambda gaps: [T0 + timedelta(milliseconds=sum(gaps[: i + 1])) for i in range(len(gaps))]
)


@settings(max_examples=300, deadline=None)
@given(limit_sets, arrivals)
def test_admissions_keep_every_window_and_are_never_later_than_needed(
    limits: list[RateLimit], arriving: list[datetime]
) -> None:
    history: list[datetime] = []
    for arrival in arriving:
        ready = max(arrival, history[-1]) if history else arrival  # one at a time, in order
        at = earliest_admission(history, limits, ready)
        assert at >= ready
        if at > ready:
            # One microsecond earlier some window would already hold its limit.
            earlier = at - US
            assert any(sum(1 for a in history if earlier - a < timedelta(seconds=x.duration_s)) >= x.limit
                       for x in limits)  # fmt: skip
        history.append(at)
        assert prune(history, limits, at) == history[-len(prune(history, limits, at)) :]
        pruned = prune(history, limits, at)
        for later in (at, at + timedelta(seconds=1), at + timedelta(seconds=6)):
            assert earliest_admission(pruned, limits, later) == earliest_admission(history, limits, later)
    for limit in limits:
        window = timedelta(seconds=limit.duration_s)
        for start in history:
            assert sum(1 for a in history if start <= a < start + window) <= limit.limit


_CRON_FIELDS = [
    ["*", "0", "59", "*/7", "1-30/3", "0,30"],
    ["*", "0", "23", "*/5", "9-17"],
    ["*", "1", "31", "L", "15W", "29", "30", "1-7"],
    ["*", "2", "FEB", "2,4", "*/3", "JAN-MAR"],
    ["*", "0", "7", "MON-FRI", "5L", "1#5", "2#3", "SUN"],
]
crons = st.tuples(*(st.sampled_from(f) for f in _CRON_FIELDS)).map(" ".join)
zones = st.sampled_from(["UTC", "America/New_York", "Europe/Paris", "Australia/Lord_Howe", "Asia/Kathmandu"])


@settings(max_examples=150, deadline=None)
@given(crons, crons, zones, st.integers(0, 3000 * 86_400))
def test_a_pause_wait_ends_where_the_queue_runs(pause: str, resume: str, zone: str, offset_s: int) -> None:
    try:
        config = parse_config(None, {"pause": pause, "resume": resume, "timezone": zone}, None)
    except BadRequest as e:
        assert e.details["field"] in ("configuration.schedule.pause", "configuration.schedule.resume")
        return
    now = T0 + timedelta(seconds=offset_s)
    wait = next_start(config, [], None, None, now)
    assert wait.at >= now
    assert next_start(config, [], None, None, wait.at) == Wait(at=wait.at, reason=None)
