"""``intunedd authsessions rotate-key``: a new secrets key, every sealed value re-sealed with it.

With the daemon stopped (its lock on the key file is checked): the new key is written beside the
old one (``secrets.key.new``), every sealed column is re-sealed in one transaction, then the new
key is renamed over the old. Killed at any point, it is run again and finishes: before the
commit the database still holds the old key's blobs; after it, the blobs carry the new key's id
and are left as they are; the daemon refuses to start while ``secrets.key.new`` exists.
"""

from __future__ import annotations

import os
import secrets

from ..clock import SystemClock, iso
from ..config import Settings
from ..secrets import (
    KEY_BYTES,
    SecretBox,
    SecretError,
    lock_key_file,
    pending_key_path,
    read_key_file,
    sync_directory,
    write_key_file,
)
from .auth_queries import ResealCounts, reseal_all
from .db import open_db
from .queries import Tx


def rotate_key(settings: Settings) -> ResealCounts:
    path = settings.secrets_key_path
    pending = pending_key_path(path)
    if not path.exists():
        raise SecretError(f"{path} does not exist: there is no key to rotate")
    lock = lock_key_file(path, exclusive=True)
    try:
        old = SecretBox(read_key_file(path))
        if not pending.exists():
            write_key_file(pending, secrets.token_bytes(KEY_BYTES), replace=False)
        new = SecretBox(read_key_file(pending))  # an interrupted rotation's key, when there was one
        db = open_db(settings.db_path)
        try:
            with db.atomic():
                counts = reseal_all(Tx(db, iso(SystemClock().now())), old, new)
        finally:
            db.conn.close()
        os.replace(pending, path)
        sync_directory(path.parent)
    finally:
        os.close(lock)
    return counts
