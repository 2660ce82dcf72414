"""The browser-pool supervisor: at most ``size`` worker processes, each running in one Python
environment (``WorkerEnv``), lent out one attempt at a time.

What happens next is ``policy.worker_pool``'s decision; in short: a lease for environment K gets
an idle worker of K at once, else a new worker of K if fewer than ``size`` are live, else an idle
worker of another environment is retired (closed politely, in the background) to make room for
one of K; otherwise it waits, and waiting leases are served in arrival order across
environments. At start the pool runs ``size`` workers of the daemon's own environment and is
ready once all are live.

Keeping the pool warm: an idle worker of another environment is retired after
``idle_worker_retire_s``, and spare capacity no lease is waiting for is filled again, with a
worker of the environment of the last worker killed or recycled (its project is likely still
running), or of the daemon's own environment after a retirement or a failed spawn. So with no
other demand the pool settles back to ``size`` idle workers of the daemon's own environment.

A worker whose attempt ended with a non-reusable verdict (crash, timeout, abort without answer)
is killed; a healthy one is kept, or recycled after ``recycle_after_attempts`` attempts or past
``recycle_rss_mb``. A worker lent for its last attempt before recycling no longer counts as live
(with local browsers), so its replacement starts while that attempt runs instead of after it.

With browser hosts (``pool.remote_endpoints``), each worker uses a browser on one host, and the
pool's size is their capacities added up. Which host a new worker uses, and how one that stops
answering is taken out and tried again, is ``policy.browser_hosts``'s decision: a worker that cannot
start on a host takes the host down, with its idle workers (their browsers went with it); workers
leased there fail their attempts as crashes when their browser goes, and come back to be killed.

A spawn that fails is retried after a backoff, per environment, so a broken environment never
holds capacity meanwhile. The daemon's own environment is retried for as long as it takes, as
before (/health shows the error). Any other environment gets ``ENV_SPAWN_ATTEMPTS`` tries, each
bounded by ``start_timeout_s``; then its waiting leases fail with ``WorkerUnavailable`` (its
environment was deleted, say), and the next lease for it starts afresh.

The pool's state belongs to one task, ``_Pool.serve``. Spawns and lent workers run in tasks of
their own that report back over its inbox.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from itertools import count
from typing import NoReturn

import msgspec
import psutil
import trio

from ..config import BrowserHost
from ..policy import browser_hosts
from ..policy.browser_hosts import HostState
from ..policy.worker_pool import Grant, IdleWorker, PoolState, Retire, Spawn, after_lease, next_step, wake_at
from ..workers.process import (
    DAEMON_ENV,
    WORKER_COMMAND,
    Lease,
    Verdict,
    WorkerDied,
    WorkerEnv,
    WorkerProcess,
    spawn_worker,
)
from ..workers.protocol import WorkerConfig
from ..workers.sandbox import WorkerUser

log = logging.getLogger(__name__)
RESPAWN_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
ENV_SPAWN_ATTEMPTS = 3
RSS_CHECK_EVERY = 10
INBOX_SIZE = 16


class WorkerUnavailable(Exception):
    """No worker could be started in the environment a lease asked for."""


class EnvStatistics(msgspec.Struct, frozen=True):
    idle: int
    live: int  # idle, leased and starting


class HostStatistics(msgspec.Struct, frozen=True):
    host: str  # scheme, host and port only (``browser_hosts.label``)
    capacity: int
    live: int
    up: bool
    failures: int  # failed starts in a row


class PoolStatistics(msgspec.Struct, frozen=True):
    size: int
    idle: int
    spawned: int
    killed: int
    recycled: int
    last_spawn_error: str | None
    retired: int = 0  # idle workers closed to make room for another environment, or for being idle too long
    spawn_failures: int = 0
    waiting: int = 0
    envs: dict[str, EnvStatistics] = {}  # by environment key; "" is the daemon's own
    hosts: list[HostStatistics] = []  # browser hosts, when the browsers are remote


@dataclass(frozen=True)
class _Worker:
    id: int
    env: WorkerEnv
    process: WorkerProcess
    attempts: int = 0
    host: int | None = None  # index into the pool's browser hosts


@dataclass(frozen=True)
class _Waiter:
    env: WorkerEnv
    reply: trio.MemorySendChannel[Lease | str]  # a lease, or why none could be had


@dataclass(frozen=True)
class _Spawned:
    spawn: int
    process: WorkerProcess | None
    error: str = ""


@dataclass(frozen=True)
class _Back:
    worker: _Worker
    verdict: Verdict
    rss_mb: float | None


_Event = _Waiter | _Spawned | _Back


class PoolHandle:
    def __init__(self, inbox: trio.MemorySendChannel[_Event], statistics: Callable[[], PoolStatistics]) -> None:
        self._inbox = inbox
        self.statistics = statistics

    @asynccontextmanager
    async def lease(self, env: WorkerEnv = DAEMON_ENV) -> AsyncIterator[Lease]:
        """A worker running ``env``'s command, for one attempt; raises ``WorkerUnavailable`` when
        none could be started in that environment."""
        reply, answer = trio.open_memory_channel[Lease | str](1)
        with answer:  # once closed, the pool knows this caller no longer waits
            await self._inbox.send(_Waiter(env, reply))
            try:
                got = await answer.receive()
            except BaseException:
                # Cancelled just as the pool granted a worker: it goes back unused.
                try:
                    granted = answer.receive_nowait()
                except trio.WouldBlock:
                    pass
                else:
                    if isinstance(granted, Lease):
                        granted.release()
                raise
        if isinstance(got, str):
            raise WorkerUnavailable(got)
        try:
            yield got
        finally:
            got.release()


def _rss_mb(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
        return float(sum(p.memory_info().rss for p in processes)) / (1024 * 1024)
    except psutil.Error:
        return 0.0


@dataclass(frozen=True)
class _WorkerTasks:
    """The pool's tasks besides its own: starting a worker, and waiting for a lent one to come
    back. Each reports to the pool's inbox; a worker it cannot hand over is killed."""

    environ: Mapping[str, str]
    start_timeout_s: float
    user: WorkerUser | None
    nice: int
    inbox: trio.MemorySendChannel[_Event]

    async def spawn(self, spawn: int, env: WorkerEnv, config: WorkerConfig) -> None:
        try:
            process = await spawn_worker(
                config, self.environ, start_timeout_s=self.start_timeout_s, command=env.command, user=self.user,
                nice=self.nice,
            )  # fmt: skip
        except (OSError, trio.TooSlowError, WorkerDied) as e:
            await self.inbox.send(_Spawned(spawn, None, f"{type(e).__name__}: {e}"))
            return
        await _report(self.inbox, _Spawned(spawn, process), process)

    async def lent(self, worker: _Worker, returned: trio.MemoryReceiveChannel[Verdict]) -> None:
        """Wait for the lease to come back, and tell the pool how it went."""
        try:
            async with returned:
                verdict = await returned.receive()
            attempts = worker.attempts + 1
            # psutil walks /proc for the browser's children: off the event loop.
            measure = verdict.reusable and attempts % RSS_CHECK_EVERY == 0
            rss_mb = await trio.to_thread.run_sync(_rss_mb, worker.process.pid) if measure else None
        except BaseException:
            await worker.process.kill("daemon stopping")
            raise
        await _report(self.inbox, _Back(replace(worker, attempts=attempts), verdict, rss_mb), worker.process)


async def _report(inbox: trio.MemorySendChannel[_Event], event: _Event, process: WorkerProcess) -> None:
    try:
        await inbox.send(event)
    except BaseException:
        await process.kill("daemon stopping")
        raise


class _Pool:
    def __init__(
        self,
        tasks: _WorkerTasks,
        default: WorkerEnv,
        config: WorkerConfig,
        *,
        size: int,
        hosts: Sequence[BrowserHost] = (),
        recycle_after_attempts: int,
        recycle_rss_mb: int,
        idle_worker_retire_s: float,
        nursery: trio.Nursery,
        reaper: trio.Nursery,
    ) -> None:
        self.tasks = tasks
        self.default = default
        self.config = config
        self.hosts = list(hosts)
        self.host_states = [HostState(capacity=host.capacity) for host in self.hosts]
        self.size = size
        self.recycle_after_attempts = recycle_after_attempts
        self.recycle_rss_mb = recycle_rss_mb
        self.retire_idle_after_s = idle_worker_retire_s
        self.nursery = nursery
        # Workers leaving are stopped here, beside the pool, so their replacements start at once.
        self.reaper = reaper
        self.ids = count()
        self.idle: dict[int, tuple[_Worker, float]] = {}  # longest idle first
        self.starting: dict[int, tuple[WorkerEnv, int | None]] = {}  # and the browser host
        self.leased: dict[int, _Worker] = {}
        # Leased workers on their last attempt before recycling: their replacements start meanwhile.
        self.leaving: set[int] = set()
        self.waiters: list[_Waiter] = []
        self.failures: dict[str, int] = {}
        self.backoff_until: dict[str, float] = {}
        self.refill = default
        self.spawned = self.killed = self.recycled = self.retired = self.spawn_failures = 0
        self.last_spawn_error: str | None = None

    # -- events -----------------------------------------------------------------------------

    def handle(self, event: _Event, now: float) -> None:
        if isinstance(event, _Waiter):
            # The daemon's own environment runs the pool's command.
            env = self.default if event.env.key == self.default.key else event.env
            self.waiters.append(_Waiter(env, event.reply))
        elif isinstance(event, _Spawned):
            self._spawned(event, now)
        else:
            self._back(event, now)

    def _spawned(self, event: _Spawned, now: float) -> None:
        env, host = self.starting.pop(event.spawn)
        if event.process is None:
            if host is not None:
                self._host_down(host, event.error, now)
            self._spawn_failed(env, event.error, now)
            return
        self.spawned += 1
        self.failures.pop(env.key, None)
        self.backoff_until.pop(env.key, None)
        self.last_spawn_error = None
        if host is not None:
            self.host_states[host] = browser_hosts.after_start(self.host_states[host])
        worker = _Worker(next(self.ids), env, event.process, host=host)
        self.idle[worker.id] = (worker, now)

    def _host_down(self, host: int, error: str, now: float) -> None:
        """A worker could not start on ``host``: it is taken out for a while, and its idle workers,
        whose browsers are most likely gone with it, are killed rather than lent."""
        state = self.host_states[host] = browser_hosts.after_start_failed(self.host_states[host], now)
        name = browser_hosts.label(self.hosts[host].url)
        log.error("browser host %s is down (%s); trying it again in %.1fs", name, error, state.down_until - now)
        for worker, _ in [entry for entry in self.idle.values() if entry[0].host == host]:
            del self.idle[worker.id]
            self.killed += 1
            self.reaper.start_soon(worker.process.kill, f"its browser host {name} is down")

    def _spawn_failed(self, env: WorkerEnv, error: str, now: float) -> None:
        self.spawn_failures += 1
        failures = self.failures[env.key] = self.failures.get(env.key, 0) + 1
        named = f"environment {env.key!r}: " if env.key != self.default.key else ""
        self.last_spawn_error = f"{named}{error}"
        if self.refill.key == env.key:
            self.refill = self.default
        self._prune()
        waiting = [w for w in self.waiters if w.env.key == env.key]
        if env.key != self.default.key and (not waiting or failures >= ENV_SPAWN_ATTEMPTS):
            # Nobody waits for it any more, or it had its tries: the next lease for it starts afresh.
            message = f"no worker could start in {named}{error} ({failures} tries)"
            log.error("%s; %d waiting leases fail", message, len(waiting))
            self.failures.pop(env.key)
            self.backoff_until.pop(env.key, None)
            for waiter in waiting:
                self.waiters.remove(waiter)
                waiter.reply.send_nowait(message)
            return
        # Persistent failures (no browser installed, say) keep retrying at the longest delay.
        delay = RESPAWN_BACKOFF_S[min(failures - 1, len(RESPAWN_BACKOFF_S) - 1)]
        self.backoff_until[env.key] = now + delay
        log.error("worker failed to start: %s; retrying in %.1fs", self.last_spawn_error, delay)

    def _back(self, event: _Back, now: float) -> None:
        worker = event.worker
        del self.leased[worker.id]
        self.leaving.discard(worker.id)
        fate = after_lease(
            reusable=event.verdict.reusable,
            attempts=worker.attempts,
            rss_mb=event.rss_mb,
            recycle_after_attempts=self.recycle_after_attempts,
            recycle_rss_mb=self.recycle_rss_mb,
        )
        if fate == "keep":
            self.idle[worker.id] = (worker, now)
            return
        if fate == "kill":
            self.killed += 1
            self.reaper.start_soon(worker.process.kill, event.verdict.reason)
        else:
            self.recycled += 1
            self.reaper.start_soon(worker.process.close)
        self.refill = worker.env

    # -- decisions ----------------------------------------------------------------------------

    def _hosts_now(self) -> list[HostState]:
        live = [0] * len(self.hosts)
        hosts = [host for _, host in self.starting.values()]
        hosts += [worker.host for worker in self.leased.values()]
        hosts += [worker.host for worker, _ in self.idle.values()]
        for host in hosts:
            if host is not None:
                live[host] += 1
        return [msgspec.structs.replace(state, live=n) for state, n in zip(self.host_states, live, strict=True)]

    def state(self, now: float) -> PoolState:
        return PoolState(
            size=browser_hosts.capacity_now(self._hosts_now(), now) if self.hosts else self.size,
            default=self.default.key,
            idle=tuple(IdleWorker(w.id, w.env.key, since) for w, since in self.idle.values()),
            starting=tuple(env.key for env, _ in self.starting.values()),
            leased=len(self.leased) - len(self.leaving),
            waiters=tuple(w.env.key for w in self.waiters),
            backoff_until=self.backoff_until,
            refill=self.refill.key,
        )

    def _prune(self) -> None:
        """Forget the waiters that left (cancelled): synchronous code after this cannot see one leave."""
        self.waiters = [w for w in self.waiters if w.reply.statistics().open_receive_channels]

    def act(self, now: float) -> None:
        """Apply the policy's steps until it has none."""
        self._prune()
        while step := next_step(self.state(now), now=now, retire_idle_after_s=self.retire_idle_after_s):
            if isinstance(step, Grant):
                waiter = self.waiters.pop(step.waiter)
                worker, _ = self.idle.pop(step.worker)
                returned_send, returned_receive = trio.open_memory_channel[Verdict](1)
                # Cannot fail: the waiters that left were pruned above, with no checkpoint since.
                waiter.reply.send_nowait(Lease(worker.process, returned_send))
                self.leased[worker.id] = worker
                if worker.attempts + 1 >= self.recycle_after_attempts and not self.hosts:
                    # Its replacement starts now rather than after this last attempt. (A browser
                    # host's capacity is a limit, so there the replacement waits for the slot.)
                    self.leaving.add(worker.id)
                    self.refill = worker.env
                self.nursery.start_soon(self.tasks.lent, worker, returned_receive)
            elif isinstance(step, Spawn):
                env = next((w.env for w in self.waiters if w.env.key == step.env), self.refill)
                host, config = self._host_for_spawn(now)
                spawn = next(self.ids)
                self.starting[spawn] = (env, host)
                self.nursery.start_soon(self.tasks.spawn, spawn, env, config)
            elif isinstance(step, Retire):
                worker, _ = self.idle.pop(step.worker)
                self.retired += 1
                self.refill = self.default
                self.reaper.start_soon(worker.process.close)

    def _host_for_spawn(self, now: float) -> tuple[int | None, WorkerConfig]:
        if not self.hosts:
            return None, self.config
        host = browser_hosts.pick(self._hosts_now(), now)
        # The policy spawns only below ``capacity_now``, which leaves a free slot on a host that is up.
        assert host is not None, "a spawn with no browser host free"
        chosen = self.hosts[host]
        return host, msgspec.structs.replace(self.config, remote_endpoint=chosen.url, remote_protocol=chosen.protocol)

    def wake_at(self, now: float) -> float:
        at = wake_at(self.state(now), now=now, retire_idle_after_s=self.retire_idle_after_s)
        times = [t for t in (at, browser_hosts.wake_at(self.host_states, now)) if t is not None]
        return min(times, default=math.inf)

    def statistics(self) -> PoolStatistics:
        now = trio.current_time()
        live: dict[str, int] = {}
        idle: dict[str, int] = {}
        for key in [*(w.env.key for w in self.leased.values()), *(env.key for env, _ in self.starting.values())]:
            live[key] = live.get(key, 0) + 1
        for worker, _ in self.idle.values():
            live[worker.env.key] = live.get(worker.env.key, 0) + 1
            idle[worker.env.key] = idle.get(worker.env.key, 0) + 1
        return PoolStatistics(
            size=self.size,
            idle=len(self.idle),
            spawned=self.spawned,
            killed=self.killed,
            recycled=self.recycled,
            last_spawn_error=self.last_spawn_error,
            retired=self.retired,
            spawn_failures=self.spawn_failures,
            waiting=len(self.waiters),
            envs={key: EnvStatistics(idle=idle.get(key, 0), live=n) for key, n in sorted(live.items())},
            hosts=[
                HostStatistics(
                    host=browser_hosts.label(host.url), capacity=state.capacity, live=state.live,
                    up=browser_hosts.is_up(state, now), failures=state.failures,
                )
                for host, state in zip(self.hosts, self._hosts_now(), strict=True)
            ],
        )  # fmt: skip

    # -- the task -----------------------------------------------------------------------------

    async def serve(self, inbox: trio.MemoryReceiveChannel[_Event], ready: Callable[[], None]) -> NoReturn:
        started = False
        while True:
            now = trio.current_time()
            self.act(now)
            if not started and len(self.idle) == self.state(now).size:
                ready()
                started = True
            with trio.move_on_at(self.wake_at(now)):
                self.handle(await inbox.receive(), trio.current_time())

    async def stop(self, inbox: trio.MemoryReceiveChannel[_Event]) -> None:
        """Kill every worker the pool holds, or that was on its way to it."""
        processes = [worker.process for worker, _ in self.idle.values()]
        while True:
            try:
                event = inbox.receive_nowait()
            except trio.WouldBlock:
                break
            if isinstance(event, _Spawned) and event.process is not None:
                processes.append(event.process)
            elif isinstance(event, _Back):
                processes.append(event.worker.process)
        with trio.CancelScope(shield=True):
            async with trio.open_nursery() as nursery:
                for process in processes:
                    nursery.start_soon(process.kill, "daemon stopping")


async def run_browser_pool(
    config: WorkerConfig,
    env: Mapping[str, str],
    *,
    size: int,
    hosts: Sequence[BrowserHost] = (),
    recycle_after_attempts: int,
    recycle_rss_mb: int,
    start_timeout_s: float,
    idle_worker_retire_s: float = 300.0,
    user: WorkerUser | None = None,
    worker_nice: int = 0,
    command: Sequence[str] = WORKER_COMMAND,
    task_status: trio.TaskStatus[PoolHandle] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """``env`` is the workers' process environment; ``command`` runs the daemon's own ``WorkerEnv``;
    ``hosts``: the browser hosts, when the browsers are remote; ``size``: how many workers at most,
    with hosts their capacities added up (``PoolSettings.capacity``)."""
    inbox_send, inbox_receive = trio.open_memory_channel[_Event](INBOX_SIZE)
    async with inbox_receive, trio.open_nursery() as reaper, trio.open_nursery() as nursery:
        pool = _Pool(
            _WorkerTasks(env, start_timeout_s, user, worker_nice, inbox_send),
            WorkerEnv(DAEMON_ENV.key, tuple(command)),
            config,
            size=size,
            hosts=hosts,
            recycle_after_attempts=recycle_after_attempts,
            recycle_rss_mb=recycle_rss_mb,
            idle_worker_retire_s=idle_worker_retire_s,
            nursery=nursery,
            reaper=reaper,
        )
        try:
            await pool.serve(inbox_receive, lambda: task_status.started(PoolHandle(inbox_send, pool.statistics)))
        finally:
            await pool.stop(inbox_receive)
    raise AssertionError("unreachable")
