"""The collections actor: stores collections, runs them, answers for their runs, jobs and results.

Every request a collection run executes is a job of that run and also a run of ours (run type
COLLECTION, project ``job.PROJECT``), so it is listed with its attempts and logs like any run.
``browser: true`` jobs run on a worker leased from the shared pool (``Start(function=
"collection-scrape")``); ``browser: false`` jobs are fetched here with httpx, and are still recorded
as an attempt. At most ``collections.max_concurrent`` jobs (sync scrapes included) run at once, in the
order they were queued, so collections take no more of the pool than that.

A job's end, and the run's completion with its callback's outbox row when it was the last job, are
each one store transaction (``collection_queries``). A daemon killed mid-run leaves jobs
``processing``: at start their interrupted attempts are recorded as such and they run again, so the
run completes, its counts right and its callback sent once. The callback itself is the sink
dispatcher's to deliver, with its retries.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import httpx
import msgspec
import trio

from ..clock import Clock, iso, parse_iso
from ..collections import cursors, wire
from ..collections.dedup import Screened
from ..collections.http_scrape import scrape_http
from ..collections.job import (
    API,
    PROJECT,
    RESULT_TOO_BIG,
    VERSION,
    WORKER_FUNCTION,
    bounded,
    failed_outcome,
    job_parameters,
    read_outcome,
    verdict,
)
from ..collections.outcome import TIMED_OUT, UNREACHABLE, ScrapeOutcome
from ..collections.request import Guidance, MethodPost, ScrapeRequest, ScrapeResponse
from ..config import Settings
from ..ids import new_uuid
from ..messages import ProjectVersion, RunOptions, RunRecord
from ..policy.attempts import error_object
from ..policy.rate_limits import parse_config
from ..sinks import destinations, webhook
from ..sinks.config import WebhookSink
from ..store import collection_queries, queries, run_transactions
from ..store.collection_queries import UNCHANGED, CollectionRecord, PendingJob, Unchanged
from ..store.errors import RecordMissing
from ..workers import protocol
from ..workers.limits import log_line
from .attempts import Attempts
from .browser_pool import PoolHandle
from .rate_limiter import RateLimiterHandle, sleep_until
from .store import StoreHandle

PACE_KEY = "collections"  # the rate limiter's key for all collection jobs
log = logging.getLogger(__name__)
# The worker's own bound on a scrape is the request's timeout; the attempt's, this much later, only
# catches a worker that stops answering.
ATTEMPT_GRACE_S = 15.0
EXPIRY_INTERVAL_S = 3600.0
IDEMPOTENCY_WINDOW = timedelta(hours=24)
SYNC_CANCELED = {"type": "cancelled-user-action", "message": "The sync scrape's caller went away"}
SYNC_INTERRUPTED = error_object("script-process-crashed", "The daemon stopped during this sync scrape", retryable=False)
UNREADABLE = "The stored request cannot be read"
RECORD_CANCEL_S = 5.0
BLOCKED_AT_FETCH = 403  # our choice: the daemon, not the target, refused the address


class CollectionNotFound(Exception):
    """No collection has this id (404 ``Collection not found``)."""


class RunNotFound(Exception):
    """The collection has no run with this id (404 ``Run not found``)."""


class ResultMissing(Exception):
    """A job's result cannot be given; ``detail`` is the typed 404's body."""

    def __init__(self, detail: wire.ResultMissingDetail) -> None:
        super().__init__(detail.message)
        self.detail = detail


class CallbackInvalid(ValueError):
    """The callback URL is not one a sink could deliver to (its scheme, or an address not allowed)."""


class _NoKeyValue:
    """A scrape runs no project code, so nothing asks for a persistent store."""

    async def get(self, key: str) -> Any:
        raise RuntimeError("collection scrapes have no persistent store")

    async def set(self, key: str, value: Any) -> None:
        raise RuntimeError("collection scrapes have no persistent store")


def check_callback_url(url: str) -> None:
    """The checks a webhook sink's URL passes when it is accepted (the rest happen at delivery)."""
    try:
        WebhookSink(url=url)
    except (ValueError, msgspec.ValidationError) as e:
        raise CallbackInvalid(f"callback_url: {e}") from None


def _project(settings: Settings) -> ProjectVersion:
    return ProjectVersion(
        name=PROJECT,
        version=VERSION,
        path=str(settings.state_path / "collections"),
        apis=[API],
        api_access=True,
        max_concurrent=1,
        deployed_at=iso(datetime.fromtimestamp(0, UTC)),
    )


class _Collections:
    def __init__(
        self,
        store: StoreHandle,
        pool: PoolHandle,
        settings: Settings,
        clock: Clock,
        base_url: str,
        cursor_key: bytes,
        pace: RateLimiterHandle | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.config = settings.collections
        self.clock = clock
        self.base_url = base_url
        self.cursor_key = cursor_key
        self.attempts = Attempts(pool, settings, clock, None)
        self.project = _project(settings)
        self.limiter = trio.CapacityLimiter(self.config.max_concurrent or settings.pool.capacity)
        self.options = RunOptions(
            max_attempts=1, request_timeout_s=math.ceil(self.config.request_timeout_s), save_trace=False
        )
        self.nursery: trio.Nursery | None = None
        self.pace = pace
        self.pace_lock = trio.Lock()

    # -- collections ------------------------------------------------------------------------

    async def replay(self, idempotency_key: str, owner_key_id: str) -> wire.NewCollectionResponse | None:
        not_before = (self.clock.now() - IDEMPOTENCY_WINDOW).timestamp()
        return await self.store.read(collection_queries.idempotent_response, idempotency_key, owner_key_id, not_before)

    async def create(
        self,
        name: str,
        screened: Screened,
        callback_url: str | None = None,
        *,
        owner_key_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[wire.NewCollectionResponse, bool]:
        if callback_url:
            check_callback_url(callback_url)
        idempotency = None
        if idempotency_key is not None:
            not_before = (self.clock.now() - IDEMPOTENCY_WINDOW).timestamp()
            idempotency = (idempotency_key, owner_key_id or "", not_before)
        response = screened.answer(new_uuid(), name)
        requests = [request for _, request in screened.accepted]
        return await self.store.write(
            collection_queries.create_collection, response, requests, callback_url or None,
            owner_key_id=owner_key_id, idempotency=idempotency,
        )  # fmt: skip

    async def update(
        self,
        collection_id: str,
        *,
        name: str | None = None,
        screened: Screened | None = None,
        callback_url: str | None | Unchanged = UNCHANGED,
    ) -> wire.NewCollectionResponse:
        if isinstance(callback_url, str) and callback_url:
            check_callback_url(callback_url)
        try:
            record = await self.store.write(
                collection_queries.update_collection,
                collection_id,
                name=UNCHANGED if name is None else name,
                callback_url=callback_url or None if not isinstance(callback_url, Unchanged) else callback_url,
                requests=UNCHANGED if screened is None else [request for _, request in screened.accepted],
            )
        except RecordMissing:
            raise CollectionNotFound(collection_id) from None
        return (screened or Screened()).answer(record.id, record.name, wire.UPDATED)

    async def delete(self, collection_id: str) -> None:
        if not await self.store.write(collection_queries.delete_collection, collection_id):
            raise CollectionNotFound(collection_id)

    async def get(self, collection_id: str) -> CollectionRecord:
        found = await self.store.read(collection_queries.get_collection, collection_id)
        if found is None:
            raise CollectionNotFound(collection_id)
        return found

    async def list_collections(self) -> list[CollectionRecord]:
        return await self.store.read(collection_queries.list_collections)

    async def requests(self, collection_id: str) -> list[ScrapeRequest]:
        await self.get(collection_id)
        return await self.store.read(collection_queries.collection_requests, collection_id)

    # -- runs -------------------------------------------------------------------------------

    async def start_run(self, collection_id: str) -> wire.RunPublic:
        try:
            public, jobs = await self.store.write(
                collection_queries.start_collection_run, collection_id, new_uuid(), self.project, self.options,
                self.base_url,
            )  # fmt: skip
        except RecordMissing:
            raise CollectionNotFound(collection_id) from None
        assert self.nursery is not None
        for job in jobs:
            self.nursery.start_soon(self._execute, job)
        return public

    async def get_run(self, collection_id: str, run_id: str) -> wire.RunPublic:
        found = await self.store.read(collection_queries.run_public, run_id)
        if found is None or found.collection_id != collection_id:
            raise RunNotFound(run_id)
        return found

    async def list_runs(self, collection_id: str, status: wire.RunStatus | None = None) -> wire.RunList:
        await self.get(collection_id)
        return await self.store.read(collection_queries.list_runs, collection_id, status)

    async def list_jobs(self, collection_id: str, run_id: str, query: cursors.JobsQuery) -> wire.JobPage:
        await self.get_run(collection_id, run_id)
        return await self.store.read(
            collection_queries.list_jobs, run_id, query, self.cursor_key, iso(self._results_kept_since())
        )

    def _results_kept_since(self) -> datetime:
        return self.clock.now() - timedelta(seconds=self.config.result_retention_s)

    async def job_result(self, collection_id: str, run_id: str, job_id: str) -> bytes:
        """The job's ``ScrapeResponse``, encoded as kept."""
        await self.get_run(collection_id, run_id)
        found = await self.store.read(collection_queries.stored_result, run_id, job_id)
        if found is None:
            raise ResultMissing(
                wire.ResultMissingDetail(error_code="job_id_invalid", message="Job not found in this run")
            )
        if found.status == "processing" or found.completed_at is None:
            raise ResultMissing(
                wire.ResultMissingDetail(error_code="result_pending", message="The job is still running")
            )
        completed = parse_iso(found.completed_at)
        age_hours = round((self.clock.now() - completed).total_seconds() / 3600, 2)
        if completed <= self._results_kept_since():
            retention_h = self.config.result_retention_s / 3600
            raise ResultMissing(
                wire.ResultMissingDetail(
                    error_code="result_expired", message=f"Results are kept for {retention_h:g} hours",
                    completed_at=found.completed_at, age_hours=age_hours,
                )
            )  # fmt: skip
        if found.result is None:
            raise ResultMissing(
                wire.ResultMissingDetail(
                    error_code="result_lost", message="The job's result was not kept",
                    completed_at=found.completed_at, age_hours=age_hours,
                )
            )  # fmt: skip
        return found.result

    # -- execution --------------------------------------------------------------------------

    async def sync_scrape(self, request: ScrapeRequest) -> ScrapeResponse:
        """Scrape ``request`` (screened by the caller) now, as a run of its own that belongs to no collection.
        A caller that goes away cancels it (the run ends canceled)."""
        run = await self.store.write(
            collection_queries.insert_sync_run, new_uuid(), self.project, request, self.options
        )
        started: list[int] = []
        try:
            async with self.limiter:
                outcome = await self._attempt(run, request, None, started)
        except trio.Cancelled:
            # Bounded: when the daemon stops, the store stops too; the run is then ended at the next start.
            with trio.CancelScope(shield=True, deadline=trio.current_time() + RECORD_CANCEL_S):
                await self.store.write(run_transactions.cancel_run, run, started[0] if started else None, SYNC_CANCELED)
            raise
        return await self._finish(None, run, started[0] if started else None, outcome, request)

    async def _pace(self) -> None:
        """Wait until ``collections.rate_limits`` let one more job start (one waiter at a time, so two
        jobs never take the same free slot), and record its start with the rate limiter."""
        if self.pace is None or not self.config.rate_limits:
            return
        async with self.pace_lock:
            while (wait := await self.pace.next_start(PACE_KEY)).reason is not None:
                await sleep_until(self.clock, wait.at)
            await self.pace.admitted(PACE_KEY)

    async def _execute(self, job: PendingJob) -> None:
        """Run one job to its end; whatever happens inside, it ends recorded, unless the store refuses
        (then it stays ``processing`` and runs again at the next start)."""
        async with self.limiter:
            await self._pace()
            try:
                run = await self.store.read(queries.get_run, job.run_of)
            except Exception:  # noqa: BLE001 - one job's failure must not end the actor
                log.exception("could not read collection job %s's run; it runs again at the next start", job.id)
                return
            if run is None:
                log.error("collection job %s has no run %s; it cannot run", job.id, job.run_of)
                return
            started: list[int] = []
            outcome = await self._attempt(run, job.request, job.id, started)
        await self._finish(job.id, run, started[0] if started else None, outcome, job.request)

    async def _attempt(
        self, run: RunRecord, request: ScrapeRequest, job_id: str | None, started: list[int]
    ) -> ScrapeOutcome:
        """``_scrape``, with a failure of the daemon's own (not the target's) as a failed outcome."""
        try:
            return await self._scrape(run, request, job_id, started)
        except Exception as e:  # noqa: BLE001 - one job's failure must not end the actor
            log.exception("scraping for run %s failed inside the daemon", run.id)
            message = f"The daemon failed running this request: {type(e).__name__}"
            return failed_outcome(request, message, status=UNREACHABLE)

    async def _finish(
        self,
        job_id: str | None,
        run: RunRecord,
        number: int | None,
        outcome: ScrapeOutcome,
        request: ScrapeRequest | None,
    ) -> ScrapeResponse:
        """Record the end (a job's, or a sync scrape's when ``job_id`` is None); the response as kept."""
        if request is not None:
            outcome, encoded = bounded(outcome, request, self.config.max_result_bytes)
        else:
            encoded = msgspec.json.encode(outcome.response)
        try:
            await self.store.write(
                collection_queries.job_finished, job_id, run, number, outcome, verdict(outcome), encoded, self.base_url
            )
        except Exception:  # noqa: BLE001 - e.g. the disk is full: the job stays processing, and runs again at start
            if job_id is None:
                raise
            log.exception("could not record the end of collection job %s", job_id)
        return outcome.response

    def _proxy(self, request: ScrapeRequest) -> str | None:
        return (self.config.proxy or None) if request.use_proxy is not None else None

    async def _scrape(
        self, run: RunRecord, request: ScrapeRequest, job_id: str | None, started: list[int]
    ) -> ScrapeOutcome:
        """One attempt of ``run`` for ``request``; its number goes into ``started`` once it is recorded."""
        number = run.attempts_count + 1
        directory = self.settings.artifacts_path / run.id / str(number)
        timeout_s = self.config.request_timeout_s
        proxy = self._proxy(request)

        async def record_start(log_path: str, trace_path: str | None) -> None:
            await self.store.write(collection_queries.job_started, job_id, run, number, log_path, trace_path)
            started.append(number)

        if not request.browser:
            log_path = directory / "log.jsonl"
            await trio.to_thread.run_sync(partial(directory.mkdir, parents=True, exist_ok=True))
            await record_start(str(log_path), None)
            outcome = await self._fetch(request, timeout_s, proxy)
            await trio.to_thread.run_sync(_write_log, log_path, request, outcome)
            return outcome
        context = protocol.RunContext(
            run_id=run.id, project_name=PROJECT, api_name=API, attempt_number=number, proxy=proxy
        )
        start = await self.attempts.start(
            self.project, directory, save_trace=False, proxy=proxy, context=context, api=API,
            parameters=job_parameters(request, timeout_s), function=WORKER_FUNCTION,
        )  # fmt: skip
        start = msgspec.structs.replace(start, max_result_bytes=self.config.max_result_bytes)
        attempt = await self.attempts.run(
            self.project, start, timeout_s=timeout_s + ATTEMPT_GRACE_S, kv=_NoKeyValue(),
            leased=lambda: record_start(start.log_path, start.trace_path),
        )  # fmt: skip
        if attempt.status == "completed":
            try:
                return read_outcome(attempt.result)
            except msgspec.ValidationError as e:
                return failed_outcome(request, f"The worker answered an unreadable outcome: {e}", status=UNREACHABLE)
        error = attempt.error or {}
        code = error.get("code")
        timed_out = code == "script-timeout"
        message = f"The browser worker failed: {error.get('message') or code or 'no reason given'}"
        status = TIMED_OUT if timed_out else RESULT_TOO_BIG if code == "result-too-big-error" else UNREACHABLE
        return failed_outcome(request, message, status=status, timed_out=timed_out)

    async def _fetch(self, request: ScrapeRequest, timeout_s: float, proxy: str | None) -> ScrapeOutcome:
        """``scrape_http``, connecting only to addresses the URL guard allows: what a name resolves to now,
        and where redirects lead, are checked again (a proxy, the operator's own, is not)."""
        try:
            with destinations.allowing(self.config.networks):
                transport = webhook.guarded_transport(httpx.Limits())
                return await scrape_http(request, timeout_s=timeout_s, proxy=proxy, transport=transport)
        except destinations.DestinationRefused as e:
            why = str(e).split(" (allow it", 1)[0]  # the sinks' own hint names the sinks' setting
            message = f"{wire.URL_BLOCKED}: {why} (allow it with collections.allowed_networks)"
            return failed_outcome(request, message, status=BLOCKED_AT_FETCH)

    # -- start and upkeep -------------------------------------------------------------------

    async def recover(self) -> None:
        """Run again the jobs an earlier process did not finish; end the sync scrapes it left."""
        interrupted = await self.store.write(collection_queries.interrupt_unfinished_attempts)
        jobs, bad = await self.store.read(collection_queries.unfinished_jobs_checked)
        for job_id, reason in bad:
            log.error("quarantined collection_job %s: %s", job_id, reason)
            await self.store.write(queries.quarantine, "collection_job", job_id, reason)
            await self._fail_unreadable(job_id)
        for run in await self.store.read(collection_queries.unfinished_sync_runs):
            await self.store.write(run_transactions.fail_run, run, None, SYNC_INTERRUPTED)
        if jobs:
            log.info("running %d unfinished collection jobs again (%d interrupted attempts)", len(jobs), interrupted)
        assert self.nursery is not None
        for job in jobs:
            self.nursery.start_soon(self._execute, job)

    async def _fail_unreadable(self, job_id: str) -> None:
        """A job whose request no longer decodes fails, so its run can still complete."""
        run_of = await self.store.read(collection_queries.job_run_of, job_id)
        run = await self.store.read(queries.get_run, run_of) if run_of else None
        if run is None:
            return
        response = ScrapeResponse(message=UNREADABLE, guidance=Guidance(success=False, error_type="internal"))
        await self._finish(job_id, run, None, ScrapeOutcome(response=response), None)

    async def expire_results(self) -> NoReturn:
        while True:
            await self.store.write(collection_queries.expire_results, iso(self._results_kept_since()))
            await trio.sleep(min(EXPIRY_INTERVAL_S, self.config.result_retention_s))


def _write_log(path: Path, request: ScrapeRequest, outcome: ScrapeOutcome) -> None:
    """The log of a ``browser: false`` attempt: what was fetched and how it ended, as a worker's ends."""
    response = outcome.response
    method = "POST" if isinstance(request.http_method, MethodPost) else "GET"
    lines = [
        log_line("system", f"{method} {request.url} (browser: false)"),
        log_line("system", f"status {response.status_code}: {response.message}"),
    ]
    with path.open("a", encoding="utf-8") as f:
        f.writelines(lines)


class CollectionsHandle:
    """What the /v1 routes call. See each method of ``_Collections`` for what it raises."""

    def __init__(self, service: _Collections) -> None:
        self.cursor_key = service.cursor_key
        self.replay = service.replay
        self.create = service.create
        self.update = service.update
        self.delete = service.delete
        self.get = service.get
        self.list_collections = service.list_collections
        self.requests = service.requests
        self.start_run = service.start_run
        self.get_run = service.get_run
        self.list_runs = service.list_runs
        self.list_jobs = service.list_jobs
        self.job_result = service.job_result
        self.sync_scrape = service.sync_scrape


async def run_collections(
    store: StoreHandle,
    pool: PoolHandle,
    settings: Settings,
    *,
    clock: Clock,
    base_url: str,
    cursor_key: bytes,
    pace: RateLimiterHandle | None = None,
    task_status: trio.TaskStatus[CollectionsHandle] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """``base_url``: where clients reach the daemon (the callback's ``results_url``); ``cursor_key``: signs
    the jobs' paging cursors (``cursors.parse_jobs_query`` must be given the same); ``pace``: the rate
    limiter, which holds collection jobs to ``collections.rate_limits``."""
    service = _Collections(store, pool, settings, clock, base_url, cursor_key, pace)
    async with trio.open_nursery() as nursery:
        service.nursery = nursery
        if pace is not None and settings.collections.rate_limits:
            await pace.configure(PACE_KEY, parse_config(settings.collections.rate_limits, None, None))
        await service.recover()
        nursery.start_soon(service.expire_results)
        task_status.started(CollectionsHandle(service))
        await trio.sleep_forever()
    raise AssertionError("unreachable")
