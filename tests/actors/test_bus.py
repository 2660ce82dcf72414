"""The bus bounds each subscriber in bytes as well as in events."""

from __future__ import annotations

from functools import partial

import trio

from intunedd.actors.bus import run_bus
from intunedd.messages import Event, EventFilter, Publish


def _event(i: int, size: int) -> Event:
    return Event(type="t", at="now", run_id="r", data={"i": i, "blob": "x" * size})


async def test_idle_subscriber_over_its_bytes_is_disconnected(nursery: trio.Nursery) -> None:
    bus = await nursery.start(partial(run_bus, buffer=1000, buffer_bytes=10_000, max_event_bytes=100_000))
    idle = await bus.subscribe(EventFilter())
    reader = await bus.subscribe(EventFilter())
    publisher = bus.publisher()
    with trio.fail_after(5):
        for i in range(5):  # 4 KB each: the third puts the idle subscriber over 10 KB
            await publisher.send(Publish(events=[_event(i, 4000)]))
            assert (await reader.receive()).data["i"] == i  # reading keeps a subscriber under its budget
        received = [event.data["i"] async for event in idle]  # ends: the bus closed it
    assert received == [0, 1]


async def test_one_event_over_the_budget_reaches_a_caught_up_subscriber(nursery: trio.Nursery) -> None:
    bus = await nursery.start(partial(run_bus, buffer=10, buffer_bytes=1000, max_event_bytes=100_000))
    events = await bus.subscribe(EventFilter())
    publisher = bus.publisher()
    with trio.fail_after(5):
        await publisher.send(Publish(events=[_event(0, 5000)]))
        assert (await events.receive()).data["i"] == 0
        await publisher.send(Publish(events=[_event(1, 5000)]))
        assert (await events.receive()).data["i"] == 1


async def test_huge_events_are_capped_before_they_are_buffered(nursery: trio.Nursery) -> None:
    bus = await nursery.start(partial(run_bus, buffer=10, buffer_bytes=100_000, max_event_bytes=8000))
    events = await bus.subscribe(EventFilter())
    publisher = bus.publisher()
    with trio.fail_after(5):
        for i in range(5):  # 1 MB each, uncapped: the subscriber would be dropped at the first
            await publisher.send(Publish(events=[_event(i, 1_000_000)]))
        got = [await events.receive() for _ in range(5)]
    assert [e.data["i"] for e in got] == [0, 1, 2, 3, 4]
    assert all("truncated" in e.data["blob"] and len(e.data["blob"]) < 2000 for e in got)
