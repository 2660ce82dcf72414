"""Collections, their runs, jobs and results in a real SQLite file (``store.collection_queries``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intunedd.clock import iso
from intunedd.collections import cursors, wire
from intunedd.collections.dedup import Screened
from intunedd.collections.job import API, PROJECT, RUN_TYPE, VERSION, verdict
from intunedd.collections.outcome import ScrapeOutcome
from intunedd.collections.request import Guidance, ScrapeRequest, ScrapeResponse, decode_request
from intunedd.collections.signing import CALLBACK_KIND
from intunedd.messages import Event, ProjectVersion, RunOptions, RunRecord
from intunedd.policy.retention import Limits
from intunedd.store import collection_queries as cq
from intunedd.store import delivery_queries, queries, retention_queries
from intunedd.store.db import open_db
from intunedd.store.errors import RecordMissing
from intunedd.store.queries import Tx

T = TypeVar("T")
START = datetime(2026, 12, 2, 12, tzinfo=UTC)
KEY = b"cursor-key"
BASE = "http://daemon.example"
PROJECT_VERSION = ProjectVersion(
    name=PROJECT, version=VERSION, path="/nowhere", apis=[API], api_access=True, max_concurrent=1,
    deployed_at="1970-01-01T00:00:00.000Z",
)  # fmt: skip
OPTIONS = RunOptions(max_attempts=1, request_timeout_s=60, save_trace=False)


class Store:
    """The store actor's contract without the actor: one transaction per write, events kept, a settable now."""

    def __init__(self, path: Path) -> None:
        self.db = open_db(path)
        self.events: list[Event] = []
        self.now = START

    def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        tx = Tx(self.db, iso(self.now))
        with self.db.atomic():
            value = fn(tx, *args, **kwargs)
        self.events.extend(tx.events)
        return value

    def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(self.db, *args, **kwargs)

    def types(self) -> list[str]:
        return [e.type for e in self.events]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "intunedd.db")
    yield store
    store.db.conn.close()


def _requests(*urls: str) -> list[ScrapeRequest]:
    return [decode_request({"url": url, "custom_id": f"c{i}"}) for i, url in enumerate(urls)]


def _create(store: Store, urls: list[str], callback_url: str | None = None, **kwargs: Any) -> str:
    answer = Screened().answer(f"col-{len(store.events)}", "shop")
    created, replayed = store.write(cq.create_collection, answer, _requests(*urls), callback_url, **kwargs)
    assert not replayed
    return created.id


def _outcome(success: bool, *, status: int = 200, timed_out: bool = False, html: str = "<p>x</p>") -> ScrapeOutcome:
    response = ScrapeResponse(
        url="https://a.example/", html=html, status_code=status, message="ok" if success else "no",
        execution_time=0.25, guidance=Guidance(success=success),
    )  # fmt: skip
    return ScrapeOutcome(response=response, timed_out=timed_out, retries=1 if not success else 0)


def _finish(store: Store, job: cq.PendingJob, outcome: ScrapeOutcome) -> bool:
    run = store.read(queries.get_run, job.run_of)
    assert run is not None
    store.write(cq.job_started, job.id, run, 1, "/log", None)
    run = store.read(queries.get_run, job.run_of)
    encoded = msgspec.json.encode(outcome.response)
    return store.write(cq.job_finished, job.id, run, 1, outcome, verdict(outcome), encoded, BASE)


def test_a_collection_is_created_read_updated_and_deleted(store: Store) -> None:
    collection_id = _create(store, ["https://a.example/", "https://b.example/"], "https://hooks.example/done")
    found = store.read(cq.get_collection, collection_id)
    assert found is not None and found.name == "shop" and found.callback_url == "https://hooks.example/done"
    assert found.created_at == START.timestamp()
    assert [r.url for r in store.read(cq.collection_requests, collection_id)] == [
        "https://a.example/",
        "https://b.example/",
    ]

    store.now += timedelta(seconds=5)
    store.write(cq.update_collection, collection_id, requests=_requests("https://c.example/"), name="renamed")
    updated = store.read(cq.get_collection, collection_id)
    assert updated is not None and updated.name == "renamed" and updated.updated_at == START.timestamp() + 5
    assert updated.callback_url == "https://hooks.example/done"  # not given: unchanged
    assert [r.url for r in store.read(cq.collection_requests, collection_id)] == ["https://c.example/"]

    assert store.write(cq.delete_collection, collection_id) is True
    assert store.read(cq.get_collection, collection_id) is None
    assert store.read(cq.collection_requests, collection_id) == []
    assert store.write(cq.delete_collection, collection_id) is False
    with pytest.raises(RecordMissing):
        store.write(cq.update_collection, collection_id, name="x")
    assert store.types() == ["collection.created", "collection.updated", "collection.deleted"]


def test_an_idempotency_key_replays_the_first_answer_within_its_window(store: Store) -> None:
    first = Screened().answer("col-1", "shop")
    window_start = START.timestamp() - 86400
    made, replayed = store.write(
        cq.create_collection, first, _requests("https://a.example/"), None, idempotency=("k", "key-1", window_start)
    )
    assert (made, replayed) == (first, False)
    again, replayed = store.write(
        cq.create_collection, Screened().answer("col-2", "other"), [], None, idempotency=("k", "key-1", window_start)
    )
    assert replayed and again == first
    assert [c.id for c in store.read(cq.list_collections)] == ["col-1"]
    # Another API key's same Idempotency-Key is another create; an old one no longer replays.
    _, replayed = store.write(
        cq.create_collection, Screened().answer("col-3", "x"), [], None, idempotency=("k", "key-2", window_start)
    )
    assert not replayed
    assert store.read(cq.idempotent_response, "k", "key-1", START.timestamp() + 1) is None


def test_a_run_makes_a_job_and_a_run_of_ours_per_request_and_counts_live(store: Store) -> None:
    collection_id = _create(store, ["https://a.example/", "https://b.example/", "https://c.example/"])
    public, jobs = store.write(cq.start_collection_run, collection_id, "run-1", PROJECT_VERSION, OPTIONS, BASE)
    assert public.status == "in_progress" and public.total_requests == 3 and public.job_ids == [j.id for j in jobs]
    assert public.callback_url is None and public.callback_status is None
    runs, total = store.read(queries.list_runs, PROJECT, [], 10, 0)
    assert total == 3 and {r.run_type for r in runs} == {RUN_TYPE} and {r.status for r in runs} == {"pending"}
    assert runs[0].parameters["collectionRunId"] == "run-1"

    assert _finish(store, jobs[0], _outcome(True)) is False
    assert _finish(store, jobs[1], _outcome(False, status=404)) is False
    live = store.read(cq.run_public, "run-1")
    assert live is not None and live.status == "in_progress"
    assert (live.success_requests, live.failed_requests, live.timeout_requests) == (1, 1, 0)
    assert [f.job_id for f in live.failed_jobs] == [jobs[1].id]

    assert _finish(store, jobs[2], _outcome(False, status=504, timed_out=True)) is True
    done = store.read(cq.run_public, "run-1")
    assert done is not None and done.status == "completed"
    assert (done.success_requests, done.failed_requests, done.timeout_requests) == (1, 1, 1)
    statuses = {r.id: r.status for r in store.read(queries.list_runs, PROJECT, [], 10, 0)[0]}
    assert statuses == {jobs[0].run_of: "completed", jobs[1].run_of: "failed", jobs[2].run_of: "failed"}
    assert store.types().count("collection.run.completed") == 1
    # A late second report of a job changes nothing.
    late = _outcome(True)
    run = store.read(queries.get_run, jobs[2].run_of)
    assert store.write(cq.job_finished, jobs[2].id, run, 1, late, verdict(late), b"{}", BASE) is False
    assert store.read(cq.run_public, "run-1") == done


def test_the_last_job_queues_the_callback_once_with_the_run_completed_body(store: Store) -> None:
    collection_id = _create(store, ["https://a.example/"], "https://hooks.example/done")
    public, jobs = store.write(cq.start_collection_run, collection_id, "run-1", PROJECT_VERSION, OPTIONS, BASE)
    assert public.callback_status == "pending"
    _finish(store, jobs[0], _outcome(True))
    deliveries, total = store.read(delivery_queries.list_deliveries, None, "run-1", 10, 0)
    assert total == 1 and deliveries[0].kind == CALLBACK_KIND and deliveries[0].status == "pending"
    body = deliveries[0].sink["body"]
    assert deliveries[0].sink["url"] == "https://hooks.example/done"
    assert body["event"] == "run.completed" and body["run_id"] == "run-1" and body["job_ids"] == [jobs[0].id]
    assert body["success_requests"] == 1 and body["status"] == "completed"
    assert body["results_url"] == f"{BASE}/v1/async/collections/{collection_id}/runs/run-1"
    store.write(delivery_queries.record_attempt, deliveries[0], "delivered", 200, None, iso(START), None)
    sent = store.read(cq.run_public, "run-1")
    assert sent is not None and sent.callback_status == "sent"


def test_a_collection_without_requests_completes_its_run_at_once(store: Store) -> None:
    collection_id = _create(store, [], "https://hooks.example/done")
    public, jobs = store.write(cq.start_collection_run, collection_id, "run-1", PROJECT_VERSION, OPTIONS, BASE)
    assert jobs == [] and public.status == "completed" and public.total_requests == 0
    assert store.read(delivery_queries.list_deliveries, None, "run-1", 10, 0)[1] == 1


def test_runs_are_listed_newest_first_and_filtered_by_status(store: Store) -> None:
    collection_id = _create(store, ["https://a.example/"])
    store.write(cq.start_collection_run, collection_id, "run-1", PROJECT_VERSION, OPTIONS, BASE)
    store.now += timedelta(seconds=1)
    _, jobs = store.write(cq.start_collection_run, collection_id, "run-2", PROJECT_VERSION, OPTIONS, BASE)
    _finish(store, jobs[0], _outcome(True))
    listed = store.read(cq.list_runs, collection_id, None)
    assert [r.run_id for r in listed.items] == ["run-2", "run-1"] and listed.total == 2
    assert [r.run_id for r in store.read(cq.list_runs, collection_id, "completed").items] == ["run-2"]
    with pytest.raises(RecordMissing):
        store.write(cq.start_collection_run, "nope", "run-3", PROJECT_VERSION, OPTIONS, BASE)


def _paged(store: Store, run_id: str, **query: Any) -> list[str]:
    """Every job id, page by page, following cursor_next."""
    seen: list[str] = []
    parsed = cursors.JobsQuery(**query)
    for _ in range(100):
        page = store.read(cq.list_jobs, run_id, parsed, KEY, iso(START - timedelta(days=1)))
        seen += [item.job_public_id for item in page.items]
        if not page.has_more:
            assert page.cursor_next is None
            return seen
        assert page.cursor_next is not None
        parsed = msgspec.structs.replace(parsed, after=cursors.decode_cursor(page.cursor_next, KEY))
    raise AssertionError("paging did not end")


def _run_with_jobs(store: Store, count: int, finished: list[int]) -> tuple[str, list[cq.PendingJob]]:
    collection_id = _create(store, [f"https://a.example/{i}" for i in range(count)])
    _, jobs = store.write(cq.start_collection_run, collection_id, "run-1", PROJECT_VERSION, OPTIONS, BASE)
    for index in finished:
        store.now += timedelta(milliseconds=1)
        _finish(store, jobs[index], _outcome(index % 2 == 0))
    return "run-1", jobs


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.data(),
    count=st.integers(0, 12),
    limit=st.integers(1, 5),
    order_by=st.sampled_from(["id", "completed_at"]),
    order_dir=st.sampled_from(["asc", "desc"]),
)
def test_paging_returns_every_job_once_in_order(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, count: int, limit: int, order_by: str, order_dir: str
) -> None:
    store = Store(tmp_path_factory.mktemp("paging") / "intunedd.db")
    try:
        finished = data.draw(st.permutations(range(count)).flatmap(lambda p: st.just(p[: len(p) // 2 + 1])))
        run_id, jobs = _run_with_jobs(store, count, list(finished))
        seen = _paged(store, run_id, limit=limit, order_by=order_by, order_dir=order_dir)
        assert sorted(seen) == sorted(j.id for j in jobs)
        if order_by == "id":
            assert seen == sorted(seen, reverse=order_dir == "desc")
        else:
            done_at = {j.id: i for i, j in enumerate(jobs[k] for k in finished)}  # finish order = completed_at order
            keys = [(done_at.get(job_id, -1), job_id) for job_id in seen]
            assert keys == sorted(keys, reverse=order_dir == "desc")
    finally:
        store.db.conn.close()


def test_jobs_are_filtered_by_status_and_completion_and_carry_results_when_asked(store: Store) -> None:
    run_id, jobs = _run_with_jobs(store, 4, [0, 1])  # 0 succeeds, 1 fails, 2 and 3 are still processing
    page = store.read(cq.list_jobs, run_id, cursors.JobsQuery(statuses=frozenset({"processing"})), KEY, iso(START))
    assert {item.job_public_id for item in page.items} == {jobs[2].id, jobs[3].id}
    first_done = START + timedelta(milliseconds=1)
    since = store.read(cq.list_jobs, run_id, cursors.JobsQuery(since_completed_at=first_done), KEY, iso(START))
    assert [item.job_public_id for item in since.items] == [jobs[1].id]

    with_results = store.read(cq.list_jobs, run_id, cursors.JobsQuery(include_results=True), KEY, iso(START))
    by_id = {item.job_public_id: item for item in with_results.items}
    done = by_id[jobs[0].id]
    assert done.result is not None and msgspec.json.decode(done.result)["html"] == "<p>x</p>"
    assert done.status == "completed" and done.is_success is True and done.execution_time_ms == 250
    assert done.completed_at == first_done
    assert by_id[jobs[1].id].result is None  # failed: not embedded
    assert by_id[jobs[2].id].result is None and by_id[jobs[2].id].status == "processing"
    # Results older than the retention cut-off are not embedded.
    late = store.read(cq.list_jobs, run_id, cursors.JobsQuery(include_results=True), KEY, iso(START + timedelta(1)))
    assert all(item.result is None for item in late.items)


def test_expired_results_are_dropped(store: Store) -> None:
    run_id, jobs = _run_with_jobs(store, 2, [0])
    assert store.read(cq.stored_result, run_id, jobs[0].id).result is not None  # type: ignore[union-attr]
    assert store.write(cq.expire_results, iso(START + timedelta(hours=1))) == 1
    kept = store.read(cq.stored_result, run_id, jobs[0].id)
    assert kept is not None and kept.result is None and kept.status == "completed"
    assert store.read(cq.stored_result, run_id, "no-such-job") is None


def test_unfinished_jobs_are_found_at_start_and_damaged_ones_reported(store: Store) -> None:
    run_id, jobs = _run_with_jobs(store, 3, [0])
    run = store.read(queries.get_run, jobs[1].run_of)
    assert isinstance(run, RunRecord)
    store.write(cq.job_started, jobs[1].id, run, 1, "/log", None)
    store.db.conn.execute("UPDATE collection_jobs SET request='{\"url\": 5}' WHERE id=?", (jobs[2].id,))
    assert store.write(cq.interrupt_unfinished_attempts) == 1
    attempts = store.read(queries.list_attempts, jobs[1].run_of)
    assert [a.status for a in attempts] == ["interrupted"]
    good, bad = store.read(cq.unfinished_jobs_checked)
    assert [j.id for j in good] == [jobs[1].id] and [job_id for job_id, _ in bad] == [jobs[2].id]


def test_a_sync_scrape_run_belongs_to_no_collection(store: Store) -> None:
    run = store.write(cq.insert_sync_run, "sync-1", PROJECT_VERSION, _requests("https://a.example/")[0], OPTIONS)
    assert [r.id for r in store.read(cq.unfinished_sync_runs)] == ["sync-1"]
    store.write(cq.job_started, None, run, 1, "/log", None)
    outcome = _outcome(True)
    store.write(cq.job_finished, None, run, 1, outcome, verdict(outcome), b"{}", BASE)
    finished = store.read(queries.get_run, "sync-1")
    assert finished is not None and finished.status == "completed" and finished.run_type == RUN_TYPE
    assert store.read(cq.unfinished_sync_runs) == []


def test_a_run_public_matches_the_wire_shape(store: Store) -> None:
    collection_id = _create(store, ["https://a.example/"])
    public, _ = store.write(cq.start_collection_run, collection_id, "run-1", PROJECT_VERSION, OPTIONS, BASE)
    assert msgspec.convert(msgspec.to_builtins(public), wire.RunPublic) == public


def test_retention_removes_old_job_runs_without_a_project_version_and_the_jobs_stay(store: Store) -> None:
    run_id, jobs = _run_with_jobs(store, 2, [0, 1])
    roots = retention_queries.Roots(artifacts="/nowhere/artifacts", projects="/nowhere/projects")
    limits = Limits(artifacts_max_age=None, runs_max_age=timedelta(days=1), keep_versions=5, max_per_pass=100)
    store.now += timedelta(days=2)
    removed = store.write(retention_queries.remove_expired, store.now, limits, roots)
    assert sorted(removed.plan.runs) == sorted(j.run_of for j in jobs) and removed.plan.versions == []
    assert store.read(queries.list_runs, PROJECT, [], 10, 0)[1] == 0
    public = store.read(cq.run_public, run_id)
    assert public is not None and public.status == "completed" and public.success_requests == 1
    page = store.read(cq.list_jobs, run_id, cursors.JobsQuery(), KEY, iso(START))
    assert len(page.items) == 2
