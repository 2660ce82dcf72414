"""``wait_for_network_settled``: run an action, then wait until the page's requests are done.

Usable three ways, as Intuned documents: ``await wait_for_network_settled(page=..., func=...)``,
``@wait_for_network_settled`` and ``@wait_for_network_settled(timeout_s=..., max_inflight_requests=...)``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, overload

from playwright.async_api import Page, Request

from intunedd.workers.shim.intuned_browser._decorating import AsyncFunction, waiting_decorator

logger = logging.getLogger("intuned_browser")

T = TypeVar("T")

# The network counts as settled once no request started or ended for this long.
QUIET_S = 0.5


class NetworkWatch:
    """Counts the page's requests in flight from the moment it is entered."""

    def __init__(self, page: Page) -> None:
        self._page = page
        self._inflight: set[Request] = set()
        self._activity = asyncio.Event()

    def __enter__(self) -> NetworkWatch:
        self._page.on("request", self._started)
        self._page.on("requestfinished", self._ended)
        self._page.on("requestfailed", self._ended)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._page.remove_listener("request", self._started)
        self._page.remove_listener("requestfinished", self._ended)
        self._page.remove_listener("requestfailed", self._ended)

    def _started(self, request: Request) -> None:
        self._inflight.add(request)
        self._activity.set()

    def _ended(self, request: Request) -> None:
        self._inflight.discard(request)
        self._activity.set()

    async def wait_settled(self, timeout_s: float, max_inflight_requests: int = 0) -> bool:
        """True once at most ``max_inflight_requests`` are in flight and the network was quiet for
        ``QUIET_S``; False (after logging a warning) if that did not happen within ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    self._activity.clear()
                    if len(self._inflight) <= max_inflight_requests:
                        try:
                            async with asyncio.timeout(QUIET_S):
                                await self._activity.wait()
                        except TimeoutError:
                            return True
                    else:
                        await self._activity.wait()
        except TimeoutError:
            logger.warning("network did not settle within %s s (%d requests in flight)", timeout_s, len(self._inflight))
            return False


async def run_and_wait_network_settled(
    page: Page, func: Callable[[], Awaitable[T]], timeout_s: float = 30, max_inflight_requests: int = 0
) -> T:
    with NetworkWatch(page) as watch:
        result = await func()
        await watch.wait_settled(timeout_s, max_inflight_requests)
    return result


@overload
def wait_for_network_settled(func: AsyncFunction, /) -> AsyncFunction: ...


@overload
def wait_for_network_settled(
    *, timeout_s: float = 30, max_inflight_requests: int = 0
) -> Callable[[AsyncFunction], AsyncFunction]: ...


@overload
def wait_for_network_settled(
    *, page: Page, func: Callable[[], Awaitable[T]], timeout_s: float = 30, max_inflight_requests: int = 0
) -> Coroutine[Any, Any, T]: ...


def wait_for_network_settled(*args: Any, **kwargs: Any) -> Any:
    """Run ``func`` and wait for ``page``'s network to settle, or decorate a function that takes a page.

    A timeout is logged, not raised: the page may keep polling forever and still be usable.
    """
    if "func" in kwargs or "page" in kwargs:
        return run_and_wait_network_settled(*args, **kwargs)
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return _decorator()(args[0])
    if args:
        raise TypeError("wait_for_network_settled takes page= and func=, or decorates a function")
    return _decorator(**kwargs)


def _decorator(timeout_s: float = 30, max_inflight_requests: int = 0) -> Callable[[AsyncFunction], AsyncFunction]:
    return waiting_decorator(
        "wait_for_network_settled",
        ("page",),
        (Page,),
        run_and_wait_network_settled,
        timeout_s=timeout_s,
        max_inflight_requests=max_inflight_requests,
    )
