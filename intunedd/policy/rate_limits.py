"""A queue's pace (spec §3.2): rate limits, a pause window, and a random wait between items.

- ``rateLimits``: every ``{limit, duration}`` holds at once over a sliding window: an admission
  at ``a`` counts at ``t`` while ``t - a < duration``, so an item may start at ``t`` when fewer
  than ``limit`` admissions are that recent. 10/h with 2/min gives 2 per minute until 10 in the
  hour.
- ``schedule``: ``{pause, resume, timezone?}``, two five-field cron expressions (or ``@daily``-style
  aliases; croniter's syntax) read in the IANA zone (default UTC). The queue is paused while the
  latest ``pause`` fire is later than the latest ``resume`` fire; only fires within ``LOOKBACK``
  count.
- ``randomWait``: ``{min, max}``, a delay drawn for each item, counted from when the previous
  item finished.

Durations are ``parse_duration_ms``'s (a bare number is milliseconds). Everything here is pure:
times go in, times come out; the rate-limiter actor keeps the admissions and the draws.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from croniter import CroniterBadDateError, CroniterError, croniter

from ..errors import BadRequest
from .durations import DurationError, brief, parse_duration_ms

MAX_LIMITS = 20
MAX_LIMIT = 1_000_000
MAX_DURATION_MS = 31 * 86_400_000
MAX_RANDOM_WAIT_MS = 86_400_000
MAX_CRON_CHARS = 200
MAX_ZONE_CHARS = 64
# How far back a pause or resume fire still decides whether the queue is paused.
LOOKBACK = timedelta(days=366)
# How far croniter searches for a fire, either way. Any five-field cron that fires at all fires
# within 40 years (a fifth Monday of February waits longest), so a parsed schedule always finds
# its next resume; one that never fires (February 30th) is refused at parse time.
SEARCH_YEARS = 50
# A five-field cron's fires repeat every 400 years, so whether it fires at all can be checked from
# any fixed moment.
_REFERENCE = datetime(2000, 1, 1, tzinfo=UTC)
US = timedelta(microseconds=1)

Reason = Literal["rate_limit", "pause_window", "random_wait"]


class RateLimit(msgspec.Struct, frozen=True):
    limit: int
    duration_s: float


class PauseSchedule(msgspec.Struct, frozen=True):
    pause: str
    resume: str
    timezone: str = "UTC"


class RandomWait(msgspec.Struct, frozen=True):
    min_s: float
    max_s: float


class RateLimitConfig(msgspec.Struct, frozen=True):
    limits: tuple[RateLimit, ...] = ()
    pause: PauseSchedule | None = None
    random_wait: RandomWait | None = None


class Wait(msgspec.Struct, frozen=True):
    """When the next item may start; ``reason`` None means now (and ``at`` is then now)."""

    at: datetime
    reason: Reason | None


# -- parsing ----------------------------------------------------------------------------


def _bad(field: str, message: str) -> BadRequest:
    return BadRequest(f"Invalid {field}: {message}", details={"field": field})


def _absent(value: Any) -> bool:
    return value is None or value is msgspec.UNSET


def _object(raw: Any, field: str, required: frozenset[str], optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _bad(field, f"must be an object with {', '.join(sorted(required | optional))}")
    unknown = set(raw) - required - optional
    if unknown:
        name = sorted(map(str, unknown))[0]
        raise _bad(f"{field}.{name}", f"unknown field; use {', '.join(sorted(required | optional))}")
    missing = required - set(raw)
    if missing:
        name = sorted(missing)[0]
        raise _bad(f"{field}.{name}", "is required")
    return raw


def _duration_ms(raw: Any, field: str, least_ms: int, most_ms: int) -> int:
    try:
        ms = parse_duration_ms(raw)
    except DurationError as e:
        raise _bad(field, str(e)) from e
    if not least_ms <= ms <= most_ms:
        raise _bad(field, f"{brief(raw)} is outside {least_ms} ms to {most_ms // 86_400_000} days")
    return ms


def _limit(raw: Any, field: str) -> RateLimit:
    item = _object(raw, field, frozenset({"limit", "duration"}))
    count = item["limit"]
    if isinstance(count, float) and count.is_integer():
        count = int(count)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_LIMIT:
        raise _bad(f"{field}.limit", f"{brief(count)} is not a whole number from 1 to {MAX_LIMIT}")
    ms = _duration_ms(item["duration"], f"{field}.duration", 1, MAX_DURATION_MS)
    return RateLimit(count, ms / 1000)


def _zone(raw: Any, field: str) -> ZoneInfo:
    try:
        if not isinstance(raw, str) or len(raw) > MAX_ZONE_CHARS:
            raise ValueError(raw)
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError, OSError) as e:  # OSError: a key naming a folder
        raise _bad(field, f"{brief(raw)} is not an IANA time zone") from e


def _cron(raw: Any, field: str) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > MAX_CRON_CHARS:
        raise _bad(field, f"must be a cron expression of at most {MAX_CRON_CHARS} characters")
    text = raw.strip()
    # Five fields (or an @daily-style alias): croniter's sixth and seventh fields (seconds at the
    # end, a year) are not crontab's, and a year can leave a cron with no future fire.
    if not text.startswith("@") and len(text.split()) != 5:
        raise _bad(field, f"{brief(raw)} is not a five-field cron expression (minute hour day month weekday)")
    try:
        croniter(text, _REFERENCE, max_years_between_matches=SEARCH_YEARS).get_next(datetime)
    except CroniterBadDateError as e:
        raise _bad(field, f"{brief(raw)} never fires") from e
    except (CroniterError, ValueError, TypeError, KeyError, IndexError) as e:  # croniter's parser leaks all of these
        raise _bad(field, f"{brief(raw)} is not a valid cron expression") from e
    return text


def _schedule(raw: Any, field: str) -> PauseSchedule:
    item = _object(raw, field, frozenset({"pause", "resume"}), frozenset({"timezone"}))
    zone = item.get("timezone", "UTC")
    _zone(zone, f"{field}.timezone")
    return PauseSchedule(_cron(item["pause"], f"{field}.pause"), _cron(item["resume"], f"{field}.resume"), zone)


def _random_wait(raw: Any, field: str) -> RandomWait:
    item = _object(raw, field, frozenset({"min", "max"}))
    low = _duration_ms(item["min"], f"{field}.min", 0, MAX_RANDOM_WAIT_MS)
    high = _duration_ms(item["max"], f"{field}.max", 0, MAX_RANDOM_WAIT_MS)
    if low > high:
        raise _bad(f"{field}.min", f"{low} ms is more than max ({high} ms)")
    return RandomWait(low / 1000, high / 1000)


def parse_config(
    rate_limits: Any, schedule: Any, random_wait: Any, *, field_prefix: str = "configuration"
) -> RateLimitConfig:
    """The wire's ``rateLimits``, ``schedule`` and ``randomWait`` (each None when absent), checked;
    BadRequest naming the field otherwise."""
    limits: tuple[RateLimit, ...] = ()
    if not _absent(rate_limits):
        field = f"{field_prefix}.rateLimits"
        if not isinstance(rate_limits, list):
            raise _bad(field, "must be a list of {limit, duration}")
        if len(rate_limits) > MAX_LIMITS:
            raise _bad(field, f"at most {MAX_LIMITS} limits")
        limits = tuple(_limit(item, f"{field}[{i}]") for i, item in enumerate(rate_limits))
    return RateLimitConfig(
        limits=limits,
        pause=None if _absent(schedule) else _schedule(schedule, f"{field_prefix}.schedule"),
        random_wait=None if _absent(random_wait) else _random_wait(random_wait, f"{field_prefix}.randomWait"),
    )


# -- decisions --------------------------------------------------------------------------


def _window(limit: RateLimit) -> timedelta:
    return timedelta(seconds=limit.duration_s)


def earliest_admission(history: Sequence[datetime], limits: Sequence[RateLimit], now: datetime) -> datetime:
    """The earliest ``t >= now`` at which one more admission keeps every limit: for each, the
    ``limit``-th most recent admission must have left its window (``t >= it + duration``).

    ``history`` is oldest first (the actor keeps it so): a limit may reach a million admissions,
    too many to sort on every question."""
    earliest = now
    for limit in limits:
        if len(history) >= limit.limit:
            earliest = max(earliest, history[-limit.limit] + _window(limit))
    return earliest


def prune(history: Sequence[datetime], limits: Sequence[RateLimit], now: datetime) -> list[datetime]:
    """The admissions (oldest first) some window can still see at ``now`` or later.

    For each limit only its ``limit`` most recent admissions inside the window matter; each such
    set is a suffix of the history, so their union is the longest of them.
    """
    start = len(history)
    for limit in limits:
        inside = bisect.bisect_right(history, now - _window(limit))  # a <= now - duration: gone
        start = min(start, max(inside, len(history) - limit.limit))
    return list(history[start:])


def _fire(expression: str, start: datetime, zone: ZoneInfo, *, before: bool) -> datetime | None:
    """The cron's fire nearest ``start``: the latest at or before it, or the earliest after it."""
    # get_prev is strict and crons fire on whole seconds: a microsecond later counts ``start`` itself.
    # Both directions search SEARCH_YEARS: croniter misses some fires (a "1#5" with a day of the
    # month) when told to look back fewer years; the caller applies LOOKBACK.
    cron = croniter(expression, start.astimezone(zone) + (US if before else timedelta(0)),
                    max_years_between_matches=SEARCH_YEARS)  # fmt: skip
    try:
        found = cron.get_prev(datetime) if before else cron.get_next(datetime)
    except CroniterBadDateError:
        return None
    return found.astimezone(UTC)


def _paused_at(schedule: PauseSchedule, moment: datetime) -> bool:
    zone = ZoneInfo(schedule.timezone)
    paused = _fire(schedule.pause, moment, zone, before=True)
    if paused is None or moment - paused > LOOKBACK:
        return False
    resumed = _fire(schedule.resume, moment, zone, before=True)
    return resumed is None or moment - resumed > LOOKBACK or paused > resumed


def pause_until(schedule: PauseSchedule, now: datetime) -> datetime | None:
    """None when the queue is not paused at ``now``; else when it resumes."""
    if not _paused_at(schedule, now):
        return None
    resume = _fire(schedule.resume, now, ZoneInfo(schedule.timezone), before=False)
    # A parsed resume always fires again (SEARCH_YEARS); were it not to, look again after LOOKBACK.
    return resume if resume is not None else now + LOOKBACK


def draw_random_wait(rw: RandomWait, rng: random.Random) -> float:
    return rng.uniform(rw.min_s, rw.max_s)


def next_start(
    config: RateLimitConfig,
    history: Sequence[datetime],
    finished_at: datetime | None,
    random_wait_s: float | None,
    now: datetime,
) -> Wait:
    """When the next item may start, and which constraint holds it back (the latest one).

    The rate windows and the random wait only ever move the start later, and a start moved to a
    resume fire is not paused, so one pause check at the combined time is exact.
    """
    candidates: list[tuple[datetime, Reason]] = [(earliest_admission(history, config.limits, now), "rate_limit")]
    if finished_at is not None and random_wait_s is not None:
        candidates.append((finished_at + timedelta(seconds=random_wait_s), "random_wait"))
    at, reason = max(candidates, key=lambda c: c[0])
    if config.pause is not None:
        at = max(at, now)
        resume = pause_until(config.pause, at)
        if resume is not None:
            return Wait(at=resume, reason="pause_window")
    if at <= now:
        return Wait(at=now, reason=None)
    return Wait(at=at, reason=reason)
