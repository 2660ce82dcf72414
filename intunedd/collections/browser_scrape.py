"""One ``browser: true`` scrape, in a fresh browser context the caller owns (and closes).

``context_options(request)`` are the ``Browser.new_context`` options the request needs (viewport and mobile
emulation, which only a new context can take); ``scrape_in_page`` then does the rest on a new page:
headers (and ``language`` as Accept-Language) on the page; cookies for the target URL on the context;
``block_resources`` / ``block_requests`` by routing every request of the page; navigation; the actions;
the screenshot (full page, PNG); the final DOM as html or markdown.

``http_method: post`` navigates with a POST: a page route catches the page's first request (the
navigation itself) and continues it with the method, body and Content-Type changed, so the browser
renders the answer as it would a form submission, redirects and cookies included. ``http_method.url``
is then the URL navigated to. (Fetching with ``page.request`` and ``set_content`` instead would lose the
answer's origin: relative links, scripts and cookies would not work.)

``retry_on_block``: after a 403, a 429 or a captcha marker (``blocking``) the page is closed, the
context's cookies reset to the request's, and a new page tries again, up to ``BLOCK_RETRIES`` times.
Everything, retries included, is bounded by ``timeout_s``; page errors become a ``ScrapeOutcome`` with a
message, never an exception.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
from typing import Any

from playwright.async_api import BrowserContext, Page, Route, ViewportSize
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Response as PlaywrightResponse
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from .blocking import BLOCK_RETRIES
from .browser_actions import ActionFailed, Gathered, first_line, run_actions
from .network_capture import Capture
from .outcome import Fetched, ScrapeOutcome, failed, finish, timed_out
from .request import Evaluate, MethodPost, ScrapeRequest, While

DESKTOP = ViewportSize(width=1920, height=1080)
MOBILE = ViewportSize(width=390, height=844)
# An iPhone's Safari, to go with the mobile viewport: sites pick their mobile layout by it.
MOBILE_USER_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
ACTION_TIMEOUT_MS = 30_000  # each Playwright call's own bound, below the scrape's


def context_options(request: ScrapeRequest) -> dict[str, Any]:
    """``Browser.new_context`` keyword arguments for ``request``'s window size (``any``: Playwright's default)."""
    match request.window_size:
        case "mobile":
            return {
                "viewport": MOBILE,
                "is_mobile": True,
                "has_touch": True,
                "device_scale_factor": 3,
                "user_agent": MOBILE_USER_AGENT,
            }
        case "" | "desktop":
            return {"viewport": DESKTOP}
        case _:
            return {}


async def scrape_in_page(context: BrowserContext, request: ScrapeRequest, *, timeout_s: float) -> ScrapeOutcome:
    """Scrape ``request.url`` (already normalised by the URL guard) in ``context``, within ``timeout_s``."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            await _set_cookies(context, request)
            attempts = 1 + (BLOCK_RETRIES if request.retry_on_block else 0)
            for attempt in range(attempts):
                outcome = await _scrape_once(context, request, started=started, timeout_s=timeout_s)
                if outcome.block_reason is None or attempt == attempts - 1:
                    return dataclasses.replace(outcome, retries=attempt)
                await context.clear_cookies()
                await _set_cookies(context, request)
    except TimeoutError:
        return timed_out(request, timeout_s, started=started)
    except PlaywrightError as e:  # the context itself failed (closed, or the browser is gone)
        return failed(request, f"The browser failed: {first_line(e.message)}", started=started)
    raise AssertionError("unreachable: the last attempt always returns")


async def _set_cookies(context: BrowserContext, request: ScrapeRequest) -> None:
    if request.cookies:
        cookies = request.cookies.items()
        await context.add_cookies([{"name": k, "value": _cookie_text(v), "url": request.url} for k, v in cookies])


def _cookie_text(value: str | int | float | bool) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


async def _scrape_once(
    context: BrowserContext, request: ScrapeRequest, *, started: float, timeout_s: float
) -> ScrapeOutcome:
    page = await context.new_page()
    try:
        page.set_default_timeout(min(ACTION_TIMEOUT_MS, timeout_s * 1000))
        page.set_default_navigation_timeout(timeout_s * 1000)
        capture = Capture(request.network_capture) if request.network_capture is not None else None
        if capture is not None:
            page.on("response", capture.on_response)
        await _prepare_page(page, request)
        try:
            response = await _navigate(page, request)
        except PlaywrightTimeoutError:  # its bound is the scrape's: the scrape timed out
            return timed_out(request, timeout_s, started=started)
        except PlaywrightError as e:
            return failed(request, f"Could not load {request.url}: {first_line(e.message)}", started=started)
        if request.network_capture is not None and request.network_capture.listen_after_load_ms:
            await asyncio.sleep(request.network_capture.listen_after_load_ms / 1000)
        gathered = Gathered()
        error = None
        try:
            await run_actions(page, request.actions or [], gathered)
        except ActionFailed as e:
            error = str(e)
        fetched = Fetched(
            status=response.status if response is not None else None,
            html=await page.content(),
            content_type=response.headers.get("content-type") if response is not None else None,
            screenshot=await _screenshot(page) if request.screenshot else None,
            extracted=dict(gathered.extracted) if gathered.extracted else None,
            evaluate_results=gathered.evaluate_results if _has_evaluate(request) else None,
            network_requests=await capture.finish() if capture is not None else None,
            error=error,
        )
        return finish(request, fetched, started=started)
    finally:
        await page.close()


def _has_evaluate(request: ScrapeRequest) -> bool:
    """Whether ``evaluate_results`` belongs in the answer (a list, maybe empty) rather than null."""
    for action in request.actions or []:
        inner = action.actions if isinstance(action, While) else [action]
        if any(isinstance(a, Evaluate) for a in inner):
            return True
    return False


async def _prepare_page(page: Page, request: ScrapeRequest) -> None:
    viewport = context_options(request).get("viewport")
    if viewport is not None:  # in case the context was made without context_options: the size, at least
        await page.set_viewport_size(viewport)
    headers = dict(request.headers or {})
    if request.language and not any(name.lower() == "accept-language" for name in headers):
        headers["Accept-Language"] = request.language
    if headers:
        await page.set_extra_http_headers(headers)
    blocked_types = frozenset(request.block_resources or ())
    blocked_parts = [part.lower() for part in request.block_requests or ()]
    if blocked_types or blocked_parts:

        async def block(route: Route) -> None:
            url = route.request.url.lower()
            if route.request.resource_type in blocked_types or any(part in url for part in blocked_parts):
                await route.abort("blockedbyclient")
            else:
                await route.fallback()

        await page.route("**/*", block)


async def _navigate(page: Page, request: ScrapeRequest) -> PlaywrightResponse | None:
    method = request.http_method
    if not isinstance(method, MethodPost):
        return await page.goto(request.url)
    body, content_type = method.body()

    async def post(route: Route) -> None:
        headers = {**route.request.headers, "content-type": content_type}
        await route.continue_(method="POST", post_data=body, headers=headers)

    # Registered last, so it sees the first request before the blocking route; times=1: only that one.
    await page.route("**/*", post, times=1)
    return await page.goto(method.url or request.url)


async def _screenshot(page: Page) -> str:
    return base64.b64encode(await page.screenshot(full_page=True, type="png")).decode()
