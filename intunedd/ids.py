"""Identifiers: 21-character nanoids for runs (as Intuned issues them), uuids elsewhere."""

from __future__ import annotations

import re
import secrets
import uuid

NANOID_ALPHABET = "_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
NANOID_SIZE = 21
AUTH_SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,99}$")  # letters, digits and hyphens, as on Intuned


def nanoid(size: int = NANOID_SIZE) -> str:
    # 64 symbols: a byte masked to 6 bits is uniform, so no rejection sampling is needed.
    return "".join(NANOID_ALPHABET[b & 63] for b in secrets.token_bytes(size))


def new_uuid() -> str:
    return str(uuid.uuid4())


def new_api_key() -> str:
    return "ind_" + secrets.token_urlsafe(32)
