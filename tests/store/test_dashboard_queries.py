"""The overview's reads over a real SQLite file: runs ended per minute, and what is still active."""

from __future__ import annotations

from pathlib import Path

from intunedd.messages import ProjectVersion, RunOptions
from intunedd.store import dashboard_queries, queries
from intunedd.store.db import open_db

PROJECT = ProjectVersion(
    name="p", version=1, path="/x", apis=["a"], api_access=True, max_concurrent=2,
    deployed_at="2026-12-01T00:00:00.000Z",
)  # fmt: skip
OPTIONS = RunOptions(max_attempts=1, request_timeout_s=60, save_trace=False)


def test_finished_by_minute_and_active_runs(tmp_path: Path) -> None:
    db = open_db(tmp_path / "db.sqlite")
    tx = queries.Tx(db, "2026-12-01T10:00:00.000Z")
    ended = {
        "r1": ("completed", "2026-12-01T10:00:05.000Z"),
        "r2": ("completed", "2026-12-01T10:00:59.999Z"),
        "r3": ("failed", "2026-12-01T10:00:30.000Z"),
        "r4": ("completed", "2026-12-01T10:01:00.000Z"),
        "r5": ("completed", "2026-12-01T09:59:59.999Z"),  # before the window
    }
    with db.atomic():
        for run_id in [*ended, "p1", "s1"]:
            queries.insert_run(tx, run_id, PROJECT, "a", {}, OPTIONS)
        for run_id, (status, at) in ended.items():
            db.conn.execute("UPDATE runs SET status=?, started_at=?, ended_at=? WHERE id=?", (status, at, at, run_id))
        db.conn.execute("UPDATE runs SET status='started' WHERE id='s1'")
    rows = dashboard_queries.finished_by_minute(db, "2026-12-01T10:00:00.000Z")
    assert sorted(rows) == [
        ("2026-12-01T10:00", "completed", 2),
        ("2026-12-01T10:00", "failed", 1),
        ("2026-12-01T10:01", "completed", 1),
    ]
    assert [r.id for r in dashboard_queries.active_runs(db, 10)] == ["s1", "p1"]  # newest first
    assert [r.id for r in dashboard_queries.active_runs(db, 1)] == ["s1"]
