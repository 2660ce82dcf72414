"""SQL for jobs and JobRuns (the runs of a JobRun are rows of ``runs``)."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec
import sqlite_utils

from ..job_spec import JobRecord, JobRunRecord, JobSpec, PayloadItem
from ..messages import ProjectVersion, RunOptions, RunRecord
from ..policy.job_runs import ACTIVE_JOB_RUN, completes, on_trigger, runs_allowed
from .errors import CodeOwned, RecordExists, RecordMissing
from .queries import (
    _RUN_COLUMNS,
    Tx,
    _dumps,
    _loads,
    _run,
    decode_rows,
    finish_attempt,
    finish_run,
    get_run,
    insert_run,
    release,
)

_decode_spec = msgspec.json.Decoder(JobSpec)

# -- jobs ---------------------------------------------------------------------------------

_JOB_COLUMNS = "project, id, spec, state, source, created_at, updated_at, next_run_time, last_run_time, last_slot_ms"


def _job(row: tuple[Any, ...]) -> JobRecord:
    project, id_, spec, state, source, created_at, updated_at, next_run, last_run, last_slot = row
    return JobRecord(
        project=project,
        id=id_,
        spec=_decode_spec.decode(spec),
        state=state,
        source=source,
        created_at=created_at,
        updated_at=updated_at,
        next_run_time=next_run,
        last_run_time=last_run,
        last_slot_ms=last_slot,
    )


def get_job(db: sqlite_utils.Database, project: str, job_id: str) -> JobRecord | None:
    row = db.conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE project=? AND id=?", (project, job_id)).fetchone()
    return _job(row) if row else None


def list_jobs(db: sqlite_utils.Database, project: str) -> list[JobRecord]:
    rows = db.conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE project=? ORDER BY created_at", (project,))
    return [_job(row) for row in rows.fetchall()]


def scheduled_jobs_checked(db: sqlite_utils.Database) -> tuple[list[JobRecord], list[tuple[str, str]]]:
    """Active jobs with a schedule, read again at every start; one whose stored record no
    longer decodes comes back as (``project/job``, why) for the scheduler to quarantine."""
    rows = db.conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state='ACTIVE' AND spec LIKE '%\"schedule\":%'")
    jobs, bad = decode_rows(rows.fetchall(), _job, lambda row: f"{row[0]}/{row[1]}")
    return [job for job in jobs if job.spec.schedule], bad


def insert_job(tx: Tx, project: str, job_id: str, spec: JobSpec, source: str) -> None:
    try:
        tx.execute(
            "INSERT INTO jobs (project, id, spec, state, source, created_at, updated_at) "
            "VALUES (?, ?, ?, 'ACTIVE', ?, ?, ?)",
            (project, job_id, _dumps(spec), source, tx.now, tx.now),
        )
    except sqlite3.IntegrityError as e:
        raise RecordExists(f"job '{job_id}' already exists in project '{project}'", details={"field": "id"}) from e
    tx.emit("job.created", project=project, job_id=job_id)


def _stored_source(db: sqlite_utils.Database, project: str, job_id: str) -> str:
    """Who owns the job (API or CODE), read without decoding its spec: a job whose stored spec no
    longer decodes (quarantined) can still be replaced or deleted."""
    row = db.conn.execute("SELECT source FROM jobs WHERE project=? AND id=?", (project, job_id)).fetchone()
    if row is None:
        raise RecordMissing(f"job '{job_id}' not found in project '{project}'", details={"field": "jobId"})
    return str(row[0])


def update_job(tx: Tx, project: str, job_id: str, spec: JobSpec, *, source: str = "API") -> None:
    if _stored_source(tx.db, project, job_id) == "CODE" and source != "CODE":
        raise CodeOwned(
            f"job '{job_id}' is defined in the project's code (intuned-resources/jobs): redeploy to change it",
            details={"field": "jobId", "source": "CODE"},
        )
    tx.execute(
        "UPDATE jobs SET spec=?, source=?, updated_at=? WHERE project=? AND id=?",
        (_dumps(spec), source, tx.now, project, job_id),
    )
    release(tx, "job", f"{project}/{job_id}")
    tx.emit("job.updated", project=project, job_id=job_id)


def delete_job(tx: Tx, project: str, job_id: str, *, source: str = "API") -> JobRunRecord | None:
    """Delete the job; returns its active JobRun, which the caller terminates."""
    if _stored_source(tx.db, project, job_id) == "CODE" and source != "CODE":
        raise CodeOwned(
            f"job '{job_id}' is defined in the project's code (intuned-resources/jobs): remove its file and redeploy",
            details={"field": "jobId", "source": "CODE"},
        )
    active = active_job_run(tx.db, project, job_id)
    tx.execute("DELETE FROM jobs WHERE project=? AND id=?", (project, job_id))
    release(tx, "job", f"{project}/{job_id}")
    tx.emit("job.deleted", project=project, job_id=job_id)
    return active


def set_job_state(tx: Tx, project: str, job_id: str, state: str) -> None:
    _stored_source(tx.db, project, job_id)
    tx.execute("UPDATE jobs SET state=?, updated_at=? WHERE project=? AND id=?", (state, tx.now, project, job_id))
    tx.emit(f"job.{'paused' if state == 'PAUSED' else 'resumed'}", project=project, job_id=job_id)


def record_schedule(
    tx: Tx, project: str, job_id: str, last_slot_ms: int | None, next_run_time: str | None, fired_at: str | None
) -> None:
    tx.execute(
        "UPDATE jobs SET last_slot_ms=COALESCE(?, last_slot_ms), next_run_time=?, "
        "last_run_time=COALESCE(?, last_run_time) WHERE project=? AND id=?",
        (last_slot_ms, next_run_time, fired_at, project, job_id),
    )


# -- job runs -----------------------------------------------------------------------------

_JOB_RUN_COLUMNS = (
    "id, project, job_id, type, status, snapshot, max_concurrent, created_at, updated_at, start_time, end_time, "
    "reason, error, slot_key"
)


def _job_run(row: tuple[Any, ...]) -> JobRunRecord:
    (id_, project, job_id, type_, status, snap, max_concurrent, created_at, updated_at, start_time, end_time,
     reason, error, slot_key) = row  # fmt: skip
    return JobRunRecord(
        id=id_,
        project=project,
        job_id=job_id,
        type=type_,
        status=status,
        snapshot=_loads(snap),
        max_concurrent=max_concurrent,
        created_at=created_at,
        updated_at=updated_at,
        start_time=start_time,
        end_time=end_time,
        reason=_loads(reason),
        error=_loads(error),
        slot_key=slot_key,
    )


def get_job_run(db: sqlite_utils.Database, project: str, job_id: str, job_run_id: str) -> JobRunRecord | None:
    row = db.conn.execute(
        f"SELECT {_JOB_RUN_COLUMNS} FROM job_runs WHERE id=? AND project=? AND job_id=?",
        (job_run_id, project, job_id),
    ).fetchone()
    return _job_run(row) if row else None


def job_run_by_id(db: sqlite_utils.Database, job_run_id: str) -> JobRunRecord | None:
    row = db.conn.execute(f"SELECT {_JOB_RUN_COLUMNS} FROM job_runs WHERE id=?", (job_run_id,)).fetchone()
    return _job_run(row) if row else None


def active_job_run(db: sqlite_utils.Database, project: str, job_id: str) -> JobRunRecord | None:
    placeholders = ", ".join("?" * len(ACTIVE_JOB_RUN))
    row = db.conn.execute(
        f"SELECT {_JOB_RUN_COLUMNS} FROM job_runs WHERE project=? AND job_id=? AND status IN ({placeholders})",
        (project, job_id, *ACTIVE_JOB_RUN),
    ).fetchone()
    return _job_run(row) if row else None


def active_job_runs_checked(db: sqlite_utils.Database) -> tuple[list[JobRunRecord], list[tuple[str, str]]]:
    placeholders = ", ".join("?" * len(ACTIVE_JOB_RUN))
    rows = db.conn.execute(f"SELECT {_JOB_RUN_COLUMNS} FROM job_runs WHERE status IN ({placeholders})", ACTIVE_JOB_RUN)
    return decode_rows(rows.fetchall(), _job_run, lambda row: row[0])


_SORTS = {"created_at": "created_at", "start_time": "start_time", "end_time": "end_time", "status": "status"}


def list_job_runs(
    db: sqlite_utils.Database, project: str, job_id: str, page_size: int, page_number: int, sort_by: str
) -> tuple[list[JobRunRecord], int]:
    descending = sort_by.startswith("-") or sort_by.endswith(":desc") or sort_by == ""
    column = _SORTS.get(sort_by.strip("-").removesuffix(":desc").removesuffix(":asc") or "created_at", "created_at")
    order = f"{column} {'DESC' if descending else 'ASC'}, rowid {'DESC' if descending else 'ASC'}"
    total = db.conn.execute("SELECT COUNT(*) FROM job_runs WHERE project=? AND job_id=?", (project, job_id)).fetchone()[
        0
    ]
    rows = db.conn.execute(
        f"SELECT {_JOB_RUN_COLUMNS} FROM job_runs WHERE project=? AND job_id=? ORDER BY {order} LIMIT ? OFFSET ?",
        (project, job_id, page_size, (page_number - 1) * page_size),
    ).fetchall()
    return [_job_run(row) for row in rows], int(total)


def job_runs_counts(db: sqlite_utils.Database, job_run_ids: list[str]) -> dict[str, dict[str, int]]:
    """Each JobRun's runs by state (pending, running, completed, failed, canceled), in one query."""
    names = {"pending": "pending", "started": "running", "completed": "completed", "failed": "failed"}
    counts = {i: {"pending": 0, "running": 0, "completed": 0, "failed": 0, "canceled": 0} for i in job_run_ids}
    if not job_run_ids:
        return counts
    rows = db.conn.execute(
        f"SELECT job_run_id, status, COUNT(*) FROM runs WHERE job_run_id IN ({', '.join('?' * len(job_run_ids))}) "
        "GROUP BY job_run_id, status",
        job_run_ids,
    )
    for job_run_id, status, count in rows.fetchall():
        counts[job_run_id][names.get(status, "canceled")] += count
    return counts


def job_run_counts(db: sqlite_utils.Database, job_run_id: str) -> dict[str, int]:
    return job_runs_counts(db, [job_run_id])[job_run_id]


def job_run_results(db: sqlite_utils.Database, job_run_id: str, after_seq: int, limit: int) -> list[RunRecord]:
    """A page of a JobRun's runs in acceptance order, after ``after_seq``: results are read a page
    at a time, since each may be as large as ``runs.max_result_bytes``."""
    rows = db.conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs WHERE job_run_id=? AND seq>? ORDER BY seq LIMIT ?",
        (job_run_id, after_seq, limit),
    )
    return [_run(row) for row in rows.fetchall()]


def _insert_job_run(
    tx: Tx, job: JobRecord, job_run_id: str, type_: str, status: str, snapshot: dict[str, Any], max_concurrent: int,
    slot_key: str | None, reason: dict[str, Any] | None = None,
) -> JobRunRecord:  # fmt: skip
    ended = tx.now if status == "CANCELED" else None
    tx.execute(
        f"INSERT INTO job_runs ({_JOB_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
        (job_run_id, job.project, job.id, type_, status, _dumps(snapshot), max_concurrent, tx.now, tx.now, tx.now,
         ended, _dumps(reason), slot_key),
    )  # fmt: skip
    # trigger and slot_key (``<job>:<slot ms>`` for SCHEDULED) let metrics measure the scheduler's lateness.
    tx.emit("jobrun.created", project=job.project, job_id=job.id, job_run_id=job_run_id, status=status, trigger=type_,
            slot_key=slot_key)  # fmt: skip
    found = job_run_by_id(tx.db, job_run_id)
    assert found is not None
    return found


def start_job_run(
    tx: Tx,
    job: JobRecord,
    project: ProjectVersion,
    type_: str,
    job_run_id: str,
    run_ids: list[str],
    options: list[RunOptions],
    snapshot: dict[str, Any],
    max_concurrent: int,
    max_runs: int | None,
    slot_key: str | None,
) -> tuple[JobRunRecord, list[RunRecord]]:
    """Create a JobRun and one run per payload item; or, when one is already active, a
    CANCELED JobRun that records the skip. A repeated ``slot_key`` returns the first JobRun."""
    fired = None
    if slot_key is not None:
        fired = tx.execute(f"SELECT {_JOB_RUN_COLUMNS} FROM job_runs WHERE slot_key=?", (slot_key,)).fetchone()
    decision = on_trigger(
        slot_already_fired=fired is not None, another_active=active_job_run(tx.db, job.project, job.id) is not None
    )
    if fired is not None and decision == "slot-already-fired":
        return _job_run(fired), []
    if decision == "skip-another-active":
        reason = {"type": "another-job-run-active", "message": "Another JobRun of this job is still active."}
        skipped = _insert_job_run(
            tx, job, job_run_id, type_, "CANCELED", snapshot, max_concurrent, slot_key, reason=reason
        )
        return skipped, []
    job_run = _insert_job_run(tx, job, job_run_id, type_, "PENDING", snapshot, max_concurrent, slot_key)
    runs = [
        insert_run(tx, run_id, project, item.api_name, item.parameters, option, run_type="JOB", job_id=job.id,
                   job_run_id=job_run_id)
        for run_id, item, option in zip(run_ids, job.spec.payload, options, strict=True)
    ]  # fmt: skip
    allowed = runs_allowed(0, len(runs), max_runs)
    for run in runs[allowed:]:
        _cancel_over_max_runs(tx, run, max_runs)
    return job_run, runs[:allowed]


def _cancel_over_max_runs(tx: Tx, run: RunRecord, max_runs: int | None) -> None:
    reason = {"type": "terminated", "message": f"Max runs exceeded: the job allows {max_runs} runs per JobRun"}
    finish_run(tx, run, "canceled", reason=reason)


def extend_job_run(
    tx: Tx,
    parent: RunRecord,
    project: ProjectVersion,
    items: list[PayloadItem],
    run_ids: list[str],
    options: list[RunOptions],
    max_runs: int | None,
) -> list[RunRecord]:
    """Runs for the items an automation added with extend_payload, in the parent's JobRun."""
    assert parent.job_run_id is not None
    existing = tx.execute("SELECT COUNT(*) FROM runs WHERE job_run_id=?", (parent.job_run_id,)).fetchone()[0]
    allowed = runs_allowed(existing, len(items), max_runs)
    created = []
    for position, (run_id, item, option) in enumerate(zip(run_ids, items, options, strict=True)):
        run = insert_run(tx, run_id, project, item.api_name, item.parameters, option, run_type="JOB",
                         job_id=parent.job_id, job_run_id=parent.job_run_id)  # fmt: skip
        if position < allowed:
            created.append(run)
        else:
            _cancel_over_max_runs(tx, run, max_runs)
    return created


def set_job_run_status(
    tx: Tx, job_run: JobRunRecord, status: str, *, reason: dict[str, Any] | None = None, ended: bool = False
) -> None:
    tx.execute(
        "UPDATE job_runs SET status=?, updated_at=?, reason=COALESCE(?, reason), end_time=CASE WHEN ? THEN ? "
        "ELSE end_time END WHERE id=?",
        (status, tx.now, _dumps(reason), ended, tx.now, job_run.id),
    )
    tx.emit(
        "jobrun.status", project=job_run.project, job_id=job_run.job_id, job_run_id=job_run.id, status=status,
        counts=job_run_counts(tx.db, job_run.id),
    )  # fmt: skip


def cancel_waiting_runs(tx: Tx, job_run_id: str, reason: dict[str, Any]) -> list[str]:
    ids = [row[0] for row in tx.execute("SELECT id FROM runs WHERE job_run_id=? AND status='pending'", (job_run_id,))]
    for run_id in ids:
        run = get_run(tx.db, run_id)
        assert run is not None
        finish_run(tx, run, "canceled", reason=reason)
    return ids


def item_ended(tx: Tx, job_run_id: str) -> bool:
    """One of a JobRun's runs ended: publish its counts, and complete it when none is left.

    Returns True when the JobRun has just completed.
    """
    job_run = job_run_by_id(tx.db, job_run_id)
    if job_run is None:
        return False
    counts = job_run_counts(tx.db, job_run_id)
    tx.emit("jobrun.progress", project=job_run.project, job_id=job_run.job_id, job_run_id=job_run_id, counts=counts)
    if not completes(job_run.status, counts):
        return False
    set_job_run_status(tx, job_run, "COMPLETED", ended=True)
    return True


def requeue_run(tx: Tx, run: RunRecord, number: int | None, reason: dict[str, Any]) -> None:
    """A paused JobRun's running item: its attempt is canceled and the run waits again."""
    if number is not None:
        finish_attempt(
            tx, run, number, "canceled", {"code": "canceled", "message": reason["message"], "reason": reason}
        )
    tx.execute("UPDATE runs SET status='pending' WHERE id=? AND status='started'", (run.id,))
    tx.emit("run.requeued", project=run.project, run_id=run.id, reason=reason)
