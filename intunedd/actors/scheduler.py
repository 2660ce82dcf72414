"""The scheduler actor: fires each active job's schedule.

It keeps one plan per scheduled job (the slot it waits for and when, jitter included),
sleeps until the earliest, and triggers a SCHEDULED JobRun keyed ``<job>:<slot ms>``. The
store refuses a second JobRun for the same key, so a restart never fires a slot twice; the
slot handled last is persisted after each firing. At start, a slot missed while the daemon
was down fires once if ``policy.schedule.catch_up`` allows. Job changes arrive through
``JobChanges`` and re-plan that job. All decisions are ``policy.schedule``'s; wall time comes
from the injected clock and waiting from trio, so tests run it under the autojump clock.

One job never stops the others: a failure while planning or firing a job is logged and that
job (or slot) skipped, and a stored schedule that no longer parses (written by an older
version with looser checks) is quarantined, so the daemon always starts.
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
from ..policy.schedule import (
    EPOCH,
    Schedule,
    ScheduleError,
    catch_up,
    jitter_for,
    latest_missed,
    next_fire,
    parse_schedule,
)
from ..store import job_queries, queries
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


class JobChanges:
    """Jobs to re-plan, as the runner and the deployer report them.

    ``notify`` never blocks: the scheduler may itself be waiting on the runner (a trigger's
    reply), so the runner must never wait on the scheduler. A set, not a queue: it holds at
    most one entry per job, and a job changed twice before the scheduler looks is re-planned once.
    """

    def __init__(self) -> None:
        self._pending: set[tuple[str, str]] = set()
        self._arrived = trio.Event()

    def notify(self, project: str, job_id: str) -> None:
        self._pending.add((project, job_id))
        self._arrived.set()

    async def wait(self) -> None:
        await self._arrived.wait()

    def take(self) -> list[tuple[str, str]]:
        taken, self._pending = self._pending, set()
        self._arrived = trio.Event()
        return sorted(taken)


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

    async def replan_isolated(self, job: JobRecord | None, key: tuple[str, str], *, at_start: bool) -> None:
        """``replan``, where a failure costs only this job its plan."""
        try:
            await self.replan(job, key, at_start=at_start)
        except ScheduleError as e:
            self.plans.pop(key, None)
            log.error("job %s/%s is not scheduled: its stored schedule is invalid: %s", *key, e)
            await self.store.write(queries.quarantine, "job", "/".join(key), f"invalid schedule: {e}")
        except Exception:  # noqa: BLE001 - one job's failure must not stop the others' schedules
            self.plans.pop(key, None)
            log.exception("job %s/%s is not scheduled: planning it failed", *key)

    async def replan(self, job: JobRecord | None, key: tuple[str, str], *, at_start: bool) -> None:
        self.plans.pop(key, None)
        if job is None or job.state != "ACTIVE" or not job.spec.schedule:
            await self._record(key, None, None, None)
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
            await self._record(key, None, None, None)
            return
        self.plans[key] = plan
        await self._record(key, None, iso(plan.due), None)

    async def _record(
        self, key: tuple[str, str], last_slot_ms: int | None, next_run_time: str | None, fired_at: str | None
    ) -> None:
        """Persist a job's schedule state. Best effort: the plan in memory is what fires, and the
        store refuses a slot's second JobRun anyway, so a refused write (a full disk) only
        costs the job's ``nextRunTime`` on the API until the next write succeeds."""
        try:
            await self.store.write(job_queries.record_schedule, *key, last_slot_ms, next_run_time, fired_at)
        except Exception as e:  # noqa: BLE001 - see above
            log.warning("job %s/%s: its schedule state was not recorded: %s", *key, e)

    async def fire_due(self) -> None:
        now = self.clock.now()
        for key, plan in sorted(self.plans.items(), key=lambda item: item[1].due):
            if plan.due > now:
                break
            try:
                await self._fire(key, plan, now)
            except Exception:  # noqa: BLE001 - one job's failure must not stop the others' schedules
                # Without a plan the job waits for its next change or the next start.
                self.plans.pop(key, None)
                log.exception("job %s/%s: handling its slot %s failed; it is not scheduled", *key, iso(plan.slot))

    async def _fire(self, key: tuple[str, str], plan: _Plan, now: datetime) -> None:
        project, job_id = key
        slot_ms = _slot_ms(plan.slot)
        try:
            await self.trigger(project, job_id, "SCHEDULED", f"{job_id}:{slot_ms}")
        except ApiError as e:  # e.g. the project was removed: the slot is spent either way
            log.warning("scheduled JobRun of %s/%s not started: %s", project, job_id, e.message)
        except Exception:  # noqa: BLE001 - the slot is spent; the job's later slots still fire
            log.exception("scheduled JobRun of %s/%s not started", project, job_id)
        self.fired += 1
        job = await self.store.read(job_queries.get_job, project, job_id)
        following = self._plan_after(job, plan.schedule, max(plan.slot, now)) if job else None
        if following is None:
            self.plans.pop(key, None)
        else:
            self.plans[key] = following
        await self._record(key, slot_ms, iso(following.due) if following else None, iso(now))

    def next_deadline(self) -> float:
        """The trio time at which the earliest plan is due (inf with no plans)."""
        if not self.plans:
            return float("inf")
        due = min(plan.due for plan in self.plans.values())
        return trio.current_time() + max(0.0, (due - self.clock.now()).total_seconds())


async def run_scheduler(
    store: StoreHandle,
    trigger: Trigger,
    changes: JobChanges,
    *,
    clock: Clock,
    catch_up_window_s: float | None,
    task_status: trio.TaskStatus[_Scheduler] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    scheduler = _Scheduler(store, trigger, clock, catch_up_window_s)
    jobs, unreadable = await store.read(job_queries.scheduled_jobs_checked)
    for job_key, reason in unreadable:
        log.error("job %s is not scheduled: %s", job_key, reason)
        await store.write(queries.quarantine, "job", job_key, reason)
    for job in jobs:
        await scheduler.replan_isolated(job, (job.project, job.id), at_start=True)
    task_status.started(scheduler)
    while True:
        await scheduler.fire_due()
        with trio.move_on_at(scheduler.next_deadline()):
            await changes.wait()
        for key in changes.take():
            try:
                changed = await store.read(job_queries.get_job, *key)
            except Exception:  # noqa: BLE001 - e.g. a stored spec that no longer decodes
                log.exception("job %s/%s changed but could not be read; it is not scheduled", *key)
                scheduler.plans.pop(key, None)
                continue
            await scheduler.replan_isolated(changed, key, at_start=False)
