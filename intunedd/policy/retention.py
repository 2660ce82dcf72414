"""Retention policy: which stored things a pass removes, given what is stored, the time and the limits.

Removed, oldest first and at most ``max_per_pass`` of each kind per pass:

- a finished run's artifacts (its attempts' logs, traces, videos) once it ended more than
  ``artifacts_max_age`` ago;
- a finished run (with its attempts, deliveries and artifacts) once it ended more than
  ``runs_max_age`` ago, unless a delivery of it is still pending or its JobRun is active or
  ended less than ``runs_max_age`` ago (a JobRun's runs are its results: they go with it);
- a finished JobRun once it ended more than ``runs_max_age`` ago and no run of it is left;
- a project version beyond the newest ``keep_versions`` of its project.

Never removed, whatever the limits: anything of an unfinished (pending or started) run, the
project version an unfinished run was accepted on, a project's current version, an active
JobRun and its runs.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

import msgspec

from .job_runs import ACTIVE_JOB_RUN

UNFINISHED_RUN = ("pending", "started")


class RunFacts(msgspec.Struct, frozen=True):
    id: str
    project: str
    version: int
    status: str
    ended_at: datetime | None
    job_run_id: str | None = None
    has_artifacts: bool = False
    delivery_pending: bool = False


class JobRunFacts(msgspec.Struct, frozen=True):
    id: str
    status: str
    end_time: datetime | None
    runs: int  # how many runs it has in the store


class VersionFacts(msgspec.Struct, frozen=True):
    project: str
    version: int
    current: bool


class Stored(msgspec.Struct, frozen=True):
    """What a pass looks at: every unfinished run, the candidates, and what they refer to."""

    runs: list[RunFacts]
    job_runs: list[JobRunFacts]
    versions: list[VersionFacts]


class Limits(msgspec.Struct, frozen=True):
    artifacts_max_age: timedelta | None  # None: kept forever
    runs_max_age: timedelta | None
    keep_versions: int  # 0: every version is kept
    max_per_pass: int


class Plan(msgspec.Struct, frozen=True):
    runs: list[str]  # run ids, removed with their attempts, deliveries and artifacts
    artifacts: list[str]  # run ids whose artifacts alone are removed
    job_runs: list[str]
    versions: list[tuple[str, int]]

    @property
    def empty(self) -> bool:
        return not (self.runs or self.artifacts or self.job_runs or self.versions)


def _older(moment: datetime | None, max_age: timedelta | None, now: datetime) -> bool:
    return max_age is not None and moment is not None and moment <= now - max_age


def _oldest(runs: Iterable[RunFacts], limit: int) -> list[RunFacts]:
    return sorted(runs, key=lambda r: (r.ended_at, r.id))[:limit]


def plan(stored: Stored, now: datetime, limits: Limits) -> Plan:
    unfinished = [r for r in stored.runs if r.status in UNFINISHED_RUN]
    finished = [r for r in stored.runs if r.status not in UNFINISHED_RUN]
    job_runs = {j.id: j for j in stored.job_runs}
    busy_job_runs = {j.id for j in stored.job_runs if j.status in ACTIVE_JOB_RUN or j.end_time is None}
    busy_job_runs |= {r.job_run_id for r in unfinished if r.job_run_id is not None}

    def job_run_done(run: RunFacts) -> bool:
        if run.job_run_id is None:
            return True
        job_run = job_runs.get(run.job_run_id)  # unknown: it might be active, so keep the run
        return (
            job_run is not None
            and job_run.id not in busy_job_runs
            and _older(job_run.end_time, limits.runs_max_age, now)
        )

    removable = [
        r
        for r in finished
        if _older(r.ended_at, limits.runs_max_age, now) and not r.delivery_pending and job_run_done(r)
    ]
    runs = _oldest(removable, limits.max_per_pass)
    removed = {r.id for r in runs}
    artifacts = _oldest(
        (
            r
            for r in finished
            if r.has_artifacts and r.id not in removed and _older(r.ended_at, limits.artifacts_max_age, now)
        ),
        limits.max_per_pass,
    )
    left = Counter({j.id: j.runs for j in stored.job_runs})
    left.subtract(r.job_run_id for r in runs if r.job_run_id is not None)
    ended_job_runs = sorted(
        (
            j
            for j in stored.job_runs
            if j.id not in busy_job_runs and _older(j.end_time, limits.runs_max_age, now) and left[j.id] <= 0
        ),
        key=lambda j: (j.end_time, j.id),
    )[: limits.max_per_pass]
    return Plan(
        runs=[r.id for r in runs],
        artifacts=[r.id for r in artifacts],
        job_runs=[j.id for j in ended_job_runs],
        versions=_old_versions(stored.versions, unfinished, limits),
    )


def _old_versions(versions: list[VersionFacts], unfinished: list[RunFacts], limits: Limits) -> list[tuple[str, int]]:
    if limits.keep_versions <= 0:
        return []
    needed = {(r.project, r.version) for r in unfinished}
    by_project: defaultdict[str, list[VersionFacts]] = defaultdict(list)
    for version in versions:
        by_project[version.project].append(version)
    old = []
    for project_versions in by_project.values():
        newest_first = sorted(project_versions, key=lambda v: v.version, reverse=True)
        old += [
            (v.project, v.version)
            for v in newest_first[limits.keep_versions :]
            if not v.current and (v.project, v.version) not in needed
        ]
    return sorted(old, key=lambda pv: (pv[1], pv[0]))[: limits.max_per_pass]


def pass_was_full(plan: Plan, limits: Limits) -> bool:
    """A pass that hit a limit leaves more to do: the next one should come soon, not in an hour."""
    sizes = (len(plan.runs), len(plan.artifacts), len(plan.job_runs), len(plan.versions))
    return max(sizes) >= limits.max_per_pass
