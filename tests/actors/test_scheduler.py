"""The scheduler under trio's autojump clock, with a real store and a recording trigger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from intunedd.actors.bus import run_bus
from intunedd.actors.scheduler import run_scheduler
from intunedd.actors.store import StoreHandle, run_store
from intunedd.job_spec import JobConfiguration, JobSpec
from intunedd.messages import JobChanged
from intunedd.policy.schedule import EPOCH
from intunedd.store import job_queries
from intunedd.store.db import open_db

BASE = datetime(2026, 11, 23, 12, 0, 0, 500_000, tzinfo=UTC)


class TrioClock:
    """Wall time that advances with trio's (autojumping) clock."""

    def now(self) -> datetime:
        return BASE + timedelta(seconds=trio.current_time())


class Triggers:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float]] = []  # job, slot key, trio time

    async def __call__(self, project: str, job_id: str, type_: str, slot_key: str) -> None:
        assert type_ == "SCHEDULED"
        self.calls.append((job_id, slot_key, trio.current_time()))

    def slots(self, job_id: str) -> list[datetime]:
        return [EPOCH + timedelta(milliseconds=int(key.split(":")[1])) for j, key, _ in self.calls if j == job_id]


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    # The store works in a thread; trio counts that as idle, so a zero threshold would jump
    # the clock mid-write. 100 ms of real idleness first keeps virtual time honest, even on a busy machine.
    return trio.testing.MockClock(autojump_threshold=0.1)


async def _store(nursery: trio.Nursery, path: Path) -> StoreHandle:
    bus = await nursery.start(partial(run_bus, buffer=100))
    return await nursery.start(partial(run_store, open_db(path), bus.publisher(), clock=TrioClock()))


def _spec(schedule: dict[str, Any] | None) -> JobSpec:
    return JobSpec(payload=[], configuration=JobConfiguration(), schedule=schedule)


async def _scheduler(
    nursery: trio.Nursery, store: StoreHandle, triggers: Triggers, window: float | None = None
) -> trio.MemorySendChannel[JobChanged]:
    send, receive = trio.open_memory_channel[JobChanged](10)
    await nursery.start(partial(run_scheduler, store, triggers, receive, clock=TrioClock(), catch_up_window_s=window))
    return send


async def test_interval_fires_on_every_slot(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        store = await _store(nursery, tmp_path / "s.db")
        await store.write(job_queries.insert_job, "p", "tick", _spec({"intervals": [{"every": "1s"}]}), "API")
        triggers = Triggers()
        await _scheduler(nursery, store, triggers)
        await trio.sleep(10.2)
        slots = triggers.slots("tick")
        assert len(slots) == 10
        assert all(b - a == timedelta(seconds=1) for a, b in zip(slots, slots[1:], strict=False))
        assert all(slot.microsecond == 0 for slot in slots)
        lateness = [t - (s - BASE).total_seconds() for (_, _, t), s in zip(triggers.calls, slots, strict=True)]
        assert max(lateness) < 0.01
        job = await store.read(job_queries.get_job, "p", "tick")
        assert job is not None
        assert job.next_run_time == "2026-11-23T12:00:11.000Z"
        assert job.last_run_time is not None and job.last_run_time.startswith("2026-11-23T12:00:10")
        nursery.cancel_scope.cancel()


async def test_restart_never_fires_a_slot_twice(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    triggers = Triggers()
    async with trio.open_nursery() as nursery:
        store = await _store(nursery, tmp_path / "s.db")
        await store.write(job_queries.insert_job, "p", "tick", _spec({"intervals": [{"every": "1s"}]}), "API")
        async with trio.open_nursery() as first:
            await _scheduler(first, store, triggers)
            await trio.sleep(3.2)  # between slots (they fall on x.5 s of trio time)
            first.cancel_scope.cancel()
        async with trio.open_nursery() as second:  # restarted at once: nothing was missed
            await _scheduler(second, store, triggers)
            await trio.sleep(3)
            second.cancel_scope.cancel()
        nursery.cancel_scope.cancel()
    slots = triggers.slots("tick")
    assert len(slots) == len(set(slots)) == 6


@pytest.mark.parametrize(("window", "fires_at_start"), [(None, True), (60.0, False), (600.0, True), (0.0, False)])
async def test_a_missed_slot_fires_once_at_start(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, window: float | None, fires_at_start: bool
) -> None:
    async with trio.open_nursery() as nursery:
        store = await _store(nursery, tmp_path / "s.db")
        every_10_min = _spec({"intervals": [{"every": "10m", "offset": "5m"}]})
        await store.write(job_queries.insert_job, "p", "job", every_10_min, "API")
        # The daemon last handled the 11:25 slot; it is now 12:00:00.5, so 11:35-11:55 were missed.
        last = (datetime(2026, 11, 23, 11, 25, tzinfo=UTC) - EPOCH) // timedelta(milliseconds=1)
        await store.write(job_queries.record_schedule, "p", "job", last, None, None)
        triggers = Triggers()
        await _scheduler(nursery, store, triggers, window)
        await trio.sleep(1)
        expected = [datetime(2026, 11, 23, 11, 55, tzinfo=UTC)] if fires_at_start else []
        assert triggers.slots("job") == expected
        await trio.sleep(300)
        assert triggers.slots("job") == [*expected, datetime(2026, 11, 23, 12, 5, tzinfo=UTC)]
        nursery.cancel_scope.cancel()


async def test_pause_and_resume_follow_job_changes(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        store = await _store(nursery, tmp_path / "s.db")
        await store.write(job_queries.insert_job, "p", "tick", _spec({"intervals": [{"every": "1s"}]}), "API")
        triggers = Triggers()
        changes = await _scheduler(nursery, store, triggers)
        await trio.sleep(2.2)
        await store.write(job_queries.set_job_state, "p", "tick", "PAUSED")
        await changes.send(JobChanged(project="p", job_id="tick"))
        await trio.sleep(0.1)
        paused_at = len(triggers.calls)
        await trio.sleep(5)
        assert len(triggers.calls) == paused_at
        job = await store.read(job_queries.get_job, "p", "tick")
        assert job is not None and job.next_run_time is None
        await store.write(job_queries.set_job_state, "p", "tick", "ACTIVE")
        await changes.send(JobChanged(project="p", job_id="tick"))
        await trio.sleep(3)
        assert len(triggers.calls) == paused_at + 3  # no burst for the paused slots
        nursery.cancel_scope.cancel()


async def test_calendar_with_jitter_fires_within_the_jitter(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        store = await _store(nursery, tmp_path / "s.db")
        spec = _spec({"calendars": [{"hour": "*", "minute": "*", "second": 30}], "jitter": "10s"})
        await store.write(job_queries.insert_job, "p", "cal", spec, "API")
        triggers = Triggers()
        await _scheduler(nursery, store, triggers)
        await trio.sleep(185)
        slots = triggers.slots("cal")
        assert [s.strftime("%H:%M:%S") for s in slots] == ["12:00:30", "12:01:30", "12:02:30"]
        for (_, _, fired), slot in zip(triggers.calls, slots, strict=True):
            delay = fired - (slot - BASE).total_seconds()
            assert 0 <= delay < 10
        nursery.cancel_scope.cancel()
