"""SQL for collections, their runs, jobs and results, and the idempotency keys of creates.

A collection run's jobs are written with their runs of ours (run_type COLLECTION) in the
transaction that starts it. Each job's end (its attempt, its run, the job row, its result) is one
transaction too, and so is the run's completion with the callback's outbox row when the last job
ends: a kill at any point leaves either the job unfinished (it runs again) or everything done.
Counters are counted from the jobs, never kept, so they cannot drift. The answers are the API's
wire shapes (``collections.wire``), so the routes only encode them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
import sqlite_utils

from ..clock import iso, parse_iso
from ..collections import cursors, signing, wire
from ..collections.job import API, PROJECT, RUN_TYPE, Verdict
from ..collections.outcome import ScrapeOutcome
from ..collections.request import ScrapeRequest
from ..collections.signing import CALLBACK_KIND
from ..ids import new_uuid
from ..messages import ProjectVersion, RunOptions, RunRecord
from . import queries
from .errors import RecordMissing
from .queries import Tx, _dumps, decode_rows

_request_decoder = msgspec.json.Decoder(ScrapeRequest)
_response_decoder = msgspec.json.Decoder(wire.NewCollectionResponse)
_CALLBACK_STATUS = {"pending": "pending", "delivered": "sent", "failed": "failed"}


class CollectionRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    callback_url: str | None
    owner_key_id: str | None
    created_at: float
    updated_at: float

    def public(self) -> wire.CollectionPublic:
        return wire.CollectionPublic(id=self.id, name=self.name, created_at=self.created_at, updated_at=self.updated_at)


class PendingJob(msgspec.Struct, frozen=True, kw_only=True):
    """A job to execute: its id, its collection run, its run of ours and its request."""

    id: str
    collection_run_id: str
    run_of: str
    request: ScrapeRequest


class StoredResult(msgspec.Struct, frozen=True, kw_only=True):
    status: wire.JobStatus
    completed_at: str | None
    result: bytes | None


def _epoch(tx: Tx) -> float:
    return parse_iso(tx.now).timestamp()


def _missing_collection(collection_id: str) -> RecordMissing:
    return RecordMissing(wire.COLLECTION_NOT_FOUND, details={"field": "collection_id", "id": collection_id})


# -- collections ----------------------------------------------------------------------------

_COLLECTION_COLUMNS = "id, name, callback_url, owner_key_id, created_at, updated_at"


def _collection(row: tuple[Any, ...]) -> CollectionRecord:
    id_, name, callback_url, owner, created_at, updated_at = row
    return CollectionRecord(
        id=id_, name=name, callback_url=callback_url, owner_key_id=owner, created_at=created_at, updated_at=updated_at
    )


def _replace_requests(tx: Tx, collection_id: str, requests: Sequence[ScrapeRequest]) -> None:
    tx.execute("DELETE FROM collection_requests WHERE collection_id=?", (collection_id,))
    tx.db.conn.executemany(
        "INSERT INTO collection_requests (collection_id, position, request, custom_id) VALUES (?, ?, ?, ?)",
        [(collection_id, i, msgspec.json.encode(r).decode(), r.custom_id) for i, r in enumerate(requests)],
    )


def idempotent_response(
    db: sqlite_utils.Database, key: str, api_key_id: str, not_before: float
) -> wire.NewCollectionResponse | None:
    """The answer a create with this ``Idempotency-Key`` gave, if it was made after ``not_before``."""
    row = db.conn.execute(
        "SELECT response FROM collection_idempotency WHERE key=? AND api_key_id=? AND created_at >= ?",
        (key, api_key_id, not_before),
    ).fetchone()
    return None if row is None else _response_decoder.decode(row[0])


def create_collection(
    tx: Tx,
    response: wire.NewCollectionResponse,
    requests: Sequence[ScrapeRequest],
    callback_url: str | None,
    *,
    owner_key_id: str | None = None,
    idempotency: tuple[str, str, float] | None = None,
) -> tuple[wire.NewCollectionResponse, bool]:
    """Create the collection ``response`` names, unless ``idempotency`` (key, API key id, oldest time a
    replay counts from) names an earlier create: then its answer, and True for "replayed"."""
    if idempotency is not None:
        key, api_key_id, not_before = idempotency
        earlier = idempotent_response(tx.db, key, api_key_id, not_before)
        if earlier is not None:
            return earlier, True
        tx.execute(
            "INSERT OR REPLACE INTO collection_idempotency (key, api_key_id, collection_id, response, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (key, api_key_id, response.id, msgspec.json.encode(response).decode(), _epoch(tx)),
        )
    now = _epoch(tx)
    tx.execute(
        f"INSERT INTO collections ({_COLLECTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        (response.id, response.name, callback_url, owner_key_id, now, now),
    )
    _replace_requests(tx, response.id, requests)
    tx.emit("collection.created", collection_id=response.id, name=response.name, requests=len(requests))
    return response, False


class Unchanged:
    """``update_collection``'s "leave this field as it is"."""


UNCHANGED = Unchanged()


def update_collection(
    tx: Tx,
    collection_id: str,
    *,
    name: str | Unchanged = UNCHANGED,
    callback_url: str | None | Unchanged = UNCHANGED,
    requests: Sequence[ScrapeRequest] | Unchanged = UNCHANGED,
) -> CollectionRecord:
    """Change what is given; ``requests`` replaces the whole list. Runs under way keep their own copy."""
    found = get_collection(tx.db, collection_id)
    if found is None:
        raise _missing_collection(collection_id)
    changed = msgspec.structs.replace(
        found,
        name=found.name if isinstance(name, Unchanged) else name,
        callback_url=found.callback_url if isinstance(callback_url, Unchanged) else callback_url,
        updated_at=_epoch(tx),
    )
    tx.execute(
        "UPDATE collections SET name=?, callback_url=?, updated_at=? WHERE id=?",
        (changed.name, changed.callback_url, changed.updated_at, collection_id),
    )
    if not isinstance(requests, Unchanged):
        _replace_requests(tx, collection_id, requests)
    tx.emit("collection.updated", collection_id=collection_id, name=changed.name)
    return changed


def delete_collection(tx: Tx, collection_id: str) -> bool:
    """Remove the collection and its requests; its runs (and a run under way) are kept. False if none."""
    deleted = tx.execute("DELETE FROM collections WHERE id=?", (collection_id,)).rowcount
    tx.execute("DELETE FROM collection_requests WHERE collection_id=?", (collection_id,))
    tx.execute("DELETE FROM collection_idempotency WHERE collection_id=?", (collection_id,))
    if deleted:
        tx.emit("collection.deleted", collection_id=collection_id)
    return bool(deleted)


def get_collection(db: sqlite_utils.Database, collection_id: str) -> CollectionRecord | None:
    row = db.conn.execute(f"SELECT {_COLLECTION_COLUMNS} FROM collections WHERE id=?", (collection_id,)).fetchone()
    return None if row is None else _collection(row)


def list_collections(db: sqlite_utils.Database) -> list[CollectionRecord]:
    rows = db.conn.execute(f"SELECT {_COLLECTION_COLUMNS} FROM collections ORDER BY created_at DESC, id").fetchall()
    return [_collection(row) for row in rows]


def collection_requests(db: sqlite_utils.Database, collection_id: str) -> list[ScrapeRequest]:
    rows = db.conn.execute(
        "SELECT request FROM collection_requests WHERE collection_id=? ORDER BY position", (collection_id,)
    ).fetchall()
    return [_request_decoder.decode(row[0]) for row in rows]


# -- runs -----------------------------------------------------------------------------------


def _job_run_parameters(collection_id: str | None, collection_run_id: str | None, job_id: str | None,
                        request: ScrapeRequest) -> dict[str, Any]:  # fmt: skip
    # What the runs list shows of a job: where it belongs and its target, not its headers or cookies.
    return {
        "collectionId": collection_id,
        "collectionRunId": collection_run_id,
        "jobId": job_id,
        "url": request.url,
        "customId": request.custom_id,
        "browser": request.browser,
    }


def start_collection_run(
    tx: Tx,
    collection_id: str,
    run_id: str,
    project: ProjectVersion,
    options: RunOptions,
    base_url: str,
) -> tuple[wire.RunPublic, list[PendingJob]]:
    """The run ``in_progress``, its jobs ``processing`` and their runs of ours ``pending``, at once. A
    collection without requests makes a run that is completed at once (and calls back)."""
    collection = get_collection(tx.db, collection_id)
    if collection is None:
        raise _missing_collection(collection_id)
    requests = collection_requests(tx.db, collection_id)
    tx.execute(
        "INSERT INTO collection_runs (id, collection_id, status, callback_url, created_at) "
        "VALUES (?, ?, 'in_progress', ?, ?)",
        (run_id, collection_id, collection.callback_url, _epoch(tx)),
    )
    jobs = [PendingJob(id=new_uuid(), collection_run_id=run_id, run_of=new_uuid(), request=r) for r in requests]
    tx.db.conn.executemany(
        "INSERT INTO collection_jobs (id, collection_run_id, position, run_of, url, custom_id, request, status, "
        "queued_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'processing', ?)",
        [(j.id, run_id, i, j.run_of, j.request.url, j.request.custom_id, msgspec.json.encode(j.request).decode(),
          tx.now) for i, j in enumerate(jobs)],
    )  # fmt: skip
    for job in jobs:
        parameters = _job_run_parameters(collection_id, run_id, job.id, job.request)
        queries.insert_run(tx, job.run_of, project, API, parameters, options, run_type=RUN_TYPE)
    tx.emit("collection.run.started", collection_id=collection_id, collection_run_id=run_id, jobs=len(jobs))
    if not jobs:
        _complete_run(tx, run_id, base_url)
    public = run_public(tx.db, run_id)
    assert public is not None
    return public, jobs


def insert_sync_run(
    tx: Tx, run_id: str, project: ProjectVersion, request: ScrapeRequest, options: RunOptions
) -> RunRecord:
    """A sync scrape's run of ours: it belongs to no collection."""
    return queries.insert_run(tx, run_id, project, API, _job_run_parameters(None, None, None, request), options,
                              run_type=RUN_TYPE)  # fmt: skip


def _counts(db: sqlite_utils.Database, run_id: str) -> dict[str, int]:
    rows = db.conn.execute(
        "SELECT status, COUNT(*) FROM collection_jobs WHERE collection_run_id=? GROUP BY status", (run_id,)
    ).fetchall()
    return {status: int(count) for status, count in rows}


_RUN_COLUMNS = (
    "r.id, r.collection_id, r.status, r.callback_url, r.created_at, "
    f"(SELECT d.status FROM deliveries d WHERE d.run_id = r.id AND d.kind = '{CALLBACK_KIND}')"
)


def _run_public(db: sqlite_utils.Database, row: tuple[Any, ...]) -> wire.RunPublic:
    run_id, collection_id, status, callback_url, created_at, delivery_status = row
    counts = _counts(db, run_id)
    jobs = db.conn.execute(
        "SELECT id, url, status, message FROM collection_jobs WHERE collection_run_id=? ORDER BY position", (run_id,)
    ).fetchall()
    callback_status = _CALLBACK_STATUS.get(delivery_status) if delivery_status else None
    if callback_url and callback_status is None:
        callback_status = "pending"
    return wire.RunPublic(
        run_id=run_id,
        status=status,
        total_requests=len(jobs),
        success_requests=counts.get("completed", 0),
        failed_requests=counts.get("failed", 0),
        timeout_requests=counts.get("timeout", 0),
        collection_id=collection_id,
        failed_jobs=[
            wire.FailedJob(job_id=id_, url=url, error=message, status=job_status)
            for id_, url, job_status, message in jobs
            if job_status in ("failed", "timeout")
        ],
        job_ids=[row[0] for row in jobs],
        callback_url=callback_url,
        callback_status=callback_status,  # type: ignore[arg-type]
        created_at=created_at,
        success_criterion=wire.SuccessCriterion(rules=["scrape_succeeded"]),
        all_jobs_persisted=True,
    )


def run_public(db: sqlite_utils.Database, run_id: str) -> wire.RunPublic | None:
    row = db.conn.execute(f"SELECT {_RUN_COLUMNS} FROM collection_runs r WHERE r.id=?", (run_id,)).fetchone()
    return None if row is None else _run_public(db, row)


def list_runs(db: sqlite_utils.Database, collection_id: str, status: wire.RunStatus | None) -> wire.RunList:
    where, params = "r.collection_id=?", [collection_id]
    if status is not None:
        where += " AND r.status=?"
        params.append(status)
    rows = db.conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM collection_runs r WHERE {where} ORDER BY r.created_at DESC, r.rowid DESC", params
    ).fetchall()
    items = [_run_public(db, row) for row in rows]
    return wire.RunList(items=items, total=len(items))


def _complete_run(tx: Tx, run_id: str, base_url: str) -> None:
    """The run is over: completed, and its callback (if any) into the sink outbox in this transaction."""
    changed = tx.execute(
        "UPDATE collection_runs SET status='completed', completed_at=? WHERE id=? AND status='in_progress'",
        (_epoch(tx), run_id),
    ).rowcount
    if not changed:
        return
    public = run_public(tx.db, run_id)
    assert public is not None
    public = msgspec.structs.replace(public, status="completed")
    tx.emit(
        "collection.run.completed",
        collection_id=public.collection_id,
        collection_run_id=run_id,
        total_requests=public.total_requests,
        success_requests=public.success_requests,
        failed_requests=public.failed_requests,
        timeout_requests=public.timeout_requests,
    )
    if not public.callback_url:
        return
    body = signing.run_completed(public, base_url, parse_iso(tx.now))
    delivery_id = new_uuid()
    sink = {"url": public.callback_url, "body": msgspec.to_builtins(body)}
    tx.execute(
        "INSERT INTO deliveries (id, run_id, project, kind, sink, status, created_at, updated_at, next_attempt_at) "
        "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
        (delivery_id, run_id, PROJECT, CALLBACK_KIND, _dumps(sink), tx.now, tx.now, tx.now),
    )
    tx.emit("delivery.created", run_id=run_id, delivery_id=delivery_id, kind=CALLBACK_KIND)


# -- jobs -----------------------------------------------------------------------------------


def job_started(tx: Tx, job_id: str | None, run: RunRecord, number: int, log_path: str, trace_path: str | None) -> None:
    """The job's attempt began (on a worker, or in the daemon); ``job_id`` None for a sync scrape."""
    queries.start_attempt(tx, run, number, log_path, trace_path, None)
    if job_id is not None:
        tx.execute("UPDATE collection_jobs SET started_at=? WHERE id=? AND status='processing'", (tx.now, job_id))


def job_finished(
    tx: Tx,
    job_id: str | None,
    run: RunRecord,
    number: int | None,
    outcome: ScrapeOutcome,
    verdict: Verdict,
    result: bytes,
    base_url: str,
) -> bool:
    """The job's end, its attempt's (``number``, if one started) and its run's, with the result kept;
    and the collection run's completion when it was the last. Returns whether the run completed."""
    if number is not None:
        status = "completed" if verdict.success else "failed"
        queries.finish_attempt(tx, run, number, status, verdict.error)
    response = outcome.response
    queries.finish_run(
        tx,
        run,
        verdict.run_status,
        result={"statusCode": response.status_code, "message": response.message} if verdict.success else None,
        error=verdict.error,
    )
    if job_id is None:
        return False
    execution_ms = None if response.execution_time is None else round(response.execution_time * 1000)
    changed = tx.execute(
        "UPDATE collection_jobs SET status=?, status_code=?, message=?, block_reason=?, completed_at=?, "
        "started_at=COALESCE(started_at, ?), execution_time_ms=?, retries_attempted=?, is_success=?, result=? "
        "WHERE id=? AND status='processing'",
        (verdict.job_status, response.status_code, response.message, outcome.block_reason, tx.now, tx.now,
         execution_ms, outcome.retries, int(verdict.success), result.decode(), job_id),
    ).rowcount  # fmt: skip
    row = tx.execute(
        "SELECT j.collection_run_id, r.collection_id FROM collection_jobs j "
        "JOIN collection_runs r ON r.id = j.collection_run_id WHERE j.id=?",
        (job_id,),
    ).fetchone()
    if not changed or row is None:
        return False
    run_id, collection_id = row
    tx.emit(
        "collection.job.completed",
        collection_id=collection_id,
        collection_run_id=run_id,
        job_id=job_id,
        status=verdict.job_status,
        status_code=response.status_code,
    )
    left = tx.execute(
        "SELECT 1 FROM collection_jobs WHERE collection_run_id=? AND status='processing' LIMIT 1", (run_id,)
    ).fetchone()
    if left is not None:
        return False
    _complete_run(tx, run_id, base_url)
    return True


def _pending_job(row: tuple[Any, ...]) -> PendingJob:
    id_, collection_run_id, run_of, request = row
    return PendingJob(
        id=id_, collection_run_id=collection_run_id, run_of=run_of, request=_request_decoder.decode(request)
    )


def unfinished_jobs_checked(db: sqlite_utils.Database) -> tuple[list[PendingJob], list[tuple[str, str]]]:
    """Jobs an earlier process did not finish, in the order they were queued; ones whose stored request
    no longer decodes come back as (id, why)."""
    rows = db.conn.execute(
        "SELECT id, collection_run_id, run_of, request FROM collection_jobs WHERE status='processing' "
        "ORDER BY queued_at, collection_run_id, position"
    ).fetchall()
    return decode_rows(rows, _pending_job, lambda row: row[0])


def job_run_of(db: sqlite_utils.Database, job_id: str) -> str | None:
    """The id of the job's run of ours."""
    row = db.conn.execute("SELECT run_of FROM collection_jobs WHERE id=?", (job_id,)).fetchone()
    return None if row is None else str(row[0])


def interrupt_unfinished_attempts(tx: Tx) -> int:
    """The attempts of unfinished jobs that were running when the daemon stopped did not finish."""
    return int(
        tx.execute(
            "UPDATE attempts SET status='interrupted', ended_at=?, error=? WHERE status='running' AND run_id IN "
            "(SELECT run_of FROM collection_jobs WHERE status='processing')",
            (tx.now, _dumps(queries.INTERRUPTED)),
        ).rowcount
    )


def unfinished_sync_runs(db: sqlite_utils.Database) -> list[RunRecord]:
    """Sync scrapes' runs left unfinished: their caller is gone with the process that served it."""
    rows = db.conn.execute(
        f"SELECT {queries._RUN_COLUMNS} FROM runs WHERE run_type=? AND status IN ('pending', 'started') "
        "AND id NOT IN (SELECT run_of FROM collection_jobs)",
        (RUN_TYPE,),
    ).fetchall()
    return [queries._run(row) for row in rows]


_JOB_COLUMNS = (
    "j.id, j.collection_run_id, r.collection_id, j.status, j.status_code, j.message, j.url, j.custom_id, "
    "j.queued_at, j.started_at, j.completed_at, j.execution_time_ms, j.retries_attempted, j.block_reason, "
    "j.is_success"
)
MAX_EMBEDDED_RESULT_BYTES = 256 * 1024  # the service embeds a result in a jobs page only up to this size


def _moment(text: str | None) -> datetime | None:
    return None if text is None else parse_iso(text)


def _job(row: tuple[Any, ...], result: str | None) -> wire.JobExecution:
    (id_, run_id, collection_id, status, status_code, message, url, custom_id, queued_at, started_at,
     completed_at, execution_ms, retries, block_reason, is_success) = row  # fmt: skip
    return wire.JobExecution(
        job_public_id=id_,
        run_public_id=run_id,
        collection_id=collection_id,
        status=status,
        status_code=status_code,
        message=message,
        url=url,
        custom_id=custom_id,
        queued_at=_moment(queued_at),
        started_at=_moment(started_at),
        completed_at=_moment(completed_at),
        execution_time_ms=execution_ms,
        retries_attempted=retries,
        block_reason=block_reason,
        is_success=None if is_success is None else bool(is_success),
        result=msgspec.Raw(result.encode()) if result is not None else None,
    )


def list_jobs(
    db: sqlite_utils.Database, run_id: str, query: cursors.JobsQuery, cursor_key: bytes, results_after: str
) -> wire.JobPage:
    """A page of the run's jobs, keyset-paged on (completed_at, id) or id. With ``include_results``, a
    completed job's result is embedded when it was completed after ``results_after`` (older ones have
    expired) and is small enough."""
    where, params = ["j.collection_run_id = ?"], [run_id]
    if query.statuses:
        where.append(f"j.status IN ({', '.join('?' * len(query.statuses))})")
        params += sorted(query.statuses)
    if query.since_completed_at is not None:
        where.append("j.completed_at > ?")
        params.append(iso(query.since_completed_at))
    compare = ">" if query.order_dir == "asc" else "<"
    direction = query.order_dir.upper()
    if query.order_by == "completed_at":
        if query.after is not None:
            where.append(f"(COALESCE(j.completed_at, ''), j.id) {compare} (?, ?)")
            params += [query.after.completed_at or "", query.after.job_id]
        order = f"COALESCE(j.completed_at, '') {direction}, j.id {direction}"
    else:
        if query.after is not None:
            where.append(f"j.id {compare} ?")
            params.append(query.after.job_id)
        order = f"j.id {direction}"
    result = (
        f"CASE WHEN j.status = 'completed' AND j.completed_at > ? AND length(j.result) <= {MAX_EMBEDDED_RESULT_BYTES} "
        "THEN j.result END"
        if query.include_results
        else "NULL"
    )
    rows = db.conn.execute(
        f"SELECT {_JOB_COLUMNS}, {result} FROM collection_jobs j JOIN collection_runs r ON r.id = j.collection_run_id "
        f"WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?",
        ([results_after] if query.include_results else []) + params + [query.limit + 1],
    ).fetchall()
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    items = [_job(tuple(row[:-1]), row[-1]) for row in rows]
    cursor_next = None
    if has_more:
        last = rows[-1]
        cursor_next = cursors.next_cursor(query, run_id, last[0], last[10], cursor_key)
    return wire.JobPage(items=items, cursor_next=cursor_next, has_more=has_more)


def stored_result(db: sqlite_utils.Database, run_id: str, job_id: str) -> StoredResult | None:
    """A job's status, end and kept result; None when the run has no such job."""
    row = db.conn.execute(
        "SELECT status, completed_at, result FROM collection_jobs WHERE id=? AND collection_run_id=?", (job_id, run_id)
    ).fetchone()
    if row is None:
        return None
    status, completed_at, result = row
    return StoredResult(status=status, completed_at=completed_at, result=None if result is None else result.encode())


def expire_results(tx: Tx, completed_before: str) -> int:
    """Drop the results of jobs completed before ``completed_before``; they answer ``result_expired``."""
    return int(
        tx.execute(
            "UPDATE collection_jobs SET result=NULL WHERE completed_at < ? AND result IS NOT NULL", (completed_before,)
        ).rowcount
    )
