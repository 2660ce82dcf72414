"""The runs list over a real SQLite file: keyset paging sees every run once, newest first.
(How fast each filter is at 100,000 runs is bench/history.py's to measure.)"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intunedd.messages import ProjectVersion, RunOptions
from intunedd.policy.run_filters import parse_filter
from intunedd.store import queries
from intunedd.store.db import open_db

PROJECT = ProjectVersion(
    name="p",
    version=1,
    path="/x",
    apis=["a", "b"],
    api_access=True,
    max_concurrent=2,
    deployed_at="2026-12-01T00:00:00.000Z",
)
OPTIONS = RunOptions(max_attempts=1, request_timeout_s=60, save_trace=False)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    db = open_db(tmp_path_factory.mktemp("runs") / "db.sqlite")
    tx = queries.Tx(db, "2026-12-01T00:00:00.000Z")
    with db.atomic():
        for n in range(120):
            job_run = f"jr{n % 10}" if n % 2 else None
            queue = f"q{n % 5}" if n % 4 == 0 else None
            queries.insert_run(
                tx, f"run{n:018d}", PROJECT, "ab"[n % 2], {}, OPTIONS, run_type="JOB" if job_run else "STANDALONE",
                job_id="j" if job_run else None, job_run_id=job_run, queue_id=queue,
            )  # fmt: skip
            queries.insert_run(tx, f"oth{n:018d}", msgspec.structs.replace(PROJECT, name="q"), "a", {}, OPTIONS)
    db.conn.execute("ANALYZE")  # as the daemon's PRAGMA optimize does at start
    return db


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.integers(1, 60), api=st.sampled_from([None, "a", "b"]))
def test_cursor_paging_sees_every_run_once_newest_first(db, limit: int, api: str | None) -> None:  # type: ignore[no-untyped-def]
    conditions = [parse_filter(f"api_name={api}")] if api else []
    everything, total = queries.list_runs(db, "p", conditions, 1000, 0)
    assert len(everything) == total
    seen = []
    cursor = None
    while True:
        page, page_total = queries.list_runs(db, "p", conditions, limit, 0, cursor)
        assert page_total == total
        seen += page
        if len(page) < limit:
            break
        cursor = page[-1].seq
    assert [r.id for r in seen] == [r.id for r in everything]
    assert [r.seq for r in seen] == sorted((r.seq for r in seen), reverse=True)
