"""Queues, their items (runs with ``queue_id``) and repeat items. Reads take the database, writes a ``Tx``."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec
import sqlite_utils

from ..messages import ProjectVersion, RunOptions, RunRecord
from ..queue_spec import QueueItem, QueueRecord, QueueSpec, RepeatItemInput, RepeatItemRecord
from . import queries
from .errors import RecordExists
from .queries import _RUN_COLUMNS, Tx, _dumps, _run, decode_rows

RUN_TYPE = "QUEUE"
_QUEUE_COLUMNS = "project, id, spec, created_at, updated_at"
_REPEAT_COLUMNS = "project, queue_id, id, spec, period_ms, next_at, last_run_id"
_decode_spec = msgspec.json.Decoder(QueueSpec)
_decode_repeat = msgspec.json.Decoder(RepeatItemInput)


class QueueState(msgspec.Struct, frozen=True):
    """How many items wait, and the item being processed (with its attempts so far), if any."""

    queued: int
    running: RunRecord | None


def _queue(row: tuple[Any, ...]) -> QueueRecord:
    project, id_, spec, created_at, updated_at = row
    return QueueRecord(project=project, id=id_, spec=_decode_spec.decode(spec), created_at=created_at,
                       updated_at=updated_at)  # fmt: skip


def _repeat(row: tuple[Any, ...]) -> RepeatItemRecord:
    project, queue_id, id_, spec, period_ms, next_at, last_run_id = row
    return RepeatItemRecord(project=project, queue_id=queue_id, id=id_, spec=_decode_repeat.decode(spec),
                            period_ms=period_ms, next_at=next_at, last_run_id=last_run_id)  # fmt: skip


# -- queues -------------------------------------------------------------------------------


def insert_queue(tx: Tx, project: str, queue_id: str, spec: QueueSpec) -> None:
    try:
        tx.execute(
            f"INSERT INTO queues ({_QUEUE_COLUMNS}) VALUES (?, ?, ?, ?, ?)", (project, queue_id, _dumps(spec), tx.now,
                                                                               tx.now),
        )  # fmt: skip
    except sqlite3.IntegrityError as e:
        raise RecordExists(f"queue '{queue_id}' already exists in project '{project}'", details={"field": "id"}) from e
    tx.emit("queue.created", project=project, queue_id=queue_id)


def get_queue(db: sqlite_utils.Database, project: str, queue_id: str) -> QueueRecord | None:
    row = db.conn.execute(f"SELECT {_QUEUE_COLUMNS} FROM queues WHERE project=? AND id=?", (project, queue_id))
    found = row.fetchone()
    return _queue(found) if found else None


def queues_checked(db: sqlite_utils.Database) -> tuple[list[QueueRecord], list[tuple[str, str]]]:
    rows = db.conn.execute(f"SELECT {_QUEUE_COLUMNS} FROM queues").fetchall()
    return decode_rows(rows, _queue, lambda row: f"{row[0]}/{row[1]}")


def delete_queue(tx: Tx, queue: QueueRecord, reason: dict[str, Any]) -> list[str]:
    """Remove the queue and its repeat items; its waiting items end canceled (their ids returned)."""
    waiting = cancel_waiting_items(tx, queue.project, queue.id, reason)
    tx.execute("DELETE FROM queue_repeat_items WHERE project=? AND queue_id=?", (queue.project, queue.id))
    tx.execute("DELETE FROM queues WHERE project=? AND id=?", (queue.project, queue.id))
    tx.emit("queue.deleted", project=queue.project, queue_id=queue.id)
    return waiting


def cancel_waiting_items(tx: Tx, project: str, queue_id: str, reason: dict[str, Any]) -> list[str]:
    rows = tx.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs WHERE project=? AND queue_id=? AND status='pending'", (project, queue_id)
    ).fetchall()
    runs = [_run(row) for row in rows]
    for run in runs:
        queries.finish_run(tx, run, "canceled", reason=reason)
    return [run.id for run in runs]


def queue_state(db: sqlite_utils.Database, project: str, queue_id: str) -> QueueState:
    queued = db.conn.execute(
        "SELECT COUNT(*) FROM runs WHERE project=? AND queue_id=? AND status='pending'", (project, queue_id)
    ).fetchone()[0]
    row = db.conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs WHERE project=? AND queue_id=? AND status='started' ORDER BY seq LIMIT 1",
        (project, queue_id),
    ).fetchone()
    return QueueState(queued=queued, running=_run(row) if row else None)


def queue_states(db: sqlite_utils.Database, project: str) -> dict[str, QueueState]:
    """``queue_state`` of every queue of ``project`` that has an item waiting or running."""
    queued: dict[str, int] = dict(
        db.conn.execute(
            "SELECT queue_id, COUNT(*) FROM runs WHERE project=? AND queue_id IS NOT NULL AND status='pending' "
            "GROUP BY queue_id",
            (project,),
        ).fetchall()
    )
    running: dict[str, RunRecord] = {}
    rows = db.conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs WHERE project=? AND queue_id IS NOT NULL AND status='started' ORDER BY seq",
        (project,),
    )
    for row in rows:
        run = _run(row)
        running.setdefault(run.queue_id or "", run)
    return {
        queue_id: QueueState(queued=queued.get(queue_id, 0), running=running.get(queue_id))
        for queue_id in queued.keys() | running.keys()
    }


# -- items --------------------------------------------------------------------------------


def insert_item(
    tx: Tx, project: ProjectVersion, queue_id: str, item: QueueItem, run_id: str, options: RunOptions
) -> RunRecord:
    run = queries.insert_run(
        tx, run_id, project, item.api_name, item.parameters, options, run_type=RUN_TYPE, queue_id=queue_id
    )
    tx.emit("queueitem.queued", project=project.name, run_id=run_id, queue_id=queue_id, api=item.api_name)
    return run


def get_item(db: sqlite_utils.Database, project: str, queue_id: str, run_id: str) -> RunRecord | None:
    run = queries.get_run(db, run_id)
    return run if run is not None and run.project == project and run.queue_id == queue_id else None


# -- repeat items -------------------------------------------------------------------------


def insert_repeat(
    tx: Tx, project: str, queue_id: str, item_id: str, spec: RepeatItemInput, period_ms: int, next_at: str
) -> None:
    tx.execute(
        f"INSERT INTO queue_repeat_items ({_REPEAT_COLUMNS}, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)",
        (project, queue_id, item_id, _dumps(spec), period_ms, next_at, tx.now, tx.now),
    )
    tx.emit("queue.repeatitem.created", project=project, queue_id=queue_id, repeat_item_id=item_id)


def update_repeat(
    tx: Tx, project: str, queue_id: str, item_id: str, spec: RepeatItemInput, period_ms: int, next_at: str
) -> bool:
    changed = tx.execute(
        "UPDATE queue_repeat_items SET spec=?, period_ms=?, next_at=?, updated_at=? "
        "WHERE project=? AND queue_id=? AND id=?",
        (_dumps(spec), period_ms, next_at, tx.now, project, queue_id, item_id),
    ).rowcount
    if changed:
        tx.emit("queue.repeatitem.updated", project=project, queue_id=queue_id, repeat_item_id=item_id)
    return bool(changed)


def delete_repeat(tx: Tx, project: str, queue_id: str, item_id: str) -> bool:
    changed = tx.execute(
        "DELETE FROM queue_repeat_items WHERE project=? AND queue_id=? AND id=?", (project, queue_id, item_id)
    ).rowcount
    if changed:
        tx.emit("queue.repeatitem.deleted", project=project, queue_id=queue_id, repeat_item_id=item_id)
    return bool(changed)


def get_repeat(db: sqlite_utils.Database, project: str, queue_id: str, item_id: str) -> RepeatItemRecord | None:
    row = db.conn.execute(
        f"SELECT {_REPEAT_COLUMNS} FROM queue_repeat_items WHERE project=? AND queue_id=? AND id=?",
        (project, queue_id, item_id),
    ).fetchone()
    return _repeat(row) if row else None


def list_repeats(db: sqlite_utils.Database, project: str, queue_id: str) -> list[RepeatItemRecord]:
    rows = db.conn.execute(
        f"SELECT {_REPEAT_COLUMNS} FROM queue_repeat_items WHERE project=? AND queue_id=? ORDER BY created_at, id",
        (project, queue_id),
    )
    return [_repeat(row) for row in rows]


def repeats_checked(db: sqlite_utils.Database) -> tuple[list[RepeatItemRecord], list[tuple[str, str]]]:
    rows = db.conn.execute(f"SELECT {_REPEAT_COLUMNS} FROM queue_repeat_items").fetchall()
    return decode_rows(rows, _repeat, lambda row: f"{row[0]}/{row[1]}/{row[2]}")


def append_repeat(
    tx: Tx, repeat: RepeatItemRecord, project: ProjectVersion, run_id: str, options: RunOptions, next_at: str
) -> RunRecord | None:
    """The repeat item's next item, and when the one after is due: together, so a restart
    neither skips nor doubles an append. None when the repeat item was deleted meanwhile."""
    moved = tx.execute(
        "UPDATE queue_repeat_items SET next_at=?, last_run_id=? WHERE project=? AND queue_id=? AND id=? AND next_at=?",
        (next_at, run_id, repeat.project, repeat.queue_id, repeat.id, repeat.next_at),
    ).rowcount
    if not moved:
        return None
    return insert_item(tx, project, repeat.queue_id, repeat.spec, run_id, options)
