from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intunedd.policy.worker_pool import (
    Grant,
    IdleWorker,
    PoolState,
    Retire,
    Spawn,
    Step,
    after_lease,
    next_step,
    wake_at,
)

RETIRE_S = 300.0


def _idle(*envs: str, since: float = 0.0) -> tuple[IdleWorker, ...]:
    return tuple(IdleWorker(worker=i, env=env, since=since) for i, env in enumerate(envs))


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        # an idle worker of the waiter's own environment, at once
        (PoolState(size=2, idle=_idle("", "k"), waiters=("k",)), Grant(0, 1)),
        # a spawn in progress for K is K's first waiter's: no second one
        (PoolState(size=3, starting=("k",), waiters=("k",)), None),
        (PoolState(size=3, starting=("k",), waiters=("k", "k")), Spawn("k")),
        # room: spawn; no room: retire the longest idle worker of another environment
        (PoolState(size=2, leased=1, waiters=("k",)), Spawn("k")),
        (PoolState(size=2, idle=_idle("", "j"), waiters=("k",)), Retire(0)),
        (PoolState(size=2, leased=2, waiters=("k",)), None),
        # FIFO across environments: K asked first, so J's idle worker makes room for K
        (PoolState(size=2, idle=_idle("j"), leased=1, waiters=("k", "j")), Retire(0)),
        # a waiter whose environment waits out a backoff does not hold back the next
        (PoolState(size=2, leased=1, waiters=("k", "j"), backoff_until={"k": 10.0}), Spawn("j")),
        (PoolState(size=2, leased=1, waiters=("k", "j"), backoff_until={"k": -1.0}), Spawn("k")),
        # idle workers of project environments retire; the daemon's own stay
        (PoolState(size=2, idle=_idle("", "k", since=-RETIRE_S)), Retire(1)),
        (PoolState(size=2, idle=_idle("", "k", since=1 - RETIRE_S)), None),
        (PoolState(size=1, idle=_idle("", since=-10 * RETIRE_S)), None),
        # spare capacity is refilled, but not while a lease waits
        (PoolState(size=2, idle=_idle("")), Spawn("")),
        (PoolState(size=2, idle=_idle(""), refill="k"), Spawn("k")),
        (PoolState(size=3, starting=("k",), waiters=("k",), refill=""), None),
        (PoolState(size=2, idle=_idle(""), backoff_until={"": 5.0}), None),
    ],
)
def test_next_step(state: PoolState, expected: Step | None) -> None:
    assert next_step(state, now=0.0, retire_idle_after_s=RETIRE_S) == expected


def test_wake_at_is_the_next_retirement_or_backoff_end() -> None:
    state = PoolState(size=3, idle=_idle("", "k", since=4.0), backoff_until={"j": 100.0, "old": 1.0})
    assert wake_at(state, now=2.0, retire_idle_after_s=RETIRE_S) == 100.0
    assert wake_at(state, now=2.0, retire_idle_after_s=50.0) == 54.0
    assert wake_at(PoolState(size=1, idle=_idle("")), now=0.0, retire_idle_after_s=1.0) is None


@pytest.mark.parametrize(
    ("reusable", "attempts", "rss", "expected"),
    [
        (False, 1, None, "kill"),
        (True, 1, None, "keep"),
        (True, 5, None, "recycle"),
        (True, 2, 600.0, "recycle"),
        (True, 2, 400.0, "keep"),
    ],
)
def test_after_lease(reusable: bool, attempts: int, rss: float | None, expected: str) -> None:
    fate = after_lease(reusable=reusable, attempts=attempts, rss_mb=rss, recycle_after_attempts=5, recycle_rss_mb=500)
    assert fate == expected


@dataclass
class _Model:
    """The pool's bookkeeping, as the browser-pool actor keeps it, without processes."""

    size: int
    now: float = 0.0
    ids: count[int] = field(default_factory=count)
    idle: dict[int, IdleWorker] = field(default_factory=dict)
    starting: list[str] = field(default_factory=list)
    leased: list[tuple[int, str]] = field(default_factory=list)
    waiters: list[tuple[int, str]] = field(default_factory=list)  # (waiter id, env)
    served: list[int] = field(default_factory=list)
    backoff_until: dict[str, float] = field(default_factory=dict)
    refill: str = ""

    def state(self) -> PoolState:
        return PoolState(
            size=self.size,
            idle=tuple(self.idle.values()),
            starting=tuple(self.starting),
            leased=len(self.leased),
            waiters=tuple(env for _, env in self.waiters),
            backoff_until=self.backoff_until,
            refill=self.refill,
        )

    def act(self) -> None:
        for _ in range(1000):
            step = next_step(self.state(), now=self.now, retire_idle_after_s=RETIRE_S)
            if step is None:
                return
            if isinstance(step, Grant):
                waiter, env = self.waiters.pop(step.waiter)
                worker = self.idle.pop(step.worker)
                assert worker.env == env
                self.leased.append((worker.worker, env))
                self.served.append(waiter)
            elif isinstance(step, Spawn):
                self.starting.append(step.env)
                if self.waiters:  # no more spawns for an environment than it has waiters
                    assert self.starting.count(step.env) <= [env for _, env in self.waiters].count(step.env)
            else:
                self.idle.pop(step.worker)
                self.refill = ""
            assert self.state().live <= self.size
        raise AssertionError("the policy never settles")

    def arrive(self, env: str) -> None:
        self.waiters.append((next(self.ids), env))

    def spawn_done(self, index: int, ok: bool) -> None:
        if self.starting:
            env = self.starting.pop(index % len(self.starting))
            if ok:
                self.backoff_until.pop(env, None)
                worker = next(self.ids)
                self.idle[worker] = IdleWorker(worker, env, self.now)
            else:
                self.backoff_until[env] = self.now + 1.0

    def give_back(self, index: int, reusable: bool) -> None:
        if self.leased:
            worker, env = self.leased.pop(index % len(self.leased))
            if reusable:
                self.idle[worker] = IdleWorker(worker, env, self.now)
            else:
                self.refill = env


ENVS = st.sampled_from(["", "k", "j"])
OPS = st.one_of(
    st.tuples(st.just("arrive"), ENVS),
    st.tuples(st.just("spawn"), st.integers(0, 5), st.booleans()),
    st.tuples(st.just("return"), st.integers(0, 5), st.booleans()),
    st.tuples(st.just("tick"), st.floats(0, 2 * RETIRE_S)),
)


@given(size=st.integers(1, 4), ops=st.lists(OPS, max_size=60))
def test_never_more_than_size_live_and_every_waiter_is_served(size: int, ops: list[tuple[object, ...]]) -> None:
    model = _Model(size)
    model.act()
    arrived = 0
    for op in ops:
        match op:
            case ("arrive", str(env)):
                model.arrive(env)
                arrived += 1
            case ("spawn", int(index), bool(ok)):
                model.spawn_done(index, ok)
            case ("return", int(index), bool(reusable)):
                model.give_back(index, reusable)
            case ("tick", float(dt)):
                model.now += dt
        model.act()
    # From here on every spawn succeeds and every lease comes back: every waiter gets a worker.
    for _ in range(10 * (arrived + size)):
        if not model.waiters:
            break
        model.now += 2.0  # past any backoff
        while model.starting:
            model.spawn_done(0, ok=True)
        while model.leased:
            model.give_back(0, reusable=True)
        model.act()
    assert not model.waiters
    assert sorted(model.served) == sorted(set(model.served)) and len(model.served) == arrived


def test_a_waiting_environment_is_not_overtaken_by_a_busy_one() -> None:
    """K keeps every worker busy and keeps asking; J, once waiting, gets the next worker back."""
    model = _Model(size=2, refill="k")
    for _ in range(2):
        model.arrive("k")
    model.act()
    while model.starting:
        model.spawn_done(0, ok=True)
    model.act()
    assert len(model.leased) == 2
    model.arrive("j")
    model.arrive("k")
    model.act()
    model.give_back(0, reusable=True)  # a K worker comes back while K also waits
    model.act()
    assert model.starting == ["j"]  # retired to make room for J, which asked first
