"""API ``list``: the page title and the text of every ``.quote`` element on ``params["url"]``."""

from typing import Any

from intuned_runtime import attempt_store
from playwright.async_api import Page


async def automation(page: Page, params: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
    # attempt_store is scratch space that lives for this attempt only; a retry starts empty.
    attempt_store.set("visits", attempt_store.get("visits", 0) + 1)
    await page.goto(params["url"])
    quotes = await page.locator(".quote").all_inner_texts()
    return {
        "title": await page.title(),
        "quotes": [quote.strip() for quote in quotes],
        "visits": attempt_store.get("visits"),
    }
