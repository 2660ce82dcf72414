"""SQL for the rate limiter: the admissions its windows can still see, per key.

Times are whole microseconds since the epoch, as ``datetime`` holds them, so an admission read
back compares exactly as it did when it was made.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlite_utils

from .queries import Tx

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _to_us(moment: datetime) -> int:
    return (moment - _EPOCH) // _US


def _from_us(value: int) -> datetime:
    return _EPOCH + value * _US


def admissions(db: sqlite_utils.Database, key: str) -> list[datetime]:
    """``key``'s admissions, oldest first."""
    rows = db.conn.execute("SELECT at_us FROM rate_admissions WHERE key = ? ORDER BY at_us", (key,)).fetchall()
    return [_from_us(at_us) for (at_us,) in rows]


def admit(tx: Tx, key: str, at: datetime, keep_from: datetime) -> None:
    """Record an admission and, in the same transaction, forget ``key``'s admissions older than
    ``keep_from``, which no window can see any more."""
    tx.execute("INSERT INTO rate_admissions (key, at_us) VALUES (?, ?)", (key, _to_us(at)))
    tx.execute("DELETE FROM rate_admissions WHERE key = ? AND at_us < ?", (key, _to_us(keep_from)))


def forget(tx: Tx, key: str) -> None:
    tx.execute("DELETE FROM rate_admissions WHERE key = ?", (key,))
