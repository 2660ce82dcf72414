"""The transactions that end attempts and runs: each composes the queries one state change
needs, so the change and everything it implies (a JobRun's end, extended items, the sink
outbox row) commit together or not at all. The runner sends these to the store actor.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..job_spec import JobRunRecord, PayloadItem
from ..messages import ProjectVersion, RunOptions, RunRecord
from ..queue_spec import QueueItem
from ..workers.attempt import AttemptOutcome
from . import job_queries, queries, queue_queries
from .queries import Tx


class Extension(msgspec.Struct, frozen=True):
    """The runs a JobRun item's or a queue item's ``extend_payload`` adds, with their ids and
    options resolved; a queue's go to its tail."""

    project: ProjectVersion
    items: list[PayloadItem]
    run_ids: list[str]
    options: list[RunOptions]
    max_runs: int | None = None


def end_attempt(
    tx: Tx,
    run: RunRecord,
    number: int,
    outcome: AttemptOutcome,
    action: str,
    run_error: dict[str, Any] | None,
    extended: list[dict[str, Any]] | None = None,
) -> None:
    """Record an attempt's end and, unless the run retries, the run's; ``extended`` replaces
    the attempt's extended payloads once a JobRun has given them run ids."""
    queries.finish_attempt(tx, run, number, outcome.status, outcome.error, trace_dropped=outcome.trace_dropped)
    if action == "complete":
        if extended is None:
            extended = [msgspec.to_builtins(p) for p in outcome.extended_payloads]
        queries.finish_run(tx, run, "completed", result=outcome.result, extended_payloads=extended or None)
    elif action == "fail":
        queries.finish_run(tx, run, "failed", error=run_error)


def end_run(
    tx: Tx,
    run: RunRecord,
    number: int,
    outcome: AttemptOutcome,
    action: str,
    run_error: dict[str, Any] | None,
    extension: Extension | None,
) -> tuple[list[RunRecord], bool]:
    """The run's last attempt, its end, its extended items and its JobRun's end: one transaction.

    Returns the runs created for extended items and whether the run's JobRun just completed.
    """
    created: list[RunRecord] = []
    extended = None
    if extension is not None and run.queue_id is not None:
        created = [
            queue_queries.insert_item(tx, extension.project, run.queue_id, QueueItem(item.api_name, item.parameters),
                                      run_id, options)
            for item, run_id, options in zip(extension.items, extension.run_ids, extension.options, strict=True)
        ]  # fmt: skip
    elif extension is not None:
        created = job_queries.extend_job_run(
            tx, run, extension.project, extension.items, extension.run_ids, extension.options, extension.max_runs
        )
    if extension is not None:
        extended = [
            {"api": item.api_name, "parameters": item.parameters, "runId": run_id}
            for item, run_id in zip(extension.items, extension.run_ids, strict=True)
        ]
    end_attempt(tx, run, number, outcome, action, run_error, extended)
    done = run.job_run_id is not None and job_queries.item_ended(tx, run.job_run_id)
    return created, done


def fail_run(tx: Tx, run: RunRecord, number: int | None, error: dict[str, Any]) -> bool:
    """End a run the daemon could not drive (its record or project is unusable); returns
    whether its JobRun just completed."""
    if number is not None:
        queries.finish_attempt(tx, run, number, "failed", error)
    queries.finish_run(tx, run, "failed", error=error)
    return run.job_run_id is not None and job_queries.item_ended(tx, run.job_run_id)


def cancel_run(tx: Tx, run: RunRecord, number: int | None, reason: dict[str, Any]) -> None:
    if number is not None:
        queries.finish_attempt(tx, run, number, "canceled", {"code": "canceled", "message": reason["message"]})
    queries.finish_run(tx, run, "canceled", reason=reason)
    if run.job_run_id is not None:
        job_queries.item_ended(tx, run.job_run_id)


def interrupt_attempt(tx: Tx, run: RunRecord, number: int) -> None:
    queries.finish_attempt(tx, run, number, "interrupted", queries.INTERRUPTED)


def terminate_job_run(
    tx: Tx, job_run: JobRunRecord, reason: dict[str, Any], items_reason: dict[str, Any], status: str = "TERMINATED"
) -> list[str]:
    """End a JobRun (TERMINATED, or CANCELED before it started): nothing more starts and its waiting
    items are canceled (their ids returned)."""
    job_queries.set_job_run_status(tx, job_run, status, reason=reason, ended=True)
    return job_queries.cancel_waiting_runs(tx, job_run.id, items_reason)
