"""API ``details/get`` (nested under api/details/): the title and first <h1> of ``params["url"]``."""

from typing import Any

from playwright.async_api import Page


async def automation(page: Page, params: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
    await page.goto(params["url"])
    # all_inner_texts() does not wait, so a page without an <h1> answers None instead of timing out.
    headings = await page.locator("h1").all_inner_texts()
    return {"title": await page.title(), "h1": headings[0].strip() if headings else None}
