"""Durations as Intuned (after vercel's ``ms``) writes them: ``"30m"``, ``"1.5h"``, ``"7d"``, or a number.

A bare number is milliseconds, as in Temporal's and Intuned's TypeScript SDKs, so a schedule
written for Intuned means the same here.
"""

from __future__ import annotations

import math
import re

_UNITS_MS = {
    "ms": 1,
    "msec": 1,
    "msecs": 1,
    "millisecond": 1,
    "milliseconds": 1,
    "s": 1000,
    "sec": 1000,
    "secs": 1000,
    "second": 1000,
    "seconds": 1000,
    "m": 60_000,
    "min": 60_000,
    "mins": 60_000,
    "minute": 60_000,
    "minutes": 60_000,
    "h": 3_600_000,
    "hr": 3_600_000,
    "hrs": 3_600_000,
    "hour": 3_600_000,
    "hours": 3_600_000,
    "d": 86_400_000,
    "day": 86_400_000,
    "days": 86_400_000,
    "w": 604_800_000,
    "week": 604_800_000,
    "weeks": 604_800_000,
    "y": 31_557_600_000,
    "year": 31_557_600_000,
    "years": 31_557_600_000,
}
# ASCII digits only, and few of them: float() of thousands of digits is infinite.
_PATTERN = re.compile(r"^\s*([0-9]{1,15}(?:\.[0-9]{1,9})?|\.[0-9]{1,9})\s*([a-z]*)\s*$", re.IGNORECASE | re.ASCII)


class DurationError(ValueError):
    pass


def brief(value: object, most: int = 40) -> str:
    """``repr(value)`` cut short: error messages echo input, which may be megabytes long."""
    shown = repr(value)
    return shown if len(shown) <= most else shown[: most - 1] + "…"


def parse_duration_ms(value: object) -> int:
    """Milliseconds in ``value``; raises DurationError with a message fit for a 400."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise DurationError(f"{brief(value)} is not a duration: use a string like '30m' or a number of milliseconds")
    if isinstance(value, int | float):
        if value < 0:
            raise DurationError(f"{brief(value)} is negative")
        if not math.isfinite(value):
            raise DurationError(f"{brief(value)} is not a finite number")
        return int(value)
    match = _PATTERN.match(value)
    if not match:
        raise DurationError(f"{brief(value)} is not a duration like '500ms', '30s', '30m', '1h' or '7d'")
    number, unit = match.groups()
    factor = _UNITS_MS.get(unit.lower() or "ms")
    if factor is None:
        raise DurationError(f"{brief(value)} has an unknown unit {brief(unit)}")
    return int(float(number) * factor)
