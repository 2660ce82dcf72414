"""The HTTP layer's typed reads, against a real store."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import trio

from intunedd.actors.bus import run_bus
from intunedd.actors.store import run_store
from intunedd.http.records import RESULTS_PAGE, Records
from intunedd.job_spec import JobConfiguration, JobSpec, PayloadItem
from intunedd.messages import ProjectVersion, RunOptions
from intunedd.store import job_queries, queries
from intunedd.store.db import open_db

from ..conftest import TrioClock

PROJECT = ProjectVersion(name="p", version=1, path="/p", apis=["a"], api_access=True, max_concurrent=1, deployed_at="")
OPTIONS = RunOptions(max_attempts=1, request_timeout_s=60, save_trace=False)


async def test_job_run_results_come_a_page_at_a_time_in_acceptance_order(tmp_path: Path) -> None:
    items = 2 * RESULTS_PAGE + 7
    async with trio.open_nursery() as nursery:
        bus = await nursery.start(partial(run_bus, buffer=10))
        clock = TrioClock(datetime(2026, 11, 23, tzinfo=UTC))
        store = await nursery.start(partial(run_store, open_db(tmp_path / "db.sqlite"), bus.publisher(), clock=clock))
        await store.write(queries.record_deploy, PROJECT, {})
        spec = JobSpec(payload=[PayloadItem(api_name="a", parameters={"i": i}) for i in range(items)],
                       configuration=JobConfiguration())  # fmt: skip
        await store.write(job_queries.insert_job, "p", "j", spec, "API")
        job = await store.read(job_queries.get_job, "p", "j")
        assert job is not None
        job_run, runs = await store.write(
            job_queries.start_job_run, job, PROJECT, "MANUAL", "jr", [f"r{i:04}" for i in range(items)],
            [OPTIONS] * items, {}, 1, None, None,
        )  # fmt: skip
        read = [run.parameters["i"] async for run in Records(store).job_run_results(job_run.id)]
        assert read == list(range(items)) and len(runs) == items
        nursery.cancel_scope.cancel()
