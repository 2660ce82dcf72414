"""The rate-limiter actor under trio's autojump clock, with a real store on a SQLite file."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
import trio
import trio.testing

from intunedd.actors.bus import run_bus
from intunedd.actors.rate_limiter import RateLimiterHandle, run_rate_limiter, sleep_until
from intunedd.actors.store import run_store
from intunedd.policy.rate_limits import PauseSchedule, RateLimitConfig, Wait, parse_config
from intunedd.store import rate_queries
from intunedd.store.db import open_db

from ..conftest import TrioClock

BASE = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)  # a Monday, 20:00 UTC
CLOCK = TrioClock(BASE)
TIMEOUT_S = 7 * 86_400  # virtual seconds: the autojump clock gets there fast


def _rows(path: Path, key: str) -> list[datetime]:
    db = open_db(path)
    try:
        return rate_queries.admissions(db, key)
    finally:
        db.conn.close()


@asynccontextmanager
async def _limiter(path: Path, seed: int = 1) -> AsyncIterator[RateLimiterHandle]:
    """A store and a limiter on ``path``, stopped (as a killed daemon's are) when the block ends."""
    db = open_db(path)
    try:
        async with trio.open_nursery() as nursery:
            bus = await nursery.start(partial(run_bus, buffer=100))
            store = await nursery.start(partial(run_store, db, bus.publisher(), clock=CLOCK))
            yield await nursery.start(partial(run_rate_limiter, store, clock=CLOCK, rng=random.Random(seed)))
            nursery.cancel_scope.cancel()
    finally:
        db.conn.close()


async def _consume(limiter: RateLimiterHandle, key: str, count: int) -> list[tuple[float, Wait]]:
    """Start ``count`` items as the queue runner will: ask, sleep until allowed, start."""
    started = []
    for _ in range(count):
        wait = await limiter.next_start(key)
        await sleep_until(CLOCK, wait.at)
        await limiter.admitted(key)
        started.append((trio.current_time(), wait))
    return started


def _close(times: list[float], expected: list[float]) -> None:
    assert times == pytest.approx(expected, abs=1e-3)


async def test_windows_hold_for_a_waiting_consumer(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    config = parse_config([{"limit": 10, "duration": "1h"}, {"limit": 2, "duration": "1m"}], None, None)
    with trio.fail_after(TIMEOUT_S):
        async with _limiter(tmp_path / "s.db") as limiter:
            await limiter.configure("q", config)
            started = await _consume(limiter, "q", 11)
    _close([t for t, _ in started], [0, 0, 60, 60, 120, 120, 180, 180, 240, 240, 3600])
    assert [w.reason for _, w in started] == [None, None] + ["rate_limit", None] * 4 + ["rate_limit"]


async def test_a_restart_keeps_the_windows(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    config = parse_config([{"limit": 2, "duration": "10m"}], None, None)
    path = tmp_path / "s.db"
    with trio.fail_after(TIMEOUT_S):
        async with _limiter(path) as limiter:
            await limiter.configure("q", config)
            await limiter.configure("other", config)
            for _ in range(4):  # started whatever the limiter said: at 0, 100, 200 and 300
                await limiter.admitted("q")
                await trio.sleep(100)
            await limiter.admitted("other")
        # Only what a window can still see is kept: the two most recent.
        _close([(a - BASE).total_seconds() for a in _rows(path, "q")], [200, 300])
        assert len(_rows(path, "other")) == 1
        async with _limiter(path) as limiter:
            assert limiter.state("q") is None
            await limiter.configure("q", config)
            assert limiter.state("q") == Wait(at=BASE + timedelta(seconds=800), reason="rate_limit")
            started = await _consume(limiter, "q", 3)
    _close([t for t, _ in started], [800, 900, 1400])  # no burst: the admissions before the restart still count


async def test_random_wait_counts_from_the_finish(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    config = parse_config(None, None, {"min": "5s", "max": "10s"})
    with trio.fail_after(TIMEOUT_S):
        async with _limiter(tmp_path / "s.db") as limiter:
            await limiter.configure("q", config)
            waits = []
            for _ in range(8):
                first = await limiter.next_start("q")
                assert first.reason is None
                await limiter.admitted("q")
                await trio.sleep(3)  # the item runs
                await limiter.finished("q")
                finished = CLOCK.now()
                wait = await limiter.next_start("q")
                assert wait.reason == "random_wait"
                assert limiter.state("q") == wait
                waits.append((wait.at - finished).total_seconds())
                await sleep_until(CLOCK, wait.at)
    assert all(5 <= w <= 10 for w in waits)
    assert max(waits) - min(waits) > 1  # drawn, not fixed


async def test_pause_window(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    config = RateLimitConfig(pause=PauseSchedule("0 18 * * *", "0 8 * * *", "Europe/Paris"))
    morning = datetime(2026, 3, 3, 7, tzinfo=UTC)  # 08:00 in Paris
    with trio.fail_after(TIMEOUT_S):
        async with _limiter(tmp_path / "s.db") as limiter:
            await limiter.configure("q", config)
            assert limiter.state("q") == Wait(at=morning, reason="pause_window")
            assert await limiter.next_start("q") == Wait(at=morning, reason="pause_window")
            assert limiter.statistics().waiting == 1  # shown by /metrics
            started = await _consume(limiter, "q", 1)
            assert CLOCK.now() - morning < timedelta(milliseconds=1)
            assert started[0][1].reason == "pause_window"
            assert (await limiter.next_start("q")).reason is None
            assert limiter.statistics().waiting == 0


async def test_forget_deletes_the_admissions(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    config = parse_config([{"limit": 1, "duration": "1h"}], None, None)
    path = tmp_path / "s.db"
    with trio.fail_after(TIMEOUT_S):
        async with _limiter(path) as limiter:
            await limiter.configure("q", config)
            await limiter.configure("kept", config)
            await limiter.admitted("q")
            await limiter.admitted("kept")
            assert (await limiter.next_start("q")).reason == "rate_limit"
            await limiter.forget("q")
            assert limiter.state("q") is None
            assert len(_rows(path, "q")) == 0
            assert len(_rows(path, "kept")) == 1
            # Unknown (forgotten) keys are not limited, and forgetting one twice is fine.
            assert await limiter.next_start("q") == Wait(at=CLOCK.now(), reason=None)
            await limiter.admitted("q")
            await limiter.forget("q")
            await limiter.configure("q", config)
            assert (await limiter.next_start("q")).reason is None
            assert limiter.statistics().keys == 2


async def test_a_bad_command_fails_alone(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    broken = RateLimitConfig(pause=PauseSchedule("0 18 * * *", "0 8 * * *", "No/Such_Zone"))
    with trio.fail_after(TIMEOUT_S):
        async with _limiter(tmp_path / "s.db") as limiter:
            with pytest.raises(Exception, match="No/Such_Zone"):
                await limiter.configure("q", broken)
            assert limiter.state("q") is None
            assert (await limiter.next_start("q")).reason is None
            await limiter.configure("ok", parse_config([{"limit": 1, "duration": "1s"}], None, None))
            await limiter.admitted("ok")
            assert (await limiter.next_start("ok")).reason == "rate_limit"


async def test_a_new_config_applies_to_the_admissions_so_far(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    with trio.fail_after(TIMEOUT_S):
        async with _limiter(tmp_path / "s.db") as limiter:
            await limiter.configure("q", parse_config([{"limit": 1, "duration": "1h"}], None, None))
            await limiter.admitted("q")
            assert await limiter.next_start("q") == Wait(at=BASE + timedelta(hours=1), reason="rate_limit")
            await limiter.configure("q", parse_config([{"limit": 1, "duration": "1m"}], None, None))
            assert limiter.state("q") == Wait(at=BASE + timedelta(minutes=1), reason="rate_limit")
            await limiter.configure("q", RateLimitConfig())
            assert await limiter.next_start("q") == Wait(at=CLOCK.now(), reason=None)
