"""What a delivery attempt records and publishes about a failure: a short status line.

Never the receiver's response body: a sink pointed at an internal service would otherwise
read that service's answers back through the deliveries API and ``delivery.attempted``.
"""

from __future__ import annotations

import re
from http import HTTPStatus

MAX_CHARS = 200
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)  # may carry credentials


def http_status_line(status: int, code: str | None = None) -> str:
    """``HTTP 503 Service Unavailable``, from our table rather than the receiver's reason phrase;
    ``code`` is an S3 error code (``NoSuchBucket``), kept only if it looks like one."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    line = f"HTTP {status} {phrase}".rstrip()
    if code and re.fullmatch(r"[A-Za-z0-9.]{1,64}", code):
        line += f" ({code})"
    return line


def short_error(error: BaseException) -> str:
    """The exception's class and a short message, URLs removed."""
    message = _URL.sub("<url>", " ".join(str(error).split()))
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"
