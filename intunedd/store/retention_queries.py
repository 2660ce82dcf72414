"""SQL for retention: what a pass looks at, and removing what the policy chose.

``remove_expired`` loads, decides (``policy.retention.plan``) and deletes in one store
transaction, so nothing can start to need a record between the decision and the delete.
Folders are not deleted here: their paths go to ``retention_trash`` in the same transaction,
and the retention actor deletes them afterwards and forgets them (``forget_trash``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import sqlite_utils

from ..clock import iso, parse_iso
from ..policy.job_runs import ACTIVE_JOB_RUN
from ..policy.retention import UNFINISHED_RUN, JobRunFacts, Limits, Plan, RunFacts, Stored, VersionFacts, plan
from .queries import Tx

_UNFINISHED = ", ".join(f"'{s}'" for s in UNFINISHED_RUN)
_ACTIVE = ", ".join(f"'{s}'" for s in ACTIVE_JOB_RUN)
_HAS_ARTIFACTS = (
    "EXISTS (SELECT 1 FROM attempts a WHERE a.run_id = r.id "
    "AND (a.log_path IS NOT NULL OR a.trace_path IS NOT NULL OR a.video_path IS NOT NULL))"
)
_DELIVERY_PENDING = "EXISTS (SELECT 1 FROM deliveries d WHERE d.run_id = r.id AND d.status = 'pending')"
_RUN_FACTS = f"r.id, r.project, r.version, r.status, r.ended_at, r.job_run_id, {_HAS_ARTIFACTS}, {_DELIVERY_PENDING}"


class Removed(msgspec.Struct, frozen=True):
    plan: Plan
    paths: list[str]  # folders to delete now that their rows are gone


class Roots(msgspec.Struct, frozen=True):
    artifacts: str
    projects: str

    def artifacts_of(self, run_id: str) -> str:
        return str(Path(self.artifacts) / run_id)

    def project_version(self, project: str, version: int) -> str:
        return str(Path(self.projects) / project / str(version))


def _moment(text: str | None) -> datetime | None:
    return None if text is None else parse_iso(text)


def _run_facts(row: tuple[Any, ...]) -> RunFacts:
    id_, project, version, status, ended_at, job_run_id, has_artifacts, delivery_pending = row
    return RunFacts(
        id=id_,
        project=project,
        version=version,
        status=status,
        ended_at=_moment(ended_at),
        job_run_id=job_run_id,
        has_artifacts=bool(has_artifacts),
        delivery_pending=bool(delivery_pending),
    )


def _cutoff(now: datetime, age: timedelta | None) -> str | None:
    return None if age is None else iso(now - age)


def load(db: sqlite_utils.Database, now: datetime, limits: Limits) -> Stored:
    """Every unfinished run, the oldest finished runs old enough to lose their rows or their
    artifacts (protected ones are skipped here so they cannot crowd out the rest), the
    JobRuns these refer to or that are old enough themselves, and every project version."""
    rows = db.conn.execute(f"SELECT {_RUN_FACTS} FROM runs r WHERE r.status IN ({_UNFINISHED})").fetchall()
    runs_cutoff, artifacts_cutoff = _cutoff(now, limits.runs_max_age), _cutoff(now, limits.artifacts_max_age)
    if runs_cutoff is not None:
        rows += db.conn.execute(
            f"SELECT {_RUN_FACTS} FROM runs r LEFT JOIN job_runs j ON j.id = r.job_run_id "
            f"WHERE r.ended_at <= ? AND r.status NOT IN ({_UNFINISHED}) AND NOT {_DELIVERY_PENDING} "
            f"AND (r.job_run_id IS NULL OR (j.status NOT IN ({_ACTIVE}) AND j.end_time <= ?)) "
            "ORDER BY r.ended_at LIMIT ?",
            (runs_cutoff, runs_cutoff, limits.max_per_pass),
        ).fetchall()
    if artifacts_cutoff is not None:
        rows += db.conn.execute(
            f"SELECT {_RUN_FACTS} FROM runs r WHERE r.ended_at <= ? AND r.status NOT IN ({_UNFINISHED}) "
            f"AND {_HAS_ARTIFACTS} ORDER BY r.ended_at LIMIT ?",
            (artifacts_cutoff, limits.max_per_pass),
        ).fetchall()
    runs = list({row[0]: _run_facts(row) for row in rows}.values())
    return Stored(runs=runs, job_runs=_job_runs(db, runs, runs_cutoff, limits.max_per_pass), versions=_versions(db))


def _job_runs(db: sqlite_utils.Database, runs: list[RunFacts], cutoff: str | None, limit: int) -> list[JobRunFacts]:
    columns = "j.id, j.status, j.end_time, (SELECT COUNT(*) FROM runs r WHERE r.job_run_id = j.id)"
    wanted = sorted({r.job_run_id for r in runs if r.job_run_id is not None})
    rows = db.conn.execute(
        f"SELECT {columns} FROM job_runs j WHERE j.id IN (SELECT value FROM json_each(?))",
        (msgspec.json.encode(wanted),),
    ).fetchall()
    if cutoff is not None:
        rows += db.conn.execute(
            f"SELECT {columns} FROM job_runs j WHERE j.status NOT IN ({_ACTIVE}) AND j.end_time <= ? "
            "ORDER BY j.end_time LIMIT ?",
            (cutoff, limit),
        ).fetchall()
    facts = {row[0]: JobRunFacts(row[0], row[1], _moment(row[2]), row[3]) for row in rows}
    return list(facts.values())


def _versions(db: sqlite_utils.Database) -> list[VersionFacts]:
    rows = db.conn.execute(
        "SELECT v.project, v.version, v.version = p.current_version FROM project_versions v "
        "LEFT JOIN projects p ON p.name = v.project"
    ).fetchall()
    return [VersionFacts(project, version, bool(current)) for project, version, current in rows]


def remove_expired(tx: Tx, now: datetime, limits: Limits, roots: Roots) -> Removed:
    chosen = plan(load(tx.db, now, limits), now, limits)
    conn = tx.db.conn
    run_ids = [(i,) for i in chosen.runs]
    conn.executemany("DELETE FROM attempts WHERE run_id=?", run_ids)
    conn.executemany("DELETE FROM deliveries WHERE run_id=?", run_ids)
    conn.executemany("DELETE FROM runs WHERE id=?", run_ids)
    conn.executemany("DELETE FROM quarantine WHERE kind='run' AND record_id=?", run_ids)
    conn.executemany("DELETE FROM job_runs WHERE id=?", [(i,) for i in chosen.job_runs])
    conn.executemany(
        "UPDATE attempts SET log_path=NULL, trace_path=NULL, video_path=NULL WHERE run_id=?",
        [(i,) for i in chosen.artifacts],
    )
    conn.executemany("DELETE FROM project_versions WHERE project=? AND version=?", chosen.versions)
    paths = [roots.artifacts_of(i) for i in [*chosen.runs, *chosen.artifacts]]
    paths += [roots.project_version(project, version) for project, version in chosen.versions]
    conn.executemany("INSERT OR IGNORE INTO retention_trash VALUES (?, ?)", [(path, tx.now) for path in paths])
    return Removed(plan=chosen, paths=paths)


def trash(db: sqlite_utils.Database, limit: int) -> list[str]:
    """Folders an earlier pass committed to deleting and may not have deleted."""
    rows = db.conn.execute("SELECT path FROM retention_trash ORDER BY created_at LIMIT ?", (limit,)).fetchall()
    return [row[0] for row in rows]


def forget_trash(tx: Tx, paths: list[str]) -> None:
    tx.db.conn.executemany("DELETE FROM retention_trash WHERE path=?", [(path,) for path in paths])
