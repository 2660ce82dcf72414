"""JobRun rules: when a trigger starts one, how many of its runs may run, when it is done.

Pure functions of what the store read; ``store.job_queries`` applies them in its
transactions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

ACTIVE_JOB_RUN = ("PENDING", "PAUSING", "PAUSED", "RESUMING")
Start = Literal["slot-already-fired", "skip-another-active", "start"]


def on_trigger(*, slot_already_fired: bool, another_active: bool) -> Start:
    """A schedule slot fires at most once; a job has at most one active JobRun at a time
    (a trigger that finds one is recorded as a CANCELED JobRun that says why)."""
    if slot_already_fired:
        return "slot-already-fired"
    if another_active:
        return "skip-another-active"
    return "start"


def runs_allowed(existing: int, new: int, max_runs: int | None) -> int:
    """How many of ``new`` runs may run in a JobRun that already has ``existing``; the rest
    are canceled (``configuration.maxRuns`` counts every run a JobRun ever had)."""
    if max_runs is None:
        return new
    return max(0, min(new, max_runs - existing))


def completes(status: str, counts: Mapping[str, int]) -> bool:
    """A pending (or resuming) JobRun completes when none of its runs waits or runs."""
    return status in ("PENDING", "RESUMING") and not counts.get("pending") and not counts.get("running")


def lane_cap(max_concurrent_requests: float | None, project_cap: int) -> int:
    """A JobRun's concurrency: the job's ``maxConcurrentRequests``, else its project's."""
    return max(1, int(max_concurrent_requests)) if max_concurrent_requests else project_cap
