"""Job schedules (Intuned's copy of Temporal's ScheduleSpec): parse, validate, find the next fire.

A schedule fires whenever *any* of its intervals or calendars matches:

- ``intervals``: ``{every, offset?}``; slots are aligned to the Unix epoch plus ``offset``.
- ``calendars``: fields ``second minute hour dayOfMonth month dayOfWeek year``, each a value
  (number, numeric string or name), ``"*"``, a range ``{start, end?, step?}`` or a list of
  those. Omitted fields default as Temporal's do: second, minute and hour to 0, the others to
  every value. A calendar matches when every field matches.
- ``jitter``: each fire is delayed by up to this much, by an amount derived from the job and
  the slot, so a restart computes the same delay and never fires a slot twice.
- ``timezone`` (our addition; IANA name, default ``UTC``): calendars are read in it. On a DST
  change a local time that does not exist is skipped and one that happens twice fires once,
  at its first occurrence.

Bounds, so that whatever passes ``parse_schedule`` can always be planned: ``every`` and
``offset`` at most 10 years, ``jitter`` at most 1 day, at most 100 intervals, calendars and
list entries per field, numbers of at most 9 ASCII digits. Planning covers 1970 to the
year 9000: ``next_fire`` after that finds no slot rather than overflowing ``datetime``.

Everything here is pure: times go in, times come out.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .durations import DurationError, brief, parse_duration_ms

MIN_INTERVAL_MS = 1000
YEAR_MS = 31_557_600_000  # a Julian year, as the durations parser counts "1y"
MAX_INTERVAL_MS = 10 * YEAR_MS
MAX_JITTER_MS = 86_400_000
MAX_ENTRIES = 100
MAX_ZONE_CHARS = 64
_NUMBER = re.compile(r"^-?[0-9]{1,9}$", re.ASCII)  # int() of thousands of digits raises, and "²".isdigit()
MONTHS = ["JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY", "AUGUST", "SEPTEMBER", "OCTOBER",
          "NOVEMBER", "DECEMBER"]  # fmt: skip
DAYS = ["SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY"]
# field -> (wire name, lowest, highest, default when omitted, names)
_FIELDS: dict[str, tuple[str, int, int, str | int, list[str] | None]] = {
    "second": ("second", 0, 59, 0, None),
    "minute": ("minute", 0, 59, 0, None),
    "hour": ("hour", 0, 23, 0, None),
    "day_of_month": ("dayOfMonth", 1, 31, "*", None),
    "month": ("month", 1, 12, "*", MONTHS),
    "day_of_week": ("dayOfWeek", 0, 6, "*", DAYS),
    "year": ("year", 1970, 9999, "*", None),
}
# How far ahead to look for a calendar match before deciding there is none (e.g. Feb 30).
SEARCH_YEARS = 8


class ScheduleError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Interval:
    every_ms: int
    offset_ms: int = 0


@dataclass(frozen=True)
class Calendar:
    second: frozenset[int]
    minute: frozenset[int]
    hour: frozenset[int]
    day_of_month: frozenset[int]
    month: frozenset[int]
    day_of_week: frozenset[int]
    year: frozenset[int] | None  # None: every year


@dataclass(frozen=True)
class Schedule:
    intervals: tuple[Interval, ...]
    calendars: tuple[Calendar, ...]
    jitter_ms: int
    timezone: ZoneInfo


# -- parsing ----------------------------------------------------------------------------


def _value(raw: Any, where: str, low: int, high: int, names: list[str] | None) -> int:
    if isinstance(raw, str) and not _NUMBER.match(raw.strip()):
        if names is None:
            raise ScheduleError(where, f"{brief(raw)} is not a number")
        upper = raw.strip().upper()
        matches = [i for i, name in enumerate(names) if name == upper or name[:3] == upper]
        if not matches:
            raise ScheduleError(where, f"{brief(raw)} is not one of {', '.join(names)}")
        return matches[0] + (1 if names is MONTHS else 0)
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ScheduleError(where, f"{brief(raw)} is not a number or a name")
    number = int(raw.strip()) if isinstance(raw, str) else raw
    if not low <= number <= high:
        raise ScheduleError(where, f"{number} is outside {low}-{high}")
    return number


def _field(raw: Any, where: str, low: int, high: int, names: list[str] | None) -> frozenset[int]:
    if raw == "*":
        return frozenset(range(low, high + 1))
    if isinstance(raw, list):
        if not raw:
            raise ScheduleError(where, "an empty list matches nothing")
        if len(raw) > MAX_ENTRIES:
            raise ScheduleError(where, f"at most {MAX_ENTRIES} entries; use a range")
        if any(isinstance(item, list) for item in raw):
            raise ScheduleError(where, "a list holds values and ranges, not lists")
        return frozenset().union(*(_field(item, f"{where}[{i}]", low, high, names) for i, item in enumerate(raw)))
    if isinstance(raw, dict):
        unknown = set(raw) - {"start", "end", "step"}
        if unknown or "start" not in raw:
            raise ScheduleError(where, "a range is {start, end?, step?}")
        start = _value(raw["start"], f"{where}.start", low, high, names)
        end = _value(raw.get("end", raw["start"]), f"{where}.end", low, high, names)
        step = raw.get("step", 1)
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise ScheduleError(f"{where}.step", f"{brief(step)} is not a positive whole number")
        if end < start:
            raise ScheduleError(where, f"end {end} is before start {start}")
        return frozenset(range(start, end + 1, step))
    return frozenset({_value(raw, where, low, high, names)})


def _calendar(raw: Any, where: str) -> Calendar:
    if not isinstance(raw, dict):
        raise ScheduleError(where, "a calendar is an object")
    wire_names = {wire for wire, *_ in _FIELDS.values()}
    unknown = set(raw) - wire_names - {"comment"}
    if unknown:
        raise ScheduleError(
            f"{where}.{sorted(unknown)[0]}", f"unknown calendar field; use {', '.join(sorted(wire_names))}"
        )
    values: dict[str, frozenset[int] | None] = {}
    for name, (wire, low, high, default, names) in _FIELDS.items():
        given = raw.get(wire, default)
        values[name] = None if name == "year" and given == "*" else _field(given, f"{where}.{wire}", low, high, names)
    return Calendar(**values)  # type: ignore[arg-type]


def _duration(raw: Any, where: str, most_ms: int, most: str) -> int:
    try:
        ms = parse_duration_ms(raw)
    except DurationError as e:
        raise ScheduleError(where, str(e)) from e
    if ms > most_ms:
        raise ScheduleError(where, f"{brief(raw)} is longer than {most}")
    return ms


def _interval(raw: Any, where: str) -> Interval:
    if not isinstance(raw, dict) or "every" not in raw:
        raise ScheduleError(where, "an interval is {every, offset?}")
    every = _duration(raw["every"], f"{where}.every", MAX_INTERVAL_MS, "10 years")
    if every < MIN_INTERVAL_MS:
        raise ScheduleError(f"{where}.every", f"must be at least {MIN_INTERVAL_MS} ms")
    offset = _duration(raw.get("offset", 0), f"{where}.offset", MAX_INTERVAL_MS, "10 years")
    return Interval(every, offset % every)


def parse_schedule(raw: Any, where: str = "schedule") -> Schedule:
    if not isinstance(raw, dict):
        raise ScheduleError(where, "a schedule is an object with intervals and/or calendars")
    unknown = set(raw) - {"intervals", "calendars", "jitter", "timezone"}
    if unknown:
        raise ScheduleError(
            f"{where}.{sorted(unknown)[0]}", "unknown field; use intervals, calendars, jitter, timezone"
        )
    intervals = raw.get("intervals") or []
    calendars = raw.get("calendars") or []
    if not isinstance(intervals, list) or not isinstance(calendars, list):
        raise ScheduleError(where, "intervals and calendars are lists")
    if not intervals and not calendars:
        raise ScheduleError(where, "needs at least one interval or calendar")
    for name, entries in (("intervals", intervals), ("calendars", calendars)):
        if len(entries) > MAX_ENTRIES:
            raise ScheduleError(f"{where}.{name}", f"at most {MAX_ENTRIES} {name}")
    zone_name = raw.get("timezone", "UTC")
    try:
        if not isinstance(zone_name, str) or len(zone_name) > MAX_ZONE_CHARS:
            raise ValueError(zone_name)
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as e:  # OSError: a key naming a folder
        raise ScheduleError(f"{where}.timezone", f"{brief(zone_name)} is not an IANA time zone") from e
    return Schedule(
        intervals=tuple(_interval(item, f"{where}.intervals[{i}]") for i, item in enumerate(intervals)),
        calendars=tuple(_calendar(item, f"{where}.calendars[{i}]") for i, item in enumerate(calendars)),
        jitter_ms=_duration(raw.get("jitter", 0), f"{where}.jitter", MAX_JITTER_MS, "1 day"),
        timezone=zone,
    )


# -- next fire ---------------------------------------------------------------------------


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Far enough that no daemon gets there, near enough that a slot 10 years (or a calendar's
# search) past it still fits in ``datetime``.
HORIZON = datetime(9000, 1, 1, tzinfo=UTC)


def _epoch_ms(moment: datetime) -> int:
    # Integer arithmetic on timedeltas: float timestamps would round far-off slots.
    return (moment - EPOCH) // timedelta(milliseconds=1)


def _next_interval(interval: Interval, after: datetime) -> datetime:
    after_ms = _epoch_ms(after)
    slots = (after_ms - interval.offset_ms) // interval.every_ms + 1
    return EPOCH + timedelta(milliseconds=slots * interval.every_ms + interval.offset_ms)


def _first(allowed: frozenset[int], at_least: int) -> int | None:
    candidates = [v for v in allowed if v >= at_least]
    return min(candidates) if candidates else None


def _next_local(cal: Calendar, start: datetime) -> datetime | None:
    """The first naive local time >= ``start`` (whole seconds) whose fields all match."""
    t = start
    limit = start.year + SEARCH_YEARS
    while t.year <= limit:
        if cal.year is not None and t.year not in cal.year:
            year = _first(cal.year, t.year + 1)
            if year is None:
                return None
            t = datetime(year, 1, 1)
            continue
        if t.month not in cal.month:
            month = _first(cal.month, t.month + 1)
            t = datetime(t.year, month, 1) if month else datetime(t.year + 1, 1, 1)
            continue
        weekday = (t.weekday() + 1) % 7  # Python: Monday=0; ours: Sunday=0
        if t.day not in cal.day_of_month or weekday not in cal.day_of_week:
            t = datetime(t.year, t.month, t.day) + timedelta(days=1)
            continue
        if t.hour not in cal.hour:
            hour = _first(cal.hour, t.hour + 1)
            t = datetime(t.year, t.month, t.day, hour) if hour is not None else _next_day(t)
            continue
        if t.minute not in cal.minute:
            minute = _first(cal.minute, t.minute + 1)
            t = t.replace(minute=minute, second=0) if minute is not None else _next_hour(t)
            continue
        if t.second not in cal.second:
            second = _first(cal.second, t.second + 1)
            t = t.replace(second=second) if second is not None else _next_minute(t)
            continue
        return t
    return None


def _next_day(t: datetime) -> datetime:
    return datetime(t.year, t.month, t.day) + timedelta(days=1)


def _next_hour(t: datetime) -> datetime:
    return datetime(t.year, t.month, t.day, t.hour) + timedelta(hours=1)


def _next_minute(t: datetime) -> datetime:
    return datetime(t.year, t.month, t.day, t.hour, t.minute) + timedelta(minutes=1)


def _exists(local: datetime, zone: ZoneInfo) -> bool:
    round_trip = local.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    return round_trip == local


def _next_calendar(cal: Calendar, after: datetime, zone: ZoneInfo) -> datetime | None:
    local_after = after.astimezone(zone)
    # Start at the next whole local second strictly after ``after``.
    start = local_after.replace(tzinfo=None, microsecond=0) + timedelta(seconds=1)
    while True:
        local = _next_local(cal, start)
        if local is None:
            return None
        if not _exists(local, zone):
            start = local + timedelta(seconds=1)  # skipped by a DST jump
            continue
        moment = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
        if moment > after:
            return moment
        # The repeated hour of a DST fall-back: its first occurrence is already past.
        start = local + timedelta(seconds=1)


def next_fire(schedule: Schedule, after: datetime) -> datetime | None:
    """The earliest slot strictly after ``after`` (UTC-aware), before jitter; None if none is left."""
    if after >= HORIZON:
        return None
    after = max(after, EPOCH)
    candidates = [_next_interval(i, after) for i in schedule.intervals]
    candidates += [m for c in schedule.calendars if (m := _next_calendar(c, after, schedule.timezone))]
    return min(candidates) if candidates else None


def jitter_for(schedule: Schedule, slot: datetime, key: str) -> timedelta:
    """A delay in [0, jitter) fixed by the job and the slot, so every computation agrees."""
    if schedule.jitter_ms <= 0:
        return timedelta(0)
    digest = hashlib.sha256(f"{key}:{_epoch_ms(slot)}".encode()).digest()
    return timedelta(milliseconds=int.from_bytes(digest[:8], "big") % schedule.jitter_ms)


def latest_missed(schedule: Schedule, after: datetime, now: datetime) -> datetime | None:
    """The last slot in (``after``, ``now``], if the daemon slept through any.

    A bisection, about 50 look-ups however dense the schedule and long the outage. It keeps
    ``latest``, a slot at most ``now``, and ``high``, with no slot in (``high``, ``now``].
    """
    latest = next_fire(schedule, after)
    if latest is None or latest > now:
        return None
    high = now
    while high - latest > timedelta(milliseconds=1):
        middle = latest + (high - latest) / 2
        slot = next_fire(schedule, middle)
        if slot is not None and slot <= now:
            latest = slot
        else:
            high = middle
    # Slots fall on whole milliseconds: at most one more fits in the last millisecond.
    following = next_fire(schedule, latest)
    return following if following is not None and following <= now else latest


def catch_up(missed: datetime | None, now: datetime, window_s: float | None) -> bool:
    """Whether a slot missed while the daemon was down fires once at start.

    ``window_s`` None: the most recent missed slot always does (one slot, never a burst);
    a number: only if it is at most that old; 0 disables catch-up.
    """
    if missed is None:
        return False
    if window_s is None:
        return True
    return (now - missed).total_seconds() <= window_s
