"""The store actor: the only owner of the SQLite connection.

Callers send a function; the actor runs it in a worker thread inside one ``BEGIN
IMMEDIATE`` transaction, publishes the events a write produced only after it committed,
and replies. One connection and one thread at a time (``CapacityLimiter(1)``) is what
makes every write atomic and ordered. A write refused because the disk is full rolls back
and is answered ``errors.Unavailable`` (503); the next one that fits succeeds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, NoReturn, ParamSpec, TypeVar

import msgspec
import sqlite_utils
import trio

from ..clock import Clock, iso
from ..errors import disk_full
from ..messages import Publish, Reply, answer
from ..store.queries import Tx

T = TypeVar("T")
P = ParamSpec("P")
INBOX_SIZE = 64


class _Call(msgspec.Struct, frozen=True):
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
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

    async def read(
        self, fn: Callable[Concatenate[sqlite_utils.Database, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``fn(db, *args, **kwargs)`` outside a transaction."""
        return await self._call(fn, args, kwargs, write=False)  # type: ignore[no-any-return]

    async def write(self, fn: Callable[Concatenate[Tx, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(tx, *args, **kwargs)`` in a transaction; its events are published after commit."""
        return await self._call(fn, args, kwargs, write=True)  # type: ignore[no-any-return]

    async def _call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], *, write: bool) -> Any:
        send, receive = trio.open_memory_channel[Reply[Any]](1)
        async with receive:
            await self._inbox.send(_Call(fn, args, kwargs, write, send))
            reply = await receive.receive()
        return reply.unwrap()


def _run_call(db: sqlite_utils.Database, call: _Call, now: str) -> tuple[Any, Tx | None]:
    if not call.write:
        return call.fn(db, *call.args, **call.kwargs), None
    tx = Tx(db, now)
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        value = call.fn(tx, *call.args, **call.kwargs)
        db.conn.execute("COMMIT")
    except BaseException:
        # SQLite rolls back by itself on some errors (SQLITE_FULL among them), and a failed
        # COMMIT can leave the transaction open: end it either way, or every later write fails.
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
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
                answer(call.reply, Reply(error=disk_full(e) or e))
                continue
            if tx is not None and tx.events:
                await bus.send(Publish(events=tx.events))
            answer(call.reply, Reply(value=value))
    raise AssertionError("store inbox closed")
