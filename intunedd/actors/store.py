"""The store actor: the only owner of the SQLite connection.

Callers send a function; the actor runs it in a worker thread inside one ``BEGIN
IMMEDIATE`` transaction, publishes the events a write produced only after it committed,
and replies. One connection and one thread at a time (``CapacityLimiter(1)``) is what
makes every write atomic and ordered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import msgspec
import sqlite_utils
import trio

from ..clock import Clock, iso
from ..messages import Publish, Reply, answer
from ..store.queries import Tx

T = TypeVar("T")
INBOX_SIZE = 64


class _Call(msgspec.Struct, frozen=True):
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    write: bool
    reply: trio.MemorySendChannel[Reply[Any]]


class StoreStatistics(msgspec.Struct, frozen=True):
    calls: int
    writes: int
    inbox_used: int


class StoreHandle:
    """What other actors and the HTTP layer hold: ``read`` and ``write`` requests."""

    def __init__(self, inbox: trio.MemorySendChannel[_Call], stats: Callable[[], StoreStatistics]) -> None:
        self._inbox = inbox
        self.statistics = stats

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._call(fn, args, write=False)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(tx, *args)`` in a transaction; its events are published after commit."""
        return await self._call(fn, args, write=True)

    async def _call(self, fn: Callable[..., T], args: tuple[Any, ...], *, write: bool) -> T:
        send, receive = trio.open_memory_channel[Reply[Any]](1)
        async with receive:
            await self._inbox.send(_Call(fn, args, write, send))
            reply = await receive.receive()
        return reply.unwrap()  # type: ignore[no-any-return]


def _run_call(db: sqlite_utils.Database, call: _Call, now: str) -> tuple[Any, Tx | None]:
    if not call.write:
        return call.fn(db, *call.args), None
    tx = Tx(db, now)
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        value = call.fn(tx, *call.args)
    except BaseException:
        db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")
    return value, tx


async def run_store(
    db: sqlite_utils.Database,
    bus: trio.MemorySendChannel[Publish],
    *,
    clock: Clock,
    task_status: trio.TaskStatus[StoreHandle] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    send, receive = trio.open_memory_channel[_Call](INBOX_SIZE)
    limiter = trio.CapacityLimiter(1)
    counts = {"calls": 0, "writes": 0}

    def stats() -> StoreStatistics:
        return StoreStatistics(
            calls=counts["calls"], writes=counts["writes"], inbox_used=receive.statistics().current_buffer_used
        )

    async with receive, bus:
        task_status.started(StoreHandle(send, stats))
        async for call in receive:
            counts["calls"] += 1
            counts["writes"] += call.write
            try:
                value, tx = await trio.to_thread.run_sync(_run_call, db, call, iso(clock.now()), limiter=limiter)
            except Exception as e:  # noqa: BLE001 - the caller's error, handed back to the caller
                answer(call.reply, Reply(error=e))
                continue
            if tx is not None and tx.events:
                await bus.send(Publish(events=tx.events))
            answer(call.reply, Reply(value=value))
    raise AssertionError("store inbox closed")
