"""``go_to_url``: ``page.goto`` with retries, a tolerated timeout, and a wait for the network to settle."""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from intunedd.workers.shim.intuned_browser._network import NetworkWatch
from intunedd.workers.shim.intuned_browser._unavailable import needs_hosted_ai

logger = logging.getLogger("intuned_browser")

# The first retry waits this long, each later one twice as long as the one before.
FIRST_BACKOFF_S = 0.5

LoadState = Literal["commit", "domcontentloaded", "load", "networkidle"]


async def go_to_url(
    page: Page,
    url: str,
    *,
    timeout_s: int = 30,
    retries: int = 3,
    wait_for_load_state: LoadState = "load",
    throw_on_timeout: bool = False,
    wait_for_load_using_ai: bool = False,
    model: str = "gpt-5-mini-2025-08-07",
    api_key: str | None = None,
) -> None:
    """Navigate ``page`` to ``url``, then wait (up to ``timeout_s``) for its network to settle.

    A failed navigation is tried again, ``retries`` attempts in all, with exponential backoff; the
    last failure is raised. A navigation that times out is not retried: it is raised when
    ``throw_on_timeout``, else logged and the page is left as it is.
    """
    if wait_for_load_using_ai:
        raise needs_hosted_ai("go_to_url(wait_for_load_using_ai=True)")
    with NetworkWatch(page) as watch:
        if await _navigate(page, url, timeout_s, max(retries, 1), wait_for_load_state, throw_on_timeout):
            await watch.wait_settled(timeout_s)


async def _navigate(
    page: Page, url: str, timeout_s: float, attempts: int, load_state: LoadState, throw_on_timeout: bool
) -> bool:
    """Whether the navigation completed; False when it timed out and that is tolerated."""
    failures = 0
    while True:
        try:
            await page.goto(url, timeout=timeout_s * 1000, wait_until=load_state)
            return True
        except PlaywrightTimeoutError:
            if throw_on_timeout:
                raise
            logger.warning("go_to_url: %s did not reach %r within %s s; continuing", url, load_state, timeout_s)
            return False
        except PlaywrightError as e:
            failures += 1
            if failures == attempts:
                raise
            backoff = FIRST_BACKOFF_S * 2 ** (failures - 1)
            logger.warning("go_to_url: navigating to %s failed (%s); retrying in %s s", url, e.message, backoff)
            await asyncio.sleep(backoff)
