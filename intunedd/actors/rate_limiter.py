"""The rate-limiter actor: owns every queue's pace (``policy.rate_limits``) and its admissions.

Each key (a queue) has a config, the admissions its windows can still see, and the random wait
drawn when its last item finished. Callers ask ``next_start``, sleep until the answer's ``at``
(``sleep_until``: the actor itself never sleeps), start the item and say ``admitted``; an
admission is in SQLite before ``admitted`` returns, so a restart, even a crash, never resets a
window and lets a burst through. Random waits are kept in memory only: after a restart the
first item does not wait one.

A command that fails fails alone: its caller gets the exception, the actor goes on.
"""

from __future__ import annotations

import bisect
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

import msgspec
import trio

from ..clock import Clock
from ..errors import ApiError
from ..messages import Reply, ReplySlot, answer
from ..policy import rate_limits
from ..policy.rate_limits import RateLimitConfig, Wait
from ..store import rate_queries
from .store import StoreHandle

log = logging.getLogger(__name__)
INBOX_SIZE = 64


class _Configure(msgspec.Struct, frozen=True):
    key: str
    config: RateLimitConfig
    reply: ReplySlot


class _Forget(msgspec.Struct, frozen=True):
    key: str
    reply: ReplySlot


class _NextStart(msgspec.Struct, frozen=True):
    key: str
    reply: ReplySlot


class _Admitted(msgspec.Struct, frozen=True):
    key: str
    reply: ReplySlot


class _Finished(msgspec.Struct, frozen=True):
    key: str
    reply: ReplySlot


_Command = _Configure | _Forget | _NextStart | _Admitted | _Finished


class RateLimiterStatistics(msgspec.Struct, frozen=True):
    keys: int
    admissions: int  # kept in memory, over all keys
    inbox_used: int
    waiting: int = 0  # keys whose next item waits for a limit or a random wait


@dataclass
class _Pace:
    config: RateLimitConfig
    history: list[datetime]  # oldest first
    finished_at: datetime | None = None
    random_wait_s: float | None = None


@dataclass
class _RateLimiter:
    store: StoreHandle
    clock: Clock
    rng: random.Random
    paces: dict[str, _Pace] = field(default_factory=dict)
    snapshots: dict[str, Wait] = field(default_factory=dict)

    async def handle(self, command: _Command) -> Any:
        if isinstance(command, _Configure):
            return await self.configure(command.key, command.config)
        if isinstance(command, _Forget):
            return await self.forget(command.key)
        if isinstance(command, _NextStart):
            return self.next_start(command.key)
        if isinstance(command, _Admitted):
            return await self.admitted(command.key)
        return self.finished(command.key)

    async def configure(self, key: str, config: RateLimitConfig) -> None:
        now = self.clock.now()
        old = self.paces.get(key)
        if old is None:
            history = rate_limits.prune(await self.store.read(rate_queries.admissions, key), config.limits, now)
            pace = _Pace(config, history)
        else:
            pace = _Pace(config, old.history, old.finished_at, old.random_wait_s)
        # Answered before it is kept: a config the policy cannot apply leaves the old one in place.
        self.snapshots[key] = rate_limits.next_start(config, pace.history, pace.finished_at, pace.random_wait_s, now)
        self.paces[key] = pace

    async def forget(self, key: str) -> None:
        await self.store.write(rate_queries.forget, key)
        self.paces.pop(key, None)
        self.snapshots.pop(key, None)

    def next_start(self, key: str) -> Wait:
        now = self.clock.now()
        pace = self.paces.get(key)
        if pace is None:  # never configured: nothing limits it
            return Wait(at=now, reason=None)
        wait = rate_limits.next_start(pace.config, pace.history, pace.finished_at, pace.random_wait_s, now)
        self.snapshots[key] = wait
        return wait

    async def admitted(self, key: str) -> None:
        pace = self.paces.get(key)
        if pace is None:
            return
        now = self.clock.now()
        pace.finished_at = pace.random_wait_s = None  # the wait before this item is spent
        limits = pace.config.limits
        if limits:
            # In memory first: should the write fail, the item counts all the same (it may have started).
            bisect.insort(pace.history, now)
            pace.history = rate_limits.prune(pace.history, limits, now)
            await self.store.write(rate_queries.admit, key, now, pace.history[0])
        self.next_start(key)

    def finished(self, key: str) -> None:
        pace = self.paces.get(key)
        if pace is None:
            return
        pace.finished_at = self.clock.now()
        random_wait = pace.config.random_wait
        pace.random_wait_s = None if random_wait is None else rate_limits.draw_random_wait(random_wait, self.rng)
        self.next_start(key)

    def statistics(self, inbox: trio.MemoryReceiveChannel[_Command]) -> RateLimiterStatistics:
        now = self.clock.now()
        return RateLimiterStatistics(
            keys=len(self.paces),
            admissions=sum(len(pace.history) for pace in self.paces.values()),
            inbox_used=inbox.statistics().current_buffer_used,
            waiting=sum(1 for wait in self.snapshots.values() if wait.reason is not None and wait.at > now),
        )


class RateLimiterHandle:
    """What the queue runner holds. ``state`` reads the last answer without asking the actor."""

    def __init__(
        self,
        inbox: trio.MemorySendChannel[_Command],
        snapshots: dict[str, Wait],
        stats: Callable[[], RateLimiterStatistics],
    ) -> None:
        self._inbox = inbox
        self._snapshots = snapshots
        self.statistics = stats

    async def _ask(self, make: Callable[[ReplySlot], _Command]) -> Any:
        send, receive = trio.open_memory_channel[Reply[Any]](1)
        async with receive:
            await self._inbox.send(make(send))
            return (await receive.receive()).unwrap()

    async def configure(self, key: str, config: RateLimitConfig) -> None:
        """Create or replace ``key``'s pace; the first time, its stored admissions are loaded."""
        await self._ask(lambda r: _Configure(key=key, config=config, reply=r))

    async def forget(self, key: str) -> None:
        """The queue is gone: its pace and stored admissions too."""
        await self._ask(lambda r: _Forget(key=key, reply=r))

    async def next_start(self, key: str) -> Wait:
        """When ``key``'s next item may start, and why it waits."""
        return await self._ask(lambda r: _NextStart(key=key, reply=r))  # type: ignore[no-any-return]

    async def admitted(self, key: str) -> None:
        """An item of ``key`` started now; stored before this returns."""
        await self._ask(lambda r: _Admitted(key=key, reply=r))

    async def finished(self, key: str) -> None:
        """An item of ``key`` ended now: the next one's random wait starts."""
        await self._ask(lambda r: _Finished(key=key, reply=r))

    def state(self, key: str) -> Wait | None:
        return self._snapshots.get(key)


async def sleep_until(clock: Clock, at: datetime) -> None:
    """Sleep until wall time ``at``, by trio's clock (so tests' autojump clock moves it too)."""
    await trio.sleep(max(0.0, (at - clock.now()).total_seconds()))


async def run_rate_limiter(
    store: StoreHandle,
    *,
    clock: Clock,
    rng: random.Random | None = None,
    task_status: trio.TaskStatus[RateLimiterHandle] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    limiter = _RateLimiter(store, clock, rng or random.Random())
    send, receive = trio.open_memory_channel[_Command](INBOX_SIZE)
    async with receive:
        task_status.started(RateLimiterHandle(send, limiter.snapshots, lambda: limiter.statistics(receive)))
        async for command in receive:
            try:
                reply: Reply[Any] = Reply(value=await limiter.handle(command))
            except Exception as e:  # noqa: BLE001 - one command's failure must not end the actor
                if not isinstance(e, ApiError):
                    log.exception("rate limiter failed handling %s for %r", type(command).__name__, command.key)
                reply = Reply(error=e)
            answer(command.reply, reply)
    raise AssertionError("rate limiter inbox closed")
