"""The collections actor with a real store, pool (Chromium workers) and sink dispatcher, against pages
served on 127.0.0.1.

``browser: true`` jobs run on a real worker with Chromium (``pytest.mark.chromium``); ``browser: false``
jobs are fetched by the daemon. A restart is the actor's nursery cancelled mid-run (nothing recorded on
the way out, as after kill -9) and a new actor on the same SQLite file.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from intunedd.actors.browser_pool import run_browser_pool
from intunedd.actors.bus import run_bus
from intunedd.actors.collections import (
    CallbackInvalid,
    CollectionNotFound,
    CollectionsHandle,
    ResultMissing,
    RunNotFound,
    run_collections,
)
from intunedd.actors.sink_dispatcher import run_sink_dispatcher
from intunedd.actors.store import StoreHandle, run_store
from intunedd.collections import cursors, signing, wire
from intunedd.collections.dedup import decode_all
from intunedd.collections.job import PROJECT
from intunedd.collections.request import decode_request
from intunedd.config import CollectionSettings, PoolSettings, Settings, SinkSettings
from intunedd.sinks import destinations
from intunedd.store import queries
from intunedd.store.db import open_db
from intunedd.workers.browser import find_browser
from intunedd.workers.protocol import WorkerConfig

from ..collections.site import Site, serve_site
from ..conftest import serving

pytestmark = pytest.mark.chromium
WAIT_S = 90
SECRET = "s" * 32
LOCAL = ["127.0.0.1/32"]


class MovableClock:
    """Wall time that a test can move forward (to see results expire)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Parts:
    store: StoreHandle
    collections: CollectionsHandle
    clock: MovableClock

    async def finished(self, collection_id: str, run_id: str) -> wire.RunPublic:
        with trio.fail_after(WAIT_S):
            while True:
                run = await self.collections.get_run(collection_id, run_id)
                if run.status == "completed":
                    return run
                await trio.sleep(0.05)

    async def jobs(self, collection_id: str, run_id: str) -> dict[str, wire.JobExecution]:
        page = await self.collections.list_jobs(collection_id, run_id, cursors.JobsQuery(limit=1000))
        return {job.url or "": job for job in page.items}

    async def create(self, site: Site, requests: list[dict[str, Any]], callback_url: str | None = None) -> str:
        raw = [{**r, "url": site.url + r["url"]} for r in requests]
        screened = decode_all(raw)
        assert not screened.invalid_items
        answer, _ = await self.collections.create("test", screened, callback_url)
        return answer.id


@asynccontextmanager
async def _actor(
    tmp_path: Path,
    *,
    timeout_s: float = 20.0,
    clock: MovableClock | None = None,
    networks: list[str] = LOCAL,
    max_result_bytes: int = 10 * 1024 * 1024,
) -> AsyncIterator[Parts]:
    clock = clock or MovableClock()
    settings = Settings(
        state_dir=str(tmp_path),
        pool=PoolSettings(size=1, abort_grace_s=1),
        sinks=SinkSettings(allow_networks=LOCAL, first_retry_s=0.2, max_retry_s=0.5),
        collections=CollectionSettings(
            allowed_networks=networks,
            request_timeout_s=timeout_s,
            callback_secret=SECRET,
            max_concurrent=2,
            max_result_bytes=max_result_bytes,
        ),
    )
    # The pool keeps a warm worker even for browser: false jobs, so it needs Chromium all the same.
    config = WorkerConfig(fd=-1, browser_executable=find_browser("auto", True))
    with destinations.allowing(destinations.parse_networks(LOCAL)):
        async with trio.open_nursery() as nursery:
            bus = await nursery.start(partial(run_bus, buffer=1000))
            store = await nursery.start(
                partial(run_store, open_db(tmp_path / "intunedd.db"), bus.publisher(), clock=clock)
            )
            pool = await nursery.start(
                partial(
                    run_browser_pool, config, {}, size=1, recycle_after_attempts=100, recycle_rss_mb=4096,
                    start_timeout_s=30,
                )
            )  # fmt: skip
            await nursery.start(
                partial(run_sink_dispatcher, store, bus, settings.sinks, "ws", clock=clock, callback_secret=SECRET)
            )
            handle = await nursery.start(
                partial(run_collections, store, pool, settings, clock=clock, base_url="http://d.test", cursor_key=b"k")
            )
            yield Parts(store, handle, clock)
            nursery.cancel_scope.cancel()


@pytest.fixture
def site() -> Iterator[Site]:
    with serve_site() as served:
        yield served


@dataclass
class Received:
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    """A callback receiver on 127.0.0.1 that answers 500 to the first call, then 204."""
    received = Received()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(500 if len(received.calls) == 1 else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            if len(received.calls) > 1:
                received.arrived.set()

    with serving(Handler) as url:
        yield url + "/hook", received


async def _attempts(parts: Parts, run_id: str) -> list[str]:
    return [a.status for a in await parts.store.read(queries.list_attempts, run_id)]


async def test_http_jobs_run_and_complete_the_run_with_results_and_runs_of_ours(tmp_path: Path, site: Site) -> None:
    async with _actor(tmp_path) as parts:
        collection_id = await parts.create(
            site,
            [
                {"url": "/page", "format": "markdown", "extract": {"title": "css:h1"}},
                {"url": "/forbidden"},
                {"url": "/page", "custom_id": "second"},
            ],
        )
        started = await parts.collections.start_run(collection_id)
        assert started.status == "in_progress" and started.total_requests == 3
        run = await parts.finished(collection_id, started.run_id)
        assert (run.success_requests, run.failed_requests, run.timeout_requests) == (2, 1, 0)
        assert [f.url for f in run.failed_jobs] == [site.url + "/forbidden"]

        page = await parts.collections.list_jobs(collection_id, run.run_id, cursors.JobsQuery())
        by_custom = {job.custom_id: job for job in page.items}
        markdown_job = next(job for job in page.items if job.custom_id is None and job.status == "completed")
        result = msgspec.json.decode(
            await parts.collections.job_result(collection_id, run.run_id, markdown_job.job_public_id)
        )
        assert "Kettles" in result["markdown"] and result["extracted_data"] == {"title": "Kettles & more"}
        assert by_custom["second"].status_code == 200 and by_custom["second"].is_success
        forbidden = next(job for job in page.items if job.status == "failed")
        assert forbidden.status_code == 403

        # Each job is a run of ours, with one completed attempt and its log.
        runs, total = await parts.store.read(queries.list_runs, PROJECT, [], 10, 0)
        assert total == 3 and {r.status for r in runs} == {"completed", "failed"}
        for our_run in runs:
            attempts = await parts.store.read(queries.list_attempts, our_run.id)
            assert [a.status for a in attempts] == ["completed" if our_run.status == "completed" else "failed"]
            assert attempts[0].log_path and Path(attempts[0].log_path).read_text().count("\n") == 2


async def test_job_results_answer_pending_invalid_and_expired(tmp_path: Path, site: Site) -> None:
    clock = MovableClock()
    async with _actor(tmp_path, clock=clock) as parts:
        collection_id = await parts.create(site, [{"url": "/hang"}, {"url": "/page"}])
        run = await parts.collections.start_run(collection_id)
        hanging = next(j for j in (await parts.jobs(collection_id, run.run_id)).values() if j.url.endswith("/hang"))  # type: ignore[union-attr]
        with pytest.raises(ResultMissing) as pending:
            await parts.collections.job_result(collection_id, run.run_id, hanging.job_public_id)
        assert pending.value.detail.error_code == "result_pending"
        with pytest.raises(ResultMissing) as invalid:
            await parts.collections.job_result(collection_id, run.run_id, "no-such-job")
        assert invalid.value.detail.error_code == "job_id_invalid"
        site.release.set()
        await parts.finished(collection_id, run.run_id)
        assert await parts.collections.job_result(collection_id, run.run_id, hanging.job_public_id)
        clock.offset = timedelta(days=2)
        with pytest.raises(ResultMissing) as expired:
            await parts.collections.job_result(collection_id, run.run_id, hanging.job_public_id)
        assert expired.value.detail.error_code == "result_expired" and expired.value.detail.age_hours >= 47  # type: ignore[operator]
        with pytest.raises(RunNotFound):
            await parts.collections.get_run("another-collection", run.run_id)
        with pytest.raises(CollectionNotFound):
            await parts.collections.start_run("no-such-collection")


async def test_a_request_that_takes_too_long_is_counted_as_a_timeout(tmp_path: Path, site: Site) -> None:
    async with _actor(tmp_path, timeout_s=1) as parts:
        collection_id = await parts.create(site, [{"url": "/hang"}, {"url": "/page"}])
        run = await parts.finished(collection_id, (await parts.collections.start_run(collection_id)).run_id)
        assert (run.success_requests, run.failed_requests, run.timeout_requests) == (1, 0, 1)
        job = (await parts.jobs(collection_id, run.run_id))[site.url + "/hang"]
        assert job.status == "timeout" and job.status_code == 504


async def test_the_callback_is_delivered_signed_and_retried(
    tmp_path: Path, site: Site, receiver: tuple[str, Received]
) -> None:
    url, received = receiver
    async with _actor(tmp_path) as parts:
        collection_id = await parts.create(site, [{"url": "/page"}], callback_url=url)
        run_id = (await parts.collections.start_run(collection_id)).run_id
        await parts.finished(collection_id, run_id)
        with trio.fail_after(WAIT_S):
            await trio.to_thread.run_sync(received.arrived.wait, WAIT_S)
            while (await parts.collections.get_run(collection_id, run_id)).callback_status != "sent":
                await trio.sleep(0.05)
    assert len(received.calls) == 2  # the first answered 500, and was retried
    headers, body = received.calls[-1]
    assert signing.verify(
        SECRET, headers["x-sp-timestamp"], headers["x-sp-signature"], body, int(datetime.now(UTC).timestamp())
    )
    assert not signing.verify(
        "x" * 32, headers["x-sp-timestamp"], headers["x-sp-signature"], body, int(datetime.now(UTC).timestamp())
    )
    sent = json.loads(body)
    assert sent["event"] == "run.completed" and sent["run_id"] == run_id and sent["success_requests"] == 1
    # Both attempts carried the same delivery's idempotency key.
    assert received.calls[0][0]["idempotency-key"] == headers["idempotency-key"]


async def test_a_callback_url_a_sink_could_not_use_is_refused(tmp_path: Path) -> None:
    async with _actor(tmp_path) as parts:
        with pytest.raises(CallbackInvalid):
            await parts.collections.create("x", decode_all([]), "ftp://hooks.example/x")
        with pytest.raises(CallbackInvalid):
            await parts.collections.create("x", decode_all([]), "http://10.1.2.3/hook")


async def test_a_restart_mid_run_runs_unfinished_jobs_again_and_calls_back_once(
    tmp_path: Path, site: Site, receiver: tuple[str, Received]
) -> None:
    url, received = receiver
    async with _actor(tmp_path) as parts:
        collection_id = await parts.create(site, [{"url": "/page"}, {"url": "/hang"}], callback_url=url)
        run_id = (await parts.collections.start_run(collection_id)).run_id
        with trio.fail_after(WAIT_S):  # the quick job ends, the hanging one is mid-attempt
            while True:
                jobs = await parts.jobs(collection_id, run_id)
                if jobs[site.url + "/page"].status == "completed" and jobs[site.url + "/hang"].started_at:
                    break
                await trio.sleep(0.05)
        hang_run = await _hang_run(parts)
    assert await _attempts_of(tmp_path, hang_run) == ["running"]  # as a kill leaves it
    site.release.set()
    async with _actor(tmp_path) as parts:
        run = await parts.finished(collection_id, run_id)
        assert (run.total_requests, run.success_requests, run.failed_requests, run.timeout_requests) == (2, 2, 0, 0)
        assert await _attempts(parts, await _hang_run(parts)) == ["interrupted", "completed"]
        with trio.fail_after(WAIT_S):
            await trio.to_thread.run_sync(received.arrived.wait, WAIT_S)
            while (await parts.collections.get_run(collection_id, run_id)).callback_status != "sent":
                await trio.sleep(0.05)
    bodies = [json.loads(body) for _, body in received.calls]
    assert all(b["run_id"] == run_id for b in bodies) and len({b["timestamp"] for b in bodies}) == 1  # one callback


async def _hang_run(parts: Parts) -> str:
    runs, _ = await parts.store.read(queries.list_runs, PROJECT, [], 10, 0)
    return next(r.id for r in runs if r.parameters["url"].endswith("/hang"))


async def _attempts_of(tmp_path: Path, run_id: str) -> list[str]:
    db = open_db(tmp_path / "intunedd.db")
    try:
        return [a.status for a in queries.list_attempts(db, run_id)]
    finally:
        db.conn.close()


async def test_a_sync_scrape_is_a_run_of_its_own(tmp_path: Path, site: Site) -> None:
    async with _actor(tmp_path) as parts:
        response = await parts.collections.sync_scrape(decode_request({"url": site.url + "/page"}))
        assert response.status_code == 200 and response.html and "Kettles" in response.html
        runs, total = await parts.store.read(queries.list_runs, PROJECT, [], 10, 0)
        assert total == 1 and runs[0].status == "completed" and runs[0].parameters["collectionId"] is None
        assert await _attempts(parts, runs[0].id) == ["completed"]


async def test_browser_jobs_run_on_a_worker_in_a_fresh_context(tmp_path: Path, site: Site) -> None:
    async with _actor(tmp_path, timeout_s=3) as parts:
        collection_id = await parts.create(
            site,
            [
                {"url": "/page", "browser": True, "screenshot": True, "extract": {"title": "css:h1"},
                 "actions": [{"type": "wait-for-selector", "selector": "css:#fetched:not(:empty)", "time": 5000},
                             {"type": "evaluate", "script": "document.title"}]},
                {"url": "/page", "browser": True, "window_size": "mobile", "custom_id": "mobile",
                 "actions": [{"type": "evaluate", "script": "screen.width"}]},
                {"url": "/hang", "browser": True},
            ],
        )  # fmt: skip
        run = await parts.finished(collection_id, (await parts.collections.start_run(collection_id)).run_id)
        assert (run.success_requests, run.failed_requests, run.timeout_requests) == (2, 0, 1)
        page = await parts.collections.list_jobs(collection_id, run.run_id, cursors.JobsQuery(include_results=True))
        by_custom = {job.custom_id: job for job in page.items if job.status == "completed"}
        desktop = msgspec.json.decode(by_custom[None].result)  # type: ignore[arg-type]
        assert desktop["extracted_data"] == {"title": "Kettles & more"} and desktop["evaluate_results"] == ["Shop"]
        assert desktop["screenshot"] and "fetched-word" in desktop["html"]
        mobile = msgspec.json.decode(by_custom["mobile"].result)  # type: ignore[arg-type]
        assert mobile["evaluate_results"] == [390]
        runs, _ = await parts.store.read(queries.list_runs, PROJECT, [], 10, 0)
        for our_run in runs:
            attempts = await parts.store.read(queries.list_attempts, our_run.id)
            assert len(attempts) == 1 and attempts[0].log_path and Path(attempts[0].log_path).exists()


async def test_an_address_the_guard_no_longer_allows_is_refused_at_fetch_time(tmp_path: Path, site: Site) -> None:
    # Accepted when the collection was made (as a name that resolved elsewhere then would be): refused now.
    async with _actor(tmp_path, networks=[]) as parts:
        collection_id = await parts.create(site, [{"url": "/page"}])
        run = await parts.finished(collection_id, (await parts.collections.start_run(collection_id)).run_id)
        assert run.failed_requests == 1
        job = (await parts.jobs(collection_id, run.run_id))[site.url + "/page"]
        assert job.status_code == 403 and job.message is not None and job.message.startswith(wire.URL_BLOCKED)
        assert "collections.allowed_networks" in job.message
    assert site.hits("/page") == []


async def test_a_sync_scrape_whose_caller_goes_away_ends_canceled(tmp_path: Path, site: Site) -> None:
    async with _actor(tmp_path) as parts:
        with trio.move_on_after(1) as scope:  # the caller gives up while /hang has not answered
            await parts.collections.sync_scrape(decode_request({"url": site.url + "/hang"}))
        assert scope.cancelled_caught
        runs, _ = await parts.store.read(queries.list_runs, PROJECT, [], 10, 0)
        assert [r.status for r in runs] == ["canceled"]
        assert await _attempts(parts, runs[0].id) == ["canceled"]


async def test_a_job_whose_stored_request_no_longer_reads_is_quarantined_and_fails_at_start(
    tmp_path: Path, site: Site
) -> None:
    async with _actor(tmp_path) as parts:
        collection_id = await parts.create(site, [{"url": "/hang"}])
        run_id = (await parts.collections.start_run(collection_id)).run_id
        job_id = (await parts.collections.get_run(collection_id, run_id)).job_ids[0]
    db = open_db(tmp_path / "intunedd.db")
    with db.atomic():
        db.conn.execute("UPDATE collection_jobs SET request='{\"url\": 5}' WHERE id=?", (job_id,))
    db.conn.close()
    site.release.set()
    async with _actor(tmp_path) as parts:
        run = await parts.finished(collection_id, run_id)
        assert (run.total_requests, run.failed_requests) == (1, 1)
        assert run.failed_jobs[0].error == "The stored request cannot be read"
        quarantined = await parts.store.read(queries.list_quarantine)
        assert [(q["kind"], q["recordId"]) for q in quarantined] == [("collection_job", job_id)]


async def test_a_result_over_the_bound_is_not_kept_and_its_job_says_why(tmp_path: Path, site: Site) -> None:
    async with _actor(tmp_path, max_result_bytes=4096) as parts:
        collection_id = await parts.create(
            site, [{"url": "/page", "browser": True, "screenshot": True}, {"url": "/api/big"}, {"url": "/form"}]
        )
        run = await parts.finished(collection_id, (await parts.collections.start_run(collection_id)).run_id)
        jobs = await parts.jobs(collection_id, run.run_id)
        assert (run.success_requests, run.failed_requests) == (1, 2)
        for path in ("/page", "/api/big"):  # on a worker, and in the daemon
            assert jobs[site.url + path].status_code == 507, jobs[site.url + path].message
        big = await parts.collections.job_result(collection_id, run.run_id, jobs[site.url + "/api/big"].job_public_id)
        assert len(big) < 4096 and b"collections.max_result_bytes" in big
