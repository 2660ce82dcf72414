"""When a queue's repeat item is appended next."""

from __future__ import annotations

from datetime import datetime, timedelta


def next_repeat_at(due: datetime, period_ms: int, now: datetime) -> datetime:
    """The first time after ``now`` on the item's beat (``due`` plus whole periods).

    Periods missed while the daemon was down are skipped, not caught up: a repeat item that
    comes back after a day away appends once, not once for every period it missed.
    """
    period = timedelta(milliseconds=period_ms)
    if due > now:
        return due
    missed = (now - due) // period
    return due + (missed + 1) * period
