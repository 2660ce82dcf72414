"""``scroll_to_load_content``: scroll to the bottom until an infinite list stops growing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from playwright.async_api import Locator, Page

# Scrolls the element (the page's scrolling element for a Page) to its end; answers its height before.
_SCROLL_JS = "(root) => { const height = root.scrollHeight; root.scrollTop = height; return height; }"
_HEIGHT_JS = "(root) => root.scrollHeight"
_PAGE_ROOT = "document.scrollingElement ?? document.documentElement"


async def scroll_to_load_content(
    source: Page | Locator,
    *,
    on_scroll_progress: Callable[[], None] = lambda: None,
    max_scrolls: int = 50,
    delay_s: float = 0.1,
    min_height_change: int = 100,
) -> None:
    """Scroll ``source`` to its bottom, ``max_scrolls`` times at most, until a scroll followed by
    ``delay_s`` seconds grows its height by less than ``min_height_change`` pixels."""
    for _ in range(max_scrolls):
        before = await _evaluate(source, _SCROLL_JS)
        on_scroll_progress()
        await asyncio.sleep(delay_s)
        if await _evaluate(source, _HEIGHT_JS) - before < min_height_change:
            return


async def _evaluate(source: Page | Locator, script: str) -> int:
    if isinstance(source, Page):
        return int(await source.evaluate(f"() => ({script})({_PAGE_ROOT})"))
    return int(await source.evaluate(script))
