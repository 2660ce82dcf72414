"""``download_file``: start a download by URL, by clicking, or by any action, and return it."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from playwright.async_api import Download, Locator, Page
from playwright.async_api import Error as PlaywrightError

from intunedd.workers.shim.intuned_browser._urls import join_url

# A URL (relative to the page's), an element to click, or a function of the page, sync or async.
Trigger = str | Locator | Callable[[Page], Any]


async def download_file(page: Page, trigger: Trigger, *, timeout_s: int = 5) -> Download:
    """The Playwright ``Download`` that ``trigger`` starts within ``timeout_s`` seconds.

    A URL is opened in a new tab of the page's context, which is closed once the file is saved.
    """
    timeout_ms = timeout_s * 1000
    if isinstance(trigger, str):
        return await _download_url(page, join_url(page.url, trigger), timeout_ms)
    async with page.expect_download(timeout=timeout_ms) as started:
        if isinstance(trigger, Locator):
            await trigger.click(timeout=timeout_ms)
        else:
            result = trigger(page)
            if inspect.isawaitable(result):
                await result
    return await started.value


async def _download_url(page: Page, url: str, timeout_ms: float) -> Download:
    tab = await page.context.new_page()
    try:
        async with tab.expect_download(timeout=timeout_ms) as started:
            try:
                await tab.goto(url, timeout=timeout_ms)
            except PlaywrightError as e:
                # Playwright fails a navigation that turns into a download with this message; any
                # other failure means no download is coming.
                if "Download is starting" not in e.message:
                    raise
        download = await started.value
        await download.path()  # the file must be complete before its tab closes
        return download
    finally:
        await tab.close()
