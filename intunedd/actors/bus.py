"""The event bus: fans committed events out to subscribers.

Each subscriber has its own bounded channel, bounded twice: in events
(``events.subscriber_buffer``) and in bytes (``events.subscriber_buffer_bytes``), so a few
huge events cannot pile up where a thousand small ones may. A subscriber that goes over
either is disconnected rather than allowed to slow the daemon down or fill its memory: its
channel is closed, and a websocket client sees the stream end and can reconnect. An event
is capped at ``events.max_event_bytes`` and sized once, when the first subscriber wants it.
"""

from __future__ import annotations

from collections import deque
from typing import NoReturn

import trio

from ..config import EventSettings
from ..messages import BusCommand, Event, EventFilter, Publish, Subscribe
from ..policy.event_size import capped

INBOX_SIZE = 256
_DEFAULTS = EventSettings()


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


class _Subscriber:
    """A subscription and the sizes of the events sent to it that it has not read yet."""

    def __init__(self, subscription: Subscribe) -> None:
        self.filter = subscription.filter
        self.events = subscription.events
        self._sizes: deque[int] = deque()
        self.unread_bytes = 0

    def forget_read(self) -> None:
        # The channel is first in, first out: the events still in its buffer are the newest sent.
        unread = self.events.statistics().current_buffer_used
        while len(self._sizes) > unread:
            self.unread_bytes -= self._sizes.popleft()

    def sent(self, size: int) -> None:
        self._sizes.append(size)
        self.unread_bytes += size


async def run_bus(
    *,
    buffer: int,
    buffer_bytes: int = _DEFAULTS.subscriber_buffer_bytes,
    max_event_bytes: int = _DEFAULTS.max_event_bytes,
    task_status: trio.TaskStatus[BusHandle] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    send, receive = trio.open_memory_channel[BusCommand](INBOX_SIZE)
    subscribers: list[_Subscriber] = []
    published = dropped = 0
    async with receive:
        task_status.started(BusHandle(send, buffer))
        async for command in receive:
            if isinstance(command, Subscribe):
                subscribers.append(_Subscriber(command))
                continue
            assert isinstance(command, Publish)
            published += len(command.events)
            # Capped and sized on first use: an event no subscriber wants is never encoded.
            sized: dict[int, tuple[Event, int]] = {}
            alive: list[_Subscriber] = []
            for sub in subscribers:
                if _deliver(sub, command.events, sized, max_event_bytes, buffer_bytes):
                    alive.append(sub)
                else:
                    dropped += 1
            subscribers = alive
    raise AssertionError(f"bus inbox closed after {published} events, {dropped} slow subscribers dropped")


def _deliver(
    sub: _Subscriber,
    events: list[Event],
    sized: dict[int, tuple[Event, int]],
    max_event_bytes: int,
    max_unread_bytes: int,
) -> bool:
    sub.forget_read()
    try:
        for index, original in enumerate(events):
            if not sub.filter.matches(original):
                continue
            if index not in sized:
                sized[index] = capped(original, max_event_bytes)
            event, size = sized[index]
            # A subscriber that has read everything takes any one event, however big.
            if sub.unread_bytes and sub.unread_bytes + size > max_unread_bytes:
                raise trio.WouldBlock
            sub.events.send_nowait(event)
            sub.sent(size)
    except trio.WouldBlock:
        sub.events.close()
        return False
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return False
    return True
