"""API keys: created, listed and revoked from the command line on the daemon's host
(`intunedd keys …`) or over the API, and checked on every request.

Only the key's SHA-256 and its first characters (the prefix, to tell keys apart) are
stored; the key itself is shown once. The CLI writes the database directly beside a
running daemon, which is safe: SQLite's WAL and busy timeout serialise the two writers.
A revocation takes effect at the daemon's next check of the key (``app.KEY_RECHECK_S``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TypeVar

import msgspec
import sqlite_utils

from ..clock import SystemClock, iso
from ..config import Settings
from ..ids import new_api_key, new_uuid
from .db import open_db
from .errors import RecordMissing
from .queries import Tx

PREFIX_CHARS = 8
T = TypeVar("T")


class ApiKey(msgspec.Struct, frozen=True, rename="camel"):
    """A key as listed: never its hash, never the key."""

    id: str
    name: str
    prefix: str | None  # None for keys created before prefixes were kept
    created_at: str
    revoked_at: str | None


class AmbiguousKey(ValueError):
    pass


def hash_key(key: str) -> str:
    # API keys are 256-bit random tokens, so a plain SHA-256 cannot be brute-forced.
    return hashlib.sha256(key.encode()).hexdigest()


def insert_api_key(tx: Tx, key_id: str, name: str, key: str) -> None:
    tx.execute(
        "INSERT INTO api_keys (id, name, key_hash, created_at, prefix) VALUES (?, ?, ?, ?, ?)",
        (key_id, name, hash_key(key), tx.now, key[:PREFIX_CHARS]),
    )


def key_is_valid(db: sqlite_utils.Database, digest: str) -> bool:
    row = db.conn.execute("SELECT 1 FROM api_keys WHERE key_hash=? AND revoked_at IS NULL", (digest,)).fetchone()
    return row is not None


def list_api_keys(db: sqlite_utils.Database) -> list[ApiKey]:
    rows = db.conn.execute(
        "SELECT id, name, prefix, created_at, revoked_at FROM api_keys ORDER BY created_at, id"
    ).fetchall()
    return [ApiKey(*row) for row in rows]


def revoke_api_key(tx: Tx, key_id: str) -> ApiKey:
    """Revoke one key by id; revoking it again keeps the first revocation's time."""
    tx.execute("UPDATE api_keys SET revoked_at=? WHERE id=? AND revoked_at IS NULL", (tx.now, key_id))
    for key in list_api_keys(tx.db):
        if key.id == key_id:
            return key
    raise RecordMissing(f"API key '{key_id}' not found", details={"field": "keyId"})


def find_key_id(db: sqlite_utils.Database, name_or_prefix: str) -> str:
    """The one key whose id, name or prefix is ``name_or_prefix``."""
    found = {
        key.id for key in list_api_keys(db) if name_or_prefix in (key.id, key.name, key.prefix) and not key.revoked_at
    }
    if not found:
        raise RecordMissing(f"no unrevoked API key has the id, name or prefix '{name_or_prefix}'")
    if len(found) > 1:
        raise AmbiguousKey(f"{len(found)} keys match '{name_or_prefix}': revoke by id (see `intunedd keys list`)")
    return found.pop()


# -- the CLI's direct access ------------------------------------------------------------------


def _with_db(settings: Settings, fn: Callable[[Tx], T]) -> T:
    db = open_db(settings.db_path)
    try:
        tx = Tx(db, iso(SystemClock().now()))
        with db.atomic():
            return fn(tx)
    finally:
        db.conn.close()


def create_api_key(settings: Settings, name: str) -> str:
    key = new_api_key()
    _with_db(settings, lambda tx: insert_api_key(tx, new_uuid(), name, key))
    return key


def list_keys(settings: Settings) -> list[ApiKey]:
    return _with_db(settings, lambda tx: list_api_keys(tx.db))


def revoke_key(settings: Settings, name_or_prefix: str) -> ApiKey:
    return _with_db(settings, lambda tx: revoke_api_key(tx, find_key_id(tx.db, name_or_prefix)))
