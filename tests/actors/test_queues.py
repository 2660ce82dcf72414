"""Queues in the runner, with a real store, pool and rate limiter and scripted fake workers, under
trio's autojump clock: order, in-order retries, limits, pause windows, random waits, repeat items."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
import trio.testing

from intunedd.clock import parse_iso
from intunedd.config import QueueSettings
from intunedd.errors import BadRequest, Conflict, NotFound
from intunedd.job_spec import JobConfiguration, JobSpec, PayloadItem, Retry
from intunedd.messages import RunOptions, RunRecord
from intunedd.queue_spec import QUEUE_ID, QueueConfiguration, QueueCreate, QueueItem, QueueSpec, RepeatItemInput
from intunedd.store import job_queries, queries, queue_queries
from intunedd.store.db import open_db

from .test_runner import CLOCK, Parts, _project, runner_parts


def _queue(**configuration: Any) -> QueueCreate:
    return QueueCreate(configuration=msgspec.convert(configuration, QueueConfiguration))


async def _append(parts: Parts, queue_id: str, **parameters: Any) -> RunRecord:
    run: RunRecord = await parts.runner.queue("append", "p", queue_id, QueueItem("echo", parameters))
    return run


def _started(run: RunRecord) -> float:
    assert run.started_at is not None
    return (parse_iso(run.started_at) - CLOCK.base).total_seconds()


async def test_items_run_one_at_a_time_in_order_and_the_head_is_retried_before_the_next(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with runner_parts(tmp_path, "scripted", size=2) as parts:
        queue_id = await parts.runner.queue("create", "p", "", _queue(retry={"maximumAttempts": 3}))
        runs = [await _append(parts, queue_id, n=0, fail_attempts=2)]
        runs += [await _append(parts, queue_id, n=n) for n in (1, 2)]
        done = [await parts.finished(run.id) for run in runs]
        assert [run.status for run in done] == ["completed"] * 3
        assert [run.run_type for run in done] == ["QUEUE"] * 3
        attempts = await parts.store.read(queries.list_attempts, runs[0].id)
        assert [a.status for a in attempts] == ["failed", "failed", "completed"]
        for before, after in zip(done, done[1:], strict=False):
            assert before.ended_at is not None and after.started_at is not None
            assert after.started_at >= before.ended_at  # never two at once, even with two workers


async def test_a_failing_head_ends_failed_after_its_attempts_and_the_queue_goes_on(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with runner_parts(tmp_path, "scripted") as parts:
        queue_id = await parts.runner.queue("create", "p", "q1", _queue(retry={"maximumAttempts": 2}))
        head = await _append(parts, queue_id, fail_attempts=99)
        item = QueueItem("echo", {"fail_attempts": 0}, retry=Retry(maximum_attempts=1))
        after = await parts.runner.queue("append", "p", queue_id, item)
        failed = await parts.finished(head.id)
        assert (failed.status, failed.attempts_count) == ("failed", 2)
        assert (await parts.finished(after.id)).status == "completed"


async def test_rate_limits_hold_together_at_exact_times(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    limits = [{"limit": 3, "duration": "1h"}, {"limit": 2, "duration": "1m"}]
    async with runner_parts(tmp_path, "scripted") as parts:
        queue_id = await parts.runner.queue("create", "p", "", _queue(rateLimits=limits))
        runs = [await _append(parts, queue_id, n=n) for n in range(4)]
        starts = [_started(await parts.finished(run.id, timeout=7200)) for run in runs]
        first = starts[0]
        assert starts[1] - first < 1  # two a minute
        assert 60 <= starts[2] - first < 61  # the third once the first leaves the minute's window
        assert 3600 <= starts[3] - first < 3601  # the fourth once the first leaves the hour's


async def test_a_paused_queue_starts_nothing_until_its_resume_fires(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    # CLOCK starts at 12:00: paused at 12:00 every day, resumed at 12:30.
    schedule = {"pause": "0 12 * * *", "resume": "30 12 * * *"}
    async with runner_parts(tmp_path, "scripted") as parts:
        queue_id = await parts.runner.queue("create", "p", "", _queue(schedule=schedule))
        run = await _append(parts, queue_id)
        await trio.sleep(60)
        view = await parts.runner.queue("state", "p", queue_id)
        assert (view.state.queued, view.wait.reason) == (1, "pause_window")
        assert view.wait.at == CLOCK.base + timedelta(minutes=30)
        assert 1800 <= _started(await parts.finished(run.id, timeout=3600)) < 1801


async def test_a_random_wait_separates_items(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    async with runner_parts(tmp_path, "scripted") as parts:
        queue_id = await parts.runner.queue("create", "p", "", _queue(randomWait={"min": "10s", "max": "20s"}))
        runs = [await _append(parts, queue_id, n=n) for n in range(3)]
        done = [await parts.finished(run.id) for run in runs]
        for before, after in zip(done, done[1:], strict=False):
            assert before.ended_at is not None and after.started_at is not None
            gap = (parse_iso(after.started_at) - parse_iso(before.ended_at)).total_seconds()
            assert 10 <= gap <= 21


async def test_extended_items_go_to_the_tail_of_the_same_queue(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with runner_parts(tmp_path, "scripted") as parts:
        queue_id = await parts.runner.queue("create", "p", "", _queue())
        parent = await _append(parts, queue_id, extend=[{"api": "echo", "parameters": {"child": 1}}])
        sibling = await _append(parts, queue_id, n=2)
        done = await parts.finished(parent.id)
        child_id = done.extended_payloads[0]["runId"]
        child = await parts.finished(child_id)
        assert (child.queue_id, child.run_type, child.parameters) == (queue_id, "QUEUE", {"child": 1})
        assert child.seq > sibling.seq
        assert (await parts.finished(sibling.id)).ended_at <= child.started_at


async def test_a_queued_item_can_be_deleted_and_a_processed_one_cannot(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with runner_parts(tmp_path, "scripted") as parts:
        queue_id = await parts.runner.queue("create", "p", "", _queue(rateLimits=[{"limit": 1, "duration": "1h"}]))
        first = await _append(parts, queue_id)
        second = await _append(parts, queue_id)
        assert (await parts.finished(first.id)).status == "completed"
        with pytest.raises(BadRequest, match="already been processed"):
            await parts.runner.queue("delete_item", "p", queue_id, item_id=first.id)
        await parts.runner.queue("delete_item", "p", queue_id, item_id=second.id)
        gone = await parts.finished(second.id)
        assert (gone.status, gone.reason["type"]) == ("canceled", "queue-item-deleted")
        with pytest.raises(NotFound):
            await parts.runner.queue("delete_item", "p", queue_id, item_id=second.id)


async def test_repeat_items_are_appended_every_period_and_stop_when_deleted(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with runner_parts(tmp_path, "scripted") as parts:
        queue_id = await parts.runner.queue("create", "p", "", _queue())
        repeat = RepeatItemInput(api_name="echo", parameters={"r": 1}, repeat="10m")
        item_id = await parts.runner.queue("add_repeat", "p", queue_id, repeat)
        await trio.sleep(25 * 60)
        runs, total = await parts.store.read(queries.list_runs, "p", [], 100, 0)
        assert total == 3  # at once, then at 10 and 20 minutes
        starts = sorted(round(_started(run)) for run in runs)
        assert [s - starts[0] for s in starts] == [0, 600, 1200]
        await parts.runner.queue("delete_repeat", "p", queue_id, item_id=item_id)
        await trio.sleep(30 * 60)
        assert (await parts.store.read(queries.list_runs, "p", [], 100, 0))[1] == 3


async def test_deleting_a_queue_cancels_its_waiting_items(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with runner_parts(tmp_path, "scripted") as parts:
        queue_id = await parts.runner.queue("create", "p", "", _queue(rateLimits=[{"limit": 1, "duration": "1h"}]))
        first = await _append(parts, queue_id)
        second = await _append(parts, queue_id)
        await parts.finished(first.id)
        await parts.runner.queue("delete", "p", queue_id)
        gone = await parts.finished(second.id)
        assert (gone.status, gone.reason["type"]) == ("canceled", "queue-deleted")
        with pytest.raises(NotFound):
            await parts.runner.queue("state", "p", queue_id)


async def test_a_jobs_rate_limits_pace_its_items_across_workers(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    configuration = JobConfiguration(max_concurrent_requests=2, rate_limits=[{"limit": 1, "duration": "1m"}])
    spec = JobSpec(payload=[PayloadItem(api_name="echo", parameters={"n": n}) for n in range(3)],
                   configuration=configuration)  # fmt: skip
    async with runner_parts(tmp_path, "scripted", size=2) as parts:
        await parts.runner.create_job("p", "paced", spec)
        job_run = await parts.runner.trigger_job("p", "paced")
        runs, _ = await parts.store.read(queries.list_runs, "p", [], 10, 0)
        done = [await parts.finished(run.id, timeout=600) for run in runs]
        starts = sorted(_started(run) for run in done)
        assert [round(s - starts[0]) for s in starts] == [0, 60, 120]
        counts = await parts.store.read(job_queries.job_run_counts, job_run.id)
        assert counts["completed"] == 3


async def test_stored_queues_that_cannot_be_used_are_quarantined_and_the_rest_runs(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    db = open_db(tmp_path / "db.sqlite")
    tx = queries.Tx(db, "2026-11-23T11:00:00.000Z")
    options = RunOptions(max_attempts=1, request_timeout_s=60, save_trace=False)
    good = QueueSpec(configuration=QueueConfiguration())
    with db.atomic():
        queue_queries.insert_queue(tx, "p", "good", good)
        queue_queries.insert_queue(tx, "p", "garbled", good)
        queue_queries.insert_queue(tx, "p", "limits", good)
        waiting = queue_queries.insert_item(
            tx, _project(tmp_path), "good", QueueItem("echo", {"k": 1}), "w" * 21, options
        )
        orphan = queue_queries.insert_item(tx, _project(tmp_path), "gone", QueueItem("echo"), "o" * 21, options)
    db.conn.execute("UPDATE queues SET spec='{not json' WHERE id='garbled'")
    bad_limits = '{"configuration": {"rateLimits": [{"limit": 1, "duration": "soon"}]}}'
    db.conn.execute("UPDATE queues SET spec=? WHERE id='limits'", (bad_limits,))
    db.conn.commit()
    db.conn.close()
    async with runner_parts(tmp_path, "scripted") as parts:
        assert (await parts.finished(waiting.id)).result == {"k": 1}
        canceled = await parts.finished(orphan.id)
        assert (canceled.status, canceled.reason["type"]) == ("canceled", "queue-deleted")
        quarantined = await parts.store.read(queries.list_quarantine)
        assert {(q["kind"], q["recordId"]) for q in quarantined} == {("queue", "p/garbled"), ("queue", "p/limits")}
        with pytest.raises(NotFound):
            await parts.runner.queue("state", "p", "limits")


async def test_a_queue_created_without_an_id_gets_one_its_paths_accept(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with runner_parts(tmp_path, "scripted") as parts:
        # A nanoid may begin with "-" or "_": one in 32 of them would have been refused as its own id.
        ids = [await parts.runner.queue("create", "p", "", _queue()) for _ in range(100)]
        assert all(QUEUE_ID.match(queue_id) for queue_id in ids)
        assert len(set(ids)) == 100


async def test_a_projects_queues_are_listed_oldest_first_with_their_states_in_one_read(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with runner_parts(tmp_path, "scripted") as parts:
        limited = _queue(rateLimits=[{"limit": 1, "duration": "1h"}])
        slow = await parts.runner.queue("create", "p", "", msgspec.structs.replace(limited, id="b-slow"))
        idle = await parts.runner.queue("create", "p", "", msgspec.structs.replace(_queue(), id="a-idle"))
        runs = [await _append(parts, slow, n=n) for n in range(3)]
        await parts.finished(runs[0].id)  # the next two wait an hour for the limit
        views = await parts.runner.queue("list", "p", "")
        # Created at the same instant (the clock is frozen): then by id.
        assert [(v.queue.id, v.state.queued, v.state.running) for v in views] == [(idle, 0, None), (slow, 2, None)]
        assert views[1].wait is not None and views[1].wait.reason is not None
        assert await parts.runner.queue("list", "other-project", "") == []


async def test_queues_and_repeat_items_are_bounded_in_number(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    limits = QueueSettings(max_per_project=2, max_repeat_items_per_queue=1)
    async with runner_parts(tmp_path, "scripted", queues=limits) as parts:
        first = await parts.runner.queue("create", "p", "", _queue())
        await parts.runner.queue("create", "p", "", _queue())
        with pytest.raises(Conflict, match="queues.max_per_project"):
            await parts.runner.queue("create", "p", "", _queue())
        repeat = RepeatItemInput(api_name="echo", parameters={}, repeat="1h")
        item_id = await parts.runner.queue("add_repeat", "p", first, repeat)
        with pytest.raises(Conflict, match="queues.max_repeat_items_per_queue"):
            await parts.runner.queue("add_repeat", "p", first, repeat)
        # Deleting makes room again.
        await parts.runner.queue("delete_repeat", "p", first, None, item_id)
        await parts.runner.queue("add_repeat", "p", first, repeat)
        await parts.runner.queue("delete", "p", first)
        await parts.runner.queue("create", "p", "", _queue())
