"""The browser-pool supervisor: N worker slots, each keeping one warm worker process.

A slot spawns its worker, offers it on the ``idle`` channel, and waits for the lease to
come back with a verdict. A worker that crashed, timed out or was aborted without
answering is killed and replaced; a healthy one is offered again, or recycled after a
number of attempts or past a memory ceiling. The daemon's total concurrency is the
number of slots, because every attempt holds one lease.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import NoReturn

import msgspec
import psutil
import trio

from ..workers.process import WORKER_COMMAND, Lease, Verdict, WorkerDied, WorkerProcess, spawn_worker
from ..workers.protocol import WorkerConfig
from ..workers.sandbox import WorkerUser

log = logging.getLogger(__name__)
RESPAWN_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
RSS_CHECK_EVERY = 10


class PoolStatistics(msgspec.Struct, frozen=True):
    size: int
    idle: int
    spawned: int
    killed: int
    recycled: int
    last_spawn_error: str | None


class PoolHandle:
    def __init__(self, idle: trio.MemoryReceiveChannel[Lease], stats: _Stats) -> None:
        self._idle = idle
        self._stats = stats

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[Lease]:
        lease = await self._idle.receive()
        try:
            yield lease
        finally:
            lease.release()

    def statistics(self) -> PoolStatistics:
        return PoolStatistics(
            size=self._stats.size,
            idle=self._idle.statistics().current_buffer_used,
            spawned=self._stats.spawned,
            killed=self._stats.killed,
            recycled=self._stats.recycled,
            last_spawn_error=self._stats.last_spawn_error,
        )


class _Stats:
    def __init__(self, size: int) -> None:
        self.size = size
        self.spawned = self.killed = self.recycled = 0
        self.last_spawn_error: str | None = None


def _rss_mb(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
        return float(sum(p.memory_info().rss for p in processes)) / (1024 * 1024)
    except psutil.Error:
        return 0.0


async def run_browser_pool(
    config: WorkerConfig,
    env: Mapping[str, str],
    *,
    size: int,
    recycle_after_attempts: int,
    recycle_rss_mb: int,
    start_timeout_s: float,
    user: WorkerUser | None = None,
    command: Sequence[str] = WORKER_COMMAND,
    task_status: trio.TaskStatus[PoolHandle] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    idle_send, idle_receive = trio.open_memory_channel[Lease](size)
    stats = _Stats(size)

    async def spawn() -> WorkerProcess:
        failures = 0
        while True:
            try:
                worker = await spawn_worker(config, env, start_timeout_s=start_timeout_s, command=command, user=user)
            except (OSError, trio.TooSlowError, WorkerDied) as e:
                # Persistent failures (no browser installed, say) keep retrying at the
                # longest delay; /health shows the error meanwhile.
                delay = RESPAWN_BACKOFF_S[min(failures, len(RESPAWN_BACKOFF_S) - 1)]
                failures += 1
                stats.last_spawn_error = f"{type(e).__name__}: {e}"
                log.error("worker failed to start: %s; retrying in %.1fs", stats.last_spawn_error, delay)
                await trio.sleep(delay)
                continue
            stats.spawned += 1
            stats.last_spawn_error = None
            return worker

    async def slot(reaper: trio.Nursery, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> NoReturn:
        returned_send, returned_receive = trio.open_memory_channel[Verdict](1)
        worker = await spawn()
        task_status.started()
        while True:
            await _serve_worker(worker, idle_send, returned_send, returned_receive, reaper)
            worker = await spawn()

    async def _serve_worker(
        worker: WorkerProcess,
        idle: trio.MemorySendChannel[Lease],
        returned_send: trio.MemorySendChannel[Verdict],
        returned_receive: trio.MemoryReceiveChannel[Verdict],
        reaper: trio.Nursery,
    ) -> None:
        """Lend the worker out until it must go. It is stopped in ``reaper``, beside the slot,
        so the replacement launches at once instead of after the old browser has shut down."""
        attempts = 0
        try:
            while True:
                await idle.send(Lease(worker, returned_send))
                verdict = await returned_receive.receive()
                attempts += 1
                if not verdict.reusable:
                    stats.killed += 1
                    reaper.start_soon(worker.kill, verdict.reason)
                    return
                # psutil walks /proc for the browser's children: off the event loop.
                too_big = (
                    attempts % RSS_CHECK_EVERY == 0
                    and await trio.to_thread.run_sync(_rss_mb, worker.pid) > recycle_rss_mb
                )
                if attempts >= recycle_after_attempts or too_big:
                    stats.recycled += 1
                    reaper.start_soon(worker.close)
                    return
        except BaseException:
            await worker.kill("daemon stopping")
            raise

    async with idle_send, idle_receive, trio.open_nursery() as nursery:
        # Slots start together so N browsers launch in parallel; the pool is ready once
        # each slot has a live worker.
        async with trio.open_nursery() as starting:
            for _ in range(size):
                starting.start_soon(nursery.start, slot, nursery)
        task_status.started(PoolHandle(idle_receive, stats))
        await trio.sleep_forever()
    raise AssertionError("unreachable")
