"""One collection job as the daemon and a worker exchange it, and what its outcome makes of the job.

A ``browser: true`` job runs on a worker as ``Start(function="collection-scrape")`` whose
``parameters`` are a ``ScrapeJob``; the worker's ``Done.result`` is the ``ScrapeOutcome`` (a
dataclass, which msgspec encodes and converts as it does Structs). ``verdict`` is the single
place that says which job status, run status and counters an outcome stands for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from ..policy.attempts import error_object
from .outcome import ScrapeOutcome
from .request import Guidance, ScrapeRequest, ScrapeResponse

# A collection job's run of ours belongs to this project, which no deploy can take (project names
# start with a letter or digit: projects.PROJECT_NAME), at version 0, of which no row exists.
PROJECT = "_collections"
VERSION = 0
RUN_TYPE = "COLLECTION"
API = "collections/scrape"
WORKER_FUNCTION = "collection-scrape"
RESULT_TOO_BIG = 507  # our choice: a result we cannot keep is the daemon's limit, not the target's answer


class ScrapeJob(msgspec.Struct, kw_only=True):
    """``Start.parameters`` of a ``collection-scrape`` attempt."""

    request: ScrapeRequest
    timeout_s: float


def job_parameters(request: ScrapeRequest, timeout_s: float) -> Any:
    return msgspec.to_builtins(ScrapeJob(request=request, timeout_s=timeout_s))


def read_job(parameters: Any) -> ScrapeJob:
    return msgspec.convert(parameters, ScrapeJob)


def outcome_result(outcome: ScrapeOutcome) -> Any:
    """``Done.result`` of a ``collection-scrape`` attempt."""
    return msgspec.to_builtins(outcome)


def read_outcome(result: Any) -> ScrapeOutcome:
    return msgspec.convert(result, ScrapeOutcome)


def failed_outcome(request: ScrapeRequest, message: str, *, status: int, timed_out: bool = False) -> ScrapeOutcome:
    """The outcome of a job whose attempt failed before the scrape could answer (a worker crash, say)."""
    response = ScrapeResponse(
        url=request.url,
        custom_id=request.custom_id,
        status_code=status,
        message=message,
        guidance=Guidance(success=False, error_type="timeout" if timed_out else "internal", credits_charged=0),
    )
    return ScrapeOutcome(response=response, timed_out=timed_out)


def bounded(outcome: ScrapeOutcome, request: ScrapeRequest, max_bytes: int) -> tuple[ScrapeOutcome, bytes]:
    """The outcome and its response encoded for keeping; one over ``max_bytes`` becomes a failure saying so."""
    encoded = msgspec.json.encode(outcome.response)
    if len(encoded) <= max_bytes:
        return outcome, encoded
    message = (
        f"The result is {len(encoded)} bytes, over the daemon's limit of {max_bytes} (collections.max_result_bytes)"
    )
    small = failed_outcome(request, message, status=RESULT_TOO_BIG)
    return small, msgspec.json.encode(small.response)


JobStatus = Literal["completed", "failed", "timeout"]


@dataclass(frozen=True)
class Verdict:
    job_status: JobStatus
    run_status: Literal["completed", "failed"]
    success: bool
    error: dict[str, Any] | None  # the run's error when it failed


def verdict(outcome: ScrapeOutcome) -> Verdict:
    """A job is ``completed`` when its scrape succeeded (so ``success_requests`` counts them), ``timeout``
    when it ran out of time, ``failed`` otherwise; its run of ours completes or fails alike."""
    response = outcome.response
    success = response.guidance is not None and response.guidance.success
    if success:
        return Verdict("completed", "completed", True, None)
    code = "script-timeout" if outcome.timed_out else "collection-scrape-failed"
    error = error_object(code, response.message, retryable=False, details={"statusCode": response.status_code})
    return Verdict("timeout" if outcome.timed_out else "failed", "failed", False, error)
