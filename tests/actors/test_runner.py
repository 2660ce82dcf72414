"""The runner with a real store and pool, and scripted fake workers instead of Chromium, under
trio's autojump clock: what happens to a run, and that no run's failure ends the actor."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
import sqlite_utils
import trio
import trio.testing

from intunedd.actors.browser_pool import run_browser_pool
from intunedd.actors.bus import run_bus
from intunedd.actors.rate_limiter import run_rate_limiter
from intunedd.actors.runner import RunnerHandle, run_runner
from intunedd.actors.store import StoreHandle, run_store
from intunedd.collections.job import API, PROJECT, RUN_TYPE, VERSION
from intunedd.config import PoolSettings, QueueSettings, RunSettings, Settings
from intunedd.errors import BadRequest
from intunedd.messages import ProjectVersion, RunOptions, RunRecord, RunRequest
from intunedd.store import queries
from intunedd.store.db import open_db
from intunedd.workers.fake import fake_command
from intunedd.workers.protocol import WorkerConfig

from ..conftest import TrioClock

CLOCK = TrioClock(datetime(2026, 11, 23, 12, tzinfo=UTC))
TERMINAL = ("completed", "failed", "canceled")


def _project(tmp_path: Path, version: int = 1) -> ProjectVersion:
    return ProjectVersion(
        name="p", version=version, path=str(tmp_path / "project"), apis=["echo"], api_access=True, max_concurrent=2,
        deployed_at="2026-11-23T12:00:00.000Z",
    )  # fmt: skip


@dataclass
class Parts:
    store: StoreHandle
    runner: RunnerHandle

    async def finished(self, run_id: str, timeout: float = 60) -> RunRecord:
        with trio.fail_after(timeout):
            await self.runner.wait(run_id)
        run = await self.store.read(queries.get_run, run_id)
        assert run is not None and run.status in TERMINAL
        return run


@asynccontextmanager
async def runner_parts(
    tmp_path: Path, behaviour: str, size: int = 1, queues: QueueSettings | None = None
) -> AsyncIterator[Parts]:
    """A store, a pool of ``size`` ``behaviour`` fakes and a runner, with project ``p`` v1 deployed."""
    settings = Settings(
        state_dir=str(tmp_path), pool=PoolSettings(size=size, abort_grace_s=0.5), runs=RunSettings(drain_timeout_s=1),
        queues=queues or QueueSettings(),
    )  # fmt: skip
    async with trio.open_nursery() as nursery:
        bus = await nursery.start(partial(run_bus, buffer=100))
        store = await nursery.start(partial(run_store, open_db(tmp_path / "db.sqlite"), bus.publisher(), clock=CLOCK))
        await store.write(queries.record_deploy, _project(tmp_path), {})
        pool = await nursery.start(
            partial(
                run_browser_pool,
                WorkerConfig(fd=-1),
                {},
                size=size,
                recycle_after_attempts=100,
                recycle_rss_mb=4096,
                start_timeout_s=10,
                command=fake_command(behaviour),
            )
        )
        limiter = await nursery.start(partial(run_rate_limiter, store, clock=CLOCK, rng=random.Random(7)))
        runner, _drain = await nursery.start(
            partial(run_runner, store, pool, settings, lambda p, j: None, clock=CLOCK, limiter=limiter)
        )
        yield Parts(store, runner)
        nursery.cancel_scope.cancel()


async def test_a_run_completes_through_its_worker(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    async with runner_parts(tmp_path, "ok") as parts:
        run = await parts.runner.submit("p", "echo", {"hello": 1}, RunRequest(max_attempts=1))
        done = await parts.finished(run.id)
        assert (done.status, done.result) == ("completed", {"hello": 1})
        attempts = await parts.store.read(queries.list_attempts, run.id)
        assert [a.status for a in attempts] == ["completed"]


async def test_a_misbehaving_worker_fails_its_run_and_the_runner_goes_on(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with runner_parts(tmp_path, "garbage") as parts:
        first = await parts.runner.submit("p", "echo", {}, RunRequest(max_attempts=2))
        failed = await parts.finished(first.id)
        assert (failed.status, failed.error["code"]) == ("failed", "script-protocol-error")
        attempts = await parts.store.read(queries.list_attempts, first.id)
        assert [a.status for a in attempts] == ["failed", "failed"]  # retried on a fresh worker
        second = await parts.runner.submit("p", "echo", {}, RunRequest(max_attempts=1))
        assert (await parts.finished(second.id)).error["code"] == "script-protocol-error"
        assert parts.runner.statistics().running == 0


async def test_a_recovered_run_whose_project_version_is_gone_fails_alone(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    options = RunOptions(max_attempts=1, request_timeout_s=60, save_trace=False)
    db = open_db(tmp_path / "db.sqlite")
    tx = queries.Tx(db, "2026-11-23T11:00:00.000Z")
    with db.atomic():
        orphan = queries.insert_run(tx, "orphanAAAAAAAAAAAAAAA", _project(tmp_path, 99), "echo", {}, options)
    db.conn.close()
    async with runner_parts(tmp_path, "ok") as parts:
        failed = await parts.finished(orphan.id)
        assert (failed.status, failed.error["code"]) == ("failed", "run-unrunnable")
        assert "version 99" in failed.error["message"]
        fine = await parts.runner.submit("p", "echo", {"still": "serving"}, RunRequest(max_attempts=1))
        assert (await parts.finished(fine.id)).result == {"still": "serving"}


async def test_a_worker_that_never_answers_times_the_attempt_out(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with runner_parts(tmp_path, "hang") as parts:
        started = trio.current_time()
        run = await parts.runner.submit("p", "echo", {}, RunRequest(max_attempts=1, request_timeout_s=5))
        assert (await parts.finished(run.id)).error["code"] == "script-timeout"
        assert 5 <= trio.current_time() - started < 15  # the timeout, the abort grace, then the kill
        again = await parts.runner.submit("p", "echo", {}, RunRequest(max_attempts=1, request_timeout_s=5))
        assert (await parts.finished(again.id)).error["code"] == "script-timeout"  # a fresh worker took it


def _cap_pages(db: sqlite_utils.Database, extra: int) -> None:
    """SQLite answers SQLITE_FULL past this many more pages, exactly as on a full disk."""
    pages = db.conn.execute("PRAGMA page_count").fetchone()[0]
    db.conn.execute(f"PRAGMA max_page_count={pages + extra}")


async def test_a_run_whose_end_the_full_disk_refused_runs_again_once_space_returns(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with runner_parts(tmp_path, "big-result") as parts:
        run = await parts.runner.submit("p", "echo", {"size": 300_000}, RunRequest(max_attempts=1))
        await parts.store.read(_cap_pages, 2)  # the 300 KB result cannot be recorded
        await trio.sleep(20)
        waiting = await parts.store.read(queries.get_run, run.id)
        assert waiting is not None and waiting.status in ("pending", "started")  # neither lost nor failed
        await parts.store.read(_cap_pages, 100_000)
        done = await parts.finished(run.id)
        assert done.status == "completed" and len(done.result) == 300_000 - 2
        attempts = await parts.store.read(queries.list_attempts, run.id)
        assert [a.status for a in attempts][-1] == "completed"
        assert "interrupted" in [a.status for a in attempts]


async def test_an_unfinished_collection_job_run_is_left_to_the_collections_actor(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    options = RunOptions(max_attempts=1, request_timeout_s=60, save_trace=False)
    collections = ProjectVersion(
        name=PROJECT, version=VERSION, path="/nowhere", apis=[API], api_access=True, max_concurrent=1,
        deployed_at="1970-01-01T00:00:00.000Z",
    )  # fmt: skip
    db = open_db(tmp_path / "db.sqlite")
    tx = queries.Tx(db, "2026-11-23T11:00:00.000Z")
    with db.atomic():
        job_run = queries.insert_run(tx, "collectionjobAAAAAAAA", collections, API, {}, options, run_type=RUN_TYPE)
    db.conn.close()
    async with runner_parts(tmp_path, "ok") as parts:
        fine = await parts.runner.submit("p", "echo", {}, RunRequest(max_attempts=1))
        await parts.finished(fine.id)
        left = await parts.store.read(queries.get_run, job_run.id)
        assert left is not None and left.status == "pending"  # neither run nor failed as "unrunnable"
        with pytest.raises(BadRequest, match="cannot be canceled on its own"):
            await parts.runner.cancel(PROJECT, job_run.id)  # it would stop nothing: the runner does not drive it
        still = await parts.store.read(queries.get_run, job_run.id)
        assert still is not None and still.status == "pending"
