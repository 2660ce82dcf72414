"""The event bus: fans committed events out to subscribers.

Each subscriber has its own bounded channel. A subscriber that falls a whole buffer
behind is disconnected rather than allowed to slow the daemon down: its channel is
closed, and a websocket client sees the stream end and can reconnect.
"""

from __future__ import annotations

from typing import NoReturn

import trio

from ..messages import BusCommand, Event, EventFilter, Publish, Subscribe

INBOX_SIZE = 256


class BusHandle:
    def __init__(self, inbox: trio.MemorySendChannel[BusCommand], buffer: int) -> None:
        self._inbox = inbox
        self._buffer = buffer

    def publisher(self) -> trio.MemorySendChannel[BusCommand]:
        return self._inbox.clone()

    async def subscribe(self, filter: EventFilter) -> trio.MemoryReceiveChannel[Event]:
        send, receive = trio.open_memory_channel[Event](self._buffer)
        await self._inbox.send(Subscribe(filter=filter, events=send))
        return receive


async def run_bus(*, buffer: int, task_status: trio.TaskStatus[BusHandle] = trio.TASK_STATUS_IGNORED) -> NoReturn:
    send, receive = trio.open_memory_channel[BusCommand](INBOX_SIZE)
    subscribers: list[Subscribe] = []
    published = dropped = 0
    async with receive:
        task_status.started(BusHandle(send, buffer))
        async for command in receive:
            if isinstance(command, Subscribe):
                subscribers.append(command)
                continue
            assert isinstance(command, Publish)
            published += len(command.events)
            alive: list[Subscribe] = []
            for sub in subscribers:
                if _deliver(sub, command.events):
                    alive.append(sub)
                else:
                    dropped += 1
            subscribers = alive
    raise AssertionError(f"bus inbox closed after {published} events, {dropped} slow subscribers dropped")


def _deliver(sub: Subscribe, events: list[Event]) -> bool:
    try:
        for event in events:
            if sub.filter.matches(event):
                sub.events.send_nowait(event)
    except trio.WouldBlock:
        sub.events.close()
        return False
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return False
    return True
