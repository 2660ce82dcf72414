"""SQL for the sink outbox: one row per delivery of one finished run to one sink."""

from __future__ import annotations

from typing import Any

import msgspec
import sqlite_utils

from .errors import RecordExists, RecordMissing
from .queries import Tx, _loads

_COLUMNS = (
    "id, run_id, project, kind, sink, status, attempts, created_at, updated_at, next_attempt_at, first_attempt_at, "
    "delivered_at, last_status, last_error"
)


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    run_id: str
    project: str
    kind: str
    sink: dict[str, Any]
    status: str  # pending | delivered | failed
    attempts: int
    created_at: str
    updated_at: str
    next_attempt_at: str
    first_attempt_at: str | None = None
    delivered_at: str | None = None
    last_status: int | None = None
    last_error: str | None = None


def _delivery(row: tuple[Any, ...]) -> Delivery:
    values = dict(zip([c.strip() for c in _COLUMNS.split(",")], row, strict=True))
    values["sink"] = _loads(values["sink"])
    return Delivery(**values)


def get_delivery(db: sqlite_utils.Database, delivery_id: str) -> Delivery | None:
    row = db.conn.execute(f"SELECT {_COLUMNS} FROM deliveries WHERE id=?", (delivery_id,)).fetchone()
    return _delivery(row) if row else None


def _not_in(ids: frozenset[str]) -> str:
    return f"AND id NOT IN ({', '.join('?' * len(ids))})" if ids else ""


def due_deliveries(db: sqlite_utils.Database, now: str, limit: int, busy: frozenset[str]) -> list[Delivery]:
    """Pending deliveries due by ``now``, earliest first, leaving out those already being sent."""
    rows = db.conn.execute(
        f"SELECT {_COLUMNS} FROM deliveries WHERE status='pending' AND next_attempt_at <= ? {_not_in(busy)} "
        "ORDER BY next_attempt_at LIMIT ?",
        (now, *busy, limit),
    )
    return [_delivery(row) for row in rows.fetchall()]


def next_due_at(db: sqlite_utils.Database, busy: frozenset[str]) -> str | None:
    row = db.conn.execute(
        f"SELECT MIN(next_attempt_at) FROM deliveries WHERE status='pending' {_not_in(busy)}", tuple(busy)
    ).fetchone()
    return row[0] if row else None


def list_deliveries(
    db: sqlite_utils.Database, status: str | None, run_id: str | None, limit: int, offset: int
) -> tuple[list[Delivery], int]:
    where, params = ["1=1"], []
    if status:
        where.append("status = ?")
        params.append(status)
    if run_id:
        where.append("run_id = ?")
        params.append(run_id)
    clause = " AND ".join(where)
    total = db.conn.execute(f"SELECT COUNT(*) FROM deliveries WHERE {clause}", params).fetchone()[0]
    rows = db.conn.execute(
        f"SELECT {_COLUMNS} FROM deliveries WHERE {clause} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [_delivery(row) for row in rows.fetchall()], int(total)


def record_attempt(
    tx: Tx,
    delivery: Delivery,
    verdict: str,
    status_code: int | None,
    error: str | None,
    first_attempt_at: str,
    next_attempt_at: str | None,
) -> None:
    """One attempt's outcome: delivered, retried at ``next_attempt_at``, or failed for good."""
    status = {"delivered": "delivered", "retry": "pending", "give-up": "failed"}[verdict]
    tx.execute(
        "UPDATE deliveries SET status=?, attempts=attempts+1, updated_at=?, first_attempt_at=?, "
        "next_attempt_at=COALESCE(?, next_attempt_at), delivered_at=CASE WHEN ?='delivered' THEN ? END, "
        "last_status=?, last_error=? WHERE id=?",
        (status, tx.now, first_attempt_at, next_attempt_at, status, tx.now, status_code, error, delivery.id),
    )
    data = {"delivery_id": delivery.id, "kind": delivery.kind, "attempt": delivery.attempts + 1}
    tx.emit("delivery.attempted", project=delivery.project, run_id=delivery.run_id, status=status_code, error=error,
            **data)  # fmt: skip
    if status != "pending":
        tx.emit(f"delivery.{status}", project=delivery.project, run_id=delivery.run_id, **data)


def retry_delivery(tx: Tx, delivery_id: str) -> Delivery:
    """Try a failed delivery again, by hand: a fresh retry window starting now."""
    delivery = get_delivery(tx.db, delivery_id)
    if delivery is None:
        raise RecordMissing(f"delivery '{delivery_id}' not found", details={"field": "deliveryId"})
    if delivery.status == "delivered":
        raise RecordExists(f"delivery '{delivery_id}' was already delivered", details={"field": "deliveryId"})
    tx.execute(
        "UPDATE deliveries SET status='pending', next_attempt_at=?, first_attempt_at=NULL, updated_at=? WHERE id=?",
        (tx.now, tx.now, delivery_id),
    )
    tx.emit("delivery.retried", project=delivery.project, run_id=delivery.run_id, delivery_id=delivery_id)
    found = get_delivery(tx.db, delivery_id)
    assert found is not None
    return found


def job_run_started(db: sqlite_utils.Database, job_run_id: str) -> str | None:
    row = db.conn.execute("SELECT start_time FROM job_runs WHERE id=?", (job_run_id,)).fetchone()
    return row[0] if row else None
