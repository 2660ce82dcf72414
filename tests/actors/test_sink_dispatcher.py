"""The sink dispatcher's retry timeline under trio's autojump clock.

A real store holds the outbox; httpx's MockTransport stands in for the receiver, recording
when (in trio time) each attempt arrives.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

from intunedd.actors.bus import run_bus
from intunedd.actors.sink_dispatcher import run_sink_dispatcher
from intunedd.actors.store import StoreHandle, run_store
from intunedd.config import SinkSettings
from intunedd.messages import ProjectVersion, RunOptions
from intunedd.store import delivery_queries, queries
from intunedd.store.db import open_db

BASE = datetime(2026, 11, 23, 12, tzinfo=UTC)
PROJECT = ProjectVersion(name="p", version=1, path="/x", apis=["a"], api_access=True, max_concurrent=1, deployed_at="t")


class TrioClock:
    def now(self) -> datetime:
        return BASE + timedelta(seconds=trio.current_time())


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0.1)  # the store works in a thread: trio would count that as idle


async def _setup(
    nursery: trio.Nursery, tmp_path: Path, statuses: list[int], settings: SinkSettings
) -> tuple[StoreHandle, list[float]]:
    arrivals: list[float] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        arrivals.append(trio.current_time())
        return httpx.Response(statuses[min(len(arrivals), len(statuses)) - 1])

    bus = await nursery.start(partial(run_bus, buffer=100))
    store = await nursery.start(partial(run_store, open_db(tmp_path / "d.db"), bus.publisher(), clock=TrioClock()))
    client = partial(httpx.AsyncClient, transport=httpx.MockTransport(receiver))
    await nursery.start(partial(run_sink_dispatcher, store, bus, settings, "ws", clock=TrioClock(), http_client=client))
    await store.write(queries.record_deploy, PROJECT, {})
    options = RunOptions(max_attempts=1, request_timeout_s=60, save_trace=False,
                         sink={"type": "webhook", "url": "http://receiver.test/hook"})  # fmt: skip
    run = await store.write(queries.insert_run, "r" * 21, PROJECT, "a", {}, options)
    await store.write(partial(queries.finish_run, result={"ok": True}), run, "completed")
    return store, arrivals


async def test_retry_timeline_until_the_window_closes(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        store, arrivals = await _setup(nursery, tmp_path, [500], SinkSettings(webhook_window_s=600))
        await trio.sleep(1200)
        offsets = [round(t - arrivals[0]) for t in arrivals]
        assert offsets == [0, 10, 30, 70, 150, 270, 390, 510]
        (delivery,), _ = await store.read(delivery_queries.list_deliveries, None, None, 10, 0)
        assert (delivery.status, delivery.attempts, delivery.last_status) == ("failed", 8, 500)
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("statuses", "attempts", "status"),
    [([200], 1, "delivered"), ([503, 429, 408, 204], 4, "delivered"), ([404], 1, "failed"), ([500, 400], 2, "failed")],
)
async def test_outcomes(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, statuses: list[int], attempts: int, status: str
) -> None:
    async with trio.open_nursery() as nursery:
        store, arrivals = await _setup(nursery, tmp_path, statuses, SinkSettings())
        await trio.sleep(3600)
        assert len(arrivals) == attempts
        (delivery,), _ = await store.read(delivery_queries.list_deliveries, None, None, 10, 0)
        assert (delivery.status, delivery.attempts) == (status, attempts)
        nursery.cancel_scope.cancel()
