"""A Chromium of its own for one attempt, reachable over CDP: what ``hooks/setup_context.py`` connects to.

The worker's shared browser gives each attempt a fresh non-default context, which a CDP client does
not see as its ``browser.contexts[0]``. Intuned launches one persistent browser per attempt, so a
hook's ``connect_over_cdp(cdp_url).contexts[0]`` is the attempt's own context; this does the same.
Chromium picks a free port itself (``--remote-debugging-port=0``) and writes it, with the browser's
WebSocket path, to ``DevToolsActivePort`` in the profile folder, so there is no port to race for.
The port listens on 127.0.0.1 only, and only while the attempt runs.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, BrowserType, Page

PROFILE_PREFIX = "intunedd-cdp-"
DEVTOOLS_PORT_FILE = "DevToolsActivePort"
# Chromium writes the file as its DevTools server starts, normally before the launch returns.
DEVTOOLS_TIMEOUT_S = 10.0
DEVTOOLS_POLL_S = 0.02


@asynccontextmanager
async def debuggable_context(
    browser_type: BrowserType, launch: dict[str, Any], options: dict[str, Any]
) -> AsyncIterator[tuple[BrowserContext, Page, str]]:
    """Launch with ``launch`` (as for ``BrowserType.launch``) and context ``options``; yield the
    context, its page and the browser's CDP WebSocket URL; close the browser and remove its profile."""
    profile = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=PROFILE_PREFIX))
    try:
        args = [*launch.get("args", []), "--remote-debugging-port=0"]
        context = await browser_type.launch_persistent_context(profile, **{**launch, "args": args}, **options)
        try:
            url = await devtools_url(profile)
            page = context.pages[0] if context.pages else await context.new_page()
            yield context, page, url
        finally:
            await context.close()  # ends the browser; also finishes the video, if one was recorded
    finally:
        await asyncio.to_thread(shutil.rmtree, profile, True)


async def devtools_url(profile: Path, timeout_s: float = DEVTOOLS_TIMEOUT_S) -> str:
    """``ws://127.0.0.1:<port>/devtools/browser/<id>`` from the ``DevToolsActivePort`` file in ``profile``."""
    async with asyncio.timeout(timeout_s):
        port, path = await devtools_port(profile)
    return f"ws://127.0.0.1:{port}{path}"


async def devtools_port(profile: Path, running: Callable[[], bool] = lambda: True) -> tuple[int, str]:
    """The port and browser path Chromium wrote to ``profile/DevToolsActivePort``, once it has; waits
    while ``running()`` (the caller bounds the wait), else raises BrowserExited."""
    path = profile / DEVTOOLS_PORT_FILE
    while running():
        try:
            lines = path.read_text().splitlines()
        except OSError:  # not written yet
            lines = []
        if len(lines) >= 2 and lines[0].isdigit():
            return int(lines[0]), lines[1]
        await asyncio.sleep(DEVTOOLS_POLL_S)
    raise BrowserExited("Chromium exited before listening for CDP")


class BrowserExited(RuntimeError):
    pass
