"""Signed, expiring artifact URLs: a browser (the trace viewer, a link in a dashboard) can
fetch one attempt's log, trace or video without holding the API key.

The signature is HMAC-SHA256 over ``path`` and ``expires`` (unix seconds) with a secret
generated on the daemon's first start and kept in its database.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

URL_LIFETIME_S = 3600


def signature(secret: bytes, path: str, expires: int) -> str:
    return hmac.new(secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


def signed_query(secret: bytes, path: str, now: float) -> str:
    expires = int(now) + URL_LIFETIME_S
    return urlencode({"expires": expires, "signature": signature(secret, path, expires)})


def verify(secret: bytes, path: str, expires: str, given: str, now: float) -> bool:
    try:
        deadline = int(expires)
    except ValueError:
        return False
    return deadline >= now and hmac.compare_digest(signature(secret, path, deadline), given)
