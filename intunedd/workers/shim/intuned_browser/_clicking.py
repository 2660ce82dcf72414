"""``click_until_exhausted``: click a "load more" button until it, or the content, gives out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from playwright.async_api import Locator, Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from intunedd.workers.shim.intuned_browser._network import run_and_wait_network_settled

# How long the button may take to become actionable before it counts as gone.
BUTTON_TIMEOUT_MS = 5000


async def click_until_exhausted(
    page: Page,
    button_locator: Locator,
    heartbeat: Callable[[], None] = lambda: None,
    *,
    container_locator: Locator | None = None,
    max_clicks: int = 50,
    click_delay: float = 0.5,
    no_change_threshold: int = 0,
) -> None:
    """Click ``button_locator`` (waiting for the network to settle and ``click_delay`` after each click)
    until it is hidden or disabled, ``max_clicks`` is reached, or ``container_locator``'s number of
    child elements grew by no more than ``no_change_threshold`` in a click."""
    count = await _child_count(container_locator)
    for _ in range(max_clicks):
        try:
            if not await _clickable(button_locator):
                return
            await run_and_wait_network_settled(page, lambda: button_locator.click(timeout=BUTTON_TIMEOUT_MS))
        except PlaywrightTimeoutError:
            return  # it went away (or became covered) between the check and the click
        heartbeat()
        await asyncio.sleep(click_delay)
        if container_locator is not None:
            previous, count = count, await _child_count(container_locator)
            if count - previous <= no_change_threshold:
                return


async def _clickable(button: Locator) -> bool:
    return await button.is_visible() and await button.is_enabled(timeout=BUTTON_TIMEOUT_MS)


async def _child_count(container: Locator | None) -> int:
    if container is None:
        return 0
    return int(await container.evaluate("(element) => element.childElementCount"))
