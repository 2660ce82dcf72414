"""What the browser pool does next, given its workers and waiting leases: a pure decision.

Workers are keyed by environment (a string; ``PoolState.default`` is the daemon's own). At most
``size`` workers are live: idle, leased or starting. One step at a time, in this order:

1. Waiting leases are taken in arrival order. A waiter gets an idle worker of its environment
   at once. Otherwise a spawn already starting for its environment is counted as its own (the
   first such waiters get one each), and a waiter whose environment waits out a failed spawn's
   backoff is passed over; neither holds back later waiters. The first waiter left needs a new
   worker: one is spawned if fewer than ``size`` are live, else the idle worker that has waited
   longest (of another environment, as none of its own is idle) is retired to make room. If none
   is idle, nothing more can happen until a worker comes back: later waiters wait behind it, so
   capacity goes to the environments in the order they asked for it and none starves.
2. An idle worker of another environment than the default, idle for ``retire_idle_after_s``, is
   retired.
3. With no lease waiting, spare capacity is filled with a worker of ``refill`` (the pool sets it
   to the environment of a worker that was killed or recycled, and back to the default once a
   worker is retired or a spawn fails), so the pool stays warm.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import msgspec


class IdleWorker(msgspec.Struct, frozen=True):
    worker: int
    env: str
    since: float  # trio time it became idle


class PoolState(msgspec.Struct, frozen=True, kw_only=True):
    size: int
    default: str = ""
    idle: tuple[IdleWorker, ...] = ()  # longest idle first
    starting: tuple[str, ...] = ()  # the environment of each spawn in progress
    leased: int = 0
    waiters: tuple[str, ...] = ()  # the environment of each waiting lease, in arrival order
    backoff_until: Mapping[str, float] = {}  # environments whose last spawn failed, until when to wait
    refill: str = ""

    @property
    def live(self) -> int:
        return len(self.idle) + len(self.starting) + self.leased


class Grant(msgspec.Struct, frozen=True):
    waiter: int  # index into ``waiters``
    worker: int


class Spawn(msgspec.Struct, frozen=True):
    env: str


class Retire(msgspec.Struct, frozen=True):
    worker: int


Step = Grant | Spawn | Retire


def next_step(state: PoolState, *, now: float, retire_idle_after_s: float) -> Step | None:
    """The next thing the pool should do, or None when it can only wait for an event."""
    waiting_out = {env for env, until in state.backoff_until.items() if until > now}
    covered = {env: state.starting.count(env) for env in set(state.starting)}
    for index, env in enumerate(state.waiters):
        own = next((idle for idle in state.idle if idle.env == env), None)
        if own is not None:
            return Grant(index, own.worker)
        if covered.get(env, 0) > 0:
            covered[env] -= 1
            continue
        if env in waiting_out:
            continue
        if state.live < state.size:
            return Spawn(env)
        if state.idle:
            return Retire(state.idle[0].worker)
        return None
    for idle in state.idle:
        if idle.env != state.default and idle.since + retire_idle_after_s <= now:
            return Retire(idle.worker)
    if not state.waiters and state.live < state.size and state.refill not in waiting_out:
        return Spawn(state.refill)
    return None


def wake_at(state: PoolState, *, now: float, retire_idle_after_s: float) -> float | None:
    """When ``next_step`` may next have something to do without any event: an idle worker's
    retirement or a backoff's end."""
    times = [idle.since + retire_idle_after_s for idle in state.idle if idle.env != state.default]
    times += [until for until in state.backoff_until.values() if until > now]
    return min(times, default=None)


def after_lease(
    *, reusable: bool, attempts: int, rss_mb: float | None, recycle_after_attempts: int, recycle_rss_mb: int
) -> Literal["keep", "kill", "recycle"]:
    """What becomes of a worker handed back after ``attempts`` attempts (``rss_mb`` if measured)."""
    if not reusable:
        return "kill"
    if attempts >= recycle_after_attempts or (rss_mb is not None and rss_mb > recycle_rss_mb):
        return "recycle"
    return "keep"
