"""One ``browser: false`` scrape: a plain HTTP request with httpx, no browser.

Runs under trio (the daemon) or asyncio alike: httpx and the overall bound go through anyio. Redirects
are followed up to ``MAX_REDIRECTS``; an answer over ``MAX_BODY_BYTES`` is refused (``_read_bounded``).
A text answer (HTML, XML, JSON, any ``text/*``, or no Content-Type) becomes ``html`` or ``markdown``
and is what ``extract`` reads; anything else is returned as ``body_base64``, as the service does.
``retry_on_block`` retries a 403, a 429 or a captcha page (``blocking``) with the cookies reset to the
request's, up to ``BLOCK_RETRIES`` times. The URL guard has vetted ``request.url`` only: where the
target redirects to is not re-checked here.
"""

from __future__ import annotations

import base64
import dataclasses
import time

import anyio
import httpx

from ..tls import client_context
from .blocking import BLOCK_RETRIES
from .outcome import Fetched, ScrapeOutcome, failed, finish, timed_out
from .request import MethodPost, ScrapeRequest

MAX_REDIRECTS = 10
MAX_BODY_BYTES = 10 * 1024 * 1024
# Many sites refuse httpx's own User-Agent outright; a request's headers may set another.
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml", "application/javascript")


async def scrape_http(
    request: ScrapeRequest,
    *,
    timeout_s: float,
    proxy: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ScrapeOutcome:
    """Fetch ``request.url`` (already normalised by the URL guard) within ``timeout_s``, retries included."""
    started = time.perf_counter()
    headers = httpx.Headers({"User-Agent": USER_AGENT})
    if request.language:
        headers["Accept-Language"] = request.language
    headers.update(request.headers or {})
    try:
        with anyio.fail_after(timeout_s):
            async with httpx.AsyncClient(
                verify=client_context(),
                headers=headers,
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                timeout=timeout_s,
                proxy=proxy,
                transport=transport,
            ) as client:
                attempts = 1 + (BLOCK_RETRIES if request.retry_on_block else 0)
                for attempt in range(attempts):
                    _reset_cookies(client, request)
                    outcome = await _fetch_once(client, request, started=started)
                    if outcome.block_reason is None or attempt == attempts - 1:
                        return dataclasses.replace(outcome, retries=attempt)
    except (TimeoutError, httpx.TimeoutException):
        return timed_out(request, timeout_s, started=started)
    raise AssertionError("unreachable: the last attempt always returns")


def _reset_cookies(client: httpx.AsyncClient, request: ScrapeRequest) -> None:
    client.cookies.clear()
    for name, value in (request.cookies or {}).items():
        client.cookies.set(name, ("true" if value else "false") if isinstance(value, bool) else str(value))


async def _fetch_once(client: httpx.AsyncClient, request: ScrapeRequest, *, started: float) -> ScrapeOutcome:
    method, target, body, headers = "GET", request.url, None, {}
    if isinstance(request.http_method, MethodPost):
        body, body_type = request.http_method.body()
        method, target, headers = "POST", request.http_method.url or request.url, {"Content-Type": body_type}
    try:
        async with client.stream(method, target, content=body, headers=headers) as response:
            content = await _read_bounded(response)
    except httpx.TimeoutException:
        raise
    except (httpx.HTTPError, httpx.InvalidURL) as e:
        return failed(request, f"Could not load {target}: {e or type(e).__name__}", started=started)
    if content is None:
        return failed(request, f"The answer from {target} is over {MAX_BODY_BYTES} bytes", started=started)
    content_type = response.headers.get("content-type")
    is_text = content_type is None or content_type.lower().startswith(_TEXT_TYPES) or "+xml" in content_type
    fetched = Fetched(
        status=response.status_code,
        html=content.decode(response.encoding or "utf-8", errors="replace") if is_text else None,
        content_type=content_type,
        body_base64=None if is_text else base64.b64encode(content).decode(),
    )
    return finish(request, fetched, started=started)


async def _read_bounded(response: httpx.Response) -> bytes | None:
    """The body, or None when it is over ``MAX_BODY_BYTES``.

    A declared length over the bound is refused unread. An undeclared one is read to its end (within the
    scrape's timeout) but not kept: leaving httpx's stream early under trio abandons its inner async
    generators (encode/httpx#3686), and trio warns about each.
    """
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size <= MAX_BODY_BYTES:
            chunks.append(chunk)
    return b"".join(chunks) if size <= MAX_BODY_BYTES else None
