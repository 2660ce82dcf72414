"""``process_date``: many human date formats to a midnight ``datetime``.

dateutil is imported by the call, not with the module: most projects never call it, and every
worker imports this package at start (so do the other helpers with heavy libraries).
"""

from __future__ import annotations

from datetime import datetime

# Longer strings are not dates; the bound keeps the parser's work small whatever a page contains.
MAX_DATE_CHARS = 256

# Parsing twice with defaults that differ in every date field tells a complete date from one
# that dateutil completed from its default (``"May"`` alone would otherwise become a date).
_DEFAULTS = (datetime(2000, 1, 1), datetime(2001, 2, 2))


def process_date(date_string: str) -> datetime | None:
    """The date in ``date_string`` at 00:00:00, or None when it holds no complete date.

    Day-first and month-first numeric dates are both read (month first when ambiguous), with or
    without a time, AM/PM or a time zone; the time and zone are dropped.
    """
    if len(date_string) > MAX_DATE_CHARS:
        return None
    from dateutil import parser

    try:
        first, second = (parser.parse(date_string, default=d, ignoretz=True) for d in _DEFAULTS)
    except (ValueError, OverflowError):  # dateutil's ParserError is a ValueError
        return None
    if first.date() != second.date():
        return None
    return datetime(first.year, first.month, first.day)
