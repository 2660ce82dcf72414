"""API keys, created from the command line on the daemon's host (`intunedd keys create`).

Only the key's SHA-256 is stored; the key itself is shown once. Writing beside a running
daemon is safe: SQLite's WAL and busy timeout serialise the two writers.
"""

from __future__ import annotations

from ..clock import SystemClock, iso
from ..config import Settings
from ..ids import new_api_key, new_uuid
from . import queries
from .db import open_db


def create_api_key(settings: Settings, name: str) -> str:
    key = new_api_key()
    db = open_db(settings.db_path)
    try:
        tx = queries.Tx(db, iso(SystemClock().now()))
        with db.atomic():
            queries.insert_api_key(tx, new_uuid(), name, key)
    finally:
        db.conn.close()
    return key
