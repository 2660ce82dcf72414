"""Opening the daemon's SQLite file: WAL, a busy timeout, and migrations applied."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

from .migrations import migrations


def open_db(path: Path) -> sqlite_utils.Database:
    path.parent.mkdir(parents=True, exist_ok=True)
    # check_same_thread=False: trio's thread cache does not pin the connection to one
    # thread; the store actor's CapacityLimiter(1) is what serialises access.
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a process kill (kill -9): only an OS crash or power
    # loss can drop the last transactions.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA foreign_keys=ON")
    db = sqlite_utils.Database(conn)
    migrations.apply(db)
    # Fresh planner statistics for tables that grew since (bounded work): the runs list's
    # indexes are only chosen well with them.
    conn.execute("PRAGMA analysis_limit=1000")
    conn.execute("PRAGMA optimize=0x10002")
    return db
