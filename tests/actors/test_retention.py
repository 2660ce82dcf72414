"""The retention actor under trio's autojump clock, with a real store and real folders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import msgspec
import trio
import trio.testing

from intunedd.actors.bus import run_bus
from intunedd.actors.retention import RetentionHandle, remove_folders, run_retention
from intunedd.actors.retention import limits as retention_limits
from intunedd.actors.store import StoreHandle, run_store
from intunedd.clock import Clock
from intunedd.config import RetentionSettings, Settings
from intunedd.messages import ProjectVersion, RunOptions, RunRecord
from intunedd.store import queries, retention_queries
from intunedd.store.db import open_db
from intunedd.store.retention_queries import Roots

from ..conftest import TrioClock

BASE = datetime(2026, 11, 23, 12, tzinfo=UTC)
HOUR = 3600.0
OPTIONS = RunOptions(max_attempts=1, request_timeout_s=600, save_trace=True)


def _settings(tmp_path: Path, **retention: float) -> Settings:
    defaults = {"interval_s": HOUR, "disk_usage_interval_s": HOUR}
    return Settings(state_dir=str(tmp_path), retention=RetentionSettings(**{**defaults, **retention}))  # type: ignore[arg-type]


class FixedClock:
    def now(self) -> datetime:
        return BASE


async def _store(nursery: trio.Nursery, settings: Settings, clock: Clock | None = None) -> StoreHandle:
    bus = await nursery.start(partial(run_bus, buffer=1000))
    return await nursery.start(
        partial(run_store, open_db(settings.db_path), bus.publisher(), clock=clock or TrioClock(BASE))
    )


async def _deploy(store: StoreHandle, settings: Settings, version: int) -> ProjectVersion:
    path = settings.projects_path / "p" / str(version)
    (path / "api").mkdir(parents=True)
    (path / "api" / "a.py").write_text("async def automation(page, params, **kwargs): ...\n")
    project = ProjectVersion(
        name="p", version=version, path=str(path), apis=["a"], api_access=True, max_concurrent=1, deployed_at="t"
    )
    await store.write(queries.record_deploy, project, {})
    return project


async def _finished_run(store: StoreHandle, settings: Settings, project: ProjectVersion, run_id: str) -> RunRecord:
    run = await store.write(queries.insert_run, run_id, project, "a", {}, OPTIONS)
    folder = settings.artifacts_path / run_id / "1"
    folder.mkdir(parents=True)
    (folder / "log.jsonl").write_text('{"line": 1}\n' * 1000)
    (folder / "trace.zip").write_bytes(b"z" * 10_000)
    await store.write(queries.start_attempt, run, 1, str(folder / "log.jsonl"), str(folder / "trace.zip"), None)
    await store.write(queries.finish_attempt, run, 1, "completed", None)
    await store.write(queries.finish_run, run, "completed")
    return run


async def _after_pass(handle: RetentionHandle, number: int, interval: float = HOUR) -> None:
    """Wait until pass ``number`` (0-based; passes run at 0, interval, 2 × interval, …) is done."""
    with trio.fail_after(number * interval + 600):
        await trio.sleep_until(number * interval + 10)
        while handle.statistics().passes <= number:
            await trio.sleep(1)


async def test_old_things_go_at_their_age_and_what_a_pending_run_needs_stays(
    nursery: trio.Nursery, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    settings = _settings(tmp_path, artifacts_max_age_days=0.25, runs_max_age_days=0.5, keep_project_versions=1)
    store = await _store(nursery, settings)
    v1, _, v3 = [await _deploy(store, settings, n) for n in (1, 2, 3)]
    pending = await store.write(queries.insert_run, "pending-on-version-1", v1, "a", {}, OPTIONS)
    done = await _finished_run(store, settings, v3, "finished-on-version-3")
    handle = await nursery.start(partial(run_retention, store, settings, clock=TrioClock(BASE)))

    await _after_pass(handle, 0)
    # Version 2 is neither current nor needed: row and folder gone. Version 1 waits for its run.
    assert sorted(p.name for p in (settings.projects_path / "p").iterdir()) == ["1", "3"]
    assert await store.read(queries.project_version, "p", 2) is None
    assert await store.read(queries.project_version, "p", 1) is not None

    await _after_pass(handle, 5)  # 5 h after the run ended: everything is still there
    assert (settings.artifacts_path / done.id).is_dir()
    assert (await store.read(queries.list_attempts, done.id))[0].log_path is not None

    await _after_pass(handle, 6)  # 6 h: the artifacts go, the run stays (without links)
    assert not (settings.artifacts_path / done.id).exists()
    attempts = await store.read(queries.list_attempts, done.id)
    assert [(a.status, a.log_path, a.trace_path) for a in attempts] == [("completed", None, None)]
    assert handle.statistics().last_removed.artifacts == 1

    await _after_pass(handle, 12)  # 12 h: the run goes, with its attempts
    assert await store.read(queries.get_run, done.id) is None
    assert await store.read(queries.list_attempts, done.id) == []
    # The pending run, its version and the current version are untouched all along.
    assert await store.read(queries.get_run, pending.id) is not None
    assert sorted(p.name for p in (settings.projects_path / "p").iterdir()) == ["1", "3"]
    assert await store.read(retention_queries.trash, 100) == []


async def test_a_full_pass_is_followed_by_another_within_seconds(
    nursery: trio.Nursery, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    settings = _settings(tmp_path, runs_max_age_days=0.01, max_per_pass=2)  # 864 s
    store = await _store(nursery, settings)
    project = await _deploy(store, settings, 1)
    runs = [await _finished_run(store, settings, project, f"run-{i}") for i in range(5)]
    handle = await nursery.start(partial(run_retention, store, settings, clock=TrioClock(BASE)))
    await _after_pass(handle, 1)  # at 1 h all five are old: 2 + 2 + 1, a second apart
    with trio.fail_after(60):
        while handle.statistics().passes < 4:
            await trio.sleep(1)
    assert trio.current_time() < HOUR + 60
    assert [await store.read(queries.get_run, r.id) for r in runs] == [None] * 5
    assert list(settings.artifacts_path.iterdir()) == []


async def test_folders_left_by_a_crash_are_finished_by_the_next_pass(
    nursery: trio.Nursery, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    settings = _settings(tmp_path)
    store = await _store(nursery, settings)
    leftover = settings.artifacts_path / "run-deleted-before-a-crash"
    (leftover / "1").mkdir(parents=True)
    outside = tmp_path / "not-ours"
    outside.mkdir()

    def crashed_pass(tx: queries.Tx) -> None:
        for path in (leftover, outside):
            tx.execute("INSERT INTO retention_trash VALUES (?, ?)", (str(path), tx.now))

    await store.write(crashed_pass)
    handle = await nursery.start(partial(run_retention, store, settings, clock=TrioClock(BASE)))
    await _after_pass(handle, 0)
    assert not leftover.exists()
    assert outside.is_dir()  # never deleted: not under the artifacts or projects folders
    assert await store.read(retention_queries.trash, 100) == []


async def test_disk_usage_is_measured_in_the_background(
    nursery: trio.Nursery, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    settings = _settings(tmp_path, artifacts_max_age_days=0.25)
    store = await _store(nursery, settings)
    project = await _deploy(store, settings, 1)
    await _finished_run(store, settings, project, "r")
    handle = await nursery.start(partial(run_retention, store, settings, clock=TrioClock(BASE)))
    await _after_pass(handle, 0)
    with trio.fail_after(60):
        while (usage := handle.disk_usage()) is None:
            await trio.sleep(1)
    assert usage.state_dir == str(tmp_path)
    assert usage.free_bytes > 0 and usage.total_bytes >= usage.free_bytes
    assert usage.used_bytes.db > 0 and usage.used_bytes.projects > 0
    assert usage.used_bytes.artifacts >= 22_000  # the log and the trace
    await _after_pass(handle, 6)  # the artifacts went; the pass asked for a new measurement
    with trio.fail_after(60):
        while (usage := handle.disk_usage()) is None or usage.used_bytes.artifacts:
            await trio.sleep(1)


def test_remove_folders_deletes_only_under_the_roots(tmp_path: Path) -> None:
    roots = Roots(artifacts=str(tmp_path / "artifacts"), projects=str(tmp_path / "projects"))
    inside = tmp_path / "artifacts" / "run"
    (inside / "1").mkdir(parents=True)
    escaping = tmp_path / "artifacts" / ".." / "elsewhere"
    escaping.mkdir()
    paths = [str(inside), str(escaping), roots.artifacts, str(tmp_path / "projects" / "gone")]
    assert remove_folders(paths, roots) == paths  # all may be forgotten
    assert not inside.exists()
    assert escaping.is_dir() and (tmp_path / "artifacts").is_dir()


async def test_the_store_transaction_keeps_job_runs_whole_and_pending_deliveries(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, runs_max_age_days=1)
    store = await _store(nursery, settings, FixedClock())
    project = await _deploy(store, settings, 1)
    sink = msgspec.structs.replace(OPTIONS, sink={"type": "webhook", "url": "https://hooks.example.com/x"})

    def job_run(tx: queries.Tx, job_run_id: str, status: str, end_time: str | None) -> None:
        tx.execute(
            "INSERT INTO job_runs (id, project, job_id, type, status, snapshot, max_concurrent, created_at, "
            "updated_at, start_time, end_time) VALUES (?, 'p', 'j', 'MANUAL', ?, '{}', 1, ?, ?, ?, ?)",
            (job_run_id, status, tx.now, tx.now, tx.now, end_time),
        )

    async def finished(run_id: str, options: RunOptions = OPTIONS, job_run_id: str | None = None) -> RunRecord:
        run = await store.write(
            partial(queries.insert_run, run_type="JOB" if job_run_id else "STANDALONE", job_run_id=job_run_id),
            run_id, project, "a", {}, options,
        )  # fmt: skip
        await store.write(queries.finish_run, run, "completed")
        return run

    await store.write(job_run, "done", "COMPLETED", "2026-11-20T00:00:00.000Z")
    await store.write(job_run, "paused", "PAUSED", None)
    await store.write(job_run, "skipped", "CANCELED", "2026-11-20T00:00:00.000Z")
    in_done = [await finished(f"done-{i}", job_run_id="done") for i in range(2)]
    in_paused = await finished("paused-0", job_run_id="paused")
    undelivered = await finished("undelivered", sink)
    alone = await finished("alone")
    limits = retention_limits(settings.retention)
    roots = Roots(artifacts=str(settings.artifacts_path), projects=str(settings.projects_path))

    removed = await store.write(retention_queries.remove_expired, BASE + timedelta(days=1), limits, roots)
    assert sorted(removed.plan.runs) == sorted([in_done[0].id, in_done[1].id, alone.id])
    assert sorted(removed.plan.job_runs) == ["done", "skipped"]
    for run in (in_paused, undelivered):
        assert await store.read(queries.get_run, run.id) is not None
    assert await store.read(queries.get_run, alone.id) is None
    remaining = await store.read(lambda db: [r[0] for r in db.conn.execute("SELECT id FROM job_runs ORDER BY id")])
    assert remaining == ["paused"]
    assert sorted(await store.read(retention_queries.trash, 100)) == sorted(removed.paths)
