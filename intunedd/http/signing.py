"""Signed, expiring artifact URLs: a browser (the trace viewer, a link in a dashboard) can
fetch one attempt's log, trace or video without holding the API key.

The signature is HMAC-SHA256 over ``path`` and ``expires`` (unix seconds) with a secret
generated on the daemon's first start and kept in its database. URLs are built on the
configured public base (``server.public_base_url``), never on the request's ``Host``
header, which the client chooses.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from urllib.parse import urlencode

from ..config import ServerSettings

URL_LIFETIME_S = 3600


def signature(secret: bytes, path: str, expires: int) -> str:
    return hmac.new(secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


def expiry(now: datetime) -> int:
    return int(now.timestamp()) + URL_LIFETIME_S


def public_base_url(server: ServerSettings) -> str:
    if server.public_base_url:
        return server.public_base_url.rstrip("/")
    host = f"[{server.host}]" if ":" in server.host else server.host
    return f"http://{host}:{server.port}"


def signed_url(secret: bytes, server: ServerSettings, path: str, now: datetime) -> str:
    expires = expiry(now)
    query = urlencode({"expires": expires, "signature": signature(secret, path, expires)})
    return f"{public_base_url(server)}{path}?{query}"


def verify(secret: bytes, path: str, expires: str, given: str, now: datetime) -> bool:
    try:
        deadline = int(expires)
    except ValueError:
        return False
    # Bytes, not str: compare_digest refuses non-ASCII text, and a forged signature may be any text.
    expected = signature(secret, path, deadline).encode()
    return deadline >= now.timestamp() and hmac.compare_digest(expected, given.encode("utf-8", "replace"))
