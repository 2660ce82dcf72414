"""What the dashboard's overview reads beyond the API's queries: activity across all projects."""

from __future__ import annotations

import sqlite_utils

from ..messages import RunRecord
from .queries import _RUN_COLUMNS, _run

MINUTE_CHARS = len("2026-01-01T00:00")  # an ISO time cut to its minute


def finished_by_minute(db: sqlite_utils.Database, since: str) -> list[tuple[str, str, int]]:
    """``(minute, status, count)`` of the runs that ended at or after ``since`` (an ISO time)."""
    rows = db.conn.execute(
        f"SELECT substr(ended_at, 1, {MINUTE_CHARS}) AS minute, status, COUNT(*) FROM runs "
        "WHERE ended_at >= ? GROUP BY minute, status",
        (since,),
    )
    return [(str(minute), str(status), int(count)) for minute, status, count in rows.fetchall()]


def active_runs(db: sqlite_utils.Database, limit: int) -> list[RunRecord]:
    """The newest runs still pending or started, in every project."""
    rows = db.conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs WHERE status IN ('pending', 'started') ORDER BY seq DESC LIMIT ?",
        (limit,),
    )
    return [_run(row) for row in rows.fetchall()]
