"""The store actor when SQLite cannot grow: a clear 503, a clean rollback, and it serves on.

``PRAGMA max_page_count`` makes SQLite answer SQLITE_FULL ("database or disk is full") exactly
as a full disk does, without needing one (the e2e test in tests/e2e/test_disk_full.py uses a
real full tmpfs).
"""

from __future__ import annotations

import errno
import sqlite3
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
import sqlite_utils
import trio

from intunedd.actors.bus import run_bus
from intunedd.actors.store import StoreHandle, run_store
from intunedd.errors import Unavailable, disk_full
from intunedd.messages import EventFilter, ProjectVersion, RunOptions
from intunedd.store import queries
from intunedd.store.db import open_db

PROJECT = ProjectVersion(name="p", version=1, path="/x", apis=["a"], api_access=True, max_concurrent=1, deployed_at="t")
OPTIONS = RunOptions(max_attempts=3, request_timeout_s=600, save_trace=True)
BIG = "x" * 200_000  # many pages: the insert has to grow the database


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _cap_pages(db: sqlite_utils.Database, extra: int) -> None:
    pages = db.conn.execute("PRAGMA page_count").fetchone()[0]
    db.conn.execute(f"PRAGMA max_page_count={pages + extra}")


async def _start(nursery: trio.Nursery, tmp_path: Path) -> tuple[StoreHandle, sqlite_utils.Database]:
    db = open_db(tmp_path / "t.db")
    bus = await nursery.start(partial(run_bus, buffer=16))
    return await nursery.start(partial(run_store, db, bus.publisher(), clock=FixedClock())), db


async def test_a_full_database_answers_503_and_the_store_resumes_when_space_returns(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    store, db = await _start(nursery, tmp_path)
    await store.write(queries.record_deploy, PROJECT, {})
    await store.read(_cap_pages, 0)
    with pytest.raises(Unavailable, match="disk") as raised:
        await store.write(queries.insert_run, "r" * 21, PROJECT, "a", {"big": BIG}, OPTIONS)
    assert raised.value.status == 503
    assert raised.value.details == {"reason": "disk-full"}
    # Reads still work and see nothing of the failed write.
    assert await store.read(queries.unfinished_runs) == []
    assert [p.name for p in await store.read(queries.current_projects)] == ["p"]
    await store.read(_cap_pages, 1000)  # space returns
    run = await store.write(queries.insert_run, "r" * 21, PROJECT, "a", {"big": BIG}, OPTIONS)
    assert [r.id for r in await store.read(queries.unfinished_runs)] == [run.id]


async def test_a_write_failing_mid_transaction_publishes_nothing_and_keeps_earlier_statements_out(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    db = open_db(tmp_path / "t.db")
    bus = await nursery.start(partial(run_bus, buffer=16))
    store = await nursery.start(partial(run_store, db, bus.publisher(), clock=FixedClock()))
    events = await bus.subscribe(EventFilter())
    await store.read(_cap_pages, 0)

    def deploy_then_big_run(tx: queries.Tx) -> None:
        queries.record_deploy(tx, PROJECT, {})  # fits in the existing pages...
        queries.insert_run(tx, "r" * 21, PROJECT, "a", {"big": BIG}, OPTIONS)  # ...this does not

    with pytest.raises(Unavailable):
        await store.write(deploy_then_big_run)
    assert await store.read(queries.current_projects) == []
    with pytest.raises(trio.WouldBlock):
        events.receive_nowait()
    assert not db.conn.in_transaction


def _caused_by(cause: BaseException) -> Exception:
    try:
        raise ValueError("the archive could not be unpacked") from cause
    except ValueError as e:
        return e


@pytest.mark.parametrize(
    ("error", "mapped"),
    [
        (sqlite3.OperationalError("database or disk is full"), False),  # no error code: not SQLite's own
        (OSError(errno.ENOSPC, "No space left on device"), True),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
        (OSError(errno.EACCES, "Permission denied"), False),
        (_caused_by(OSError(errno.ENOSPC, "No space left on device")), True),  # e.g. a ProjectError while unpacking
        (_caused_by(OSError(errno.EACCES, "Permission denied")), False),
        (ValueError("no"), False),
    ],
)
def test_which_errors_mean_the_disk_is_full(error: Exception, mapped: bool) -> None:
    assert (disk_full(error) is not None) is mapped


def test_sqlite_full_from_sqlite_itself_is_disk_full(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("PRAGMA max_page_count=2")
    with pytest.raises(sqlite3.OperationalError) as raised:
        conn.execute("INSERT INTO t VALUES (?)", (BIG,))
    found = disk_full(raised.value)
    assert found is not None and found.status == 503
    assert found.__cause__ is raised.value
