"""What several test modules share: the autojump clock, wall time that follows it, and the
skip of tests that need Chromium on a machine without one."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import trio
import trio.testing

from intunedd.workers.browser import BrowserNotFoundError, find_browser

NEEDS_CHROMIUM = ("e2e", "chromium")


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    # The store (and file deletes) work in threads, which trio counts as idle: a zero
    # threshold would jump the clock mid-write. 100 ms of real idleness before a jump keeps
    # virtual time honest, even on a busy machine.
    return trio.testing.MockClock(autojump_threshold=0.1)


@dataclass(frozen=True)
class TrioClock:
    """Wall time (the daemon's ``Clock``) that advances with trio's, autojumping, clock."""

    base: datetime

    def now(self) -> datetime:
        return self.base + timedelta(seconds=trio.current_time())


def _chromium_missing() -> str | None:
    try:
        find_browser("auto", True)
    except BrowserNotFoundError as e:
        return str(e)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Under xdist (scripts/test runs two workers), the end-to-end tests stay together on one worker,
    # in order, sharing the session's daemon; the rest are spread over both.
    for item in items:
        if item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.xdist_group("e2e"))
    needing = [item for item in items if any(item.get_closest_marker(m) for m in NEEDS_CHROMIUM)]
    missing = _chromium_missing() if needing else None
    if missing is None:
        return
    skip = pytest.mark.skip(reason=f"needs Chromium, which this machine lacks: {missing}")
    for item in needing:
        item.add_marker(skip)


@contextmanager
def serving(handler: Callable[..., http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded HTTP server on 127.0.0.1 with ``handler``, for as long as the block runs; its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
