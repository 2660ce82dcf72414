"""``network_capture``: what requests a page made, and the bodies of those matching ``url_pattern``.

Each entry is ``{url, method, status, resource_type, content_type}`` (the SDK does not name the keys;
these are Playwright's). A response whose URL matches the glob also gets ``body`` (UTF-8 text, or
base64 with ``body_encoding: "base64"`` when it is not text), ``body_truncated`` past 64 KB, or
``body_error`` (``global_timeout_5s``, ``response_disposed``) as the SDK documents.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Response

from .request import NetworkCapture

MAX_BODY = 64 * 1024
MAX_ENTRIES = 1000
BODY_TIMEOUT_S = 5.0


class Capture:
    """Attach ``on_response`` to a page's "response" event; ``finish`` once the page is done."""

    def __init__(self, config: NetworkCapture) -> None:
        self._config = config
        self._entries: list[dict[str, Any]] = []
        self._bodies: list[asyncio.Task[None]] = []

    def on_response(self, response: Response) -> None:
        request = response.request
        types = self._config.resource_types
        if (types is not None and request.resource_type not in types) or len(self._entries) >= MAX_ENTRIES:
            return
        entry: dict[str, Any] = {
            "url": response.url,
            "method": request.method,
            "status": response.status,
            "resource_type": request.resource_type,
            "content_type": response.headers.get("content-type"),
        }
        self._entries.append(entry)
        pattern = self._config.url_pattern
        if pattern is not None and fnmatch.fnmatchcase(response.url, pattern):
            self._bodies.append(asyncio.ensure_future(_read_body(response, entry)))

    async def finish(self) -> list[dict[str, Any]]:
        """The entries, once every body has been read or has had ``BODY_TIMEOUT_S`` in all."""
        if self._bodies:
            _, pending = await asyncio.wait(self._bodies, timeout=BODY_TIMEOUT_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        return self._entries


async def _read_body(response: Response, entry: dict[str, Any]) -> None:
    try:
        body = await response.body()
    except asyncio.CancelledError:
        entry["body_error"] = "global_timeout_5s"
        raise
    except PlaywrightError:
        entry["body_error"] = "response_disposed"
        return
    entry["body_truncated"] = len(body) > MAX_BODY
    body = body[:MAX_BODY]
    try:
        entry["body"] = body.decode()
    except UnicodeDecodeError as e:
        if entry["body_truncated"] and e.start >= len(body) - 3:  # the cut went through a character
            entry["body"] = body[: e.start].decode(errors="replace")
        else:
            entry["body"] = base64.b64encode(body).decode()
            entry["body_encoding"] = "base64"
