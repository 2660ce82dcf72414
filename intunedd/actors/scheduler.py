"""The scheduler actor: fires each active job's schedule.

It keeps one plan per scheduled job (the slot it waits for and when, jitter included),
sleeps until the earliest, and triggers a SCHEDULED JobRun keyed ``<job>:<slot ms>``. The
store refuses a second JobRun for the same key, so a restart never fires a slot twice; the
slot handled last is persisted after each firing. At start, a slot missed while the daemon
was down fires once if ``policy.schedule.catch_up`` allows. Job changes arrive on a channel
and re-plan that job. All decisions are ``policy.schedule``'s; wall time comes from the
injected clock and waiting from trio, so tests run it under the autojump clock.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

import trio

from ..clock import Clock, iso, parse_iso
from ..errors import ApiError
from ..job_spec import JobRecord
from ..messages import JobChanged
from ..policy.schedule import EPOCH, Schedule, catch_up, jitter_for, latest_missed, next_fire, parse_schedule
from ..store import job_queries
from .store import StoreHandle

log = logging.getLogger(__name__)
Trigger = Callable[[str, str, str, str], Awaitable[Any]]  # project, job id, type, slot key


@dataclass(frozen=True)
class _Plan:
    schedule: Schedule
    slot: datetime
    due: datetime


def _slot_ms(slot: datetime) -> int:
    return (slot - EPOCH) // timedelta(milliseconds=1)


class _Scheduler:
    def __init__(self, store: StoreHandle, trigger: Trigger, clock: Clock, catch_up_window_s: float | None):
        self.store = store
        self.trigger = trigger
        self.clock = clock
        self.catch_up_window_s = catch_up_window_s
        self.plans: dict[tuple[str, str], _Plan] = {}
        self.fired = 0

    def _plan_after(self, job: JobRecord, schedule: Schedule, after: datetime) -> _Plan | None:
        slot = next_fire(schedule, after)
        if slot is None:
            return None
        return _Plan(schedule, slot, slot + jitter_for(schedule, slot, f"{job.project}/{job.id}"))

    async def replan(self, job: JobRecord | None, key: tuple[str, str], *, at_start: bool) -> None:
        self.plans.pop(key, None)
        if job is None or job.state != "ACTIVE" or not job.spec.schedule:
            await self.store.write(job_queries.record_schedule, *key, None, None, None)
            return
        schedule = parse_schedule(job.spec.schedule)
        now = self.clock.now()
        last = EPOCH + timedelta(milliseconds=job.last_slot_ms) if job.last_slot_ms is not None else None
        after = max(last or parse_iso(job.created_at), now) if not at_start else (last or parse_iso(job.created_at))
        plan: _Plan | None
        missed = latest_missed(schedule, after, now) if at_start else None
        if missed is not None and catch_up(missed, now, self.catch_up_window_s):
            plan = _Plan(schedule, missed, now)
        else:
            plan = self._plan_after(job, schedule, max(after, now))
        if plan is None:
            await self.store.write(job_queries.record_schedule, *key, None, None, None)
            return
        self.plans[key] = plan
        await self.store.write(job_queries.record_schedule, *key, None, iso(plan.due), None)

    async def fire_due(self) -> None:
        now = self.clock.now()
        for key, plan in sorted(self.plans.items(), key=lambda item: item[1].due):
            if plan.due > now:
                break
            project, job_id = key
            slot_ms = _slot_ms(plan.slot)
            try:
                await self.trigger(project, job_id, "SCHEDULED", f"{job_id}:{slot_ms}")
            except ApiError as e:  # e.g. the project was removed: the slot is spent either way
                log.warning("scheduled JobRun of %s/%s not started: %s", project, job_id, e.message)
            self.fired += 1
            job = await self.store.read(job_queries.get_job, project, job_id)
            following = self._plan_after(job, plan.schedule, max(plan.slot, now)) if job else None
            if following is None:
                self.plans.pop(key, None)
            else:
                self.plans[key] = following
            await self.store.write(
                job_queries.record_schedule,
                project,
                job_id,
                slot_ms,
                iso(following.due) if following else None,
                iso(now),
            )

    def next_deadline(self) -> float:
        """The trio time at which the earliest plan is due (inf with no plans)."""
        if not self.plans:
            return float("inf")
        due = min(plan.due for plan in self.plans.values())
        return trio.current_time() + max(0.0, (due - self.clock.now()).total_seconds())


async def run_scheduler(
    store: StoreHandle,
    trigger: Trigger,
    changes: trio.MemoryReceiveChannel[JobChanged],
    *,
    clock: Clock,
    catch_up_window_s: float | None,
    task_status: trio.TaskStatus[_Scheduler] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    scheduler = _Scheduler(store, trigger, clock, catch_up_window_s)
    for job in await store.read(job_queries.scheduled_jobs):
        await scheduler.replan(job, (job.project, job.id), at_start=True)
    async with changes:
        task_status.started(scheduler)
        while True:
            await scheduler.fire_due()
            change = None
            with trio.move_on_at(scheduler.next_deadline()):
                change = await changes.receive()
            if change is not None:
                changed = await store.read(job_queries.get_job, change.project, change.job_id)
                await scheduler.replan(changed, (change.project, change.job_id), at_start=False)
