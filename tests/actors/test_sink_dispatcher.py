"""The sink dispatcher's retry timeline under trio's autojump clock.

A real store holds the outbox; httpx's MockTransport stands in for the receiver, recording
when (in trio time) each attempt arrives.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import msgspec
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

from ..conftest import TrioClock

BASE = datetime(2026, 11, 23, 12, tzinfo=UTC)
CLOCK = TrioClock(BASE)
PROJECT = ProjectVersion(name="p", version=1, path="/x", apis=["a"], api_access=True, max_concurrent=1, deployed_at="t")






HOOK = {"type": "webhook", "url": "http://receiver.test/hook"}
LEAKY_BODY = b"root:x:0:0:internal secrets"


async def _setup(
    nursery: trio.Nursery,
    tmp_path: Path,
    statuses: list[int],
    settings: SinkSettings,
    sink: dict[str, Any] = HOOK,
    *,
    real_network: bool = False,
) -> tuple[StoreHandle, list[float]]:
    arrivals: list[float] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        arrivals.append(trio.current_time())
        return httpx.Response(statuses[min(len(arrivals), len(statuses)) - 1], content=LEAKY_BODY)

    bus = await nursery.start(partial(run_bus, buffer=100))
    store = await nursery.start(partial(run_store, open_db(tmp_path / "d.db"), bus.publisher(), clock=CLOCK))
    client = None if real_network else partial(httpx.AsyncClient, transport=httpx.MockTransport(receiver))
    await nursery.start(partial(run_sink_dispatcher, store, bus, settings, "ws", clock=CLOCK, http_client=client))
    await store.write(queries.record_deploy, PROJECT, {})
    options = RunOptions(max_attempts=1, request_timeout_s=60, save_trace=False, sink=sink)
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


async def test_the_receivers_body_is_neither_stored_nor_published(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """``last_error`` is also what ``delivery.attempted`` publishes (record_attempt emits it)."""
    async with trio.open_nursery() as nursery:
        store, arrivals = await _setup(nursery, tmp_path, [500, 200], SinkSettings())
        await trio.sleep(1)
        (delivery,), _ = await store.read(delivery_queries.list_deliveries, None, None, 10, 0)
        assert (delivery.status, delivery.last_error) == ("pending", "HTTP 500 Internal Server Error")
        nursery.cancel_scope.cancel()


async def test_a_stored_sink_that_no_longer_parses_fails_its_delivery(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Older versions stored project defaults like {"type": "webhook"}: the run still finishes."""
    async with trio.open_nursery() as nursery:
        store, arrivals = await _setup(nursery, tmp_path, [200], SinkSettings(), {"type": "webhook"})
        await trio.sleep(60)
        (delivery,), _ = await store.read(delivery_queries.list_deliveries, None, None, 10, 0)
        assert delivery.status == "failed" and "url" in (delivery.last_error or "")
        assert arrivals == []
        run = await store.read(queries.get_run, "r" * 21)
        assert run is not None and run.status == "completed"
        (entry,) = await store.read(queries.list_quarantine)
        assert (entry["kind"], entry["recordId"]) == ("delivery", delivery.id)
        nursery.cancel_scope.cancel()


def _point_sink_at(tx: queries.Tx, sink: dict[str, Any]) -> None:
    tx.execute("UPDATE deliveries SET sink=?", (msgspec.json.encode(sink).decode(),))


async def test_a_pending_delivery_whose_sink_no_longer_parses_fails(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """A delivery enqueued before today's checks (a metadata-address webhook, say)."""
    async with trio.open_nursery() as nursery:
        store, arrivals = await _setup(nursery, tmp_path, [500], SinkSettings())
        await trio.sleep(1)
        await store.write(_point_sink_at, {"type": "webhook", "url": "http://169.254.169.254/latest/meta-data"})
        await trio.sleep(60)
        (delivery,), _ = await store.read(delivery_queries.list_deliveries, None, None, 10, 0)
        assert delivery.status == "failed" and "not a public address" in (delivery.last_error or "")
        assert len(arrivals) == 1
        (entry,) = await store.read(queries.list_quarantine)
        assert (entry["kind"], entry["recordId"]) == ("delivery", delivery.id)
        nursery.cancel_scope.cancel()


async def _after_first_attempt(store: StoreHandle) -> delivery_queries.Delivery:
    """Resolving names and botocore work in threads, which the autojump clock sees as idle:
    poll, each look costing at least the clock's 0.1 s of real idleness, a thousand at most."""
    for _ in range(1000):
        (delivery,), _ = await store.read(delivery_queries.list_deliveries, None, None, 10, 0)
        if delivery.attempts:
            return delivery
        await trio.sleep(1)
    raise AssertionError("no attempt was made")


async def test_a_name_resolving_to_loopback_is_refused_at_delivery(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    hook = {"type": "webhook", "url": "http://localhost:9/hook"}
    async with trio.open_nursery() as nursery:
        store, _ = await _setup(nursery, tmp_path, [], SinkSettings(), hook, real_network=True)
        delivery = await _after_first_attempt(store)
        assert (delivery.status, delivery.attempts) == ("failed", 1)
        assert "127.0.0.1 is not a public address" in (delivery.last_error or "")
        nursery.cancel_scope.cancel()


async def test_an_s3_endpoint_resolving_to_loopback_is_refused_before_sending(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    bucket = {"type": "s3", "bucket": "b", "accessKeyId": "a", "secretAccessKey": "s", "region": "us-east-1",
              "endpoint": "http://localhost:9", "forcePathStyle": True}  # fmt: skip
    async with trio.open_nursery() as nursery:
        store, _ = await _setup(nursery, tmp_path, [], SinkSettings(), bucket, real_network=True)
        delivery = await _after_first_attempt(store)
        assert (delivery.status, delivery.attempts) == ("failed", 1)
        assert "127.0.0.1 is not a public address" in (delivery.last_error or "")
        nursery.cancel_scope.cancel()
