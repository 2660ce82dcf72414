"""All SQL. Reads are ``fn(db, ...)``; writes are ``fn(tx, ...)`` and name the events they cause.

Only the store actor calls these (inside one transaction per call), so nothing here locks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
import sqlite_utils

from ..ids import new_uuid
from ..messages import AttemptRecord, Event, ProjectEnvironment, ProjectVersion, RunOptions, RunRecord
from ..policy.run_filters import Condition
from ..sinks.config import WebhookSink, parse_sink, wants

R = TypeVar("R")
_json = msgspec.json.Encoder()
_decode_options = msgspec.json.Decoder(RunOptions)


@dataclass
class Tx:
    """A write transaction: the database plus the events to publish once it commits."""

    db: sqlite_utils.Database
    now: str
    events: list[Event] = field(default_factory=list)

    def emit(self, type: str, *, project: str | None = None, run_id: str | None = None, **data: Any) -> None:
        self.events.append(Event(type=type, at=self.now, project=project, run_id=run_id, data=data))

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> Any:
        return self.db.conn.execute(sql, params)


def _dumps(value: Any) -> str | None:
    return None if value is None else _json.encode(value).decode()


def _loads(text: str | None) -> Any:
    return None if text is None else msgspec.json.decode(text)


def decode_rows(
    rows: list[tuple[Any, ...]], decode: Callable[[tuple[Any, ...]], R], id_of: Callable[[tuple[Any, ...]], Any]
) -> tuple[list[R], list[tuple[str, str]]]:
    """Decode rows read back at start; a row that will not decode comes back as (id, why)
    instead of stopping the daemon (the caller quarantines it)."""
    good: list[R] = []
    bad: list[tuple[str, str]] = []
    for row in rows:
        try:
            good.append(decode(row))
        except Exception as e:  # noqa: BLE001 - any damage to a stored record is reported, not raised
            bad.append((str(id_of(row)), f"cannot decode the stored record: {type(e).__name__}: {e}"))
    return good, bad


# -- workspace and secret -----------------------------------------------------------------


def ensure_workspace(tx: Tx, configured: str, generated: str) -> str:
    row = tx.execute("SELECT value FROM meta WHERE key='workspace_id'").fetchone()
    if configured:
        tx.execute("INSERT OR REPLACE INTO meta VALUES ('workspace_id', ?)", (configured,))
        return configured
    if row:
        return str(row[0])
    tx.execute("INSERT INTO meta VALUES ('workspace_id', ?)", (generated,))
    return generated


def ensure_secret(tx: Tx, generated: str) -> str:
    tx.execute("INSERT OR IGNORE INTO meta VALUES ('signing_secret', ?)", (generated,))
    return str(tx.execute("SELECT value FROM meta WHERE key='signing_secret'").fetchone()[0])


# -- projects -----------------------------------------------------------------------------

_PROJECT_COLUMNS = (
    "project, version, path, apis, api_access, max_concurrent, deployed_at, default_sink, environment, auth_required"
)


def _project(row: tuple[Any, ...]) -> ProjectVersion:
    name, version, path, apis, api_access, max_concurrent, deployed_at, default_sink, environment, auth_required = row
    return ProjectVersion(
        name=name,
        version=version,
        path=path,
        apis=_loads(apis),
        api_access=bool(api_access),
        max_concurrent=max_concurrent,
        deployed_at=deployed_at,
        default_sink=_loads(default_sink),
        environment=None if environment is None else msgspec.convert(_loads(environment), ProjectEnvironment),
        auth_required=bool(auth_required),
    )


def next_project_version(db: sqlite_utils.Database, name: str) -> int:
    row = db.conn.execute("SELECT MAX(version) FROM project_versions WHERE project=?", (name,)).fetchone()
    return int(row[0] or 0) + 1


def record_deploy(tx: Tx, project: ProjectVersion, settings: Any) -> None:
    tx.execute(
        "INSERT INTO projects VALUES (?, ?, ?) "
        "ON CONFLICT(name) DO UPDATE SET current_version=excluded.current_version",
        (project.name, project.version, tx.now),
    )
    tx.execute(
        f"INSERT INTO project_versions ({_PROJECT_COLUMNS}, settings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            project.name,
            project.version,
            project.path,
            _dumps(project.apis),
            int(project.api_access),
            project.max_concurrent,
            project.deployed_at,
            _dumps(project.default_sink),
            None if project.environment is None else _dumps(project.environment),
            int(project.auth_required),
            _dumps(settings),
        ),
    )
    tx.emit("project.deployed", project=project.name, version=project.version, apis=project.apis)


def _current_project_rows(db: sqlite_utils.Database) -> list[tuple[Any, ...]]:
    return db.conn.execute(
        f"SELECT {_PROJECT_COLUMNS} FROM project_versions v JOIN projects p "
        "ON p.name = v.project AND p.current_version = v.version ORDER BY project"
    ).fetchall()


def current_projects(db: sqlite_utils.Database) -> list[ProjectVersion]:
    return [_project(row) for row in _current_project_rows(db)]


def current_projects_checked(db: sqlite_utils.Database) -> tuple[list[ProjectVersion], list[tuple[str, str]]]:
    return decode_rows(_current_project_rows(db), _project, lambda row: f"{row[0]}/{row[1]}")


def environment_keys_in_use(db: sqlite_utils.Database) -> set[str]:
    rows = db.conn.execute(
        "SELECT DISTINCT json_extract(environment, '$.key') FROM project_versions WHERE json_valid(environment)"
    ).fetchall()
    return {key for (key,) in rows if isinstance(key, str)}


def project_history(db: sqlite_utils.Database, name: str, limit: int) -> list[tuple[ProjectVersion, Any]]:
    """The project's latest ``limit`` versions, newest first, each with its Intuned.json settings."""
    rows = db.conn.execute(
        f"SELECT {_PROJECT_COLUMNS}, settings FROM project_versions WHERE project=? ORDER BY version DESC LIMIT ?",
        (name, limit),
    ).fetchall()
    return [(_project(row[:-1]), _loads(row[-1])) for row in rows]


def project_version(db: sqlite_utils.Database, name: str, version: int) -> ProjectVersion | None:
    row = db.conn.execute(
        f"SELECT {_PROJECT_COLUMNS} FROM project_versions WHERE project=? AND version=?", (name, version)
    ).fetchone()
    return _project(row) if row else None


# -- runs ---------------------------------------------------------------------------------

_RUN_COLUMNS = (
    "id, seq, project, version, api, parameters, options, status, run_type, created_at, started_at, "
    "ended_at, result, extended_payloads, error, reason, attempts_count, job_id, job_run_id, queue_id"
)


def _run(row: tuple[Any, ...]) -> RunRecord:
    (id_, seq, project, version, api, parameters, options, status, run_type, created_at, started_at,
     ended_at, result, extended, error, reason, attempts_count, job_id, job_run_id, queue_id) = row  # fmt: skip
    return RunRecord(
        id=id_,
        seq=seq,
        project=project,
        version=version,
        api=api,
        parameters=_loads(parameters),
        options=_decode_options.decode(options),
        status=status,
        run_type=run_type,
        created_at=created_at,
        started_at=started_at,
        ended_at=ended_at,
        result=_loads(result),
        extended_payloads=_loads(extended),
        error=_loads(error),
        reason=_loads(reason),
        attempts_count=attempts_count,
        job_id=job_id,
        job_run_id=job_run_id,
        queue_id=queue_id,
    )


def insert_run(
    tx: Tx,
    run_id: str,
    project: ProjectVersion,
    api: str,
    parameters: Any,
    options: RunOptions,
    *,
    run_type: str = "STANDALONE",
    job_id: str | None = None,
    job_run_id: str | None = None,
    queue_id: str | None = None,
) -> RunRecord:
    cursor = tx.execute(
        "INSERT INTO runs (id, project, version, api, parameters, options, status, run_type, job_id, job_run_id, "
        "queue_id, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
        (run_id, project.name, project.version, api, _dumps(parameters), _dumps(options), run_type, job_id,
         job_run_id, queue_id, tx.now),
    )  # fmt: skip
    tx.emit("run.created", project=project.name, run_id=run_id, api=api, job_run_id=job_run_id)
    return RunRecord(
        id=run_id,
        seq=cursor.lastrowid,
        project=project.name,
        version=project.version,
        api=api,
        parameters=parameters,
        options=options,
        status="pending",
        run_type=run_type,
        created_at=tx.now,
        job_id=job_id,
        job_run_id=job_run_id,
        queue_id=queue_id,
    )


def get_run(db: sqlite_utils.Database, run_id: str) -> RunRecord | None:
    row = db.conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id=?", (run_id,)).fetchone()
    return _run(row) if row else None


def unfinished_runs(db: sqlite_utils.Database) -> list[RunRecord]:
    return unfinished_runs_checked(db)[0]


def unfinished_runs_checked(db: sqlite_utils.Database) -> tuple[list[RunRecord], list[tuple[str, str]]]:
    """Runs an earlier process accepted and did not finish, in acceptance order (quarantined
    ones left out: they stay unfinished, and listed, until an operator acts)."""
    rows = db.conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs WHERE status IN ('pending', 'started') "
        "AND id NOT IN (SELECT record_id FROM quarantine WHERE kind='run') ORDER BY seq"
    ).fetchall()
    return decode_rows(rows, _run, lambda row: row[0])


# Exactly the expression of the runs_project_duration index (migration 0013), so it serves the filter.
RUN_DURATION_SQL = "CAST((julianday(ended_at) - julianday(started_at)) * 86400000 AS INTEGER)"
_FILTER_COLUMNS = {
    "id": "id",
    "status": "status",
    "api_name": "api",
    "run_type": "run_type",
    "job_id": "job_id",
    "job_run_id": "job_run_id",
    "queue_id": "queue_id",
    "created_at": "created_at",
    "started_at": "started_at",
    "ended_at": "ended_at",
    "run_duration": RUN_DURATION_SQL,
}


def list_runs(
    db: sqlite_utils.Database,
    project: str,
    conditions: list[Condition],
    limit: int,
    offset: int,
    before_seq: int | None = None,
) -> tuple[list[RunRecord], int]:
    """A page of the project's runs, newest first, and how many match in all. ``before_seq`` (a
    cursor: the last seq of the previous page) pages by key, as fast at any depth; ``offset``
    then skips within what follows it."""
    where = ["project = ?"]
    params: list[Any] = [project]
    for condition in conditions:
        where.append(f"{_FILTER_COLUMNS[condition.field]} {condition.op} ?")
        params.append(condition.value)
    clause = " AND ".join(where)
    total = db.conn.execute(f"SELECT COUNT(*) FROM runs WHERE {clause}", params).fetchone()[0]
    if before_seq is not None:
        clause += " AND seq < ?"
        params.append(before_seq)
    rows = db.conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs WHERE {clause} ORDER BY seq DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    return [_run(row) for row in rows], int(total)


# -- attempts -----------------------------------------------------------------------------

_ATTEMPT_COLUMNS = "run_id, number, status, started_at, ended_at, error, log_path, trace_path, video_path"


def _attempt(row: tuple[Any, ...]) -> AttemptRecord:
    run_id, number, status, started_at, ended_at, error, log_path, trace_path, video_path = row
    return AttemptRecord(
        run_id=run_id,
        number=number,
        status=status,
        started_at=started_at,
        ended_at=ended_at,
        error=_loads(error),
        log_path=log_path,
        trace_path=trace_path,
        video_path=video_path,
    )


def list_attempts(db: sqlite_utils.Database, run_id: str) -> list[AttemptRecord]:
    rows = db.conn.execute(
        f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE run_id=? ORDER BY number", (run_id,)
    ).fetchall()
    return [_attempt(row) for row in rows]


def start_attempt(
    tx: Tx,
    run: RunRecord,
    number: int,
    log_path: str,
    trace_path: str | None,
    video_path: str | None,
) -> None:
    """Record attempt ``number`` as running; the first attempt also starts the run."""
    changed = tx.execute(
        "UPDATE runs SET status='started', started_at=? WHERE id=? AND status='pending'", (tx.now, run.id)
    ).rowcount
    tx.execute("UPDATE runs SET attempts_count=? WHERE id=?", (number, run.id))
    tx.execute(
        "INSERT INTO attempts (run_id, number, status, started_at, log_path, trace_path, video_path) "
        "VALUES (?, ?, 'running', ?, ?, ?, ?)",
        (run.id, number, tx.now, log_path, trace_path, video_path),
    )
    if changed:
        tx.emit("run.started", project=run.project, run_id=run.id, api=run.api)
        if run.queue_id is not None:
            tx.emit("queueitem.started", project=run.project, run_id=run.id, queue_id=run.queue_id)
    tx.emit("attempt.started", project=run.project, run_id=run.id, attempt=number)


def finish_attempt(
    tx: Tx, run: RunRecord, number: int, status: str, error: Any, *, trace_dropped: bool = False
) -> None:
    tx.execute(
        "UPDATE attempts SET status=?, ended_at=?, error=?, trace_path=CASE WHEN ? THEN NULL ELSE trace_path END "
        "WHERE run_id=? AND number=? AND status='running'",
        (status, tx.now, _dumps(error), trace_dropped, run.id, number),
    )
    tx.emit("attempt.finished", project=run.project, run_id=run.id, attempt=number, status=status, error=error)


def finish_run(
    tx: Tx,
    run: RunRecord,
    status: str,
    *,
    result: Any = None,
    extended_payloads: Any = None,
    error: Any = None,
    reason: Any = None,
) -> bool:
    """Move an unfinished run to a terminal status; False when it had already ended."""
    changed = tx.execute(
        "UPDATE runs SET status=?, ended_at=?, result=?, extended_payloads=?, error=?, reason=? "
        "WHERE id=? AND status IN ('pending', 'started')",
        (status, tx.now, _dumps(result), _dumps(extended_payloads), _dumps(error), _dumps(reason), run.id),
    ).rowcount
    if changed:
        _enqueue_delivery(tx, run, status)
        data: dict[str, Any] = {"api": run.api}
        if error is not None:
            data["error"] = error
        if reason is not None:
            data["reason"] = reason
        tx.emit(f"run.{status}", project=run.project, run_id=run.id, **data)
        if run.queue_id is not None:
            tx.emit(f"queueitem.{status}", project=run.project, run_id=run.id, queue_id=run.queue_id)
    return bool(changed)


def _enqueue_delivery(tx: Tx, run: RunRecord, status: str) -> None:
    """The sink outbox row, committed with the run's final state: at least once starts here."""
    if not run.options.sink:
        return
    delivery_id = new_uuid()
    try:
        sink = parse_sink(run.options.sink)
    except msgspec.ValidationError as e:
        # Stored by an older version with looser checks: the run still finishes, and the
        # delivery is recorded failed, with why, instead of failing the run's transaction.
        error = f"invalid sink: {e}"[:QUARANTINE_REASON_CHARS]
        raw_kind = run.options.sink.get("type") if isinstance(run.options.sink, dict) else None
        kind = raw_kind if raw_kind in ("webhook", "s3") else "unknown"
        tx.execute(
            "INSERT INTO deliveries (id, run_id, project, kind, sink, status, created_at, updated_at, next_attempt_at, "
            "last_error) VALUES (?, ?, ?, ?, ?, 'failed', ?, ?, ?, ?)",
            (delivery_id, run.id, run.project, kind, _dumps(run.options.sink), tx.now, tx.now, tx.now, error),
        )
        quarantine(tx, "delivery", delivery_id, error)
        tx.emit("delivery.failed", project=run.project, run_id=run.id, delivery_id=delivery_id, kind=kind, error=error)
        return
    if not wants(sink, run.api, status):
        return
    kind = "webhook" if isinstance(sink, WebhookSink) else "s3"
    tx.execute(
        "INSERT INTO deliveries (id, run_id, project, kind, sink, status, created_at, updated_at, next_attempt_at) "
        "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
        (delivery_id, run.id, run.project, kind, _dumps(run.options.sink), tx.now, tx.now, tx.now),
    )
    tx.emit("delivery.created", project=run.project, run_id=run.id, delivery_id=delivery_id, kind=kind)


INTERRUPTED = {"code": "interrupted", "message": "The daemon stopped during this attempt"}


def interrupt_running_attempts(tx: Tx) -> int:
    """After a crash or a drain, attempts left running did not finish: say so."""
    return int(
        tx.execute(
            "UPDATE attempts SET status='interrupted', ended_at=?, error=? WHERE status='running'",
            (tx.now, _dumps(INTERRUPTED)),
        ).rowcount
    )


# -- persistent store ---------------------------------------------------------------------


def kv_get(db: sqlite_utils.Database, project: str, key: str) -> Any:
    row = db.conn.execute("SELECT value FROM kv WHERE project=? AND key=?", (project, key)).fetchone()
    return _loads(row[0]) if row else None


def kv_set(tx: Tx, project: str, key: str, value: Any) -> None:
    tx.execute(
        "INSERT INTO kv VALUES (?, ?, ?, ?) ON CONFLICT(project, key) DO UPDATE "
        "SET value=excluded.value, updated_at=excluded.updated_at",
        (project, key, _dumps(value), tx.now),
    )


# -- quarantine ---------------------------------------------------------------------------

QUARANTINE_REASON_CHARS = 2000


def quarantine(tx: Tx, kind: str, record_id: str, reason: str) -> None:
    """Set aside a stored record the daemon cannot process (a run, a job, a delivery), with why.

    The record stays where it is; whoever skipped it keeps skipping it, and the list is
    shown over the API so an operator can decide what to do.
    """
    tx.execute(
        "INSERT INTO quarantine VALUES (?, ?, ?, ?) ON CONFLICT(kind, record_id) DO UPDATE SET reason=excluded.reason",
        (kind, record_id, reason[:QUARANTINE_REASON_CHARS], tx.now),
    )
    tx.emit("record.quarantined", kind=kind, record_id=record_id, reason=reason[:QUARANTINE_REASON_CHARS])


def release(tx: Tx, kind: str, record_id: str) -> None:
    """The record was replaced or removed: it is no longer set aside."""
    tx.execute("DELETE FROM quarantine WHERE kind=? AND record_id=?", (kind, record_id))


def list_quarantine(db: sqlite_utils.Database) -> list[dict[str, str]]:
    rows = db.conn.execute("SELECT kind, record_id, reason, created_at FROM quarantine ORDER BY created_at").fetchall()
    return [{"kind": k, "recordId": r, "reason": why, "createdAt": at} for k, r, why, at in rows]
