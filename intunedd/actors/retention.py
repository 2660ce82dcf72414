"""The retention actor: removes old runs, artifacts and project versions, and measures the disk.

Every ``retention.interval_s`` (sooner while a pass keeps hitting ``max_per_pass``) one pass
asks the store to remove what ``policy.retention`` chooses, in one transaction that also
lists the folders to delete, then deletes those folders in a thread and logs one line.
Folders whose rows are gone but that a crash (or a full disk) kept from deleting are listed
in ``retention_trash`` and finished by the next pass.

Disk use for GET /health is measured in a thread, at most every ``disk_usage_interval_s``
and after each pass; /health only reads the last measurement.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import NoReturn

import msgspec
import trio

from ..clock import Clock, iso
from ..config import RetentionSettings, Settings
from ..environments.sweep import sweep
from ..errors import Unavailable
from ..policy.retention import Limits, Plan, pass_was_full
from ..store import queries, retention_queries
from ..store.retention_queries import Roots
from .store import StoreHandle

log = logging.getLogger(__name__)
BUSY_PAUSE_S = 1.0  # between passes while there is more to remove than one pass may


class UsedBytes(msgspec.Struct, frozen=True):
    db: int
    artifacts: int
    projects: int


class DiskUsage(msgspec.Struct, frozen=True, rename="camel"):
    state_dir: str
    free_bytes: int
    total_bytes: int
    used_bytes: UsedBytes
    measured_at: str


class Removals(msgspec.Struct, frozen=True, rename="camel"):
    runs: int = 0
    job_runs: int = 0
    artifacts: int = 0  # runs whose artifacts alone were removed
    project_versions: int = 0
    folders: int = 0


class RetentionStatistics(msgspec.Struct, frozen=True, rename="camel"):
    passes: int
    last_pass_at: str | None
    last_removed: Removals


class RetentionHandle:
    def __init__(
        self, disk_usage: Callable[[], DiskUsage | None], statistics: Callable[[], RetentionStatistics]
    ) -> None:
        self.disk_usage = disk_usage
        self.statistics = statistics


def limits(settings: RetentionSettings) -> Limits:
    def age(days: float) -> timedelta | None:
        return timedelta(days=days) if days > 0 else None

    return Limits(
        artifacts_max_age=age(settings.artifacts_max_age_days),
        runs_max_age=age(settings.runs_max_age_days),
        keep_versions=settings.keep_project_versions,
        max_per_pass=settings.max_per_pass,
    )


def _tree_bytes(path: Path) -> int:
    """Bytes allocated on disk (as ``du`` counts) under ``path``; what vanishes meanwhile is skipped."""
    total = 0
    folders = [str(path)]
    while folders:
        try:
            with os.scandir(folders.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            folders.append(entry.path)
                        else:
                            total += entry.stat(follow_symlinks=False).st_blocks * 512
                    except FileNotFoundError:
                        continue
        except (FileNotFoundError, NotADirectoryError):
            continue
    return total


def measure(settings: Settings, measured_at: str) -> DiskUsage:
    db_files = [settings.db_path.with_name(settings.db_path.name + suffix) for suffix in ("", "-wal", "-shm")]
    usage = shutil.disk_usage(settings.state_path)
    return DiskUsage(
        state_dir=str(settings.state_path),
        free_bytes=usage.free,
        total_bytes=usage.total,
        used_bytes=UsedBytes(
            db=sum(path.stat().st_blocks * 512 for path in db_files if path.exists()),
            artifacts=_tree_bytes(settings.artifacts_path),
            projects=_tree_bytes(settings.projects_path),
        ),
        measured_at=measured_at,
    )


def remove_folders(paths: list[str], roots: Roots) -> list[str]:
    """Delete each folder; returns those that are gone (or were never ours to delete), which
    may be forgotten. One that cannot be deleted now stays listed for the next pass."""
    allowed = (Path(roots.artifacts).resolve(), Path(roots.projects).resolve())
    done = []
    for path in paths:
        resolved = Path(path).resolve()
        if not any(resolved.is_relative_to(root) and resolved != root for root in allowed):
            log.warning("retention: not deleting %s, outside the artifacts and projects folders", path)
        else:
            try:
                shutil.rmtree(resolved)
            except FileNotFoundError:
                pass
            except OSError as e:
                log.warning("retention: could not delete %s: %s", path, e)
                continue
        done.append(path)
    return done


class _Retention:
    def __init__(self, store: StoreHandle, settings: Settings, clock: Clock) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.limits = limits(settings.retention)
        self.roots = Roots(artifacts=str(settings.artifacts_path), projects=str(settings.projects_path))
        self.usage: DiskUsage | None = None
        self.remeasure = trio.Event()
        self.passes = 0
        self.last_pass_at: str | None = None
        self.last_removed = Removals()

    def statistics(self) -> RetentionStatistics:
        return RetentionStatistics(passes=self.passes, last_pass_at=self.last_pass_at, last_removed=self.last_removed)

    async def measure_forever(self) -> NoReturn:
        while True:
            self.remeasure = trio.Event()
            try:
                self.usage = await trio.to_thread.run_sync(measure, self.settings, iso(self.clock.now()))
            except OSError as e:  # /health keeps the last figures, whose measuredAt shows their age
                log.warning("could not measure the state directory's disk use: %s", e)
            with trio.move_on_after(self.settings.retention.disk_usage_interval_s):
                await self.remeasure.wait()

    async def sweep_environments(self, now: datetime) -> None:
        settings = self.settings.environments
        in_use = await self.store.read(queries.environment_keys_in_use)
        removed = await trio.to_thread.run_sync(
            partial(
                sweep,
                self.settings.environments_path,
                in_use,
                keep_unused_s=settings.keep_unused_s,
                build_timeout_s=settings.build_timeout_s,
                now=now.timestamp(),
            )
        )
        if removed:
            log.info("retention: removed %d unused environments: %s", len(removed), ", ".join(removed))

    async def one_pass(self) -> bool:
        """Returns True when the pass hit a limit, so more is left to remove."""
        now = self.clock.now()
        leftovers = await self.store.read(retention_queries.trash, self.limits.max_per_pass)
        chosen = Plan(runs=[], artifacts=[], job_runs=[], versions=[])
        paths = list(leftovers)
        try:
            removed = await self.store.write(retention_queries.remove_expired, now, self.limits, self.roots)
            chosen = removed.plan
            listed = set(leftovers)
            paths += [path for path in removed.paths if path not in listed]
        except Unavailable as e:
            # A full disk refuses even deletes; the folders already listed can still go.
            log.warning("retention: nothing removed from the database this pass: %s", e.message)
        done = await trio.to_thread.run_sync(remove_folders, paths, self.roots)
        try:
            await self.store.write(retention_queries.forget_trash, done)
        except Unavailable:
            pass  # they stay listed; deleting them again next pass is harmless
        self.passes += 1
        self.last_pass_at = iso(now)
        removals = self.last_removed = Removals(
            runs=len(chosen.runs),
            job_runs=len(chosen.job_runs),
            artifacts=len(chosen.artifacts),
            project_versions=len(chosen.versions),
            folders=len(done),
        )
        log.info(
            "retention: removed %d runs, %d JobRuns, the artifacts of %d more runs and %d project versions; "
            "%d folders deleted",
            removals.runs,
            removals.job_runs,
            removals.artifacts,
            removals.project_versions,
            removals.folders,
        )
        await self.sweep_environments(now)
        self.remeasure.set()
        return pass_was_full(chosen, self.limits) or len(leftovers) >= self.limits.max_per_pass


async def run_retention(
    store: StoreHandle,
    settings: Settings,
    *,
    clock: Clock,
    task_status: trio.TaskStatus[RetentionHandle] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    retention = _Retention(store, settings, clock)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(retention.measure_forever)
        task_status.started(RetentionHandle(lambda: retention.usage, retention.statistics))
        while True:
            try:
                more = await retention.one_pass()
            except Exception:  # noqa: BLE001 - a failed pass must not end the daemon; the next one tries again
                log.exception("retention pass failed")
                more = False
            await trio.sleep(BUSY_PAUSE_S if more else settings.retention.interval_s)
    raise AssertionError("unreachable")
