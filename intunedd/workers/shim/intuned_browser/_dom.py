"""``wait_for_dom_settled``: wait until a page's or element's DOM stops changing.

Usable four ways, as Intuned documents: ``await wait_for_dom_settled(page)`` (returns True),
``await wait_for_dom_settled(source=..., func=...)`` (returns what ``func`` returns),
``@wait_for_dom_settled`` and ``@wait_for_dom_settled(settle_duration=..., timeout_s=...)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, overload

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page

from intunedd.workers.shim.intuned_browser._decorating import AsyncFunction, waiting_decorator

T = TypeVar("T")

# Resolves true once ``root`` had no mutation for ``settleMs``, false when ``timeoutMs`` passes first.
_SETTLE_JS = """(root, [settleMs, timeoutMs]) => new Promise((resolve) => {
    let quiet;
    const done = (settled) => { observer.disconnect(); clearTimeout(quiet); clearTimeout(limit); resolve(settled); };
    const observer = new MutationObserver(() => {
        clearTimeout(quiet);
        quiet = setTimeout(() => done(true), settleMs);
    });
    const limit = setTimeout(() => done(false), timeoutMs);
    observer.observe(root, { childList: true, subtree: true, attributes: true, characterData: true });
    quiet = setTimeout(() => done(true), settleMs);
})"""
_PAGE_SETTLE_JS = f"(options) => ({_SETTLE_JS})(document.documentElement, options)"


async def wait_dom_settled(source: Page | Locator, settle_duration: float = 0.5, timeout_s: float = 30.0) -> bool:
    """True once ``source``'s DOM had no mutation for ``settle_duration`` seconds.

    Raises TimeoutError if that does not happen within ``timeout_s``. A navigation meanwhile
    replaces the document, so the wait starts over on the new one, within the same time limit.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (remaining := deadline - loop.time()) > 0:
        options = [settle_duration * 1000, remaining * 1000]
        try:
            if isinstance(source, Page):
                settled = await source.evaluate(_PAGE_SETTLE_JS, options)
            else:
                settled = await source.evaluate(_SETTLE_JS, options, timeout=remaining * 1000)
        except PlaywrightError as e:
            if "context was destroyed" not in e.message:
                raise
            continue
        if settled:
            return True
        break
    raise TimeoutError(f"the DOM did not settle within {timeout_s} s")


async def run_and_wait_dom_settled(
    source: Page | Locator, func: Callable[[], Awaitable[T]], settle_duration: float = 0.5, timeout_s: float = 30.0
) -> T:
    result = await func()
    await wait_dom_settled(source, settle_duration, timeout_s)
    return result


@overload
def wait_for_dom_settled(
    source: Page | Locator, *, settle_duration: float = 0.5, timeout_s: float = 30.0
) -> Coroutine[Any, Any, bool]: ...


@overload
def wait_for_dom_settled(
    *, source: Page | Locator, func: Callable[[], Awaitable[T]], settle_duration: float = 0.5, timeout_s: float = 30.0
) -> Coroutine[Any, Any, T]: ...


@overload
def wait_for_dom_settled(func: AsyncFunction, /) -> AsyncFunction: ...


@overload
def wait_for_dom_settled(
    *, settle_duration: float = 0.5, timeout_s: float = 30.0
) -> Callable[[AsyncFunction], AsyncFunction]: ...


def wait_for_dom_settled(*args: Any, **kwargs: Any) -> Any:
    """Wait for ``source``'s DOM to settle, optionally after running ``func``, or decorate a function
    that takes a page (or ``source``)."""
    if "func" in kwargs:
        return run_and_wait_dom_settled(*args, **kwargs)
    if "source" in kwargs or (args and isinstance(args[0], Page | Locator)):
        return wait_dom_settled(*args, **kwargs)
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return _decorator()(args[0])
    if args:
        raise TypeError("wait_for_dom_settled takes a Page or Locator, or decorates a function")
    return _decorator(**kwargs)


def _decorator(settle_duration: float = 0.5, timeout_s: float = 30.0) -> Callable[[AsyncFunction], AsyncFunction]:
    return waiting_decorator(
        "wait_for_dom_settled",
        ("page", "source"),
        (Page, Locator),
        run_and_wait_dom_settled,
        settle_duration=settle_duration,
        timeout_s=timeout_s,
    )
