"""The scheduler under trio's autojump clock, with a real store and a recording trigger."""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from intunedd.actors.browser_pool import run_browser_pool
from intunedd.actors.bus import run_bus
from intunedd.actors.deployer import run_deployer
from intunedd.actors.runner import run_runner
from intunedd.actors.scheduler import JobChanges, run_scheduler
from intunedd.actors.store import StoreHandle, run_store
from intunedd.config import PoolSettings, Settings
from intunedd.harness import project_archive
from intunedd.job_spec import JobConfiguration, JobSpec
from intunedd.messages import BusCommand
from intunedd.policy.schedule import EPOCH
from intunedd.secrets import SecretBox
from intunedd.store import job_queries, queries
from intunedd.store.db import open_db
from intunedd.workers.protocol import WorkerConfig

from ..conftest import TrioClock

BASE = datetime(2026, 11, 23, 12, 0, 0, 500_000, tzinfo=UTC)
CLOCK = TrioClock(BASE)




class Triggers:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float]] = []  # job, slot key, trio time

    async def __call__(self, project: str, job_id: str, type_: str, slot_key: str) -> None:
        assert type_ == "SCHEDULED"
        self.calls.append((job_id, slot_key, trio.current_time()))

    def slots(self, job_id: str) -> list[datetime]:
        return [EPOCH + timedelta(milliseconds=int(key.split(":")[1])) for j, key, _ in self.calls if j == job_id]




async def _store(nursery: trio.Nursery, path: Path) -> StoreHandle:
    bus = await nursery.start(partial(run_bus, buffer=100))
    return await nursery.start(partial(run_store, open_db(path), bus.publisher(), clock=CLOCK))


def _spec(schedule: dict[str, Any] | None) -> JobSpec:
    return JobSpec(payload=[], configuration=JobConfiguration(), schedule=schedule)


async def _scheduler(
    nursery: trio.Nursery, store: StoreHandle, triggers: Triggers, window: float | None = None
) -> JobChanges:
    changes = JobChanges()
    await nursery.start(partial(run_scheduler, store, triggers, changes, clock=CLOCK, catch_up_window_s=window))
    return changes


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
        changes.notify("p", "tick")
        await trio.sleep(0.1)
        paused_at = len(triggers.calls)
        await trio.sleep(5)
        assert len(triggers.calls) == paused_at
        job = await store.read(job_queries.get_job, "p", "tick")
        assert job is not None and job.next_run_time is None
        await store.write(job_queries.set_job_state, "p", "tick", "ACTIVE")
        changes.notify("p", "tick")
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


# -- isolation: one job never stops the others -----------------------------------------------


async def test_a_stored_schedule_that_no_longer_parses_is_quarantined(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """An older version stored schedules the checks now refuse: the scheduler still starts,
    sets that job aside where an operator sees it, and fires the others."""
    async with trio.open_nursery() as nursery:
        store = await _store(nursery, tmp_path / "s.db")
        await store.write(job_queries.insert_job, "p", "old", _spec({"intervals": [{"every": "10000y"}]}), "API")
        await store.write(job_queries.insert_job, "p", "tick", _spec({"intervals": [{"every": "1s"}]}), "API")
        triggers = Triggers()
        changes = await _scheduler(nursery, store, triggers)
        await trio.sleep(3.2)
        assert len(triggers.slots("tick")) == 3 and triggers.slots("old") == []
        (entry,) = await store.read(queries.list_quarantine)
        assert (entry["kind"], entry["recordId"]) == ("job", "p/old")
        assert "schedule.intervals[0].every" in entry["reason"]
        changes.notify("p", "old")  # and a change to it is isolated the same way
        await trio.sleep(1)
        assert len(triggers.slots("tick")) == 4
        nursery.cancel_scope.cancel()


async def test_a_stored_job_that_no_longer_decodes_is_quarantined(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        store = await _store(nursery, tmp_path / "s.db")
        await store.write(job_queries.insert_job, "p", "tick", _spec({"intervals": [{"every": "1s"}]}), "API")
        await store.write(job_queries.insert_job, "p", "broken", _spec({"intervals": [{"every": "1s"}]}), "API")
        with sqlite3.connect(tmp_path / "s.db") as db:
            db.execute("""UPDATE jobs SET spec='{"schedule": {}, "payload": 7}' WHERE id='broken'""")
        triggers = Triggers()
        changes = await _scheduler(nursery, store, triggers)
        await trio.sleep(2.2)
        assert len(triggers.slots("tick")) == 2 and triggers.slots("broken") == []
        (entry,) = await store.read(queries.list_quarantine)
        assert (entry["kind"], entry["recordId"]) == ("job", "p/broken")
        assert "cannot decode" in entry["reason"]
        # The operator replaces it (it cannot be read, but it can be rewritten): set free, scheduled.
        await store.write(job_queries.update_job, "p", "broken", _spec({"intervals": [{"every": "1s"}]}))
        changes.notify("p", "broken")
        await trio.sleep(2)
        assert triggers.slots("broken") and await store.read(queries.list_quarantine) == []
        nursery.cancel_scope.cancel()


class FailingFor(Triggers):
    """A trigger that fails unexpectedly for one job."""

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.failing = job_id

    async def __call__(self, project: str, job_id: str, type_: str, slot_key: str) -> None:
        await super().__call__(project, job_id, type_, slot_key)
        if job_id == self.failing:
            raise RuntimeError("boom")


async def test_a_failing_trigger_spends_its_slot_and_the_scheduler_goes_on(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        store = await _store(nursery, tmp_path / "s.db")
        for job_id in ("bad", "good"):
            await store.write(job_queries.insert_job, "p", job_id, _spec({"intervals": [{"every": "1s"}]}), "API")
        triggers = FailingFor("bad")
        await _scheduler(nursery, store, triggers)
        await trio.sleep(3.2)
        assert len(triggers.slots("good")) == 3
        assert len(triggers.slots("bad")) == 3  # each slot tried once, none retried in a loop
        nursery.cancel_scope.cancel()


# -- the runner never waits on the scheduler -------------------------------------------------


def _code_jobs_archive(count: int) -> bytes:
    job = {"payload": [{"apiName": "a"}], "configuration": {}, "schedule": {"intervals": [{"every": "1m"}]}}
    files = {"api/a.py": "async def automation(page, params, **kwargs):\n    return params\n"}
    files |= {f"intuned-resources/jobs/job{i:03}.job.json": json.dumps(job) for i in range(count)}
    return project_archive(files)


async def test_a_deploy_of_200_scheduled_code_jobs_while_slots_fall_due(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """The daemon's wiring: the scheduler awaits the runner's replies to its triggers while
    the deployer reports 200 changed jobs; the report must never wait for the scheduler."""
    settings = Settings(state_dir=str(tmp_path), pool=PoolSettings(size=1))
    async with trio.open_nursery() as nursery:
        store = await _store(nursery, tmp_path / "s.db")
        pool = await nursery.start(
            partial(run_browser_pool, WorkerConfig(fd=-1), {}, size=0, recycle_after_attempts=1,
                    recycle_rss_mb=1, start_timeout_s=1)
        )  # fmt: skip
        changes, clock = JobChanges(), CLOCK
        runner, _ = await nursery.start(partial(run_runner, store, pool, settings, changes.notify, clock=clock))
        events, _unread = trio.open_memory_channel[BusCommand](math.inf)
        secrets = SecretBox.open(tmp_path / "secrets.key")
        deployer = await nursery.start(
            partial(run_deployer, store, runner, settings, changes.notify, events, clock=clock, secrets=secrets)
        )
        await deployer.deploy("p", _code_jobs_archive(1))
        await nursery.start(
            partial(run_scheduler, store, runner.trigger_job, changes, clock=CLOCK, catch_up_window_s=None)
        )
        # Trio time, which autojumps (threads working count as idle): a deadlock lands straight on it.
        with trio.fail_after(3600):
            await trio.sleep(59.4)  # the first job's 12:01:00 slot falls due with the next deploy
            await deployer.deploy("p", _code_jobs_archive(200))
            await trio.sleep(61)
        jobs = await store.read(job_queries.list_jobs, "p")
        assert len(jobs) == 200
        assert all(job.last_run_time is not None and job.next_run_time is not None for job in jobs)
        nursery.cancel_scope.cancel()
